// config.json: the model and vision configs and quantization_config, field by field.
#include <string>

#include "engine/model_impl.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = ixc::ParseModelConfig(text, "fuzz/config.json");
  if (config.ok()) {
    // What is accepted must write back and read back to the same thing.
    auto again = ixc::ParseModelConfig(ixc::ModelConfigJson(*config), "fuzz/config.json (rewritten)");
    if (!again.ok()) __builtin_trap();
  }
  auto q = ixc::ParseQuantizationConfig(text, "fuzz/config.json");
  ixc::fuzz::Keep(q.ok());
  return 0;
}
