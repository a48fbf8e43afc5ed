#include "io/safetensors.h"
#include "ixc/ixc.h"

namespace ixc {

Status SaveDebugTensors(const ChatResult& r, const std::string& path) {
  const DebugTensors& t = r.tensors;
  std::vector<NamedTensor> out;
  if (!t.last_logits.empty()) {
    out.push_back(MakeF32Tensor("last_logits", {static_cast<int64_t>(t.last_logits.size())}, t.last_logits.data()));
  }
  if (t.image_embed_rows > 0) {
    const int64_t hidden = static_cast<int64_t>(t.image_embeds.size()) / t.image_embed_rows;
    out.push_back(MakeF32Tensor("image_embeds", {t.image_embed_rows, hidden}, t.image_embeds.data()));
  }
  if (!t.pixels0.empty()) {
    out.push_back(MakeF32Tensor("pixels0", {1, 3, t.pixels0_height, t.pixels0_width}, t.pixels0.data()));
  }
  return WriteSafetensors(path, out);
}

}  // namespace ixc
