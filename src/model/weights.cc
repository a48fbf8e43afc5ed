#include "model/weights.h"

#include <set>

#include "core/mapped_file.h"

namespace ixc {

namespace {

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// Looks tensors up by name, checks them, and remembers what was used so leftovers can be reported.
class Binder {
 public:
  explicit Binder(const std::map<std::string, TensorView>& t) : tensors_(t) {}

  bool Has(const std::string& name) const { return tensors_.count(name) != 0; }
  bool HasPrefix(const std::string& prefix) const {
    auto it = tensors_.lower_bound(prefix);
    return it != tensors_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
  }

  // A required tensor with an exact shape (-1 = any size). Every matrix is read through MatMul or a row
  // conversion, which take the block-quantised types too when rows are whole blocks.
  Status Get(const std::string& name, const Shape& want, TensorView* out) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return NotFound(StrFormat("missing tensor '%s'", name.c_str()));
    const TensorView& t = it->second;
    if (IsBlockType(t.dtype)) {
      if (t.shape.empty() || t.shape.back() % DTypeBlockValues(t.dtype) != 0) {
        return InvalidArgument(StrFormat("tensor '%s' is %s with shape %s; its rows must be whole blocks of %lld",
                                         name.c_str(), DTypeName(t.dtype), ShapeToString(t.shape).c_str(),
                                         (long long)DTypeBlockValues(t.dtype)));
      }
    } else if (!IsFloat(t.dtype)) {
      return InvalidArgument(StrFormat("tensor '%s' has dtype %s; expected F32, F16, BF16, Q8_0 or Q4_0", name.c_str(),
                                       DTypeName(t.dtype)));
    }
    bool ok = t.shape.size() == want.size();
    for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] < 0 || want[i] == t.shape[i];
    if (!ok) {
      return InvalidArgument(StrFormat("tensor '%s' has shape %s; the config implies %s", name.c_str(),
                                       ShapeToString(t.shape).c_str(), ShapeToString(want).c_str()));
    }
    used_.insert(name);
    *out = t;
    return Status::Ok();
  }

  Status GetF32(const std::string& name, const Shape& want, std::vector<float>* out) {
    TensorView t;
    IXC_RETURN_IF_ERROR(Get(name, want, &t));
    *out = ToF32(t);
    return Status::Ok();
  }

  // A LoRA pair "<base>.<kind>_A/_B.weight" for a linear [out, in]; the rank is read from A.
  Status GetLora(const std::string& base, const std::string& kind, int64_t out_dim, int64_t in_dim, LoraPair* p) {
    const std::string a = base + "." + kind + "_A.weight", b = base + "." + kind + "_B.weight";
    auto it = tensors_.find(a);
    if (it == tensors_.end()) return NotFound(StrFormat("missing tensor '%s'", a.c_str()));
    const int64_t rank = it->second.shape.empty() ? 0 : it->second.shape[0];
    if (rank <= 0) return InvalidArgument(StrFormat("tensor '%s' has shape %s; expected [rank, %lld]", a.c_str(),
                                                    ShapeToString(it->second.shape).c_str(), (long long)in_dim));
    IXC_RETURN_IF_ERROR(Get(a, {rank, in_dim}, &p->a));
    return Get(b, {out_dim, rank}, &p->b);
  }

  std::vector<std::string> Unused() const {
    std::vector<std::string> out;
    for (const auto& [name, t] : tensors_)
      if (!used_.count(name)) out.push_back(name);
    return out;
  }

 private:
  const std::map<std::string, TensorView>& tensors_;
  std::set<std::string> used_;
};

// Tensors that real checkpoints carry and the model never uses (spec §1.3).
bool IsIgnorable(const std::string& name) {
  static const char* kIgnored[] = {"vit.vision_tower.vision_model.post_layernorm.",
                                   "vit.vision_tower.vision_model.embeddings.position_ids"};
  for (const char* p : kIgnored)
    if (name.rfind(p, 0) == 0) return true;
  return name.find(".rotary_emb.inv_freq") != std::string::npos;
}

