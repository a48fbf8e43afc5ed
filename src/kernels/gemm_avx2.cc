// The AVX2 + FMA + F16C kernel set (Haswell, Zen and later). Compiled for baseline x86-64 like the rest of the
// project; the target pragma enables the instructions for these functions only, and MatMul calls them only when
// the CPU has them (kernels/cpu.h).
#if defined(__x86_64__)

#include <immintrin.h>

#include "kernels/target_avx2.h"

#include <cstring>

#include "kernels/gemm_kernels.h"
#include "kernels/vec_avx2.h"

IXC_AVX2_BEGIN

namespace ixc::gemm {

namespace {

using avx2::HorizontalSum;

// Weight rows per pass for one activation row (measured: 8 streams Q4_0 at 43 G values/s on 2 Zen 3 cores, 4 at 39).
constexpr int kInt8RowsPerPass = 8;

// Values i..i+7 of the stored sequence at p (i a multiple of 8), widened to f32. Indices are flat across rows,
// which works for Q8_0 because rows are whole blocks.
inline __m256 Load8(DType dtype, const void* p, int64_t i) {
  if (dtype == DType::kBF16) {
    const auto* h = static_cast<const uint16_t*>(p) + i;
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  if (dtype == DType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
  }
  if (dtype == DType::kQ8_0) {
    const BlockQ8_0& b = static_cast<const BlockQ8_0*>(p)[i / kQ8Block];
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.q + i % kQ8Block)));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b.d)), _mm256_cvtepi32_ps(q));
  }
  if (dtype == DType::kQ4_0) {
    const BlockQ4_0& b = static_cast<const BlockQ4_0*>(p)[i / kQ4Block];
    const int j = static_cast<int>(i % kQ4Block);
    __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + (j & 15)));
    if (j >= 16) q = _mm_srli_epi16(q, 4);
    q = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(15)), _mm_set1_epi8(8));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b.d)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
  }
  return _mm256_loadu_ps(static_cast<const float*>(p) + i);
}

inline float Load1(DType dtype, const void* p, int64_t i) {
  if (dtype == DType::kBF16) return Bf16ToF32(static_cast<const uint16_t*>(p)[i]);
  if (dtype == DType::kF16) return F16ToF32(static_cast<const uint16_t*>(p)[i]);
  if (dtype == DType::kQ8_0) {
    const BlockQ8_0& b = static_cast<const BlockQ8_0*>(p)[i / kQ8Block];
    return F16ToF32(b.d) * b.q[i % kQ8Block];
  }
  if (dtype == DType::kQ4_0) {
    const BlockQ4_0& b = static_cast<const BlockQ4_0*>(p)[i / kQ4Block];
    return F16ToF32(b.d) * static_cast<float>(Q4Code(b, static_cast<int>(i % kQ4Block)));
  }
  return static_cast<const float*>(p)[i];
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
        for (int j = 0; j < 8; ++j) r[j] = Load8(dtype, w, (half * 8 + j) * ldw + k);
        Transpose8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(bpack + (k + i) * kNr + half * 8, r[i]);
      }
    }
  }
  for (; k < kc; ++k)
    for (int j = 0; j < kNr; ++j) bpack[k * kNr + j] = j < nr ? Load1(dtype, w, j * ldw + k) : 0.f;
}

// 8 k-steps of up to 6 rows at a time: the rows are loaded as vectors, transposed in registers and stored as
// 8 consecutive 6-float groups (each 8-float store runs 2 floats into the next group, which the next store
// overwrites; the last one into apack's slack).
void PackA(const float* a, int64_t lda, int mr, int64_t kc, float* apack) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = i < mr ? _mm256_loadu_ps(a + i * lda + k) : _mm256_setzero_ps();
    Transpose8(r);
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(apack + (k + i) * kMr, r[i]);
  }
  for (; k < kc; ++k)
    for (int i = 0; i < kMr; ++i) apack[k * kMr + i] = i < mr ? a[i * lda + k] : 0.f;
}

