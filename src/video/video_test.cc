// LoadVideo end to end on videos generated with the ffmpeg command, and hostile or unusable inputs: each must
// give a clear Status, never a crash.
#include "video/video.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "core/testing.h"
#include "video/video_test_util.h"

namespace ixc {
namespace {

using video_test::DecodeIndex;
using video_test::EncodeVideo;

constexpr const char* kWqy = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc";

class LoadVideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IXC_REQUIRE_FFMPEG();
    if (!std::filesystem::exists(kWqy)) GTEST_SKIP() << kWqy << " missing (Debian fonts-wqy-zenhei)";
    dir_ = testing::MakeTempDir("load_video");
    opts_.font_path = kWqy;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string Make(const std::string& name, int w, int h, const std::string& rate, int count,
                   const std::string& args = "-c:v mpeg4 -q:v 2 -g 30") {
    const std::string p = dir_ + "/" + name;
    EXPECT_TRUE(EncodeVideo(p, w, h, rate, count, args));
    return p;
  }
  std::string dir_;
  VideoOptions opts_;
};

// Expected geometry from the §6 formulas, written out independently of the library.
void ExpectGeometry(const VideoResult& v, int frame_w, int frame_h) {
  const int n = static_cast<int>(v.frame_indices.size());
  const bool landscape = frame_w > frame_h;
  if (landscape) {
    EXPECT_EQ(v.composite.width, frame_w);
    EXPECT_EQ(v.composite.height, n * (frame_h + 50));
  } else {
    EXPECT_EQ(v.composite.width, n * (frame_w + 10));
    EXPECT_EQ(v.composite.height, frame_h + 40);
  }
  const int cw = v.composite.width, ch = v.composite.height;
  const int long_side = cw < ch ? static_cast<int>(560 * (static_cast<double>(ch) / cw))
                                : static_cast<int>(560 * (static_cast<double>(cw) / ch));
  const int padded = (long_side + 559) / 560 * 560;
  EXPECT_EQ(v.transformed.width, cw < ch ? 560 : padded);
  EXPECT_EQ(v.transformed.height, cw < ch ? padded : 560);
  EXPECT_EQ(v.rows, v.transformed.height / 560);
  EXPECT_EQ(v.cols, v.transformed.width / 560);
  EXPECT_EQ(v.num_tokens, (int64_t{v.rows} * v.cols + 1) * 400 + 1 + (v.rows + 1) * 20);
}

TEST_F(LoadVideoTest, LongLandscapeVideo) {
  const std::string p = Make("long.mp4", 64, 48, "30", 1050);
  auto v = LoadVideo(p, opts_);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->probe.num_frames, 1050);
  EXPECT_DOUBLE_EQ(v->probe.avg_fps, 30);
  EXPECT_EQ(v->frame_indices, *SampleFrameIndices(1050, 30));
  ASSERT_EQ(v->frame_indices.size(), 32u);
  ExpectGeometry(*v, 1120, 840);
  // 32 frames of 1120x840 → 1120x28480 → 560x14240 → 560x14560: 26 x 1 tiles, 11 341 tokens.
  EXPECT_EQ(v->rows, 26);
  EXPECT_EQ(v->cols, 1);
  EXPECT_EQ(v->num_tokens, 11341);
  // Each stacked frame shows the frame it was sampled from; each label band has black text.
  for (size_t i = 0; i < v->frame_indices.size(); ++i) {
    const int top = static_cast<int>(i) * 890;
    Image frame = MakeImage(1120, 840);
    for (int y = 0; y < 840; ++y) std::memcpy(frame.row(y), v->composite.row(top + 40 + y), 1120 * 3);
    EXPECT_EQ(DecodeIndex(frame), v->frame_indices[i]) << "composite slot " << i;
    int dark = 0;
    for (int y = top; y < top + 40; ++y) {
      for (int x = 0; x < 300; ++x) dark += v->composite.row(y)[x * 3] < 64;
    }
    EXPECT_GT(dark, 200) << "no label above slot " << i;
  }
}

TEST_F(LoadVideoTest, ShortPortraitVideo) {
  const std::string p = Make("short.mkv", 48, 64, "24", 72, "-c:v ffv1");
  auto v = LoadVideo(p, opts_);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->frame_indices, (std::vector<int64_t>{0, 24, 48}));
  ExpectGeometry(*v, 840, 1120);
  // 3 x (840 + 10) = 2550 wide, 1160 tall → 1231 x 560 → 1680 x 560: 1 x 3 tiles.
  EXPECT_EQ(v->rows, 1);
  EXPECT_EQ(v->cols, 3);
  EXPECT_EQ(v->num_tokens, 1641);
}

