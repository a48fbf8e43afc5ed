// AVX2 + FMA + F16C attention kernels (see attention_kernels.h). Compiled with a target pragma so the rest of the
// binary stays baseline x86-64; attention.cc calls them only when ActiveIsa() >= Isa::kAvx2.
#include "kernels/attention_kernels.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include "kernels/target_avx2.h"

#include <algorithm>
#include <limits>

#include "core/dtype.h"

IXC_AVX2_BEGIN

namespace ixc::attention_internal {
namespace {

#define IXC_INLINE inline __attribute__((always_inline))

// 2^x for x <= 0, lane-wise; −inf and x < −127 give 0. Range reduction x = n + f with n = round(x) (exact, f in
// [−1/2, 1/2]), a degree-6 polynomial for 2^f (within 1e-8 relative, so about 1 ulp after rounding), and 2^n built in
// the exponent field. max() also maps NaN to −127.
IXC_INLINE __m256 Exp2(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-127.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(1.5453163e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3390863e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6180830e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5503570e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022651e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

IXC_INLINE __m256 Load(const float* p) { return _mm256_loadu_ps(p); }
IXC_INLINE __m256 Load(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

IXC_INLINE float HorizontalMax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

IXC_INLINE float HorizontalSum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// [Σ a0, Σ a1, ..., Σ a7]: eight dot products finished with 9 shuffling adds.
IXC_INLINE __m256 HorizontalSum8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Prefetches row j of pf (all its lines), if there is one.
IXC_INLINE void PrefetchRow(const PrefetchRows* pf, int64_t j) {
  if (!pf || j >= pf->n) return;
  const char* row = pf->rows + j * pf->stride_bytes;
  for (int64_t b = 0; b < pf->row_bytes; b += 64) _mm_prefetch(row + b, _MM_HINT_T1);
}

// ---- Transposed scores: R keys (broadcast) × NV vectors of 8 queries, 12 accumulators at most. ----

template <int R, int NV>
IXC_INLINE void ScoresTTile(const float* qt, int64_t ldq, const float* k, int64_t ks, int64_t D, float* s,
                            int64_t lds) {
  __m256 acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t d = 0; d < D; ++d) {
    __m256 q[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) q[v] = _mm256_loadu_ps(qt + d * ldq + 8 * v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(k + r * ks + d);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(b, q[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(s + r * lds + 8 * v, acc[r][v]);
}

template <int R>
void ScoresTRows(int nv, const float* qt, int64_t ldq, const float* k, int64_t ks, int64_t D, float* s,
                 int64_t lds) {
  switch (nv) {
    case 3: return ScoresTTile<R, 3>(qt, ldq, k, ks, D, s, lds);
    case 2: return ScoresTTile<R, 2>(qt, ldq, k, ks, D, s, lds);
    default: return ScoresTTile<R, 1>(qt, ldq, k, ks, D, s, lds);
  }
}

void ScoresT(const float* qt, int64_t ldq, int64_t mpad, const float* k, int64_t ks, int64_t nb, int64_t D, float* s,
             int64_t lds, const PrefetchRows& prefetch) {
  const int64_t nvec = mpad / 8;
  const PrefetchRows* pf = prefetch.n > 0 ? &prefetch : nullptr;  // issued by the first pass only
  for (int64_t v0 = 0; v0 < nvec; v0 += 3, pf = nullptr) {
    const int nv = static_cast<int>(std::min<int64_t>(3, nvec - v0));
    const float* q = qt + 8 * v0;
    float* sv = s + 8 * v0;
    int64_t j = 0;
    for (; j + 4 <= nb; j += 4) {
      for (int c = 0; c < 4; ++c) PrefetchRow(pf, j + c);
      ScoresTRows<4>(nv, q, ldq, k + j * ks, ks, D, sv + j * lds, lds);
    }
    for (int64_t r = j; pf && r < pf->n; ++r) PrefetchRow(pf, r);
    switch (nb - j) {
      case 3: ScoresTRows<3>(nv, q, ldq, k + j * ks, ks, D, sv + j * lds, lds); break;
      case 2: ScoresTRows<2>(nv, q, ldq, k + j * ks, ks, D, sv + j * lds, lds); break;
      case 1: ScoresTRows<1>(nv, q, ldq, k + j * ks, ks, D, sv + j * lds, lds); break;
      default: break;
    }
  }
}

// ---- Row scores: NQ queries × NK keys (NQ·NK <= 12) as dot products along d, reduced 8 at a time. ----

template <int NQ, int NK, class KT>
IXC_INLINE void ScoresTile(const float* qs, int64_t ldq, const KT* k, int64_t ks, int64_t dp, float* s, int64_t lds) {
  static_assert(NQ * NK <= 16);
  __m256 acc[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t d = 0; d < dp; d += 8) {
    __m256 kv[NK];
#pragma GCC unroll 16
    for (int c = 0; c < NK; ++c) kv[c] = Load(k + c * ks + d);
#pragma GCC unroll 16
    for (int r = 0; r < NQ; ++r) {
      __m256 q = _mm256_loadu_ps(qs + r * ldq + d);
      if constexpr (NK > 1) __asm__("" : "+x"(q));  // one load for NK uses, not one folded into each FMA
#pragma GCC unroll 16
      for (int c = 0; c < NK; ++c) acc[r * NK + c] = _mm256_fmadd_ps(q, kv[c], acc[r * NK + c]);
    }
  }
  alignas(32) float sums[16];
  _mm256_store_ps(sums, HorizontalSum8(acc));
  if constexpr (NQ * NK > 8) _mm256_store_ps(sums + 8, HorizontalSum8(acc + 8));
#pragma GCC unroll 16
  for (int r = 0; r < NQ; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < NK; ++c) s[r * lds + c] = sums[r * NK + c];
}

template <int NQ, class KT>
void ScoresQueries(const float* qs, int64_t ldq, const KT* k, int64_t ks, int64_t nb, int64_t dp, float* s,
                   int64_t lds, const PrefetchRows* pf) {
  // Keys per tile: as many as fit 12 accumulators and the key and query registers.
  constexpr int NK = NQ == 8 ? 1 : NQ == 4 ? 3 : NQ == 2 ? 4 : 8;
  int64_t j = 0;
  for (; j + NK <= nb; j += NK) {
    for (int c = 0; c < NK; ++c) PrefetchRow(pf, j + c);
    ScoresTile<NQ, NK>(qs, ldq, k + j * ks, ks, dp, s + j, lds);
  }
  for (; j < nb; ++j) {
    PrefetchRow(pf, j);
    ScoresTile<NQ, 1>(qs, ldq, k + j * ks, ks, dp, s + j, lds);
  }
  if (pf) {
    for (; j < pf->n; ++j) PrefetchRow(pf, j);  // a longer block ahead
  }
}

template <class KT>
void Scores(const float* qs, int64_t ldq, int64_t m, const KT* k, int64_t ks, int64_t nb, int64_t dp, float* s,
            int64_t lds, const PrefetchRows& prefetch) {
  const PrefetchRows* pf = prefetch.n > 0 ? &prefetch : nullptr;  // issued by the first pass only
  int64_t i = 0;
  for (; i + 8 <= m; i += 8, pf = nullptr) ScoresQueries<8>(qs + i * ldq, ldq, k, ks, nb, dp, s + i * lds, lds, pf);
  if (i + 4 <= m) {
    ScoresQueries<4>(qs + i * ldq, ldq, k, ks, nb, dp, s + i * lds, lds, pf);
    i += 4;
    pf = nullptr;
  }
  if (i + 2 <= m) {
    ScoresQueries<2>(qs + i * ldq, ldq, k, ks, nb, dp, s + i * lds, lds, pf);
    i += 2;
    pf = nullptr;
  }
  if (i < m) ScoresQueries<1>(qs + i * ldq, ldq, k, ks, nb, dp, s + i * lds, lds, pf);
}

// ---- Online softmax steps. ----

void SoftmaxT(float* s, int64_t lds, int64_t nb, int64_t mpad, const int32_t* limit, float* m, float* l,
              float* alpha) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < mpad; i += 8) {
    __m256 mx = ninf;
    if (limit) {
      // Key j is hidden from lane i when j > limit[i]: set its score to −inf once, here.
      const __m256i lim = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(limit + i));
      for (int64_t j = 0; j < nb; ++j) {
        const __m256 hide = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(j)), lim));
        const __m256 x = _mm256_blendv_ps(_mm256_loadu_ps(s + j * lds + i), ninf, hide);
        _mm256_storeu_ps(s + j * lds + i, x);
        mx = _mm256_max_ps(mx, x);
      }
    } else {
      __m256 mx1 = ninf;
      int64_t j = 0;
      for (; j + 2 <= nb; j += 2) {
        mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + j * lds + i));
        mx1 = _mm256_max_ps(mx1, _mm256_loadu_ps(s + (j + 1) * lds + i));
      }
      if (j < nb) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + j * lds + i));
      mx = _mm256_max_ps(mx, mx1);
    }
    const __m256 m_old = _mm256_loadu_ps(m + i);
    const __m256 m_new = _mm256_max_ps(m_old, mx);
    // Lanes that have seen no visible key yet subtract 0 instead of −inf, so every term stays 0, never NaN.
    const __m256 m_use = _mm256_blendv_ps(m_new, _mm256_setzero_ps(), _mm256_cmp_ps(m_new, ninf, _CMP_EQ_OQ));
    const __m256 a = Exp2(_mm256_sub_ps(m_old, m_use));
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 2 <= nb; j += 2) {
      const __m256 p0 = Exp2(_mm256_sub_ps(_mm256_loadu_ps(s + j * lds + i), m_use));
      const __m256 p1 = Exp2(_mm256_sub_ps(_mm256_loadu_ps(s + (j + 1) * lds + i), m_use));
      _mm256_storeu_ps(s + j * lds + i, p0);
      _mm256_storeu_ps(s + (j + 1) * lds + i, p1);
      sum0 = _mm256_add_ps(sum0, p0);
      sum1 = _mm256_add_ps(sum1, p1);
    }
    if (j < nb) {
      const __m256 p0 = Exp2(_mm256_sub_ps(_mm256_loadu_ps(s + j * lds + i), m_use));
      _mm256_storeu_ps(s + j * lds + i, p0);
      sum0 = _mm256_add_ps(sum0, p0);
    }
    _mm256_storeu_ps(l + i, _mm256_fmadd_ps(_mm256_loadu_ps(l + i), a, _mm256_add_ps(sum0, sum1)));
    _mm256_storeu_ps(m + i, m_new);
    _mm256_storeu_ps(alpha + i, a);
  }
}

