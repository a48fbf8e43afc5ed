// §6.1 frame sampling against lists printed by the reference's load_video arithmetic in Python
// (range(0, n, int(round(fps))), then int(k * len / 33)).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "video/video.h"

namespace ixc {
namespace {

std::vector<int64_t> Sample(int64_t n, double fps, int max_frames = 32) {
  auto r = SampleFrameIndices(n, fps, max_frames);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : std::vector<int64_t>{};
}

TEST(FrameSampling, ShortVideoKeepsEverySecond) {
  EXPECT_EQ(Sample(90, 30), (std::vector<int64_t>{0, 30, 60}));
  EXPECT_EQ(Sample(91, 30), (std::vector<int64_t>{0, 30, 60, 90}));
  EXPECT_EQ(Sample(1, 25), (std::vector<int64_t>{0}));
  EXPECT_EQ(Sample(10, 60), (std::vector<int64_t>{0}));  // shorter than a second
  // 32 candidates exactly are all kept.
  std::vector<int64_t> all;
  for (int i = 0; i < 32; ++i) all.push_back(i * 24);
  EXPECT_EQ(Sample(32 * 24, 24), all);
}

TEST(FrameSampling, StrideRoundsHalfToEven) {
  // Python round(): 24.5 -> 24, 25.5 -> 26, 29.5 -> 30, 1.5 -> 2, 2.5 -> 2; 29.97 -> 30.
  EXPECT_EQ(Sample(100, 24.5)[1], 24);
  EXPECT_EQ(Sample(100, 25.5)[1], 26);
  EXPECT_EQ(Sample(100, 29.5)[1], 30);
  EXPECT_EQ(Sample(10, 1.5)[1], 2);
  EXPECT_EQ(Sample(10, 2.5)[1], 2);
  EXPECT_EQ(Sample(100, 30000.0 / 1001)[1], 30);
  EXPECT_EQ(Sample(10, 0.6)[1], 1);
}

TEST(FrameSampling, LongVideoKeeps32) {
  EXPECT_EQ(Sample(2000, 60), (std::vector<int64_t>{0,    60,   120,  180,  240,  300,  360,  420,  480,  540,  600,
                                                    660,  720,  780,  840,  900,  960,  1020, 1080, 1140, 1200, 1260,
                                                    1320, 1380, 1440, 1500, 1560, 1620, 1680, 1740, 1800, 1860}));
  EXPECT_EQ(Sample(1200, 24),
            (std::vector<int64_t>{0,   24,  72,  96,  144, 168, 216, 240, 288, 312, 360, 384, 432,  456,  504,  528,
                                  576, 600, 648, 672, 720, 744, 792, 816, 864, 888, 936, 960, 1008, 1032, 1080, 1104}));
  EXPECT_EQ(Sample(999, 25),
            (std::vector<int64_t>{0,   25,  50,  75,  100, 150, 175, 200, 225, 250, 300, 325, 350, 375, 400, 450,
                                  475, 500, 525, 575, 600, 625, 650, 675, 725, 750, 775, 800, 825, 875, 900, 925}));
  EXPECT_EQ(Sample(1000, 30000.0 / 1001), Sample(990, 30));
  const auto v = Sample(100000, 29.97);
  ASSERT_EQ(v.size(), 32u);
  EXPECT_EQ(v[1], 3030);
  EXPECT_EQ(v[31], 93930);  // the last second is never reached (len / 33, not / 32)
  EXPECT_EQ(Sample(3301, 1.0).back(), 3100);
}

TEST(FrameSampling, MaxFramesIsTheCap) {
  const auto v = Sample(1000, 1.0, 4);  // 1000 candidates, step 200
  EXPECT_EQ(v, (std::vector<int64_t>{0, 200, 400, 600}));
}

TEST(FrameSampling, RefusesWhatTheReferenceCannotSample) {
  EXPECT_FALSE(SampleFrameIndices(0, 30).ok());
  EXPECT_FALSE(SampleFrameIndices(-5, 30).ok());
  EXPECT_FALSE(SampleFrameIndices(100, 0.5).ok());  // round(0.5) == 0: stride 0
  EXPECT_FALSE(SampleFrameIndices(100, 0.2).ok());
  EXPECT_FALSE(SampleFrameIndices(100, 0).ok());
  EXPECT_FALSE(SampleFrameIndices(100, -30).ok());
  EXPECT_FALSE(SampleFrameIndices(100, std::nan("")).ok());
  EXPECT_FALSE(SampleFrameIndices(100, std::numeric_limits<double>::infinity()).ok());
  EXPECT_FALSE(SampleFrameIndices(100, 30, 0).ok());
  // A huge frame rate is a stride past the end: just frame 0.
  EXPECT_EQ(Sample(100, 1e300), (std::vector<int64_t>{0}));
}

}  // namespace
}  // namespace ixc
