// Every image decoder (JPEG, PNG, GIF, BMP, WebP), chosen by the input's magic bytes as for a user's file.
#include "fuzz_util.h"
#include "media/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ixc::ImageLimits limits;
  limits.max_pixels = 4'000'000;  // 48 MB of RGB: inside the fuzzer's memory limit
  auto image = ixc::DecodeImage(data, size, "fuzz-image", limits);
  if (image.ok()) {
    uint64_t sum = 0;
    for (uint8_t v : image->rgb) sum += v;
    ixc::fuzz::Keep(sum);
  }
  return 0;
}
