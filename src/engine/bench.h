// The work `ixc bench`'s stages do, counted from the shapes (spec §2, §3.5–3.7), and the request shapes it uses.
// Multiply-add = 2 FLOP; norms, RoPE, softmax and activations are left out (well under 1% at the real widths).
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/weights.h"

namespace ixc {

// The image stage's request: one picture at hd_num 6 as a 2×3 tile grid (plus the global view), asked this
// question with the chat template and no system text. With the IXC-2.5 tokenizer the text around the image is
// kBenchQuestionTextTokens tokens (BOS, user header, question, end of turn, assistant header); a real model's
// tokenizer recounts it. Image tokens + text = 2,878 for the real shape.
inline constexpr int64_t kBenchGridRows = 2, kBenchGridCols = 3;
inline constexpr char kBenchQuestion[] = "Describe this image in detail.";
inline constexpr int64_t kBenchQuestionTextTokens = 17;

// Decoder FLOP of prefilling `tokens` rows in chunks of `chunk` rows, `image_rows` of them with Partial LoRA of rank
// `plora_rank`: the five linears on every row, causal attention (each row with itself and every row before it), the
// LM head on the last row of each chunk (what DecoderForward computes).
double PrefillFlop(const DecoderConfig& c, int64_t tokens, int64_t image_rows, int64_t plora_rank, int64_t chunk);

// CLIP over one view: patch embedding and every layer, attention over all patches and the class token.
double ClipViewFlop(const VisionConfig& v);

// The projector (two D-wide linears) over `tokens` merged tokens.
double ProjectorFlop(const ModelConfig& c, int64_t tokens);

struct BenchWork {
  int64_t image_tokens = 0;          // ImageTokenCount of the 2×3 grid
  int64_t image_prompt_tokens = 0;   // + the text tokens
  double prefill_flop_per_token = 0; // 512-token text prompt in one chunk, per token
  double vit_flop_per_tile = 0;      // one view's CLIP + its seventh of the projector
  double image_prompt_flop = 0;      // 7 views, the projector, the prefill in 512-row chunks
};

BenchWork ComputeBenchWork(const ModelConfig& c, int64_t plora_rank, int64_t text_tokens);

// Bytes of weights one decoded token reads, from the bound dtypes and shapes: every layer's wqkv, wo, w1, w2, w3
// (not the adapters: Partial LoRA never touches generated tokens), the norms (held as f32), the LM head and one
// embedding row.
int64_t DecodeWeightBytes(const DecoderWeights& w);

}  // namespace ixc