// The 6×16 tile lives in 12 named registers: with an array GCC stores the accumulators on every iteration.
void Micro(int64_t kc, const float* apack, const float* bpack, float* c, int64_t ldc, bool add) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(bpack + k * kNr), b1 = _mm256_loadu_ps(bpack + k * kNr + 8);
    const float* ak = apack + k * kMr;
    __m256 av = _mm256_broadcast_ss(ak);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(ak + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(ak + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(ak + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(ak + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(ak + 5);
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

enum Kind { kKindF32, kKindF16, kKindBf16 };

// 16 consecutive weights as two f32 vectors, and the matching 16 activations. bf16 is widened by interleaving
// with zeros, which works within 128-bit lanes: lo holds elements {0-3, 8-11}, hi {4-7, 12-15}; the activations
// are permuted the same way instead of the weights, once per product (RowsInput), shared by every weight row.
template <int K>
inline void Weights16(const void* w, int64_t i, __m256* lo, __m256* hi) {
  if constexpr (K == kKindBf16) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
    *lo = _mm256_castsi256_ps(_mm256_unpacklo_epi16(_mm256_setzero_si256(), v));
    *hi = _mm256_castsi256_ps(_mm256_unpackhi_epi16(_mm256_setzero_si256(), v));
  } else if constexpr (K == kKindF16) {
    const auto* h = static_cast<const uint16_t*>(w) + i;
    *lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
    *hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 8)));
  } else {
    *lo = _mm256_loadu_ps(static_cast<const float*>(w) + i);
    *hi = _mm256_loadu_ps(static_cast<const float*>(w) + i + 8);
  }
}

// For bf16 weights: each full 16-value block of every row as {0-3, 8-11, 4-7, 12-15}, the order Weights16 widens
// the weights in; the tail past the last full block stays in place (the scalar tail reads it).
const float* RowsInput(DType dtype, const float* x, int64_t T, int64_t K, std::vector<float>* scratch) {
  if (dtype != DType::kBF16) return x;
  scratch->resize(static_cast<size_t>(T * K));
  float* out = scratch->data();
  for (int64_t r = 0; r < T; ++r) {
    const float* xr = x + r * K;
    float* o = out + r * K;
    int64_t i = 0;
    for (; i + 16 <= K; i += 16) {
      const __m256 a = _mm256_loadu_ps(xr + i), b = _mm256_loadu_ps(xr + i + 8);
      _mm256_storeu_ps(o + i, _mm256_permute2f128_ps(a, b, 0x20));
      _mm256_storeu_ps(o + i + 8, _mm256_permute2f128_ps(a, b, 0x31));
    }
    for (; i < K; ++i) o[i] = xr[i];
  }
  return out;
}

inline void Activations16(const float* x, __m256* lo, __m256* hi) {
  *lo = _mm256_loadu_ps(x);
  *hi = _mm256_loadu_ps(x + 8);
}

