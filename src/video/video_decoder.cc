// FFmpeg demux/decode/convert for VideoDecoder; the indexing and conversion rules are described in the header.
#include "video/video_decoder.h"

#include "core/mapped_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace ixc {
namespace {

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

// decord's GetRotation: the "rotate" tag, else the display matrix, as clockwise degrees in [0, 360).
int StreamRotation(AVStream* st) {
  double theta = 0;
  if (AVDictionaryEntry* e = av_dict_get(st->metadata, "rotate", nullptr, 0);
      e && *e->value && std::strcmp(e->value, "0")) {
    theta = std::atof(e->value);
  }
  if (theta == 0) {
    if (const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr)) {
      theta = -av_display_rotation_get(reinterpret_cast<const int32_t*>(m));
    }
  }
  if (!std::isfinite(theta)) return 0;
  theta = std::fmod(theta, 360);
  if (theta < 0) theta += 360;
  const int deg = static_cast<int>(std::lround(theta)) % 360;
  return deg == 90 || deg == 180 || deg == 270 ? deg : 0;
}

// decord's "transpose=1" (clockwise), "transpose=2" (counter-clockwise) and twice clockwise, on RGB24.
Image Rotate(const Image& in, int degrees) {
  if (degrees == 0) return in;
  Image out;
  const int w = in.width, h = in.height;
  const bool swap = degrees != 180;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.rgb.resize(in.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx, sy;
      if (degrees == 90)
        sx = y, sy = h - 1 - x;
      else if (degrees == 270)
        sx = w - 1 - y, sy = x;
      else
        sx = w - 1 - x, sy = h - 1 - y;
      std::memcpy(&out.rgb[(static_cast<size_t>(y) * out.width + x) * 3],
                  &in.rgb[(static_cast<size_t>(sy) * w + sx) * 3], 3);
    }
  }
  return out;
}

// Silences FFmpeg's stderr chatter once per process; errors come back to callers as Status.
void QuietFfmpegLogs() {
  static const bool once = [] {
    av_log_set_level(AV_LOG_QUIET);
    return true;
  }();
  (void)once;
}

}  // namespace

struct VideoDecoder::Impl {
  std::string path;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  AVPacket* pkt = nullptr;
  AVFrame* frame = nullptr;
  SwsContext* sws = nullptr;
  int sws_src_w = -1, sws_src_h = -1, sws_src_fmt = -1, sws_cs = -1, sws_range = -1;
  std::vector<uint8_t> sws_buf;

  int stream = -1;
  int rotation = 0;
  int coded_w = 0, coded_h = 0;  // size frames are converted to, before rotation (decord's scale=W:H)
  VideoProbe probe;
  std::vector<int64_t> pts;   // presentation timestamp of frame i, ascending
  std::vector<int64_t> keys;  // frame indices of keyframes, ascending

  bool positioned = false;  // the demuxer and decoder are in a known state since the last seek
  bool demux_eof = false;
  int64_t last_index = -1;  // index of the last frame received since the last seek
  int64_t frames_decoded = 0, seeks = 0;

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
  }

  Status Index(int64_t max_frames_total);
  Status SeekToFrame(int64_t index);
  Result<AVFrame*> NextFrame();  // nullptr at the end of the stream
  int64_t IndexOf(const AVFrame* f) const;
  int64_t KeyAtOrBefore(int64_t index) const;
  Result<Image> Convert(const AVFrame* f);
  Result<Image> DecodeOne(int64_t index);
  bool last_packet_cut = false;  // the stream's last packet was read short (Index)
};

VideoDecoder::VideoDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VideoDecoder::~VideoDecoder() = default;
const VideoProbe& VideoDecoder::probe() const { return impl_->probe; }
int64_t VideoDecoder::frames_decoded() const { return impl_->frames_decoded; }
int64_t VideoDecoder::seeks() const { return impl_->seeks; }

