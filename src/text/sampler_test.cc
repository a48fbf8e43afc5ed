// Sampler semantics on toy distributions. Frequencies are checked against the exact probabilities with a bound
// of 5 standard deviations of a binomial count (sqrt(n·p·(1−p))), so a correct sampler fails with probability
// below 1e-6 per check, and the seed is fixed, so the test is deterministic anyway.
#include <cmath>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "text/sampler.h"

namespace ixc {
namespace {

constexpr int kDraws = 40000;

std::vector<double> Softmax(const std::vector<float>& l, float t) {
  std::vector<double> p;
  double m = -1e300, s = 0;
  for (float x : l) m = std::max(m, double(x) / t);
  for (float x : l) p.push_back(std::exp(double(x) / t - m)), s += p.back();
  for (auto& x : p) x /= s;
  return p;
}

std::vector<int> Counts(const std::vector<float>& logits, const SamplerParams& sp, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> c(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) {
    std::vector<float> l = logits;
    c[SelectNextToken(l, {}, sp, rng)]++;
  }
  return c;
}

void ExpectFrequencies(const std::vector<int>& counts, const std::vector<double>& p) {
  for (size_t i = 0; i < p.size(); ++i) {
    const double sd = std::sqrt(kDraws * p[i] * (1 - p[i]));
    EXPECT_NEAR(counts[i], kDraws * p[i], 5 * sd + 1) << "token " << i;
  }
}

const std::vector<float> kLogits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -3.0f};

TEST(Sampler, TemperatureScalesLogits) {
  for (float t : {1.0f, 0.5f, 2.0f}) {
    SamplerParams sp{true, t, 0, 1.0f, 1.0f};
    ExpectFrequencies(Counts(kLogits, sp, 1), Softmax(kLogits, t));
  }
}

TEST(Sampler, TopKKeepsTheKMostLikelyRenormalised) {
  SamplerParams sp{true, 1.0f, 3, 1.0f, 1.0f};
  std::vector<double> p = Softmax({2.0f, 1.0f, 0.5f}, 1.0f);
  p.resize(kLogits.size(), 0.0);
  ExpectFrequencies(Counts(kLogits, sp, 2), p);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities ≈ .57 .21 .13 .08 .03 .004: top-p 0.8 keeps {0, 1, 2} (the mass dropped, .11, is <= 0.2).
  std::vector<double> full = Softmax(kLogits, 1.0f);
  SamplerParams sp{true, 1.0f, 0, 0.8f, 1.0f};
  std::vector<double> p = Softmax({2.0f, 1.0f, 0.5f}, 1.0f);
  p.resize(kLogits.size(), 0.0);
  ExpectFrequencies(Counts(kLogits, sp, 3), p);
  // A tiny top-p still keeps the single best token.
  SamplerParams tiny{true, 1.0f, 0, 1e-6f, 1.0f};
  std::vector<int> c = Counts(kLogits, tiny, 4);
  EXPECT_EQ(c[0], kDraws);
  (void)full;
}

TEST(Sampler, OrderIsTemperatureThenTopKThenTopP) {
  // With temperature 2 the distribution flattens, so top-p 0.8 keeps more tokens than at temperature 1.
  SamplerParams sp{true, 2.0f, 5, 0.8f, 1.0f};
  std::vector<float> l = kLogits;
  ApplyWarpers(l, 2.0f, 5, 0.8f);
  int kept = 0;
  for (float x : l) kept += std::isinf(x) ? 0 : 1;
  EXPECT_EQ(kept, 4);  // probs at T=2: .38 .23 .18 .14 .08 (.03 cut by top-k); cumulative from the bottom .08 <= .2 dropped
  (void)sp;
}

TEST(Sampler, RepetitionPenaltyOnlyTouchesGeneratedIdsOnce) {
  std::vector<float> l = {2.0f, -2.0f, 1.0f};
  std::vector<int> generated = {0, 1, 0};
  ApplyRepetitionPenalty(l, generated, 2.0f);
  EXPECT_FLOAT_EQ(l[0], 1.0f);   // positive: divided, once although generated twice
  EXPECT_FLOAT_EQ(l[1], -4.0f);  // negative: multiplied
  EXPECT_FLOAT_EQ(l[2], 1.0f);   // untouched
}

TEST(Sampler, GreedyIsArgmaxAfterPenalty) {
  Rng rng(0);
  std::vector<float> l = {3.0f, 2.0f, 1.0f};
  std::vector<int> gen = {0};
  SamplerParams sp{false, 1.0f, 50, 0.8f, 2.0f};
  EXPECT_EQ(SelectNextToken(l, gen, sp, rng), 1);  // 3/2 = 1.5 < 2
}

TEST(Sampler, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  SamplerParams sp{true, 1.0f, 0, 1.0f, 1.0f};
  EXPECT_EQ(Counts(kLogits, sp, 9), Counts(kLogits, sp, 9));
  EXPECT_NE(Counts(kLogits, sp, 9), Counts(kLogits, sp, 10));
}

}  // namespace
}  // namespace ixc