void SoftmaxRows(float* s, int64_t lds, int64_t nb, int64_t m, const int32_t* limit, float* mx, float* l,
                 float* alpha) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const int64_t nbp = (nb + 7) / 8 * 8;
  for (int64_t i = 0; i < m; ++i) {
    float* si = s + i * lds;
    const int64_t visible = limit ? std::clamp<int64_t>(int64_t{limit[i]} + 1, 0, nb) : nb;
    std::fill(si + visible, si + nbp, -kInf);  // hidden keys and the pad to 8
    __m256 vmax = _mm256_set1_ps(-kInf);
    for (int64_t j = 0; j < nbp; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(si + j));
    const float m_new = std::max(mx[i], HorizontalMax(vmax));
    const float m_use = m_new == -kInf ? 0.f : m_new;
    const __m256 mu = _mm256_set1_ps(m_use);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < nbp; j += 8) {
      const __m256 p = Exp2(_mm256_sub_ps(_mm256_loadu_ps(si + j), mu));
      _mm256_storeu_ps(si + j, p);
      sum = _mm256_add_ps(sum, p);
    }
    const float a = _mm256_cvtss_f32(Exp2(_mm256_set1_ps(mx[i] - m_use)));
    l[i] = l[i] * a + HorizontalSum(sum);
    mx[i] = m_new;
    alpha[i] = a;
  }
}

