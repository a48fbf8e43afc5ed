#include "core/tensor.h"

namespace ixc {

std::string ShapeToString(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t NumElements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::vector<float> ToF32(const TensorView& t) {
  std::vector<float> out(t.numel());
  if (t.dtype == DType::kQ4_0x8 || t.dtype == DType::kQ4G128x8) {
    for (int64_t r = 0; r < t.numel() / t.shape.back(); ++r) RowToF32(t, r, out.data() + r * t.shape.back());
  } else {
    ConvertToF32(t.dtype, t.data, out.data(), out.size());
  }
  return out;
}

void RowToF32(const TensorView& t, int64_t r, float* out) {
  const int64_t cols = t.shape.back();
  if (t.dtype == DType::kQ4G128x8) {
    const auto* blocks = reinterpret_cast<const BlockQ4G128x8*>(t.row(r - r % 8));
    const int j = static_cast<int>(r % 8);
    for (int64_t g = 0; g < cols / kG128; ++g) {
      const float d = F16ToF32(blocks[g].d[j]), m = blocks[g].m[j];
      for (int i = 0; i < kG128; ++i) out[g * kG128 + i] = d * static_cast<float>(Q4G128Code(blocks[g], j, i)) + m;
    }
    return;
  }
  if (t.dtype != DType::kQ4_0x8) {
    ConvertToF32(t.dtype, t.row(r), out, static_cast<size_t>(cols));
    return;
  }
  const auto* blocks = reinterpret_cast<const BlockQ4_0x8*>(t.row(r - r % 8));
  const int j = static_cast<int>(r % 8);
  for (int64_t b = 0; b < cols / 32; ++b) {
    const float d = F16ToF32(blocks[b].d[j]);
    for (int i = 0; i < 32; ++i) out[b * 32 + i] = d * static_cast<float>(Q4x8Code(blocks[b], j, i));
  }
}

}  // namespace ixc
