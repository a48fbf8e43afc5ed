// FreeType port of Pillow 9.4's text path (font_getsize, font_render, ImagingFill2 with an "L" mask); see
// label_font.h for what is and is not reproduced. Also FindLabelFont (video.h).
#include "video/label_font.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_GLYPH_H
#include FT_ADVANCES_H
#include FT_BITMAP_H

#include <algorithm>
#include <filesystem>
#include <vector>

#include "core/mapped_file.h"
#include "video/video.h"

namespace ixc {
namespace {

// Rounds a 26.6 coordinate to whole pixels (Pillow's PIXEL macro; arithmetic shift for negatives).
int Pixel(int v) { return ((v + 32) & -64) >> 6; }

Status FtError(const char* what, int err) { return Internal(StrFormat("FreeType %s failed (error %d)", what, err)); }

struct GlyphPos {
  unsigned index;
  int x_advance;  // 26.6
};

bool IsFile(const std::string& p) {
  std::error_code ec;
  return !p.empty() && std::filesystem::is_regular_file(p, ec);
}

}  // namespace

struct LabelFont::Impl {
  FT_Library lib = nullptr;
  FT_Face face = nullptr;
  ~Impl() {
    if (face) FT_Done_Face(face);
    if (lib) FT_Done_FreeType(lib);
  }
};

LabelFont::LabelFont(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LabelFont::~LabelFont() = default;

Result<std::unique_ptr<LabelFont>> LabelFont::Open(const std::string& path, int pixel_size) {
  if (pixel_size < 1 || pixel_size > 1000) return InvalidArgument(StrFormat("font size %d out of range", pixel_size));
  IXC_RETURN_IF_ERROR(CheckRegularFile(path, "font file"));
  auto impl = std::make_unique<Impl>();
  if (int err = FT_Init_FreeType(&impl->lib)) return FtError("init", err);
  if (int err = FT_New_Face(impl->lib, path.c_str(), 0, &impl->face)) {
    return InvalidArgument(StrFormat("cannot open font %s (FreeType error %d)", path.c_str(), err));
  }
  // Pillow 9.4 getfont: FT_Set_Pixel_Sizes(face, 0, size).
  if (int err = FT_Set_Pixel_Sizes(impl->face, 0, pixel_size)) {
    return InvalidArgument(
        StrFormat("font %s has no usable size %d (FreeType error %d)", path.c_str(), pixel_size, err));
  }
  return std::unique_ptr<LabelFont>(new LabelFont(std::move(impl)));
}

Status LabelFont::Draw(Image* img, int x, int y, std::string_view text, const uint8_t ink[3]) const {
  FT_Face face = impl_->face;
  if (text.empty()) return Status::Ok();

  // Layout as raqm/HarfBuzz 6 with hb-ft callbacks: cmap lookup, advance = FT_Get_Advance with
  // FT_LOAD_DEFAULT | FT_LOAD_NO_HINTING (16.16) rounded to 26.6.
  std::vector<GlyphPos> glyphs;
  glyphs.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) return InvalidArgument("label text must be ASCII");
    GlyphPos g;
    g.index = FT_Get_Char_Index(face, c);
    FT_Fixed adv = 0;
    if (int err = FT_Get_Advance(face, g.index, FT_LOAD_DEFAULT | FT_LOAD_NO_HINTING, &adv)) {
      return FtError("get advance", err);
    }
    if (adv < 0) adv = -adv;
    g.x_advance = static_cast<int>(static_cast<float>(adv) + (1 << 9)) >> 10;
    glyphs.push_back(g);
  }

  // font_getsize: text box from grid-fitted glyph boxes and the pen line; anchor "la".
  int position = 0, x_min = 0, x_max = 0, y_min = 0, y_max = 0;
  for (const GlyphPos& g : glyphs) {
    const int px = Pixel(position);
    position += g.x_advance;
    x_max = std::max(x_max, Pixel(position));
    if (int err = FT_Load_Glyph(face, g.index, FT_LOAD_DEFAULT)) return FtError("load glyph", err);
    FT_Glyph glyph;
    if (int err = FT_Get_Glyph(face->glyph, &glyph)) return FtError("get glyph", err);
    FT_BBox bbox;
    FT_Glyph_Get_CBox(glyph, FT_GLYPH_BBOX_PIXELS, &bbox);
    FT_Done_Glyph(glyph);
    x_max = std::max<int>(x_max, bbox.xMax + px);
    x_min = std::min<int>(x_min, bbox.xMin + px);
    y_max = std::max<int>(y_max, bbox.yMax);
    y_min = std::min<int>(y_min, bbox.yMin);
  }
  const int offset_x = x_min;
  const int offset_y = Pixel(static_cast<int>(face->size->metrics.ascender)) - y_max;
  const int mask_w = x_max - x_min, mask_h = y_max - y_min;
  if (mask_w <= 0 || mask_h <= 0) return Status::Ok();

