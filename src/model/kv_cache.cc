#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/status.h"
#include "kernels/kernels.h"

namespace ixc {

KvCache::KvCache(int64_t num_layers, int64_t kv_dim, DType dtype, int64_t capacity)
    : dtype_(dtype), kv_dim_(kv_dim), row_bytes_(StorageBytes(dtype, kv_dim)), layers_(num_layers) {
  IXC_DCHECK(!IsBlockType(dtype) || kv_dim % DTypeBlockValues(dtype) == 0);
  Allocate(capacity);
}

KvCache::KvCache(const KvCache& o)
    : dtype_(o.dtype_), kv_dim_(o.kv_dim_), row_bytes_(o.row_bytes_), layers_(o.layers_.size()) {
  Allocate(o.length_);
  length_ = o.length_;
  if (length_ == 0) return;  // nothing allocated to copy into
  for (size_t l = 0; l < layers_.size(); ++l) {
    std::memcpy(layers_[l].k.get(), o.layers_[l].k.get(), length_ * row_bytes_);
    std::memcpy(layers_[l].v.get(), o.layers_[l].v.get(), length_ * row_bytes_);
  }
}

KvCache& KvCache::operator=(const KvCache& o) {
  if (this != &o) *this = KvCache(o);
  return *this;
}

void KvCache::Allocate(int64_t capacity) {
  if (capacity <= capacity_) return;
  const int64_t bytes = capacity * row_bytes_;
  for (Layer& l : layers_) {
    // new[] without () leaves the pages untouched: a large capacity costs address space, not memory.
    std::unique_ptr<uint8_t[]> k(new uint8_t[bytes]), v(new uint8_t[bytes]);
    if (length_ > 0) {
      std::memcpy(k.get(), l.k.get(), length_ * row_bytes_);
      std::memcpy(v.get(), l.v.get(), length_ * row_bytes_);
    }
    l.k = std::move(k);
    l.v = std::move(v);
  }
  capacity_ = capacity;
}

void KvCache::Reserve(int64_t n) {
  if (length_ + n > capacity_) Allocate(std::max(length_ + n, capacity_ + capacity_ / 2));
}

void KvCache::Store(int64_t layer, int64_t pos, const float* k_row, const float* v_row) {
  StoreAs(dtype_, k_row, k(layer, pos), kv_dim_);
  StoreAs(dtype_, v_row, v(layer, pos), kv_dim_);
}

}  // namespace ixc
