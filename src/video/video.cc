// LoadVideo: the reference's load_video → frame2img → Video_transform.
#include "video/video.h"

#include <algorithm>

#include "core/mapped_file.h"
#include "video/isolated_decode.h"
#include "video/video_decoder.h"

namespace ixc {

Result<VideoResult> LoadVideo(const std::string& path, const VideoOptions& opts) {
  std::string font = opts.font_path;
  if (font.empty()) {
    IXC_ASSIGN_OR_RETURN(font, FindLabelFont(opts.model_dir, ""));
  } else {
    IXC_RETURN_IF_ERROR(CheckRegularFile(font, "label font"));
  }

  VideoDecoderOptions dopts;
  dopts.max_pixels = opts.limits.max_pixels;
  dopts.max_frames_total = opts.max_frames_total;
  dopts.threads = opts.decode_threads;
  // Probing, sampling, decoding and resizing run in a child process (isolated_decode.h); this process gets the
  // resized frames, or an error when the decoder failed or crashed.
  auto decode = [&](DecodedVideo* v) -> Status {
    IXC_ASSIGN_OR_RETURN(std::unique_ptr<VideoDecoder> decoder, VideoDecoder::Open(path, dopts));
    v->probe = decoder->probe();
    auto idx = SampleFrameIndices(v->probe.num_frames, v->probe.avg_fps, opts.max_frames);
    if (!idx.ok()) return idx.status().WithContext(path);
    v->frame_indices = std::move(idx).value();
    // Every frame is converted to the stream's size, so the composite's size is known before decoding anything.
    int fw, fh;
    CompositeFrameSize(v->probe.width, v->probe.height, &fw, &fh);
    if (fw <= 0 || fh <= 0) {
      return InvalidArgument(StrFormat("%s: frames of %d x %d are too elongated for the composite", path.c_str(),
                                       v->probe.width, v->probe.height));
    }
    const bool landscape = v->probe.width > v->probe.height;
    const int64_t n = static_cast<int64_t>(v->frame_indices.size());
    const int64_t cw = landscape ? fw : n * (fw + 10), ch = landscape ? n * (fh + 50) : fh + 40;
    if (cw * ch > opts.max_composite_pixels) {
      return ResourceExhausted(
          StrFormat("%s: the composite of %lld frames (%lld x %lld) is over the limit of %lld pixels", path.c_str(),
                    (long long)n, (long long)cw, (long long)ch, (long long)opts.max_composite_pixels));
    }
    // Resize each frame as soon as it is decoded: only the 1120-pixel versions are held.
    v->frames.reserve(v->frame_indices.size());
    return decoder->DecodeFrames(v->frame_indices, [&](int64_t, Image&& frame) {
      v->frames.push_back(ResizeForComposite(frame));
      return Status::Ok();
    });
  };
  // A resized frame is at most 1120 pixels on its long side.
  const int64_t max_bytes = static_cast<int64_t>(std::max(opts.max_frames, 1)) * 1120 * 1120 * 3;
  IXC_ASSIGN_OR_RETURN(DecodedVideo decoded, RunIsolated(path, decode, max_bytes, opts.decode_timeout_s));

  VideoResult out;
  out.probe = decoded.probe;
  out.frame_indices = std::move(decoded.frame_indices);
  const bool landscape = out.probe.width > out.probe.height;
  std::vector<Image> resized = std::move(decoded.frames);
  IXC_ASSIGN_OR_RETURN(out.composite, ComposeResizedFrames(resized, landscape, font, opts.max_composite_pixels));
  resized.clear();
  out.transformed = VideoTransform(out.composite);
  out.rows = out.transformed.height / 560;
  out.cols = out.transformed.width / 560;
  out.num_tokens = VideoImageTokenCount(out.rows, out.cols);
  return out;
}

}  // namespace ixc
