#include "media/hd_partition.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "media/resize.h"

namespace ixc {

HdGeometry ComputeHdGeometry(int width, int height, int hd_num) {
  IXC_DCHECK(width > 0 && height > 0);
  if (hd_num < 1) hd_num = 1;
  HdGeometry g;
  g.transposed = width < height;
  // From here on W >= H, as in the reference after its transpose.
  const int w = g.transposed ? height : width, h = g.transposed ? width : height;
  const double ratio = static_cast<double>(w) / h;
  // Largest s with s * ceil(s / ratio) <= hd_num (the reference counts up, then steps back).
  int s = 1;
  while (s * std::ceil(s / ratio) <= hd_num) ++s;
  --s;
  s = static_cast<int>(std::min(std::ceil(static_cast<double>(w) / kHdTile), static_cast<double>(s)));
  const int new_w = s * kHdTile;
  // int(new_w / ratio): truncating the double quotient is the reference behaviour, not new_w * h / w.
  int new_h = static_cast<int>(new_w / ratio);
  if (new_h < 1) new_h = 1;
  const int pad_h = (new_h + kHdTile - 1) / kHdTile * kHdTile;
  g.resized_w = g.transposed ? new_h : new_w;
  g.resized_h = g.transposed ? new_w : new_h;
  g.padded_w = g.transposed ? pad_h : new_w;
  g.padded_h = g.transposed ? new_w : pad_h;
  g.rows = g.padded_h / kHdTile;
  g.cols = g.padded_w / kHdTile;
  return g;
}

Image HdTransform(const Image& im, int hd_num) {
  const HdGeometry g = ComputeHdGeometry(im.width, im.height, hd_num);
  // Work in the reference's landscape orientation so the padding lands at the bottom, then transpose back.
  Image transposed_input;
  if (g.transposed) transposed_input = Transpose(im);
  const Image& landscape = g.transposed ? transposed_input : im;
  const int new_w = g.transposed ? g.resized_h : g.resized_w;
  const int new_h = g.transposed ? g.resized_w : g.resized_h;
  const int pad_h = g.transposed ? g.padded_w : g.padded_h;
  Image resized = ResizeBilinearPillow(landscape, new_w, new_h);
  Image padded = MakeImage(new_w, pad_h, 255, 255, 255);
  std::memcpy(padded.rgb.data(), resized.rgb.data(), resized.rgb.size());
  return g.transposed ? Transpose(padded) : padded;
}

}  // namespace ixc
