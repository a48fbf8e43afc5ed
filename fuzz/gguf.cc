// GGUF: header, metadata key/values of every type, tensor infos, alignment and data offsets.
#include "fuzz_util.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ixc::GgufContents contents;
  if (ixc::ParseGguf(data, size, "fuzz.gguf", &contents).ok()) {
    for (const auto& [name, t] : contents.tensors) ixc::fuzz::Keep(ixc::fuzz::TouchAll(t));
  }
  return 0;
}
