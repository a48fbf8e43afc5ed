#include "media/pixels.h"

#include <cmath>
#include <cstring>

#include "core/status.h"

namespace ixc {

PixelTensor NormalizeClip(const Image& im) {
  PixelTensor t;
  t.height = im.height;
  t.width = im.width;
  t.data.resize(static_cast<size_t>(3) * im.height * im.width);
  // 256 possible inputs per channel: a table computed with the reference's float32 operations is exact.
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(kClipMean[c]), std = static_cast<float>(kClipStd[c]);
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;
      lut[c][v] = (x - mean) / std;
    }
  }
  const size_t n = static_cast<size_t>(im.height) * im.width;
  float* r = t.plane(0);
  float* g = t.plane(1);
  float* b = t.plane(2);
  const uint8_t* p = im.rgb.data();
  for (size_t i = 0; i < n; ++i, p += 3) {
    r[i] = lut[0][p[0]];
    g[i] = lut[1][p[1]];
    b[i] = lut[2][p[2]];
  }
  return t;
}

namespace {

// Four taps per output sample along one axis.
struct CubicTaps {
  std::vector<int> index;   // [out][4], clamped to [0, in-1]
  std::vector<float> weight;  // [out][4]
};

// PyTorch's cubic_convolution1/2 with A = -0.75, written with the fused multiply-adds its AVX2 build of
// get_cubic_upsample_coefficients ends up with (found by matching its weights bit for bit): the first two steps of
// each Horner chain fused, the last multiply and add rounded separately.
inline float CubicInner(float x) {  // |x| <= 1: ((A + 2) x - (A + 3)) x x + 1
  const float a = std::fma(1.25f, x, -2.25f);
  const float b = a * x;
  const float c = b * x;
  return c + 1.0f;
}
inline float CubicOuter(float x) {  // 1 < |x| < 2: ((A x - 5A) x + 8A) x - 4A
  const float a = std::fma(-0.75f, x, 3.75f);
  const float b = std::fma(a, x, -6.0f);
  const float c = b * x;
  return c + 3.0f;
}

CubicTaps ComputeCubicTaps(int in_size, int out_size) {
  CubicTaps taps;
  taps.index.resize(static_cast<size_t>(out_size) * 4);
  taps.weight.resize(static_cast<size_t>(out_size) * 4);
  // area_pixel_compute_scale: float in / out.
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int i = 0; i < out_size; ++i) {
    // The coordinate is a double, floored after rounding to float (floorf), and t is taken from the double: so a
    // coordinate just below an integer gets the integer as its base and a tiny negative t, as in that build.
    const double src = static_cast<double>(scale) * (i + 0.5) - 0.5;
    const float fl = std::floor(static_cast<float>(src));
    const float t = static_cast<float>(src - fl);
    const int64_t base = static_cast<int64_t>(fl);
    const float x2 = 1.0f - t;
    float* w = &taps.weight[static_cast<size_t>(i) * 4];
    w[0] = CubicOuter(t + 1.0f);
    w[1] = CubicInner(t);
    w[2] = CubicInner(x2);
    w[3] = CubicOuter(x2 + 1.0f);
    for (int j = 0; j < 4; ++j) {
      int64_t k = base + j - 1;
      k = k < 0 ? 0 : k > in_size - 1 ? in_size - 1 : k;
      taps.index[static_cast<size_t>(i) * 4 + j] = static_cast<int>(k);
    }
  }
  return taps;
}

// PyTorch's Interpolate<> accumulation as its build evaluates it: fma(v0, w0, v1 * w1), then fma(v2, w2, .),
// then fma(v3, w3, .).
inline float Interp4(float v0, float v1, float v2, float v3, const float* w) {
  float s = std::fma(v0, w[0], v1 * w[1]);
  s = std::fma(v2, w[2], s);
  return std::fma(v3, w[3], s);
}

}  // namespace

PixelTensor ResizeBicubicTorch(const PixelTensor& src, int out_h, int out_w) {
  IXC_DCHECK(out_h > 0 && out_w > 0 && src.height > 0 && src.width > 0);
  if (out_h == src.height && out_w == src.width) return src;
  const CubicTaps tx = ComputeCubicTaps(src.width, out_w);
  const CubicTaps ty = ComputeCubicTaps(src.height, out_h);
  PixelTensor out;
  out.height = out_h;
  out.width = out_w;
  out.data.resize(static_cast<size_t>(3) * out_h * out_w);
  // Horizontal interpolation of one source row does not depend on the output row, so each source row is
  // interpolated once and reused; every output sample still sees exactly PyTorch's arithmetic.
  std::vector<float> hrows(static_cast<size_t>(src.height) * out_w);
  for (int c = 0; c < 3; ++c) {
    const float* in = src.plane(c);
    for (int y = 0; y < src.height; ++y) {
      const float* row = in + static_cast<size_t>(y) * src.width;
      float* h = &hrows[static_cast<size_t>(y) * out_w];
      for (int x = 0; x < out_w; ++x) {
        const int* ix = &tx.index[static_cast<size_t>(x) * 4];
        h[x] = Interp4(row[ix[0]], row[ix[1]], row[ix[2]], row[ix[3]], &tx.weight[static_cast<size_t>(x) * 4]);
      }
    }
    float* o = out.plane(c);
    for (int y = 0; y < out_h; ++y) {
      const int* iy = &ty.index[static_cast<size_t>(y) * 4];
      const float* wy = &ty.weight[static_cast<size_t>(y) * 4];
      const float* r0 = &hrows[static_cast<size_t>(iy[0]) * out_w];
      const float* r1 = &hrows[static_cast<size_t>(iy[1]) * out_w];
      const float* r2 = &hrows[static_cast<size_t>(iy[2]) * out_w];
      const float* r3 = &hrows[static_cast<size_t>(iy[3]) * out_w];
      float* dst = o + static_cast<size_t>(y) * out_w;
      for (int x = 0; x < out_w; ++x) dst[x] = Interp4(r0[x], r1[x], r2[x], r3[x], wy);
    }
  }
  return out;
}

std::vector<PixelTensor> MakeVitViews(const PixelTensor& hd, int tile) {
  IXC_DCHECK(tile > 0 && hd.height > 0 && hd.width > 0 && hd.height % tile == 0 && hd.width % tile == 0);
  const int rows = hd.height / tile, cols = hd.width / tile;
  std::vector<PixelTensor> views;
  views.reserve(1 + static_cast<size_t>(rows) * cols);
  views.push_back(ResizeBicubicTorch(hd, tile, tile));
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) {
      PixelTensor t;
      t.height = t.width = tile;
      t.data.resize(static_cast<size_t>(3) * tile * tile);
      for (int c = 0; c < 3; ++c) {
        const float* in = hd.plane(c);
        float* o = t.plane(c);
        for (int y = 0; y < tile; ++y) {
          std::memcpy(o + static_cast<size_t>(y) * tile,
                      in + static_cast<size_t>(i * tile + y) * hd.width + static_cast<size_t>(j) * tile,
                      sizeof(float) * tile);
        }
      }
      views.push_back(std::move(t));
    }
  }
  return views;
}

}  // namespace ixc
