// Decoding: every fixture file against Pillow's convert('RGB'), then hostile inputs made here (truncations,
// corruptions, decompression bombs, zero sizes, unsupported variants): each must give a clear error, never a crash.
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "media/image.h"
#include "media/media_test_util.h"

namespace ixc {
namespace {

using media_test::ExpectedTensor;
using media_test::FixtureDir;
using media_test::Manifest;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string DecodeDir() { return FixtureDir() + "/decode/"; }

Result<Image> DecodeBytes(const std::string& bytes, const std::string& name = "mem.bin",
                          const ImageLimits& limits = {}) {
  return DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name, limits);
}

std::vector<std::string> FixtureFiles() {
  std::vector<std::string> files;
  for (const auto& e : Manifest()["decode"]) files.push_back(e["file"].get<std::string>());
  return files;
}

TEST(DecodeTest, MatchesPillowConvertRgbForEveryFixture) {
  const auto manifest = Manifest();
  ASSERT_GT(manifest["decode"].size(), 40u);
  for (const auto& e : manifest["decode"]) {
    const std::string file = e["file"];
    SCOPED_TRACE(file + " (Pillow mode " + e["pillow_mode"].get<std::string>() + ")");
    auto r = DecodeImageFile(DecodeDir() + file);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const TensorView* want = ExpectedTensor(file);
    ASSERT_NE(want, nullptr);
    ASSERT_EQ(want->shape, (Shape{r->height, r->width, 3}));
    const uint8_t* w = static_cast<const uint8_t*>(want->data);
    int64_t bad = 0, first = -1;
    for (size_t i = 0; i < r->rgb.size(); ++i) {
      if (r->rgb[i] != w[i]) {
        if (first < 0) first = static_cast<int64_t>(i);
        ++bad;
      }
    }
    EXPECT_EQ(bad, 0) << "first mismatch at byte " << first << ": got " << int(r->rgb[first]) << ", Pillow "
                      << int(w[first]);
  }
}

TEST(DecodeTest, FormatComesFromMagicBytesNotExtension) {
  const std::string dir = testing::MakeTempDir("media_magic");
  const std::string png = ReadBytes(DecodeDir() + "rgb8.png");
  testing::WriteFile(dir + "/really_a_png.jpg", png);
  auto r = DecodeImageFile(dir + "/really_a_png.jpg");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->width, 23);
  EXPECT_EQ(DetectImageFormat(reinterpret_cast<const uint8_t*>(png.data()), png.size()), ImageFormat::kPng);

  testing::WriteFile(dir + "/text.png", "this is not an image at all");
  r = DecodeImageFile(dir + "/text.png");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("text.png"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("unsupported image format"), std::string::npos);
  // TIFF and friends are valid images we do not read.
  EXPECT_EQ(DecodeBytes(std::string("II*\0\x08\0\0\0", 8)).status().code(), StatusCode::kUnimplemented);
}

TEST(DecodeTest, MissingAndEmptyFiles) {
  auto r = DecodeImageFile("/nonexistent/dir/x.png");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/dir/x.png"), std::string::npos);

  const std::string dir = testing::MakeTempDir("media_empty");
  testing::WriteFile(dir + "/empty.jpg", "");
  r = DecodeImageFile(dir + "/empty.jpg");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("empty.jpg"), std::string::npos);
  EXPECT_NE(r.status().message().find("empty"), std::string::npos);
}

// Cutting any fixture in the middle of its pixel data (or inside its header) must be an error naming the file.
TEST(DecodeTest, TruncatedFilesAreErrors) {
  for (const std::string& file : FixtureFiles()) {
    const std::string bytes = ReadBytes(DecodeDir() + file);
    for (size_t keep : {size_t{3}, size_t{12}, size_t{30}, bytes.size() / 2, bytes.size() * 3 / 4}) {
      if (keep >= bytes.size()) continue;
      SCOPED_TRACE(file + " cut to " + std::to_string(keep) + " bytes");
      auto r = DecodeBytes(bytes.substr(0, keep), file);
      ASSERT_FALSE(r.ok()) << "decoded " << r->width << "x" << r->height;
      EXPECT_NE(r.status().message().find(file), std::string::npos) << r.status().message();
      EXPECT_TRUE(r.status().code() == StatusCode::kDataLoss || r.status().code() == StatusCode::kUnimplemented)
          << r.status().ToString();
    }
  }
}

