// §6.2–6.4 geometry (expected sizes printed by the reference arithmetic in Python) and pixels against Pillow
// renderings made by tools/fixtures/make_video_fixtures.py with the same font file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "video/label_font.h"
#include "video/video.h"

namespace ixc {
namespace {

constexpr const char* kWqy = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc";

std::string Fixture(const std::string& name) { return std::string(IXC_VIDEO_FIXTURE_DIR) + "/" + name; }

Image LoadFixture(const std::string& name) {
  auto r = DecodeImageFile(Fixture(name));
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : Image{};
}

TEST(VideoComposite, FrameSizes) {
  struct Case {
    int w, h, ew, eh;
  };
  for (const Case& c : std::vector<Case>{{1920, 1080, 1120, 630},
                                         {1080, 1920, 630, 1120},
                                         {64, 48, 1120, 840},
                                         {48, 64, 840, 1120},
                                         {100, 100, 1120, 1120},
                                         {560, 205, 1120, 409},
                                         {205, 560, 410, 1120},
                                         {33, 1000, 36, 1120},
                                         {1000, 999, 1120, 1118},
                                         {1000, 1, 1120, 1},
                                         {2240, 2, 1120, 1}}) {
    int w, h;
    CompositeFrameSize(c.w, c.h, &w, &h);
    EXPECT_EQ(w, c.ew) << c.w << "x" << c.h;
    EXPECT_EQ(h, c.eh) << c.w << "x" << c.h;
  }
}

TEST(VideoComposite, TransformSizes) {
  struct Case {
    int w, h, rw, rh;
  };
  for (const Case& c : std::vector<Case>{{1120, 21760, 560, 10880},
                                         {1120, 2040, 560, 1020},
                                         {1920, 1160, 926, 560},
                                         {36160, 1160, 17456, 560},
                                         {1130, 1160, 560, 574},
                                         {1121, 560, 1121, 560},
                                         {560, 560, 560, 560}}) {
    int w, h;
    VideoTransformResizeSize(c.w, c.h, &w, &h);
    EXPECT_EQ(w, c.rw) << c.w << "x" << c.h;
    EXPECT_EQ(h, c.rh) << c.w << "x" << c.h;
  }
  // The spec's worked example: 32 landscape frames 1120x630 → composite 1120x21760 → 560x11200, 20 x 1 tiles.
  EXPECT_EQ(VideoImageTokenCount(20, 1), 8821);
  EXPECT_EQ(VideoImageTokenCount(1, 1), 841);
}

TEST(VideoComposite, TransformPadsTheLongSideWithWhite) {
  // Tall: 1120x1700 (e.g. 2.5 landscape frames) → 560x850 → padded to 560x1120.
  Image tall = MakeImage(1120, 1700, 10, 20, 30);
  Image t = VideoTransform(tall);
  ASSERT_EQ(t.width, 560);
  ASSERT_EQ(t.height, 1120);
  EXPECT_EQ(t.row(849)[0], 10);
  EXPECT_EQ(t.row(850)[0], 255);
  EXPECT_EQ(t.row(1119)[559 * 3 + 2], 255);
  // Wide: 3000x1160 → int(560·3000/1160) = 1448 wide → padded to 1680.
  Image wide = MakeImage(3000, 1160, 40, 50, 60);
  Image u = VideoTransform(wide);
  ASSERT_EQ(u.width, 1680);
  ASSERT_EQ(u.height, 560);
  EXPECT_EQ(u.row(0)[1447 * 3], 40);
  EXPECT_EQ(u.row(0)[1448 * 3], 255);
  EXPECT_EQ(u.row(559)[1679 * 3], 255);
  const int rows = u.height / 560, cols = u.width / 560;
  EXPECT_EQ(VideoImageTokenCount(rows, cols), (1 * 3 + 1) * 400 + 1 + 2 * 20);
}

// Measured against Pillow 9.4 + FreeType 2.12.1 (Debian 12): the composites and their transforms are identical
// byte for byte, labels included. Frames and separators must stay exact anywhere (they only involve the resize
// and integer geometry). Label bands may differ where another FreeType release hints or rasterises differently,
// so they get a bound: mean absolute difference <= 1.0 per channel over the band (a shifted glyph edge changes
// about 2% of the band's samples by up to 255, i.e. a mean near 5) and at most 3% of band pixels different.
struct Region {
  int64_t pixels = 0, differing = 0, sum = 0;
  int max = 0;
  void Add(int d, bool first_channel) {
    sum += d;
    max = std::max(max, d);
    if (first_channel) ++pixels;
  }
};

void CompareComposite(const Image& got, const Image& want, bool landscape, int frame_extent) {
  ASSERT_EQ(got.width, want.width);
  ASSERT_EQ(got.height, want.height);
  Region band, rest;
  for (int y = 0; y < got.height; ++y) {
    for (int x = 0; x < got.width; ++x) {
      // Label band: the 40 rows (landscape) above each frame, or the top 40 rows (portrait).
      const bool in_band = landscape ? (y % (frame_extent + 50)) < 40 : y < 40;
      Region& r = in_band ? band : rest;
      bool differ = false;
      for (int c = 0; c < 3; ++c) {
        const int d = std::abs(int(got.row(y)[x * 3 + c]) - int(want.row(y)[x * 3 + c]));
        r.Add(d, c == 0);
        differ |= d != 0;
      }
      r.differing += differ;
    }
  }
  EXPECT_EQ(rest.max, 0) << "frames or separators differ from Pillow in " << rest.differing << " pixels";
  const double band_mean = static_cast<double>(band.sum) / (3.0 * band.pixels);
  const double band_frac = static_cast<double>(band.differing) / band.pixels;
  EXPECT_LE(band_mean, 1.0);
  EXPECT_LE(band_frac, 0.03);
  std::printf("label bands: %lld pixels, mean abs diff %.4f, max %d, %.3f%% pixels differ\n", (long long)band.pixels,
              band_mean, band.max, 100 * band_frac);
}

void CheckFixtureSet(const std::string& name, bool landscape) {
  if (!std::filesystem::exists(kWqy)) GTEST_SKIP() << kWqy << " missing (Debian fonts-wqy-zenhei)";
  std::vector<Image> frames;
  for (int i = 0; i < 3; ++i) frames.push_back(LoadFixture(name + "_frame" + std::to_string(i) + ".png"));
  const Image want = LoadFixture(name + "_composite.png");
  auto got = BuildVideoComposite(frames, kWqy);
  ASSERT_TRUE(got.ok()) << got.status().message();
  // Geometry: 3 frames of 1120x630 stacked (landscape) or 630x1120 side by side (portrait).
  if (landscape) {
    EXPECT_EQ(got->width, 1120);
    EXPECT_EQ(got->height, 3 * (630 + 50));
  } else {
    EXPECT_EQ(got->width, 3 * (630 + 10));
    EXPECT_EQ(got->height, 1120 + 40);
  }
  CompareComposite(*got, want, landscape, 630);
  const Image t = VideoTransform(*got);
  const Image want_t = LoadFixture(name + "_transformed.png");
  ASSERT_EQ(t.width, want_t.width);
  ASSERT_EQ(t.height, want_t.height);
  EXPECT_EQ(t.width % 560, 0);
  EXPECT_EQ(t.height % 560, 0);
  EXPECT_EQ(std::min(t.width, t.height), 560);
  int max_diff = 0;
  for (size_t i = 0; i < t.rgb.size(); ++i) max_diff = std::max(max_diff, std::abs(int(t.rgb[i]) - int(want_t.rgb[i])));
  // The transform blurs label differences; on the fixture's platform it is exact.
  EXPECT_LE(max_diff, 64) << "transformed composite differs from Pillow";
  std::printf("transformed %dx%d: max abs diff %d\n", t.width, t.height, max_diff);
}

TEST(VideoComposite, LandscapeMatchesPillow) { CheckFixtureSet("landscape", true); }
TEST(VideoComposite, PortraitMatchesPillow) { CheckFixtureSet("portrait", false); }

TEST(VideoComposite, OrientationFollowsTheLastFrame) {
  if (!std::filesystem::exists(kWqy)) GTEST_SKIP() << kWqy << " missing";
  std::vector<Image> frames = {MakeImage(40, 20, 1, 2, 3), MakeImage(20, 40, 4, 5, 6)};
  auto c = BuildVideoComposite(frames, kWqy);  // last frame portrait → side by side
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->width, 1120 + 10 + 560 + 10);
  EXPECT_EQ(c->height, 1120 + 40);
  std::swap(frames[0], frames[1]);
  c = BuildVideoComposite(frames, kWqy);  // last frame landscape → stacked
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->width, 1120);
  EXPECT_EQ(c->height, 1120 + 50 + 560 + 50);
}