Result<std::unique_ptr<VideoDecoder>> VideoDecoder::Open(const std::string& path, const VideoDecoderOptions& opts) {
  QuietFfmpegLogs();
  IXC_RETURN_IF_ERROR(CheckRegularFile(path, "video file"));
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  if (int err = avformat_open_input(&impl->fmt, path.c_str(), nullptr, nullptr); err < 0) {
    impl->fmt = nullptr;
    return InvalidArgument(StrFormat("%s is not a readable video: %s", path.c_str(), AvError(err).c_str()));
  }
  if (int err = avformat_find_stream_info(impl->fmt, nullptr); err < 0) {
    return DataLoss(StrFormat("%s: cannot read stream information: %s", path.c_str(), AvError(err).c_str()));
  }
  const int s = av_find_best_stream(impl->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (s < 0 || (impl->fmt->streams[s]->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
    return InvalidArgument(StrFormat("%s has no video stream", path.c_str()));
  }
  impl->stream = s;
  AVStream* st = impl->fmt->streams[s];
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec) {
    return Unimplemented(
        StrFormat("%s: no decoder for codec %s", path.c_str(), avcodec_get_name(st->codecpar->codec_id)));
  }
  const int w = st->codecpar->width, h = st->codecpar->height;
  if (w <= 0 || h <= 0) return DataLoss(StrFormat("%s: video stream has no frame size", path.c_str()));
  if (opts.max_pixels > 0 && static_cast<int64_t>(w) * h > opts.max_pixels) {
    return ResourceExhausted(StrFormat("%s: video frames of %d x %d are over the limit of %lld pixels", path.c_str(), w,
                                       h, (long long)opts.max_pixels));
  }
  impl->coded_w = w;
  impl->coded_h = h;
  impl->rotation = StreamRotation(st);

  impl->dec = avcodec_alloc_context3(codec);
  impl->pkt = av_packet_alloc();
  impl->frame = av_frame_alloc();
  if (!impl->dec || !impl->pkt || !impl->frame) return ResourceExhausted("out of memory opening the video decoder");
  if (int err = avcodec_parameters_to_context(impl->dec, st->codecpar); err < 0) {
    return DataLoss(StrFormat("%s: bad codec parameters: %s", path.c_str(), AvError(err).c_str()));
  }
  impl->dec->thread_count = std::max(1, opts.threads);
  impl->dec->pkt_timebase = st->time_base;
  // The decoder itself refuses frames over the limit, so a stream that lies about its size cannot allocate more.
  if (opts.max_pixels > 0) impl->dec->max_pixels = opts.max_pixels;
  if (int err = avcodec_open2(impl->dec, codec, nullptr); err < 0) {
    return Unimplemented(
        StrFormat("%s: cannot open the %s decoder: %s", path.c_str(), codec->name, AvError(err).c_str()));
  }

  VideoProbe& p = impl->probe;
  // decord get_avg_fps: avg_frame_rate as a plain division (0/0 gives NaN, refused by the sampler).
  p.avg_fps =
      st->avg_frame_rate.den != 0 ? static_cast<double>(st->avg_frame_rate.num) / st->avg_frame_rate.den : std::nan("");
  const bool swap = impl->rotation == 90 || impl->rotation == 270;
  p.width = swap ? h : w;
  p.height = swap ? w : h;
  IXC_RETURN_IF_ERROR(impl->Index(opts.max_frames_total));
  p.num_frames = static_cast<int64_t>(impl->pts.size());
  // Fewer frames than the container declares: the file was cut short. The reference's decord counts the declared
  // frames (nb_frames, else avg_fps × duration) and fails on the missing ones; sampling from what is left would
  // silently show other moments of the video. A count estimated from the duration may be off by a little.
  const bool exact = st->nb_frames > 0;
  int64_t declared = st->nb_frames;
  if (!exact && p.avg_fps > 0 && impl->fmt->duration > 0) {
    declared = static_cast<int64_t>(p.avg_fps * static_cast<double>(impl->fmt->duration) / AV_TIME_BASE);
  }
  if (declared > 0 && p.num_frames + (exact ? 0 : declared / 50) < declared) {
    return DataLoss(StrFormat("%s holds %lld of the %lld frames its header declares: the file is truncated or damaged",
                              path.c_str(), static_cast<long long>(p.num_frames), static_cast<long long>(declared)));
  }
  if (impl->last_packet_cut) {
    return DataLoss(StrFormat("%s: its last frame's data is cut short: the file is truncated", path.c_str()));
  }
  p.duration_s = p.avg_fps > 0 ? p.num_frames / p.avg_fps : 0;
  return std::unique_ptr<VideoDecoder>(new VideoDecoder(std::move(impl)));
}

// One pass over the packets (no decoding), like decord's IndexKeyframes, but with keyframe positions taken in
// presentation order so that "the keyframe at or before frame i" is exact for streams with B-frames.
Status VideoDecoder::Impl::Index(int64_t max_frames_total) {
  struct Entry {
    int64_t ts;
    bool key;
  };
  std::vector<Entry> entries;
  int64_t prev = AV_NOPTS_VALUE;
  for (;;) {
    const int err = av_read_frame(fmt, pkt);
    if (err == AVERROR_EOF) break;
    if (err < 0) {
      return DataLoss(
          StrFormat("%s: read error after %zu video packets: %s", path.c_str(), entries.size(), AvError(err).c_str()));
    }
    if (pkt->stream_index == stream) {
      if (max_frames_total > 0 && static_cast<int64_t>(entries.size()) >= max_frames_total) {
        av_packet_unref(pkt);
        return ResourceExhausted(
            StrFormat("%s: video has more than %lld frames", path.c_str(), (long long)max_frames_total));
      }
      int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (ts == AV_NOPTS_VALUE) ts = prev == AV_NOPTS_VALUE ? 0 : prev + 1;  // keeps decode order
      prev = ts;
      entries.push_back({ts, (pkt->flags & AV_PKT_FLAG_KEY) != 0});
      // A packet the demuxer could read only part of (it flags the short read) is fine in the middle of a damaged
      // stream, which decoders conceal; as the last one it means the file ends inside a frame.
      last_packet_cut = (pkt->flags & AV_PKT_FLAG_CORRUPT) != 0;
    }
    av_packet_unref(pkt);
  }
  if (entries.empty()) return DataLoss(StrFormat("%s: the video stream has no frames", path.c_str()));
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.ts < b.ts; });
  pts.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    pts.push_back(entries[i].ts);
    if (entries[i].key) keys.push_back(static_cast<int64_t>(i));
  }
  positioned = false;  // the demuxer is at the end now
  return Status::Ok();
}

