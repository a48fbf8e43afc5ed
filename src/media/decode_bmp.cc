// BMP by hand, following Pillow 9.4's BmpImagePlugin: OS/2 v1 (12-byte) and Windows v3/v4/v5 (40/64/108/124-byte)
// headers; uncompressed 1/4/8-bit palette, 16-bit (5-5-5, or 5-6-5 by bitfields), 24-bit BGR and 32-bit BGRX;
// BI_BITFIELDS with the masks Pillow accepts; RLE8 and RLE4 as Pillow's decoder reads them; bottom-up and
// top-down rows. The last row needs only its pixels, not its padding (Pillow's raw decoder stops there).
#include <algorithm>
#include <cstring>
#include <vector>

#include "media/decoders.h"

namespace ixc::media_internal {
namespace {

uint32_t U32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

constexpr uint32_t kBiRgb = 0, kBiRle8 = 1, kBiRle4 = 2, kBiBitfields = 3;

// Byte position (0..3, little-endian) of a mask that covers exactly one byte, else -1.
int MaskByte(uint32_t mask) {
  for (int b = 0; b < 4; ++b) {
    if (mask == (0xFFu << (8 * b))) return b;
  }
  return -1;
}

// Pillow's BmpRleDecoder, step for step (its quirks are the reference's, so they are ours): the pixel indices of
// the rows in file order, or an error where Pillow raises one. Encoded runs are clipped at the row's end; "end of
// line" pads to a whole row; a delta reads four bytes and uses the last two; absolute runs are not clipped, RLE4's
// read n / 2 bytes for n pixels, and the word alignment after them counts from the start of the file.
Result<std::vector<uint8_t>> RleIndices(const uint8_t* data, size_t size, size_t pos, int64_t w, int64_t h, bool rle4) {
  const uint64_t need = static_cast<uint64_t>(w) * static_cast<uint64_t>(h);
  std::vector<uint8_t> out;
  out.reserve(need);
  int64_t x = 0;
  auto take = [&](size_t n) {  // bytes available of n, advancing
    const size_t got = std::min(n, size - std::min(pos, size));
    pos += got;
    return got;
  };
  while (out.size() < need) {
    if (pos + 2 > size) break;
    const int count = data[pos], code = data[pos + 1];
    pos += 2;
    if (count > 0) {  // encoded: `count` pixels of one byte (RLE4: its two nibbles alternating)
      const int64_t n = std::min<int64_t>(count, std::max<int64_t>(0, w - x));
      for (int64_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(rle4 ? (i % 2 ? code & 15 : code >> 4) : code));
      x += n;
    } else if (code == 0) {  // end of line
      while (out.size() % static_cast<uint64_t>(w) != 0) out.push_back(0);
      x = 0;
    } else if (code == 1) {  // end of bitmap
      break;
    } else if (code == 2) {  // delta: Pillow reads two bytes, then two more for (right, up)
      if (take(2) < 2) break;
      if (pos + 2 > size) return DataLoss("truncated RLE delta");
      const uint64_t right = data[pos], up = data[pos + 1];
      pos += 2;
      out.insert(out.end(), right + up * static_cast<uint64_t>(w), 0);
      x = static_cast<int64_t>(out.size() % static_cast<uint64_t>(w));
    } else {  // absolute: `code` pixels stored as they are
      const size_t want = rle4 ? code / 2 : code;
      const size_t start = pos, got = take(want);
      for (size_t i = 0; i < got; ++i) {
        const uint8_t b = data[start + i];
        if (rle4) {
          out.push_back(b >> 4);
          out.push_back(b & 15);
        } else {
          out.push_back(b);
        }
      }
      if (got < want) break;
      x += code;
      if (pos % 2 != 0) ++pos;
    }
  }
  if (out.size() < need) {
    return DataLoss(StrFormat("RLE data ends after %zu of %llu pixels", out.size(), static_cast<unsigned long long>(need)));
  }
  return out;
}

}  // namespace

Result<Image> DecodeBmp(const uint8_t* data, size_t size, const ImageLimits& limits) {
  if (size < 14 + 4) return DataLoss("truncated file header");
  const uint32_t file_offset = U32(data + 10);
  const uint32_t header_size = U32(data + 14);
  if (header_size != 12 && header_size != 40 && header_size != 64 && header_size != 108 && header_size != 124) {
    return Unimplemented(StrFormat("unsupported BMP header size %u", header_size));
  }
  if (size < 14 + static_cast<size_t>(header_size)) return DataLoss("truncated info header");
  const uint8_t* h = data + 14;
  int64_t width, height;
  int bits;
  uint32_t compression = kBiRgb, colors = 0;
  int palette_entry = 4;  // bytes per palette entry (BGRX); OS/2 v1 uses BGR
  bool top_down = false;
  size_t pos = 14 + header_size;
  uint32_t masks[3] = {0xFF0000u, 0xFF00u, 0xFFu};
  if (header_size == 12) {
    width = U16(h + 4);
    height = U16(h + 6);
    bits = U16(h + 10);
    palette_entry = 3;
  } else {
    width = static_cast<int32_t>(U32(h + 4));
    int32_t raw_height = static_cast<int32_t>(U32(h + 8));
    top_down = raw_height < 0;
    height = top_down ? -static_cast<int64_t>(raw_height) : raw_height;
    bits = U16(h + 14);
    compression = U32(h + 16);
    colors = U32(h + 32);
    if (compression == kBiBitfields) {
      if (header_size >= 52) {
        for (int i = 0; i < 3; ++i) masks[i] = U32(h + 40 + 4 * i);
      } else {
        // A 40-byte header is followed by the three masks.
        if (size < pos + 12) return DataLoss("truncated bitfield masks");
        for (int i = 0; i < 3; ++i) masks[i] = U32(data + pos + 4 * i);
        pos += 12;
      }
    }
  }
  const bool rle = compression == kBiRle8 || compression == kBiRle4;
  if (!rle && compression != kBiRgb && compression != kBiBitfields) {
    return Unimplemented(StrFormat("unsupported BMP compression %u", compression));
  }
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32) {
    return Unimplemented(StrFormat("unsupported BMP bit depth %d", bits));
  }
  // 16-bit pixels: 5-5-5 unless bitfields say 5-6-5 (the two layouts Pillow reads).
  bool rgb565 = false;
  // Where each byte of an (up to) 4-byte pixel goes: R, G, B byte offsets within the pixel.
  int rgb_byte[3] = {2, 1, 0};
  if (compression == kBiBitfields && bits == 16) {
    rgb565 = masks[0] == 0xF800u && masks[1] == 0x7E0u && masks[2] == 0x1Fu;
    if (!rgb565 && !(masks[0] == 0x7C00u && masks[1] == 0x3E0u && masks[2] == 0x1Fu)) {
      return Unimplemented(StrFormat("unsupported BMP bitfield masks %08x/%08x/%08x", masks[0], masks[1], masks[2]));
    }
  } else if (compression == kBiBitfields) {
    if (bits <= 8) return DataLoss("bitfield masks on a palette image");
    if (!(masks[0] == 0 && masks[1] == 0 && masks[2] == 0)) {  // all-zero masks mean BGRA to Pillow
      for (int c = 0; c < 3; ++c) {
        rgb_byte[c] = MaskByte(masks[c]);
        if (rgb_byte[c] < 0 || rgb_byte[c] >= bits / 8) {
          return Unimplemented(
              StrFormat("unsupported BMP bitfield masks %08x/%08x/%08x", masks[0], masks[1], masks[2]));
        }
      }
    }
  }
  IXC_RETURN_IF_ERROR(CheckImageSize(width, height, limits));

