// PyTorch `torch.save` archives (pytorch_model*.bin): a zip holding a pickled state dict and raw storages.
// Only the pickle subset that state dicts use is understood; anything else is rejected, never executed.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "io/checkpoint.h"

namespace ixc {

Result<std::unique_ptr<TensorSource>> OpenPyTorchFile(const std::string& path);

}  // namespace ixc
