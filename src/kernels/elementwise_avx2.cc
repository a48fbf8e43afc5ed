// AVX2 versions of the row and elementwise steps (see elementwise.cc for the portable twins and the threading).
#if defined(__x86_64__)

#include <cmath>

#include "core/dtype.h"

#include "kernels/elementwise_kernels.h"
#include "kernels/vec_avx2.h"

IXC_AVX2_BEGIN

namespace ixc::elementwise {

namespace {

using avx2::Exp;
using avx2::HorizontalSum;

// silu(a)·b = a·b / (1 + e^-a).
void SiluMul(const float* a, const float* b, float* y, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 av = _mm256_loadu_ps(a + i);
    const __m256 e = Exp(_mm256_sub_ps(zero, av));
    _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_mul_ps(av, _mm256_loadu_ps(b + i)), _mm256_add_ps(one, e)));
  }
  for (; i < n; ++i) y[i] = a[i] * b[i] / (1.f + std::exp(-a[i]));
}

void QuickGelu(float* x, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f), k = _mm256_set1_ps(-1.702f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, Exp(_mm256_mul_ps(k, v)))));
  }
  for (; i < n; ++i) x[i] = x[i] / (1.f + std::exp(-1.702f * x[i]));
}

void Add(float* x, const float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) x[i] += y[i];
}

float SumSquares(const float* x, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    s0 = _mm256_fmadd_ps(a, a, s0);
    s1 = _mm256_fmadd_ps(b, b, s1);
  }
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

void RmsNormRow(const float* x, const float* w, int64_t d, float eps, float* y) {
  const float r = 1.0f / std::sqrt(SumSquares(x, d) / static_cast<float>(d) + eps);
  const __m256 rv = _mm256_set1_ps(r);
  int64_t i = 0;
  for (; i + 8 <= d; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), rv)));
  for (; i < d; ++i) y[i] = w[i] * (x[i] * r);
}

void LayerNormRow(const float* x, const float* w, const float* b, int64_t d, float eps, float* y) {
  __m256 s = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
  float sum = HorizontalSum(s);
  for (; i < d; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(d);
  const __m256 mv = _mm256_set1_ps(mean);
  __m256 v = _mm256_setzero_ps();
  for (i = 0; i + 8 <= d; i += 8) {
    const __m256 c = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
    v = _mm256_fmadd_ps(c, c, v);
  }
  float var = HorizontalSum(v);
  for (; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float r = 1.0f / std::sqrt(var / static_cast<float>(d) + eps);
  const __m256 rv = _mm256_set1_ps(r);
  for (i = 0; i + 8 <= d; i += 8) {
    const __m256 c = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), rv);
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(c, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
  }
  for (; i < d; ++i) y[i] = (x[i] - mean) * r * w[i] + b[i];
}

void ToF16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = F32ToF16(x[i]);
}

void ToQ8_0(const float* x, void* blocks, int64_t n) {
  auto* out = static_cast<BlockQ8_0*>(blocks);
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    __m256 v[4];
    for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xb + 8 * i);
    const float d = avx2::AbsMax32(v) / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = F32ToF16(d);
    const __m256 scale = _mm256_set1_ps(id);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], scale));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q), avx2::PackInt8(q));
  }
}

}  // namespace

const Kernels& Avx2Kernels() {
  static const Kernels k{SiluMul, QuickGelu, Add, RmsNormRow, LayerNormRow, ToF16, ToQ8_0};
  return k;
}

}  // namespace ixc::elementwise

IXC_AVX2_END

#endif  // __x86_64__
