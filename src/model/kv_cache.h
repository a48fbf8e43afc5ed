// Per-sequence key/value storage: post-RoPE keys and values of every layer, one row [Hkv·d] per position.
#pragma once

#include <cstdint>
#include <vector>

namespace ixc {

class KvCache {
 public:
  KvCache(int64_t num_layers, int64_t kv_dim) : kv_dim_(kv_dim), k_(num_layers), v_(num_layers) {}

  int64_t length() const { return length_; }
  int64_t kv_dim() const { return kv_dim_; }

  // Grows every layer to hold `n` more rows; the decoder fills them, then calls Commit(n).
  void Reserve(int64_t n) {
    for (auto* layers : {&k_, &v_})
      for (auto& l : *layers) l.resize((length_ + n) * kv_dim_);
  }
  void Commit(int64_t n) { length_ += n; }
  // Drops rows past `n` (e.g. to undo an interrupted step).
  void Truncate(int64_t n) {
    length_ = n < length_ ? n : length_;
    for (auto* layers : {&k_, &v_})
      for (auto& l : *layers) l.resize(length_ * kv_dim_);
  }

  float* k(int64_t layer, int64_t pos) { return k_[layer].data() + pos * kv_dim_; }
  float* v(int64_t layer, int64_t pos) { return v_[layer].data() + pos * kv_dim_; }
  const float* k(int64_t layer, int64_t pos) const { return k_[layer].data() + pos * kv_dim_; }
  const float* v(int64_t layer, int64_t pos) const { return v_[layer].data() + pos * kv_dim_; }

  size_t bytes() const { return 2 * k_.size() * length_ * kv_dim_ * sizeof(float); }

 private:
  int64_t kv_dim_;
  int64_t length_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace ixc