int64_t VideoDecoder::Impl::KeyAtOrBefore(int64_t index) const {
  auto it = std::upper_bound(keys.begin(), keys.end(), index);
  return it == keys.begin() ? 0 : *(it - 1);
}

Status VideoDecoder::Impl::SeekToFrame(int64_t index) {
  ++seeks;
  int err = av_seek_frame(fmt, stream, pts[index], AVSEEK_FLAG_BACKWARD);
  if (err < 0 && index > 0) err = av_seek_frame(fmt, stream, pts[0], AVSEEK_FLAG_BACKWARD);
  if (err < 0) err = avformat_seek_file(fmt, -1, INT64_MIN, 0, INT64_MAX, 0);
  if (err < 0) return DataLoss(StrFormat("%s: cannot seek: %s", path.c_str(), AvError(err).c_str()));
  avcodec_flush_buffers(dec);
  positioned = true;
  demux_eof = false;
  last_index = -1;
  return Status::Ok();
}

Result<AVFrame*> VideoDecoder::Impl::NextFrame() {
  for (;;) {
    const int r = avcodec_receive_frame(dec, frame);
    if (r == 0) {
      ++frames_decoded;
      return frame;
    }
    if (r == AVERROR_EOF) return static_cast<AVFrame*>(nullptr);
    if (r != AVERROR(EAGAIN)) return DataLoss(StrFormat("%s: decoding failed: %s", path.c_str(), AvError(r).c_str()));
    if (demux_eof) return static_cast<AVFrame*>(nullptr);
    const int rr = av_read_frame(fmt, pkt);
    if (rr < 0) {
      // End of file, or a truncated/corrupt tail: drain what the decoder holds.
      demux_eof = true;
      avcodec_send_packet(dec, nullptr);
      continue;
    }
    if (pkt->stream_index == stream) {
      // A corrupt packet is skipped (as ffmpeg does); its frame then counts as missing.
      (void)avcodec_send_packet(dec, pkt);
    }
    av_packet_unref(pkt);
  }
}

