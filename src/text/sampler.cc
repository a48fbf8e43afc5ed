#include "text/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_set>

namespace ixc {

void ApplyRepetitionPenalty(std::span<float> scores, std::span<const int> generated, float penalty) {
  if (penalty == 1.0f) return;
  std::unordered_set<int> seen;
  for (int id : generated) {
    if (id < 0 || id >= static_cast<int>(scores.size()) || !seen.insert(id).second) continue;
    float& s = scores[id];
    s = s < 0 ? s * penalty : s / penalty;
  }
}

void ApplyWarpers(std::span<float> scores, float temperature, int top_k, float top_p) {
  const float kNegInf = -std::numeric_limits<float>::infinity();
  const size_t n = scores.size();
  if (temperature != 1.0f) {
    for (auto& s : scores) s /= temperature;
  }
  if (top_k > 0 && static_cast<size_t>(top_k) < n) {
    // HF keeps every score >= the k-th largest (ties at the boundary survive).
    std::vector<float> sorted(scores.begin(), scores.end());
    std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[top_k - 1];
    for (auto& s : scores)
      if (s < kth) s = kNegInf;
  }
  if (top_p < 1.0f) {
    // HF: sort ascending, cumulative softmax; drop tokens whose cumulative mass is <= 1 - top_p, keep the last one.
    std::vector<int> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return scores[a] < scores[b]; });
    float m = kNegInf;
    for (float s : scores) m = std::max(m, s);
    double total = 0;
    for (float s : scores) total += std::isinf(s) ? 0.0 : std::exp(static_cast<double>(s - m));
    double cum = 0;
    for (size_t i = 0; i + 1 < n; ++i) {  // the highest-scoring token is always kept
      const float s = scores[idx[i]];
      cum += std::isinf(s) ? 0.0 : std::exp(static_cast<double>(s - m)) / total;
      if (cum <= 1.0 - top_p) scores[idx[i]] = kNegInf;
    }
  }
}

int SampleFromScores(std::span<const float> scores, Rng& rng) {
  float m = -std::numeric_limits<float>::infinity();
  for (float s : scores) m = std::max(m, s);
  double total = 0;
  for (float s : scores) total += std::isinf(s) ? 0.0 : std::exp(static_cast<double>(s - m));
  double u = rng.Uniform() * total, cum = 0;
  int last = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isinf(scores[i])) continue;
    cum += std::exp(static_cast<double>(scores[i] - m));
    last = static_cast<int>(i);
    if (u < cum) return last;
  }
  return last;
}

int SelectNextToken(std::span<float> logits, std::span<const int> generated, const SamplerParams& p, Rng& rng) {
  ApplyRepetitionPenalty(logits, generated, p.repetition_penalty);
  if (!p.do_sample) return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  ApplyWarpers(logits, p.temperature, p.top_k, p.top_p);
  return SampleFromScores(logits, rng);
}

Status CheckLogits(std::span<const float> logits, const std::string& where) {
  for (float x : logits) {
    if (std::isnan(x) || x == std::numeric_limits<float>::infinity()) {
      return DataLoss(StrFormat("the model produced non-finite logits (%s) for %s: its weights or config are broken",
                                std::isnan(x) ? "NaN" : "inf", where.c_str()));
    }
  }
  return Status::Ok();
}

}  // namespace ixc