  Palette pal;
  uint64_t offset = file_offset;
  if (bits <= 8) {
    if (colors == 0) colors = 1u << bits;
    if (colors > 65536) return DataLoss(StrFormat("invalid palette size %u", colors));
    // Pillow's fix for files whose pixel offset forgot the palette.
    if (offset == 14 + header_size) offset += 4ull * colors;
    if (size < pos + static_cast<uint64_t>(colors) * palette_entry) return DataLoss("truncated palette");
    for (uint32_t i = 0; i < colors && i < 256; ++i) {
      const uint8_t* e = data + pos + i * palette_entry;
      pal.rgb[i][0] = e[2];
      pal.rgb[i][1] = e[1];
      pal.rgb[i][2] = e[0];
    }
  }
  if (offset > size) return DataLoss(StrFormat("pixel data offset %llu is past the end of the file (%zu bytes)",
                                               static_cast<unsigned long long>(offset), size));
  if (rle) {
    IXC_ASSIGN_OR_RETURN(std::vector<uint8_t> idx, RleIndices(data, size, offset, width, height, compression == kBiRle4));
    Image im = MakeImage(static_cast<int>(width), static_cast<int>(height));
    for (int y = 0; y < im.height; ++y) {
      const uint8_t* src = idx.data() + static_cast<size_t>(y) * im.width;
      uint8_t* dst = im.row(top_down ? y : im.height - 1 - y);
      for (int x = 0; x < im.width; ++x) std::memcpy(dst + 3 * x, pal.rgb[src[x]], 3);
    }
    return im;
  }
  // Rows are padded to 4 bytes, but the last one needs only its pixels.
  const uint64_t stride = ((static_cast<uint64_t>(width) * bits + 31) >> 3) & ~uint64_t{3};
  const uint64_t needed = height == 0 ? 0 : stride * (height - 1) + (static_cast<uint64_t>(width) * bits + 7) / 8;
  if (needed > size - offset) {
    return DataLoss(StrFormat("truncated pixel data (%llu bytes at offset %llu needed, file has %zu)",
                              static_cast<unsigned long long>(needed), static_cast<unsigned long long>(offset), size));
  }
  Image im = MakeImage(static_cast<int>(width), static_cast<int>(height));
  const int w = im.width;
  for (int y = 0; y < im.height; ++y) {
    const uint8_t* src = data + offset + stride * (top_down ? y : im.height - 1 - y);
    uint8_t* dst = im.row(y);
    if (bits <= 8) {
      const int per_byte = 8 / bits, mask = (1 << bits) - 1;
      for (int x = 0; x < w; ++x) {
        // Sub-byte pixels are packed most significant first.
        int idx = (src[x / per_byte] >> (8 - bits * (x % per_byte + 1))) & mask;
        std::memcpy(dst + 3 * x, pal.rgb[idx], 3);
      }
    } else if (bits == 16) {
      // Each 5- or 6-bit channel scaled as Pillow's unpackers do: c · 255 / max, rounded down.
      for (int x = 0; x < w; ++x) {
        const int v = src[2 * x] | (src[2 * x + 1] << 8);
        dst[3 * x + 0] = static_cast<uint8_t>((rgb565 ? (v >> 11) & 31 : (v >> 10) & 31) * 255 / 31);
        dst[3 * x + 1] = static_cast<uint8_t>(rgb565 ? ((v >> 5) & 63) * 255 / 63 : ((v >> 5) & 31) * 255 / 31);
        dst[3 * x + 2] = static_cast<uint8_t>((v & 31) * 255 / 31);
      }
    } else {
      const int bpp = bits / 8;
      for (int x = 0; x < w; ++x) {
        for (int c = 0; c < 3; ++c) dst[3 * x + c] = src[bpp * x + rgb_byte[c]];
      }
    }
  }
  return im;
}

}  // namespace ixc::media_internal
