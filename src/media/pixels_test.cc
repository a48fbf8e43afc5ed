// NormalizeClip, ResizeBicubicTorch (bit-exact against PyTorch fixtures) and MakeVitViews' layout.
#include <cmath>

#include <gtest/gtest.h>

#include "media/media_test_util.h"
#include "media/pixels.h"

namespace ixc {
namespace {

TEST(NormalizeClipTest, Float32OpsInTheReferenceOrder) {
  Image im = MakeImage(3, 2);
  im.rgb = {0, 128, 255, 255, 255, 255, 1, 2, 3, 254, 100, 7, 9, 8, 7, 6, 5, 4};
  const PixelTensor t = NormalizeClip(im);
  ASSERT_EQ(t.height, 2);
  ASSERT_EQ(t.width, 3);
  ASSERT_EQ(t.data.size(), 18u);
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(kClipMean[c]), std = static_cast<float>(kClipStd[c]);
    for (int i = 0; i < 6; ++i) {
      volatile float x = static_cast<float>(im.rgb[3 * i + c]) / 255.0f;  // two separate float32 ops
      volatile float d = x - mean;
      EXPECT_EQ(t.plane(c)[i], d / std) << "channel " << c << " pixel " << i;
    }
  }
  // White padding becomes (1 - mean) / std, e.g. 1.9303361 for red.
  EXPECT_NEAR(t.plane(0)[1], 1.9303361f, 1e-6f);
}

TEST(ResizeBicubicTorchTest, BitExactWithPyTorchFixtures) {
  const auto manifest = media_test::Manifest();
  ASSERT_GE(manifest["bicubic"].size(), 10u);
  for (const auto& c : manifest["bicubic"]) {
    const int h = c["h"], w = c["w"], oh = c["out_h"], ow = c["out_w"];
    SCOPED_TRACE(StrFormat("%dx%d -> %dx%d", h, w, oh, ow));
    const PixelTensor out = ResizeBicubicTorch(media_test::SynthFloat(h, w, c["seed"]), oh, ow);
    ASSERT_EQ(out.height, oh);
    ASSERT_EQ(out.width, ow);
    if (c.contains("tensor")) {
      const TensorView* want = media_test::ExpectedTensor(c["tensor"]);
      ASSERT_NE(want, nullptr);
      ASSERT_EQ(want->shape, (Shape{3, oh, ow}));
      const float* wv = static_cast<const float*>(want->data);
      for (size_t i = 0; i < out.data.size(); ++i) ASSERT_EQ(out.data[i], wv[i]) << "element " << i;
    }
    EXPECT_EQ(media_test::Checksum(out), media_test::ChecksumOf(c["checksum"]));
  }
}

TEST(ResizeBicubicTorchTest, IdentityIsAnExactCopy) {
  const PixelTensor src = media_test::SynthFloat(37, 41, 3);
  const PixelTensor out = ResizeBicubicTorch(src, 37, 41);
  EXPECT_EQ(out.data, src.data);
}

TEST(ResizeBicubicTorchTest, ConstantStaysNearConstant) {
  // Each axis's four weights sum to 1 only up to float32 rounding (PyTorch's too), so a flat input moves by up to
  // about ten ulps of its value (1.5: 1.2e-7 each).
  PixelTensor src;
  src.height = 13;
  src.width = 29;
  src.data.assign(3 * 13 * 29, 1.5f);
  const PixelTensor out = ResizeBicubicTorch(src, 560, 77);
  for (float v : out.data) ASSERT_NEAR(v, 1.5f, 2.5e-6f);
}

TEST(MakeVitViewsTest, GlobalViewThenTilesRowMajor) {
  // A 2 x 3 grid of 4-pixel tiles, each filled with its own index (+ channel offset).
  const int tile = 4, rows = 2, cols = 3;
  PixelTensor hd;
  hd.height = rows * tile;
  hd.width = cols * tile;
  hd.data.resize(3 * hd.height * hd.width);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < hd.height; ++y) {
      for (int x = 0; x < hd.width; ++x) {
        hd.plane(c)[y * hd.width + x] = static_cast<float>((y / tile) * cols + x / tile + 100 * c);
      }
    }
  }
  const std::vector<PixelTensor> views = MakeVitViews(hd, tile);
  ASSERT_EQ(views.size(), 1u + rows * cols);
  const PixelTensor global = ResizeBicubicTorch(hd, tile, tile);
  EXPECT_EQ(views[0].data, global.data);
  for (int i = 0; i < rows * cols; ++i) {
    const PixelTensor& v = views[1 + i];
    ASSERT_EQ(v.height, tile);
    ASSERT_EQ(v.width, tile);
    for (int c = 0; c < 3; ++c) {
      for (int k = 0; k < tile * tile; ++k) ASSERT_EQ(v.plane(c)[k], static_cast<float>(i + 100 * c)) << "tile " << i;
    }
  }
}

TEST(MakeVitViewsTest, SingleTileGlobalViewIsTheTile) {
  const PixelTensor hd = media_test::SynthFloat(560, 560, 9);
  const std::vector<PixelTensor> views = MakeVitViews(hd);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].data, hd.data);  // PyTorch's in == out path
  EXPECT_EQ(views[1].data, hd.data);
}

}  // namespace
}  // namespace ixc
