#include "engine/model_impl.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/gguf_model.h"
#include "io/awq.h"

namespace ixc {

using json = nlohmann::json;

namespace {

// Reads an optional key with a type check: absent keeps the default, a wrong type is an error.
template <typename T>
Status Read(const json& j, const char* key, const std::string& where, T* out) {
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  const json& v = j[key];
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return InvalidArgument(StrFormat("%s: \"%s\" must be a string", where.c_str(), key));
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) return InvalidArgument(StrFormat("%s: \"%s\" must be an integer", where.c_str(), key));
    // Range-checked before converting: 2^63 read into an int64 used to be reported as a negative number.
    const bool fits = v.is_number_unsigned()
                          ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                          : v.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                                (std::is_unsigned_v<T> || v.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max()));
    if (!fits) return InvalidArgument(StrFormat("%s: \"%s\" = %s is out of range", where.c_str(), key, v.dump().c_str()));
  } else {
    if (!v.is_number()) return InvalidArgument(StrFormat("%s: \"%s\" must be a number", where.c_str(), key));
  }
  *out = v.get<T>();
  return Status::Ok();
}

Status Positive(int64_t v, const char* key, const std::string& where, int64_t max = int64_t{1} << 24) {
  if (v <= 0 || v > max) return InvalidArgument(StrFormat("%s: \"%s\" = %lld is out of range", where.c_str(), key, (long long)v));
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> ParseModelConfig(const std::string& text, const std::string& name) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(StrFormat("%s is not a valid JSON object", name.c_str()));
  ModelConfig mc;
  DecoderConfig& c = mc.text;
  IXC_RETURN_IF_ERROR(Read(j, "vocab_size", name, &c.vocab_size));
  IXC_RETURN_IF_ERROR(Read(j, "hidden_size", name, &c.hidden_size));
  IXC_RETURN_IF_ERROR(Read(j, "intermediate_size", name, &c.intermediate_size));
  IXC_RETURN_IF_ERROR(Read(j, "num_hidden_layers", name, &c.num_hidden_layers));
  IXC_RETURN_IF_ERROR(Read(j, "num_attention_heads", name, &c.num_attention_heads));
  c.num_key_value_heads = c.num_attention_heads;  // HF default when the key is absent
  IXC_RETURN_IF_ERROR(Read(j, "num_key_value_heads", name, &c.num_key_value_heads));
  IXC_RETURN_IF_ERROR(Read(j, "max_position_embeddings", name, &c.max_position_embeddings));
  IXC_RETURN_IF_ERROR(Read(j, "rms_norm_eps", name, &c.rms_norm_eps));
  IXC_RETURN_IF_ERROR(Read(j, "rope_theta", name, &c.rope_theta));
  IXC_RETURN_IF_ERROR(Read(j, "max_length", name, &c.max_length));
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) return InvalidArgument(StrFormat("%s: \"rope_scaling\" must be an object or null", name.c_str()));
    IXC_RETURN_IF_ERROR(Read(rs, "type", name + " rope_scaling", &c.rope_scaling_type));
    IXC_RETURN_IF_ERROR(Read(rs, "factor", name + " rope_scaling", &c.rope_scaling_factor));
    if (c.rope_scaling_type != "dynamic" && c.rope_scaling_type != "linear") {
      return Unimplemented(StrFormat("%s: rope_scaling type '%s' is not supported (dynamic or linear)", name.c_str(),
                                     c.rope_scaling_type.c_str()));
    }
    if (!(c.rope_scaling_factor >= 1.0)) return InvalidArgument(StrFormat("%s: rope_scaling factor must be >= 1", name.c_str()));
  }
  std::string act = "silu";
  IXC_RETURN_IF_ERROR(Read(j, "hidden_act", name, &act));
  if (act != "silu") return Unimplemented(StrFormat("%s: hidden_act '%s' is not supported (silu)", name.c_str(), act.c_str()));
  bool bias = false;
  if (j.contains("bias") && j["bias"].is_boolean()) bias = j["bias"].get<bool>();
  if (bias) return Unimplemented(StrFormat("%s: decoder biases (\"bias\": true) are not supported", name.c_str()));
  for (auto [v, k] : {std::pair{c.vocab_size, "vocab_size"}, {c.hidden_size, "hidden_size"},
                      {c.intermediate_size, "intermediate_size"}, {c.num_hidden_layers, "num_hidden_layers"},
                      {c.num_attention_heads, "num_attention_heads"}, {c.num_key_value_heads, "num_key_value_heads"},
                      {c.max_position_embeddings, "max_position_embeddings"}, {c.max_length, "max_length"}}) {
    IXC_RETURN_IF_ERROR(Positive(v, k, name));
  }
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps) || !(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) {
    return InvalidArgument(StrFormat("%s: rms_norm_eps and rope_theta must be positive finite numbers", name.c_str()));
  }

  if (j.contains("vision_config") && !j["vision_config"].is_null()) {
    const json& v = j["vision_config"];
    const std::string where = name + " vision_config";
    if (!v.is_object()) return InvalidArgument(StrFormat("%s: \"vision_config\" must be an object", name.c_str()));
    VisionConfig& vc = mc.vision;
    IXC_RETURN_IF_ERROR(Read(v, "image_size", where, &vc.image_size));
    IXC_RETURN_IF_ERROR(Read(v, "patch_size", where, &vc.patch_size));
    IXC_RETURN_IF_ERROR(Read(v, "hidden_size", where, &vc.hidden_size));
    IXC_RETURN_IF_ERROR(Read(v, "num_hidden_layers", where, &vc.num_hidden_layers));
    IXC_RETURN_IF_ERROR(Read(v, "num_attention_heads", where, &vc.num_attention_heads));
    IXC_RETURN_IF_ERROR(Read(v, "intermediate_size", where, &vc.intermediate_size));
    IXC_RETURN_IF_ERROR(Read(v, "layer_norm_eps", where, &vc.layer_norm_eps));
    IXC_RETURN_IF_ERROR(Read(v, "num_channels", where, &vc.num_channels));
    IXC_RETURN_IF_ERROR(Read(v, "hidden_act", where, &vc.hidden_act));
    for (auto [val, k] : {std::pair{vc.image_size, "image_size"}, {vc.patch_size, "patch_size"},
                          {vc.hidden_size, "hidden_size"}, {vc.num_hidden_layers, "num_hidden_layers"},
                          {vc.num_attention_heads, "num_attention_heads"}, {vc.intermediate_size, "intermediate_size"},
                          {vc.num_channels, "num_channels"}}) {
      IXC_RETURN_IF_ERROR(Positive(val, k, where, 1 << 16));
    }
    // A zero or negative epsilon makes LayerNorm divide by zero or take the root of a negative variance: NaN
    // image embeddings and nonsense answers.
    if (!(vc.layer_norm_eps > 0) || !std::isfinite(vc.layer_norm_eps)) {
      return InvalidArgument(StrFormat("%s: layer_norm_eps must be a positive finite number", where.c_str()));
    }
    if (vc.hidden_act != "quick_gelu") {
      return Unimplemented(StrFormat("%s: hidden_act '%s' is not supported (quick_gelu)", where.c_str(), vc.hidden_act.c_str()));
    }
    mc.vision_config_present = true;
  }
  return mc;
}

