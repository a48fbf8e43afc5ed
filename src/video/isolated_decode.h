// Video decoding in a child process. FFmpeg's decoders are large C code fed with files from strangers, and fuzzing
// found a file that crashes Debian's libavcodec 5.1 itself (tests/fixtures/video/ffv1_crashes_libavcodec.mkv): a
// crash there must cost one request an error, not the process (a server with other clients). The child (fork)
// probes, samples, decodes and resizes the frames and sends them back through a pipe; the parent never calls FFmpeg.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "media/image.h"
#include "video/video.h"

namespace ixc {

struct DecodedVideo {
  VideoProbe probe;
  std::vector<int64_t> frame_indices;
  std::vector<Image> frames;  // the sampled frames, as `transform` left them
};

// Runs `work` in a child process and returns its result. `work` gets the path and must fill DecodedVideo; its
// status comes back as it was. A child killed by a signal gives DataLoss naming the file and the signal; one still
// running after `timeout_s` is killed (ResourceExhausted). `max_bytes` bounds the frames' pixel bytes returned.
Result<DecodedVideo> RunIsolated(const std::string& path, const std::function<Status(DecodedVideo*)>& work,
                                 int64_t max_bytes, int timeout_s);

}  // namespace ixc
