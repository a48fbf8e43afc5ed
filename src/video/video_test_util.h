// Test helpers for src/video: videos made with the ffmpeg command at test time, frames that encode their own index.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "media/image.h"

namespace ixc::video_test {

inline bool HaveFfmpeg() {
  static const bool have = std::system("ffmpeg -hide_banner -version >/dev/null 2>&1") == 0;
  return have;
}

inline bool HaveEncoder(const std::string& name) {
  const std::string cmd = "ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw " + name;
  return std::system(cmd.c_str()) == 0;
}

#define IXC_REQUIRE_FFMPEG()                                                                      \
  do {                                                                                            \
    if (!::ixc::video_test::HaveFfmpeg())                                                         \
      GTEST_SKIP() << "the ffmpeg command is not installed (Debian package ffmpeg): video files " \
                      "for this test cannot be generated";                                        \
  } while (0)

// A solid colour per frame index: three base-16 digits spaced 14 levels apart, so lossy codecs (a few levels of
// error on flat frames) still decode to the right index. Covers 4096 frames.
inline void IndexColor(int64_t i, uint8_t rgb[3]) {
  rgb[0] = static_cast<uint8_t>(16 + (i % 16) * 14);
  rgb[1] = static_cast<uint8_t>(16 + (i / 16 % 16) * 14);
  rgb[2] = static_cast<uint8_t>(16 + (i / 256 % 16) * 14);
}

// The index a decoded frame shows (mean colour of its central quarter), or -1 if it is not close to any.
inline int64_t DecodeIndex(const Image& img) {
  double sum[3] = {0, 0, 0};
  int n = 0;
  for (int y = img.height / 4; y < img.height * 3 / 4; ++y) {
    for (int x = img.width / 4; x < img.width * 3 / 4; ++x, ++n) {
      for (int c = 0; c < 3; ++c) sum[c] += img.rgb[(static_cast<size_t>(y) * img.width + x) * 3 + c];
    }
  }
  int digit[3];
  for (int c = 0; c < 3; ++c) {
    const double v = (sum[c] / n - 16) / 14;
    digit[c] = static_cast<int>(v + 0.5);
    if (digit[c] < 0 || digit[c] > 15 || std::abs(v - digit[c]) > 0.35) return -1;
  }
  return digit[0] + 16 * digit[1] + 256 * digit[2];
}

// Pipes `count` raw RGB24 frames (w x h) into ffmpeg. `rate` is an ffmpeg rate ("30000/1001"); `out_args` the
// encoder and container options. Returns false (with the command in the failure message) when ffmpeg fails.
inline bool EncodeVideo(const std::string& path, int w, int h, const std::string& rate, int count,
                        const std::string& out_args,
                        const std::function<void(int, std::vector<uint8_t>*)>& make_frame = nullptr) {
  const std::string cmd = "ffmpeg -hide_banner -loglevel error -y -f rawvideo -pix_fmt rgb24 -s " + std::to_string(w) +
                          "x" + std::to_string(h) + " -r " + rate + " -i - " + out_args + " '" + path + "'";
  FILE* p = popen(cmd.c_str(), "w");
  if (!p) return false;
  std::vector<uint8_t> frame(static_cast<size_t>(w) * h * 3);
  for (int i = 0; i < count; ++i) {
    if (make_frame) {
      make_frame(i, &frame);
    } else {
      uint8_t c[3];
      IndexColor(i, c);
      for (size_t k = 0; k < frame.size(); k += 3) frame[k] = c[0], frame[k + 1] = c[1], frame[k + 2] = c[2];
    }
    if (fwrite(frame.data(), 1, frame.size(), p) != frame.size()) break;
  }
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << cmd;
  return rc == 0;
}

inline int Run(const std::string& cmd) { return std::system(cmd.c_str()); }

}  // namespace ixc::video_test
