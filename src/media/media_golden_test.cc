// The golden set's image cases: decode images[0], HdTransform with the case's hd_num (6 when the case passes more
// than one image, spec §4.3 item 5), NormalizeClip, and compare with golden `pixels0` ([1,3,H',W'] subsampled: rows
// and columns 0, s, 2s, ... for s = pixels0_stride). Also every image's [1,3,H',W'] against `segments`.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/testing.h"
#include "io/safetensors.h"
#include "media/hd_partition.h"
#include "media/image.h"
#include "media/pixels.h"

namespace ixc {
namespace {

nlohmann::json Cases() {
  std::ifstream in(testing::GoldenDir() + "/cases.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str())["cases"];
}

bool IsJpeg(const std::string& path) {
  std::string ext = path.substr(path.find_last_of('.') + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == "jpg" || ext == "jpeg";
}

TEST(MediaGoldenTest, PixelShapesMatchSegments) {
  IXC_REQUIRE_GOLDEN();
  int checked = 0;
  for (const auto& c : Cases()) {
    const auto& images = c["images"];
    if (images.empty()) continue;
    const int hd_num = images.size() > 1 ? 6 : c["hd_num"].get<int>();
    size_t k = 0;
    for (const auto& seg : c["segments"]) {
      if (seg["kind"] != "image") continue;
      ASSERT_LT(k, images.size()) << c["name"];
      const std::string path = testing::GoldenDir() + "/" + images[k++].get<std::string>();
      auto im = DecodeImageFile(path);
      ASSERT_TRUE(im.ok()) << im.status().ToString();
      const HdGeometry g = ComputeHdGeometry(im->width, im->height, hd_num);
      EXPECT_EQ(seg["pixel_shape"].get<std::vector<int>>(), (std::vector<int>{1, 3, g.padded_h, g.padded_w}))
          << c["name"] << " " << path;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(MediaGoldenTest, Pixels0MatchesTheReference) {
  IXC_REQUIRE_GOLDEN();
  int checked = 0;
  for (const auto& c : Cases()) {
    const auto& images = c["images"];
    if (images.empty()) continue;
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const std::string path = testing::GoldenDir() + "/" + images[0].get<std::string>();
    const int hd_num = images.size() > 1 ? 6 : c["hd_num"].get<int>();
    auto im = DecodeImageFile(path);
    ASSERT_TRUE(im.ok()) << im.status().ToString();
    const PixelTensor px = NormalizeClip(HdTransform(*im, hd_num));

    std::vector<int> shape;
    for (const auto& seg : c["segments"]) {
      if (seg["kind"] == "image") {
        shape = seg["pixel_shape"].get<std::vector<int>>();
        break;
      }
    }
    ASSERT_EQ(shape, (std::vector<int>{1, 3, px.height, px.width}));

    auto file = SafetensorsFile::Open(testing::GoldenDir() + "/golden/" + name + ".safetensors");
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    auto it = (*file)->tensors().find("pixels0");
    ASSERT_NE(it, (*file)->tensors().end());
    const TensorView& golden = it->second;
    ASSERT_EQ(golden.dtype, DType::kF32);
    const int stride = c["pixels0_stride"];
    // Rows/columns 0, s, 2s, ...: ceil(H / s) of them.
    const int gh = (px.height + stride - 1) / stride, gw = (px.width + stride - 1) / stride;
    ASSERT_EQ(golden.shape, (Shape{1, 3, gh, gw})) << "stride " << stride;
    const float* g = static_cast<const float*>(golden.data);

    // PNG inputs are bit-exact up to float32 vs the reference's float64 normalisation (~1e-7); the JPEG photo may be
    // one 8-bit level off where the reference's JPEG decoder differs, i.e. 1/255/std of that channel.
    const bool jpeg = IsJpeg(path);
    double max_err = 0;
    int64_t off = 0;
    for (int ch = 0; ch < 3; ++ch) {
      const double tol = jpeg ? 1.0 / 255.0 / kClipStd[ch] + 1e-6 : 1e-6;
      for (int y = 0; y < gh; ++y) {
        for (int x = 0; x < gw; ++x) {
          const float want = g[(static_cast<size_t>(ch) * gh + y) * gw + x];
          const float got = px.plane(ch)[static_cast<size_t>(y) * stride * px.width + static_cast<size_t>(x) * stride];
          const double err = std::fabs(static_cast<double>(got) - want);
          max_err = std::max(max_err, err);
          if (err > 1e-6) ++off;
          ASSERT_LE(err, tol) << "channel " << ch << " at x=" << x * stride << " y=" << y * stride << ": got " << got
                              << ", golden " << want;
        }
      }
    }
    std::printf("  %s: %s %dx%d hd_num %d -> %dx%d, max |err| %.3g, %lld of %lld samples beyond 1e-6\n",
                name.c_str(), images[0].get<std::string>().c_str(), im->width, im->height, hd_num, px.width,
                px.height, max_err, static_cast<long long>(off), static_cast<long long>(3) * gh * gw);
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace ixc
