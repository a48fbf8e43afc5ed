#include "engine/beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/kernels.h"
#include "model/decoder.h"
#include "text/sampler.h"

namespace ixc {

namespace {

// Finished hypotheses of one search (HF BeamHypotheses, 4.33 rules).
class Hypotheses {
 public:
  Hypotheses(int k, double lp) : k_(k), lp_(lp) {}

  Status Add(std::vector<int> tokens, double sum_logprobs) {
    if (tokens.empty()) {
      return Internal("beam search finished a hypothesis of length 0 (an end token ranked first at the first step); "
                      "transformers 4.33 divides by zero here");
    }
    const double score = sum_logprobs / std::pow(static_cast<double>(tokens.size()), lp_);
    if (static_cast<int>(beams_.size()) < k_ || score > worst_) {
      beams_.push_back({score, std::move(tokens)});
      if (static_cast<int>(beams_.size()) > k_) {
        // Remove the lowest score, the earliest added among equals; "worst" becomes the next lowest.
        std::vector<std::pair<double, size_t>> order;
        for (size_t i = 0; i < beams_.size(); ++i) order.push_back({beams_[i].first, i});
        std::sort(order.begin(), order.end());
        beams_.erase(beams_.begin() + static_cast<std::ptrdiff_t>(order[0].second));
        worst_ = order[1].first;
      } else {
        worst_ = std::min(score, worst_);
      }
    }
    return Status::Ok();
  }

  bool IsDone(double best_candidate_score, int cur_len) const {
    if (static_cast<int>(beams_.size()) < k_) return false;
    return worst_ >= best_candidate_score / std::pow(static_cast<double>(cur_len), lp_);
  }

  // Highest score, the one added last among equals (HF sorts stably and pops the end).
  const std::pair<double, std::vector<int>>& Best() const {
    size_t best = 0;
    for (size_t i = 1; i < beams_.size(); ++i)
      if (beams_[i].first >= beams_[best].first) best = i;
    return beams_[best];
  }

 private:
  int k_;
  double lp_;
  double worst_ = 1e9;
  std::vector<std::pair<double, std::vector<int>>> beams_;
};

struct Candidate {
  double score;
  int beam;
  int token;
};

// log_softmax in double (the reference computes in float64).
void LogSoftmax(const std::vector<float>& logits, std::vector<double>* out) {
  double m = -std::numeric_limits<double>::infinity();
  for (float x : logits) m = std::max(m, static_cast<double>(x));
  double s = 0;
  for (float x : logits) s += std::exp(static_cast<double>(x) - m);
  const double lse = m + std::log(s);
  out->resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) (*out)[i] = static_cast<double>(logits[i]) - lse;
}

// The decoder as a BeamModel: a shared prompt cache plus one suffix cache per beam slot.
class DecoderBeamModel : public BeamModel {
 public:
  DecoderBeamModel(const DecoderConfig& c, const DecoderWeights& w, AdapterMode mode, const KvCache& prompt, int k,
                   ThreadPool* pool)
      : c_(c), w_(w), mode_(mode), prompt_(prompt), pool_(pool) {
    for (int i = 0; i < k; ++i) caches_.emplace_back(c.num_hidden_layers, c.kv_dim(), prompt.dtype());
  }

  void Advance(const std::vector<int>& parents, const std::vector<int>& tokens,
               std::vector<std::vector<float>>* logits) override {
    // Reorder: each slot continues from its parent's cache (only generated rows are copied).
    std::vector<KvCache> next;
    for (int p : parents) next.push_back(caches_[p]);
    caches_ = std::move(next);
    // The beams step together, each weight read once for all of them. Groups stay within the row kernel's range,
    // where a batched row's logits equal its own forward pass bit for bit, so the search is that of beams run
    // one by one.
    const int64_t D = c_.hidden_size, V = c_.vocab_size;
    const size_t k = tokens.size();
    embeds_.resize(k * D);
    EmbedTokens(w_, tokens.data(), static_cast<int64_t>(k), embeds_.data());
    for (size_t g0 = 0; g0 < k; g0 += kMatMulRowKernelMax) {
      const size_t g1 = std::min(k, g0 + static_cast<size_t>(kMatMulRowKernelMax));
      std::vector<DecoderStep> steps(g1 - g0);
      for (size_t i = g0; i < g1; ++i) {
        DecoderStep& s = steps[i - g0];
        s.embeds = &embeds_[i * D];
        s.num_rows = 1;
        s.mode = mode_;
        s.shared_prefix = &prompt_;
        s.cache = &caches_[i];
        s.workspace = &workspace_;
      }
      batch_logits_.resize((g1 - g0) * V);
      DecoderForwardBatch(c_, w_, steps, pool_, batch_logits_.data());
      for (size_t i = g0; i < g1; ++i) {
        const float* row = &batch_logits_[(i - g0) * V];
        (*logits)[i].assign(row, row + V);
      }
    }
  }

 private:
  const DecoderConfig& c_;
  const DecoderWeights& w_;
  AdapterMode mode_;
  const KvCache& prompt_;
  ThreadPool* pool_;
  std::vector<KvCache> caches_;
  Workspace workspace_;
  std::vector<float> embeds_, batch_logits_;
};

}  // namespace

