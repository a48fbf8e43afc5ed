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

}  // namespace ixc
