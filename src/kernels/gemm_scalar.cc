// The portable kernel set: plain loops in the same shapes as the SIMD sets, so any CPU runs the same blocking.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/gemm_kernels.h"

namespace ixc::gemm {

namespace {

inline float Load(DType dtype, const void* base, int64_t i) {
  switch (dtype) {
    case DType::kBF16: return Bf16ToF32(static_cast<const uint16_t*>(base)[i]);
    case DType::kF16: return F16ToF32(static_cast<const uint16_t*>(base)[i]);
    case DType::kQ8_0: {  // flat index: rows are whole blocks
      const BlockQ8_0& b = static_cast<const BlockQ8_0*>(base)[i / kQ8Block];
      return F16ToF32(b.d) * b.q[i % kQ8Block];
    }
    case DType::kQ4_0: {
      const BlockQ4_0& b = static_cast<const BlockQ4_0*>(base)[i / kQ4Block];
      return F16ToF32(b.d) * static_cast<float>(Q4Code(b, static_cast<int>(i % kQ4Block)));
    }
    default: return static_cast<const float*>(base)[i];
  }
}

void PackB(DType dtype, const void* w, int64_t ldw, int nr, int64_t kc, float* bpack) {
  for (int j = 0; j < kNr; ++j) {
    for (int64_t k = 0; k < kc; ++k) bpack[k * kNr + j] = j < nr ? Load(dtype, w, j * ldw + k) : 0.f;
  }
}

void PackA(const float* a, int64_t lda, int mr, int64_t kc, float* apack) {
  for (int64_t k = 0; k < kc; ++k)
    for (int r = 0; r < kMr; ++r) apack[k * kMr + r] = r < mr ? a[r * lda + k] : 0.f;
}

void Micro(int64_t kc, const float* apack, const float* bpack, float* c, int64_t ldc, bool add) {
  float acc[kMr][kNr] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* b = bpack + k * kNr;
    for (int r = 0; r < kMr; ++r) {
      const float av = apack[k * kMr + r];
      for (int j = 0; j < kNr; ++j) acc[r][j] += av * b[j];
    }
  }
  for (int r = 0; r < kMr; ++r)
    for (int j = 0; j < kNr; ++j) c[r * ldc + j] = add ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

void Rows(DType dtype, const float* x, int64_t ldx, int nx, const void* w, int64_t ldw, int nw, int64_t k,
          float* out) {
  for (int j = 0; j < nw; ++j) {
    float acc[kRowsXFloat] = {};
    for (int64_t i = 0; i < k; ++i) {
      const float wv = Load(dtype, w, j * ldw + i);
      for (int r = 0; r < nx; ++r) acc[r] += x[r * ldx + i] * wv;
    }
    for (int r = 0; r < nx; ++r) out[r * kRowsW + j] = acc[r];
  }
}

// The scalar rows read activations in their natural order.
const float* RowsInput(DType, const float* x, int64_t, int64_t, std::vector<float>*) { return x; }

void RowsInt8(DType dtype, const QuantisedRows& x, int nx, const void* w, int64_t ldw, int nw, float* out) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t row_bytes = StorageBytes(dtype, ldw);
  for (int j = 0; j < nw; ++j) {
    for (int r = 0; r < nx; ++r) {
      float acc = 0.f;
      for (int64_t b = 0; b < x.blocks; ++b) {
        const int8_t* xq = x.q + (r * x.blocks + b) * 32;
        int32_t dot = 0;
        float dw;
        if (dtype == DType::kQ4G128x8) {
          const BlockQ4G128x8& blk = reinterpret_cast<const BlockQ4G128x8*>(wb)[b / 4];
          for (int i = 0; i < 32; ++i) dot += Q4G128Code(blk, j, static_cast<int>(b % 4) * 32 + i) * xq[i];
          // Σ(d·c + m)·x over the quarter: d·Σc·x + m·Σx, with x = dx·q.
          const float dx = x.d[r * x.blocks + b];
          acc += F16ToF32(blk.d[j]) * dx * static_cast<float>(dot) + blk.m[j] * x.ds[r * x.blocks + b];
          continue;
        }
        if (dtype == DType::kQ4_0x8) {
          const BlockQ4_0x8& blk = reinterpret_cast<const BlockQ4_0x8*>(wb)[b];
          for (int i = 0; i < 32; ++i) dot += Q4x8Code(blk, j, i) * xq[i];
          dw = F16ToF32(blk.d[j]);
        } else if (dtype == DType::kQ4_0) {
          const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(wb + j * row_bytes)[b];
          for (int i = 0; i < 32; ++i) dot += Q4Code(blk, i) * xq[i];
          dw = F16ToF32(blk.d);
        } else {
          const BlockQ8_0& blk = reinterpret_cast<const BlockQ8_0*>(wb + j * row_bytes)[b];
          for (int i = 0; i < 32; ++i) dot += blk.q[i] * xq[i];
          dw = F16ToF32(blk.d);
        }
        acc += dw * x.d[r * x.blocks + b] * static_cast<float>(dot);
      }
      out[r * kRowsW + j] = acc;
    }
  }
}

void Quantise(const float* x, int64_t blocks, int8_t* q, float* d, float* ds) {
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      q[b * 32 + i] = static_cast<int8_t>(std::nearbyint(xb[i] * inv));
      sum += q[b * 32 + i];
    }
    d[b] = amax / 127.f;
    ds[b] = d[b] * static_cast<float>(sum);
  }
}

void WidenX8(DType dtype, const void* blocks, int64_t n, float* out, int64_t ldo) {
  if (dtype == DType::kQ4G128x8) {
    const auto* blk = static_cast<const BlockQ4G128x8*>(blocks);
    for (int j = 0; j < 8; ++j)
      for (int64_t g = 0; g < n / kG128; ++g) {
        const float d = F16ToF32(blk[g].d[j]), m = blk[g].m[j];
        for (int i = 0; i < kG128; ++i) out[j * ldo + g * kG128 + i] = d * static_cast<float>(Q4G128Code(blk[g], j, i)) + m;
      }
    return;
  }
  const int64_t nb = n / 32;
  const auto* blk = static_cast<const BlockQ4_0x8*>(blocks);
  for (int j = 0; j < 8; ++j)
    for (int64_t b = 0; b < nb; ++b) {
      const float d = F16ToF32(blk[b].d[j]);
      for (int i = 0; i < 32; ++i) out[j * ldo + b * 32 + i] = d * static_cast<float>(Q4x8Code(blk[b], j, i));
    }
}

}  // namespace

QuantisedRows QuantiseRows(const Kernels& kern, const float* x, int64_t T, int64_t K, std::vector<int8_t>* q,
                           std::vector<float>* d, std::vector<float>* ds) {
  const int64_t blocks = K / 32;
  q->resize(static_cast<size_t>(T * K));
  d->resize(static_cast<size_t>(T * blocks));
  ds->resize(static_cast<size_t>(T * blocks));
  for (int64_t t = 0; t < T; ++t) {
    kern.quantise(x + t * K, blocks, q->data() + t * K, d->data() + t * blocks, ds->data() + t * blocks);
  }
  return {q->data(), d->data(), ds->data(), blocks};
}

const Kernels& ScalarKernels() {
  static const Kernels k{PackB, PackA, Micro, Rows, RowsInput, RowsInt8, WidenX8, Quantise};
  return k;
}

const Kernels& KernelsFor(Isa isa) {
#if defined(__x86_64__)
  if (isa >= Isa::kAvx2) return Avx2Kernels();
#endif
  return ScalarKernels();
}

}  // namespace ixc::gemm
