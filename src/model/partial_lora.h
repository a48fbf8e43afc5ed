// The one place every decoder linear goes through, so Partial LoRA and the task adapters live in one function.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "model/weights.h"

namespace ixc {

// Which task adapter is added to every row (spec §2.6).
enum class AdapterMode { kBase, kWeb, kWrite };

// y[T, out] = x[T, in]·Wᵀ, then the mode's adapter(s) on every row (web: lora_web; write: lora_sft then lora_dpo),
// then Partial LoRA on the rows whose image_mask is non-zero (image_mask may be null: no image rows). Scale 1.
void PartialLinear(const LinearWeights& w, const float* x, int64_t T, const uint8_t* image_mask, AdapterMode mode,
                   float* y, ThreadPool* pool);

}  // namespace ixc