Status BindDecoder(const DecoderConfig& c, Binder& b, DecoderWeights* w) {
  const int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  if (c.num_attention_heads <= 0 || c.num_key_value_heads <= 0 || D % c.num_attention_heads != 0 ||
      c.num_attention_heads % c.num_key_value_heads != 0 || c.head_dim() % 2 != 0) {
    return InvalidArgument(StrFormat("config: hidden_size %lld, num_attention_heads %lld and num_key_value_heads %lld "
                                     "do not divide into an even head size and whole KV groups",
                                     (long long)D, (long long)c.num_attention_heads, (long long)c.num_key_value_heads));
  }
  IXC_RETURN_IF_ERROR(b.Get("model.tok_embeddings.weight", {V, D}, &w->tok_embeddings));
  IXC_RETURN_IF_ERROR(b.GetF32("model.norm.weight", {D}, &w->norm));
  IXC_RETURN_IF_ERROR(b.Get("output.weight", {V, D}, &w->output));

  const std::string l0 = "model.layers.0.attention.wqkv.";
  w->has_plora = b.Has(l0 + "Plora_A.weight");
  w->has_web = b.Has(l0 + "lora_web_A.weight");
  w->has_write = b.Has(l0 + "lora_sft_A.weight") || b.Has(l0 + "lora_dpo_A.weight");

  w->layers.resize(c.num_hidden_layers);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = StrFormat("model.layers.%lld.", (long long)i);
    DecoderLayerWeights& L = w->layers[i];
    IXC_RETURN_IF_ERROR(b.GetF32(p + "attention_norm.weight", {D}, &L.attention_norm));
    IXC_RETURN_IF_ERROR(b.GetF32(p + "ffn_norm.weight", {D}, &L.ffn_norm));
    struct { const char* name; LinearWeights* lw; int64_t out, in; } linears[] = {
        {"attention.wqkv", &L.wqkv, c.qkv_dim(), D}, {"attention.wo", &L.wo, D, c.num_attention_heads * c.head_dim()},
        {"feed_forward.w1", &L.w1, F, D},          {"feed_forward.w3", &L.w3, F, D},
        {"feed_forward.w2", &L.w2, D, F}};
    for (auto& lin : linears) {
      const std::string base = p + lin.name;
      IXC_RETURN_IF_ERROR(b.Get(base + ".weight", {lin.out, lin.in}, &lin.lw->weight));
      if (w->has_plora) IXC_RETURN_IF_ERROR(b.GetLora(base, "Plora", lin.out, lin.in, &lin.lw->plora));
      if (w->has_web) IXC_RETURN_IF_ERROR(b.GetLora(base, "lora_web", lin.out, lin.in, &lin.lw->web));
      if (w->has_write) {
        IXC_RETURN_IF_ERROR(b.GetLora(base, "lora_sft", lin.out, lin.in, &lin.lw->sft));
        IXC_RETURN_IF_ERROR(b.GetLora(base, "lora_dpo", lin.out, lin.in, &lin.lw->dpo));
      }
    }
  }
  return Status::Ok();
}

