#include "core/dtype.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ixc {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: case DType::kI32: return 4;
    case DType::kF16: case DType::kBF16: return 2;
    case DType::kI64: case DType::kF64: return 8;
    case DType::kU8: case DType::kI8: case DType::kBool: return 1;
    case DType::kQ8_0: case DType::kQ4_0: case DType::kQ4_0x8: case DType::kQ4G128x8: return 0;
  }
  return 0;
}

int64_t DTypeBlockValues(DType t) { return t == DType::kQ4G128x8 ? kG128 : IsBlockType(t) ? 32 : 1; }
int64_t DTypeBlockBytes(DType t) {
  if (t == DType::kQ4G128x8) return static_cast<int64_t>(sizeof(BlockQ4G128x8) / 8);
  if (t == DType::kQ8_0) return static_cast<int64_t>(sizeof(BlockQ8_0));
  if (t == DType::kQ4_0 || t == DType::kQ4_0x8) return static_cast<int64_t>(sizeof(BlockQ4_0));
  return static_cast<int64_t>(DTypeSize(t));
}
bool IsBlockType(DType t) {
  return t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ4_0x8 || t == DType::kQ4G128x8;
}

void InterleaveQ4_0x8(void* data, int64_t rows, int64_t cols) {
  const int64_t nb = cols / kQ4Block;
  std::vector<BlockQ4_0> group(static_cast<size_t>(8 * nb));
  for (int64_t g = 0; g < rows / 8; ++g) {
    auto* base = static_cast<uint8_t*>(data) + g * 8 * nb * static_cast<int64_t>(sizeof(BlockQ4_0));
    std::memcpy(group.data(), base, group.size() * sizeof(BlockQ4_0));
    auto* out = reinterpret_cast<BlockQ4_0x8*>(base);
    for (int64_t b = 0; b < nb; ++b) {
      BlockQ4_0x8 x;
      for (int j = 0; j < 8; ++j) {
        const BlockQ4_0& src = group[j * nb + b];
        x.d[j] = src.d;
        for (int i = 0; i < 32; ++i) {
          const int code = Q4Code(src, i) + 8;
          if (j % 2 == 0) {
            x.qs[j / 2][i] = static_cast<uint8_t>(code);
          } else {
            x.qs[j / 2][i] = static_cast<uint8_t>(x.qs[j / 2][i] | (code << 4));
          }
        }
      }
      std::memcpy(&out[b], &x, sizeof(x));
    }
  }
}

void QuantizeQ8_0(const float* x, void* blocks, int64_t n) {
  auto* out = static_cast<BlockQ8_0*>(blocks);
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    float amax = 0.f;
    for (int i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = F32ToF16(d);
    for (int i = 0; i < kQ8Block; ++i) out[b].q[i] = static_cast<int8_t>(std::lround(xb[i] * id));
  }
}

void QuantizeQ4_0(const float* x, void* blocks, int64_t n) {
  auto* out = static_cast<BlockQ4_0*>(blocks);
  for (int64_t b = 0; b < n / kQ4Block; ++b) {
    const float* xb = x + b * kQ4Block;
    float extreme = 0.f;  // the signed value of largest magnitude: it gets code −8, the one step with no +8 twin
    for (int i = 0; i < kQ4Block; ++i)
      if (std::fabs(xb[i]) > std::fabs(extreme)) extreme = xb[i];
    const float d = extreme / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = F32ToF16(d);
    for (int i = 0; i < kQ4Block / 2; ++i) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(xb[i] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(xb[i + 16] * id + 8.5f)));
      out[b].qs[i] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void QuantizeBlocks(DType t, const float* x, void* blocks, int64_t n) {
  if (t == DType::kQ4_0) {
    QuantizeQ4_0(x, blocks, n);
  } else {
    QuantizeQ8_0(x, blocks, n);
  }
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
    case DType::kU8: return "U8";
    case DType::kI8: return "I8";
    case DType::kF64: return "F64";
    case DType::kBool: return "BOOL";
    case DType::kQ8_0: return "Q8_0";
    case DType::kQ4_0: return "Q4_0";
    case DType::kQ4_0x8: return "Q4_0x8";
    case DType::kQ4G128x8: return "Q4G128x8";
  }
  return "?";
}

