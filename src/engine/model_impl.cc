#include "engine/model_impl.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "core/status.h"

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
  if (!(c.rms_norm_eps > 0) || !(c.rope_theta > 0)) return InvalidArgument(StrFormat("%s: rms_norm_eps and rope_theta must be positive", name.c_str()));

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
    if (vc.hidden_act != "quick_gelu") {
      return Unimplemented(StrFormat("%s: hidden_act '%s' is not supported (quick_gelu)", where.c_str(), vc.hidden_act.c_str()));
    }
    mc.vision_config_present = true;
  }
  return mc;
}

Result<std::unique_ptr<ModelImpl>> LoadModelImpl(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound(StrFormat("model folder '%s' does not exist", dir.c_str()));
  auto m = std::make_unique<ModelImpl>();
  m->model_dir = dir;
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  IXC_ASSIGN_OR_RETURN(std::string cfg_text, ReadFileToString(cfg_path, 16u << 20));
  IXC_ASSIGN_OR_RETURN(m->config, ParseModelConfig(cfg_text, cfg_path));
  IXC_ASSIGN_OR_RETURN(m->checkpoint, Checkpoint::Open(dir));
  auto weights = BindWeights(m->config, m->checkpoint->tensors());
  if (!weights.ok()) return weights.status().WithContext(StrFormat("checkpoint in %s", dir.c_str()));
  m->weights = std::move(weights).value();
  IXC_ASSIGN_OR_RETURN(m->tokenizer, Tokenizer::Load((fs::path(dir) / "tokenizer.model").string()));
  if (m->tokenizer->vocab_size() > m->config.text.vocab_size) {
    return InvalidArgument(StrFormat("tokenizer.model has %d pieces but the model's vocab_size is %lld",
                                     m->tokenizer->vocab_size(), (long long)m->config.text.vocab_size));
  }
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
