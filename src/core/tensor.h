// Non-owning views of stored tensors (shape in PyTorch order, outermost first) and a small owning f32 buffer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace ixc {

using Shape = std::vector<int64_t>;

std::string ShapeToString(const Shape& s);
int64_t NumElements(const Shape& s);

// A contiguous tensor living elsewhere (usually a memory-mapped checkpoint). Cheap to copy.
struct TensorView {
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;

  bool valid() const { return data != nullptr; }
  int64_t numel() const { return NumElements(shape); }
  size_t nbytes() const { return static_cast<size_t>(StorageBytes(dtype, numel())); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  // Row r of a 2-D tensor, as raw bytes (block types: rows are whole blocks; Q4_0x8 and Q4G128x8: r a multiple of 8,
  // the start of its group).
  const uint8_t* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + StorageBytes(dtype, r * shape.back());
  }
};

// Copies a float-typed view into float32 (for small tensors: norms, biases, GN tokens).
std::vector<float> ToF32(const TensorView& t);
// Row r of a 2-D tensor of any float or block type (the interleaved ones included) as shape.back() floats.
void RowToF32(const TensorView& t, int64_t r, float* out);

}  // namespace ixc
