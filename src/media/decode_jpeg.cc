// JPEG through libjpeg-turbo with the settings Pillow uses: the library defaults (ISLOW IDCT, fancy upsampling),
// output colour space RGB / grey / CMYK chosen from the component count, and Pillow's CMYK handling (the samples are
// assumed Adobe-inverted, then converted with Pillow's cmyk2rgb).
#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "media/decoders.h"

namespace ixc::media_internal {
namespace {

struct JpegError {
  jpeg_error_mgr pub;  // first, so libjpeg's err pointer can be cast back
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool hit_eof;
};

// libjpeg calls this on a fatal error; it must not return, so it jumps back into RunJpeg.
void OnJpegError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

// Warnings (corrupt-data notices) are ignored as Pillow ignores them, except running out of data: the in-memory
// source then inserts a fake EOI and the rest of the image would be grey, where Pillow reports truncation.
void OnJpegMessage(j_common_ptr cinfo, int msg_level) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  if (msg_level < 0) {
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->hit_eof = true;
    cinfo->err->num_warnings++;
  }
}

void SilentOutput(j_common_ptr) {}

// A progressive file may hold any number of scans, each a full pass over the coefficients: a small hostile file
// can make decoding take hours. Real encoders write about ten; libjpeg-turbo's own tools suggest capping at 100s.
constexpr int kMaxScans = 1000;

void OnJpegProgress(j_common_ptr cinfo) {
  auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (dinfo->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "more than %d progressive scans", kMaxScans);
    longjmp(err->jump, 1);
  }
}

// Pillow's "CMYK;I" unpacking (invert) followed by its cmyk2rgb.
inline uint8_t Muldiv255(int a, int b) {
  int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}
void CmykInvertedToRgb(const uint8_t* in, int n, uint8_t* out) {
  for (int x = 0; x < n; ++x, in += 4, out += 3) {
    int nk = in[3];  // 255 - (255 - k): the stored K is already inverted
    for (int c = 0; c < 3; ++c) {
      int v = nk - Muldiv255(255 - in[c], nk);
      out[c] = static_cast<uint8_t>(v < 0 ? 0 : v);
    }
  }
}

enum class JpegOutcome { kOk, kLibjpegError, kUnsupported, kOverLimit, kTruncated };

// Everything that can longjmp lives in this frame, whose locals are all trivially destructible; the caller owns
// the Image (so a jump after it was sized leaks nothing) and destroys the decompressor.
JpegOutcome RunJpeg(jpeg_decompress_struct* cinfo, JpegError* err, jpeg_progress_mgr* progress,
                    const uint8_t* data, size_t size,
                    const ImageLimits* limits, Image* out, std::vector<uint8_t>* scratch, Status* size_status) {
  if (setjmp(err->jump)) return JpegOutcome::kLibjpegError;
  jpeg_create_decompress(cinfo);
  cinfo->progress = progress;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  if (err->hit_eof) return JpegOutcome::kTruncated;
  *size_status = CheckImageSize(cinfo->image_width, cinfo->image_height, *limits);
  if (!size_status->ok()) return JpegOutcome::kOverLimit;
  bool cmyk = false;
  switch (cinfo->num_components) {
    case 1: cinfo->out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo->out_color_space = JCS_RGB; break;
    case 4: cinfo->out_color_space = JCS_CMYK; cmyk = true; break;
    default: return JpegOutcome::kUnsupported;
  }
  jpeg_start_decompress(cinfo);
  const int w = static_cast<int>(cinfo->output_width), h = static_cast<int>(cinfo->output_height);
  const int comps = cinfo->output_components;
  out->width = w;
  out->height = h;
  out->rgb.resize(static_cast<size_t>(w) * h * 3);
  scratch->resize(static_cast<size_t>(w) * comps);
  while (cinfo->output_scanline < cinfo->output_height) {
    const int y = static_cast<int>(cinfo->output_scanline);
    JSAMPROW row = comps == 3 ? out->row(y) : scratch->data();
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1 || err->hit_eof) return JpegOutcome::kTruncated;
    uint8_t* dst = out->row(y);
    if (comps == 1) {
      for (int x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
    } else if (cmyk) {
      CmykInvertedToRgb(row, w, dst);
    }
  }
  // jpeg_finish_decompress is skipped on purpose: data after the last scanline (or its absence) does not matter.
  return JpegOutcome::kOk;
}

}  // namespace

Result<Image> DecodeJpeg(const uint8_t* data, size_t size, const ImageLimits& limits) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  std::memset(&cinfo, 0, sizeof(cinfo));
  std::memset(&err, 0, sizeof(err));
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = OnJpegError;
  err.pub.emit_message = OnJpegMessage;
  err.pub.output_message = SilentOutput;
  jpeg_progress_mgr progress;
  std::memset(&progress, 0, sizeof(progress));
  progress.progress_monitor = OnJpegProgress;
  Image im;
  std::vector<uint8_t> scratch;
  Status size_status;
  JpegOutcome outcome = RunJpeg(&cinfo, &err, &progress, data, size, &limits, &im, &scratch, &size_status);
  const int components = cinfo.num_components;
  jpeg_destroy_decompress(&cinfo);
  switch (outcome) {
    case JpegOutcome::kOk: return im;
    case JpegOutcome::kLibjpegError: return DataLoss(StrFormat("corrupt or truncated data (libjpeg: %s)", err.message));
    case JpegOutcome::kTruncated: return DataLoss("truncated data (premature end of the JPEG stream)");
    case JpegOutcome::kOverLimit: return size_status;
    case JpegOutcome::kUnsupported:
      return Unimplemented(StrFormat("%d colour components are not supported", components));
  }
  return Internal("unreachable");
}

}  // namespace ixc::media_internal
