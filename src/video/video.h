// Video input for IXC-2.5 (spec §6): sample about one frame per second, label and stack the frames into one
// composite picture, then fit it to a 560-pixel grid. The composite is fed to the vision path like an image.
//
//   auto font = FindLabelFont(model_dir, "");
//   VideoOptions opts;  opts.font_path = *font;
//   IXC_ASSIGN_OR_RETURN(VideoResult v, LoadVideo("clip.mp4", opts));
//   // v.transformed: RGB, both sides multiples of 560; v.rows x v.cols tiles; v.num_tokens image tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "media/image.h"

namespace ixc {

// What the container says about the video stream, as decord reports it.
struct VideoProbe {
  double avg_fps = 0;         // stream avg_frame_rate (decord get_avg_fps)
  int64_t num_frames = 0;     // packets of the video stream (decord len(vr)); see LoadVideo
  int width = 0, height = 0;  // decoded frame size (after display rotation, as decord)
  double duration_s = 0;      // num_frames / avg_fps, informative only
};

// §6.1: stride = nearbyint(avg_fps) (Python round: half to even); candidates 0, stride, 2·stride, … < num_frames;
// more than max_frames candidates keep positions int(k·len/(max_frames+1)), k = 0..max_frames-1.
// Errors: num_frames <= 0, non-finite fps or fps that rounds to stride 0 (the reference crashes there),
// max_frames < 1.
Result<std::vector<int64_t>> SampleFrameIndices(int64_t num_frames, double avg_fps, int max_frames = 32);

// §6.2 per-frame size: the long side becomes 1120, the other int(1120/(w/h)) or int(1120·(w/h)) (double
// arithmetic, truncation). Square frames take the second form (w <= h).
void CompositeFrameSize(int w, int h, int* out_w, int* out_h);

// §6.4 size of VideoTransform's resize before padding (short side 560, long side int(560·ratio)).
void VideoTransformResizeSize(int w, int h, int* out_w, int* out_h);

// Composite layout limits; a composite of 32 frames is at most about 42 M pixels.
inline constexpr int64_t kDefaultMaxCompositePixels = int64_t{64} << 20;

struct VideoOptions {
  std::string font_path;  // label font; empty: FindLabelFont(model_dir, "")
  std::string model_dir;  // where SimHei.ttf may live
  ImageLimits limits;     // caps the decoded frame size (width·height)
  int max_frames = 32;    // frames kept for the composite (the reference's num_frm)
  // Videos with more frames than this are refused before any decoding (bounds the frame index and run time).
  int64_t max_frames_total = 2'000'000;
  int64_t max_composite_pixels = kDefaultMaxCompositePixels;
  int decode_threads = 1;  // FFmpeg decoder threads (1 = decord's num_threads=1; results do not depend on it)
  int decode_timeout_s = 600;  // the decoding child process is stopped after this long
};

// §6.2–6.3: resizes each frame (Pillow bilinear) to 1120 on its long side and stacks them with 40-pixel label
// bands ("<IMAGE i>", font size 40, black) and 2-pixel black separator lines on a white canvas. The orientation
// (vertical stack for landscape) follows the LAST frame's original w > h, as the reference does.
Result<Image> BuildVideoComposite(const std::vector<Image>& frames, const std::string& font_path,
                                  int64_t max_composite_pixels = kDefaultMaxCompositePixels);

// The same from frames already resized with ResizeForComposite; `landscape` is the last original frame's w > h.
// LoadVideo uses this so that only resized frames are held in memory.
Image ResizeForComposite(const Image& frame);
Result<Image> ComposeResizedFrames(const std::vector<Image>& resized, bool landscape, const std::string& font_path,
                                   int64_t max_composite_pixels = kDefaultMaxCompositePixels);

// §6.4 Video_transform: short side exactly 560 (long side int(560·ratio)), Pillow bilinear, white padding at
// the end of the long side (right if wide, bottom if tall) up to a multiple of 560.
Image VideoTransform(const Image& composite);

// §3.6 token count of an image of rows x cols 560-tiles: (rows·cols + 1)·400 + 1 + (rows + 1)·20.
int64_t VideoImageTokenCount(int rows, int cols);

struct VideoResult {
  VideoProbe probe;
  std::vector<int64_t> frame_indices;  // decoded frame indices, ascending
  Image composite;                     // §6.3 output
  Image transformed;                   // §6.4 output, sides multiples of 560
  int rows = 0, cols = 0;              // transformed.height / 560, transformed.width / 560
  int64_t num_tokens = 0;              // VideoImageTokenCount(rows, cols)
};

// Probes, samples (§6.1), decodes only the sampled frames (seeking to the keyframe before each one), and builds
// the composite and its transform. Frame i is the i-th packet of the video stream in presentation-time order
// (decord's indexing), so num_frames is the packet count, not the container's nb_frames estimate.
Result<VideoResult> LoadVideo(const std::string& path, const VideoOptions& opts);

// Label font: explicit_font if non-empty (must exist); else model_dir/SimHei.ttf (the reference's font) if
// present; else a Debian CJK font (WenQuanYi Zen Hei); else NotFound. Never downloads.
Result<std::string> FindLabelFont(const std::string& model_dir, const std::string& explicit_font);

}  // namespace ixc
