// Per-format decoders behind DecodeImage (internal to ixc_media). Each returns 8-bit RGB exactly as Pillow's
// convert('RGB') of that file would; errors carry no file name (DecodeImage adds it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "media/image.h"

namespace ixc::media_internal {

Result<Image> DecodeJpeg(const uint8_t* data, size_t size, const ImageLimits& limits);
Result<Image> DecodePng(const uint8_t* data, size_t size, const ImageLimits& limits);
Result<Image> DecodeGif(const uint8_t* data, size_t size, const ImageLimits& limits);
Result<Image> DecodeBmp(const uint8_t* data, size_t size, const ImageLimits& limits);
Result<Image> DecodeWebp(const uint8_t* data, size_t size, const ImageLimits& limits);

// Rejects empty, negative and over-limit sizes; called on header values before anything is allocated.
Status CheckImageSize(int64_t width, int64_t height, const ImageLimits& limits);

// A 256-entry RGB palette that starts as the grey ramp (i, i, i), as Pillow's does, so that indices past the
// file's palette map to grey rather than to black or garbage.
struct Palette {
  uint8_t rgb[256][3];
  Palette() {
    for (int i = 0; i < 256; ++i) rgb[i][0] = rgb[i][1] = rgb[i][2] = static_cast<uint8_t>(i);
  }
};

}  // namespace ixc::media_internal