std::string ModelConfigJson(const ModelConfig& mc) {
  const DecoderConfig& c = mc.text;
  const VisionConfig& v = mc.vision;
  json j = {
      {"architectures", {"InternLMXComposer2ForCausalLM"}},
      {"model_type", "internlmxcomposer2"},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"hidden_act", "silu"},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"bias", false},
      {"max_length", c.max_length},
      {"vision_config",
       {{"image_size", v.image_size}, {"patch_size", v.patch_size}, {"hidden_size", v.hidden_size},
        {"num_hidden_layers", v.num_hidden_layers}, {"num_attention_heads", v.num_attention_heads},
        {"intermediate_size", v.intermediate_size}, {"hidden_act", v.hidden_act},
        {"layer_norm_eps", v.layer_norm_eps}, {"num_channels", v.num_channels}}},
  };
  j["rope_scaling"] = nullptr;
  if (!c.rope_scaling_type.empty()) j["rope_scaling"] = {{"type", c.rope_scaling_type}, {"factor", c.rope_scaling_factor}};
  return j.dump(2);
}

Result<QuantizationConfig> ParseQuantizationConfig(const std::string& text, const std::string& name) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(StrFormat("%s is not a valid JSON object", name.c_str()));
  QuantizationConfig q;
  if (!j.contains("quantization_config") || j["quantization_config"].is_null()) return q;
  const json& v = j["quantization_config"];
  const std::string where = name + " quantization_config";
  if (!v.is_object()) return InvalidArgument(StrFormat("%s: \"quantization_config\" must be an object", name.c_str()));
  q.present = true;
  IXC_RETURN_IF_ERROR(Read(v, "quant_method", where, &q.method));
  IXC_RETURN_IF_ERROR(Read(v, "bits", where, &q.bits));
  IXC_RETURN_IF_ERROR(Read(v, "w_bit", where, &q.bits));  // AutoAWQ's spelling
  IXC_RETURN_IF_ERROR(Read(v, "group_size", where, &q.group_size));
  IXC_RETURN_IF_ERROR(Read(v, "q_group_size", where, &q.group_size));
  IXC_RETURN_IF_ERROR(Read(v, "version", where, &q.version));
  bool zero_point = true;
  if (v.contains("zero_point") && v["zero_point"].is_boolean()) zero_point = v["zero_point"].get<bool>();
  auto lower = [](std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  };
  q.method = lower(q.method);
  q.version = lower(q.version);
  if (q.method.empty()) q.method = "awq";  // AutoAWQ's quant_config has no method key
  if (q.method != "awq") {
    return Unimplemented(StrFormat("%s: quant_method '%s' is not supported (4-bit AWQ only)", where.c_str(), q.method.c_str()));
  }
  if (q.bits != 0 && q.bits != 4) return Unimplemented(StrFormat("%s: %d-bit AWQ is not supported (4-bit only)", where.c_str(), q.bits));
  if (!q.version.empty() && q.version != "gemm") {
    return Unimplemented(StrFormat("%s: AWQ version '%s' is not supported (the \"gemm\" packing of lmdeploy and AutoAWQ)",
                                   where.c_str(), q.version.c_str()));
  }
  if (!zero_point) return Unimplemented(StrFormat("%s: AWQ without zero points is not supported", where.c_str()));
  if (q.group_size < 0) return InvalidArgument(StrFormat("%s: group_size must be positive", where.c_str()));
  if (q.bits == 0) q.bits = 4;
  return q;
}

