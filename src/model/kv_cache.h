// Per-sequence key/value storage: post-RoPE keys and values of every layer, one row [Hkv·d] per position, stored
// as f32 (exact), f16 (the default: half the memory and bytes read per decoded token), bf16, or Q8_0 (kv_dim a
// multiple of 32; about half of f16 again).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"

namespace ixc {

class KvCache {
 public:
  // `capacity` rows are allocated up front (the request's prompt plus reply, so decoding never reallocates);
  // Reserve grows past it when needed. Memory is untouched until rows are written.
  KvCache(int64_t num_layers, int64_t kv_dim, DType dtype = DType::kF32, int64_t capacity = 0);
  KvCache(const KvCache& other);
  KvCache& operator=(const KvCache& other);
  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t kv_dim() const { return kv_dim_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  DType dtype() const { return dtype_; }

  // Makes room for `n` more rows; the decoder fills them (Store), then calls Commit(n).
  void Reserve(int64_t n);
  void Commit(int64_t n) { length_ += n; }
  // Drops rows past `n` (e.g. to undo an interrupted step).
  void Truncate(int64_t n) { length_ = n < length_ ? n : length_; }

  // Writes position `pos` of `layer` (pos < length() + reserved rows) from f32 rows of kv_dim values.
  void Store(int64_t layer, int64_t pos, const float* k, const float* v);

  // Row `pos` of `layer`: kv_dim elements of dtype() (StorageBytes(dtype(), kv_dim) bytes); rows are consecutive.
  const void* k(int64_t layer, int64_t pos) const { return layers_[layer].k.get() + pos * row_bytes_; }
  const void* v(int64_t layer, int64_t pos) const { return layers_[layer].v.get() + pos * row_bytes_; }
  void* k(int64_t layer, int64_t pos) { return layers_[layer].k.get() + pos * row_bytes_; }
  void* v(int64_t layer, int64_t pos) { return layers_[layer].v.get() + pos * row_bytes_; }

  // Bytes of the rows in use, and per position (all layers, keys and values).
  size_t bytes() const { return static_cast<size_t>(length_) * bytes_per_position(); }
  size_t bytes_per_position() const { return 2 * layers_.size() * row_bytes_; }

 private:
  struct Layer {
    std::unique_ptr<uint8_t[]> k, v;
  };
  void Allocate(int64_t capacity);

  DType dtype_;
  int64_t kv_dim_;
  int64_t row_bytes_;
  int64_t length_ = 0;
  int64_t capacity_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace ixc
