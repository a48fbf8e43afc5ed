// Random checkpoints of any shape, generated in memory: for tests of configurations no real file has, and for
// benchmarks at the real widths without the real weights.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "model/weight_types.h"

namespace ixc {

// The adapter ranks of the real IXC-2.5 checkpoint (spec §1.3), which full-size synthetic models copy.
inline constexpr int64_t kRealPloraRank = 256, kRealWebRank = 512, kRealSftRank = 256, kRealDpoRank = 256;

struct SyntheticOptions {
  uint64_t seed = 1;
  // The model's weight type (model/weight_types.h): every tensor gets the type a converted file of this type would
  // give it, quantised from the same random values. Vectors are in the type's float (f32, f16, else bf16).
  WeightType type = WeightType::kBF16;
  int64_t plora_rank = 8, web_rank = 12, sft_rank = 6, dpo_rank = 5;  // 0 leaves that adapter out
  bool vision = true;
  float scale = 0.08f;  // weights are uniform in [-scale, scale); norms around 1
};

struct SyntheticCheckpoint {
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::map<std::string, TensorView> tensors;
  // One 64-byte aligned block per tensor (as a well-packed file would align them).
  std::vector<std::unique_ptr<uint8_t[], FreeDeleter>> storage;
  int64_t bytes = 0;  // sum of the tensors' sizes
};

// Each value is a hash of (seed, tensor name, element index), so a tensor's values depend on neither the other
// tensors present nor the pool's thread count. `pool` (may be null) fills large tensors in parallel: full-size
// checkpoints hold billions of values.
std::unique_ptr<SyntheticCheckpoint> MakeSyntheticCheckpoint(const ModelConfig& c, const SyntheticOptions& o,
                                                             ThreadPool* pool = nullptr);

// Fills out[0, n) with uniform values in [lo, hi) from the same generator, keyed by (seed, name): random inputs for
// benchmarks (pixels, token embeddings, KV cache rows) at the speed of memory.
void FillSyntheticUniform(uint64_t seed, const std::string& name, float lo, float hi, float* out, int64_t n,
                          ThreadPool* pool = nullptr);

// Bytes MakeSyntheticCheckpoint would allocate for these options (to check memory before generating).
int64_t SyntheticCheckpointBytes(const ModelConfig& c, const SyntheticOptions& o);

}  // namespace ixc
