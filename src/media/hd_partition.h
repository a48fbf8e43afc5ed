// IXC-2.5's HD dynamic partition (`Image_transform`, spec §3.2): pick a grid of 560-pixel columns for the image's
// aspect ratio and hd_num, resize with Pillow bilinear so the long side is s*560, and pad with white at the bottom
// (the right for portrait inputs) to whole 560-pixel tiles.
#pragma once

#include "media/image.h"

namespace ixc {

inline constexpr int kHdTile = 560;

// All sizes in the input's own orientation. resized_* is the Pillow-resized image before padding, padded_* the
// final size (multiples of 560); rows = padded_h / 560, cols = padded_w / 560; transposed = the input was portrait
// (W < H) and the reference worked on its transpose.
struct HdGeometry {
  int resized_w, resized_h, padded_w, padded_h, rows, cols;
  bool transposed;
};

// §3.2 in IEEE double exactly as the reference's Python (including the truncated quotient: 560x205 -> 560x204).
// Two guards where the reference would crash: hd_num < 1 is treated as 1, and a short side that truncates to 0
// rows (aspect ratio > 560*s) becomes 1. width, height >= 1.
HdGeometry ComputeHdGeometry(int width, int height, int hd_num);

// §3.2: transpose if portrait, Pillow-bilinear resize, white padding at the bottom, transpose back.
Image HdTransform(const Image& im, int hd_num);

}  // namespace ixc
