// Float tensors fed to the CLIP tower: normalisation (spec §3.3), PyTorch bicubic resize and the view batch (§3.4).
#pragma once

#include <vector>

#include "media/image.h"

namespace ixc {

// [3, height, width] float32, channel planes (PyTorch NCHW without the batch dimension).
struct PixelTensor {
  int height = 0, width = 0;
  std::vector<float> data;

  float* plane(int c) { return data.data() + static_cast<size_t>(c) * height * width; }
  const float* plane(int c) const { return data.data() + static_cast<size_t>(c) * height * width; }
};

// OpenAI CLIP normalisation constants, as the reference passes them (Python floats, rounded to float32 by torch).
inline constexpr double kClipMean[3] = {0.48145466, 0.4578275, 0.40821073};
inline constexpr double kClipStd[3] = {0.26862954, 0.26130258, 0.27577711};

// ToTensor then Normalize in float32, in the reference's order: x = u8 / 255, then (x - mean) / std.
PixelTensor NormalizeClip(const Image& im);

// torch.nn.functional.interpolate(x[None], size=(out_h, out_w), mode='bicubic', align_corners=False) on CPU in
// float32, bit-exact with the PyTorch the fixtures come from (Debian's 1.13.1, AVX2 kernels): A = -0.75, source
// coordinate (i + 0.5) * (in / out) - 0.5 (the float scale, the rest in double), taps floor-1 .. floor+2 clamped
// to the edge, 4 horizontal interpolations then one vertical, with that build's fused multiply-adds. in == out
// is an exact copy. out_h, out_w >= 1.
PixelTensor ResizeBicubicTorch(const PixelTensor& src, int out_h, int out_w);

// The CLIP input batch of §3.4 for an HD tensor whose sides are multiples of `tile`: element 0 is the global view
// (the whole normalised, padded tensor bicubic-resized to tile x tile, padding and squash included), then the
// tiles in row-major order (index = row * cols + col). Each element is [3, tile, tile].
std::vector<PixelTensor> MakeVitViews(const PixelTensor& hd, int tile = 560);

}  // namespace ixc
