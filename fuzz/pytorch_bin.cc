// PyTorch .bin: the zip container (stored and deflated members), the pickle program, storages and strides.
#include "fuzz_util.h"
#include "io/pytorch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ixc::PyTorchLoadOptions options;
  options.verify_storage_crc = true;
  options.max_inflated_member_bytes = 64u << 20;  // the fuzzer's memory limit, not the loader's default
  auto source = ixc::ParsePyTorchArchive(data, size, "fuzz.bin", options);
  if (source.ok()) {
    for (const auto& [name, t] : (*source)->tensors()) ixc::fuzz::Keep(ixc::fuzz::TouchAll(t));
  }
  return 0;
}
