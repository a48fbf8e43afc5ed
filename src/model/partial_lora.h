// The one place every decoder linear goes through, so Partial LoRA and the task adapters live in one function.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "core/workspace.h"
#include "model/weights.h"

namespace ixc {

// Which task adapter is added to every row (spec §2.6).
enum class AdapterMode { kBase, kWeb, kWrite };

// y[T, out] = x[T, in]·Wᵀ, then the mode's adapter(s) on every row (web: lora_web; write: lora_sft then lora_dpo),
// then Partial LoRA on the rows whose image_mask is non-zero (image_mask may be null: no image rows). Scale 1.
// `ws` (optional) holds its scratch in slots kPartialLinearSlots and up, so callers keep the ones below.
constexpr size_t kPartialLinearSlots = 16;
void PartialLinear(const LinearWeights& w, const float* x, int64_t T, const uint8_t* image_mask, AdapterMode mode,
                   float* y, ThreadPool* pool, Workspace* ws = nullptr);

}  // namespace ixc
