// Image (and video) files -> the CLIP views of spec §3.4, via the pure preprocessing in src/media.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace ixc {

struct PreparedImage {
  std::vector<std::vector<float>> views;  // [global, tiles row-major], each C·S·S floats
  int rows = 0, cols = 0;                 // tile grid
  std::vector<float> pixels;              // the normalised HD tensor [3, H, W] (kept only when asked)
  int height = 0, width = 0;              // its size
  // Videos only: the sampled frames and the composite's size before Video_transform.
  std::vector<int64_t> frame_indices;
  int composite_width = 0, composite_height = 0;
};

struct MediaOptions {
  int tile = 560;          // the vision config's image_size
  int64_t max_pixels = 200'000'000;
  bool keep_pixels = false;
  std::string model_dir;   // for video labels: SimHei.ttf there is preferred
  std::string font_path;   // explicit label font for videos
};

// Decodes an image file, applies the HD partition with `hd_num`, normalises and cuts the views.
Result<PreparedImage> PrepareImageFile(const std::string& path, int hd_num, const MediaOptions& opts);

// The same for a file's bytes in memory; `name` stands for the path in messages.
Result<PreparedImage> PrepareImageBytes(const std::string& bytes, const std::string& name, int hd_num,
                                        const MediaOptions& opts);

// Samples and labels a video's frames into one composite, applies Video_transform (not the HD partition: its
// tile count is not capped by hd_num) and cuts the views.
Result<PreparedImage> PrepareVideoFile(const std::string& path, const MediaOptions& opts);
// The same for a video's bytes in memory: the demuxer reads them from a private temporary file, removed at once.
Result<PreparedImage> PrepareVideoBytes(const std::string& bytes, const std::string& name, const MediaOptions& opts);

}  // namespace ixc
