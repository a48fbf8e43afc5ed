// GGUF (llama.cpp's one-file model container, version 2 and 3): bounds-checked reading into name -> tensor views
// of the mapping, plus the metadata; and writing. Knows no model names: what the keys mean is the engine's business.
//
// Layout: magic "GGUF", version, tensor count, metadata count; the metadata (key, type, value); per tensor its name,
// dimensions (innermost first), ggml type and offset; padding to `general.alignment` (default 32); the tensor data,
// each tensor aligned. Tensor shapes here are in PyTorch order (outermost first), as everywhere in ixc.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "core/tensor.h"

namespace ixc {

// A metadata value: a scalar, a string, or an array of either. Integers keep their GGUF type for writing back.
struct GgufValue {
  enum class Type : uint32_t {
    kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9,
    kU64 = 10, kI64 = 11, kF64 = 12,
  };
  Type type = Type::kU32;
  Type element_type = Type::kU8;   // arrays
  int64_t i = 0;                   // integer and bool scalars (U64 above 2^63 is refused)
  double f = 0;                    // float scalars
  std::string s;                   // strings
  std::vector<uint8_t> bytes;      // arrays of fixed-size elements, raw little-endian
  std::vector<std::string> strings;  // arrays of strings
  int64_t count = 0;               // array length

  static GgufValue String(std::string v);
  static GgufValue U32(uint32_t v);
  static GgufValue I64(int64_t v);
  static GgufValue F32(float v);
  static GgufValue Bytes(std::vector<uint8_t> v);  // array of U8
};

struct GgufContents {
  uint32_t version = 3;
  int64_t alignment = 32;
  std::map<std::string, GgufValue> metadata;
  std::map<std::string, TensorView> tensors;  // views into the parsed image
};

// Parses a GGUF image already in memory. Every count, length, dimension and offset is checked against the image
// before anything is handed out; tensor types ixc cannot compute with (anything but F32, F16, BF16, Q8_0, Q4_0) are
// refused by name.
Status ParseGguf(const uint8_t* data, size_t size, const std::string& name, GgufContents* out);

class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);

  const GgufContents& contents() const { return contents_; }
  const std::map<std::string, TensorView>& tensors() const { return contents_.tensors; }
  const std::string& path() const { return file_->path(); }

  // Typed metadata lookups: an error naming the key when it is missing or of another type.
  Result<std::string> GetString(const std::string& key) const;
  Result<int64_t> GetInt(const std::string& key) const;
  Result<std::vector<uint8_t>> GetBytes(const std::string& key) const;  // an array of U8 or I8

 private:
  std::unique_ptr<MappedFile> file_;
  GgufContents contents_;
};

// One tensor to write: name, dtype (F32, F16, BF16, Q8_0 or Q4_0), PyTorch-order shape and its bytes: either `data`, or
// `produce`, which fills a buffer of StorageBytes(dtype, numel) bytes when the tensor's turn comes (so a converter
// holds one converted tensor at a time).
struct GgufTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;  // alive until WriteGguf returns
  std::function<Status(uint8_t* out)> produce = nullptr;  // instead of data: fills the bytes when written
};

// Writes version 3 with `general.alignment` = 32. Tensors keep the given order; `on_tensor(done, total)` (optional)
// is called after each.
Status WriteGguf(const std::string& path, const std::map<std::string, GgufValue>& metadata,
                 const std::vector<GgufTensor>& tensors,
                 const std::function<void(size_t, size_t)>& on_tensor = {});

}  // namespace ixc
