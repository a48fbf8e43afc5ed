// ResizeBilinearPillow against Pillow 9.4's Image.resize(BILINEAR): bit-exact on every fixture case.
#include <gtest/gtest.h>

#include "media/media_test_util.h"
#include "media/resize.h"

namespace ixc {
namespace {

TEST(ResizeBilinearPillowTest, BitExactWithPillowFixtures) {
  const auto manifest = media_test::Manifest();
  ASSERT_GE(manifest["resize"].size(), 10u);
  for (const auto& c : manifest["resize"]) {
    const int in_w = c["in_w"], in_h = c["in_h"], out_w = c["out_w"], out_h = c["out_h"];
    SCOPED_TRACE(StrFormat("%dx%d -> %dx%d", in_w, in_h, out_w, out_h));
    const Image src = media_test::Synth(in_w, in_h, c["seed"], c["kind"]);
    const Image out = ResizeBilinearPillow(src, out_w, out_h);
    ASSERT_EQ(out.width, out_w);
    ASSERT_EQ(out.height, out_h);
    if (c.contains("tensor")) {
      const TensorView* want = media_test::ExpectedTensor(c["tensor"]);
      ASSERT_NE(want, nullptr);
      ASSERT_EQ(want->shape, (Shape{out_h, out_w, 3}));
      const uint8_t* w = static_cast<const uint8_t*>(want->data);
      for (size_t i = 0; i < out.rgb.size(); ++i) {
        ASSERT_EQ(out.rgb[i], w[i]) << "pixel " << i / 3 % out_w << "," << i / 3 / out_w << " channel " << i % 3;
      }
    }
    EXPECT_EQ(media_test::Checksum(out), media_test::ChecksumOf(c["checksum"]));
  }
}

TEST(ResizeBilinearPillowTest, IdentityIsACopy) {
  const Image src = media_test::Synth(31, 17, 1, 0);
  EXPECT_EQ(ResizeBilinearPillow(src, 31, 17).rgb, src.rgb);
}

TEST(ResizeBilinearPillowTest, HandComputedHalving) {
  // 2x1 -> 1x1: support 2 covers both pixels with weight 0.75 each, normalised to 1/2 = 2^21 in 22-bit fixed point;
  // (10 + 21) / 2 = 15.5 rounds half up to 16.
  Image src = MakeImage(2, 1);
  src.rgb = {10, 0, 255, 21, 1, 255};
  const Image out = ResizeBilinearPillow(src, 1, 1);
  EXPECT_EQ(out.rgb, (std::vector<uint8_t>{16, 1, 255}));
}

TEST(ResizeBilinearPillowTest, ConstantImagesStayConstant) {
  // Coefficients of each output sum to 2^22 within rounding, which must never move a flat colour.
  for (int v : {0, 1, 128, 254, 255}) {
    const Image src = MakeImage(97, 61, v, v, v);
    for (auto [w, h] : {std::pair{13, 7}, {560, 353}, {96, 61}, {97, 1}}) {
      const Image out = ResizeBilinearPillow(src, w, h);
      for (uint8_t p : out.rgb) ASSERT_EQ(p, v) << w << "x" << h;
    }
  }
}

}  // namespace
}  // namespace ixc