// ---- P·V: R queries (broadcast p) × DV vectors of 8 dims, 12 accumulators at most. ----

template <int R, int DV, class VT>
IXC_INLINE void PvTile(const float* p, int64_t psi, int64_t psj, const float* alpha, const VT* v, int64_t vs,
                       int64_t nb, float* o, int64_t ldo, const PrefetchRows* pf) {
  __m256 acc[R][DV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m256 a = _mm256_broadcast_ss(alpha + r);
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) acc[r][c] = _mm256_mul_ps(_mm256_loadu_ps(o + r * ldo + 8 * c), a);
  }
  for (int64_t j = 0; j < nb; ++j) {
    PrefetchRow(pf, j);
    __m256 vv[DV];
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) vv[c] = Load(v + j * vs + 8 * c);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(p + r * psi + j * psj);
#pragma GCC unroll 16
      for (int c = 0; c < DV; ++c) acc[r][c] = _mm256_fmadd_ps(b, vv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < DV; ++c) _mm256_storeu_ps(o + r * ldo + 8 * c, acc[r][c]);
}

template <int R, class VT>
void PvQueries(int dv, const float* p, int64_t psi, int64_t psj, const float* alpha, const VT* v, int64_t vs,
               int64_t nb, float* o, int64_t ldo, const PrefetchRows* pf) {
  switch (dv) {
    case 4:
      if constexpr (R <= 3) {
        return PvTile<R, 4>(p, psi, psj, alpha, v, vs, nb, o, ldo, pf);
      } else {  // 16 accumulators do not fit: two halves
        PvTile<R, 2>(p, psi, psj, alpha, v, vs, nb, o, ldo, pf);
        return PvTile<R, 2>(p, psi, psj, alpha, v + 16, vs, nb, o + 16, ldo, nullptr);
      }
    case 3: return PvTile<R, 3>(p, psi, psj, alpha, v, vs, nb, o, ldo, pf);
    case 2: return PvTile<R, 2>(p, psi, psj, alpha, v, vs, nb, o, ldo, pf);
    default: return PvTile<R, 1>(p, psi, psj, alpha, v, vs, nb, o, ldo, pf);
  }
}

