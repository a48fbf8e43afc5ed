#include "io/pytorch_file.h"

namespace ixc {

// Placeholder until the .bin reader lands (issue: real checkpoints). Says so instead of misreading the file.
Result<std::unique_ptr<TensorSource>> OpenPyTorchFile(const std::string& path) {
  return Unimplemented(StrFormat("%s: PyTorch .bin checkpoints are not supported yet; convert to safetensors", path.c_str()));
}

}  // namespace ixc