  // font_render: origin from the rendered bitmaps' extents, then each glyph's coverage max-merged into the mask.
  std::vector<uint8_t> mask(static_cast<size_t>(mask_w) * mask_h, 0);
  int pen_x = 0, rx_min = 0, ry_max = 0;
  for (const GlyphPos& g : glyphs) {
    const int px = Pixel(pen_x);
    if (int err = FT_Load_Glyph(face, g.index, FT_LOAD_DEFAULT | FT_LOAD_RENDER)) return FtError("render glyph", err);
    ry_max = std::max(ry_max, face->glyph->bitmap_top);
    rx_min = std::min(rx_min, face->glyph->bitmap_left + px);
    pen_x += g.x_advance;
  }
  pen_x = -rx_min * 64;
  const int pen_y = -ry_max * 64;
  FT_Bitmap converted;
  FT_Bitmap_Init(&converted);
  Status status;
  for (const GlyphPos& g : glyphs) {
    const int px = Pixel(pen_x), py = Pixel(pen_y);
    pen_x += g.x_advance;
    if (int err = FT_Load_Glyph(face, g.index, FT_LOAD_DEFAULT | FT_LOAD_RENDER)) {
      status = FtError("render glyph", err);
      break;
    }
    FT_GlyphSlot slot = face->glyph;
    FT_Bitmap bitmap = slot->bitmap;
    unsigned scale = 1;
    if (bitmap.pixel_mode == FT_PIXEL_MODE_MONO || bitmap.pixel_mode == FT_PIXEL_MODE_GRAY2 ||
        bitmap.pixel_mode == FT_PIXEL_MODE_GRAY4) {
      // Embedded bitmap strikes: expand to one byte per pixel and rescale as Pillow does.
      scale = bitmap.pixel_mode == FT_PIXEL_MODE_MONO    ? 255
              : bitmap.pixel_mode == FT_PIXEL_MODE_GRAY2 ? 255 / 3
                                                         : 255 / 15;
      if (int err = FT_Bitmap_Convert(impl_->lib, &bitmap, &converted, 1)) {
        status = FtError("convert bitmap", err);
        break;
      }
      bitmap = converted;
    } else if (bitmap.pixel_mode != FT_PIXEL_MODE_GRAY) {
      if (bitmap.rows == 0 || bitmap.width == 0) continue;
      status = Unimplemented("font has colour glyphs, which labels do not support");
      break;
    }
    if (!bitmap.buffer) continue;
    const int xx = px + slot->bitmap_left;
    int yy = -(py + slot->bitmap_top);
    const int x0 = std::max(0, -xx);
    const int x1 = std::min<int>(bitmap.width, mask_w - xx);
    const uint8_t* src = bitmap.buffer;
    if (bitmap.pitch < 0) src -= static_cast<ptrdiff_t>(bitmap.pitch) * (bitmap.rows - 1);
    for (unsigned row = 0; row < bitmap.rows; ++row, ++yy, src += bitmap.pitch) {
      if (yy < 0 || yy >= mask_h) continue;
      uint8_t* dst = mask.data() + static_cast<size_t>(yy) * mask_w + xx;
      for (int k = x0; k < x1; ++k) {
        const auto v = static_cast<uint8_t>(src[k] * scale);
        if (dst[k] < v) dst[k] = v;
      }
    }
  }
  FT_Bitmap_Done(impl_->lib, &converted);
  IXC_RETURN_IF_ERROR(status);

  // ImagingFill2 with an "L" mask: clip to the image, out = DIV255(out·(255−m) + ink·m) per channel.
  const int dx = x + offset_x, dy = y + offset_y;
  const int sx0 = std::max(0, -dx), sy0 = std::max(0, -dy);
  const int sx1 = std::min(mask_w, img->width - dx), sy1 = std::min(mask_h, img->height - dy);
  for (int sy = sy0; sy < sy1; ++sy) {
    const uint8_t* m = mask.data() + static_cast<size_t>(sy) * mask_w;
    uint8_t* out = img->rgb.data() + (static_cast<size_t>(sy + dy) * img->width + dx) * 3;
    for (int sx = sx0; sx < sx1; ++sx) {
      const unsigned a = m[sx];
      if (a == 0) continue;  // BLEND with mask 0 leaves the pixel as is
      for (int c = 0; c < 3; ++c) {
        unsigned t = out[sx * 3 + c] * (255 - a) + ink[c] * a + 128;
        out[sx * 3 + c] = static_cast<uint8_t>(((t >> 8) + t) >> 8);
      }
    }
  }
  return Status::Ok();
}

Result<std::string> FindLabelFont(const std::string& model_dir, const std::string& explicit_font) {
  if (!explicit_font.empty()) {
    if (IsFile(explicit_font)) return explicit_font;
    return NotFound(StrFormat("label font %s not found", explicit_font.c_str()));
  }
  // The reference downloads SimHei.ttf at model construction; a model folder may ship it.
  if (!model_dir.empty()) {
    const std::string simhei = (std::filesystem::path(model_dir) / "SimHei.ttf").string();
    if (IsFile(simhei)) return simhei;
  }
  // WenQuanYi Zen Hei (Debian fonts-wqy-zenhei; same file under other distributions' font trees).
  for (const char* p : {"/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
                        "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc"}) {
    if (IsFile(p)) return std::string(p);
  }
  return NotFound(
      "no font for the video frame labels: put SimHei.ttf in the model folder, name a font file, or install "
      "fonts-wqy-zenhei");
}

}  // namespace ixc
