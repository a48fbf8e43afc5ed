// What a loaded model is inside the engine: config, checkpoint mapping, bound weights, tokenizer. Immutable.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "ixc/ixc.h"
#include "model/config.h"
#include "model/synthetic.h"
#include "model/weights.h"
#include "text/tokenizer.h"

namespace ixc {

// config.json's optional "quantization_config" (what AWQ folders carry; both the Hugging Face spelling
// bits/group_size/quant_method and AutoAWQ's w_bit/q_group_size are read).
struct QuantizationConfig {
  bool present = false;
  std::string method;   // "awq"
  int bits = 0;         // 4
  int group_size = 0;   // 128 in the real 4-bit checkpoint; 0 = not stated
  std::string version;  // "gemm"
};

// What the checkpoint's AWQ layers became at load.
struct AwqLoadInfo {
  int64_t layers = 0;      // X.qweight/qzeros/scales triples turned into X.weight
  int64_t four_bit = 0;    // ...of which kept in 4 bits (Q4G128x8); the rest dequantised to dense F16
  int group_size = 0;      // from the scales' shapes (all layers agree)
  int64_t dense_bytes = 0; // bytes of the X.weight tensors, owned by the model
};

class ModelImpl {
 public:
  ModelConfig config;
  QuantizationConfig quantization;
  std::unique_ptr<Checkpoint> checkpoint;
  // AWQ layers dequantised at load (owned F16 X.weight tensors the binder sees instead of the triples); empty for
  // dense checkpoints.
  std::vector<std::unique_ptr<TensorSource>> dequantised;
  AwqLoadInfo awq;
  ModelWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string model_dir;  // the folder (for a GGUF file: the folder it is in; beside-the-model lookups use it)
  std::string source;     // what was loaded: the folder or the GGUF file
  // Synthetic models only: the generated tensors `weights` views (a real model's live in `checkpoint`).
  std::unique_ptr<SyntheticCheckpoint> synthetic;
};

// Parses a Hugging Face config.json (the real keys, optional vision_config). `name` is used in errors.
Result<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& name);
// The inverse: a config.json ParseModelConfig reads back to `c` (with vision_config, whether or not `c` had one).
std::string ModelConfigJson(const ModelConfig& c);

// Parses a "quantization_config" object; absent or null gives present = false. Only 4-bit AWQ with zero points
// in the "gemm" packing is supported; anything else is Unimplemented with the method named.
Result<QuantizationConfig> ParseQuantizationConfig(const std::string& json_text, const std::string& name);

// Opens the folder's checkpoint, repacks AWQ layers when there are any (in 4 bits, or dequantised to F16 under
// `stored_layout` or when their groups are not 128 inputs), binds the weights, loads the tokenizer, and prepares the
// weights for the kernels (PrepareWeightsForKernels) unless `stored_layout` (ixc convert reads the tensors as the
// file stores them, and AWQ layers as F16, or with `stored_awq_four_bit` as exact 4-bit Q4G128x8 for requantising).
Result<std::unique_ptr<ModelImpl>> LoadModelImpl(const LoadOptions& options, bool stored_layout = false,
                                                 bool stored_awq_four_bit = false);
Result<std::unique_ptr<ModelImpl>> LoadModelImpl(const std::string& model_dir);

// A model of random weights in `config`'s shapes (`ixc bench --synthetic`): generated in memory, then bound as
// LoadModelImpl binds a checkpoint, so load-time steps apply to it too. No folder, no checkpoint, no tokenizer.
// `pool` (may be null) generates the weights in parallel.
Result<std::unique_ptr<ModelImpl>> MakeSyntheticModelImpl(const ModelConfig& config, const SyntheticOptions& options,
                                                          ThreadPool* pool = nullptr);

// The KV cache's dtype for a precision and cache type (kAuto: f16, or f32 under Precision::kF32).
DType KvDType(Precision p, KvCacheType t);

// Why a mode cannot run with this checkpoint, or OK.
Status CheckModeAvailable(const ModelImpl& m, TaskMode mode);

}  // namespace ixc
