#include "engine/prompt_builder.h"

#include <chrono>
#include <cstring>

#include "core/status.h"
#include "core/timer.h"
#include "engine/media_input.h"
#include "model/decoder.h"
#include "model/vision.h"
#include "text/chat_format.h"

namespace ixc {

namespace {
constexpr int kMaxImages = 64;
constexpr int kMaxHdNum = 100;
}  // namespace

int EffectiveHdNum(const ChatRequest& r) {
  if (r.images.size() > 1) return 6;  // the reference forces 6 for several images, whatever was asked
  return r.hd_num > 0 ? r.hd_num : 24;
}

Result<PromptSequence> BuildPrompt(const ModelImpl& m, const ChatRequest& r, ThreadPool* pool, ChatResult* result) {
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
  IXC_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitForImages(prompt, static_cast<int>(r.images.size())));

  // Encode the images first so that the sequence length is known before allocating it.
  const int hd_num = EffectiveHdNum(r);
  std::vector<std::vector<float>> image_tokens(r.images.size());
  MediaOptions mo;
  mo.tile = static_cast<int>(m.config.vision.image_size);
  mo.model_dir = m.model_dir;
  mo.font_path = r.font_path;
  mo.max_pixels = r.max_image_pixels;
  for (size_t i = 0; i < r.images.size(); ++i) {
    auto t0 = Clock::now();
    mo.keep_pixels = r.capture_tensors && i == 0;
    const MediaInput& in = r.images[i];
    auto prepared = in.is_video ? PrepareVideoFile(in.path, mo) : PrepareImageFile(in.path, hd_num, mo);
    if (!prepared.ok()) return prepared.status();
    if (in.is_video) {
      result->videos.push_back({prepared->frame_indices, prepared->composite_width, prepared->composite_height,
                                prepared->rows, prepared->cols});
    }
    result->timings.load_media_ms += MsSince(t0);
    const int64_t item = static_cast<int64_t>(i) + 1, items = static_cast<int64_t>(r.images.size());
    if (r.progress) r.progress({ChatProgress::Stage::kMedia, item, items, item, items, SecondsSince(t0)});
    t0 = Clock::now();
    std::vector<const float*> views;
    for (const auto& v : prepared->views) views.push_back(v.data());
    std::function<void(int64_t, int64_t)> on_views;
    if (r.progress) {
      on_views = [&](int64_t done, int64_t total) {
        r.progress({ChatProgress::Stage::kEncode, item, items, done, total, SecondsSince(t0)});
      };
      r.progress({ChatProgress::Stage::kEncode, item, items, 0, static_cast<int64_t>(views.size()), 0.0});
    }
    EncodeImage(m.config, m.weights.vision, views, prepared->rows, prepared->cols, pool, &image_tokens[i], on_views);
    result->timings.encode_images_ms += MsSince(t0);
    result->timings.encoded_views += static_cast<int64_t>(views.size());
    result->grids.push_back({prepared->rows, prepared->cols});
    result->image_tokens.push_back(static_cast<int64_t>(image_tokens[i].size()) / D);
    if (mo.keep_pixels) {
      result->tensors.pixels0 = std::move(prepared->pixels);
      result->tensors.pixels0_height = prepared->height;
      result->tensors.pixels0_width = prepared->width;
    }
  }

  // Text parts: the first always (it carries BOS), later ones only when non-empty.
  std::vector<std::vector<int>> ids(parts.size());
  int64_t total = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k == 0) ids[k].push_back(tok.bos_id());
    if (k == 0 || !parts[k].empty()) {
      std::vector<int> p = tok.Encode(parts[k]);
      ids[k].insert(ids[k].end(), p.begin(), p.end());
    }
    total += static_cast<int64_t>(ids[k].size());
    if (k < image_tokens.size()) total += static_cast<int64_t>(image_tokens[k].size()) / D;
  }
  if (total > c.max_length) {
    return ResourceExhausted(StrFormat("the prompt is %lld tokens, over the model's max_length of %lld; use fewer or "
                                       "smaller images (--hd-num) or a shorter history", (long long)total, (long long)c.max_length));
  }

  PromptSequence seq;
  seq.length = total;
  seq.embeds.resize(total * D);
  seq.image_mask.assign(total, 0);
  int64_t row = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    if (!ids[k].empty()) {
      EmbedTokens(m.weights.text, ids[k].data(), static_cast<int64_t>(ids[k].size()), &seq.embeds[row * D]);
      row += static_cast<int64_t>(ids[k].size());
      result->prompt_text_ids.push_back(ids[k]);
    }
    if (k < image_tokens.size()) {
      const int64_t n = static_cast<int64_t>(image_tokens[k].size()) / D;
      std::memcpy(&seq.embeds[row * D], image_tokens[k].data(), n * D * sizeof(float));
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
