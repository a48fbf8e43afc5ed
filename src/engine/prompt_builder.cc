#include "engine/prompt_builder.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>

#include "core/status.h"
#include "core/timer.h"
#include "engine/media_input.h"
#include "model/decoder.h"
#include "model/vision.h"
#include "text/chat_format.h"

namespace ixc {

namespace {

// Prompts longer than this are first counted a slice at a time.
constexpr int64_t kSlicedCountBytes = int64_t{1} << 18;

// Tokens of `text` tokenized in slices of about 16 KB (cut after a newline or space where one is near), stopping
// once the count passes `limit`. Only a guard: a slice boundary can change the tokens around it by a few, so callers
// compare against a generous limit; the prompt itself is tokenized whole.
int64_t CountTokensUpTo(const Tokenizer& tok, const std::string& text, int64_t limit) {
  constexpr size_t kSlice = 16 << 10, kLookAhead = 1 << 10;
  int64_t n = 0;
  for (size_t at = 0; at < text.size() && n <= limit;) {
    size_t end = std::min(text.size(), at + kSlice);
    if (end < text.size()) {
      const size_t cut = text.find_first_of("\n ", end);
      if (cut != std::string::npos && cut - end < kLookAhead) end = cut + 1;
    }
    n += static_cast<int64_t>(tok.Encode(text.substr(at, end - at)).size());
    at = end;
  }
  return n;
}

constexpr int kMaxImages = 64;
constexpr int kMaxHdNum = 100;
}  // namespace

int EffectiveHdNum(const ChatRequest& r) {
  if (r.images.size() > 1) return 6;  // the reference forces 6 for several images, whatever was asked
  return r.hd_num > 0 ? r.hd_num : 24;
}

namespace {

// A 64-bit digest of an image's views (what decides its embeddings), to recognise it in a later request.
uint64_t HashViews(const PreparedImage& im) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(im.rows) << 32 | static_cast<uint32_t>(im.cols));
  for (const auto& v : im.views) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    const size_t n = v.size() * sizeof(float);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 0x100000001B3ull;
      h ^= h >> 29;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  }
  return h;
}

// Row keys: a text row is its token id; an image row mixes the image's digest with the row index and sets the top
// bit, so it never equals a token id.
uint64_t ImageRowKey(uint64_t digest, int64_t row) {
  uint64_t x = digest + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(row + 1);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return (x ^ (x >> 31)) | (uint64_t{1} << 63);
}

}  // namespace

