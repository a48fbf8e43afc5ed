// Frame-accurate random access to a video file with FFmpeg (libavformat/libavcodec/libswscale), indexed the way
// decord indexes it: frame i is the i-th packet of the video stream in presentation-time order.
//
// Open() demuxes the whole stream once (packets only, no decoding) to learn every frame's timestamp and which
// ones are keyframes; the frame count is that packet count (decord's len(vr)). DecodeFrames() then seeks to the
// keyframe at or before each wanted frame, decodes forward and converts only the wanted frames to RGB24 with
// libswscale set up as decord's "scale=W:H" filter graph does (bicubic flags, the frame's colour matrix and range).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "media/image.h"
#include "video/video.h"

namespace ixc {

struct VideoDecoderOptions {
  int64_t max_pixels = 0;        // frame width·height limit (0: none)
  int64_t max_frames_total = 0;  // packet-count limit (0: none)
  int threads = 1;
};

class VideoDecoder {
 public:
  static Result<std::unique_ptr<VideoDecoder>> Open(const std::string& path, const VideoDecoderOptions& opts);
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  const VideoProbe& probe() const;

  // Decodes the frames at `indices` (ascending, each < num_frames) and passes each to `sink` as RGB24 of
  // probe().width x probe().height, in order. A sink error stops decoding and is returned.
  Status DecodeFrames(const std::vector<int64_t>& indices, const std::function<Status(int64_t, Image&&)>& sink);

  // Statistics for tests: frames the codec produced and seeks issued so far.
  int64_t frames_decoded() const;
  int64_t seeks() const;

 private:
  struct Impl;
  explicit VideoDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ixc
