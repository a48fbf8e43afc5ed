#include "engine/media_input.h"

#include "media/hd_partition.h"
#include "media/image.h"
#include "media/pixels.h"
#include "video/video.h"

namespace ixc {

namespace {

// Normalises a picture whose sides are multiples of the tile and cuts the global view and the tiles.
PreparedImage CutViews(const Image& padded, const MediaOptions& opts) {
  PixelTensor hd = NormalizeClip(padded);
  PreparedImage out;
  out.rows = hd.height / opts.tile;
  out.cols = hd.width / opts.tile;
  for (auto& v : MakeVitViews(hd, opts.tile)) out.views.push_back(std::move(v.data));
  if (opts.keep_pixels) {
    out.height = hd.height;
    out.width = hd.width;
    out.pixels = std::move(hd.data);
  }
  return out;
}

}  // namespace

Result<PreparedImage> PrepareImageFile(const std::string& path, int hd_num, const MediaOptions& opts) {
  ImageLimits limits;
  limits.max_pixels = opts.max_pixels;
  IXC_ASSIGN_OR_RETURN(Image im, DecodeImageFile(path, limits));
  const HdGeometry geo = ComputeHdGeometry(im.width, im.height, hd_num);
  if (static_cast<int64_t>(geo.padded_w) * geo.padded_h > opts.max_pixels) {
    return ResourceExhausted(StrFormat("%s: the HD canvas %dx%d exceeds the %lld-pixel limit", path.c_str(),
                                       geo.padded_w, geo.padded_h, (long long)opts.max_pixels));
  }
  return CutViews(HdTransform(im, hd_num), opts);
}

Result<PreparedImage> PrepareVideoFile(const std::string& path, const MediaOptions& opts) {
  VideoOptions vo;
  vo.model_dir = opts.model_dir;
  vo.limits.max_pixels = opts.max_pixels;
  IXC_ASSIGN_OR_RETURN(vo.font_path, FindLabelFont(opts.model_dir, opts.font_path));
  IXC_ASSIGN_OR_RETURN(VideoResult v, LoadVideo(path, vo));
  PreparedImage out = CutViews(v.transformed, opts);
  out.frame_indices = std::move(v.frame_indices);
  out.composite_width = v.composite.width;
  out.composite_height = v.composite.height;
  return out;
}

}  // namespace ixc
