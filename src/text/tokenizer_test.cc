// Tokenizer facts of spec §7, executed on the real tokenizer.model from the golden folder.
#include <gtest/gtest.h>

#include "core/testing.h"
#include "text/tokenizer.h"

namespace ixc {
namespace {

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IXC_REQUIRE_GOLDEN();
    auto t = Tokenizer::Load(testing::GoldenDir() + "/model/tokenizer.model");
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::move(t).value();
  }
  std::unique_ptr<Tokenizer> tok_;
};

using Ids = std::vector<int>;

TEST_F(TokenizerTest, SpecSamples) {
  EXPECT_EQ(tok_->vocab_size(), 92544);
  EXPECT_EQ(tok_->Encode("Hello world"), (Ids{9843, 2028}));
  EXPECT_EQ(tok_->Encode(" Hello world"), (Ids{22190, 2028}));
  EXPECT_EQ(tok_->Encode("Analyze the given image in a detail manner"),
            (Ids{2233, 54795, 410, 2823, 2321, 435, 395, 7856, 11720}));
  EXPECT_EQ(tok_->Encode("你好，世界！请描述这张图片。"),
            (Ids{77230, 60353, 68339, 60477, 60836, 69401, 72998, 68467, 60355}));
  EXPECT_EQ(tok_->Encode("中文 English 混合 text，テスト"),
            (Ids{69093, 6519, 262, 69275, 1614, 60353, 65092, 63905, 64225}));
  EXPECT_EQ(tok_->Encode("12345 3.14"), (Ids{4575, 1889, 262, 308, 281, 1101}));
  EXPECT_EQ(tok_->Encode("[UNUSED_TOKEN_146]user\nAnalyze the given image in a detail manner[UNUSED_TOKEN_145]\n"
                         "[UNUSED_TOKEN_146]assistant\n"),
            (Ids{92543, 1008, 364, 2233, 54795, 410, 2823, 2321, 435, 395, 7856, 11720, 92542, 364, 92543, 525, 11353, 364}));
  EXPECT_EQ(tok_->Encode("[UNUSED_TOKEN_146]user\nImage1 "), (Ids{92543, 1008, 364, 2056, 312, 262}));
  EXPECT_EQ(tok_->Encode("; Image2 "), (Ids{329, 4816, 314, 262}));
}

TEST_F(TokenizerTest, SpecialIdsComeFromTheVocabulary) {
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_EQ(tok_->im_start_id(), 92543);
  EXPECT_EQ(tok_->im_end_id(), 92542);
  EXPECT_EQ(tok_->PieceToId("no such piece at all"), -1);
}

TEST_F(TokenizerTest, ByteFallbackAndWhitespaceRuns) {
  EXPECT_EQ(tok_->Encode("😀"), (Ids{0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3}));
  Ids ids = tok_->Encode("a  b\tc\n\nd");
  EXPECT_EQ(tok_->DecodeRaw(ids), "a  b\tc\n\nd");
}

TEST_F(TokenizerTest, LiteralSpecialTokensSplitLikeTransformers) {
  // "a </s> b": the literal becomes id 2 and the spaces beside it are stripped.
  Ids ids = tok_->Encode("a </s> b");
  Ids expect = tok_->Encode("a");
  expect.push_back(2);
  Ids b = tok_->Encode("b");
  expect.insert(expect.end(), b.begin(), b.end());
  EXPECT_EQ(ids, expect);
}

TEST_F(TokenizerTest, ReplyDecodingDropsSpecialsCleansAndCuts) {
  Ids ids = tok_->Encode("Hello , world . It 's fine[UNUSED_TOKEN_145] tail");
  ids.insert(ids.begin(), 1);
  EXPECT_EQ(tok_->DecodeReply(ids), "Hello, world. It's fine");
}

TEST(CleanUp, TenReplacementsInOrder) {
  EXPECT_EQ(CleanUpTokenization("a . b ? c ! d , e ' f n't g 'm h 's i 've j 're"), "a. b? c! d, e'fn't g'm h's i've j're");
  // Order matters: " ' " is replaced before " 's".
  EXPECT_EQ(CleanUpTokenization("x ' s"), "x's");
}

}  // namespace
}  // namespace ixc
