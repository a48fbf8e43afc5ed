// §6.2–6.4: per-frame resize, the labelled composite (the reference's frame2img) and Video_transform.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>

#include "media/resize.h"
#include "video/label_font.h"
#include "video/video.h"

namespace ixc {
namespace {

constexpr int kLabelBand = 40;  // `pad` in frame2img
constexpr int kFrameGap = 10;   // space after each frame, with the separator line 5 pixels in
constexpr int kLabelFontSize = 40;
constexpr int kTile = 560;
constexpr uint8_t kBlack[3] = {0, 0, 0};

Image WhiteImage(int w, int h) { return MakeImage(w, h, 255, 255, 255); }

// Image.paste(src, (x, y)) without a mask: a clipped copy.
void Paste(const Image& src, int x, int y, Image* dst) {
  const int x0 = std::max(0, x), y0 = std::max(0, y);
  const int x1 = std::min(dst->width, x + src.width), y1 = std::min(dst->height, y + src.height);
  if (x1 <= x0) return;
  for (int row = y0; row < y1; ++row) {
    std::memcpy(dst->rgb.data() + (static_cast<size_t>(row) * dst->width + x0) * 3,
                src.rgb.data() + (static_cast<size_t>(row - y) * src.width + (x0 - x)) * 3,
                static_cast<size_t>(x1 - x0) * 3);
  }
}

void FillRect(Image* img, int x0, int y0, int x1, int y1) {  // black, half-open, clipped
  x0 = std::max(0, x0), y0 = std::max(0, y0);
  x1 = std::min(img->width, x1), y1 = std::min(img->height, y1);
  for (int y = y0; y < y1; ++y) {
    if (x1 > x0)
      std::memset(img->rgb.data() + (static_cast<size_t>(y) * img->width + x0) * 3, 0,
                  static_cast<size_t>(x1 - x0) * 3);
  }
}

// Python int() of a positive double that fits in int.
int TruncToInt(double v) { return v >= static_cast<double>(INT_MAX) ? INT_MAX : static_cast<int>(v); }

}  // namespace

void CompositeFrameSize(int w, int h, int* out_w, int* out_h) {
  const double scale = static_cast<double>(w) / h;
  if (w > h) {
    *out_w = 2 * kTile;
    *out_h = TruncToInt(2 * kTile / scale);
  } else {
    *out_w = TruncToInt(2 * kTile * scale);
    *out_h = 2 * kTile;
  }
}

void VideoTransformResizeSize(int w, int h, int* out_w, int* out_h) {
  if (w < h) {  // the reference transposes first, so the ratio is long/short either way
    *out_w = kTile;
    *out_h = TruncToInt(kTile * (static_cast<double>(h) / w));
  } else {
    *out_w = TruncToInt(kTile * (static_cast<double>(w) / h));
    *out_h = kTile;
  }
}

Image ResizeForComposite(const Image& frame) {
  int w, h;
  CompositeFrameSize(frame.width, frame.height, &w, &h);
  return ResizeBilinearPillow(frame, w, h);
}

Result<Image> ComposeResizedFrames(const std::vector<Image>& resized, bool landscape, const std::string& font_path,
                                   int64_t max_composite_pixels) {
  if (resized.empty()) return InvalidArgument("no frames to compose");
  int64_t canvas_w = 0, canvas_h = 0;
  for (const Image& im : resized) {
    if (im.width <= 0 || im.height <= 0) {
      return InvalidArgument("a frame became empty when resized to 1120 on its long side (aspect ratio over 1120:1)");
    }
    if (landscape) {
      canvas_w = std::max<int64_t>(canvas_w, im.width);
      canvas_h += im.height + kFrameGap + kLabelBand;
    } else {
      canvas_w += im.width + kFrameGap;
      canvas_h = std::max<int64_t>(canvas_h, im.height);
    }
  }
  if (!landscape) canvas_h += kLabelBand;
  if (canvas_w > INT_MAX / 3 || canvas_h > INT_MAX / 3 || canvas_w * canvas_h > max_composite_pixels) {
    return ResourceExhausted(StrFormat("video composite of %lld x %lld pixels is over the limit of %lld pixels",
                                       (long long)canvas_w, (long long)canvas_h, (long long)max_composite_pixels));
  }
  IXC_ASSIGN_OR_RETURN(std::unique_ptr<LabelFont> font, LabelFont::Open(font_path, kLabelFontSize));

  // Same drawing order as frame2img: paste frame i, draw its label, then the separator after it.
  Image canvas = WhiteImage(static_cast<int>(canvas_w), static_cast<int>(canvas_h));
  int cursor = 0;
  for (size_t i = 0; i < resized.size(); ++i) {
    const Image& im = resized[i];
    const std::string label = StrFormat("<IMAGE %zu>", i);
    const bool last = i + 1 == resized.size();
    if (landscape) {
      Paste(im, 0, kLabelBand + cursor, &canvas);
      IXC_RETURN_IF_ERROR(font->Draw(&canvas, 0, cursor, label, kBlack));
      // draw.line([(0, y), (W, y)], width=2) fills rows y and y+1 across the canvas.
      const int y = kLabelBand + cursor + im.height + 5;
      if (!last) FillRect(&canvas, 0, y, canvas.width, y + 2);
      cursor += im.height + kFrameGap + kLabelBand;
    } else {
      Paste(im, cursor, kLabelBand, &canvas);
      IXC_RETURN_IF_ERROR(font->Draw(&canvas, cursor, 0, label, kBlack));
      const int x = cursor + im.width + 5;
      if (!last) FillRect(&canvas, x, 0, x + 2, canvas.height);
      cursor += im.width + kFrameGap;
    }
  }
  return canvas;
}

Result<Image> BuildVideoComposite(const std::vector<Image>& frames, const std::string& font_path,
                                  int64_t max_composite_pixels) {
  if (frames.empty()) return InvalidArgument("no frames to compose");
  std::vector<Image> resized;
  resized.reserve(frames.size());
  for (const Image& f : frames) {
    if (f.width <= 0 || f.height <= 0 || f.rgb.size() != static_cast<size_t>(f.width) * f.height * 3) {
      return InvalidArgument("frame has no pixels or a buffer that does not match its size");
    }
    int w, h;
    CompositeFrameSize(f.width, f.height, &w, &h);
    if (w <= 0 || h <= 0) {
      return InvalidArgument(
          StrFormat("frame %d x %d is too elongated: it would resize to %d x %d", f.width, f.height, w, h));
    }
    resized.push_back(ResizeBilinearPillow(f, w, h));
  }
  const Image& last = frames.back();
  return ComposeResizedFrames(resized, last.width > last.height, font_path, max_composite_pixels);
}

Image VideoTransform(const Image& composite) {
  int new_w, new_h;
  VideoTransformResizeSize(composite.width, composite.height, &new_w, &new_h);
  if (composite.width < composite.height) {
    // Pillow resizes horizontally first; the reference resizes the transposed composite, so the long axis goes
    // first. Reproduce that order exactly.
    Image resized = Transpose(ResizeBilinearPillow(Transpose(composite), new_h, new_w));
    const int padded_h = (new_h + kTile - 1) / kTile * kTile;
    Image out = WhiteImage(kTile, padded_h);
    std::memcpy(out.rgb.data(), resized.rgb.data(), resized.rgb.size());
    return out;
  }
  Image resized = ResizeBilinearPillow(composite, new_w, new_h);
  const int padded_w = (new_w + kTile - 1) / kTile * kTile;
  Image out = WhiteImage(padded_w, kTile);
  Paste(resized, 0, 0, &out);
  return out;
}

int64_t VideoImageTokenCount(int rows, int cols) {
  return (static_cast<int64_t>(rows) * cols + 1) * 400 + 1 + (static_cast<int64_t>(rows) + 1) * 20;
}

}  // namespace ixc