Status BindVision(const ModelConfig& mc, Binder& b, VisionWeights* w) {
  const VisionConfig& v = mc.vision;
  const std::string p = "vit.vision_tower.vision_model.";
  if (!b.HasPrefix(p) && !b.HasPrefix("vision_proj.")) return Status::Ok();  // a text-only checkpoint
  if (v.hidden_size % v.num_attention_heads != 0 || v.image_size % v.patch_size != 0 || v.grid() % 2 != 0) {
    return InvalidArgument("vision_config: heads must divide hidden_size and the patch grid must be even");
  }
  const int64_t H = v.hidden_size, I = v.intermediate_size, C = v.num_channels, P = v.patch_size;
  const int64_t N = v.num_patches() + 1, D = mc.text.hidden_size, M = v.merged_dim();
  TensorView conv;
  IXC_RETURN_IF_ERROR(b.Get(p + "embeddings.patch_embedding.weight", {H, C, P, P}, &conv));
  w->patch_embedding = conv;
  w->patch_embedding.shape = {H, C * P * P};
  IXC_RETURN_IF_ERROR(b.GetF32(p + "embeddings.class_embedding", {H}, &w->class_embedding));
  IXC_RETURN_IF_ERROR(b.GetF32(p + "embeddings.position_embedding.weight", {N, H}, &w->position_embedding));
  IXC_RETURN_IF_ERROR(b.GetF32(p + "pre_layrnorm.weight", {H}, &w->pre_ln_w));
  IXC_RETURN_IF_ERROR(b.GetF32(p + "pre_layrnorm.bias", {H}, &w->pre_ln_b));
  w->layers.resize(v.num_hidden_layers);
  for (int64_t k = 0; k < v.num_hidden_layers; ++k) {
    const std::string q = p + StrFormat("encoder.layers.%lld.", (long long)k);
    VisionLayerWeights& L = w->layers[k];
    IXC_RETURN_IF_ERROR(b.Get(q + "self_attn.q_proj.weight", {H, H}, &L.q_w));
    IXC_RETURN_IF_ERROR(b.Get(q + "self_attn.k_proj.weight", {H, H}, &L.k_w));
    IXC_RETURN_IF_ERROR(b.Get(q + "self_attn.v_proj.weight", {H, H}, &L.v_w));
    IXC_RETURN_IF_ERROR(b.Get(q + "self_attn.out_proj.weight", {H, H}, &L.out_w));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "self_attn.q_proj.bias", {H}, &L.q_b));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "self_attn.k_proj.bias", {H}, &L.k_b));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "self_attn.v_proj.bias", {H}, &L.v_b));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "self_attn.out_proj.bias", {H}, &L.out_b));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "layer_norm1.weight", {H}, &L.ln1_w));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "layer_norm1.bias", {H}, &L.ln1_b));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "layer_norm2.weight", {H}, &L.ln2_w));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "layer_norm2.bias", {H}, &L.ln2_b));
    IXC_RETURN_IF_ERROR(b.Get(q + "mlp.fc1.weight", {I, H}, &L.fc1_w));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "mlp.fc1.bias", {I}, &L.fc1_b));
    IXC_RETURN_IF_ERROR(b.Get(q + "mlp.fc2.weight", {H, I}, &L.fc2_w));
    IXC_RETURN_IF_ERROR(b.GetF32(q + "mlp.fc2.bias", {H}, &L.fc2_b));
  }
  IXC_RETURN_IF_ERROR(b.Get("vision_proj.0.weight", {D, M}, &w->proj0_w));
  IXC_RETURN_IF_ERROR(b.GetF32("vision_proj.0.bias", {D}, &w->proj0_b));
  IXC_RETURN_IF_ERROR(b.Get("vision_proj.2.weight", {D, D}, &w->proj2_w));
  IXC_RETURN_IF_ERROR(b.GetF32("vision_proj.2.bias", {D}, &w->proj2_b));
  IXC_RETURN_IF_ERROR(b.GetF32("plora_glb_GN", {1, 1, M}, &w->glb_gn));
  IXC_RETURN_IF_ERROR(b.GetF32("plora_sub_GN", {1, 1, 1, M}, &w->sub_gn));
  w->present = true;
  return Status::Ok();
}

// Q4_0 → Q4_0x8 for one matrix, groups of 8 rows split across the pool.
Status InterleaveMatrix(TensorView* t, ThreadPool* pool) {
  if (t->dtype != DType::kQ4_0 || t->shape.size() != 2 || t->dim(0) % 8 != 0) return Status::Ok();
  IXC_RETURN_IF_ERROR(MakePagesWritable(t->data, t->nbytes()));
  const int64_t groups = t->dim(0) / 8, cols = t->dim(1);
  auto* base = static_cast<uint8_t*>(const_cast<void*>(t->data));
  auto run = [&](int64_t g0, int64_t g1, int) {
    InterleaveQ4_0x8(base + StorageBytes(DType::kQ4_0, g0 * 8 * cols), (g1 - g0) * 8, cols);
  };
  if (pool) {
    pool->ParallelFor(groups, run);
  } else {
    run(0, groups, 0);
  }
  t->dtype = DType::kQ4_0x8;
  return Status::Ok();
}

