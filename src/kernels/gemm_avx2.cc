// The AVX2 + FMA + F16C kernel set (Haswell, Zen and later). Compiled for baseline x86-64 like the rest of the
// project; the target pragma enables the instructions for these functions only, and MatMul calls them only when
// the CPU has them (kernels/cpu.h).
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

#include "kernels/gemm_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace ixc::gemm {

namespace {

// 8 stored values from p (elements of dtype) widened to f32.
inline __m256 Load8(DType dtype, const void* p) {
  if (dtype == DType::kBF16) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
  if (dtype == DType::kF16) return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p)));
  return _mm256_loadu_ps(static_cast<const float*>(p));
}

inline float Load1(DType dtype, const void* p, int64_t i) {
  if (dtype == DType::kBF16) return Bf16ToF32(static_cast<const uint16_t*>(p)[i]);
  if (dtype == DType::kF16) return F16ToF32(static_cast<const uint16_t*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

inline const void* Offset(DType dtype, const void* p, int64_t elements) {
  return static_cast<const uint8_t*>(p) + elements * (dtype == DType::kF32 ? 4 : 2);
}

// Rows r[0..8) become columns: r[k] = (r0[k], …, r7[k]).
inline void Transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

void PackB(DType dtype, const void* w, int64_t ldw, int nr, int64_t kc, float* bpack) {
  int64_t k = 0;
  if (nr == kNr) {
    // 8×8 blocks: 8 weight rows × 8 k, widened and transposed in registers.
    for (; k + 8 <= kc; k += 8) {
      for (int half = 0; half < 2; ++half) {
        __m256 r[8];
        for (int j = 0; j < 8; ++j) r[j] = Load8(dtype, Offset(dtype, w, (half * 8 + j) * ldw + k));
        Transpose8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(bpack + (k + i) * kNr + half * 8, r[i]);
      }
    }
  }
  for (; k < kc; ++k)
    for (int j = 0; j < kNr; ++j) bpack[k * kNr + j] = j < nr ? Load1(dtype, w, j * ldw + k) : 0.f;
}

// The 6×16 tile lives in 12 named registers: with an array GCC stores the accumulators on every iteration.
void Micro6(int64_t kc, const float* a, int64_t lda, const float* bpack, float* c, int64_t ldc, bool add) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda, *a4 = a + 4 * lda, *a5 = a + 5 * lda;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(bpack + k * kNr), b1 = _mm256_loadu_ps(bpack + k * kNr + 8);
    __m256 av = _mm256_broadcast_ss(a0 + k);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a1 + k);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a2 + k);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a3 + k);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a4 + k);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a5 + k);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  auto store = [&](float* cr, __m256 lo, __m256 hi) __attribute__((target("avx2,fma"))) {
    if (add) {
      lo = _mm256_add_ps(_mm256_loadu_ps(cr), lo);
      hi = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi);
    }
    _mm256_storeu_ps(cr, lo);
    _mm256_storeu_ps(cr + 8, hi);
  };
  store(c, c00, c01);
  store(c + ldc, c10, c11);
  store(c + 2 * ldc, c20, c21);
  store(c + 3 * ldc, c30, c31);
  store(c + 4 * ldc, c40, c41);
  store(c + 5 * ldc, c50, c51);
}

// Fewer than 6 rows: the rows are copied into a zero-padded block so the one 6-row kernel serves every tile.
void Micro(int64_t kc, const float* a, int64_t lda, int mr, const float* bpack, float* c, int64_t ldc, bool add) {
  if (mr == kMr) return Micro6(kc, a, lda, bpack, c, ldc, add);
  alignas(32) float pad[kMr * 256];
  alignas(32) float tile[kMr * kNr];
  for (int64_t k0 = 0; k0 < kc; k0 += 256) {
    const int64_t n = kc - k0 < 256 ? kc - k0 : 256;
    for (int r = 0; r < kMr; ++r)
      for (int64_t k = 0; k < n; ++k) pad[r * 256 + k] = r < mr ? a[r * lda + k0 + k] : 0.f;
    Micro6(n, pad, 256, bpack + k0 * kNr, tile, kNr, k0 > 0);
  }
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < kNr; ++j) c[r * ldc + j] = add ? c[r * ldc + j] + tile[r * kNr + j] : tile[r * kNr + j];
}

inline float HorizontalSum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// NX activation rows × NW weight rows, dot products along k: each weight row is one sequential stream.
template <int NX, int NW>
void RowsT(DType dtype, const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t k, float* out) {
  __m256 acc[NX][NW];
  for (int r = 0; r < NX; ++r)
    for (int j = 0; j < NW; ++j) acc[r][j] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    __m256 wv[NW];
    for (int j = 0; j < NW; ++j) wv[j] = Load8(dtype, Offset(dtype, w, j * ldw + i));
    for (int r = 0; r < NX; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * ldx + i);
      for (int j = 0; j < NW; ++j) acc[r][j] = _mm256_fmadd_ps(xv, wv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < NX; ++r) {
    for (int j = 0; j < NW; ++j) {
      float s = HorizontalSum(acc[r][j]);
      for (int64_t t = i; t < k; ++t) s += x[r * ldx + t] * Load1(dtype, w, j * ldw + t);
      out[r * kRowsW + j] = s;
    }
  }
}

template <int NX>
void RowsNx(DType dtype, const float* x, int64_t ldx, const void* w, int64_t ldw, int nw, int64_t k, float* out) {
  switch (nw) {
    case 4: return RowsT<NX, 4>(dtype, x, ldx, w, ldw, k, out);
    case 3: return RowsT<NX, 3>(dtype, x, ldx, w, ldw, k, out);
    case 2: return RowsT<NX, 2>(dtype, x, ldx, w, ldw, k, out);
    default: return RowsT<NX, 1>(dtype, x, ldx, w, ldw, k, out);
  }
}

void Rows(DType dtype, const float* x, int64_t ldx, int nx, const void* w, int64_t ldw, int nw, int64_t k,
          float* out) {
  switch (nx) {
    case 3: return RowsNx<3>(dtype, x, ldx, w, ldw, nw, k, out);
    case 2: return RowsNx<2>(dtype, x, ldx, w, ldw, nw, k, out);
    default: return RowsNx<1>(dtype, x, ldx, w, ldw, nw, k, out);
  }
}

}  // namespace

const Kernels& Avx2Kernels() {
  static const Kernels k{PackB, Micro, Rows};
  return k;
}

}  // namespace ixc::gemm

#pragma GCC pop_options

#endif  // __x86_64__
