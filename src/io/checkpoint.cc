#include "io/checkpoint.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "io/pytorch_file.h"
#include "io/safetensors.h"

namespace ixc {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(std::unique_ptr<SafetensorsFile> f) : f_(std::move(f)) {}
  const std::map<std::string, TensorView>& tensors() const override { return f_->tensors(); }
  const std::string& path() const override { return f_->path(); }

 private:
  std::unique_ptr<SafetensorsFile> f_;
};

Result<std::unique_ptr<TensorSource>> OpenSource(const std::string& path) {
  const bool is_bin = path.size() >= 4 && (path.substr(path.size() - 4) == ".bin" || path.substr(path.size() - 3) == ".pt");
  if (is_bin) {
    IXC_ASSIGN_OR_RETURN(auto f, OpenPyTorchFile(path));
    return f;
  }
  IXC_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(path));
  return std::unique_ptr<TensorSource>(new SafetensorsSource(std::move(f)));
}

// Opens the shards an index names and checks that each listed tensor is in the shard the index says.
Result<std::unique_ptr<Checkpoint>> OpenSharded(const fs::path& dir, const fs::path& index, const std::string& kind) {
  IXC_ASSIGN_OR_RETURN(auto weight_map, ReadShardIndex(index.string()));
  std::set<std::string> shard_names;
  for (const auto& [tensor, shard] : weight_map) shard_names.insert(shard);
  std::vector<std::unique_ptr<TensorSource>> sources;
  std::map<std::string, const TensorSource*> by_name;
  for (const auto& shard : shard_names) {
    fs::path p = dir / shard;
    if (!fs::exists(p)) {
      return NotFound(StrFormat("%s names shard '%s', which is missing from %s", index.filename().c_str(), shard.c_str(),
                                dir.c_str()));
    }
    IXC_ASSIGN_OR_RETURN(auto src, OpenSource(p.string()));
    by_name[shard] = src.get();
    sources.push_back(std::move(src));
  }
  for (const auto& [tensor, shard] : weight_map) {
    if (!by_name[shard]->tensors().count(tensor)) {
      return DataLoss(StrFormat("%s says tensor '%s' is in %s, but that shard does not hold it",
                                index.filename().c_str(), tensor.c_str(), shard.c_str()));
    }
  }
  std::string format = StrFormat("%s (%zu shard%s)", kind.c_str(), shard_names.size(), shard_names.size() == 1 ? "" : "s");
  return Checkpoint::FromSources(std::move(sources), format);
}

}  // namespace

Result<std::map<std::string, std::string>> ReadShardIndex(const std::string& index_path) {
  IXC_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return DataLoss(StrFormat("%s is not valid JSON", index_path.c_str()));
  if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
    return DataLoss(StrFormat("%s has no \"weight_map\" object", index_path.c_str()));
  }
  std::map<std::string, std::string> out;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) return DataLoss(StrFormat("%s: entry '%s' is not a file name", index_path.c_str(), it.key().c_str()));
    std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "..") {
      return DataLoss(StrFormat("%s: shard name '%s' must be a plain file name in the model folder", index_path.c_str(), shard.c_str()));
    }
    out[it.key()] = shard;
  }
  if (out.empty()) return DataLoss(StrFormat("%s lists no tensors", index_path.c_str()));
  return out;
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::FromSources(std::vector<std::unique_ptr<TensorSource>> sources,
                                                            std::string format) {
  std::unique_ptr<Checkpoint> ck(new Checkpoint());
  std::map<std::string_view, const TensorSource*> owner;  // which file each name came from, for the error
  for (const auto& s : sources) {
    for (const auto& [name, view] : s->tensors()) {
      auto [it, inserted] = ck->tensors_.emplace(name, view);
      if (!inserted) {
        return DataLoss(StrFormat("tensor '%s' appears in more than one file (%s and %s)", name.c_str(),
                                  owner[it->first]->path().c_str(), s->path().c_str()));
      }
      owner[it->first] = s.get();
    }
  }
  ck->sources_ = std::move(sources);
  ck->format_ = std::move(format);
  return ck;
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir_str) {
  fs::path dir(dir_str);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound(StrFormat("model folder %s does not exist", dir_str.c_str()));
  if (fs::exists(dir / "model.safetensors.index.json")) return OpenSharded(dir, dir / "model.safetensors.index.json", "safetensors");
  if (fs::exists(dir / "model.safetensors")) {
    std::vector<std::unique_ptr<TensorSource>> v;
    IXC_ASSIGN_OR_RETURN(auto src, OpenSource((dir / "model.safetensors").string()));
    v.push_back(std::move(src));
    return FromSources(std::move(v), "safetensors");
  }
  if (fs::exists(dir / "pytorch_model.bin.index.json")) return OpenSharded(dir, dir / "pytorch_model.bin.index.json", "pytorch");
  if (fs::exists(dir / "pytorch_model.bin")) {
    std::vector<std::unique_ptr<TensorSource>> v;
    IXC_ASSIGN_OR_RETURN(auto src, OpenSource((dir / "pytorch_model.bin").string()));
    v.push_back(std::move(src));
    return FromSources(std::move(v), "pytorch");
  }
  return NotFound(StrFormat("no weights in %s: expected model.safetensors, model.safetensors.index.json, "
                            "pytorch_model.bin or pytorch_model.bin.index.json", dir_str.c_str()));
}

