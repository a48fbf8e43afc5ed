// Model hyper-parameters. Field names equal the Hugging Face config.json keys so the mapping is a one-line audit.
#pragma once

#include <cstdint>
#include <string>

namespace ixc {

// InternLM2 decoder (`config.json` top level).
struct DecoderConfig {
  int64_t vocab_size = 92544;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 14336;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 8;
  int64_t max_position_embeddings = 32768;
  double rms_norm_eps = 1e-5;
  double rope_theta = 1e6;
  std::string rope_scaling_type;  // "" (none), "dynamic" (NTK) or "linear"
  double rope_scaling_factor = 1.0;
  int64_t max_length = 16384;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim(); }
  // Width of the fused, group-interleaved wqkv output: per KV group, G query heads then one key and one value head.
  int64_t qkv_dim() const { return (num_attention_heads + 2 * num_key_value_heads) * head_dim(); }
};

// CLIP vision tower (`vision_config`, or the ViT-L/14-560 defaults of spec §1.4 when absent).
struct VisionConfig {
  int64_t image_size = 560;
  int64_t patch_size = 14;
  int64_t hidden_size = 1024;
  int64_t num_hidden_layers = 24;
  int64_t num_attention_heads = 16;
  int64_t intermediate_size = 4096;
  double layer_norm_eps = 1e-5;
  int64_t num_channels = 3;
  std::string hidden_act = "quick_gelu";

  int64_t grid() const { return image_size / patch_size; }           // patches per side (40)
  int64_t num_patches() const { return grid() * grid(); }            // 1600
  int64_t merged_grid() const { return grid() / 2; }                 // 2×2 merge: 20
  int64_t merged_dim() const { return 4 * hidden_size; }             // 4096
};

struct ModelConfig {
  DecoderConfig text;
  VisionConfig vision;
  bool vision_config_present = false;  // false: the real checkpoint's layout, defaults used
};

// RoPE base for a forward step whose total length (cached + new tokens) is `length` (spec Part A §1): dynamic NTK
// enlarges the base once the length passes max_position_embeddings. Lengths grow within a request, so computing
// it from the current length alone gives "the largest L so far".
double RopeBaseForLength(const DecoderConfig& c, int64_t length);

}  // namespace ixc
