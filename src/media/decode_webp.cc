// WebP through libwebp's animation decoder, as Pillow decodes every WebP file: the first frame composed on the
// canvas in non-premultiplied RGBA (alpha then dropped). For a still image that is the plain decode.
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>

#include "media/decoders.h"

namespace ixc::media_internal {

Result<Image> DecodeWebp(const uint8_t* data, size_t size, const ImageLimits& limits) {
  WebPBitstreamFeatures features;
  VP8StatusCode st = WebPGetFeatures(data, size, &features);
  if (st == VP8_STATUS_NOT_ENOUGH_DATA) return DataLoss("truncated header");
  if (st != VP8_STATUS_OK) return DataLoss(StrFormat("corrupt header (libwebp status %d)", static_cast<int>(st)));
  IXC_RETURN_IF_ERROR(CheckImageSize(features.width, features.height, limits));

  WebPData webp_data{data, size};
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) return Internal("libwebp version mismatch");
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  WebPAnimDecoder* dec = WebPAnimDecoderNew(&webp_data, &options);
  if (!dec) return DataLoss("corrupt or truncated data (libwebp cannot parse the container)");
  WebPAnimInfo info;
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  Status status;
  if (!WebPAnimDecoderGetInfo(dec, &info)) {
    status = DataLoss("corrupt container");
  } else if (static_cast<int64_t>(info.canvas_width) != features.width ||
             static_cast<int64_t>(info.canvas_height) != features.height) {
    status = DataLoss("inconsistent canvas size");
  } else if (!WebPAnimDecoderHasMoreFrames(dec) || !WebPAnimDecoderGetNext(dec, &rgba, &timestamp) || !rgba) {
    status = DataLoss("corrupt or truncated image data");
  }
  Image im;
  if (status.ok()) {
    im = MakeImage(features.width, features.height);
    const size_t n = static_cast<size_t>(im.width) * im.height;
    for (size_t i = 0; i < n; ++i) std::memcpy(&im.rgb[3 * i], rgba + 4 * i, 3);
  }
  WebPAnimDecoderDelete(dec);
  if (!status.ok()) return status;
  return im;
}

}  // namespace ixc::media_internal
