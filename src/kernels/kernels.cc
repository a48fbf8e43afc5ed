#include <algorithm>
#include <cmath>
#include <cstring>

#include <vector>

#include "kernels/kernels.h"

namespace ixc {

namespace {

inline float Dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void MatMulRef(const float* x, int64_t T, int64_t K, const TensorView& w, const float* bias, float* y, bool accumulate) {
  const int64_t N = w.dim(0);
  std::vector<float> row(K);
  for (int64_t n = 0; n < N; ++n) {
    RowToF32(w, n, row.data());
    for (int64_t t = 0; t < T; ++t) {
      float s = 0.f;
      for (int64_t k = 0; k < K; ++k) s += x[t * K + k] * row[k];
      if (bias) s += bias[n];
      y[t * N + n] = accumulate ? y[t * N + n] + s : s;
    }
  }
}

void RmsNormRef(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * D;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < D; ++i) ss += xr[i] * xr[i];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
    for (int64_t i = 0; i < D; ++i) y[t * D + i] = w[i] * (xr[i] * r);
  }
}

void LayerNormRef(const float* x, const float* w, const float* b, int64_t T, int64_t D, float eps, float* y) {
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
