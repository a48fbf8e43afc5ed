#include "engine/memory_estimate.h"

#include <algorithm>

#include "model/vision.h"

namespace ixc {

namespace {

constexpr int64_t kF = 4;               // sizeof(float): every activation is f32
constexpr int64_t kPrefillChunk = 512;  // session.cc: prompt rows per decoder forward
// gemm.cc, per thread that runs a product (thread_local): packed rows (192 × 256 floats + 8) and one widened weight
// panel (256 × 16 floats).
constexpr int64_t kMatMulScratch = (192 * 256 + 8 + 256 * 16) * kF;
// attention.cc, per thread: query tile, key/value blocks and scores (measured high-water mark, rounded up).
constexpr int64_t kAttentionScratch = int64_t{320} << 10;

int64_t KernelScratch(int threads) { return threads * (kMatMulScratch + kAttentionScratch); }

int64_t LoraBytes(int64_t rank, int64_t out, int64_t in, int64_t bytes) { return rank * (in + out) * bytes; }

}  // namespace

int64_t WeightBytes::mapped() const {
  int64_t n = 0;
  for (const WeightPart* p : {&embedding, &decoder, &output, &plora, &web, &sft, &dpo, &vision, &projector}) n += p->mapped;
  return n;
}

int64_t WeightBytes::owned() const {
  int64_t n = 0;
  for (const WeightPart* p : {&embedding, &decoder, &output, &plora, &web, &sft, &dpo, &vision, &projector}) n += p->owned;
  return n;
}

WeightBytes WeightBytesForConfig(const ModelConfig& mc, int bytes_per_weight, const LoraRanks& ranks, bool vision,
                                 bool awq) {
  const DecoderConfig& c = mc.text;
  const int64_t b = bytes_per_weight, D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const int64_t L = c.num_hidden_layers, Q = c.qkv_dim(), A = c.num_attention_heads * c.head_dim();
  WeightBytes w;
  w.embedding.mapped = V * D * b;
  w.embedding_row_bytes = D * b;
  w.output.mapped = V * D * b;
  const int64_t linears = Q * D + D * A + 2 * F * D + D * F;
  (awq ? w.decoder.owned : w.decoder.mapped) = L * linears * (awq ? 2 : b);
  w.decoder.owned += (2 * L + 1) * D * kF;  // attention_norm, ffn_norm per layer; model.norm
  struct { int64_t out, in; } shapes[] = {{Q, D}, {D, A}, {F, D}, {F, D}, {D, F}};
  for (auto [part, rank] : {std::pair{&w.plora, ranks.plora}, {&w.web, ranks.web}, {&w.sft, ranks.sft}, {&w.dpo, ranks.dpo}}) {
    for (auto s : shapes) part->mapped += L * LoraBytes(rank, s.out, s.in, b);
  }
  if (vision) {
    const VisionConfig& v = mc.vision;
    const int64_t H = v.hidden_size, I = v.intermediate_size, P = v.patch_size, C = v.num_channels;
    const int64_t M = v.merged_dim();
    w.vision.mapped = H * C * P * P * b + v.num_hidden_layers * (4 * H * H + 2 * I * H) * b;
    w.vision.owned = (H + (v.num_patches() + 1) * H + 2 * H) * kF +           // class, position, pre_layrnorm
                     v.num_hidden_layers * (4 * H + I + H + 4 * H) * kF;      // biases, layer norms
    w.projector.mapped = (D * M + D * D) * b;
    w.projector.owned = (2 * D + 2 * M) * kF;  // biases, plora_glb_GN, plora_sub_GN
  }
  return w;
}

ImageShape LargestImage(int hd_num) {
  ImageShape s;
  s.rows = std::max(1, hd_num);
  s.cols = 1;
  return s;
}

int64_t KvBytesPerToken(const DecoderConfig& c, DType kv) { return 2 * c.num_hidden_layers * StorageBytes(kv, c.kv_dim()); }

int64_t ImageTokens(const VisionConfig& v, const ImageShape& im) {
  const int64_t m = v.merged_grid();
  return (int64_t{im.rows} * im.cols + 1) * m * m + 1 + (im.rows + 1) * m;
}

namespace {

int64_t CanvasPixels(const VisionConfig& v, const ImageShape& im) {
  return int64_t{im.rows} * im.cols * v.image_size * v.image_size;
}

int64_t Views(const ImageShape& im) { return 1 + int64_t{im.rows} * im.cols; }

// The CLIP views of one image: the global view and the tiles, 3 planes of f32 each (media_input.cc).
int64_t ViewBytes(const VisionConfig& v, const ImageShape& im) {
  return Views(im) * v.num_channels * v.image_size * v.image_size * kF;
}

// Per-view CLIP output kept until the 2×2 merge (vision.cc: feats).
int64_t FeatureBytes(const VisionConfig& v, const ImageShape& im) { return Views(im) * v.num_patches() * v.hidden_size * kF; }

constexpr int64_t kMmapCeiling = int64_t{32} << 20;  // glibc's largest dynamic mmap threshold (64-bit)

int64_t IfHeap(int64_t block, int64_t count = 1) { return block < kMmapCeiling ? block * count : 0; }

// ClipForward's buffers for a batch of views: one view's patches, x/h/q/k/v/attn and the MLP hidden for every
// view of the batch; and the largest single block of it.
int64_t ClipScratch(const VisionConfig& v, int64_t batch, int64_t* largest = nullptr) {
  const int64_t H = v.hidden_size, I = v.intermediate_size, N = v.num_patches() + 1, Np = v.num_patches();
  const int64_t patch = v.num_channels * v.patch_size * v.patch_size;
  if (largest) *largest = std::max({Np * patch, batch * N * H, batch * N * I}) * kF;
  return (Np * patch + batch * N * (6 * H + I)) * kF;
}

int64_t ViewsPerBatch(const ImageShape& im) { return std::min<int64_t>(Views(im), kMaxViewsPerBatch); }

// What the vision phase leaves resident (see the file comment): the main thread's arena keeps the blocks under the
// mmap ceiling (views, features, the projector's buffers); later phases reuse that memory first. The tower's batch
// buffers are far above the ceiling, so they go back to the system when freed.
struct Retained {
  int64_t main = 0;
};

Retained RetainedAfterVision(const ModelConfig& mc, const ImageShape& im) {
  const VisionConfig& v = mc.vision;
  const int64_t tokens = ImageTokens(v, im), D = mc.text.hidden_size;
  Retained r;
  r.main = IfHeap(v.num_channels * v.image_size * v.image_size * kF, Views(im)) +
           IfHeap(v.num_patches() * v.hidden_size * kF, Views(im)) +
           IfHeap(ViewsPerBatch(im) * v.num_patches() * v.hidden_size * kF) + IfHeap(tokens * v.merged_dim() * kF) +
           2 * IfHeap(tokens * D * kF);
  return r;
}

}  // namespace

int64_t MediaBytes(const VisionConfig& v, const ImageShape& im) {
  const int64_t canvas = CanvasPixels(v, im);
  const int64_t source = im.source_pixels > 0 ? im.source_pixels : canvas;
  // At the end of CutViews: the decoded picture (RGB8), the padded canvas (RGB8), the normalised HD tensor (f32)
  // and the views cut from it. (HdTransform's resize buffers and the global view's bicubic rows are freed before.)
  return 3 * source + 3 * canvas + 3 * canvas * kF + ViewBytes(v, im);
}

int64_t VisionEncodeBytes(const ModelConfig& mc, const ImageShape& im, int threads) {
  const VisionConfig& v = mc.vision;
  const int64_t M = v.merged_dim(), D = mc.text.hidden_size;
  const int64_t batch = ViewsPerBatch(im);  // vision.cc: up to kMaxViewsPerBatch views through the tower at once
  const int64_t batch_features = batch * v.num_patches() * v.hidden_size * kF;
  // After the views: the merged tokens, the projector's hidden and its output, side by side.
  const int64_t projector = ImageTokens(v, im) * (M + 2 * D) * kF;
  return ViewBytes(v, im) + FeatureBytes(v, im) + batch_features + std::max(ClipScratch(v, batch), projector) +
         KernelScratch(threads);
}

int64_t PrefillBytes(const ModelConfig& mc, int64_t T, bool has_images, TaskMode mode, const LoraRanks& ranks,
                     int threads, DType kv_dtype) {
  const DecoderConfig& c = mc.text;
  const int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, d = c.head_dim();
  const int64_t Tc = std::min(kPrefillChunk, T), kv = c.kv_dim();
  // session.cc: the prompt's embeddings, mask and row keys; the conversation's row keys and RoPE bases; the logits;
  // the KV cache of the prompt.
  int64_t n = T * D * kF + T + 3 * T * 8 + V * kF + T * KvBytesPerToken(c, kv_dtype);
  // decoder.cc's workspace, one chunk: x, h, q, attn, o [Tc, D]; qkv; a, b [Tc, F]; cos, sin [Tc, d/2]; a key and
  // value row per thread.
  n += Tc * (5 * D + c.qkv_dim() + 2 * F + d) * kF + 2 * kv * threads * kF;
  // partial_lora.cc: gathered image rows in and out (largest for w1/w3/w2: D + F) and the rank-r middle; or the
  // mode adapter's middle.
  int64_t lora = 0;
  if (has_images && ranks.plora > 0) lora = Tc * (D + F + ranks.plora) * kF;
  if (mode == TaskMode::kWeb) lora = std::max(lora, Tc * ranks.web * kF);
  if (mode == TaskMode::kWrite) lora = std::max(lora, Tc * std::max(ranks.sft, ranks.dpo) * kF);
  return n + lora + KernelScratch(threads);
}

int64_t DecodeBytes(const ModelConfig& mc, int64_t ctx, int threads, DType kv_dtype) {
  const DecoderConfig& c = mc.text;
  const int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, d = c.head_dim();
  return ctx * KvBytesPerToken(c, kv_dtype) + 2 * ctx * 8 +  // KV cache; the conversation's row keys and bases
         2 * V * kF + D * kF +                                // logits (and the sampler's copy), the embedded token
         (5 * D + c.qkv_dim() + 2 * F + d) * kF +             // one row's workspace (the prefill's is freed)
         KernelScratch(threads);
}

MemoryEstimate EstimateMemory(const ModelConfig& mc, const WeightBytes& w, const LoraRanks& ranks,
                              const RequestShape& r, const RuntimeBytes& rt) {
  const DecoderConfig& c = mc.text;
  const VisionConfig& v = mc.vision;
  const int64_t D = c.hidden_size;
  const int threads = std::max(1, r.threads);
  const bool images = !r.images.empty();
  MemoryEstimate e;
  e.weights_mapped = w.mapped();
  e.weights_owned = w.owned();
  e.runtime = rt.code + rt.tokenizer;

  // Vision: images one after the other; earlier images' tokens stay.
  int64_t vision_phase = 0, earlier_tokens = 0;
  Retained retained;
  for (const ImageShape& im : r.images) {
    const int64_t media = MediaBytes(v, im), encode = VisionEncodeBytes(mc, im, threads);
    e.media = std::max(e.media, media);
    e.vision = std::max(e.vision, encode);
    vision_phase = std::max(vision_phase, earlier_tokens * D * kF + std::max(media, encode));
    retained.main = std::max(retained.main, RetainedAfterVision(mc, im).main);
    const int64_t t = ImageTokens(v, im);
    e.image_tokens += t;
    earlier_tokens += t;
  }
  e.allocator_retained = retained.main;
  e.prompt_tokens = r.text_tokens + e.image_tokens;
  e.context_tokens = std::max(r.context_tokens, e.prompt_tokens);
  e.kv_bytes_per_token = KvBytesPerToken(c, r.kv_dtype);
  e.kv_cache = e.context_tokens * e.kv_bytes_per_token;
  e.prefill = PrefillBytes(mc, e.prompt_tokens, images, r.mode, ranks, threads, r.kv_dtype);
  e.decode = DecodeBytes(mc, e.context_tokens, threads, r.kv_dtype);
  const int64_t prompt = e.image_tokens * D * kF + e.prompt_tokens * (D * kF + 1);

  // Mapped weights each phase has touched.
  auto embedding_rows = [&](int64_t tokens) {
    return std::min(w.embedding.mapped, tokens * std::max(w.embedding_row_bytes, kFaultAroundBytes));
  };
  const int64_t vision_weights = images ? w.vision.mapped + w.projector.mapped : 0;
  int64_t decoder_weights = w.decoder.mapped + w.output.mapped;
  if (images) decoder_weights += w.plora.mapped;
  if (r.mode == TaskMode::kWeb) decoder_weights += w.web.mapped;
  if (r.mode == TaskMode::kWrite) decoder_weights += w.sft.mapped + w.dpo.mapped;
  const int64_t generated = e.context_tokens - e.prompt_tokens;

  const int64_t base = e.runtime + e.weights_owned;
  struct Phase { const char* name; int64_t bytes; } phases[] = {
      {"load", base},
      {"vision", base + vision_weights + vision_phase},
      {"prompt", base + vision_weights + embedding_rows(r.text_tokens) + std::max(prompt, retained.main)},
      {"prefill", base + vision_weights + decoder_weights + embedding_rows(r.text_tokens) +
                      std::max(e.prefill, retained.main)},
      {"decode", base + vision_weights + decoder_weights + embedding_rows(r.text_tokens + generated) +
                     std::max(e.decode, retained.main)},
  };
  e.weights_resident = e.weights_owned + vision_weights + decoder_weights + embedding_rows(r.text_tokens + generated);
  for (const Phase& p : phases) {
    if (p.bytes >= e.total) {
      e.total = p.bytes;
      e.peak_phase = p.name;
    }
  }
  return e;
}

}  // namespace ixc
