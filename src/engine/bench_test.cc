// ixc bench's arithmetic (work counts against the issue's figures for the real shape, decode bytes, stage names),
// the machine probes on small sizes, and the image question's token count with the IXC-2.5 tokenizer. No timings
// are asserted.
#include <thread>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "engine/bench.h"
#include "engine/model_impl.h"
#include "ixc/bench.h"
#include "kernels/cpu.h"
#include "kernels/probe.h"
#include "model/vision.h"
#include "text/chat_format.h"
#include "text/tokenizer.h"

namespace ixc {
namespace {

TEST(BenchWork, FullShapeMatchesTheIssueFigures) {
  const ModelConfig full;  // the defaults are the real IXC-2.5 shapes
  const BenchWork w = ComputeBenchWork(full, 256, kBenchQuestionTextTokens);
  EXPECT_EQ(w.image_tokens, 2861);
  EXPECT_EQ(w.image_prompt_tokens, 2878);
  EXPECT_NEAR(w.prefill_flop_per_token / 14.2e9, 1.0, 0.02) << w.prefill_flop_per_token;
  EXPECT_NEAR(w.vit_flop_per_tile / 1.248e12, 1.0, 0.02) << w.vit_flop_per_tile;
  EXPECT_NEAR(w.image_prompt_flop / 54.6e12, 1.0, 0.02) << w.image_prompt_flop;
}

TEST(BenchWork, PrefillCountsEachPart) {
  DecoderConfig c;
  c.vocab_size = 10;
  c.hidden_size = 8;
  c.intermediate_size = 12;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;  // head dim 4, qkv 16
  const double linears = 8 * 16 + 8 * 8 + 3 * 8 * 12;
  const double lora = 2 * ((8 + 16) + (8 + 8) + 2 * (8 + 12) + (12 + 8));
  // 3 rows, chunks of 2: attention over 1 + 2 + 3 keys, LM head on 2 rows, Partial LoRA on 1 row.
  const double expected = 2 * (3 * linears + 1 * lora + 2 * 8 * 6 + 2 * 10 * 8);
  EXPECT_DOUBLE_EQ(PrefillFlop(c, 3, 1, 2, 2), expected);
}

TEST(BenchWork, DecodeWeightBytesComeFromTheBoundWeights) {
  ModelConfig mc;
  DecoderConfig& c = mc.text;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  SyntheticOptions so;
  so.vision = false;
  so.type = WeightType::kF16;
  auto m = MakeSyntheticModelImpl(mc, so);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const int64_t linears = 16 * c.qkv_dim() + 16 * 16 + 3 * 16 * 24;
  const int64_t expected = 2 * (2 * linears) + 4 * (2 * 2 * 16 + 16) + 2 * 50 * 16 + 2 * 16;
  EXPECT_EQ(DecodeWeightBytes((*m)->weights.text), expected);
  EXPECT_EQ((*m)->tokenizer, nullptr);
  EXPECT_TRUE((*m)->weights.text.has_plora);  // every group the options asked for is bound
}

TEST(BenchStages, ParseNamesAndRejectUnknownOnes) {
  auto s = ParseBenchStages("decode16k,vit,decode");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<BenchStage>{BenchStage::kDecode16k, BenchStage::kVit, BenchStage::kDecode}));
  for (const char* bad : {"", "vit,", "vit,bogus", "VIT"}) {
    auto r = ParseBenchStages(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_NE(ParseBenchStages("vit,bogus").status().message().find("bogus"), std::string::npos);
}

// The text tokens kBenchQuestionTextTokens stands for, counted the way BuildPrompt counts them.
TEST(BenchWork, QuestionTokenCountMatchesTheTokenizer) {
  IXC_REQUIRE_GOLDEN();
  auto tok = Tokenizer::Load(testing::GoldenDir() + "/model/tokenizer.model");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  auto parts = SplitForImages(BuildChatPrompt("", {}, kBenchQuestion), 1);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  int64_t n = 1;  // BOS
  for (const std::string& p : *parts) n += static_cast<int64_t>((*tok)->Encode(p).size());
  EXPECT_EQ(n, kBenchQuestionTextTokens);
}

TEST(Probe, SmallRunsGivePositiveFigures) {
  ThreadPool pool(2);
  const BandwidthProbe bw = ProbeReadBandwidth(&pool, 8 << 20, 3);
  EXPECT_GT(bw.gbs, 0);
  EXPECT_EQ(bw.bytes, 8 << 20);
  const std::vector<PeakProbe> peaks = ProbePeakFlops(&pool, 1, 0.01);
  ASSERT_FALSE(peaks.empty());
  for (const PeakProbe& p : peaks) EXPECT_GT(p.gflops, 0) << p.kind;
  const PeakProbe* best = PeakForIsa(peaks, ActiveIsa());
  ASSERT_NE(best, nullptr);
  EXPECT_LE(best->isa, ActiveIsa());
  EXPECT_GT(AvailableMemoryBytes(), 0);
}

TEST(RunBench, RejectsBadOptionsBeforeDoingAnything) {
  BenchOptions o;
  o.model_dir = "/nonexistent";
  o.layers = 2;
  EXPECT_EQ(RunBench(o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.type = "int8";
  EXPECT_EQ(RunBench(o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.type = "f32";
  o.layers = 20000;  // ~17 TB of f32 weights: refused whatever the machine
  auto r = RunBench(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("--type bf16"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace ixc
