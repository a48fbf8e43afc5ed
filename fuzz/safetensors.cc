// safetensors: the header (JSON with offsets) and the data ranges it hands out.
#include <map>

#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, ixc::TensorView> tensors;
  if (ixc::ParseSafetensors(data, size, "fuzz.safetensors", &tensors).ok()) {
    for (const auto& [name, t] : tensors) ixc::fuzz::Keep(ixc::fuzz::TouchAll(t));
  }
  return 0;
}
