// Element types of stored tensors and their conversions to float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace ixc {

enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kI64, kU8, kI8, kF64, kBool, kQ8_0, kQ4_0, kQ4_0x8, kQ4G128x8 };

// Bytes per element of a plain type; 0 for block-quantised types (use StorageBytes).
size_t DTypeSize(DType t);

// Block-quantised types store DTypeBlockValues values in DTypeBlockBytes bytes; plain types are blocks of one.
//   Q8_0 (GGUF's layout): 32 values as an f16 scale d and 32 int8 q; value i = d·q[i].
//   Q4_0 (GGUF's layout): 32 values as an f16 scale d and 16 bytes of 4-bit codes; value i < 16 is
//   d·((qs[i] & 15) − 8), value 16 + i is d·((qs[i] >> 4) − 8).
//   Q4_0x8 (never in files): Q4_0 matrices with rows in groups of 8, interleaved at load for the decode kernel. Block
//   b of the 8 rows of group g is one 144-byte BlockQ4_0x8 at index g·(cols/32) + b, so a group occupies exactly the
//   bytes its 8 Q4_0 rows did (and StorageBytes is Q4_0's). Flat element ranges are not contiguous: read it by rows
//   (RowToF32).
int64_t DTypeBlockValues(DType t);
int64_t DTypeBlockBytes(DType t);
// Bytes of n consecutive values (n a multiple of the block size for block types).
inline int64_t StorageBytes(DType t, int64_t n) { return n / DTypeBlockValues(t) * DTypeBlockBytes(t); }
bool IsBlockType(DType t);

constexpr int kQ8Block = 32;
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t q[kQ8Block];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 blocks are 34 bytes, as in GGUF");
constexpr int kQ4Block = 32;
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  uint8_t qs[kQ4Block / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 blocks are 18 bytes, as in GGUF");

// The 32-value blocks of 8 rows side by side: the 8 scales, then for each row pair (2p, 2p + 1) 32 bytes holding row
// 2p's 4-bit code of value i in the low nibble of byte i and row 2p + 1's in the high nibble (codes stand for code − 8).
struct BlockQ4_0x8 {
  uint16_t d[8];
  uint8_t qs[4][32];
};
static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0), "a Q4_0x8 block holds 8 Q4_0 blocks");
// Value i (0..31) of row j (0..7) of a Q4_0x8 block, minus the offset: −8..7.
inline int Q4x8Code(const BlockQ4_0x8& b, int j, int i) { return ((b.qs[j / 2][i] >> (4 * (j % 2))) & 15) - 8; }
// Rewrites a Q4_0 matrix of `rows` (a multiple of 8) × `cols` (a multiple of 32) in place as Q4_0x8.
void InterleaveQ4_0x8(void* data, int64_t rows, int64_t cols);

// Q4G128x8 (never in files): AWQ's 4-bit weights (group 128, zero points) as the decode kernel reads them. Rows in
// groups of 8; per group of 128 inputs one 560-byte block: each row's scale d (f16, AWQ's own) and offset m = −z·d
// (f32, so d·c + m = (c − z)·d exactly), then for each 32-value quarter the row pairs' codes as in Q4_0x8. Value i
// of row j is d[j]·code + m[j]. StorageBytes counts 70 bytes per 128 values (4.375 bits per weight).
constexpr int kG128 = 128;
struct BlockQ4G128x8 {
  uint16_t d[8];
  float m[8];
  uint8_t qs[4][4][32];  // [quarter][row pair][value within the quarter]
};
static_assert(sizeof(BlockQ4G128x8) == 560, "8 rows × 128 values");
inline int Q4G128Code(const BlockQ4G128x8& b, int j, int i) { return (b.qs[i / 32][j / 2][i % 32] >> (4 * (j % 2))) & 15; }

// Quantises n values (a multiple of 32) to Q8_0 as GGUF does: d = max|x| / 127 rounded to f16, q = round(x / d).
void QuantizeQ8_0(const float* x, void* blocks, int64_t n);
// Quantises n values (a multiple of 32) to Q4_0 as GGUF does: the value of largest magnitude m maps to code 0
// (d = m / −8, rounded to f16), q = min(15, trunc(x / d + 8.5)).
void QuantizeQ4_0(const float* x, void* blocks, int64_t n);
// Quantises n values (a multiple of the block size) to a block type (Q8_0 or Q4_0).
void QuantizeBlocks(DType t, const float* x, void* blocks, int64_t n);
// Value i of a Q4_0 block.
inline int Q4Code(const BlockQ4_0& b, int i) { return i < 16 ? (b.qs[i] & 15) - 8 : (b.qs[i - 16] >> 4) - 8; }
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

// Converts n elements of a float-like type to float32. Only kF32/kF16/kBF16/kF64/kQ8_0/kQ4_0 are valid here (block
// types: src at a block boundary, n a multiple of 32).
void ConvertToF32(DType t, const void* src, float* dst, size_t n);

// The first of n stored values that is NaN or infinite, or -1 when all are finite (integer types: always -1). For
// block types a block counts as non-finite when a scale is (its codes are finite), and the index is its first
// value in storage order; n must then be a multiple of the block. Reads each byte once, in chunks a compiler
// vectorises: a load-time scan of a whole checkpoint runs at memory speed.
int64_t FindNonFinite(DType t, const void* data, int64_t n);

}  // namespace ixc
