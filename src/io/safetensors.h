// Bounds-checked safetensors reading and writing. The reader validates the header length, the JSON, every dtype,
// shape and offset pair before any tensor is handed out; tensor data is never copied (views into the mapping).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "core/tensor.h"
#include "io/zip_reader.h"

namespace ixc {

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::string& path() const { return file_->path(); }

 private:
  std::unique_ptr<MappedFile> file_;
  AlignedBuffer realigned_;  // the data section, when the header leaves it misaligned
  std::map<std::string, TensorView> tensors_;
};

// Parses a safetensors image already in memory (exposed for the loader's hostile-input tests). A header not padded
// to a multiple of 8 bytes leaves tensors misaligned; the format's reference reader accepts that, and so does this
// one given `realigned`: the data section is then copied once into it (the file's size in memory; no writer makes
// such files). Without `realigned` it is an error naming the header.
Status ParseSafetensors(const uint8_t* data, size_t size, const std::string& name,
                        std::map<std::string, TensorView>* out, AlignedBuffer* realigned = nullptr);

// One tensor to write: name, dtype, shape and raw little-endian bytes.
struct NamedTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::vector<uint8_t> bytes;
};
NamedTensor MakeF32Tensor(std::string name, Shape shape, const float* data);
NamedTensor MakeI32Tensor(std::string name, Shape shape, const int32_t* data);

Status WriteSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors);

}  // namespace ixc
