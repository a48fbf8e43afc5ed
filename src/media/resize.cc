#include "media/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/status.h"

namespace ixc {
namespace {

// Pillow: 32 bits minus 8 for the pixel and 2 of headroom for filters with negative lobes.
constexpr int kPrecisionBits = 32 - 8 - 2;

// The integer coefficients of one resampling axis: output i reads `count[i]` source samples from `first[i]`,
// weighted by k[i * ksize + 0 .. count[i]).
struct AxisCoeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

double BilinearFilter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1) over the whole source
// range [0, in_size). The order of the double operations is Pillow's, since coefficients are compared after
// rounding to 22 bits; this file is built with -ffp-contract=off so no multiply-add gets fused.
AxisCoeffs PrecomputeBilinear(int in_size, int out_size) {
  constexpr double kSupport = 1.0;
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kSupport * filterscale;
  AxisCoeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation toward zero, as Pillow's (int) cast
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = BilinearFilter((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t Clip8(int32_t v) {
  const int32_t r = v >> kPrecisionBits;  // arithmetic shift, as in Pillow
  return static_cast<uint8_t>(r < 0 ? 0 : r > 255 ? 255 : r);
}

// Rows [row0, row0 + out.height) of src, resampled horizontally to out.width.
void ResampleHorizontal(const Image& src, int row0, const AxisCoeffs& c, Image* out) {
  for (int y = 0; y < out->height; ++y) {
    const uint8_t* in = src.row(row0 + y);
    uint8_t* dst = out->row(y);
    for (int xx = 0; xx < out->width; ++xx) {
      const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      const uint8_t* p = in + 3 * c.first[xx];
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < c.count[xx]; ++x) {
        s0 += p[3 * x] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      dst[3 * xx] = Clip8(s0);
      dst[3 * xx + 1] = Clip8(s1);
      dst[3 * xx + 2] = Clip8(s2);
    }
  }
}

// src rows are offset by row0 relative to the coefficient bounds.
void ResampleVertical(const Image& src, int row0, const AxisCoeffs& c, Image* out) {
  const size_t row_bytes = static_cast<size_t>(src.width) * 3;
  std::vector<int32_t> acc(row_bytes);
  for (int yy = 0; yy < out->height; ++yy) {
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    // Row-at-a-time accumulation: each output sample still sums its taps in Pillow's order (y ascending).
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* in = src.row(c.first[yy] + y - row0);
      const int32_t ky = k[y];
      for (size_t i = 0; i < row_bytes; ++i) acc[i] += in[i] * ky;
    }
    uint8_t* dst = out->row(yy);
    for (size_t i = 0; i < row_bytes; ++i) dst[i] = Clip8(acc[i]);
  }
}

}  // namespace

Image ResizeBilinearPillow(const Image& src, int out_w, int out_h) {
  IXC_DCHECK(out_w > 0 && out_h > 0 && src.width > 0 && src.height > 0);
  const bool need_horizontal = out_w != src.width;
  const bool need_vertical = out_h != src.height;
  if (!need_horizontal && !need_vertical) return src;

  const AxisCoeffs vert = PrecomputeBilinear(src.height, out_h);
  if (!need_horizontal) {
    Image out = MakeImage(src.width, out_h);
    ResampleVertical(src, 0, vert, &out);
    return out;
  }
  // The horizontal pass covers only the source rows the vertical pass reads (Pillow's ybox_first/last); with no
  // vertical pass that is every row.
  const int row_first = need_vertical ? vert.first[0] : 0;
  const int row_last = need_vertical ? vert.first[out_h - 1] + vert.count[out_h - 1] : src.height;
  const AxisCoeffs horiz = PrecomputeBilinear(src.width, out_w);
  Image tmp = MakeImage(out_w, row_last - row_first);
  ResampleHorizontal(src, row_first, horiz, &tmp);
  if (!need_vertical) return tmp;
  Image out = MakeImage(out_w, out_h);
  ResampleVertical(tmp, row_first, vert, &out);
  return out;
}

}  // namespace ixc