namespace {

constexpr const char* kAwqParts[] = {".qweight", ".qzeros", ".scales"};

// Layer names X of every X.qweight / X.qzeros / X.scales in the table (a partial triple is reported later).
std::set<std::string> AwqLayerNames(const std::map<std::string, TensorView>& tensors) {
  std::set<std::string> layers;
  for (const auto& [name, view] : tensors) {
    for (const char* part : kAwqParts) {
      const size_t n = std::strlen(part);
      if (name.size() > n && name.compare(name.size() - n, n, part) == 0) layers.insert(name.substr(0, name.size() - n));
    }
  }
  return layers;
}

// Lets go of a stored tensor's mapped pages that nothing reads any more (or not soon): they leave the resident set
// and stay in the page cache (ReleaseMappedPages).
void ReleasePages(const TensorView& t) { ReleaseMappedPages(t.data, t.nbytes()); }

// Dequantises every AWQ layer of `tensors` to dense F16 (spec §1.5) and returns the table the binder should see:
// each triple replaced by its X.weight, every other tensor as stored (16-bit stays 16-bit; the Plora weights are
// used exactly as stored). Layer by layer, so that progress can be reported and each layer's 4-bit pages released.
//
// Why dequantise at load: there is no 4-bit matmul kernel yet, and the dense F16 weights go through the same
// kernels, numerics and tests as any 16-bit checkpoint. The cost is memory: 2 bytes per weight instead of about
// 0.52 (4 bits + an f16 scale and a 4-bit zero per 128), i.e. the decoder linears of the 7B model take 14.0 GB
// instead of 3.6 GB.
Status DequantizeAwqLayers(const std::map<std::string, TensorView>& tensors, const QuantizationConfig& q,
                           const LoadProgress& progress, bool four_bit, ModelImpl* m,
                           std::map<std::string, TensorView>* out) {
  const std::set<std::string> layers = AwqLayerNames(tensors);
  const std::string stage = "dequantising AWQ weights";
  if (progress) progress(stage, 0.0);
  ThreadPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  std::set<std::string> consumed;
  size_t done = 0;
  for (const std::string& x : layers) {
    // The triple (and a dense X.weight beside it, which DequantizeAwq rejects) as a table of its own.
    std::map<std::string, TensorView> one;
    for (const char* part : kAwqParts) {
      auto it = tensors.find(x + part);
      if (it != tensors.end()) one.insert(*it);
    }
    if (auto it = tensors.find(x + ".weight"); it != tensors.end()) one.insert(*it);
    IXC_ASSIGN_OR_RETURN(std::unique_ptr<TensorSource> src, DequantizeAwq(one, &pool, four_bit));
    const TensorView& dense = src->tensors().at(x + ".weight");
    const int64_t groups = one.at(x + ".scales").dim(0);
    const int group = static_cast<int>(dense.dim(1) / groups);
    if (q.present && q.group_size > 0 && group != q.group_size) {
      return DataLoss(StrFormat("AWQ layer '%s' has groups of %d input rows, but quantization_config says %d", x.c_str(),
                                group, q.group_size));
    }
    if (m->awq.group_size == 0) m->awq.group_size = group;
    m->awq.dense_bytes += static_cast<int64_t>(dense.nbytes());
    if (dense.dtype == DType::kQ4G128x8) ++m->awq.four_bit;
    for (const char* part : kAwqParts) {
      ReleasePages(one.at(x + part));
      consumed.insert(x + part);
    }
    m->dequantised.push_back(std::move(src));
    ++m->awq.layers;
    if (progress) progress(stage, static_cast<double>(++done) / static_cast<double>(layers.size()));
  }
  for (const auto& [name, view] : tensors)
    if (!consumed.count(name)) out->emplace(name, view);
  for (const auto& src : m->dequantised) out->insert(src->tensors().begin(), src->tensors().end());
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ModelImpl>> LoadModelImpl(const std::string& dir) {
  LoadOptions o;
  o.model_dir = dir;
  return LoadModelImpl(o);
}

Result<std::unique_ptr<GgufFile>> OpenModelGguf(const std::string& path) {
  IXC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, GgufFile::Open(path));
  auto arch = f->GetString("general.architecture");
  if (!arch.ok() || *arch != kGgufArchitecture) {
    return InvalidArgument(StrFormat("%s is a GGUF file of architecture '%s', not an IXC-2.5 model written by ixc "
                                     "convert (%s)", path.c_str(), arch.ok() ? arch->c_str() : "?", kGgufArchitecture));
  }
  IXC_ASSIGN_OR_RETURN(int64_t version, f->GetInt(kGgufKeyFormat));
  if (version != 1) return Unimplemented(StrFormat("%s: ixc GGUF format version %lld (this ixc reads 1)", path.c_str(), (long long)version));
  IXC_RETURN_IF_ERROR(f->GetString(kGgufKeyConfig).status());
  IXC_RETURN_IF_ERROR(f->GetBytes(kGgufKeyTokenizer).status());
  return f;
}

Result<std::unique_ptr<ModelImpl>> LoadModelImpl(const LoadOptions& options, bool stored_layout,
                                                 bool stored_awq_four_bit) {
  namespace fs = std::filesystem;
  const std::string& dir = options.model_dir;
  const LoadProgress& progress = options.progress;
  std::error_code ec;
  // A single file is a GGUF model; otherwise a Hugging Face folder.
  const bool gguf = fs::is_regular_file(dir, ec);
  if (!gguf && !fs::is_directory(dir, ec)) return NotFound(StrFormat("model folder or file '%s' does not exist", dir.c_str()));
  auto m = std::make_unique<ModelImpl>();
  // Beside-the-model lookups (the video label font) use the folder a GGUF file sits in.
  m->source = dir;
  m->model_dir = gguf ? fs::path(dir).parent_path().string() : dir;
  if (m->model_dir.empty()) m->model_dir = ".";
  std::string tokenizer_bytes;
  if (progress) progress("opening checkpoint", 0.0);
  if (gguf) {
    IXC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, OpenModelGguf(dir));
    const std::string cfg_name = dir + " (" + kGgufKeyConfig + ")";
    IXC_ASSIGN_OR_RETURN(std::string cfg_text, f->GetString(kGgufKeyConfig));
    IXC_ASSIGN_OR_RETURN(m->config, ParseModelConfig(cfg_text, cfg_name));
    IXC_ASSIGN_OR_RETURN(m->quantization, ParseQuantizationConfig(cfg_text, cfg_name));
    IXC_ASSIGN_OR_RETURN(std::vector<uint8_t> tok, f->GetBytes(kGgufKeyTokenizer));
    tokenizer_bytes.assign(tok.begin(), tok.end());
    std::vector<std::unique_ptr<TensorSource>> sources;
    sources.push_back(std::make_unique<GgufSource>(std::move(f)));
    IXC_ASSIGN_OR_RETURN(m->checkpoint, Checkpoint::FromSources(std::move(sources), "gguf"));
  } else {
    const std::string cfg_path = (fs::path(dir) / "config.json").string();
    IXC_ASSIGN_OR_RETURN(std::string cfg_text, ReadFileToString(cfg_path, 16u << 20));
    IXC_ASSIGN_OR_RETURN(m->config, ParseModelConfig(cfg_text, cfg_path));
    IXC_ASSIGN_OR_RETURN(m->quantization, ParseQuantizationConfig(cfg_text, cfg_path));
    IXC_ASSIGN_OR_RETURN(m->checkpoint, Checkpoint::Open(dir));
  }
  if (progress) progress("opening checkpoint", 1.0);
  if (options.check_weights) {
    const std::string stage = "checking weights";
    if (progress) progress(stage, 0.0);
    // The scan lets go of each tensor's mapped pages as it passes (they stay in the page cache): the resident set is
    // then what requests read, as without the scan. Task adapters, the vision tower and Partial LoRA are not
    // resident until a request needs them, and the peak RSS is what `ixc info` models.
    Status s = CheckTensorsFinite(
        m->checkpoint->tensors(), SharedThreadPool(0).get(), [&](double f) { if (progress) progress(stage, f); },
        [](const std::string&, const TensorView& t) { ReleasePages(t); });
    if (!s.ok()) return s.WithContext(StrFormat("checkpoint in %s", dir.c_str()));
    if (progress) progress(stage, 1.0);
  }

