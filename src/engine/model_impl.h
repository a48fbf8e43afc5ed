// What a loaded model is inside the engine: config, checkpoint mapping, bound weights, tokenizer. Immutable.
#pragma once

#include <memory>
#include <string>

#include "io/checkpoint.h"
#include "ixc/ixc.h"
#include "model/config.h"
#include "model/weights.h"
#include "text/tokenizer.h"

namespace ixc {

class ModelImpl {
 public:
  ModelConfig config;
  std::unique_ptr<Checkpoint> checkpoint;
  ModelWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string model_dir;
};

// Parses a Hugging Face config.json (the real keys, optional vision_config). `name` is used in errors.
Result<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& name);

Result<std::unique_ptr<ModelImpl>> LoadModelImpl(const std::string& model_dir);

// Why a mode cannot run with this checkpoint, or OK.
Status CheckModeAvailable(const ModelImpl& m, TaskMode mode);

}  // namespace ixc