// Random byte flips and cuts: any outcome but a crash (this is the case the sanitizer build is for).
TEST(DecodeTest, CorruptedFilesNeverCrash) {
  std::mt19937 rng(1234);
  int errors = 0, decoded = 0;
  ImageLimits limits;
  limits.max_pixels = 1 << 22;  // corrupt headers may claim large sizes; keep the test's memory small
  for (const std::string& file : FixtureFiles()) {
    const std::string original = ReadBytes(DecodeDir() + file);
    for (int trial = 0; trial < 60; ++trial) {
      std::string bytes = original;
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) {
        // Keep the magic bytes so the format's own decoder, not the detector, meets the damage.
        const size_t at = 4 + rng() % (bytes.size() - 4);
        bytes[at] = static_cast<char>(rng() & 0xFF);
      }
      if (trial % 3 == 0) bytes.resize(4 + rng() % (bytes.size() - 4));
      auto r = DecodeBytes(bytes, file, limits);
      if (r.ok()) {
        ++decoded;
        ASSERT_EQ(r->rgb.size(), static_cast<size_t>(r->width) * r->height * 3);
      } else {
        ++errors;
        ASSERT_FALSE(r.status().message().empty());
      }
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(decoded + errors, 0);
}

void PutBe32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (24 - 8 * i));
}
void PutLe32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (8 * i));
}
void PutLe16(std::string* s, size_t at, uint16_t v) {
  (*s)[at] = static_cast<char>(v & 0xFF);
  (*s)[at + 1] = static_cast<char>(v >> 8);
}

// A minimal valid PNG chunk (the CRC must be right or libpng rejects the header for that instead).
std::string PngChunk(const std::string& type, const std::string& data) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[n] = c;
    }
    return true;
  }();
  (void)init;
  std::string body = type + data;
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char ch : body) crc = table[(crc ^ ch) & 0xFF] ^ (crc >> 8);
  crc ^= 0xFFFFFFFFu;
  std::string out(4, '\0');
  PutBe32(&out, 0, static_cast<uint32_t>(data.size()));
  out += body;
  std::string c(4, '\0');
  PutBe32(&c, 0, crc);
  return out + c;
}

std::string PngWithSize(uint32_t w, uint32_t h) {
  std::string ihdr(13, '\0');
  PutBe32(&ihdr, 0, w);
  PutBe32(&ihdr, 4, h);
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 2;  // RGB
  // A tiny (invalid for that size) IDAT: the size check must fire before any of it is inflated.
  const std::string empty_zlib("\x78\x9c\x03\x00\x00\x00\x00\x01", 8);
  return std::string("\x89PNG\r\n\x1a\n", 8) + PngChunk("IHDR", ihdr) + PngChunk("IDAT", empty_zlib) +
         PngChunk("IEND", "");
}

