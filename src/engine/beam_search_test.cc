// Beam-search rules (spec beam-search.md) hand-traced on toy logits tables, without a model.
#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "engine/beam_search.h"

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

}  // namespace
}  // namespace ixc