Result<PromptSequence> BuildPrompt(const ModelImpl& m, const ChatRequest& r, ThreadPool* pool, ChatResult* result,
                                   const PrefixReuse& reuse) {
  const DecoderConfig& c = m.config.text;
  const Tokenizer& tok = *m.tokenizer;
  const int64_t D = c.hidden_size;
  if (r.hd_num < 0 || r.hd_num > kMaxHdNum) return InvalidArgument(StrFormat("hd_num must be between 1 and %d", kMaxHdNum));
  if (r.images.size() > static_cast<size_t>(kMaxImages)) {
    return ResourceExhausted(StrFormat("%zu images given; at most %d per request", r.images.size(), kMaxImages));
  }
  if (!r.images.empty() && !m.weights.vision.present) {
    return FailedPrecondition("this checkpoint has no vision tower, so it cannot take images");
  }
  std::vector<ChatTurn> history;
  for (const auto& t : r.history) history.push_back({t.user, t.assistant});
  const std::string prompt = BuildChatPrompt(r.system, history, r.query);
  const int64_t max_length = r.max_length > 0 ? r.max_length : c.max_length;
  const char* whose = r.max_length > 0 ? "request's" : "model's";
  // A text far too long for max_length is refused while it is being tokenized, a slice at a time (a 20 MB history
  // took 86 s and 2.4 GB to tokenize whole), and before any image is decoded or encoded.
  if (static_cast<int64_t>(prompt.size()) > kSlicedCountBytes) {
    const int64_t at_least = CountTokensUpTo(tok, prompt, 2 * max_length);
    if (at_least > 2 * max_length) {
      return ResourceExhausted(StrFormat("the prompt's text (%zu bytes) is far over the %s max_length of %lld tokens; "
                                         "use a shorter history or question, or a larger context",
                                         prompt.size(), whose, (long long)max_length));
    }
  }
  IXC_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitForImages(prompt, static_cast<int>(r.images.size())));

  // Text parts: the first always (it carries BOS), later ones only when non-empty.
  std::vector<std::vector<int>> ids(parts.size());
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k == 0) ids[k].push_back(tok.bos_id());
    if (k == 0 || !parts[k].empty()) {
      std::vector<int> p = tok.Encode(parts[k]);
      ids[k].insert(ids[k].end(), p.begin(), p.end());
    }
  }
  int64_t text_tokens = 0;
  for (const auto& p : ids) text_tokens += static_cast<int64_t>(p.size());
  if (text_tokens > max_length) {
    return ResourceExhausted(StrFormat("the prompt's text is %lld tokens, over the %s max_length of %lld; use a shorter "
                                       "history or question, or a larger context", (long long)text_tokens, whose,
                                       (long long)max_length));
  }

  const int hd_num = EffectiveHdNum(r);
  const size_t n_images = r.images.size();
  MediaOptions mo;
  mo.tile = static_cast<int>(m.config.vision.image_size);
  mo.model_dir = m.model_dir;
  mo.font_path = r.font_path;
  mo.max_pixels = r.max_image_pixels;
  const int64_t items = static_cast<int64_t>(n_images);
  auto prepare = [&](size_t i) -> Result<PreparedImage> {
    auto t0 = Clock::now();
    mo.keep_pixels = r.capture_tensors && i == 0;
    const MediaInput& in = r.images[i];
    auto prepared = in.data ? (in.is_video ? PrepareVideoBytes(*in.data, in.path, mo)
                                           : PrepareImageBytes(*in.data, in.path, hd_num, mo))
                            : (in.is_video ? PrepareVideoFile(in.path, mo) : PrepareImageFile(in.path, hd_num, mo));
    if (!prepared.ok()) return prepared.status();
    if (in.is_video) {
      result->videos.push_back({prepared->frame_indices, prepared->composite_width, prepared->composite_height,
                                prepared->rows, prepared->cols});
    }
    result->grids.push_back({prepared->rows, prepared->cols});
    if (mo.keep_pixels) {
      result->tensors.pixels0 = std::move(prepared->pixels);
      result->tensors.pixels0_height = prepared->height;
      result->tensors.pixels0_width = prepared->width;
    }
    result->timings.load_media_ms += MsSince(t0);
    const int64_t item = static_cast<int64_t>(i) + 1;
    if (r.progress) r.progress({ChatProgress::Stage::kMedia, item, items, item, items, SecondsSince(t0)});
    return prepared;
  };
  std::vector<std::vector<float>> image_tokens(n_images);
  auto encode = [&](size_t i, const PreparedImage& im) {
    const auto t0 = Clock::now();
    const int64_t item = static_cast<int64_t>(i) + 1;
    std::vector<const float*> views;
    for (const auto& v : im.views) views.push_back(v.data());
    std::function<void(int64_t, int64_t)> on_views;
    if (r.progress) {
      on_views = [&](int64_t done, int64_t total) {
        r.progress({ChatProgress::Stage::kEncode, item, items, done, total, SecondsSince(t0)});
      };
      r.progress({ChatProgress::Stage::kEncode, item, items, 0, static_cast<int64_t>(views.size()), 0.0});
    }
    EncodeImage(m.config, m.weights.vision, views, im.rows, im.cols, pool, &image_tokens[i], on_views);
    result->timings.encode_images_ms += MsSince(t0);
    result->timings.encoded_views += static_cast<int64_t>(views.size());
  };

  // Each image's size in tokens and digest. Without a cache to reuse, each image is encoded as soon as it is
  // prepared (only one image's views exist at a time); with one, the encoding waits until it is known which images
  // fall inside the reused prefix, and the prepared views are kept until then.
  std::vector<int64_t> image_rows(n_images);
  std::vector<uint64_t> digests(n_images);
  std::vector<PreparedImage> pending(reuse ? n_images : 0);
  for (size_t i = 0; i < n_images; ++i) {
    IXC_ASSIGN_OR_RETURN(PreparedImage im, prepare(i));
    image_rows[i] = ImageTokenCount(m.config.vision, im.rows, im.cols);
    digests[i] = HashViews(im);
    if (reuse) {
      pending[i] = std::move(im);
    } else {
      encode(i, im);
    }
  }

  int64_t total = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    total += static_cast<int64_t>(ids[k].size());
    if (k < n_images) total += image_rows[k];
  }
  if (total > max_length) {
    return ResourceExhausted(StrFormat("the prompt is %lld tokens, over the %s max_length of %lld; use fewer or smaller "
                                       "images (--hd-num), a shorter history, or a larger context", (long long)total,
                                       whose, (long long)max_length));
  }

  PromptSequence seq;
  seq.length = total;
  seq.row_keys.reserve(total);
  for (size_t k = 0; k < parts.size(); ++k) {
    for (int id : ids[k]) seq.row_keys.push_back(static_cast<uint64_t>(id));
    if (k < n_images)
      for (int64_t j = 0; j < image_rows[k]; ++j) seq.row_keys.push_back(ImageRowKey(digests[k], j));
  }
  if (reuse) {
    seq.reused_rows = std::clamp<int64_t>(reuse(seq.row_keys), 0, total - 1);
    int64_t row = 0;
    for (size_t k = 0; k < parts.size(); ++k) {
      row += static_cast<int64_t>(ids[k].size());
      if (k >= n_images) break;
      row += image_rows[k];
      if (row > seq.reused_rows) encode(k, pending[k]);  // some of its rows are computed again
      pending[k] = PreparedImage();
    }
  }

  seq.embeds.assign(total * D, 0.f);
  seq.image_mask.assign(total, 0);
  int64_t row = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    if (!ids[k].empty()) {
      EmbedTokens(m.weights.text, ids[k].data(), static_cast<int64_t>(ids[k].size()), &seq.embeds[row * D]);
      row += static_cast<int64_t>(ids[k].size());
      result->prompt_text_ids.push_back(ids[k]);
    }
    if (k < n_images) {
      const int64_t n = image_rows[k];
      result->image_tokens.push_back(n);
      // An image inside the reused prefix was not encoded: its rows come from the cache, never from embeds.
      if (!image_tokens[k].empty()) std::memcpy(&seq.embeds[row * D], image_tokens[k].data(), n * D * sizeof(float));
      std::fill(seq.image_mask.begin() + row, seq.image_mask.begin() + row + n, 1);
      if (r.capture_tensors) {
        result->tensors.image_embeds.insert(result->tensors.image_embeds.end(), image_tokens[k].begin(), image_tokens[k].end());
        result->tensors.image_embed_rows += n;
      }
      row += n;
    }
  }
  result->prompt_tokens = total;
  return seq;
}

}  // namespace ixc