int64_t VideoDecoder::Impl::IndexOf(const AVFrame* f) const {
  int64_t ts = f->best_effort_timestamp;
  if (ts == AV_NOPTS_VALUE) ts = f->pts;
  if (ts == AV_NOPTS_VALUE) ts = f->pkt_dts;
  int64_t idx;
  if (ts == AV_NOPTS_VALUE) {
    idx = last_index + 1;
  } else {
    // The frame whose timestamp is the latest one <= ts (exact for well-formed files).
    auto it = std::upper_bound(pts.begin(), pts.end(), ts);
    idx = it == pts.begin() ? 0 : (it - pts.begin()) - 1;
  }
  return std::max(idx, last_index + 1);
}

Result<Image> VideoDecoder::Impl::Convert(const AVFrame* f) {
  // decord's filter graph "scale=W:H" → rgb24: libswscale with SWS_BICUBIC, MPEG-2 chroma siting for yuv420p,
  // and vf_scale's colour handling (the frame's matrix, 601 when unknown; its range when tagged).
  // The enums are read as the ints they are stored in: a damaged stream can leave values outside the C++ enum's
  // range there, and loading those as the enum type is undefined behaviour (UBSan; found by the video fuzzer).
  int cs, range;
  static_assert(sizeof(f->colorspace) == sizeof(int) && sizeof(f->color_range) == sizeof(int));
  std::memcpy(&cs, &f->colorspace, sizeof cs);
  std::memcpy(&range, &f->color_range, sizeof range);
  if (cs < 1 || cs > 10 || cs == 8) cs = AVCOL_SPC_BT470BG;
  if (!sws || f->width != sws_src_w || f->height != sws_src_h || f->format != sws_src_fmt || cs != sws_cs ||
      range != sws_range) {
    sws_freeContext(sws);
    sws = sws_alloc_context();
    if (!sws) return ResourceExhausted("out of memory for the colour converter");
    av_opt_set_int(sws, "srcw", f->width, 0);
    av_opt_set_int(sws, "srch", f->height, 0);
    av_opt_set_int(sws, "src_format", f->format, 0);
    av_opt_set_int(sws, "dstw", coded_w, 0);
    av_opt_set_int(sws, "dsth", coded_h, 0);
    av_opt_set_int(sws, "dst_format", AV_PIX_FMT_RGB24, 0);
    av_opt_set_int(sws, "sws_flags", SWS_BICUBIC, 0);
    if (f->format == AV_PIX_FMT_YUV420P) av_opt_set_int(sws, "src_v_chr_pos", 128, 0);
    if (int err = sws_init_context(sws, nullptr, nullptr); err < 0) {
      sws_freeContext(sws);
      sws = nullptr;
      const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(f->format));
      return Unimplemented(StrFormat("%s: cannot convert %s frames to RGB: %s", path.c_str(), name ? name : "unknown",
                                     AvError(err).c_str()));
    }
    int *inv_table, *table, src_full, dst_full, brightness, contrast, saturation;
    sws_getColorspaceDetails(sws, &inv_table, &src_full, &table, &dst_full, &brightness, &contrast, &saturation);
    const int* coeffs = sws_getCoefficients(cs);
    if (range != AVCOL_RANGE_UNSPECIFIED) src_full = range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws, coeffs, src_full, coeffs, dst_full, brightness, contrast, saturation);
    sws_src_w = f->width, sws_src_h = f->height, sws_src_fmt = f->format, sws_cs = cs, sws_range = range;
  }
  // Convert into a padded, aligned buffer (SIMD paths may write whole blocks), then pack the rows.
  const int stride = (coded_w * 3 + 63) / 64 * 64;
  sws_buf.resize(static_cast<size_t>(stride) * (coded_h + 1) + 64);
  uint8_t* base = sws_buf.data() + ((64 - reinterpret_cast<uintptr_t>(sws_buf.data()) % 64) % 64);
  uint8_t* dst[4] = {base, nullptr, nullptr, nullptr};
  int dst_stride[4] = {stride, 0, 0, 0};
  if (sws_scale(sws, f->data, f->linesize, 0, f->height, dst, dst_stride) <= 0) {
    return DataLoss(StrFormat("%s: colour conversion failed", path.c_str()));
  }
  Image img;
  img.width = coded_w;
  img.height = coded_h;
  img.rgb.resize(static_cast<size_t>(coded_w) * coded_h * 3);
  for (int y = 0; y < coded_h; ++y) {
    std::memcpy(img.rgb.data() + static_cast<size_t>(y) * coded_w * 3, base + static_cast<size_t>(y) * stride,
                coded_w * 3);
  }
  return Rotate(img, rotation);
}