const TensorView* Checkpoint::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Status CheckTensorsFinite(const std::map<std::string, TensorView>& tensors, ThreadPool* pool,
                          const std::function<void(double)>& progress,
                          const std::function<void(const std::string&, const TensorView&)>& scanned) {
  int64_t total = 0, done = 0;
  for (const auto& [name, t] : tensors) total += static_cast<int64_t>(t.nbytes());
  // Chunks of about 4 MB of values, whole blocks for block types, spread over the pool's threads.
  for (const auto& entry : tensors) {
    const std::string& name = entry.first;  // (not a structured binding: clang 14 cannot capture those)
    const TensorView& t = entry.second;
    const int64_t n = t.numel();
    const int64_t unit = t.dtype == DType::kQ4_0x8 ? 256 : t.dtype == DType::kQ4G128x8 ? 1024 : DTypeBlockValues(t.dtype);
    const int64_t per_chunk = std::max<int64_t>(unit, (int64_t{4} << 20) / std::max<int64_t>(1, StorageBytes(t.dtype, unit)) * unit);
    const int64_t chunks = (n + per_chunk - 1) / per_chunk;
    std::atomic<int64_t> first{INT64_MAX};
    auto scan = [&](int64_t c0, int64_t c1, int) {
      for (int64_t c = c0; c < c1 && first.load(std::memory_order_relaxed) == INT64_MAX; ++c) {
        const int64_t begin = c * per_chunk, count = std::min(per_chunk, n - begin);
        const int64_t at = FindNonFinite(t.dtype, static_cast<const uint8_t*>(t.data) + StorageBytes(t.dtype, begin), count);
        if (at < 0) continue;
        int64_t cur = first.load();
        while (begin + at < cur && !first.compare_exchange_weak(cur, begin + at)) {}
      }
    };
    if (pool && chunks > 1) pool->ParallelFor(chunks, scan); else scan(0, chunks, 0);
    if (first.load() != INT64_MAX) {
      const int64_t at = first.load();
      std::string where = StrFormat("element %lld", static_cast<long long>(at));
      if (t.shape.size() == 2) {
        where = StrFormat("row %lld, column %lld", static_cast<long long>(at / t.shape[1]),
                          static_cast<long long>(at % t.shape[1]));
      }
      std::string what = "a NaN or infinite value";
      if (!IsBlockType(t.dtype)) {
        alignas(8) uint8_t one[8];  // the value, aligned for the conversion
        std::memcpy(one, static_cast<const uint8_t*>(t.data) + StorageBytes(t.dtype, at), DTypeSize(t.dtype));
        float v = 0;
        ConvertToF32(t.dtype, one, &v, 1);
        what = std::isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf";
      } else {
        what = "a block whose scale is NaN or infinite";
      }
      return DataLoss(StrFormat("tensor '%s' (%s) holds %s at %s: the checkpoint is damaged or was converted badly "
                                "(--no-check-weights loads it anyway)", name.c_str(), DTypeName(t.dtype), what.c_str(),
                                where.c_str()));
    }
    if (scanned) scanned(name, t);
    done += static_cast<int64_t>(t.nbytes());
    if (progress && total > 0) progress(static_cast<double>(done) / static_cast<double>(total));
  }
  return Status::Ok();
}

}  // namespace ixc
