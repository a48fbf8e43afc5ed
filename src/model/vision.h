// The vision path after preprocessing (spec §3.5–3.7): CLIP ViT over the views of one image, 2×2 merge, the
// sub/global separator layout, and the projector into the decoder's embedding space.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"

namespace ixc {

// Number of decoder tokens one image with a rows×cols tile grid becomes: (h·w+1)·m² + 1 + (h+1)·m (m = merged grid).
int64_t ImageTokenCount(const VisionConfig& v, int64_t rows, int64_t cols);

// Views encoded together by EncodeImage (the rest wait for the next batch): bounds the tower's activations (65 MB
// per view at ViT-L/14-560). One view's 1601 rows already fill the products' blocks: a full-size hd_num 6 image
// encodes at the same speed in batches of 2 as of 8 (8.7–9.3 s per view either way, 2 Zen 3 cores), in 300 MB less.
constexpr int64_t kMaxViewsPerBatch = 2;

// CLIP forward of views [C, S, S] as one batch (last layer, no post-layernorm, CLS dropped) ->
// [views, num_patches, H].
void ClipForward(const VisionConfig& v, const VisionWeights& w, std::span<const float* const> views, ThreadPool* pool,
                 float* features);

// Encodes one image: `views` = [global, tiles row-major] (1 + rows·cols views of C·S·S floats) -> projected tokens
// [ImageTokenCount, D] in sequence order.
// `on_views(done, total)` (optional) is called after each batch of views.
void EncodeImage(const ModelConfig& c, const VisionWeights& w, std::span<const float* const> views, int64_t rows,
                 int64_t cols, ThreadPool* pool, std::vector<float>* tokens,
                 const std::function<void(int64_t, int64_t)>& on_views = {});

}  // namespace ixc
