// A model folder's weights as one name -> tensor table, whatever the container: a single safetensors file,
// sharded safetensors with model.safetensors.index.json, or (see pytorch_file.h) PyTorch .bin archives.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace ixc {

// Something that holds tensor storage alive and lists its tensors (a mapped file, a converted buffer...).
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const std::map<std::string, TensorView>& tensors() const = 0;
  virtual const std::string& path() const = 0;
};

class Checkpoint {
 public:
  // Finds the weights in `dir` (index files first, then single files) and validates every container.
  static Result<std::unique_ptr<Checkpoint>> Open(const std::string& dir);
  // Builds a checkpoint from sources already open (tests, converters). Duplicate names are an error.
  static Result<std::unique_ptr<Checkpoint>> FromSources(std::vector<std::unique_ptr<TensorSource>> sources,
                                                         std::string format);

  const TensorView* Find(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // Human-readable container description, e.g. "safetensors (2 shards)".
  const std::string& format() const { return format_; }

 private:
  std::vector<std::unique_ptr<TensorSource>> sources_;
  std::map<std::string, TensorView> tensors_;
  std::string format_;
};

// Scans every value of every tensor for NaN and ±inf (block types: their scales), split over `pool` (may be null):
// a damaged or badly converted checkpoint is then refused at load, naming the tensor and the element, instead of
// answering with NaN logits. `progress` (may be null) gets the fraction of bytes scanned; `scanned` (may be null) is
// called after each tensor (to let go of the pages of one that will not be read soon).
Status CheckTensorsFinite(const std::map<std::string, TensorView>& tensors, ThreadPool* pool,
                          const std::function<void(double)>& progress = nullptr,
                          const std::function<void(const std::string&, const TensorView&)>& scanned = nullptr);

// Loads a sharded checkpoint's index JSON: tensor name -> shard file name. Validates the structure.
Result<std::map<std::string, std::string>> ReadShardIndex(const std::string& index_path);

}  // namespace ixc