  const std::map<std::string, TensorView>* tensors = &m->checkpoint->tensors();
  std::map<std::string, TensorView> with_dense;
  if (!AwqLayerNames(*tensors).empty()) {
    Status s = DequantizeAwqLayers(*tensors, m->quantization, progress, !stored_layout || stored_awq_four_bit,
                                   m.get(), &with_dense);
    if (!s.ok()) return s.WithContext(StrFormat("checkpoint in %s", dir.c_str()));
    tensors = &with_dense;
  }

  if (progress) progress("binding weights", 0.0);
  auto weights = BindWeights(m->config, *tensors);
  if (!weights.ok()) return weights.status().WithContext(StrFormat("checkpoint in %s", dir.c_str()));
  m->weights = std::move(weights).value();
  if (!stored_layout) IXC_RETURN_IF_ERROR(PrepareWeightsForKernels(&m->weights, SharedThreadPool(0).get()));
  if (progress) progress("binding weights", 1.0);

  if (progress) progress("loading tokenizer", 0.0);
  if (gguf) {
    IXC_ASSIGN_OR_RETURN(m->tokenizer, Tokenizer::FromBytes(tokenizer_bytes, dir + " (" + kGgufKeyTokenizer + ")"));
  } else {
    IXC_ASSIGN_OR_RETURN(m->tokenizer, Tokenizer::Load((fs::path(dir) / "tokenizer.model").string()));
  }
  if (progress) progress("loading tokenizer", 1.0);
  if (m->tokenizer->vocab_size() > m->config.text.vocab_size) {
    return InvalidArgument(StrFormat("tokenizer.model has %d pieces but the model's vocab_size is %lld",
                                     m->tokenizer->vocab_size(), (long long)m->config.text.vocab_size));
  }
  return m;
}

Result<std::unique_ptr<ModelImpl>> MakeSyntheticModelImpl(const ModelConfig& config, const SyntheticOptions& options,
                                                          ThreadPool* pool) {
  auto m = std::make_unique<ModelImpl>();
  m->config = config;
  m->source = "synthetic";
  m->synthetic = MakeSyntheticCheckpoint(config, options, pool);
  auto weights = BindWeights(m->config, m->synthetic->tensors);
  if (!weights.ok()) return weights.status().WithContext("synthetic checkpoint");
  m->weights = std::move(weights).value();
  IXC_RETURN_IF_ERROR(PrepareWeightsForKernels(&m->weights, pool));
  return m;
}

Status CheckModeAvailable(const ModelImpl& m, TaskMode mode) {
  const DecoderWeights& w = m.weights.text;
  if (mode == TaskMode::kWeb && !w.has_web) {
    return FailedPrecondition("web mode needs the lora_web_A/B adapter tensors, which this checkpoint does not have");
  }
  if (mode == TaskMode::kWrite && !w.has_write) {
    return FailedPrecondition("write mode needs the lora_sft/lora_dpo adapter tensors, which this checkpoint does not have");
  }
  return Status::Ok();
}

}  // namespace ixc
