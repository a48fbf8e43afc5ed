// PNG through libpng, reproducing Pillow's modes and its convert('RGB'): sub-byte grey is scaled to 0..255, 16-bit
// grey becomes Pillow mode "I" whose conversion clips to 255 (so any value >= 255 is white), every other 16-bit
// sample keeps its high byte, palettes (any depth) are looked up in a grey-ramp-initialised table, and tRNS, alpha
// and gAMA are ignored.
#include <png.h>

#include <csetjmp>
#include <cstring>

#include "media/decoders.h"

namespace ixc::media_internal {
namespace {

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  char message[256];
};

void OnPngError(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof(src->message), "%s", msg);
  png_longjmp(png, 1);
}

void OnPngWarning(png_structp, png_const_charp) {}

void ReadPngBytes(png_structp png, png_bytep out, size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "truncated data (file ends inside the image)");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

struct PngHeader {
  png_uint_32 width, height;
  int bit_depth, color_type, interlace;
};

// Converts one libpng row (after png_set_packing: sub-byte samples one per byte) to RGB.
void PngRowToRgb(const PngHeader& h, const Palette& pal, const uint8_t* in, uint8_t* out) {
  const int w = static_cast<int>(h.width);
  const bool b16 = h.bit_depth == 16;
  switch (h.color_type) {
    case PNG_COLOR_TYPE_GRAY: {
      // Pillow modes "1", "L;2", "L;4", "L", "I;16B"->"I".
      for (int x = 0; x < w; ++x) {
        int v;
        if (b16) {
          v = (in[2 * x] << 8) | in[2 * x + 1];
          if (v > 255) v = 255;
        } else {
          v = in[x];
          if (h.bit_depth == 1) v *= 255;
          else if (h.bit_depth == 2) v *= 85;
          else if (h.bit_depth == 4) v *= 17;
        }
        out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = static_cast<uint8_t>(v);
      }
      break;
    }
    case PNG_COLOR_TYPE_GRAY_ALPHA: {
      const int step = b16 ? 4 : 2;
      for (int x = 0; x < w; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[step * x];
      break;
    }
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
      const int channels = h.color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
      const int bytes = b16 ? 2 : 1;
      for (int x = 0; x < w; ++x) {
        for (int c = 0; c < 3; ++c) out[3 * x + c] = in[(channels * x + c) * bytes];  // high byte first
      }
      break;
    }
    case PNG_COLOR_TYPE_PALETTE: {
      for (int x = 0; x < w; ++x) std::memcpy(out + 3 * x, pal.rgb[in[x]], 3);
      break;
    }
  }
}

enum class PngOutcome { kOk, kLibpngError, kOverLimit };

// Everything that can longjmp lives in this frame, whose locals are all trivially destructible.
PngOutcome RunPng(png_structp png, png_infop info, const ImageLimits* limits, Image* out,
                  std::vector<uint8_t>* raw, Status* size_status) {
  if (setjmp(png_jmpbuf(png))) return PngOutcome::kLibpngError;
  // Pillow checks neither the image-size cap of libpng nor ancillary CRCs strictly; ours is ImageLimits.
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_read_info(png, info);
  PngHeader h;
  png_get_IHDR(png, info, &h.width, &h.height, &h.bit_depth, &h.color_type, &h.interlace, nullptr, nullptr);
  *size_status = CheckImageSize(h.width, h.height, *limits);
  if (!size_status->ok()) return PngOutcome::kOverLimit;
  Palette pal;
  if (h.color_type == PNG_COLOR_TYPE_PALETTE) {
    png_colorp entries = nullptr;
    int n = 0;
    if (png_get_PLTE(png, info, &entries, &n) == 0) png_error(png, "palette image without a PLTE chunk");
    for (int i = 0; i < n && i < 256; ++i) {
      pal.rgb[i][0] = entries[i].red;
      pal.rgb[i][1] = entries[i].green;
      pal.rgb[i][2] = entries[i].blue;
    }
  }
  if (h.bit_depth < 8) png_set_packing(png);
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  out->width = static_cast<int>(h.width);
  out->height = static_cast<int>(h.height);
  out->rgb.resize(static_cast<size_t>(h.width) * h.height * 3);
  if (passes == 1) {
    raw->resize(rowbytes);
    for (png_uint_32 y = 0; y < h.height; ++y) {
      png_read_row(png, raw->data(), nullptr);
      PngRowToRgb(h, pal, raw->data(), out->row(static_cast<int>(y)));
    }
  } else {
    // Adam7 needs every raw row at once: libpng fills them pass by pass.
    raw->resize(rowbytes * h.height);
    for (int pass = 0; pass < passes; ++pass) {
      for (png_uint_32 y = 0; y < h.height; ++y) png_read_row(png, raw->data() + rowbytes * y, nullptr);
    }
    for (png_uint_32 y = 0; y < h.height; ++y) {
      PngRowToRgb(h, pal, raw->data() + rowbytes * y, out->row(static_cast<int>(y)));
    }
  }
  // png_read_end is skipped: like Pillow, chunks after the image data (or a missing IEND) do not matter.
  return PngOutcome::kOk;
}

}  // namespace

Result<Image> DecodePng(const uint8_t* data, size_t size, const ImageLimits& limits) {
  PngSource src{data, size, 0, {0}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, OnPngError, OnPngWarning);
  if (!png) return Internal("png_create_read_struct failed");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return Internal("png_create_info_struct failed");
  }
  png_set_read_fn(png, &src, ReadPngBytes);
  Image im;
  std::vector<uint8_t> raw;
  Status size_status;
  PngOutcome outcome = RunPng(png, info, &limits, &im, &raw, &size_status);
  png_destroy_read_struct(&png, &info, nullptr);
  switch (outcome) {
    case PngOutcome::kOk: return im;
    case PngOutcome::kOverLimit: return size_status;
    case PngOutcome::kLibpngError: return DataLoss(StrFormat("corrupt or truncated data (libpng: %s)", src.message));
  }
  return Internal("unreachable");
}

}  // namespace ixc::media_internal
