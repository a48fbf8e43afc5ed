// Request -> the decoder's input sequence (spec §4.3): text parts tokenised (BOS on the first), image tokens
// spliced in at their placeholders, and the image mask that switches Partial LoRA on.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "engine/model_impl.h"
#include "ixc/ixc.h"

namespace ixc {

struct PromptSequence {
  std::vector<float> embeds;        // [T, D] (zero on reused rows of images that were not encoded again)
  std::vector<uint8_t> image_mask;  // [T]
  std::vector<uint64_t> row_keys;   // [T] what each row is: a token id, or an image's content digest and row
  int64_t length = 0;               // T
  int64_t reused_rows = 0;          // leading rows the caller takes from its cache
};

// Given a prompt's row keys, how many leading rows a cache can supply (clamped to [0, T - 1]: the last row is
// always computed, for its logits).
using PrefixReuse = std::function<int64_t(const std::vector<uint64_t>& row_keys)>;

// The default hd_num rule of the reference: 24, or 6 when several images are given.
int EffectiveHdNum(const ChatRequest& r);

// Builds the sequence and fills the prompt fields of `result` (text ids, image token counts, grids, timings,
// captured tensors when asked). With `reuse`, images whose rows all fall in the reused prefix are not encoded.
Result<PromptSequence> BuildPrompt(const ModelImpl& m, const ChatRequest& r, ThreadPool* pool, ChatResult* result,
                                   const PrefixReuse& reuse = {});

}  // namespace ixc