// NX activation rows × NW weight rows, dot products along k over [i0, i1) (multiples of 16): each weight row is one
// sequential stream, read 32 bytes at a time. Eight bf16 rows at once keep enough loads in flight to use the memory
// bandwidth. The accumulators come from and go back to `state` (NX·NW vectors), so a product can be taken in
// k-slices without changing any lane's order of additions (the same bits as in one go).
//
// With several activation rows a pass holds fewer weight rows (kPassRows), too few streams to keep the memory busy:
// PF rows from `pf` on (the next pass's, at [i0, i1)) are prefetched alongside, a cache line per row every 64 bytes.
template <int K, int NX, int NW, int PF = 0>
void RowsStep(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t i0, int64_t i1, __m256* state,
              const uint8_t* pf = nullptr) {
  const size_t esize = K == kKindF32 ? 4 : 2;
  const auto* wb = static_cast<const uint8_t*>(w);
  __m256 acc[NX][NW];
  for (int r = 0; r < NX; ++r)
    for (int j = 0; j < NW; ++j) acc[r][j] = state[r * NW + j];
  for (int64_t i = i0; i < i1; i += 16) {
    if constexpr (PF > 0) {
      if ((i * esize) % 64 == 0) {
        for (int j = 0; j < PF; ++j) {
          _mm_prefetch(reinterpret_cast<const char*>(pf + j * ldw * esize + (i - i0) * esize), _MM_HINT_T0);
        }
      }
    }
    if constexpr (NX >= 4) {
      // Too many rows to hold their activations in registers beside the accumulators: each multiply-add reads
      // its activations from L1 instead.
      for (int j = 0; j < NW; ++j) {
        __m256 lo, hi;
        Weights16<K>(wb + j * ldw * esize, i, &lo, &hi);
        for (int r = 0; r < NX; ++r) {
          acc[r][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * ldx + i), lo, acc[r][j]);
          acc[r][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * ldx + i + 8), hi, acc[r][j]);
        }
      }
      continue;
    }
    __m256 xl[NX], xh[NX];
    for (int r = 0; r < NX; ++r) Activations16(x + r * ldx + i, &xl[r], &xh[r]);
    for (int j = 0; j < NW; ++j) {
      __m256 lo, hi;
      Weights16<K>(wb + j * ldw * esize, i, &lo, &hi);
      for (int r = 0; r < NX; ++r) {
        acc[r][j] = _mm256_fmadd_ps(xl[r], lo, acc[r][j]);
        acc[r][j] = _mm256_fmadd_ps(xh[r], hi, acc[r][j]);
      }
    }
  }
  for (int r = 0; r < NX; ++r)
    for (int j = 0; j < NW; ++j) state[r * NW + j] = acc[r][j];
}

// The sums of the accumulators, plus the scalar tail [k16, k).
template <int K, int NX, int NW>
void RowsFinish(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t k16, int64_t k, DType dtype,
                const __m256* state, float* out) {
  const size_t esize = K == kKindF32 ? 4 : 2;
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int r = 0; r < NX; ++r) {
    for (int j = 0; j < NW; ++j) {
      float s = HorizontalSum(state[r * NW + j]);
      for (int64_t t = k16; t < k; ++t) s += x[r * ldx + t] * Load1(dtype, wb + j * ldw * esize, t);
      out[r * kRowsW + j] = s;
    }
  }
}

template <int K, int NX, int NW>
void RowsT(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t k, DType dtype, float* out) {
  __m256 state[NX * NW];
  for (__m256& v : state) v = _mm256_setzero_ps();
  const int64_t k16 = k / 16 * 16;
  RowsStep<K, NX, NW>(x, ldx, w, ldw, 0, k16, state);
  RowsFinish<K, NX, NW>(x, ldx, w, ldw, k16, k, dtype, state, out);
}

// Weight rows per pass for NX activation rows: the accumulators (NX × NW) and activations (2 × NX) fit in the 16
// vector registers.
template <int NX>
constexpr int kPassRows = NX == 1 ? 8 : NX == 2 ? 4 : 2;  // 4 rows: 8 accumulators, activations from L1

// Activation values per k-slice when three or four rows share a pass: NX rows of them stay in L1 (16 KiB) while
// every pass of the group reads them; whole rows (4 × 16 KiB at k = 4096) would be read from L2 by each pass.
template <int NX>
constexpr int64_t kSliceK = 4096 / NX / 16 * 16;

