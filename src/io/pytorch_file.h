// PyTorch `torch.save` archives (pytorch_model*.bin): a zip holding a pickled state dict (`<archive>/data.pkl`)
// and one raw little-endian member per storage (`<archive>/data/<key>`). Only the pickle subset that state dicts
// use is understood (see pickle.h); anything else is rejected, never executed.
//
// Contract: the pickle's top level is a dict or OrderedDict of name -> tensor (`_rebuild_tensor_v2`, optionally
// wrapped in `_rebuild_parameter`). Nested wrappers such as {"state_dict": {...}} and non-tensor values are
// rejected with an error naming the entry. Storage dtypes: F32, F16, BF16, F64, I64, I32, I8, U8, BOOL.
//
// Tensors are zero-copy views into the mapped file when they are contiguous (any storage offset; several
// tensors may share one storage). Non-contiguous tensors (e.g. a saved transpose) are materialised as a
// contiguous copy in an owned buffer, as are tensors whose stored data is misaligned for their element type
// (archives not written by torch) and tensors in deflated members. The total of such copies is capped at the
// archive's size plus 64 MiB, which no genuine checkpoint reaches (a copy never exceeds its storage) but which
// stops a stride-0 "expanded" tensor from asking for terabytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "io/checkpoint.h"

namespace ixc {

struct PyTorchLoadOptions {
  // CRC-check the storages used in place. Off by default: it reads the whole file at load time, which the
  // lazily paged mapping otherwise avoids. data.pkl and inflated members are always checked.
  bool verify_storage_crc = false;
  // Largest single deflated member we inflate (torch itself never deflates; re-zipped archives may).
  uint64_t max_inflated_member_bytes = uint64_t{32} << 30;
};

// Maps `path` and parses it. Errors name the file and the tensor or member at fault.
Result<std::unique_ptr<TensorSource>> OpenPyTorchFile(const std::string& path, const PyTorchLoadOptions& options = {});

// Parses an archive image the caller keeps alive (and unchanged) for the life of the result; `name` is used in
// error messages and as the source's path(). Used by the fuzz tests.
Result<std::unique_ptr<TensorSource>> ParsePyTorchArchive(const uint8_t* data, size_t size, const std::string& name,
                                                          const PyTorchLoadOptions& options = {});

}  // namespace ixc
