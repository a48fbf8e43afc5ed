// A sharded checkpoint's index (model.safetensors.index.json / pytorch_model.bin.index.json).
#include "fuzz_util.h"
#include "io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ixc::fuzz::MemFile file(data, size);
  auto index = ixc::ReadShardIndex(file.path());
  if (index.ok()) ixc::fuzz::Keep(index->size());
  return 0;
}
