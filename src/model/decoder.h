// The InternLM2 decoder (spec §2): embeddings in, logits out, one forward step at a time over a KV cache.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "core/workspace.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/partial_lora.h"
#include "model/weights.h"

namespace ixc {

struct DecoderStep {
  const float* embeds = nullptr;        // [T, D] input rows (text embeddings and/or projected image tokens)
  int64_t num_rows = 0;                 // T
  const uint8_t* image_mask = nullptr;  // [T] non-zero on image rows (Partial LoRA); null = all text
  AdapterMode mode = AdapterMode::kBase;
  // Read-only context before `cache` (a prompt shared by several beams); may be null.
  const KvCache* shared_prefix = nullptr;
  KvCache* cache = nullptr;             // receives this step's keys and values
  // The RoPE base comes from the total length after this step unless a larger one is given (spec Part A §1:
  // the whole prompt is one step even when computed in chunks).
  int64_t rope_length = 0;
  bool all_logits = false;              // logits for every row, else only the last row
  bool no_logits = false;               // fill the cache only (a prompt chunk before the last): no LM head
  // Activation buffers reused across steps (slots below kPartialLinearSlots; PartialLinear uses the ones from
  // there); null: allocated for this step.
  Workspace* workspace = nullptr;
};

// Runs one step; writes vocab_size logits per requested row into `logits` (untouched with no_logits).
void DecoderForward(const DecoderConfig& c, const DecoderWeights& w, const DecoderStep& step, ThreadPool* pool,
                    float* logits);

// Runs steps of several sequences (each with its own cache) as one: the linear layers multiply all their rows
// together, so each weight is read once for all of them; attention stays within each sequence. The steps must
// share the adapter mode; the first step's workspace serves them all. `logits` receives each step's requested
// rows in step order (none for no_logits steps). Gives the same logits as the steps run one by one.
void DecoderForwardBatch(const DecoderConfig& c, const DecoderWeights& w, std::span<const DecoderStep> steps,
                         ThreadPool* pool, float* logits);

// Rows of tok_embeddings for `ids` (ids must be valid: callers check them against the vocabulary).
void EmbedTokens(const DecoderWeights& w, const int* ids, int64_t n, float* out);

// cos/sin tables (d/2 each) for one position under a base, as the reference builds them.
void RopeCosSin(const DecoderConfig& c, double base, int64_t position, float* cos, float* sin);

}  // namespace ixc
