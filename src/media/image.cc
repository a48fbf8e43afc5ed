#include "media/image.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/mapped_file.h"
#include "media/decoders.h"

namespace ixc {

Image MakeImage(int width, int height, uint8_t r, uint8_t g, uint8_t b) {
  Image im;
  im.width = width;
  im.height = height;
  im.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < im.rgb.size(); i += 3) {
    im.rgb[i] = r;
    im.rgb[i + 1] = g;
    im.rgb[i + 2] = b;
  }
  return im;
}

ImageFormat DetectImageFormat(const uint8_t* data, size_t size) {
  auto starts = [&](const char* magic, size_t n, size_t at = 0) {
    return size >= at + n && std::memcmp(data + at, magic, n) == 0;
  };
  if (starts("\xFF\xD8\xFF", 3)) return ImageFormat::kJpeg;
  if (starts("\x89PNG\r\n\x1A\n", 8)) return ImageFormat::kPng;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return ImageFormat::kGif;
  if (starts("BM", 2)) return ImageFormat::kBmp;
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return ImageFormat::kWebp;
  return ImageFormat::kUnknown;
}

const char* ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

Result<Image> DecodeImage(const uint8_t* data, size_t size, const std::string& name, const ImageLimits& limits) {
  if (size == 0 || data == nullptr) return DataLoss(StrFormat("%s: empty image file", name.c_str()));
  ImageFormat format = DetectImageFormat(data, size);
  Result<Image> r = Unimplemented("unsupported image format (not JPEG, PNG, GIF, BMP or WebP by its magic bytes)");
  switch (format) {
    case ImageFormat::kJpeg: r = media_internal::DecodeJpeg(data, size, limits); break;
    case ImageFormat::kPng: r = media_internal::DecodePng(data, size, limits); break;
    case ImageFormat::kGif: r = media_internal::DecodeGif(data, size, limits); break;
    case ImageFormat::kBmp: r = media_internal::DecodeBmp(data, size, limits); break;
    case ImageFormat::kWebp: r = media_internal::DecodeWebp(data, size, limits); break;
    case ImageFormat::kUnknown: break;
  }
  if (!r.ok()) {
    std::string context = name;
    if (format != ImageFormat::kUnknown) context += std::string(": ") + ImageFormatName(format);
    return r.status().WithContext(context);
  }
  return r;
}

Result<Image> DecodeImageFile(const std::string& path, const ImageLimits& limits) {
  IXC_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  return DecodeImage(file->data(), file->size(), path, limits);
}

Image Transpose(const Image& im) {
  Image out;
  out.width = im.height;
  out.height = im.width;
  out.rgb.resize(im.rgb.size());
  // Blocked so both the reads and the writes stay within a few cache lines.
  constexpr int kBlock = 32;
  for (int y0 = 0; y0 < im.height; y0 += kBlock) {
    for (int x0 = 0; x0 < im.width; x0 += kBlock) {
      int y1 = std::min(im.height, y0 + kBlock), x1 = std::min(im.width, x0 + kBlock);
      for (int y = y0; y < y1; ++y) {
        const uint8_t* src = im.row(y);
        for (int x = x0; x < x1; ++x) std::memcpy(out.row(x) + 3 * y, src + 3 * x, 3);
      }
    }
  }
  return out;
}

namespace media_internal {

Status CheckImageSize(int64_t width, int64_t height, const ImageLimits& limits) {
  if (width <= 0 || height <= 0) {
    return DataLoss(StrFormat("invalid image size %lldx%lld", static_cast<long long>(width),
                              static_cast<long long>(height)));
  }
  // Sides first, so the product below cannot overflow (row offsets elsewhere are size_t of int sides).
  if (width > (1 << 28) || height > (1 << 28) || width * height > limits.max_pixels) {
    return ResourceExhausted(
        StrFormat("image size %lldx%lld is over the limit of %lld pixels (ImageLimits::max_pixels)",
                  static_cast<long long>(width), static_cast<long long>(height),
                  static_cast<long long>(limits.max_pixels)));
  }
  return Status::Ok();
}

}  // namespace media_internal
}  // namespace ixc
