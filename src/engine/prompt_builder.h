// Request -> the decoder's input sequence (spec §4.3): text parts tokenised (BOS on the first), image tokens
// spliced in at their placeholders, and the image mask that switches Partial LoRA on.
#pragma once

#include <vector>

#include "core/thread_pool.h"
#include "engine/model_impl.h"
#include "ixc/ixc.h"

namespace ixc {

struct PromptSequence {
  std::vector<float> embeds;        // [T, D]
  std::vector<uint8_t> image_mask;  // [T]
  int64_t length = 0;               // T
};

// The default hd_num rule of the reference: 24, or 6 when several images are given.
int EffectiveHdNum(const ChatRequest& r);

// Builds the sequence and fills the prompt fields of `result` (text ids, image token counts, grids, timings,
// captured tensors when asked).
Result<PromptSequence> BuildPrompt(const ModelImpl& m, const ChatRequest& r, ThreadPool* pool, ChatResult* result);

}  // namespace ixc
