// The label renderer against Pillow 9.4 (raqm layout, FreeType 2.12) drawing the same text with the same font file
// (tools/fixtures/make_video_fixtures.py → labels.png).
#include "video/label_font.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/testing.h"
#include "video/video.h"

namespace ixc {
namespace {

constexpr const char* kWqy = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc";
constexpr uint8_t kBlack[3] = {0, 0, 0};

std::string Fixture(const std::string& name) { return std::string(IXC_VIDEO_FIXTURE_DIR) + "/" + name; }

#define IXC_REQUIRE_WQY()                                                                             \
  do {                                                                                                \
    if (!std::filesystem::exists(kWqy)) GTEST_SKIP() << kWqy << " missing (Debian fonts-wqy-zenhei)"; \
  } while (0)

struct DiffStats {
  int max = 0;
  double mean = 0;
  int64_t count = 0;  // pixels with any channel different
};

DiffStats Diff(const Image& a, const Image& b, int y0, int y1) {
  DiffStats s;
  int64_t sum = 0, n = 0;
  for (int y = y0; y < y1; ++y) {
    for (int x = 0; x < a.width; ++x) {
      bool differ = false;
      for (int c = 0; c < 3; ++c) {
        const size_t i = (static_cast<size_t>(y) * a.width + x) * 3 + c;
        const int d = std::abs(int(a.rgb[i]) - int(b.rgb[i]));
        s.max = std::max(s.max, d);
        sum += d;
        ++n;
        differ |= d != 0;
      }
      s.count += differ;
    }
  }
  s.mean = n ? static_cast<double>(sum) / n : 0;
  return s;
}

TEST(LabelFont, MatchesPillowLabelsSheet) {
  IXC_REQUIRE_WQY();
  auto expected = DecodeImageFile(Fixture("labels.png"));
  ASSERT_TRUE(expected.ok()) << expected.status().message();
  // Rebuild the sheet's background exactly as the fixture script does, then draw the same labels.
  Image img = MakeImage(expected->width, expected->height);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      uint8_t* p = img.row(y) + x * 3;
      p[0] = static_cast<uint8_t>((x * 255) / (img.width - 1));
      p[1] = static_cast<uint8_t>((y * 7) % 256);
      p[2] = static_cast<uint8_t>(200 - (x + y) % 150);
    }
  }
  auto font = LabelFont::Open(kWqy, 40);
  ASSERT_TRUE(font.ok()) << font.status().message();
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((*font)->Draw(&img, (i % 5) * 3, 40 * i, StrFormat("<IMAGE %d>", i), kBlack).ok());
  }
  ASSERT_TRUE((*font)->Draw(&img, 200, 40 * 40, "<IMAGE 7>", kBlack).ok());  // clipped at the right edge
  const DiffStats d = Diff(img, *expected, 0, img.height);
  // Same FreeType library, load flags, advances and blending as Pillow: the sheet is reproduced exactly.
  EXPECT_EQ(d.max, 0) << "mean " << d.mean << " differing pixels " << d.count;
}

TEST(LabelFont, ClipsAtEveryEdge) {
  IXC_REQUIRE_WQY();
  auto font = LabelFont::Open(kWqy, 40);
  ASSERT_TRUE(font.ok());
  Image img = MakeImage(30, 20, 255, 255, 255);
  for (int x : {-300, -50, 0, 10, 29, 500}) {
    for (int y : {-100, -30, 0, 15, 19, 300}) EXPECT_TRUE((*font)->Draw(&img, x, y, "<IMAGE 31>", kBlack).ok());
  }
  Image empty = MakeImage(0, 0);
  EXPECT_TRUE((*font)->Draw(&empty, 0, 0, "<IMAGE 0>", kBlack).ok());
}

TEST(LabelFont, BadFontIsAnError) {
  EXPECT_FALSE(LabelFont::Open("/nonexistent/font.ttf", 40).ok());
  EXPECT_FALSE(LabelFont::Open(Fixture("meta.json"), 40).ok());  // not a font
}

TEST(LabelFont, FindLabelFont) {
  const std::string dir = testing::MakeTempDir("video_font");
  // An explicit font must exist.
  EXPECT_EQ(FindLabelFont("", "/nonexistent.ttf").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*FindLabelFont("", Fixture("meta.json")), Fixture("meta.json"));
  // SimHei.ttf in the model folder wins over the system font.
  {
    FILE* f = std::fopen((dir + "/SimHei.ttf").c_str(), "w");
    std::fclose(f);
  }
  EXPECT_EQ(*FindLabelFont(dir, ""), dir + "/SimHei.ttf");
  std::filesystem::remove_all(dir);
  if (std::filesystem::exists(kWqy)) {
    EXPECT_EQ(*FindLabelFont(dir, ""), kWqy);
  }
}

}  // namespace
}  // namespace ixc
