// Model::Info: what a loaded folder holds (format, dtypes, parameters, modes) and what a request costs in memory.
#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "core/status.h"
#include "engine/memory_estimate.h"
#include "engine/model_impl.h"
#include "ixc/ixc.h"

namespace ixc {

namespace {

std::vector<DTypeBytes> ToList(const std::map<std::string, int64_t>& m) {
  std::vector<DTypeBytes> out;
  for (const auto& [dtype, bytes] : m) out.push_back({dtype, bytes});
  std::sort(out.begin(), out.end(), [](const DTypeBytes& a, const DTypeBytes& b) { return a.bytes > b.bytes; });
  return out;
}

// Walks the bound weights, sorting every byte into its component and into mapped (a view of a mapped file) or
// owned (AWQ dequantised tensors, f32 copies of small vectors, matrices rearranged at load: their pages became the
// process's own).
class WeightWalker {
 public:
  explicit WeightWalker(const ModelImpl& m) {
    for (const auto& src : m.dequantised)
      for (const auto& [name, t] : src->tensors()) owned_data_.insert(t.data);
  }

  void View(const TensorView& t, WeightPart* part) {
    if (!t.valid()) return;
    const int64_t n = static_cast<int64_t>(t.nbytes());
    const bool prepared = t.dtype == DType::kQ4_0x8;  // Q4_0 interleaved in place at load (AWQ's 4-bit are owned)
    const bool owned = prepared || owned_data_.count(t.data) != 0;
    (owned ? part->owned : part->mapped) += n;
    (owned ? owned_ : mapped_)[prepared ? "Q4_0" : DTypeName(t.dtype)] += n;
  }
  void Vec(const std::vector<float>& v, WeightPart* part) {
    const int64_t n = static_cast<int64_t>(v.size() * sizeof(float));
    part->owned += n;
    if (n) owned_["F32"] += n;
  }
  void Lora(const LoraPair& p, WeightPart* part) {
    View(p.a, part);
    View(p.b, part);
  }

  void Walk(const ModelWeights& mw) {
    const DecoderWeights& d = mw.text;
    View(d.tok_embeddings, &w_.embedding);
    if (d.tok_embeddings.valid()) w_.embedding_row_bytes = StorageBytes(d.tok_embeddings.dtype, d.tok_embeddings.dim(1));
    Vec(d.norm, &w_.decoder);
    View(d.output, &w_.output);
    for (const DecoderLayerWeights& L : d.layers) {
      Vec(L.attention_norm, &w_.decoder);
      Vec(L.ffn_norm, &w_.decoder);
      for (const LinearWeights* lw : {&L.wqkv, &L.wo, &L.w1, &L.w3, &L.w2}) {
        View(lw->weight, &w_.decoder);
        Lora(lw->plora, &w_.plora);
        Lora(lw->web, &w_.web);
        Lora(lw->sft, &w_.sft);
        Lora(lw->dpo, &w_.dpo);
      }
    }
    const VisionWeights& v = mw.vision;
    if (!v.present) return;
    View(v.patch_embedding, &w_.vision);
    for (const auto* vec : {&v.class_embedding, &v.position_embedding, &v.pre_ln_w, &v.pre_ln_b}) Vec(*vec, &w_.vision);
    for (const VisionLayerWeights& L : v.layers) {
      for (const TensorView* t : {&L.q_w, &L.k_w, &L.v_w, &L.out_w, &L.fc1_w, &L.fc2_w}) View(*t, &w_.vision);
      for (const auto* vec : {&L.q_b, &L.k_b, &L.v_b, &L.out_b, &L.ln1_w, &L.ln1_b, &L.ln2_w, &L.ln2_b, &L.fc1_b, &L.fc2_b}) {
        Vec(*vec, &w_.vision);
      }
    }
    View(v.proj0_w, &w_.projector);
    View(v.proj2_w, &w_.projector);
    for (const auto* vec : {&v.proj0_b, &v.proj2_b, &v.glb_gn, &v.sub_gn}) Vec(*vec, &w_.projector);
  }

