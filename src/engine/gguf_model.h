// IXC-2.5 as one GGUF file (ixc convert writes it, Model::Load reads it): every tensor under its Hugging Face name,
// the folder's config.json and tokenizer.model kept verbatim in the metadata, so nothing is lost or re-derived.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "io/checkpoint.h"
#include "io/gguf.h"

namespace ixc {

inline constexpr char kGgufArchitecture[] = "internlm-xcomposer2d5";  // general.architecture
inline constexpr char kGgufKeyConfig[] = "ixc.config_json";            // string: config.json as written
inline constexpr char kGgufKeyTokenizer[] = "ixc.tokenizer_model";     // U8 array: tokenizer.model's bytes
inline constexpr char kGgufKeyFormat[] = "ixc.format_version";         // U32: 1

// A GGUF file as a checkpoint source (keeps the mapping alive).
class GgufSource : public TensorSource {
 public:
  explicit GgufSource(std::unique_ptr<GgufFile> f) : file_(std::move(f)) {}
  const std::map<std::string, TensorView>& tensors() const override { return file_->tensors(); }
  const std::string& path() const override { return file_->path(); }
  const GgufFile& file() const { return *file_; }

 private:
  std::unique_ptr<GgufFile> file_;
};

// Opens an ixc GGUF file and checks that it is one: its architecture, format version and the two verbatim files.
Result<std::unique_ptr<GgufFile>> OpenModelGguf(const std::string& path);

}  // namespace ixc
