// ixc convert: a model (Hugging Face folder, AWQ folder or ixc GGUF file) -> one GGUF file.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "engine/gguf_model.h"
#include "engine/model_impl.h"
#include "kernels/probe.h"
#include "model/synthetic.h"
#include "model/weight_types.h"
#include "ixc/ixc.h"

namespace ixc {

namespace {

// The table the binder saw: the stored tensors, with AWQ triples replaced by their dequantised weights (F16, or
// exact in Q4G128x8).
std::map<std::string, TensorView> BoundTable(const ModelImpl& m) {
  std::map<std::string, TensorView> table;
  std::set<std::string> dense;
  for (const auto& src : m.dequantised)
    for (const auto& [name, view] : src->tensors()) dense.insert(name);
  for (const auto& [name, view] : m.checkpoint->tensors()) {
    bool awq_part = false;
    for (const char* part : {".qweight", ".qzeros", ".scales"}) {
      const size_t n = std::strlen(part);
      if (name.size() > n && name.compare(name.size() - n, n, part) == 0 &&
          dense.count(name.substr(0, name.size() - n) + ".weight")) {
        awq_part = true;
      }
    }
    if (!awq_part) table.emplace(name, view);
  }
  for (const auto& src : m.dequantised) table.insert(src->tensors().begin(), src->tensors().end());
  return table;
}

// n floats stored as bf16 or f16.
void StoreFloats(DType t, const float* x, uint8_t* dst, int64_t n) {
  auto* y = reinterpret_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = t == DType::kBF16 ? F32ToBf16(x[i]) : F32ToF16(x[i]);
}


std::map<std::string, GgufValue> Metadata(const std::string& name, const std::string& config_text,
                                          const std::string& tokenizer) {
  std::map<std::string, GgufValue> metadata;
  metadata["general.architecture"] = GgufValue::String(kGgufArchitecture);
  metadata["general.name"] = GgufValue::String(name);
  metadata[kGgufKeyFormat] = GgufValue::U32(1);
  metadata[kGgufKeyConfig] = GgufValue::String(config_text);
  metadata[kGgufKeyTokenizer] = GgufValue::Bytes(std::vector<uint8_t>(tokenizer.begin(), tokenizer.end()));
  return metadata;
}

Status Write(const ConvertOptions& o, const std::map<std::string, GgufValue>& metadata,
             const std::vector<GgufTensor>& tensors) {
  const std::string stage = "writing " + o.type;
  if (o.progress) o.progress(stage, 0.0);
  return WriteGguf(o.output, metadata, tensors, [&](size_t done, size_t total) {
    if (o.progress) o.progress(stage, static_cast<double>(done) / static_cast<double>(total));
  });
}

Result<ConvertReport> ConvertSynthetic(const ConvertOptions& o, WeightType type) {
  if (o.tokenizer.empty()) return InvalidArgument("a synthetic model needs a tokenizer.model to hold");
  ModelConfig config;
  config.text.rope_scaling_type = "dynamic";
  config.text.rope_scaling_factor = 2.0;
  if (!o.synthetic_config.empty()) {
    IXC_ASSIGN_OR_RETURN(std::string text, ReadFileToString(o.synthetic_config, 16u << 20));
    IXC_ASSIGN_OR_RETURN(config, ParseModelConfig(text, o.synthetic_config));
  }
  IXC_ASSIGN_OR_RETURN(std::string tokenizer, ReadFileToString(o.tokenizer, 64u << 20));
  SyntheticOptions so;
  so.seed = o.seed;
  so.type = type;
  so.plora_rank = kRealPloraRank;
  so.web_rank = kRealWebRank;
  so.sft_rank = kRealSftRank;
  so.dpo_rank = kRealDpoRank;
  const int64_t need = SyntheticCheckpointBytes(config, so), available = AvailableMemoryBytes();
  if (available > 0 && need > available) {
    return ResourceExhausted(StrFormat("synthetic %s weights need %.1f GB, but only %.1f GB of memory is available",
                                       o.type.c_str(), need / 1e9, available / 1e9));
  }
  if (o.progress) o.progress("generating synthetic weights", 0.0);
  std::shared_ptr<ThreadPool> pool = SharedThreadPool(0);
  std::unique_ptr<SyntheticCheckpoint> ck = MakeSyntheticCheckpoint(config, so, pool.get());
  if (o.progress) o.progress("generating synthetic weights", 1.0);
  ConvertReport report;
  std::vector<GgufTensor> out;
  for (const auto& [name, view] : ck->tensors) {
    out.push_back(GgufTensor{name, view.dtype, view.shape, view.data, {}});
    ++report.tensors;
    if (IsBlockType(view.dtype)) ++report.quantised_tensors;
  }
  IXC_RETURN_IF_ERROR(Write(o, Metadata("synthetic " + o.type, ModelConfigJson(config), tokenizer), out));
  std::error_code ec;
  report.file_bytes = static_cast<int64_t>(std::filesystem::file_size(o.output, ec));
  return report;
}

}  // namespace

static Result<ConvertReport> ConvertModelImpl(const ConvertOptions& o) {
  namespace fs = std::filesystem;
  WeightType type;
  if (!ParseWeightType(o.type, &type) || type == WeightType::kF16 || type == WeightType::kF32) {
    return InvalidArgument("unknown type '" + o.type + "' (bf16, q8_0 or q4_0)");
  }
  if (o.output.empty()) return InvalidArgument("no output file given");
  if (o.synthetic != o.model_dir.empty()) {
    return InvalidArgument(o.synthetic ? "give either a model or synthetic weights, not both" : "no model given");
  }
  if (o.synthetic) return ConvertSynthetic(o, type);
  std::error_code ec;
  if (fs::exists(o.output, ec) && fs::equivalent(o.output, o.model_dir, ec)) {
    return InvalidArgument("the output would overwrite the input " + o.model_dir);
  }
  LoadOptions lo;
  lo.model_dir = o.model_dir;
  lo.progress = o.progress;
  lo.check_weights = o.check_weights;
  // Quantised outputs requantise AWQ layers from their exact values, (q − z)·s, read from the 4-bit layout: through
  // the F16 dequantisation they would be rounded twice. bf16 keeps that F16 dequantisation (the reference's).
  const bool requantise = type == WeightType::kQ8_0 || type == WeightType::kQ4_0;
  IXC_ASSIGN_OR_RETURN(std::unique_ptr<ModelImpl> m,
                       LoadModelImpl(lo, /*stored_layout=*/true, /*stored_awq_four_bit=*/requantise));

  // config.json and tokenizer.model, verbatim but for AWQ's quantization_config (its layers are dense now).
  std::string config_text, tokenizer;
  if (fs::is_regular_file(o.model_dir, ec)) {
    IXC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, OpenModelGguf(o.model_dir));
    IXC_ASSIGN_OR_RETURN(config_text, f->GetString(kGgufKeyConfig));
    IXC_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, f->GetBytes(kGgufKeyTokenizer));
    tokenizer.assign(bytes.begin(), bytes.end());
  } else {
    IXC_ASSIGN_OR_RETURN(config_text, ReadFileToString((fs::path(o.model_dir) / "config.json").string(), 16u << 20));
    IXC_ASSIGN_OR_RETURN(tokenizer, ReadFileToString((fs::path(o.model_dir) / "tokenizer.model").string(), 64u << 20));
  }
  if (m->awq.layers > 0) {
    nlohmann::json j = nlohmann::json::parse(config_text, nullptr, false);
    if (j.is_object()) j.erase("quantization_config");
    config_text = j.dump(2);
  }
  const std::map<std::string, GgufValue> metadata =
      Metadata(fs::path(o.model_dir).filename().string(), config_text, tokenizer);

  std::shared_ptr<ThreadPool> pool = SharedThreadPool(0);
  ConvertReport report;
  std::vector<GgufTensor> out;
  for (const auto& [name, view] : BoundTable(*m)) {
    GgufTensor t{name, view.dtype, view.shape, view.data, {}};
    const DType want = StoredTypeFor(type, name, view.shape, view.dtype);
    if (want != view.dtype) {
      // Converted a slab of rows at a time, rows split across the pool (a 7B model's matrices are gigabytes).
      t.dtype = want;
      t.data = nullptr;
      const TensorView src = view;
      t.produce = [src, want, pool](uint8_t* dst) {
        const int64_t cols = src.shape.back(), rows = src.numel() / cols, row_bytes = StorageBytes(want, cols);
        pool->ParallelFor(rows, [&](int64_t r0, int64_t r1, int) {
          std::vector<float> row(cols);
          for (int64_t r = r0; r < r1; ++r) {
            RowToF32(src, r, row.data());  // also the rows of interleaved 4-bit AWQ layers
            uint8_t* out = dst + r * row_bytes;
            if (IsBlockType(want)) {
              QuantizeBlocks(want, row.data(), out, cols);
            } else {
              StoreFloats(want, row.data(), out, cols);
            }
          }
        });
        return Status::Ok();
      };
      if (IsBlockType(want)) ++report.quantised_tensors;
    }
    ++report.tensors;
    out.push_back(std::move(t));
  }
  IXC_RETURN_IF_ERROR(Write(o, metadata, out));
  report.file_bytes = static_cast<int64_t>(fs::file_size(o.output, ec));
  return report;
}

Result<ConvertReport> ConvertModel(const ConvertOptions& o) {
  return CatchAllocationFailure("converting the model", [&] { return ConvertModelImpl(o); });
}

}  // namespace ixc
