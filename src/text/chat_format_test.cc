#include <gtest/gtest.h>

#include "text/chat_format.h"

namespace ixc {
namespace {

TEST(ChatFormat, TemplateWithSystemAndHistory) {
  std::string p = BuildChatPrompt("SYS", {{"q1", "a1"}}, "q2");
  EXPECT_EQ(p,
            "[UNUSED_TOKEN_146]system\nSYS[UNUSED_TOKEN_145]\n"
            "[UNUSED_TOKEN_146]user\nq1[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]assistant\na1[UNUSED_TOKEN_145]\n"
            "[UNUSED_TOKEN_146]user\nq2[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]assistant\n");
  EXPECT_EQ(BuildChatPrompt("", {}, "hi"), "[UNUSED_TOKEN_146]user\nhi[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]assistant\n");
}

TEST(ChatFormat, MetaInstructionIsFourLinesWithoutTrailingNewline) {
  std::string meta = kChatMetaInstruction;
  EXPECT_EQ(std::count(meta.begin(), meta.end(), '\n'), 3);
  EXPECT_NE(meta.back(), '\n');
}

TEST(ChatFormat, SingleImageIsPrependedToTheWholePrompt) {
  auto parts = SplitForImages("[UNUSED_TOKEN_146]user\nhi", 1);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(*parts, (std::vector<std::string>{"", "[UNUSED_TOKEN_146]user\nhi"}));
}

TEST(ChatFormat, PlaceholdersMatchImagesInOrder) {
  auto parts = SplitForImages("A <ImageHere>; B <ImageHere>; q", 2);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(*parts, (std::vector<std::string>{"A ", "; B ", "; q"}));
  auto none = SplitForImages("no images", 0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->size(), 1u);
}

TEST(ChatFormat, MismatchIsAnErrorThatSaysWhatWasExpected) {
  auto r = SplitForImages("A <ImageHere> B <ImageHere>", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("2 <ImageHere> placeholders but 1 image"), std::string::npos);
  EXPECT_FALSE(SplitForImages("two images, no marker", 2).ok());
  EXPECT_FALSE(SplitForImages("<ImageHere>", 0).ok());
}

}  // namespace
}  // namespace ixc
