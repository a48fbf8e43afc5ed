// Text drawing for the video frame labels, reproducing Pillow 9.4's ImageDraw.text with a FreeType font and the
// raqm layout engine (what Debian's python3-pil uses): default anchor "la", glyphs loaded with FT_LOAD_DEFAULT
// (hinted outlines, 8-bit antialiased coverage), pen advances from unhinted metrics rounded to 1/64 pixel as
// HarfBuzz's FreeType callbacks compute them, glyph coverage merged with max() into a mask, then blended onto the
// image with Pillow's BLEND rounding.
//
// Not reproduced: OpenType substitutions and GPOS kerning (raqm applies them through HarfBuzz). The labels are
// "<IMAGE n>"; tests compare against Pillow renderings with the same font file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "media/image.h"

namespace ixc {

class LabelFont {
 public:
  // Opens face 0 of a TrueType/OpenType file (a .ttc too) at a nominal pixel size (Pillow's truetype(path, size)).
  static Result<std::unique_ptr<LabelFont>> Open(const std::string& path, int pixel_size);
  ~LabelFont();
  LabelFont(const LabelFont&) = delete;
  LabelFont& operator=(const LabelFont&) = delete;

  // Draws ASCII text with its anchor (left, ascender) at integer (x, y), like
  // ImageDraw.Draw(img).text((x, y), text, fill=ink, font=font). Pixels outside the image are clipped.
  Status Draw(Image* img, int x, int y, std::string_view text, const uint8_t ink[3]) const;

 private:
  struct Impl;
  explicit LabelFont(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ixc