TEST_F(LoadVideoTest, FontLookupFromTheModelFolder) {
  const std::string p = Make("f.avi", 64, 48, "25", 30);
  VideoOptions o;  // no font given: model folder without SimHei.ttf → the system font
  o.model_dir = dir_;
  auto v = LoadVideo(p, o);
  ASSERT_TRUE(v.ok()) << v.status().message();
  o.font_path = "/nonexistent/SimHei.ttf";
  EXPECT_EQ(LoadVideo(p, o).status().code(), StatusCode::kNotFound);
}

TEST_F(LoadVideoTest, MissingUnreadableAndForeignFiles) {
  EXPECT_EQ(LoadVideo(dir_ + "/nope.mp4", opts_).status().code(), StatusCode::kNotFound);
  const Status folder = LoadVideo(dir_, opts_).status();  // a directory is there, just not a video
  EXPECT_EQ(folder.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(folder.message().find("is a directory"), std::string::npos) << folder.message();
  // Random bytes with a video extension.
  std::string junk(100000, '\0');
  std::mt19937 rng(7);
  for (char& c : junk) c = static_cast<char>(rng());
  testing::WriteFile(dir_ + "/junk.mp4", junk);
  auto r = LoadVideo(dir_ + "/junk.mp4", opts_);
  EXPECT_FALSE(r.ok());
  testing::WriteFile(dir_ + "/empty.mp4", "");
  EXPECT_FALSE(LoadVideo(dir_ + "/empty.mp4", opts_).ok());
  // Audio only (ffmpeg's sine source).
  ASSERT_EQ(video_test::Run("ffmpeg -hide_banner -loglevel error -y -f lavfi -i sine=frequency=440:duration=1 '" +
                            dir_ + "/audio.mp4'"),
            0);
  r = LoadVideo(dir_ + "/audio.mp4", opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
  EXPECT_NE(r.status().message().find("no video stream"), std::string::npos) << r.status().message();
}

// A file (found by fuzz/video.cc) on which Debian's libavcodec 5.1 itself dies with SIGSEGV in its FFV1 decoder
// (the ffmpeg command does too). Decoding runs in a child process, so the crash is this request's error and the
// test process lives on; a normal video still decodes after it.
TEST_F(LoadVideoTest, ADecoderCrashIsAnErrorNotACrash) {
  const std::string crash = std::string(IXC_VIDEO_FIXTURE_DIR) + "/ffv1_crashes_libavcodec.mkv";
  auto r = LoadVideo(crash, opts_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ffv1_crashes_libavcodec.mkv"), std::string::npos) << r.status().message();
#if !defined(__SANITIZE_ADDRESS__)  // under ASan the child reports the fault and exits instead of dying of it
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().message();
  EXPECT_NE(r.status().message().find("the video decoder crashed"), std::string::npos) << r.status().message();
#endif
  ASSERT_EQ(video_test::Run("ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc=size=64x48:rate=5:duration=1 "
                            "-c:v mpeg4 '" + dir_ + "/after.avi'"),
            0);
  auto ok = LoadVideo(dir_ + "/after.avi", opts_);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->frame_indices.size(), 1u);
}

TEST_F(LoadVideoTest, ZeroFrameVideos) {
  for (const char* name : {"zero.mp4", "zero.mkv"}) {
    ASSERT_EQ(video_test::Run("ffmpeg -hide_banner -loglevel error -y -f lavfi -i color=c=red:s=64x48:r=25 "
                              "-frames:v 0 -c:v mpeg4 '" +
                              dir_ + "/" + name + "'"),
              0);
    auto r = LoadVideo(dir_ + "/" + name, opts_);
    EXPECT_FALSE(r.ok()) << name;
  }
}

TEST_F(LoadVideoTest, TruncatedFiles) {
  // mp4 with its index at the end (ffmpeg's default): cut in half, it has no index at all.
  const std::string mp4 = Make("t.mp4", 64, 48, "25", 250);
  std::filesystem::resize_file(mp4, std::filesystem::file_size(mp4) / 2);
  auto r = LoadVideo(mp4, opts_);
  EXPECT_FALSE(r.ok());
  // Cut short inside the last frame (an mp4 whose index comes first) or before the last frames (mkv, whose header
  // states the duration): refused rather than sampled from what is left. Each cut is an error, and at least one of
  // them is this one (cuts into the headers fail earlier).
  for (const auto& [name, args, says] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"three.mp4", "-c:v mpeg4 -q:v 2 -g 1 -movflags +faststart", "last frame's data is cut short"},
           {"three.mkv", "-c:v ffv1", "of the 3 frames its header declares"}}) {
    const std::string p = Make(name, 320, 240, "1", 3, args);
    int named = 0;
    for (double keep : {0.95, 0.9, 0.85, 0.8, 0.7, 0.6}) {
      const std::string cut = p + ".cut";
      std::filesystem::copy_file(p, cut, std::filesystem::copy_options::overwrite_existing);
      std::filesystem::resize_file(cut, static_cast<uintmax_t>(std::filesystem::file_size(p) * keep));
      auto v = LoadVideo(cut, opts_);
      ASSERT_FALSE(v.ok()) << name << " cut to " << keep << " used " << v->frame_indices.size() << " frames";
      named += v.status().message().find(says) != std::string::npos;
    }
    EXPECT_GT(named, 0) << name;
  }
  // Index first (faststart) and mkv: the tail is missing; whatever loads must show the right frames.
  for (const auto& [name, args] : std::vector<std::pair<std::string, std::string>>{
           {"fs.mp4", "-c:v mpeg4 -q:v 2 -g 30 -movflags +faststart"}, {"t.mkv", "-c:v ffv1"}}) {
    const std::string p = Make(name, 64, 48, "25", 250, args);
    for (double keep : {0.7, 0.3, 0.02}) {
      const std::string cut = p + ".cut";
      std::filesystem::copy_file(p, cut, std::filesystem::copy_options::overwrite_existing);
      std::filesystem::resize_file(cut, static_cast<uintmax_t>(std::filesystem::file_size(p) * keep));
      auto v = LoadVideo(cut, opts_);
      if (!v.ok()) continue;  // a clear error is fine
      for (size_t i = 0; i < v->frame_indices.size(); ++i) {
        Image frame = MakeImage(1120, 840);
        for (int y = 0; y < 840; ++y)
          std::memcpy(frame.row(y), v->composite.row(static_cast<int>(i) * 890 + 40 + y), 1120 * 3);
        EXPECT_EQ(DecodeIndex(frame), v->frame_indices[i]) << name << " keep " << keep;
      }
    }
  }
}