void ExpectOverLimit(const Result<Image>& r, const std::string& what) {
  ASSERT_FALSE(r.ok()) << what << " decoded " << r->width << "x" << r->height;
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << what << ": " << r.status().ToString();
  EXPECT_NE(r.status().message().find("max_pixels"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
}

TEST(DecodeTest, DecompressionBombsAreRejectedFromTheHeader) {
  ExpectOverLimit(DecodeBytes(PngWithSize(100000, 100000), "bomb.png"), "bomb.png");

  // JPEG: patch the SOF0 frame size to 65000 x 65000.
  std::string jpg = ReadBytes(DecodeDir() + "rgb420.jpg");
  size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpg[sof + 5] = static_cast<char>(0xFD);
  jpg[sof + 6] = static_cast<char>(0xE8);
  jpg[sof + 7] = static_cast<char>(0xFD);
  jpg[sof + 8] = static_cast<char>(0xE8);
  ExpectOverLimit(DecodeBytes(jpg, "bomb.jpg"), "bomb.jpg");

  // GIF: a 65535 x 65535 logical screen.
  std::string gif = ReadBytes(DecodeDir() + "pillow.gif");
  PutLe16(&gif, 6, 65535);
  PutLe16(&gif, 8, 65535);
  ExpectOverLimit(DecodeBytes(gif, "bomb.gif"), "bomb.gif");

  // BMP: 100000 x 100000 pixels claimed by a 1.3 kB file.
  std::string bmp = ReadBytes(DecodeDir() + "rgb24.bmp");
  PutLe32(&bmp, 18, 100000);
  PutLe32(&bmp, 22, 100000);
  ExpectOverLimit(DecodeBytes(bmp, "bomb.bmp"), "bomb.bmp");
  // The same for RLE, whose few bytes could describe any size: refused before the runs are read.
  bmp = ReadBytes(DecodeDir() + "rle8.bmp");
  PutLe32(&bmp, 18, 100000);
  PutLe32(&bmp, 22, 100000);
  ExpectOverLimit(DecodeBytes(bmp, "bomb_rle.bmp"), "bomb_rle.bmp");

  // WebP (lossy VP8): the largest frame it can describe, 16383 x 16383, is over the default limit too.
  std::string webp = ReadBytes(DecodeDir() + "lossy.webp");
  ASSERT_EQ(webp.substr(12, 4), "VP8 ");
  PutLe16(&webp, 26, 0x3FFF);
  PutLe16(&webp, 28, 0x3FFF);
  ExpectOverLimit(DecodeBytes(webp, "bomb.webp"), "bomb.webp");

  // The limit is the caller's: a normal file over a small limit is refused the same way.
  ImageLimits small;
  small.max_pixels = 30;  // below the smallest fixture (7 x 5)
  for (const std::string& file : FixtureFiles()) {
    ExpectOverLimit(DecodeImageFile(DecodeDir() + file, small), file);
  }
  small.max_pixels = 23 * 17;
  EXPECT_TRUE(DecodeImageFile(DecodeDir() + "rgb8.png", small).ok());
}

// A progressive JPEG's last scan repeated 1200 times: each repeat is a full pass over the coefficients, the CPU
// version of a decompression bomb. It is stopped at 1000 scans.
TEST(DecodeTest, JpegScanFloodIsRejected) {
  const std::string jpg = ReadBytes(DecodeDir() + "rgb_progressive.jpg");
  const size_t last_sos = jpg.rfind("\xFF\xDA");
  const size_t eoi = jpg.rfind("\xFF\xD9");
  ASSERT_NE(last_sos, std::string::npos);
  ASSERT_NE(eoi, std::string::npos);
  ASSERT_LT(last_sos, eoi);
  const std::string scan = jpg.substr(last_sos, eoi - last_sos);
  std::string flood = jpg.substr(0, eoi);
  for (int i = 0; i < 1200; ++i) flood += scan;
  flood += "\xFF\xD9";
  auto r = DecodeBytes(flood, "flood.jpg");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("progressive scans"), std::string::npos) << r.status().message();
  // The same file with only a few extra scans still decodes (libjpeg warns, Pillow and we carry on).
  std::string few = jpg.substr(0, eoi) + scan + scan + "\xFF\xD9";
  EXPECT_TRUE(DecodeBytes(few, "few.jpg").ok());
}

TEST(DecodeTest, ZeroSizedImagesAreErrors) {
  auto r = DecodeBytes(PngWithSize(0, 10), "zero.png");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();

  std::string bmp = ReadBytes(DecodeDir() + "rgb24.bmp");
  PutLe32(&bmp, 18, 0);
  r = DecodeBytes(bmp, "zero.bmp");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("invalid image size 0x17"), std::string::npos) << r.status().message();

  // A GIF whose screen and frame are both empty.
  std::string gif = "GIF89a";
  gif += std::string("\0\0\0\0\0\0\0", 7);
  gif += ",";
  gif += std::string(9, '\0');
  gif += std::string("\x02\x02\x44\x01\x00;", 6);
  r = DecodeBytes(gif, "zero.gif");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();

  std::string jpg = ReadBytes(DecodeDir() + "grey.jpg");
  size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpg[sof + 5] = jpg[sof + 6] = 0;  // height 0 (libjpeg rejects it as an empty image)
  r = DecodeBytes(jpg, "zero.jpg");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
}

