// Multi-head attention with grouped K/V heads, tiled with an online softmax so the rows × keys score matrix never
// exists: a block of query rows × the query heads of one KV group meets one block of keys at a time, and every KV
// block is read once for all of them. Knows nothing about models.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace ixc {

// A run of cached keys/values: row j of KV head g at element j·stride + g·head_dim of k (elements of `dtype`: kF32,
// kF16, or kQ8_0 with stride and head_dim multiples of its 32-value blocks).
struct KvRun {
  DType dtype = DType::kF32;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t n = 0;
  int64_t stride = 0;
};

struct AttentionArgs {
  int64_t rows = 0;  // query rows T
  // q_heads % kv_heads == 0; query head h reads KV head h / (q_heads / kv_heads).
  int64_t q_heads = 0, kv_heads = 0, head_dim = 0;
  const float* q = nullptr;  // row t, head h at q + t·q_stride + h·head_dim
  int64_t q_stride = 0;
  float* out = nullptr;  // same layout as q (may not alias q)
  int64_t out_stride = 0;
  std::span<const KvRun> kv;  // the keys, in order, are the concatenation of the runs
  // >= 0: row t sees keys [0, causal_offset + t] of the concatenation; < 0: every row sees all keys.
  int64_t causal_offset = -1;
  float scale = 1.0f;
};

// out = softmax(q·Kᵀ·scale)·V per (row, query head). A row that sees no key gets zeros. `pool` may be null.
// The work split depends only on the shapes, never on the thread count, so results are bit-identical for any pool;
// they differ from the scalar path (Isa::kScalar) only by rounding.
void MultiHeadAttention(const AttentionArgs& a, ThreadPool* pool);

// Plain scalar twin for tests: per (row, head), dot products and an exact softmax in double.
void MultiHeadAttentionRef(const AttentionArgs& a);

}  // namespace ixc
