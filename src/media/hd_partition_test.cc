// The HD partition geometry (every worked example of spec §3.2) and HdTransform + the CLIP views against the
// fixture script's Python version of the reference pipeline.
#include <gtest/gtest.h>

#include "media/hd_partition.h"
#include "media/media_test_util.h"
#include "media/pixels.h"

namespace ixc {
namespace {

struct GeometryCase {
  int w, h, hd_num;
  int resized_w, resized_h, padded_w, padded_h, rows, cols;
};

TEST(ComputeHdGeometryTest, SpecWorkedExamples) {
  const GeometryCase cases[] = {
      {1920, 1080, 24, 2240, 1260, 2240, 1680, 3, 4},  // 5 281 tokens
      {1080, 1920, 24, 1260, 2240, 1680, 2240, 4, 3},  // portrait: padding on the right
      {1000, 1000, 24, 1120, 1120, 1120, 1120, 2, 2},
      {800, 600, 24, 1120, 840, 1120, 1120, 2, 2},
      {4000, 3000, 24, 2800, 2100, 2800, 2240, 4, 5},
      {500, 100, 24, 560, 112, 560, 560, 1, 1},
      {561, 561, 24, 1120, 1120, 1120, 1120, 2, 2},
      {1280, 720, 24, 1680, 945, 1680, 1120, 2, 3},
      {7680, 4320, 24, 3360, 1890, 3360, 2240, 4, 6},
      {1920, 1080, 6, 1680, 945, 1680, 1120, 2, 3},
      // 560 / (560/205) is 204.99999999999997 in doubles: the reference truncates it to 204.
      {560, 205, 24, 560, 204, 560, 560, 1, 1},
      {205, 560, 24, 204, 560, 560, 560, 1, 1},
      // The golden set's inputs.
      {800, 600, 24, 1120, 840, 1120, 1120, 2, 2},
      {400, 1000, 24, 448, 1120, 560, 1120, 2, 1},
      {1700, 300, 12, 2240, 395, 2240, 560, 1, 4},
      {120, 90, 24, 560, 420, 560, 560, 1, 1},
      {564, 376, 24, 1120, 746, 1120, 1120, 2, 2},
      {400, 1000, 6, 448, 1120, 560, 1120, 2, 1},
  };
  for (const GeometryCase& c : cases) {
    SCOPED_TRACE(StrFormat("%dx%d hd_num %d", c.w, c.h, c.hd_num));
    const HdGeometry g = ComputeHdGeometry(c.w, c.h, c.hd_num);
    EXPECT_EQ(g.resized_w, c.resized_w);
    EXPECT_EQ(g.resized_h, c.resized_h);
    EXPECT_EQ(g.padded_w, c.padded_w);
    EXPECT_EQ(g.padded_h, c.padded_h);
    EXPECT_EQ(g.rows, c.rows);
    EXPECT_EQ(g.cols, c.cols);
    EXPECT_EQ(g.transposed, c.w < c.h);
  }
}

// Invariants of §3.2 over a scan: whole tiles, rows * cols <= hd_num, the long side exactly s * 560, one padded axis.
TEST(ComputeHdGeometryTest, InvariantsOverAScan) {
  for (int hd_num : {1, 4, 6, 9, 12, 24, 25, 55}) {
    for (int w = 1; w < 5000; w += 37) {
      for (int h = 1; h < 5000; h += 53) {
        const HdGeometry g = ComputeHdGeometry(w, h, hd_num);
        ASSERT_EQ(g.padded_w % kHdTile, 0);
        ASSERT_EQ(g.padded_h % kHdTile, 0);
        ASSERT_LE(g.rows * g.cols, hd_num) << w << "x" << h;
        ASSERT_GE(g.resized_h, 1);
        ASSERT_GE(g.resized_w, 1);
        if (g.transposed) {
          ASSERT_EQ(g.resized_h, g.padded_h);
          ASSERT_EQ(g.resized_h % kHdTile, 0);
          ASSERT_LE(g.resized_w, g.padded_w);
          ASSERT_GT(g.resized_w, g.padded_w - kHdTile);
        } else {
          ASSERT_EQ(g.resized_w, g.padded_w);
          ASSERT_EQ(g.resized_w % kHdTile, 0);
          ASSERT_LE(g.resized_h, g.padded_h);
          ASSERT_GT(g.resized_h, g.padded_h - kHdTile);
        }
      }
    }
  }
}

TEST(ComputeHdGeometryTest, GuardsWhereTheReferenceWouldCrash) {
  // hd_num < 1 would give a zero-width resize in the reference; it behaves as 1.
  const HdGeometry g0 = ComputeHdGeometry(1920, 1080, 0);
  const HdGeometry g1 = ComputeHdGeometry(1920, 1080, 1);
  EXPECT_EQ(g0.padded_w, g1.padded_w);
  EXPECT_EQ(g0.padded_h, g1.padded_h);
  EXPECT_EQ(g1.rows * g1.cols, 1);
  // An aspect ratio beyond s * 560 : 1 truncates the short side to 0; it becomes 1 row of pixels.
  const HdGeometry thin = ComputeHdGeometry(100000, 1, 24);
  EXPECT_EQ(thin.resized_w, 24 * kHdTile);
  EXPECT_EQ(thin.resized_h, 1);
  EXPECT_EQ(thin.padded_h, kHdTile);
  const Image out = HdTransform(MakeImage(20000, 1, 9, 9, 9), 2);
  EXPECT_EQ(out.width, 1120);
  EXPECT_EQ(out.height, 560);
  EXPECT_EQ(out.row(0)[0], 9);
  EXPECT_EQ(out.row(1)[0], 255);
}

TEST(HdTransformTest, PadsWhiteAtTheBottomOrRight) {
  const Image land = HdTransform(MakeImage(800, 600, 0, 0, 0), 24);
  ASSERT_EQ(land.width, 1120);
  ASSERT_EQ(land.height, 1120);
  EXPECT_EQ(land.row(839)[3 * 1119], 0);
  EXPECT_EQ(land.row(840)[0], 255);
  const Image port = HdTransform(MakeImage(600, 800, 0, 0, 0), 24);
  ASSERT_EQ(port.width, 1120);
  ASSERT_EQ(port.height, 1120);
  EXPECT_EQ(port.row(1119)[3 * 839], 0);
  EXPECT_EQ(port.row(0)[3 * 840], 255);
}

// HdTransform, NormalizeClip and MakeVitViews against the fixture script's Pillow + torch pipeline, bit for bit.
TEST(HdTransformTest, MatchesReferencePipelineFixtures) {
  const auto manifest = media_test::Manifest();
  ASSERT_GE(manifest["hd"].size(), 5u);
  for (const auto& c : manifest["hd"]) {
    const int w = c["w"], h = c["h"], hd_num = c["hd_num"];
    SCOPED_TRACE(StrFormat("%dx%d hd_num %d", w, h, hd_num));
    const Image hd = HdTransform(media_test::Synth(w, h, c["seed"], c["kind"]), hd_num);
    ASSERT_EQ(hd.width, c["out_w"].get<int>());
    ASSERT_EQ(hd.height, c["out_h"].get<int>());
    const HdGeometry g = ComputeHdGeometry(w, h, hd_num);
    EXPECT_EQ(g.padded_w, hd.width);
    EXPECT_EQ(g.padded_h, hd.height);
    EXPECT_EQ(media_test::Checksum(hd), media_test::ChecksumOf(c["hd_checksum"]));

    const PixelTensor norm = NormalizeClip(hd);
    EXPECT_EQ(media_test::Checksum(norm), media_test::ChecksumOf(c["norm_checksum"]));

    const std::vector<PixelTensor> views = MakeVitViews(norm, kHdTile);
    ASSERT_EQ(views.size(), 1u + static_cast<size_t>(g.rows) * g.cols);
    const PixelTensor& global = views[0];
    ASSERT_EQ(global.height, kHdTile);
    ASSERT_EQ(global.width, kHdTile);
    const TensorView* sub = media_test::ExpectedTensor(c["global_sub"]);
    ASSERT_NE(sub, nullptr);
    const float* want = static_cast<const float*>(sub->data);
    const int sh = static_cast<int>(sub->dim(1)), sw = static_cast<int>(sub->dim(2));
    for (int ch = 0; ch < 3; ++ch) {
      for (int y = 0; y < sh; ++y) {
        for (int x = 0; x < sw; ++x) {
          ASSERT_EQ(global.plane(ch)[static_cast<size_t>(16 * y) * kHdTile + 16 * x],
                    want[(static_cast<size_t>(ch) * sh + y) * sw + x])
              << "channel " << ch << " at " << 16 * x << "," << 16 * y;
        }
      }
    }
    EXPECT_EQ(media_test::Checksum(global), media_test::ChecksumOf(c["global_checksum"]));
  }
}

}  // namespace
}  // namespace ixc