int64_t LoraParams(const LoraPair& p) { return p.present() ? p.a.numel() + p.b.numel() : 0; }

}  // namespace

Result<ModelWeights> BindWeights(const ModelConfig& config, const std::map<std::string, TensorView>& tensors) {
  Binder b(tensors);
  ModelWeights w;
  IXC_RETURN_IF_ERROR(BindDecoder(config.text, b, &w.text));
  IXC_RETURN_IF_ERROR(BindVision(config, b, &w.vision));
  if (w.vision.present && !w.text.has_plora) {
    return InvalidArgument("the checkpoint has a vision tower but no Partial-LoRA (Plora_A/B) tensors in the decoder");
  }
  std::vector<std::string> unexpected;
  for (const auto& name : b.Unused())
    if (!IsIgnorable(name)) unexpected.push_back(name);
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 5; ++i) list += (i ? ", '" : "'") + unexpected[i] + "'";
    if (unexpected.size() > 5) list += StrFormat(" and %zu more", unexpected.size() - 5);
    return InvalidArgument(StrFormat("%zu tensor%s in the checkpoint do%s not fit the config: %s", unexpected.size(),
                                     unexpected.size() == 1 ? "" : "s", unexpected.size() == 1 ? "es" : "", list.c_str()));
  }
  return w;
}

Status PrepareWeightsForKernels(ModelWeights* w, ThreadPool* pool) {
  for (DecoderLayerWeights& L : w->text.layers) {
    for (LinearWeights* lw : {&L.wqkv, &L.wo, &L.w1, &L.w3, &L.w2}) IXC_RETURN_IF_ERROR(InterleaveMatrix(&lw->weight, pool));
  }
  return Status::Ok();
}

ParameterCounts CountParameters(const ModelWeights& w) {
  ParameterCounts c;
  c.decoder = w.text.tok_embeddings.numel() + w.text.output.numel() + static_cast<int64_t>(w.text.norm.size());
  for (const auto& L : w.text.layers) {
    c.decoder += static_cast<int64_t>(L.attention_norm.size() + L.ffn_norm.size());
    for (const LinearWeights* lw : {&L.wqkv, &L.wo, &L.w1, &L.w3, &L.w2}) {
      c.decoder += lw->weight.numel();
      c.plora += LoraParams(lw->plora);
      c.web += LoraParams(lw->web);
      c.sft += LoraParams(lw->sft);
      c.dpo += LoraParams(lw->dpo);
    }
  }
  const VisionWeights& v = w.vision;
  if (v.present) {
    c.vision = v.patch_embedding.numel() + static_cast<int64_t>(v.class_embedding.size() + v.position_embedding.size() +
                                                                v.pre_ln_w.size() + v.pre_ln_b.size());
    for (const auto& L : v.layers) {
      c.vision += L.q_w.numel() + L.k_w.numel() + L.v_w.numel() + L.out_w.numel() + L.fc1_w.numel() + L.fc2_w.numel();
      c.vision += static_cast<int64_t>(L.q_b.size() + L.k_b.size() + L.v_b.size() + L.out_b.size() + L.fc1_b.size() +
                                       L.fc2_b.size() + L.ln1_w.size() + L.ln1_b.size() + L.ln2_w.size() + L.ln2_b.size());
    }
    c.projector = v.proj0_w.numel() + v.proj2_w.numel() + static_cast<int64_t>(v.proj0_b.size() + v.proj2_b.size() +
                                                                               v.glb_gn.size() + v.sub_gn.size());
  }
  return c;
}

}  // namespace ixc
