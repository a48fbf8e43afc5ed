// Internal to attention.cc and its per-ISA files: the block-level kernels the tiled attention driver calls through a
// table, so the driver (tiling, masks, threads, merging) is compiled once for baseline x86-64 and only these loops
// are compiled per instruction set.
//
// Scores are in log2 units (the driver folds log2(e) into the query scale), so the softmax exponentials are 2^x.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace ixc::attention_internal {

// Cache rows the kernels prefetch while they work, spread over their key loops: those of the block processed next,
// so memory reads overlap arithmetic. Row j's row_bytes start at rows + j·stride_bytes, j < n; n = 0: none.
struct PrefetchRows {
  const char* rows = nullptr;
  int64_t n = 0, stride_bytes = 0, row_bytes = 0;
};

struct AttentionKernels {
  // Transposed layout (many queries): s[j·lds + i] = Σ_{d<D} k[j·ks + d]·qt[d·ldq + i], j < nb, i < mpad
  // (mpad a multiple of 8; qt, s 32-byte aligned, ldq and lds multiples of 8).
  void (*scores_t)(const float* qt, int64_t ldq, int64_t mpad, const float* k, int64_t ks, int64_t nb, int64_t D,
                   float* s, int64_t lds, const PrefetchRows& pf);
  // Row layout (few queries): s[i·lds + j] = Σ_{d<dp} qs[i·ldq + d]·k[j·ks + d], i < m, j < nb (dp a multiple of 8).
  void (*scores_f32)(const float* qs, int64_t ldq, int64_t m, const float* k, int64_t ks, int64_t nb, int64_t dp,
                     float* s, int64_t lds, const PrefetchRows& pf);
  // The same reading f16 keys directly; null: the driver widens the block into f32 scratch first.
  void (*scores_f16)(const float* qs, int64_t ldq, int64_t m, const uint16_t* k, int64_t ks, int64_t nb, int64_t dp,
                     float* s, int64_t lds, const PrefetchRows& pf);
  // One online-softmax step over a key block in the transposed layout, for lanes i < mpad and key rows j < nb. Key j
  // is visible to lane i iff j <= limit[i] (limit null: all visible). Replaces s by p = 2^(s − m_new) (0 where
  // masked), sets m[i] = m_new = max(m[i], visible s), l[i] = l[i]·alpha[i] + Σ p, alpha[i] = 2^(m_old − m_new).
  void (*softmax_t)(float* s, int64_t lds, int64_t nb, int64_t mpad, const int32_t* limit, float* m, float* l,
                    float* alpha);
  // The same in the row layout for rows i < m; each row of s has room for nb rounded up to 8 (the pad is written).
  void (*softmax_rows)(float* s, int64_t lds, int64_t nb, int64_t m, const int32_t* limit, float* mx, float* l,
                       float* alpha);
  // o[i·ldo + d] = alpha[i]·o[i·ldo + d] + Σ_{j<nb} p[i·psi + j·psj]·v[j·vs + d], i < m, d < dp (a multiple of 8).
  void (*pv_f32)(const float* p, int64_t psi, int64_t psj, const float* alpha, int64_t m, const float* v, int64_t vs,
                 int64_t nb, int64_t dp, float* o, int64_t ldo, const PrefetchRows& pf);
  // The same reading f16 values directly; null: widen into scratch first.
  void (*pv_f16)(const float* p, int64_t psi, int64_t psj, const float* alpha, int64_t m, const uint16_t* v,
                 int64_t vs, int64_t nb, int64_t dp, float* o, int64_t ldo, const PrefetchRows& pf);
  // dst[0, n) = f32(src[0, n)).
  void (*widen_f16)(const uint16_t* src, float* dst, int64_t n);
  // dst[j·dp + d] = f32(src[j·stride + d]) for j < nb, d < D, and 0 for D <= d < dp: a block of cache rows
  // (`dtype` F32, F16 or Q8_0; `stride` in elements) as contiguous f32 rows.
  void (*pack_rows)(const void* src, int64_t stride, DType dtype, int64_t nb, int64_t D, int64_t dp, float* dst);
  // dst[0, n) = the n values (a multiple of 32) of the Q8_0 blocks at src.
  void (*widen_q8)(const void* src, float* dst, int64_t n);
};

// The AVX2+FMA+F16C kernels (attention_avx2.cc); null when not built for x86-64.
const AttentionKernels* Avx2AttentionKernels();

}  // namespace ixc::attention_internal