bool ParseDType(const std::string& s, DType* out) {
  static const struct { const char* name; DType t; } kNames[] = {
      {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"I32", DType::kI32},
      {"I64", DType::kI64}, {"U8", DType::kU8},   {"I8", DType::kI8},     {"F64", DType::kF64},
      {"BOOL", DType::kBool}};
  for (const auto& n : kNames) {
    if (s == n.name) {
      *out = n.t;
      return true;
    }
  }
  return false;
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t F32ToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow (after rounding) -> inf
  if (x < 0x38800000u) {  // subnormal or zero in half: round(|f| * 2^24)
    float a;
    std::memcpy(&a, &x, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  uint32_t r = x + 0xfffu + ((x >> 13) & 1u);  // round to nearest even at bit 13
  return static_cast<uint16_t>(sign | ((r - 0x38000000u) >> 13));
}

void ConvertToF32(DType t, const void* src, float* dst, size_t n) {
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(s[i]);
      return;
    }
    case DType::kF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
    case DType::kF64: {
      const auto* s = static_cast<const double*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::kQ8_0: {
      const auto* blocks = static_cast<const BlockQ8_0*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = F16ToF32(blocks[i / kQ8Block].d) * blocks[i / kQ8Block].q[i % kQ8Block];
      return;
    }
    case DType::kQ4_0: {
      const auto* blocks = static_cast<const BlockQ4_0*>(src);
      for (size_t i = 0; i < n; ++i) {
        const BlockQ4_0& b = blocks[i / kQ4Block];
        dst[i] = F16ToF32(b.d) * static_cast<float>(Q4Code(b, static_cast<int>(i % kQ4Block)));
      }
      return;
    }
    default:
      for (size_t i = 0; i < n; ++i) dst[i] = 0.f;  // callers validate dtypes first; never reached
  }
}

namespace {

// Values whose exponent bits `mask` are all set (NaN or ±inf in every IEEE format), `stride` bytes apart (the
// element size for plain arrays; the block size for the scales that start Q8_0/Q4_0 blocks). A chunk is first
// tested with a branch-free OR (vectorised), and searched element by element only when it holds a hit. memcpy
// loads: mapped tensors need not be aligned to their element size.
template <typename U>
int64_t FindExponentAllOnes(const uint8_t* p, int64_t n, U mask, int64_t stride = sizeof(U)) {
  constexpr int64_t kChunk = 4096;
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = std::min(n, b + kChunk);
    U hit = 0;
    for (int64_t i = b; i < e; ++i) {
      U v;
      std::memcpy(&v, p + i * stride, sizeof(U));
      hit |= static_cast<U>((v & mask) == mask);
    }
    if (!hit) continue;
    for (int64_t i = b; i < e; ++i) {
      U v;
      std::memcpy(&v, p + i * stride, sizeof(U));
      if ((v & mask) == mask) return i;
    }
  }
  return -1;
}

// Blocks of `block_bytes` whose `count` f16 scales (at byte offset 0) and `f32_count` f32 values (at byte offset
// f32_at) must be finite; returns the first bad block's first value (block_values per block).
int64_t FindBadBlock(const uint8_t* p, int64_t blocks, int64_t block_bytes, int64_t block_values, int count,
                     int f32_count = 0, int64_t f32_at = 0) {
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk = p + b * block_bytes;
    if (FindExponentAllOnes<uint16_t>(blk, count, 0x7c00) >= 0 ||
        (f32_count > 0 && FindExponentAllOnes<uint32_t>(blk + f32_at, f32_count, 0x7f800000u) >= 0)) {
      return b * block_values;
    }
  }
  return -1;
}

}  // namespace

int64_t FindNonFinite(DType t, const void* data, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  switch (t) {
    case DType::kF32: return FindExponentAllOnes<uint32_t>(p, n, 0x7f800000u);
    case DType::kF16: return FindExponentAllOnes<uint16_t>(p, n, 0x7c00);
    case DType::kBF16: return FindExponentAllOnes<uint16_t>(p, n, 0x7f80);
    case DType::kF64: return FindExponentAllOnes<uint64_t>(p, n, 0x7ff0000000000000ull);
    case DType::kQ8_0: case DType::kQ4_0: {  // each block starts with its f16 scale
      const int64_t b = FindExponentAllOnes<uint16_t>(p, n / 32, 0x7c00, DTypeBlockBytes(t));
      return b < 0 ? -1 : 32 * b;
    }
    case DType::kQ4_0x8: return FindBadBlock(p, n / (8 * kQ4Block), sizeof(BlockQ4_0x8), 8 * kQ4Block, 8);
    case DType::kQ4G128x8:
      return FindBadBlock(p, n / (8 * kG128), sizeof(BlockQ4G128x8), 8 * kG128, 8, 8, offsetof(BlockQ4G128x8, m));
    case DType::kI32: case DType::kI64: case DType::kU8: case DType::kI8: case DType::kBool: return -1;
  }
  return -1;
}

}  // namespace ixc
