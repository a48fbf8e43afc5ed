// Scratch memory that lives across calls, so a forward pass does not allocate (and page-fault) its activation
// buffers again on every prompt chunk or decoded token. Not thread-safe: one per caller thread.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace ixc {

class Workspace {
 public:
  // A buffer of at least n floats for `slot` (callers number their buffers 0, 1, ...). Contents are whatever the
  // last user left; a buffer grows (losing its contents) when n exceeds its size. Pointers stay valid until the
  // same slot is asked for more.
  float* Floats(size_t slot, size_t n) {
    if (slot >= buffers_.size()) buffers_.resize(slot + 1);
    Buffer& b = buffers_[slot];
    if (b.size < n) {
      b.data.reset(new float[n]);  // no value-initialisation: pages are touched by their first writer
      b.size = n;
    }
    return b.data.get();
  }

  // Frees every buffer (e.g. when a request ends, so an idle session holds no activation memory).
  void Release() { buffers_.clear(); }

  size_t bytes() const {
    size_t n = 0;
    for (const Buffer& b : buffers_) n += b.size * sizeof(float);
    return n;
  }

 private:
  struct Buffer {
    std::unique_ptr<float[]> data;
    size_t size = 0;
  };
  std::vector<Buffer> buffers_;
};

}  // namespace ixc
