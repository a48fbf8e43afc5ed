// 8-bit RGB images and their decoding from files (JPEG, PNG, GIF, BMP, WebP), matching what Pillow's
// `Image.open(path).convert('RGB')` yields (spec Part A item 2): palettes expanded, grey replicated, alpha dropped
// without compositing, CMYK converted, EXIF orientation ignored. Input files are hostile: every failure is a Status
// naming the file and the problem, and the header's size is checked against ImageLimits before pixels are allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace ixc {

// Row-major, 3 bytes per pixel (R, G, B), no row padding.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;

  uint8_t* row(int y) { return rgb.data() + static_cast<size_t>(y) * width * 3; }
  const uint8_t* row(int y) const { return rgb.data() + static_cast<size_t>(y) * width * 3; }
};

// A width x height image filled with one colour.
Image MakeImage(int width, int height, uint8_t r = 0, uint8_t g = 0, uint8_t b = 0);

// Guards against decompression bombs: a header claiming more pixels is rejected before any pixel buffer exists.
struct ImageLimits {
  int64_t max_pixels = 200'000'000;
};

enum class ImageFormat { kUnknown, kJpeg, kPng, kGif, kBmp, kWebp };

// By magic bytes only (the extension is never consulted).
ImageFormat DetectImageFormat(const uint8_t* data, size_t size);
const char* ImageFormatName(ImageFormat format);

Result<Image> DecodeImageFile(const std::string& path, const ImageLimits& limits = {});
// `name` only labels error messages (usually the path).
Result<Image> DecodeImage(const uint8_t* data, size_t size, const std::string& name,
                          const ImageLimits& limits = {});

// PIL Image.TRANSPOSE: out(x, y) = in(y, x), a mirror over the main diagonal (not a rotation).
Image Transpose(const Image& im);

}  // namespace ixc
