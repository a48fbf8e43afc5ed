// The IXC-2.5 tensor set, bound from a checkpoint's name -> tensor table. Every field carries its source name and
// PyTorch-order shape. Large matrices stay views of the stored (mapped) data; small vectors are copied to f32.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "model/config.h"

namespace ixc {

// A low-rank pair: y += (x·Aᵀ)·Bᵀ with A [rank, in], B [out, rank]. Ranks come from the shapes.
struct LoraPair {
  TensorView a, b;
  bool present() const { return a.valid(); }
  int64_t rank() const { return present() ? a.dim(0) : 0; }
};

// One decoder linear with everything that may be added to it (spec §2.6).
struct LinearWeights {
  TensorView weight;  // [out, in], no bias
  LoraPair plora;     // Plora_A/B: image rows of the prefill only
  LoraPair web;       // lora_web_A/B: every row in web mode
  LoraPair sft, dpo;  // lora_sft_*, lora_dpo_*: every row in write mode (sft then dpo)
  int64_t out() const { return weight.dim(0); }
  int64_t in() const { return weight.dim(1); }
};

// model.layers.{i}.*
struct DecoderLayerWeights {
  std::vector<float> attention_norm;  // attention_norm.weight [D]
  std::vector<float> ffn_norm;        // ffn_norm.weight [D]
  LinearWeights wqkv;                 // attention.wqkv [(Hq+2·Hkv)·d, D], group-interleaved (§2.3)
  LinearWeights wo;                   // attention.wo [D, Hq·d]
  LinearWeights w1, w3;               // feed_forward.w1 (gate), w3 (up) [F, D]
  LinearWeights w2;                   // feed_forward.w2 (down) [D, F]
};

struct DecoderWeights {
  TensorView tok_embeddings;  // model.tok_embeddings.weight [V, D]
  std::vector<float> norm;    // model.norm.weight [D]
  TensorView output;          // output.weight [V, D]
  std::vector<DecoderLayerWeights> layers;
  bool has_plora = false, has_web = false, has_write = false;
};

// vit.vision_tower.vision_model.encoder.layers.{k}.*
struct VisionLayerWeights {
  TensorView q_w, k_w, v_w, out_w;  // self_attn.{q,k,v,out}_proj.weight [H, H]
  std::vector<float> q_b, k_b, v_b, out_b;
  std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;  // layer_norm1/2
  TensorView fc1_w, fc2_w;                        // mlp.fc1 [I, H], mlp.fc2 [H, I]
  std::vector<float> fc1_b, fc2_b;
};

struct VisionWeights {
  bool present = false;
  TensorView patch_embedding;                 // embeddings.patch_embedding.weight [H, C·P·P] (conv viewed as a matrix)
  std::vector<float> class_embedding;         // embeddings.class_embedding [H]
  std::vector<float> position_embedding;      // embeddings.position_embedding.weight [N+1, H]
  std::vector<float> pre_ln_w, pre_ln_b;      // pre_layrnorm (HF's spelling)
  std::vector<VisionLayerWeights> layers;
  TensorView proj0_w, proj2_w;                // vision_proj.0 [D, 4H], vision_proj.2 [D, D]
  std::vector<float> proj0_b, proj2_b;
  std::vector<float> glb_gn;                  // plora_glb_GN [1, 1, 4H]
  std::vector<float> sub_gn;                  // plora_sub_GN [1, 1, 1, 4H]
};

struct ModelWeights {
  DecoderWeights text;
  VisionWeights vision;
};

// Binds every tensor the config implies and validates names, shapes and dtypes before anything runs. Adapter
// groups (Plora, lora_web, lora_sft+lora_dpo) and the vision part are all-or-nothing: a missing group only makes
// its mode unavailable. A tensor nobody expects is an error (it usually means the config does not fit the file).
Result<ModelWeights> BindWeights(const ModelConfig& config, const std::map<std::string, TensorView>& tensors);

// Load-time preparation: rearranges weights into the layouts the kernels read fastest, in place (the bytes are the
// model's own or a private mapping's, made writable here; the file is never changed). Today: Q4_0 decoder linears
// become Q4_0x8. Values are unchanged. Must run before the weights are shared; `pool` (may be null) splits the work.
Status PrepareWeightsForKernels(ModelWeights* w, ThreadPool* pool);

// Names of the parameters of each component, for `ixc info` (same table as the binder).
struct ParameterCounts {
  int64_t decoder = 0, plora = 0, web = 0, sft = 0, dpo = 0, vision = 0, projector = 0;
};
ParameterCounts CountParameters(const ModelWeights& w);

}  // namespace ixc