template <int K, int NX>
void RowsNx(const float* x, int64_t ldx, const void* w, int64_t ldw, int nw, int64_t k, DType dtype, float* out) {
  constexpr int P = kPassRows<NX>;
  const size_t esize = K == kKindF32 ? 4 : 2;
  const auto* wb = static_cast<const uint8_t*>(w);
  if constexpr (NX > 2) {
    if (nw == kRowsW) {
      // k-slices outermost, the passes over the group's rows within each, the next pass's rows prefetched (after
      // the last pass, the first pass's rows of the next slice).
      constexpr int passes = kRowsW / P;
      __m256 state[passes][NX * P];
      for (auto& s : state)
        for (__m256& v : s) v = _mm256_setzero_ps();
      const int64_t k16 = k / 16 * 16;
      for (int64_t i0 = 0; i0 < k16; i0 += kSliceK<NX>) {
        const int64_t i1 = std::min(k16, i0 + kSliceK<NX>);
        for (int p = 0; p < passes; ++p) {
          const uint8_t* pf = p + 1 < passes ? wb + (p + 1) * P * ldw * esize + i0 * esize : wb + i1 * esize;
          RowsStep<K, NX, P, P>(x, ldx, wb + p * P * ldw * esize, ldw, i0, i1, state[p], pf);
        }
      }
      for (int p = 0; p < passes; ++p) {
        RowsFinish<K, NX, P>(x, ldx, wb + p * P * ldw * esize, ldw, k16, k, dtype, state[p], out + p * P);
      }
      return;
    }
  }
  for (int j0 = 0; j0 < nw; j0 += P) {
    const void* wj = wb + j0 * ldw * esize;
    float* oj = out + j0;
    switch (nw - j0 >= P ? P : nw - j0) {
      case P: RowsT<K, NX, P>(x, ldx, wj, ldw, k, dtype, oj); break;
      case 1: RowsT<K, NX, 1>(x, ldx, wj, ldw, k, dtype, oj); break;
      default:
        for (int j = j0; j < nw; ++j) {  // the last few rows of a matrix, one at a time
          RowsT<K, NX, 1>(x, ldx, wb + j * ldw * esize, ldw, k, dtype, out + j);
        }
        return;
    }
  }
}

template <int K>
void RowsKind(const float* x, int64_t ldx, int nx, const void* w, int64_t ldw, int nw, int64_t k, DType dtype,
              float* out) {
  switch (nx) {
    case 4: return RowsNx<K, 4>(x, ldx, w, ldw, nw, k, dtype, out);
    case 3: return RowsNx<K, 3>(x, ldx, w, ldw, nw, k, dtype, out);
    case 2: return RowsNx<K, 2>(x, ldx, w, ldw, nw, k, dtype, out);
    default: return RowsNx<K, 1>(x, ldx, w, ldw, nw, k, dtype, out);
  }
}