Result<BeamSearchOutput> BeamSearch(BeamModel& model, const std::vector<float>& first_logits, const BeamSearchParams& p,
                                    const std::function<bool()>& cancelled) {
  const int K = p.num_beams;
  const size_t V = first_logits.size();
  auto is_eos = [&](int t) { return std::find(p.eos_ids.begin(), p.eos_ids.end(), t) != p.eos_ids.end(); };
  const int n_candidates = p.do_sample ? 2 * K : std::max<int>(2, 1 + static_cast<int>(p.eos_ids.size())) * K;

  std::vector<std::vector<int>> beam_tokens(K);
  std::vector<double> beam_scores(K, -1e9);
  beam_scores[0] = 0;  // only beam 0 is expanded at the first step
  std::vector<std::vector<float>> logits(K, first_logits);
  Hypotheses hyps(K, p.length_penalty);
  Rng rng(p.seed);
  bool done = false;
  int cur_len = 0;
  std::vector<double> lp;
  std::vector<double> flat(K * V);

  while (true) {
    for (int b = 0; b < K; ++b) {
      IXC_RETURN_IF_ERROR(CheckLogits(logits[b], StrFormat("beam %d at step %d", b, cur_len + 1)));
      // Penalty on this beam's log-probs, then its running score (spec rule 2).
      std::vector<float> row = logits[b];
      LogSoftmax(row, &lp);
      if (p.repetition_penalty != 1.0f) {
        std::vector<int> seen = beam_tokens[b];
        std::sort(seen.begin(), seen.end());
        seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
        for (int id : seen) lp[id] = lp[id] < 0 ? lp[id] * p.repetition_penalty : lp[id] / p.repetition_penalty;
      }
      for (size_t v = 0; v < V; ++v) flat[b * V + v] = lp[v] + beam_scores[b];
    }

    std::vector<Candidate> cands;
    if (!p.do_sample) {
      std::vector<size_t> idx(K * V);
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + n_candidates, idx.end(), [&](size_t a, size_t b) {
        return flat[a] > flat[b] || (flat[a] == flat[b] && a < b);
      });
      for (int i = 0; i < n_candidates; ++i)
        cands.push_back({flat[idx[i]], static_cast<int>(idx[i] / V), static_cast<int>(idx[i] % V)});
    } else {
      // Warpers per beam row, then 2K draws without replacement from the flattened softmax, sorted by score.
      std::vector<float> warped(K * V);
      for (int b = 0; b < K; ++b) {
        std::vector<float> row(flat.begin() + b * V, flat.begin() + (b + 1) * V);
        ApplyWarpers(row, p.temperature, p.top_k, p.top_p);
        std::copy(row.begin(), row.end(), warped.begin() + b * V);
      }
      for (int i = 0; i < n_candidates; ++i) {
        const int pick = SampleFromScores(warped, rng);
        if (std::isinf(warped[pick])) return Internal("beam sampling ran out of candidates with non-zero probability");
        cands.push_back({warped[pick], pick / static_cast<int>(V), pick % static_cast<int>(V)});
        warped[pick] = -std::numeric_limits<float>::infinity();
      }
      std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    }

    // Walk the candidates (rule 4).
    std::vector<int> parents, tokens;
    std::vector<double> scores;
    for (int rank = 0; rank < static_cast<int>(cands.size()) && static_cast<int>(parents.size()) < K; ++rank) {
      const Candidate& cd = cands[rank];
      if (is_eos(cd.token)) {
        if (rank >= K) continue;
        IXC_RETURN_IF_ERROR(hyps.Add(beam_tokens[cd.beam], cd.score));
      } else {
        parents.push_back(cd.beam);
        tokens.push_back(cd.token);
        scores.push_back(cd.score);
      }
    }
    if (static_cast<int>(parents.size()) < K) {
      return Internal(StrFormat("beam search: fewer than %d of the %zu candidates were not end tokens", K, cands.size()));
    }
    ++cur_len;
    done = done || hyps.IsDone(cands[0].score, cur_len);

    std::vector<std::vector<int>> next_tokens(K);
    for (int i = 0; i < K; ++i) {
      next_tokens[i] = beam_tokens[parents[i]];
      next_tokens[i].push_back(tokens[i]);
    }
    beam_tokens = std::move(next_tokens);
    beam_scores = scores;
    if (done || cur_len >= p.max_new_tokens) break;
    if (cancelled && cancelled()) break;
    model.Advance(parents, tokens, &logits);
  }

  if (!done) {
    for (int b = 0; b < K; ++b) IXC_RETURN_IF_ERROR(hyps.Add(beam_tokens[b], beam_scores[b]));
  }
  const auto& best = hyps.Best();
  BeamSearchOutput out;
  out.score = best.first;
  out.tokens = best.second;
  if (static_cast<int>(out.tokens.size()) < p.max_new_tokens) {
    out.tokens.push_back(p.pad_eos_id);
    out.finished_by_eos = true;
  }
  return out;
}

Result<BeamSearchOutput> RunBeamSearch(const DecoderConfig& c, const DecoderWeights& w, AdapterMode mode,
                                       const KvCache& prompt_cache, const std::vector<float>& first_logits,
                                       const BeamSearchParams& p, ThreadPool* pool, const std::function<bool()>& cancelled) {
  DecoderBeamModel model(c, w, mode, prompt_cache, p.num_beams, pool);
  return BeamSearch(model, first_logits, p, cancelled);
}

}  // namespace ixc
