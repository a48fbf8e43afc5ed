// The video demuxer and decoders (FFmpeg's libavformat/libavcodec behind VideoDecoder): probe every packet, then
// decode and convert the first, middle and last frames.
#include "fuzz_util.h"
#include "video/video_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ixc::fuzz::MemFile file(data, size);
  ixc::VideoDecoderOptions opts;
  opts.max_pixels = 1'000'000;
  opts.max_frames_total = 2000;
  auto decoder = ixc::VideoDecoder::Open(file.path(), opts);
  if (!decoder.ok()) return 0;
  const int64_t n = (*decoder)->probe().num_frames;
  if (n <= 0) return 0;
  std::vector<int64_t> want = {0};
  if (n / 2 > 0) want.push_back(n / 2);
  if (n - 1 > want.back()) want.push_back(n - 1);
  uint64_t sum = 0;
  auto s = (*decoder)->DecodeFrames(want, [&](int64_t, ixc::Image&& im) {
    for (uint8_t v : im.rgb) sum += v;
    return ixc::Status::Ok();
  });
  ixc::fuzz::Keep(sum + s.ok());
  return 0;
}