// Integer dot products of quantised activations with Q8_0 / Q4_0 weight rows. Per 32-value block: vpmaddubsw
// multiplies unsigned by signed bytes and adds pairs (no overflow: |pair| <= 2·128·127), vpmaddwd with ones widens to
// 8 int32 sums, and the block's scales are applied in f32.
//  - Q4_0: codes c in 0..15 stand for c − 8, so Σ(c − 8)·q = Σc·q − 8·Σq: the unsigned nibbles go straight into
//    vpmaddubsw, and −dw·8·d·Σq is added per block (as −dw·ds in each of 8 lanes, which the final sum adds up).
//  - Q8_0: signed weights, so |w| times q with w's sign.
//
// Quantised rows are short (2.3 KB for Q4_0 at k = 4096), too short for the hardware prefetcher to ramp up on each,
// so the rows that follow these NW (contiguous in memory) are prefetched a slice per block.
template <DType Q, int NX, int NW>
void RowsInt8T(const QuantisedRows& x, const uint8_t* w, int64_t row_bytes, float* out) {
  const char* next = reinterpret_cast<const char*>(w + NW * row_bytes);
  const int64_t slice = (NW * row_bytes + x.blocks - 1) / x.blocks;  // bytes of the next rows per block step
  __m256 acc[NX][NW];
  for (int r = 0; r < NX; ++r)
    for (int j = 0; j < NW; ++j) acc[r][j] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < x.blocks; ++b) {
    for (int64_t off = 0; off < slice; off += 64) _mm_prefetch(next + b * slice + off, _MM_HINT_T0);
    __m256i xq[NX];
    __m256 dx[NX], nds[NX];
    for (int r = 0; r < NX; ++r) {
      const int64_t rb = r * x.blocks + b;
      xq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + rb * 32));
      dx[r] = _mm256_broadcast_ss(x.d + rb);
      if constexpr (Q == DType::kQ4_0) nds[r] = _mm256_set1_ps(-x.ds[rb]);
    }
    for (int j = 0; j < NW; ++j) {
      const uint8_t* row = w + j * row_bytes;
      __m256i wu, sx[NX];
      float dws;
      if constexpr (Q == DType::kQ4_0) {
        const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
        // Low nibbles (values 0..15) in the low lane, high nibbles (16..31) in the high lane.
        const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs)));
        wu = _mm256_and_si256(_mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(15));
        for (int r = 0; r < NX; ++r) sx[r] = xq[r];
        dws = _cvtsh_ss(blk.d);
      } else {
        const BlockQ8_0& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
        const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.q));
        wu = _mm256_abs_epi8(wq);
        for (int r = 0; r < NX; ++r) sx[r] = _mm256_sign_epi8(xq[r], wq);
        dws = _cvtsh_ss(blk.d);
      }
      const __m256 dw = _mm256_set1_ps(dws);
      for (int r = 0; r < NX; ++r) {
        const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, sx[r]), ones);
        acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, dx[r]), acc[r][j]);
        if constexpr (Q == DType::kQ4_0) acc[r][j] = _mm256_fmadd_ps(dw, nds[r], acc[r][j]);
      }
    }
  }
  for (int r = 0; r < NX; ++r)
    for (int j = 0; j < NW; ++j) out[r * kRowsW + j] = HorizontalSum(acc[r][j]);
}

template <DType Q, int NX>
void RowsInt8Nx(const QuantisedRows& x, const void* w, int64_t ldw, int nw, float* out) {
  constexpr int P = NX == 1 ? kInt8RowsPerPass : NX == 2 ? 4 : 2;
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t row_bytes = StorageBytes(Q, ldw);
  int j0 = 0;
  for (; j0 + P <= nw; j0 += P) RowsInt8T<Q, NX, P>(x, wb + j0 * row_bytes, row_bytes, out + j0);
  for (; j0 < nw; ++j0) RowsInt8T<Q, NX, 1>(x, wb + j0 * row_bytes, row_bytes, out + j0);
}

template <DType Q>
void RowsInt8Q(const QuantisedRows& x, int nx, const void* w, int64_t ldw, int nw, float* out) {
  switch (nx) {
    case 3: return RowsInt8Nx<Q, 3>(x, w, ldw, nw, out);
    case 2: return RowsInt8Nx<Q, 2>(x, w, ldw, nw, out);
    default: return RowsInt8Nx<Q, 1>(x, w, ldw, nw, out);
  }
}

// acc[j] += scale[j] · Σ_i code[j][i]·x[i] for the 8 rows of one 32-value block whose row pairs' 4-bit codes are in
// qs[pair][i] (low nibble: row 2·pair, high: 2·pair + 1); codes are unsigned, x signed int8.
inline void DotRowPairs(const uint8_t (*qs)[32], __m256i x, const float* scale, __m256 acc[8]) {
  const __m256i ones = _mm256_set1_epi16(1), mask = _mm256_set1_epi8(15);
  for (int p = 0; p < 4; ++p) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs[p]));
    const __m256i lo = _mm256_and_si256(v, mask), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
    const __m256i d0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x), ones);
    const __m256i d1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x), ones);
    acc[2 * p] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0), _mm256_broadcast_ss(scale + 2 * p), acc[2 * p]);
    acc[2 * p + 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1), _mm256_broadcast_ss(scale + 2 * p + 1), acc[2 * p + 1]);
  }
}

