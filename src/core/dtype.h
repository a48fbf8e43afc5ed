// Element types of stored tensors and their conversions to float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace ixc {

enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kI64, kU8, kI8, kF64, kBool };

size_t DTypeSize(DType t);
const char* DTypeName(DType t);  // safetensors spelling: "F32", "BF16", ...
// Parses a safetensors dtype name; false for names we do not know.
bool ParseDType(const std::string& name, DType* out);

inline float Bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round-to-nearest-even, NaN kept quiet (same as PyTorch's conversion).
inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

// Converts n elements of a float-like type to float32. Only kF32/kF16/kBF16/kF64 are valid here.
void ConvertToF32(DType t, const void* src, float* dst, size_t n);

}  // namespace ixc
