#include "engine/media_input.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

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

namespace {

Result<PreparedImage> PrepareDecoded(const Image& im, const std::string& path, int hd_num, const MediaOptions& opts) {
  const HdGeometry geo = ComputeHdGeometry(im.width, im.height, hd_num);
  if (static_cast<int64_t>(geo.padded_w) * geo.padded_h > opts.max_pixels) {
    return ResourceExhausted(StrFormat("%s: the HD canvas %dx%d exceeds the %lld-pixel limit", path.c_str(),
                                       geo.padded_w, geo.padded_h, (long long)opts.max_pixels));
  }
  return CutViews(HdTransform(im, hd_num), opts);
}

}  // namespace

Result<PreparedImage> PrepareImageFile(const std::string& path, int hd_num, const MediaOptions& opts) {
  ImageLimits limits;
  limits.max_pixels = opts.max_pixels;
  IXC_ASSIGN_OR_RETURN(Image im, DecodeImageFile(path, limits));
  return PrepareDecoded(im, path, hd_num, opts);
}

Result<PreparedImage> PrepareImageBytes(const std::string& bytes, const std::string& name, int hd_num,
                                        const MediaOptions& opts) {
  ImageLimits limits;
  limits.max_pixels = opts.max_pixels;
  IXC_ASSIGN_OR_RETURN(Image im, DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name, limits));
  return PrepareDecoded(im, name, hd_num, opts);
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

Result<PreparedImage> PrepareVideoBytes(const std::string& bytes, const std::string& name, const MediaOptions& opts) {
  // The demuxer probes and seeks in a file; a private temporary copy gives it one without a custom I/O layer.
  const char* tmp = std::getenv("TMPDIR");
  std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/ixc-video-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) return Internal(StrFormat("%s: cannot create a temporary file for the video: %s", name.c_str(), std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      const int err = errno;
      close(fd);
      unlink(path.c_str());
      return Internal(StrFormat("%s: cannot write the video to a temporary file: %s", name.c_str(), std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  auto r = PrepareVideoFile(path, opts);
  unlink(path.c_str());
  if (!r.ok()) {
    // Name the input, not the temporary file.
    std::string msg = r.status().message();
    for (size_t at; (at = msg.find(path)) != std::string::npos;) msg.replace(at, path.size(), name);
    return Status(r.status().code(), msg);
  }
  return r;
}

}  // namespace ixc