  WeightBytes w_;
  std::map<std::string, int64_t> mapped_, owned_;

 private:
  std::set<const void*> owned_data_;
};

LoraRanks RanksOf(const DecoderWeights& d) {
  LoraRanks r{0, 0, 0, 0};
  if (d.layers.empty()) return r;
  const LinearWeights& l = d.layers[0].wqkv;
  r.plora = l.plora.rank();
  r.web = l.web.rank();
  r.sft = l.sft.rank();
  r.dpo = l.dpo.rank();
  return r;
}

}  // namespace

ModelInfo Model::Info(const MemoryQuery& query) const {
  const ModelImpl& m = *impl_;
  const DecoderConfig& c = m.config.text;
  const VisionConfig& vc = m.config.vision;
  ModelInfo info;
  info.model_dir = m.source.empty() ? m.model_dir : m.source;
  info.format = m.checkpoint->format();
  // Checkpoint::format() is "<container>" or "<container> (<n> shards)".
  info.container = info.format.substr(0, info.format.find(' '));
  if (auto p = info.format.find('('); p != std::string::npos) info.shards = std::max(1, std::atoi(info.format.c_str() + p + 1));
  info.awq = m.awq.layers > 0;
  if (info.awq) {
    info.awq_bits = m.quantization.present ? m.quantization.bits : 4;
    info.awq_group_size = m.awq.group_size;
    info.awq_layers = m.awq.layers;
    info.awq_four_bit_layers = m.awq.four_bit;
  }
  std::map<std::string, int64_t> stored;
  for (const auto& [name, t] : m.checkpoint->tensors()) stored[DTypeName(t.dtype)] += static_cast<int64_t>(t.nbytes());
  info.stored = ToList(stored);

  WeightWalker walker(m);
  walker.Walk(m.weights);
  info.loaded_mapped = ToList(walker.mapped_);
  info.loaded_owned = ToList(walker.owned_);

  const ParameterCounts pc = CountParameters(m.weights);
  info.parameters = {pc.decoder, pc.plora, pc.web, pc.sft, pc.dpo, pc.vision, pc.projector};
  for (TaskMode mode : {TaskMode::kBase, TaskMode::kWeb, TaskMode::kWrite})
    if (HasMode(mode)) info.modes.push_back(TaskModeName(mode));
  info.vision = HasVision();
  info.layers = c.num_hidden_layers;
  info.hidden = c.hidden_size;
  info.intermediate = c.intermediate_size;
  info.heads = c.num_attention_heads;
  info.kv_heads = c.num_key_value_heads;
  info.vocab = c.vocab_size;
  info.max_position = c.max_position_embeddings;
  if (info.vision) {
    info.vision_layers = vc.num_hidden_layers;
    info.vision_hidden = vc.hidden_size;
    info.image_size = vc.image_size;
  }

  // Resolve the query's defaults as a Session and the prompt builder would.
  MemoryQuery q = query;
  if (!info.vision) q.images = 0;
  q.images = std::max(0, q.images);
  if (q.threads <= 0) q.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (q.images > 1) q.hd_num = 6;  // the reference forces 6 for several images (prompt_builder.cc)
  else if (q.hd_num <= 0) q.hd_num = 24;
  q.text_tokens = std::max<int64_t>(1, q.text_tokens);
  q.context_tokens = std::max<int64_t>(0, q.context_tokens);

  RequestShape shape;
  shape.threads = q.threads;
  shape.text_tokens = q.text_tokens;
  ImageShape image = LargestImage(q.hd_num);
  if (q.grid_rows > 0 && q.grid_cols > 0) {
    image.rows = q.grid_rows;
    image.cols = q.grid_cols;
  } else {
    q.grid_rows = q.grid_cols = 0;
  }
  info.query = q;
  shape.images.assign(q.images, image);
  shape.context_tokens = q.context_tokens;
  shape.mode = q.mode;
  shape.kv_dtype = KvDType(q.precision, q.kv_type);
  info.memory = EstimateMemory(m.config, walker.w_, RanksOf(m.weights.text), shape);
  return info;
}

}  // namespace ixc
