// Beam search and beam sampling exactly as the reference's generate() under transformers 4.33
// (../shared/spec/beam-search.md). Beams share the prompt's KV cache read-only; each owns only its generated part.
#pragma once

#include <functional>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/partial_lora.h"
#include "model/weights.h"

namespace ixc {

struct BeamSearchParams {
  int num_beams = 3;
  int max_new_tokens = 1024;
  float repetition_penalty = 1.0f;
  std::vector<int> eos_ids = {2};
  int pad_eos_id = 2;       // appended to a result shorter than max_new_tokens (the first eos id, as HF)
  double length_penalty = 1.0;
  bool do_sample = false;   // beam-sample: warpers, then 2K candidates drawn without replacement
  float temperature = 1.0f;
  int top_k = 50;
  float top_p = 1.0f;
  uint64_t seed = 0;
};

struct BeamSearchOutput {
  std::vector<int> tokens;  // generated ids (+ pad_eos_id when shorter than max_new_tokens)
  double score = 0;         // the chosen hypothesis' length-normalised score
  bool finished_by_eos = false;
};

// The model side of beam search: log-prob rows for a beam's next step. Kept abstract so the search rules can be
// tested on toy tables without a model.
class BeamModel {
 public:
  virtual ~BeamModel() = default;
  // Advances beam slot `slot` (whose history is that of `parent` from the previous step, plus `token`) and writes
  // its next logits [V]. Called with all slots of a step together, so state can be reordered first.
  virtual void Advance(const std::vector<int>& parents, const std::vector<int>& tokens, std::vector<std::vector<float>>* logits) = 0;
};

// The search itself. `first_logits` are the prompt's last logits. `cancelled` is polled once per step.
Result<BeamSearchOutput> BeamSearch(BeamModel& model, const std::vector<float>& first_logits, const BeamSearchParams& p,
                                    const std::function<bool()>& cancelled);

// Runs BeamSearch with the decoder over a prompt cache.
Result<BeamSearchOutput> RunBeamSearch(const DecoderConfig& c, const DecoderWeights& w, AdapterMode mode,
                                       const KvCache& prompt_cache, const std::vector<float>& first_logits,
                                       const BeamSearchParams& p, ThreadPool* pool, const std::function<bool()>& cancelled);

}  // namespace ixc
