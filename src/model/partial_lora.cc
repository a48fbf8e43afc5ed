#include "model/partial_lora.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace ixc {

namespace {

enum Slot : size_t { kMid = kPartialLinearSlots, kGatherIn, kGatherOut };

// y[T, out] += (x·Aᵀ)·Bᵀ.
void AddLora(const LoraPair& p, const float* x, int64_t T, int64_t in, float* y, ThreadPool* pool, Workspace& ws) {
  float* mid = ws.Floats(kMid, static_cast<size_t>(T * p.rank()));
  MatMul(x, T, in, p.a, nullptr, mid, false, pool);
  MatMul(mid, T, p.rank(), p.b, nullptr, y, true, pool);
}

}  // namespace

void PartialLinear(const LinearWeights& w, const float* x, int64_t T, const uint8_t* image_mask, AdapterMode mode,
                   float* y, ThreadPool* pool, Workspace* workspace) {
  Workspace local;
  Workspace& ws = workspace ? *workspace : local;
  const int64_t in = w.in(), out = w.out();
  MatMul(x, T, in, w.weight, nullptr, y, false, pool);
  if (mode == AdapterMode::kWeb) AddLora(w.web, x, T, in, y, pool, ws);
  if (mode == AdapterMode::kWrite) {
    AddLora(w.sft, x, T, in, y, pool, ws);
    AddLora(w.dpo, x, T, in, y, pool, ws);
  }
  if (!image_mask || !w.plora.present()) return;
  std::vector<int64_t> rows;
  for (int64_t t = 0; t < T; ++t)
    if (image_mask[t]) rows.push_back(t);
  if (rows.empty()) return;
  if (static_cast<int64_t>(rows.size()) == T) {
    AddLora(w.plora, x, T, in, y, pool, ws);
    return;
  }
  // Gather the image rows, add their low-rank term, scatter the result back.
  const int64_t n = static_cast<int64_t>(rows.size());
  float* xi = ws.Floats(kGatherIn, static_cast<size_t>(n * in));
  float* yi = ws.Floats(kGatherOut, static_cast<size_t>(n * out));
  std::fill(yi, yi + n * out, 0.f);
  for (int64_t i = 0; i < n; ++i) std::memcpy(&xi[i * in], x + rows[i] * in, in * sizeof(float));
  AddLora(w.plora, xi, n, in, yi, pool, ws);
  for (int64_t i = 0; i < n; ++i) {
    float* yr = y + rows[i] * out;
    for (int64_t j = 0; j < out; ++j) yr[j] += yi[i * out + j];
  }
}

}  // namespace ixc
