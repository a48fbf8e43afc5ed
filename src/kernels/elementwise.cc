// Elementwise and per-row steps of the forward passes: threading and dispatch here, the portable loops as the
// scalar kernel set (also the twins the SIMD sets are tested against).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/elementwise_kernels.h"
#include "kernels/kernels.h"

namespace ixc {

namespace elementwise {
namespace {

void SiluMul(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Silu(a[i]) * b[i];
}
void QuickGeluLoop(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = QuickGelu(x[i]);
}
void Add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}
void RmsNormRow(const float* x, const float* w, int64_t d, float eps, float* y) { RmsNormRef(x, w, 1, d, eps, y); }
void LayerNormRow(const float* x, const float* w, const float* b, int64_t d, float eps, float* y) {
  LayerNormRef(x, w, b, 1, d, eps, y);
}

void ToF16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F32ToF16(x[i]);
}

}  // namespace

void ToQ8_0(const float* x, void* blocks, int64_t n) {
  auto* out = static_cast<BlockQ8_0*>(blocks);
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    float amax = 0.f;
    for (int i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = F32ToF16(d);
    for (int i = 0; i < kQ8Block; ++i) out[b].q[i] = static_cast<int8_t>(std::nearbyint(xb[i] * id));
  }
}

const Kernels& ScalarKernels() {
  static const Kernels k{SiluMul, QuickGeluLoop, Add, RmsNormRow, LayerNormRow, ToF16, ToQ8_0};
  return k;
}

const Kernels& KernelsFor(Isa isa) {
#if defined(__x86_64__)
  if (isa >= Isa::kAvx2) return Avx2Kernels();
#endif
  return ScalarKernels();
}

}  // namespace elementwise

namespace {

const elementwise::Kernels& K() { return elementwise::KernelsFor(ActiveIsa()); }

// Work below this many elements stays on the calling thread (a fork/join costs more than the loop).
constexpr int64_t kParallelElements = 1 << 15;

// Splits [0, n) into 64-element-aligned chunks, one per thread.
template <typename F>
void ForChunks(int64_t n, ThreadPool* pool, F&& f) {
  if (!pool || pool->num_threads() == 1 || n < kParallelElements) return f(0, n);
  const int64_t blocks = (n + 63) / 64;
  pool->ParallelFor(blocks, [&](int64_t b0, int64_t b1, int) { f(b0 * 64, std::min(n, b1 * 64)); });
}

template <typename F>
void ForRows(int64_t rows, int64_t d, ThreadPool* pool, F&& f) {
  if (!pool || pool->num_threads() == 1 || rows * d < kParallelElements) {
    for (int64_t t = 0; t < rows; ++t) f(t);
    return;
  }
  pool->ParallelFor(rows, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) f(t);
  });
}

}  // namespace

void SiluMul(const float* a, const float* b, float* y, int64_t n, ThreadPool* pool) {
  const auto& k = K();
  ForChunks(n, pool, [&](int64_t i0, int64_t i1) { k.silu_mul(a + i0, b + i0, y + i0, i1 - i0); });
}

void QuickGeluInPlace(float* x, int64_t n, ThreadPool* pool) {
  const auto& k = K();
  ForChunks(n, pool, [&](int64_t i0, int64_t i1) { k.quick_gelu(x + i0, i1 - i0); });
}

void GeluErfInPlace(float* x, int64_t n, ThreadPool* pool) {
  ForChunks(n, pool, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) x[i] = GeluErf(x[i]);
  });
}

void AddInPlace(float* x, const float* y, int64_t n, ThreadPool* pool) {
  const auto& k = K();
  ForChunks(n, pool, [&](int64_t i0, int64_t i1) { k.add(x + i0, y + i0, i1 - i0); });
}

void StoreAs(DType dtype, const float* x, void* y, int64_t n) {
  if (n <= 0) return;
  if (dtype == DType::kF16) return K().f32_to_f16(x, static_cast<uint16_t*>(y), n);
  if (dtype == DType::kQ8_0) return K().f32_to_q8_0(x, y, n);
  if (dtype == DType::kBF16) {
    auto* out = static_cast<uint16_t*>(y);
    for (int64_t i = 0; i < n; ++i) out[i] = F32ToBf16(x[i]);
    return;
  }
  std::memcpy(y, x, n * sizeof(float));
}

void RmsNorm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y, ThreadPool* pool) {
  const auto& k = K();
  ForRows(T, D, pool, [&](int64_t t) { k.rms_norm_row(x + t * D, w, D, eps, y + t * D); });
}

void LayerNorm(const float* x, const float* w, const float* b, int64_t T, int64_t D, float eps, float* y,
               ThreadPool* pool) {
  const auto& k = K();
  ForRows(T, D, pool, [&](int64_t t) { k.layer_norm_row(x + t * D, w, b, D, eps, y + t * D); });
}

}  // namespace ixc
