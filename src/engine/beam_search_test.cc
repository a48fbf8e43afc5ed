// Beam-search rules (spec beam-search.md) hand-traced on toy logits tables, without a model; then the decoder's
// beams stepped together against the same beams stepped one by one.
#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "engine/beam_search.h"
#include "model/decoder.h"
#include "model/synthetic.h"

namespace ixc {
namespace {

// A toy "model" whose next logits depend only on the last token of the beam (vocabulary of 5; 0 is eos).
class TableModel : public BeamModel {
 public:
  explicit TableModel(std::map<int, std::vector<float>> table) : table_(std::move(table)) {}
  void Advance(const std::vector<int>& parents, const std::vector<int>& tokens,
               std::vector<std::vector<float>>* logits) override {
    for (size_t i = 0; i < tokens.size(); ++i) (*logits)[i] = table_.at(tokens[i]);
    ++steps;
  }
  int steps = 0;

 private:
  std::map<int, std::vector<float>> table_;
};

std::vector<float> FromProbs(std::vector<double> p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

TEST(BeamSearch, PicksTheBestFinishedHypothesisAndPadsWithEos) {
  // From the prompt: token 1 (0.6) or 2 (0.4). After 1 the model is unsure; after 2 it is sure of 3, then eos.
  TableModel m({{1, FromProbs({0.1, 0.3, 0.3, 0.2, 0.1})},
                {2, FromProbs({0.02, 0.02, 0.02, 0.9, 0.04})},
                {3, FromProbs({0.9, 0.025, 0.025, 0.025, 0.025})},
                {4, FromProbs({0.9, 0.025, 0.025, 0.025, 0.025})}});
  BeamSearchParams p;
  p.num_beams = 2;
  p.max_new_tokens = 6;
  p.eos_ids = {0};
  p.pad_eos_id = 0;
  auto out = BeamSearch(m, FromProbs({0.0002, 0.6, 0.3994, 0.0002, 0.0002}), p, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().message();
  // [2, 3] then eos: log(0.3994·0.9·0.9)/2 beats every continuation of 1.
  EXPECT_EQ(out->tokens, (std::vector<int>{2, 3, 0}));
  EXPECT_NEAR(out->score, std::log(0.3994 * 0.9 * 0.9) / 2, 1e-6);
  EXPECT_TRUE(out->finished_by_eos);
}

TEST(BeamSearch, EosRankedBelowNumBeamsIsSkipped) {
  // Eos is always the 3rd most likely token: with 2 beams it ranks >= 2 and never finishes a hypothesis, so the
  // search runs to max_new_tokens and finalises the running beams.
  std::vector<float> row = FromProbs({0.1, 0.5, 0.35, 0.03, 0.02});
  TableModel m({{1, row}, {2, row}});
  BeamSearchParams p;
  p.num_beams = 2;
  p.max_new_tokens = 3;
  p.eos_ids = {0};
  auto out = BeamSearch(m, row, p, nullptr);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->tokens, (std::vector<int>{1, 1, 1}));  // no eos appended at max length
  EXPECT_FALSE(out->finished_by_eos);
  EXPECT_NEAR(out->score, 3 * std::log(0.5) / 3, 1e-6);
  EXPECT_EQ(m.steps, 2);
}

TEST(BeamSearch, RepetitionPenaltyActsOnLogProbsOfTheBeamsOwnTokens) {
  // Token 1 is likeliest everywhere, but a penalty of 3 on its log-prob (x·p for x < 0) pushes it below 2.
  std::vector<float> row = FromProbs({0.01, 0.5, 0.3, 0.1, 0.09});
  TableModel m({{1, row}, {2, FromProbs({0.01, 0.2, 0.6, 0.1, 0.09})}});
  BeamSearchParams p;
  p.num_beams = 2;
  p.max_new_tokens = 2;
  p.eos_ids = {0};
  auto plain = BeamSearch(m, row, p, nullptr);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->tokens, (std::vector<int>{1, 1}));  // log .5 + log .5 = -1.39 is best without a penalty
  p.repetition_penalty = 3.0f;
  auto out = BeamSearch(m, row, p, nullptr);
  ASSERT_TRUE(out.ok());
  // With it: [1,1] = log .5 + 3·log .5 = -2.77; [1,2] = log .5 + log .3 = -1.90; [2,2] = log .3 + 3·log .6 = -2.73.
  EXPECT_EQ(out->tokens, (std::vector<int>{1, 2}));
  EXPECT_NEAR(out->score, (std::log(0.5) + std::log(0.3)) / 2, 1e-6);
}

TEST(BeamSearch, ZeroLengthHypothesisIsAnError) {
  std::vector<float> row = FromProbs({0.9, 0.05, 0.03, 0.01, 0.01});
  TableModel m({{1, row}, {2, row}});
  BeamSearchParams p;
  p.num_beams = 2;
  p.max_new_tokens = 4;
  p.eos_ids = {0};
  auto out = BeamSearch(m, row, p, nullptr);
  EXPECT_FALSE(out.ok());
}

TEST(BeamSearch, BeamSampleIsReproducibleForASeed) {
  std::vector<float> row = FromProbs({0.05, 0.3, 0.3, 0.2, 0.15});
  TableModel m({{1, row}, {2, row}, {3, row}, {4, row}});
  BeamSearchParams p;
  p.num_beams = 2;
  p.max_new_tokens = 5;
  p.eos_ids = {0};
  p.do_sample = true;
  p.top_k = 0;
  p.seed = 42;
  auto a = BeamSearch(m, row, p, nullptr);
  auto b = BeamSearch(m, row, p, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
}

// Each beam's own forward pass, one after another: what the decoder's batched beams must reproduce.
class OneByOneModel : public BeamModel {
 public:
  OneByOneModel(const DecoderConfig& c, const DecoderWeights& w, const KvCache& prompt, int k, ThreadPool* pool)
      : c_(c), w_(w), prompt_(prompt), pool_(pool) {
    for (int i = 0; i < k; ++i) caches_.emplace_back(c.num_hidden_layers, c.kv_dim(), prompt.dtype());
  }
  void Advance(const std::vector<int>& parents, const std::vector<int>& tokens,
               std::vector<std::vector<float>>* logits) override {
    std::vector<KvCache> next;
    for (int p : parents) next.push_back(caches_[p]);
    caches_ = std::move(next);
    std::vector<float> embed(c_.hidden_size);
    for (size_t i = 0; i < tokens.size(); ++i) {
      EmbedTokens(w_, &tokens[i], 1, embed.data());
      DecoderStep s;
      s.embeds = embed.data();
      s.num_rows = 1;
      s.shared_prefix = &prompt_;
      s.cache = &caches_[i];
      (*logits)[i].resize(c_.vocab_size);
      DecoderForward(c_, w_, s, pool_, (*logits)[i].data());
    }
  }

 private:
  const DecoderConfig& c_;
  const DecoderWeights& w_;
  const KvCache& prompt_;
  ThreadPool* pool_;
  std::vector<KvCache> caches_;
};

class DecoderBeams : public ::testing::TestWithParam<WeightType> {};

// 3 beams step as one batch; 9 beams as a batch of 7 and one of 2 (the row kernel's limit). Either way the search
// must be the one-by-one search exactly: same tokens, same score.
TEST_P(DecoderBeams, SteppedTogetherEqualsOneByOne) {
  ModelConfig mc;
  DecoderConfig& c = mc.text;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.rope_theta = 10000;
  SyntheticOptions so;
  so.vision = false;
  so.type = GetParam();
  auto ck = MakeSyntheticCheckpoint(mc, so);
  auto w = BindWeights(mc, ck->tensors);
  ASSERT_TRUE(w.ok()) << w.status().message();
  ThreadPool pool(2);
  KvCache prompt(c.num_hidden_layers, c.kv_dim());
  auto e = testing::RandomFloats(6 * c.hidden_size, 11);
  std::vector<float> first(c.vocab_size);
  DecoderStep s;
  s.embeds = e.data();
  s.num_rows = 6;
  s.cache = &prompt;
  DecoderForward(c, w->text, s, &pool, first.data());
  for (int beams : {3, 9}) {
    for (bool sample : {false, true}) {
      BeamSearchParams p;
      p.num_beams = beams;
      p.max_new_tokens = 7;
      p.eos_ids = {2};
      p.do_sample = sample;
      p.seed = 5;
      p.repetition_penalty = 1.2f;
      OneByOneModel one(c, w->text, prompt, beams, &pool);
      auto want = BeamSearch(one, first, p, nullptr);
      auto got = RunBeamSearch(c, w->text, AdapterMode::kBase, prompt, first, p, &pool, nullptr);
      ASSERT_TRUE(want.ok() && got.ok()) << beams;
      EXPECT_EQ(got->tokens, want->tokens) << beams << " beams, sample " << sample;
      EXPECT_EQ(got->score, want->score) << beams << " beams, sample " << sample;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, DecoderBeams, ::testing::Values(WeightType::kBF16, WeightType::kQ4_0),
                         [](const auto& info) { return std::string(WeightTypeName(info.param)); });

}  // namespace
}  // namespace ixc
