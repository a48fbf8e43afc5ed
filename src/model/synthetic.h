// Random checkpoints of any shape, generated in memory: for tests of configurations no real file has, and for
// benchmarks at the real widths without the real weights.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace ixc {

struct SyntheticOptions {
  uint64_t seed = 1;
  DType dtype = DType::kBF16;
  int64_t plora_rank = 8, web_rank = 12, sft_rank = 6, dpo_rank = 5;  // 0 leaves that adapter out
  bool vision = true;
  float scale = 0.08f;  // weights are uniform in [-scale, scale); norms around 1
};

struct SyntheticCheckpoint {
  std::map<std::string, TensorView> tensors;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> storage;
};

std::unique_ptr<SyntheticCheckpoint> MakeSyntheticCheckpoint(const ModelConfig& c, const SyntheticOptions& o);

}  // namespace ixc
