#include "model/weight_types.h"

#include <regex>

namespace ixc {

namespace {

// Matrices read only through MatMul or row lookups (spec §1.3 names): every one of them may be block-quantised.
bool IsMultipliedMatrix(const std::string& name) {
  static const std::regex kMatrix(
      R"(model\.tok_embeddings\.weight|output\.weight|)"
      R"(model\.layers\.\d+\.(attention\.(wqkv|wo)|feed_forward\.w[123])\.(weight|(Plora|lora_web|lora_sft|lora_dpo)_[AB]\.weight)|)"
      R"(vit\.vision_tower\.vision_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight|)"
      R"(vision_proj\.[02]\.weight)");
  return std::regex_match(name, kMatrix);
}

}  // namespace

bool IsDecoderLinear(const std::string& name) {
  static const std::regex kLinear(R"(model\.layers\.\d+\.(attention\.(wqkv|wo)|feed_forward\.w[123])\.weight)");
  return std::regex_match(name, kLinear);
}

bool ParseWeightType(const std::string& name, WeightType* out) {
  static const struct { const char* name; WeightType t; } kTypes[] = {{"bf16", WeightType::kBF16},
                                                                     {"f16", WeightType::kF16},
                                                                     {"f32", WeightType::kF32},
                                                                     {"q8_0", WeightType::kQ8_0},
                                                                     {"q4_0", WeightType::kQ4_0}};
  for (const auto& t : kTypes) {
    if (name == t.name) {
      *out = t.t;
      return true;
    }
  }
  return false;
}

const char* WeightTypeName(WeightType t) {
  switch (t) {
    case WeightType::kBF16: return "bf16";
    case WeightType::kF16: return "f16";
    case WeightType::kF32: return "f32";
    case WeightType::kQ8_0: return "q8_0";
    case WeightType::kQ4_0: return "q4_0";
  }
  return "?";
}

DType StoredTypeFor(WeightType t, const std::string& name, const Shape& shape, DType source) {
  // AWQ layers held exactly in 4 bits (Q4G128x8, a layout of our own, not GGUF's) are requantised like dense ones.
  const bool awq = source == DType::kQ4G128x8;
  if ((IsBlockType(source) && !awq) || shape.size() < 2) return source;
  const bool whole_blocks = shape.back() % kQ8Block == 0;
  if ((t == WeightType::kQ8_0 || t == WeightType::kQ4_0) && whole_blocks && IsMultipliedMatrix(name)) {
    return t == WeightType::kQ4_0 && IsDecoderLinear(name) ? DType::kQ4_0 : DType::kQ8_0;
  }
  if (awq) return t == WeightType::kF32 ? DType::kF32 : DType::kF16;  // F16: the reference's dequantisation
  switch (t) {
    case WeightType::kF16: return DType::kF16;
    case WeightType::kF32: return source;
    // bf16, and what the quantised types keep in floating point: f32 matrices are halved; 16-bit ones (an f16
    // checkpoint, AWQ's dequantised layers) stay as they are, since f16 → bf16 would drop mantissa bits.
    default: return source == DType::kF32 ? DType::kBF16 : source;
  }
}

}  // namespace ixc