// One activation row against the 8 rows of a Q4_0x8 group. The layout exists for this loop: the 8 scales convert
// in one instruction, each 32-byte load holds two rows' codes, and the −8 offset's correction is one vector (lane j
// for row j) per block, so a row's block costs the four instructions of its dot product and scaling.
void RowsX8(const int8_t* xq, const float* xd, const float* xds, int64_t nb, const BlockQ4_0x8* w, float* out) {
  const char* next = reinterpret_cast<const char*>(w + nb);  // the next group, prefetched a block's worth per step
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  __m256 corr = _mm256_setzero_ps();
  alignas(32) float scale[8];
  for (int64_t b = 0; b < nb; ++b) {
    _mm_prefetch(next + b * 144, _MM_HINT_T0);
    _mm_prefetch(next + b * 144 + 64, _MM_HINT_T0);
    _mm_prefetch(next + b * 144 + 128, _MM_HINT_T0);
    const BlockQ4_0x8& blk = w[b];
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.d)));
    _mm256_store_ps(scale, _mm256_mul_ps(dw, _mm256_broadcast_ss(xd + b)));
    corr = _mm256_fmadd_ps(dw, _mm256_set1_ps(-xds[b]), corr);
    DotRowPairs(blk.qs, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * 32)), scale, acc);
  }
  // The correction was per block −dw·d·Σq per lane j; the dot products' lanes are summed here.
  alignas(32) float c[8];
  _mm256_store_ps(c, _mm256_mul_ps(corr, _mm256_set1_ps(8.f)));
  for (int j = 0; j < 8; ++j) out[j] = HorizontalSum(acc[j]) + c[j];
}

// One activation row against the 8 rows of a Q4G128x8 group: as RowsX8, with a scale and an offset per 128 inputs
// (the offset's term m·d·Σq is the per-lane correction) and unsigned codes.
void RowsG128(const int8_t* xq, const float* xd, const float* xds, int64_t nb, const BlockQ4G128x8* w, float* out) {
  const char* next = reinterpret_cast<const char*>(w + nb / 4);
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  __m256 corr = _mm256_setzero_ps();
  alignas(32) float scale[8];
  for (int64_t g = 0; g < nb / 4; ++g) {
    const BlockQ4G128x8& blk = w[g];
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.d)));
    const __m256 m = _mm256_loadu_ps(blk.m);
    for (int quarter = 0; quarter < 4; ++quarter) {
      const int64_t b = g * 4 + quarter;
      const char* pf = next + b * 140;
      _mm_prefetch(pf, _MM_HINT_T0);
      _mm_prefetch(pf + 64, _MM_HINT_T0);
      _mm_prefetch(pf + 128, _MM_HINT_T0);
      _mm256_store_ps(scale, _mm256_mul_ps(dw, _mm256_broadcast_ss(xd + b)));
      corr = _mm256_fmadd_ps(m, _mm256_broadcast_ss(xds + b), corr);
      DotRowPairs(blk.qs[quarter], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * 32)), scale, acc);
    }
  }
  alignas(32) float c[8];
  _mm256_store_ps(c, corr);
  for (int j = 0; j < 8; ++j) out[j] = HorizontalSum(acc[j]) + c[j];
}

