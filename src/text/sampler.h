// Next-token selection on one row of logits, with Hugging Face 4.33 semantics and order (spec §5.5):
// repetition penalty (generated tokens only) -> temperature -> top-k -> top-p -> softmax -> multinomial.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace ixc {

struct SamplerParams {
  bool do_sample = false;
  float temperature = 1.0f;
  int top_k = 50;   // 0: off
  float top_p = 1.0f;  // 1: off
  float repetition_penalty = 1.0f;
};

// score < 0 ? score·p : score/p for each distinct id in `generated` (in place).
void ApplyRepetitionPenalty(std::span<float> scores, std::span<const int> generated, float penalty);

// Temperature, top-k and top-p "warpers": filtered entries become -inf (in place). top-p keeps at least one token.
void ApplyWarpers(std::span<float> scores, float temperature, int top_k, float top_p);

// The engine-owned random stream: the same seed gives the same draws on every platform and thread count.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  // Uniform double in [0, 1) from 53 random bits (std::uniform_real_distribution is implementation-defined).
  double Uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 gen_;
};

// Draws an index from softmax(scores) (entries of -inf have probability 0).
int SampleFromScores(std::span<const float> scores, Rng& rng);

// Picks the next token: argmax after the penalty for greedy decoding, otherwise a draw after the warpers.
int SelectNextToken(std::span<float> logits, std::span<const int> generated, const SamplerParams& p, Rng& rng);

// NaN or +inf in logits means broken weights or config (NaN weights, say): DataLoss naming `where` (what the logits
// are for), so generation stops with an error instead of choosing from garbage. −inf is a legitimate "never".
Status CheckLogits(std::span<const float> logits, const std::string& where);

}  // namespace ixc