template <class VT>
void Pv(const float* p, int64_t psi, int64_t psj, const float* alpha, int64_t m, const VT* v, int64_t vs, int64_t nb,
        int64_t dp, float* o, int64_t ldo, const PrefetchRows& prefetch) {
  const PrefetchRows* pf = prefetch.n > 0 ? &prefetch : nullptr;  // issued by the first pass only
  // 3 queries × 32 dims when the queries are many (both 64 and 128 dims split evenly); 4 × 24 for one 4-head group.
  const int64_t rq = m % 4 == 0 && m <= 8 ? 4 : 3, dvq = rq == 4 ? 3 : 4;
  const int64_t nvec = dp / 8;
  // Dims outer: one slice of the value block stays in L1 while every query group passes over it.
  for (int64_t c = 0; c < nvec; c += dvq) {
    const int dv = static_cast<int>(std::min(dvq, nvec - c));
    const VT* vc = v + 8 * c;
    for (int64_t i = 0; i < m; i += rq) {
      const int64_t r = std::min(rq, m - i);
      const float* pi = p + i * psi;
      float* oi = o + i * ldo + 8 * c;
      switch (r) {
        case 4: PvQueries<4>(dv, pi, psi, psj, alpha + i, vc, vs, nb, oi, ldo, pf); break;
        case 3: PvQueries<3>(dv, pi, psi, psj, alpha + i, vc, vs, nb, oi, ldo, pf); break;
        case 2: PvQueries<2>(dv, pi, psi, psj, alpha + i, vc, vs, nb, oi, ldo, pf); break;
        default: PvQueries<1>(dv, pi, psi, psj, alpha + i, vc, vs, nb, oi, ldo, pf); break;
      }
      pf = nullptr;
    }
  }
}

void WidenF16(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, Load(src + i));
  for (; i < n; ++i) dst[i] = F16ToF32(src[i]);
}

void WidenQ8(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(blocks[b].d));
    for (int i = 0; i < 4; ++i) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blocks[b].q + 8 * i));
      _mm256_storeu_ps(dst + b * kQ8Block + 8 * i, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
    }
  }
}

void PackRows(const void* src, int64_t stride, DType dtype, int64_t nb, int64_t D, int64_t dp, float* dst) {
  const bool f16 = dtype == DType::kF16;
  for (int64_t j = 0; j < nb; ++j) {
    float* out = dst + j * dp;
    int64_t d = 0;
    if (dtype == DType::kQ8_0) {
      WidenQ8(static_cast<const uint8_t*>(src) + StorageBytes(dtype, j * stride), out, D);
      d = D;
    } else if (f16) {
      const uint16_t* row = static_cast<const uint16_t*>(src) + j * stride;
      for (; d + 8 <= D; d += 8) _mm256_storeu_ps(out + d, Load(row + d));
      for (; d < D; ++d) out[d] = F16ToF32(row[d]);
    } else {
      const float* row = static_cast<const float*>(src) + j * stride;
      for (; d + 8 <= D; d += 8) _mm256_storeu_ps(out + d, _mm256_loadu_ps(row + d));
      for (; d < D; ++d) out[d] = row[d];
    }
    for (; d < dp; ++d) out[d] = 0.f;
  }
}

#undef IXC_INLINE

}  // namespace
}  // namespace ixc::attention_internal

IXC_AVX2_END

namespace ixc::attention_internal {

const AttentionKernels* Avx2AttentionKernels() {
  static const AttentionKernels kernels = {ScoresT,   Scores<float>, Scores<uint16_t>, SoftmaxT, SoftmaxRows,
                                           Pv<float>, Pv<uint16_t>,  WidenF16,         PackRows, WidenQ8};
  return &kernels;
}

}  // namespace ixc::attention_internal

#else  // !__x86_64__

namespace ixc::attention_internal {
const AttentionKernels* Avx2AttentionKernels() { return nullptr; }
}  // namespace ixc::attention_internal

#endif
