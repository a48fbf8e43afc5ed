// Inner kernels of MatMul (src/kernels/gemm.cc), one set per instruction-set level. Internal to the kernels
// library: model code calls MatMul.
//
// Products with many rows convert a 16-output block of the weight into a k-major f32 panel (bpack[k][16]) once
// per block of rows and pack the rows into 6-row micro-panels (apack[k][6]); a 6×16 micro-kernel keeps the output
// tile in registers. Products with few rows (decoding) read the stored weight rows directly, several output rows at a
// time, so each weight byte is streamed once.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu.h"

namespace ixc::gemm {

constexpr int kMr = 6;         // rows of a micro-tile
constexpr int kNr = 16;        // outputs of a micro-tile (one panel)
constexpr int kRowsW = 8;      // weight rows per call of the row kernel
constexpr int kRowsX = 3;      // activation rows per call of the row kernel

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
  // out[r·kRowsW + j] = Σ_k x[r·ldx + k] · W[j][k] for r < nx (1..kRowsX), j < nw (1..kRowsW); W row j at w + j·ldw.
  void (*rows)(DType dtype, const float* x, int64_t ldx, int nx, const void* w, int64_t ldw, int nw, int64_t k,
               float* out);
};

const Kernels& ScalarKernels();
#if defined(__x86_64__)
const Kernels& Avx2Kernels();
#endif

// The set for a level: the best one implemented at or below it.
const Kernels& KernelsFor(Isa isa);

}  // namespace ixc::gemm