Result<Image> VideoDecoder::Impl::DecodeOne(int64_t target) {
  int64_t seek_index = KeyAtOrBefore(target);
  // Decoding forward is enough when the decoder sits before the target and no keyframe lies in between.
  bool need_seek = !positioned || last_index >= target || seek_index > last_index;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (need_seek) IXC_RETURN_IF_ERROR(SeekToFrame(seek_index));
    bool first = need_seek;
    need_seek = false;
    for (;;) {
      IXC_ASSIGN_OR_RETURN(AVFrame * f, NextFrame());
      if (!f) {
        positioned = false;                  // the decoder is drained; the next request seeks
        if (first && seek_index > 0) break;  // the seek went past the end: retry from the start
        return DataLoss(StrFormat("%s: the stream ended before frame %lld of %zu could be decoded", path.c_str(),
                                  (long long)target, pts.size()));
      }
      const int64_t idx = IndexOf(f);
      if (first && idx > target && seek_index > 0) break;  // the demuxer landed after the target: go further back
      first = false;
      last_index = idx;
      if (idx < target) continue;
      // idx == target, or the first decodable frame after it when the target's own packet could not be decoded.
      return Convert(f);
    }
    // Step back one keyframe per retry, then to the start of the file.
    const int64_t earlier = seek_index > 0 ? KeyAtOrBefore(seek_index - 1) : 0;
    seek_index = attempt >= 2 ? 0 : earlier;
    need_seek = true;
  }
  return DataLoss(StrFormat("%s: cannot position the decoder on frame %lld", path.c_str(), (long long)target));
}

Status VideoDecoder::DecodeFrames(const std::vector<int64_t>& indices,
                                  const std::function<Status(int64_t, Image&&)>& sink) {
  int64_t prev = -1;
  for (int64_t i : indices) {
    if (i <= prev || i >= static_cast<int64_t>(impl_->pts.size())) {
      return InvalidArgument(
          StrFormat("frame indices must ascend and be < %zu (got %lld)", impl_->pts.size(), (long long)i));
    }
    prev = i;
  }
  for (int64_t i : indices) {
    IXC_ASSIGN_OR_RETURN(Image img, impl_->DecodeOne(i));
    IXC_RETURN_IF_ERROR(sink(i, std::move(img)));
  }
  return Status::Ok();
}

}  // namespace ixc
