// GIF through giflib's record-level API, first frame only, as Pillow shows it: the canvas is the logical screen
// (grown to hold the frame if the frame overhangs it), pixels outside the frame hold the frame's transparent index
// if it has one and index 0 otherwise, and indices go through the local colour table, else the global one, else are
// grey levels; indices past the table's end map to grey as in Pillow.
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "media/decoders.h"

namespace ixc::media_internal {
namespace {

// The file as giflib reads it, followed by a block terminator and a trailer ("\0;"). Pillow stops reading once the
// frame's pixels are complete, so a file that ends right after its last image data block decodes there; giflib
// reads on to the terminator and fails. Supplying it makes the two agree; a frame whose pixels are incomplete still
// fails (giflib then meets the terminator inside the image data).
struct GifSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  int tail = 0;  // bytes of kTail served after the end of the file
};
constexpr GifByteType kTail[2] = {0x00, ';'};

int ReadGifBytes(GifFileType* gif, GifByteType* out, int n) {
  auto* src = static_cast<GifSource*>(gif->UserData);
  size_t want = static_cast<size_t>(n < 0 ? 0 : n);
  size_t take = std::min(want, src->size - src->pos);
  std::memcpy(out, src->data + src->pos, take);
  src->pos += take;
  while (take < want && src->tail < 2) out[take++] = kTail[src->tail++];
  return static_cast<int>(take);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int err = 0;
    DGifCloseFile(gif, &err);
  }
};

bool IsGreyRamp(const ColorMapObject* m) {
  if (!m->Colors) return false;
  for (int i = 0; i < m->ColorCount; ++i) {
    const GifColorType& c = m->Colors[i];
    if (c.Red != i || c.Green != i || c.Blue != i) return false;
  }
  return true;
}

Status GifError(const char* what, int code) {
  const char* msg = GifErrorString(code);
  return DataLoss(StrFormat("%s (giflib: %s)", what, msg ? msg : "unknown error"));
}

}  // namespace

Result<Image> DecodeGif(const uint8_t* data, size_t size, const ImageLimits& limits) {
  GifSource src{data, size, 0};
  int err = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&src, ReadGifBytes, &err));
  if (!gif) return GifError("cannot read the GIF header", err);
  int transparent = -1;
  for (;;) {
    // Between records Pillow skips any byte that starts none ('!' extension, ',' image, ';' trailer); giflib calls
    // it a wrong record type. giflib reads exactly up to here (records and data sub-blocks are sized), so the
    // stray bytes can be skipped in the source.
    while (src.pos < src.size && src.data[src.pos] != '!' && src.data[src.pos] != ',' && src.data[src.pos] != ';') {
      ++src.pos;
    }
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) return GifError("corrupt or truncated data", gif->Error);
    if (type == TERMINATE_RECORD_TYPE) return DataLoss("the file has no image frame");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) return GifError("corrupt extension", gif->Error);
      // Graphic Control Extension: byte 1 bit 0 says whether byte 4 is a transparent index.
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4) transparent = (ext[1] & 1) ? ext[4] : -1;
      while (ext) {
        if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) return GifError("corrupt extension", gif->Error);
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) return GifError("corrupt image descriptor", gif->Error);
    const GifImageDesc& d = gif->Image;
    if (d.Left < 0 || d.Top < 0 || d.Width < 0 || d.Height < 0) return DataLoss("invalid frame geometry");
    const int64_t canvas_w = std::max<int64_t>(gif->SWidth, int64_t{d.Left} + d.Width);
    const int64_t canvas_h = std::max<int64_t>(gif->SHeight, int64_t{d.Top} + d.Height);
    IXC_RETURN_IF_ERROR(CheckImageSize(canvas_w, canvas_h, limits));
    // giflib reads whole frame rows into caller memory; check the frame itself too before sizing the line buffer.
    if (d.Width > 0 && d.Height > 0) IXC_RETURN_IF_ERROR(CheckImageSize(d.Width, d.Height, limits));

    Palette pal;
    // Pillow treats a colour table that is exactly the grey ramp (i, i, i) as "not needed" and, for a local
    // table, then falls back to the global one: reproduced, odd as it is.
    const bool local_usable = d.ColorMap && !IsGreyRamp(d.ColorMap);
    const ColorMapObject* cmap = local_usable ? d.ColorMap : gif->SColorMap;
    if (cmap && cmap->Colors) {
      for (int i = 0; i < cmap->ColorCount && i < 256; ++i) {
        pal.rgb[i][0] = cmap->Colors[i].Red;
        pal.rgb[i][1] = cmap->Colors[i].Green;
        pal.rgb[i][2] = cmap->Colors[i].Blue;
      }
    }
    const int w = static_cast<int>(canvas_w), h = static_cast<int>(canvas_h);
    std::vector<uint8_t> index(static_cast<size_t>(w) * h, static_cast<uint8_t>(transparent >= 0 ? transparent : 0));
    std::vector<GifPixelType> line(static_cast<size_t>(std::max(d.Width, 1)));
    // Interlaced frames store rows in four passes: every 8th from 0, every 8th from 4, every 4th from 2, odd rows.
    static constexpr int kStart[4] = {0, 4, 2, 1}, kStep[4] = {8, 8, 4, 2};
    const int passes = d.Interlace ? 4 : 1;
    for (int p = 0; p < passes; ++p) {
      const int start = d.Interlace ? kStart[p] : 0, step = d.Interlace ? kStep[p] : 1;
      for (int y = start; y < d.Height; y += step) {
        if (DGifGetLine(gif.get(), line.data(), d.Width) == GIF_ERROR) {
          return GifError("corrupt or truncated image data", gif->Error);
        }
        std::memcpy(index.data() + static_cast<size_t>(d.Top + y) * w + d.Left, line.data(), d.Width);
      }
    }
    Image im;
    im.width = w;
    im.height = h;
    im.rgb.resize(index.size() * 3);
    for (size_t i = 0; i < index.size(); ++i) std::memcpy(&im.rgb[3 * i], pal.rgb[index[i]], 3);
    return im;
  }
}

}  // namespace ixc::media_internal
