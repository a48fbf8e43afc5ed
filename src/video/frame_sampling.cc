// §6.1 frame sampling (the reference's load_video): one candidate per second, at most max_frames kept.
#include <cfenv>
#include <cmath>

#include "video/video.h"

namespace ixc {

Result<std::vector<int64_t>> SampleFrameIndices(int64_t num_frames, double avg_fps, int max_frames) {
  if (num_frames <= 0)
    return InvalidArgument(StrFormat("video has no frames (frame count %lld)", (long long)num_frames));
  if (max_frames < 1) return InvalidArgument(StrFormat("max_frames must be >= 1, got %d", max_frames));
  if (!std::isfinite(avg_fps) || avg_fps <= 0)
    return InvalidArgument(StrFormat("video frame rate %g is not usable", avg_fps));
  // Python's round() is half-to-even; nearbyint does that in the default rounding mode, which we pin.
  const int saved_mode = std::fegetround();
  std::fesetround(FE_TONEAREST);
  const double rounded = std::nearbyint(avg_fps);
  std::fesetround(saved_mode);
  if (rounded < 1) {
    return InvalidArgument(
        StrFormat("video frame rate %g rounds to a frame stride of 0 (the reference fails here)", avg_fps));
  }
  // A stride past the end yields the single candidate 0 either way; clamping keeps the arithmetic in range.
  const int64_t stride = rounded >= static_cast<double>(num_frames) ? num_frames : static_cast<int64_t>(rounded);
  const int64_t count = (num_frames + stride - 1) / stride;  // len(range(0, num_frames, stride))
  std::vector<int64_t> out;
  if (count <= max_frames) {
    out.reserve(count);
    for (int64_t i = 0; i < count; ++i) out.push_back(i * stride);
    return out;
  }
  // step = len / (num_frm + 1), positions int(k·step): the last second is never reached, as in the reference.
  const double step = static_cast<double>(count) / (max_frames + 1);
  out.reserve(max_frames);
  for (int k = 0; k < max_frames; ++k) out.push_back(static_cast<int64_t>(k * step) * stride);
  return out;
}

}  // namespace ixc
