#include "model/synthetic.h"

#include <cstring>
#include <random>

#include "core/status.h"

namespace ixc {

namespace {

class Builder {
 public:
  Builder(SyntheticCheckpoint* ck, const SyntheticOptions& o) : ck_(ck), o_(o), rng_(o.seed) {}

  // center ± scale, stored in the requested dtype.
  void Add(const std::string& name, Shape shape, float center = 0.f, float scale = -1.f) {
    if (scale < 0) scale = o_.scale;
    std::uniform_real_distribution<float> d(center - scale, center + scale);
    const int64_t n = NumElements(shape);
    auto buf = std::make_unique<std::vector<uint8_t>>(n * DTypeSize(o_.dtype));
    for (int64_t i = 0; i < n; ++i) {
      const float v = d(rng_);
      if (o_.dtype == DType::kF32) {
        std::memcpy(buf->data() + 4 * i, &v, 4);
      } else {
        const uint16_t h = o_.dtype == DType::kBF16 ? F32ToBf16(v) : F32ToF16(v);
        std::memcpy(buf->data() + 2 * i, &h, 2);
      }
    }
    ck_->tensors[name] = TensorView{o_.dtype, std::move(shape), buf->data()};
    ck_->storage.push_back(std::move(buf));
  }

 private:
  SyntheticCheckpoint* ck_;
  const SyntheticOptions& o_;
  std::mt19937 rng_;
};

}  // namespace

std::unique_ptr<SyntheticCheckpoint> MakeSyntheticCheckpoint(const ModelConfig& mc, const SyntheticOptions& o) {
  auto ck = std::make_unique<SyntheticCheckpoint>();
  Builder b(ck.get(), o);
  const DecoderConfig& c = mc.text;
  const int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  b.Add("model.tok_embeddings.weight", {V, D}, 0.f, 1.0f);
  b.Add("model.norm.weight", {D}, 1.f, 0.2f);
  b.Add("output.weight", {V, D});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = StrFormat("model.layers.%lld.", (long long)i);
    b.Add(p + "attention_norm.weight", {D}, 1.f, 0.2f);
    b.Add(p + "ffn_norm.weight", {D}, 1.f, 0.2f);
    struct { const char* name; int64_t out, in; } lin[] = {{"attention.wqkv", c.qkv_dim(), D},
                                                           {"attention.wo", D, c.num_attention_heads * c.head_dim()},
                                                           {"feed_forward.w1", F, D},
                                                           {"feed_forward.w3", F, D},
                                                           {"feed_forward.w2", D, F}};
    for (const auto& l : lin) {
      const std::string base = p + l.name;
      b.Add(base + ".weight", {l.out, l.in});
      for (auto [kind, r] : {std::pair{"Plora", o.plora_rank}, {"lora_web", o.web_rank}, {"lora_sft", o.sft_rank},
                             {"lora_dpo", o.dpo_rank}}) {
        if (r <= 0) continue;
        b.Add(base + "." + kind + "_A.weight", {r, l.in});
        b.Add(base + "." + kind + "_B.weight", {l.out, r});
      }
    }
  }
  if (o.vision) {
    const VisionConfig& v = mc.vision;
    const std::string p = "vit.vision_tower.vision_model.";
    const int64_t H = v.hidden_size, I = v.intermediate_size, P = v.patch_size;
    b.Add(p + "embeddings.patch_embedding.weight", {H, v.num_channels, P, P});
    b.Add(p + "embeddings.class_embedding", {H}, 0.f, 0.5f);
    b.Add(p + "embeddings.position_embedding.weight", {v.num_patches() + 1, H}, 0.f, 0.5f);
    b.Add(p + "pre_layrnorm.weight", {H}, 1.f, 0.2f);
    b.Add(p + "pre_layrnorm.bias", {H});
    for (int64_t k = 0; k < v.num_hidden_layers; ++k) {
      const std::string q = p + StrFormat("encoder.layers.%lld.", (long long)k);
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        b.Add(q + "self_attn." + proj + ".weight", {H, H});
        b.Add(q + "self_attn." + proj + ".bias", {H});
      }
      b.Add(q + "layer_norm1.weight", {H}, 1.f, 0.2f);
      b.Add(q + "layer_norm1.bias", {H});
      b.Add(q + "layer_norm2.weight", {H}, 1.f, 0.2f);
      b.Add(q + "layer_norm2.bias", {H});
      b.Add(q + "mlp.fc1.weight", {I, H});
      b.Add(q + "mlp.fc1.bias", {I});
      b.Add(q + "mlp.fc2.weight", {H, I});
      b.Add(q + "mlp.fc2.bias", {H});
    }
    b.Add("vision_proj.0.weight", {D, v.merged_dim()});
    b.Add("vision_proj.0.bias", {D});
    b.Add("vision_proj.2.weight", {D, D});
    b.Add("vision_proj.2.bias", {D});
    b.Add("plora_glb_GN", {1, 1, v.merged_dim()}, 0.f, 0.5f);
    b.Add("plora_sub_GN", {1, 1, 1, v.merged_dim()}, 0.f, 0.5f);
  }
  return ck;
}

}  // namespace ixc