TEST_F(LoadVideoTest, CorruptedBytesNeverCrash) {
  // Seeded byte flips anywhere in the file (headers, index, frame data): a Status or a consistent result.
  for (const auto& [name, args] : std::vector<std::pair<std::string, std::string>>{
           {"c.mp4", "-c:v mpeg4 -q:v 2 -g 10 -movflags +faststart"}, {"c.mkv", "-c:v ffv1 -g 10"}}) {
    const std::string p = Make(name, 64, 48, "25", 100, args);
    std::ifstream in(p, std::ios::binary);
    const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::mt19937 rng(1234);
    for (int trial = 0; trial < 12; ++trial) {
      std::string bytes = original;
      const int flips = 1 + trial % 8;
      for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
      const std::string q = p + ".bad";
      testing::WriteFile(q, bytes);
      auto v = LoadVideo(q, opts_);
      if (!v.ok()) {
        EXPECT_FALSE(v.status().message().empty());
        continue;
      }
      EXPECT_EQ(v->transformed.width % 560, 0);
      EXPECT_EQ(v->transformed.height % 560, 0);
      EXPECT_EQ(v->rows * 560, v->transformed.height);
    }
  }
}

TEST_F(LoadVideoTest, LimitsAreEnforced) {
  const std::string p = Make("lim.mkv", 64, 48, "25", 1000, "-c:v ffv1");
  VideoOptions o = opts_;
  o.limits.max_pixels = 64 * 48 - 1;
  EXPECT_EQ(LoadVideo(p, o).status().code(), StatusCode::kResourceExhausted);
  o = opts_;
  o.max_frames_total = 999;
  EXPECT_EQ(LoadVideo(p, o).status().code(), StatusCode::kResourceExhausted);
  o = opts_;
  o.max_composite_pixels = 1120 * 890 * 10;  // 32 frames would be needed
  EXPECT_EQ(LoadVideo(p, o).status().code(), StatusCode::kResourceExhausted);
  o.max_frames = 8;  // fewer frames fit
  auto v = LoadVideo(p, o);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->frame_indices.size(), 8u);
}

TEST_F(LoadVideoTest, FrameRateTooLowToSample) {
  // 0.4 fps: round(0.4) == 0, the reference's stride would be 0.
  const std::string p = Make("slow.mkv", 64, 48, "2/5", 4, "-c:v ffv1");
  auto r = LoadVideo(p, opts_);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
}

}  // namespace
}  // namespace ixc