void WidenX8(DType dtype, const void* blocks, int64_t n, float* out, int64_t ldo) {
  if (dtype == DType::kQ4G128x8) {
    const auto* blk = static_cast<const BlockQ4G128x8*>(blocks);
    const __m128i mask = _mm_set1_epi8(15);
    for (int64_t g = 0; g < n / kG128; ++g) {
      for (int quarter = 0; quarter < 4; ++quarter)
        for (int p = 0; p < 4; ++p)
          for (int half = 0; half < 2; ++half) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[g].qs[quarter][p] + 16 * half));
            const __m128i codes[2] = {_mm_and_si128(v, mask), _mm_and_si128(_mm_srli_epi16(v, 4), mask)};
            for (int r = 0; r < 2; ++r) {
              const int j = 2 * p + r;
              const __m256 d = _mm256_set1_ps(_cvtsh_ss(blk[g].d[j])), m = _mm256_set1_ps(blk[g].m[j]);
              float* o = out + j * ldo + g * kG128 + quarter * 32 + 16 * half;
              _mm256_storeu_ps(o, _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes[r])), m));
              _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(
                  d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(codes[r], 8))), m));
            }
          }
    }
    return;
  }
  const int64_t nb = n / 32;
  const auto* blk = static_cast<const BlockQ4_0x8*>(blocks);
  const __m128i mask = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
  for (int64_t b = 0; b < nb; ++b) {
    for (int p = 0; p < 4; ++p) {
      for (int half = 0; half < 2; ++half) {  // 16 values at a time
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[b].qs[p] + 16 * half));
        const __m128i codes[2] = {_mm_sub_epi8(_mm_and_si128(v, mask), eight),
                                  _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), mask), eight)};
        for (int r = 0; r < 2; ++r) {
          const int j = 2 * p + r;
          const __m256 d = _mm256_set1_ps(_cvtsh_ss(blk[b].d[j]));
          float* o = out + j * ldo + b * 32 + 16 * half;
          _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes[r]))));
          _mm256_storeu_ps(o + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(codes[r], 8)))));
        }
      }
    }
  }
}

void RowsInt8(DType dtype, const QuantisedRows& x, int nx, const void* w, int64_t ldw, int nw, float* out) {
  if (dtype == DType::kQ4_0x8 || dtype == DType::kQ4G128x8) {
    for (int r = 0; r < nx; ++r) {  // later rows find the group's 18 KB in L1/L2
      const int64_t o = r * x.blocks;
      if (dtype == DType::kQ4_0x8) {
        RowsX8(x.q + o * 32, x.d + o, x.ds + o, x.blocks, static_cast<const BlockQ4_0x8*>(w), out + r * kRowsW);
      } else {
        RowsG128(x.q + o * 32, x.d + o, x.ds + o, x.blocks, static_cast<const BlockQ4G128x8*>(w), out + r * kRowsW);
      }
    }
    return;
  }
  if (dtype == DType::kQ4_0) return RowsInt8Q<DType::kQ4_0>(x, nx, w, ldw, nw, out);
  RowsInt8Q<DType::kQ8_0>(x, nx, w, ldw, nw, out);
}

// The scalar Quantise's arithmetic, 32 values at a time: the same max, the same products, cvtps rounds to nearest even.
void Quantise(const float* x, int64_t blocks, int8_t* q, float* d, float* ds) {
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * 32;
    __m256 v[4];
    for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xb + 8 * i);
    const float amax = avx2::AbsMax32(v);
    const __m256 inv = _mm256_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
    __m256i n[4];
    for (int i = 0; i < 4; ++i) n[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inv));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), avx2::PackInt8(n));
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(n[0], n[1]), _mm256_add_epi32(n[2], n[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    d[b] = amax / 127.f;
    ds[b] = d[b] * static_cast<float>(_mm_cvtsi128_si32(s4));
  }
}

void Rows(DType dtype, const float* x, int64_t ldx, int nx, const void* w, int64_t ldw, int nw, int64_t k,
          float* out) {
  if (dtype == DType::kBF16) return RowsKind<kKindBf16>(x, ldx, nx, w, ldw, nw, k, dtype, out);
  if (dtype == DType::kF16) return RowsKind<kKindF16>(x, ldx, nx, w, ldw, nw, k, dtype, out);
  RowsKind<kKindF32>(x, ldx, nx, w, ldw, nw, k, dtype, out);
}

}  // namespace

const Kernels& Avx2Kernels() {
  static const Kernels k{PackB, PackA, Micro, Rows, RowsInput, RowsInt8, WidenX8, Quantise};
  return k;
}

}  // namespace ixc::gemm

IXC_AVX2_END

#endif  // __x86_64__
