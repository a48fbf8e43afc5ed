// Pillow-exact image resampling.
#pragma once

#include "media/image.h"

namespace ixc {

// Bit-exact Pillow 9.4 `Image.resize((out_w, out_h), Image.BILINEAR)` of an RGB image (libImaging/Resample.c):
// a triangle filter whose support grows with the reduction factor (antialiased downscaling), coefficients
// normalised per output pixel and quantised to 22 fractional bits, a horizontal pass (over only the source rows
// the vertical pass will read) and then a vertical pass, each rounding and clamping to uint8. A pass whose size
// is unchanged is skipped, as in Pillow. out_w, out_h >= 1.
Image ResizeBilinearPillow(const Image& src, int out_w, int out_h);

}  // namespace ixc
