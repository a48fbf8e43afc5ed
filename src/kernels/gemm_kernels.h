// Inner kernels of MatMul (src/kernels/gemm.cc), one set per instruction-set level. Internal to the kernels
// library: model code calls MatMul.
//
// Products with many rows convert a 16-output block of the weight into a k-major f32 panel (bpack[k][16]) once
// per block of rows and pack the rows into 6-row micro-panels (apack[k][6]); a 6×16 micro-kernel keeps the output
// tile in registers. Products with few rows (decoding) read the stored weight rows directly, several output rows at a
// time, so each weight byte is streamed once.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu.h"

namespace ixc::gemm {

constexpr int kMr = 6;         // rows of a micro-tile
constexpr int kNr = 16;        // outputs of a micro-tile (one panel)
constexpr int kRowsW = 8;      // weight rows per call of the row kernel
constexpr int kRowsX = 3;      // activation rows per call of the int8 row kernel
constexpr int kRowsXFloat = 4; // ... and of the f32/f16/bf16 one (4 streams decoded together take one pass)

// Activation rows quantised to int8 for products with block-quantised weights (Q8_0, Q4_0): row r, block b (32
// values) has codes q[(r·blocks + b)·32 + i], scale d[r·blocks + b] (f32) and ds[r·blocks + b] = d·Σ_i q (the
// block's sum, which Q4_0's offset of 8 needs).
struct QuantisedRows {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const float* ds = nullptr;
  int64_t blocks = 0;  // per row
};

struct Kernels {
  // bpack[k][16] = W[j][k] as f32 for j < nr; zero for nr <= j < 16. W row j starts at w + j·ldw (elements of
  // dtype: F32, F16 or BF16).
  void (*pack_b)(DType dtype, const void* w, int64_t ldw, int nr, int64_t kc, float* bpack);
  // apack[k][6] = a[r·lda + k] for r < mr, zero for mr <= r < 6 (a 6-row micro-panel, so the micro-kernel's
  // broadcasts read one stream; rows of a power-of-two stride would all fall in the same L1 sets). apack has room
  // for kc·6 + 8 floats.
  void (*pack_a)(const float* a, int64_t lda, int mr, int64_t kc, float* apack);
  // c[r][0..16) (row stride ldc) = (add ? c : 0) + Σ_k apack[k][r] · bpack[k][·] for r < 6.
  void (*micro)(int64_t kc, const float* apack, const float* bpack, float* c, int64_t ldc, bool add);
  // out[r·kRowsW + j] = Σ_k x[r·ldx + k] · W[j][k] for r < nx (1..kRowsXFloat), j < nw (1..kRowsW); W row j at w + j·ldw;
  // x as rows_input gave it for this dtype.
  void (*rows)(DType dtype, const float* x, int64_t ldx, int nx, const void* w, int64_t ldw, int nw, int64_t k,
               float* out);
  // The T rows of K activations (row stride K) in the order `rows` reads them for `dtype`: x itself, or a reordered
  // copy in *scratch. Done once per product, so that no weight row pays for it.
  const float* (*rows_input)(DType dtype, const float* x, int64_t T, int64_t K, std::vector<float>* scratch);
  // out[r·kRowsW + j] = Σ_b dw[j][b] · x.d[r][b] · Σ_i code_w[j][b·32 + i] · x.q[r][b·32 + i] for r < nx (1..kRowsX),
  // j < nw (1..kRowsW), b < x.blocks; W row j at w + j·StorageBytes(dtype, ldw), dtype Q8_0 or Q4_0 (code − 8);
  // or Q4_0x8 / Q4G128x8 (d·code + m) with w the start of an 8-row group and nw = 8.
  void (*rows_int8)(DType dtype, const QuantisedRows& x, int nx, const void* w, int64_t ldw, int nw, float* out);
  // out[j·ldo + i] = value i of row j (j < 8, i < n) of the Q4_0x8 or Q4G128x8 blocks starting at `blocks` (n a
  // multiple of their block's 32 or 128 values).
  void (*widen_x8)(DType dtype, const void* blocks, int64_t n, float* out, int64_t ldo);
  // One row of `blocks` 32-value blocks for rows_int8: d = max|x| / 127, q = x · (127 / max|x|) rounded to nearest
  // even (0 for an all-zero block), ds = d·Σq. Every set gives bit-identical results.
  void (*quantise)(const float* x, int64_t blocks, int8_t* q, float* d, float* ds);
};

// Quantises T rows of K values (K a multiple of 32) with kern.quantise. Storage comes from the vectors (resized as
// needed).
QuantisedRows QuantiseRows(const Kernels& kern, const float* x, int64_t T, int64_t K, std::vector<int8_t>* q,
                           std::vector<float>* d, std::vector<float>* ds);

const Kernels& ScalarKernels();
#if defined(__x86_64__)
const Kernels& Avx2Kernels();
#endif

// The set for a level: the best one implemented at or below it.
const Kernels& KernelsFor(Isa isa);

}  // namespace ixc::gemm
