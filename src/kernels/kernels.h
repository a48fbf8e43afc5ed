// The kernel API: math on float32 activations and stored (f32/f16/bf16) weights. Knows nothing about models.
// Every optimised kernel has a plain scalar twin (suffix Ref) that tests compare it against.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace ixc {

// y[T, N] (+)= x[T, K] · W[N, K]ᵀ, W F32, F16, BF16, Q8_0 or Q4_0 (K a multiple of 32) (row-vector convention of
// PyTorch's Linear). With a block-quantised W and fewer than 8 rows (decoding), x is first quantised to int8 per
// 32-value block (scale max|x|/127, round to nearest), as llama.cpp does: an error of at most half a step per value.
// When `bias` is non-null (f32 [N]) it is added. `accumulate` adds into y instead of overwriting it.
void MatMul(const float* x, int64_t T, int64_t K, const TensorView& w, const float* bias, float* y, bool accumulate,
            ThreadPool* pool);
// Below this many rows each row of MatMul's result is the same, bit for bit, as that row multiplied alone (they take
// the row kernel, whose order of additions does not depend on the row count); from it on, the panel kernel.
inline constexpr int64_t kMatMulRowKernelMax = 7;
void MatMulRef(const float* x, int64_t T, int64_t K, const TensorView& w, const float* bias, float* y, bool accumulate);

// y = w · (x / rms(x)) per row of D, with the reference's order (normalise in f32, then scale by the weight).
// Rows run in parallel on `pool` (may be null); y may equal x.
void RmsNorm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y, ThreadPool* pool = nullptr);
void RmsNormRef(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y);
// y = (x − mean) / sqrt(var + eps) · w + b per row (biased variance, as torch.nn.LayerNorm). y may equal x.
void LayerNorm(const float* x, const float* w, const float* b, int64_t T, int64_t D, float eps, float* y,
               ThreadPool* pool = nullptr);
void LayerNormRef(const float* x, const float* w, const float* b, int64_t T, int64_t D, float eps, float* y);

// Elementwise steps over n floats, split across `pool` (may be null). Scalar twins: Silu, QuickGelu, GeluErf below.
void SiluMul(const float* a, const float* b, float* y, int64_t n, ThreadPool* pool);  // y = silu(a)·b (SwiGLU)
void QuickGeluInPlace(float* x, int64_t n, ThreadPool* pool);
void GeluErfInPlace(float* x, int64_t n, ThreadPool* pool);
void AddInPlace(float* x, const float* y, int64_t n, ThreadPool* pool);  // x += y (residual)

// Writes n f32 values as `dtype` (F32, F16 or BF16, rounded to nearest even as F32ToF16/F32ToBf16; or Q8_0 for n a
// multiple of 32: d = max|x|/127 as f16, q = x/d rounded to nearest even).
void StoreAs(DType dtype, const float* x, void* y, int64_t n);

// In-place numerically stable softmax over n values.
void Softmax(float* x, int64_t n);

float Silu(float z);       // z·sigmoid(z)
float GeluErf(float z);    // 0.5·z·(1 + erf(z/√2)), nn.GELU() default
float QuickGelu(float z);  // z·sigmoid(1.702·z), CLIP

// NeoX ("rotate_half") rotary embedding of one head vector x[d] in place: the two d/2 halves are rotated by the
// angles whose cos/sin are given (d/2 values each).
void RotateHalf(float* x, int64_t d, const float* cos, const float* sin);

// A run of cached key/value rows: row i of keys at k + i·stride (same for v).
struct KvSegment {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n = 0;
  int64_t stride = 0;
};

// out[d] = softmax(q·Kᵀ·scale) · V over the concatenation of `segments` (no mask: callers pass only the keys a
// query may see). `scores` is scratch of at least the total key count.
void Attention(const float* q, int64_t d, std::span<const KvSegment> segments, float scale, float* out, float* scores);

}  // namespace ixc
