#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <vector>

#include "kernels/kernels.h"

namespace ixc {

namespace {

// Rows of W converted to f32 per block: 16 rows × K floats stay in L2 while every x row streams past them.
constexpr int64_t kRowBlock = 16;

inline float Dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// x · w for bf16 w, widened in registers: for few rows (decoding) this streams the weights once instead of
// converting them into a buffer first.
inline float DotBf16(const float* x, const uint16_t* w, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(w[i]) << 16;
    float wf;
    std::memcpy(&wf, &bits, 4);
    s += x[i] * wf;
  }
  return s;
}

// The same for f16 weights (dequantised AWQ, f16 checkpoints). F16C widens 8 halves per instruction; without it
// the portable conversion is used (correct, slower).
inline float DotF16(const float* x, const uint16_t* w, int64_t n) {
  int64_t i = 0;
  float s = 0.f;
#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), w0, acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), w1, acc1);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(acc0, acc1));
  for (float l : lanes) s += l;
#endif
  for (; i < n; ++i) s += x[i] * F16ToF32(w[i]);
  return s;
}

// Up to this many rows the weights are read in place; above it, each block is widened once and reused.
constexpr int64_t kFusedMaxRows = 4;

}  // namespace

void MatMul(const float* x, int64_t T, int64_t K, const TensorView& w, const float* bias, float* y, bool accumulate,
            ThreadPool* pool) {
  const int64_t N = w.dim(0);
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  const bool fused = (w.dtype == DType::kBF16 || w.dtype == DType::kF16) && T <= kFusedMaxRows;
  auto dot = w.dtype == DType::kBF16 ? DotBf16 : DotF16;
  auto work = [&](int64_t b0, int64_t b1, int) {
    std::vector<float> wf;
    if (fused) {
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t n0 = blk * kRowBlock, n1 = std::min(N, n0 + kRowBlock);
        for (int64_t n = n0; n < n1; ++n) {
          const auto* wr = reinterpret_cast<const uint16_t*>(w.row(n));
          for (int64_t t = 0; t < T; ++t) {
            float v = dot(x + t * K, wr, K);
            if (bias) v += bias[n];
            y[t * N + n] = accumulate ? y[t * N + n] + v : v;
          }
        }
      }
      return;
    }
    if (w.dtype != DType::kF32) wf.resize(kRowBlock * K);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t n0 = blk * kRowBlock, n1 = std::min(N, n0 + kRowBlock);
      const float* wrows;
      if (w.dtype == DType::kF32) {
        wrows = static_cast<const float*>(w.data) + n0 * K;
      } else {
        ConvertToF32(w.dtype, w.row(n0), wf.data(), (n1 - n0) * K);
        wrows = wf.data();
      }
      for (int64_t t = 0; t < T; ++t) {
        const float* xr = x + t * K;
        float* yr = y + t * N;
        for (int64_t n = n0; n < n1; ++n) {
          float s = Dot(xr, wrows + (n - n0) * K, K);
          if (bias) s += bias[n];
          yr[n] = accumulate ? yr[n] + s : s;
        }
      }
    }
  };
  if (pool && blocks > 1 && T * N * K > (1 << 15)) {
    pool->ParallelFor(blocks, work);
  } else {
    work(0, blocks, 0);
  }
}

void MatMulRef(const float* x, int64_t T, int64_t K, const TensorView& w, const float* bias, float* y, bool accumulate) {
  const int64_t N = w.dim(0);
  std::vector<float> row(K);
  for (int64_t n = 0; n < N; ++n) {
    ConvertToF32(w.dtype, w.row(n), row.data(), K);
    for (int64_t t = 0; t < T; ++t) {
      float s = 0.f;
      for (int64_t k = 0; k < K; ++k) s += x[t * K + k] * row[k];
      if (bias) s += bias[n];
      y[t * N + n] = accumulate ? y[t * N + n] + s : s;
    }
  }
}

void RmsNorm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * D;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < D; ++i) ss += xr[i] * xr[i];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
    for (int64_t i = 0; i < D; ++i) y[t * D + i] = w[i] * (xr[i] * r);
  }
}

void LayerNorm(const float* x, const float* w, const float* b, int64_t T, int64_t D, float eps, float* y) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * D;
    float mean = 0.f;
#pragma omp simd reduction(+ : mean)
    for (int64_t i = 0; i < D; ++i) mean += xr[i];
    mean /= static_cast<float>(D);
    float var = 0.f;
#pragma omp simd reduction(+ : var)
    for (int64_t i = 0; i < D; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<float>(D);
    const float r = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < D; ++i) y[t * D + i] = (xr[i] - mean) * r * w[i] + b[i];
  }
}

void Softmax(float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    s += x[i];
  }
  const float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float Silu(float z) { return z / (1.0f + std::exp(-z)); }
float GeluErf(float z) { return 0.5f * z * (1.0f + std::erf(z * 0.70710678118654752f)); }
float QuickGelu(float z) { return z / (1.0f + std::exp(-1.702f * z)); }

void RotateHalf(float* x, int64_t d, const float* cos, const float* sin) {
  const int64_t h = d / 2;
  for (int64_t i = 0; i < h; ++i) {
    const float a = x[i], b = x[i + h];
    x[i] = a * cos[i] - b * sin[i];
    x[i + h] = b * cos[i] + a * sin[i];
  }
}

void Attention(const float* q, int64_t d, std::span<const KvSegment> segments, float scale, float* out, float* scores) {
  int64_t n = 0;
  for (const auto& s : segments) {
    for (int64_t i = 0; i < s.n; ++i) scores[n++] = Dot(q, s.k + i * s.stride, d) * scale;
  }
  Softmax(scores, n);
  std::fill(out, out + d, 0.f);
  n = 0;
  for (const auto& s : segments) {
    for (int64_t i = 0; i < s.n; ++i) {
      const float p = scores[n++];
      const float* v = s.v + i * s.stride;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) out[j] += p * v[j];
    }
  }
}

}  // namespace ixc