TEST(VideoComposite, SeparatorsAreTwoPixelLines) {
  if (!std::filesystem::exists(kWqy)) GTEST_SKIP() << kWqy << " missing";
  auto c = BuildVideoComposite({MakeImage(64, 36, 200, 200, 200), MakeImage(64, 36, 200, 200, 200)}, kWqy);
  ASSERT_TRUE(c.ok());
  // Frame 0 occupies rows 40..669; the line sits at rows 675 and 676, white around it.
  for (int y : {670, 674, 677, 679}) EXPECT_EQ(c->row(y)[5 * 3], 255) << y;
  for (int y : {675, 676}) {
    EXPECT_EQ(c->row(y)[0], 0) << y;
    EXPECT_EQ(c->row(y)[(c->width - 1) * 3], 0) << y;
  }
  EXPECT_EQ(c->row(669)[0], 200);
  EXPECT_EQ(c->row(720)[0], 200);  // frame 1 starts at 680 + 40
}

TEST(VideoComposite, BadInput) {
  EXPECT_FALSE(BuildVideoComposite({}, kWqy).ok());
  EXPECT_FALSE(BuildVideoComposite({MakeImage(0, 0)}, kWqy).ok());
  Image broken = MakeImage(10, 10);
  broken.rgb.resize(7);
  EXPECT_FALSE(BuildVideoComposite({broken}, kWqy).ok());
  // 2000:1 resizes to a zero-height frame (the reference crashes in PIL).
  EXPECT_EQ(BuildVideoComposite({MakeImage(2000, 1)}, kWqy).status().code(), StatusCode::kInvalidArgument);
  // Over the composite cap.
  EXPECT_EQ(BuildVideoComposite({MakeImage(64, 48), MakeImage(64, 48)}, kWqy, 1000).status().code(),
            StatusCode::kResourceExhausted);
  // A missing font is reported, not a crash.
  EXPECT_FALSE(BuildVideoComposite({MakeImage(64, 48)}, "/nonexistent/font.ttf").ok());
}

}  // namespace
}  // namespace ixc