TEST(DecodeTest, UnsupportedVariantsSayWhat) {
  // What Pillow 9.4 refuses too: a 2-bit depth, 16-bit bitfields other than 5-5-5 and 5-6-5, JPEG-in-BMP.
  std::string bmp = ReadBytes(DecodeDir() + "rgb24.bmp");
  PutLe16(&bmp, 28, 2);
  auto r = DecodeBytes(bmp, "x.bmp");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("bit depth 2"), std::string::npos) << r.status().message();

  bmp = ReadBytes(DecodeDir() + "bitfields565.bmp");
  PutLe32(&bmp, 54, 0xF00);  // 4-4-4
  PutLe32(&bmp, 58, 0xF0);
  PutLe32(&bmp, 62, 0xF);
  r = DecodeBytes(bmp, "x.bmp");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("bitfield masks 00000f00/000000f0/0000000f"), std::string::npos)
      << r.status().message();

  bmp = ReadBytes(DecodeDir() + "pal8.bmp");
  PutLe32(&bmp, 30, 4);  // BI_JPEG
  r = DecodeBytes(bmp, "x.bmp");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("compression 4"), std::string::npos) << r.status().message();
}

// RLE data that runs out before the image is full is an error, as in Pillow ("not enough image data"); so is a
// pixel row cut short by more than its padding.
TEST(DecodeTest, ShortRleAndRowDataAreErrors) {
  for (const char* file : {"rle8.bmp", "rle4.bmp"}) {
    std::string bmp = ReadBytes(DecodeDir() + file);
    bmp.resize(bmp.size() - 40);
    auto r = DecodeBytes(bmp, file);
    ASSERT_FALSE(r.ok()) << file;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("RLE data ends after"), std::string::npos) << r.status().message();
  }
  std::string bmp = ReadBytes(DecodeDir() + "short_last_row.bmp");
  ASSERT_TRUE(DecodeBytes(bmp, "short.bmp").ok());
  bmp.resize(bmp.size() - 3);  // the last two padding bytes and a byte of the last pixel
  auto r = DecodeBytes(bmp, "short.bmp");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated pixel data"), std::string::npos) << r.status().message();
}

TEST(DecodeTest, CorruptPngCrcIsAnError) {
  std::string png = ReadBytes(DecodeDir() + "rgb8.png");
  png[20] ^= 0x01;  // inside IHDR's data: its CRC no longer matches
  auto r = DecodeBytes(png, "crc.png");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("crc.png: PNG: "), std::string::npos) << r.status().message();
}

TEST(TransposeTest, MirrorsOverTheMainDiagonal) {
  Image im = media_test::Synth(37, 5, 3, 0);
  Image t = Transpose(im);
  ASSERT_EQ(t.width, 5);
  ASSERT_EQ(t.height, 37);
  for (int y = 0; y < im.height; ++y) {
    for (int x = 0; x < im.width; ++x) {
      for (int c = 0; c < 3; ++c) ASSERT_EQ(t.row(x)[3 * y + c], im.row(y)[3 * x + c]);
    }
  }
  Image back = Transpose(t);
  EXPECT_EQ(back.width, im.width);
  EXPECT_EQ(back.rgb, im.rgb);
  // Large enough to cross the 32-pixel blocks.
  Image big = media_test::Synth(101, 67, 4, 0);
  EXPECT_EQ(Transpose(Transpose(big)).rgb, big.rgb);
}

}  // namespace
}  // namespace ixc
