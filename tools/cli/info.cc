// ixc info: what a model folder holds and what running it costs (Model::Info; this file only prints).
#include <cstdio>
#include <string>

#include "commands.h"
#include "common.h"

namespace ixc::cli {

namespace {

using json = nlohmann::json;

std::string StrFormatBytes(double v, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, unit);
  return buf;
}

std::string Bytes(int64_t n) {
  const double x = static_cast<double>(n);
  if (n >= (int64_t{1} << 30)) return StrFormatBytes(x / (1 << 30), "GiB");
  if (n >= (int64_t{1} << 20)) return StrFormatBytes(x / (1 << 20), "MiB");
  if (n >= (int64_t{1} << 10)) return StrFormatBytes(x / (1 << 10), "KiB");
  return std::to_string(n) + " B";
}

std::string Count(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0 && s[i - 1] != '-') out += ',';
    out += s[i];
  }
  return out;
}

std::string DTypeList(const std::vector<DTypeBytes>& v) {
  if (v.empty()) return "none";
  std::string out;
  for (const DTypeBytes& d : v) out += (out.empty() ? "" : ", ") + d.dtype + " " + Bytes(d.bytes);
  return out;
}

json DTypeJson(const std::vector<DTypeBytes>& v) {
  json j = json::object();
  for (const DTypeBytes& d : v) j[d.dtype] = d.bytes;
  return j;
}

json InfoJson(const ModelInfo& i) {
  const ParameterBreakdown& p = i.parameters;
  const MemoryEstimate& m = i.memory;
  const MemoryQuery& q = i.query;
  json j;
  j["model_dir"] = i.model_dir;
  j["format"] = {{"container", i.container}, {"shards", i.shards}, {"description", i.format}, {"awq", i.awq}};
  if (i.awq) {
    j["format"]["awq_detail"] = {{"bits", i.awq_bits}, {"group_size", i.awq_group_size}, {"layers", i.awq_layers},
                                 {"four_bit_layers", i.awq_four_bit_layers}};
  }
  j["dtypes"] = {{"stored", DTypeJson(i.stored)}, {"loaded_mapped", DTypeJson(i.loaded_mapped)},
                 {"loaded_owned", DTypeJson(i.loaded_owned)}};
  j["config"] = {{"layers", i.layers}, {"hidden", i.hidden}, {"intermediate", i.intermediate}, {"heads", i.heads},
                 {"kv_heads", i.kv_heads}, {"vocab", i.vocab}, {"max_position", i.max_position}};
  if (i.vision) j["config"]["vision"] = {{"layers", i.vision_layers}, {"hidden", i.vision_hidden}, {"image_size", i.image_size}};
  j["parameters"] = {{"decoder", p.decoder}, {"plora", p.plora}, {"web", p.web}, {"sft", p.sft}, {"dpo", p.dpo},
                     {"vision", p.vision}, {"projector", p.projector}, {"total", p.total()}};
  j["modes"] = i.modes;
  j["vision"] = i.vision;
  j["memory"] = {
      {"query", {{"images", q.images}, {"hd_num", q.hd_num}, {"grid", {q.grid_rows, q.grid_cols}},
                 {"context_tokens", q.context_tokens},
                 {"text_tokens", q.text_tokens}, {"threads", q.threads}, {"mode", TaskModeName(q.mode)},
                 {"precision", PrecisionName(q.precision)},
                 {"kv_type", KvCacheTypeName(q.kv_type)}}},
      {"weights_mapped", m.weights_mapped}, {"weights_owned", m.weights_owned}, {"weights_resident", m.weights_resident},
      {"prompt_tokens", m.prompt_tokens}, {"image_tokens", m.image_tokens}, {"context_tokens", m.context_tokens},
      {"kv_bytes_per_token", m.kv_bytes_per_token}, {"kv_cache", m.kv_cache},
      {"activations", {{"media", m.media}, {"vision", m.vision}, {"prefill", m.prefill}, {"decode", m.decode},
                       {"allocator_retained", m.allocator_retained}}},
      {"runtime", m.runtime}, {"peak_phase", m.peak_phase}, {"total", m.total}};
  return j;
}

void PrintInfo(const ModelInfo& i) {
  const ParameterBreakdown& p = i.parameters;
  const MemoryEstimate& m = i.memory;
  const MemoryQuery& q = i.query;
  std::printf("model        %s\n", i.model_dir.c_str());
  std::string format = i.container + (i.shards > 1 ? " (" + std::to_string(i.shards) + " shards)" : " (1 file)");
  if (i.awq) {
    format += ", AWQ " + std::to_string(i.awq_bits) + "-bit, group " + std::to_string(i.awq_group_size) + ": " +
              std::to_string(i.awq_layers) + " layers, " +
              (i.awq_four_bit_layers == i.awq_layers
                   ? std::string("kept in 4 bits")
                   : std::to_string(i.awq_layers - i.awq_four_bit_layers) + " of them dequantised to F16 at load");
  }
  std::printf("format       %s\n", format.c_str());
  std::printf("config       %lld layers, hidden %lld, intermediate %lld, heads %lld/%lld, vocab %lld, max positions %lld\n",
              (long long)i.layers, (long long)i.hidden, (long long)i.intermediate, (long long)i.heads,
              (long long)i.kv_heads, (long long)i.vocab, (long long)i.max_position);
  if (i.vision) {
    std::printf("vision       %lld layers, width %lld, %lld px views\n", (long long)i.vision_layers,
                (long long)i.vision_hidden, (long long)i.image_size);
  } else {
    std::printf("vision       none (text only)\n");
  }
  std::string modes;
  for (const auto& md : i.modes) modes += (modes.empty() ? "" : ", ") + md;
  std::printf("modes        %s\n", modes.c_str());
  std::printf("stored       %s\n", DTypeList(i.stored).c_str());
  std::printf("loaded       mapped: %s; owned: %s\n", DTypeList(i.loaded_mapped).c_str(), DTypeList(i.loaded_owned).c_str());

  std::printf("\nparameters\n");
  const std::pair<const char*, int64_t> rows[] = {{"decoder", p.decoder}, {"partial LoRA", p.plora},
                                                  {"web adapter", p.web}, {"sft adapter", p.sft},
                                                  {"dpo adapter", p.dpo}, {"vision tower", p.vision},
                                                  {"projector", p.projector}, {"total", p.total()}};
  for (auto [name, n] : rows) std::printf("  %-14s %16s\n", name, Count(n).c_str());

  std::printf("\nmemory estimate: ");
  if (q.images == 0) std::printf("text only");
  else if (q.grid_rows > 0) std::printf("%d image%s of %dx%d tiles (%lld image tokens)", q.images, q.images == 1 ? "" : "s",
                   q.grid_rows, q.grid_cols, (long long)m.image_tokens);
  else std::printf("%d image%s at hd_num %d (%lld image tokens)", q.images, q.images == 1 ? "" : "s", q.hd_num,
                   (long long)m.image_tokens);
  std::printf(", %lld text tokens, context %lld tokens, %d thread%s, %s mode, %s precision%s\n",
              (long long)q.text_tokens, (long long)m.context_tokens, q.threads, q.threads == 1 ? "" : "s",
              TaskModeName(q.mode), PrecisionName(q.precision),
              q.kv_type == KvCacheType::kAuto ? "" : (std::string(", ") + KvCacheTypeName(q.kv_type) + " KV cache").c_str());
  std::printf("  weights      %s mapped, %s owned; %s resident for this request\n", Bytes(m.weights_mapped).c_str(),
              Bytes(m.weights_owned).c_str(), Bytes(m.weights_resident).c_str());
  std::printf("  KV cache     %s per token: %s for %lld tokens", Bytes(m.kv_bytes_per_token).c_str(),
              Bytes(m.kv_cache).c_str(), (long long)m.context_tokens);
  std::string more;
  for (int64_t ctx : {4096, 8192, 16384, 32768}) {
    if (ctx != m.context_tokens) more += (more.empty() ? "" : ", ") + Bytes(ctx * m.kv_bytes_per_token) + " at " + std::to_string(ctx);
  }
  std::printf(" (%s)\n", more.c_str());
  std::printf("  activations  media %s, vision %s, prefill %s, decode %s; allocator keeps %s\n", Bytes(m.media).c_str(),
              Bytes(m.vision).c_str(), Bytes(m.prefill).c_str(), Bytes(m.decode).c_str(),
              Bytes(m.allocator_retained).c_str());
  std::printf("  runtime      %s (code, libraries, tokenizer)\n", Bytes(m.runtime).c_str());
  std::printf("  peak RSS     %s (in the %s phase)\n", Bytes(m.total).c_str(), m.peak_phase.c_str());
}

}  // namespace

int RunInfo(int argc, char** argv) {
  CommonArgs common;
  MemoryQuery q;
  int context = static_cast<int>(q.context_tokens), text_tokens = static_cast<int>(q.text_tokens);
  std::string mode = "base";
  FlagSet fs;
  fs.Add({"--model", "-m", "DIR", "model folder", [&](const std::string& v) { return ParsePath("-m", v, &common.model_dir); }});
  fs.Add(NoCheckWeightsFlag(&common.check_weights));
  fs.Add({"--hd-num", "", "N", "tiles per image for the memory estimate (default 24; 6 whenever several images)",
          [&](const std::string& v) { return ParseInt("--hd-num", v, 1, 100, &q.hd_num); }});
  fs.Add({"--grid", "", "RxC", "tile grid of each image, e.g. 2x2 (default: the largest --hd-num allows, N tiles in one column)",
          [&](const std::string& v) {
            const size_t x = v.find('x');
            if (x == std::string::npos) return InvalidArgument("--grid expects ROWSxCOLS, e.g. 2x2");
            Status st = ParseInt("--grid", v.substr(0, x), 1, 100, &q.grid_rows);
            if (st.ok()) st = ParseInt("--grid", v.substr(x + 1), 1, 100, &q.grid_cols);
            return st;
          }});
  fs.Add({"--images", "", "N", "images in the request (default 1; 0 = text only)",
          [&](const std::string& v) { return ParseInt("--images", v, 0, 64, &q.images); }});
  fs.Add({"--context", "", "N", "tokens the KV cache holds (prompt + reply; default 4096, at least the prompt)",
          [&](const std::string& v) { return ParseInt("--context", v, 1, 1 << 24, &context); }});
  fs.Add({"--text-tokens", "", "N", "prompt text tokens (default 64)",
          [&](const std::string& v) { return ParseInt("--text-tokens", v, 1, 1 << 24, &text_tokens); }});
  fs.Add({"--mode", "", "MODE", "base (default), web or write: which adapter the request touches",
          [&](const std::string& v) { mode = v; return Status::Ok(); }});
  fs.Add({"--threads", "-t", "N", "threads of the request (default: all cores): each keeps its kernel scratch",
          [&](const std::string& v) { return ParseInt("--threads", v, 1, 1024, &common.threads); }});
  fs.Add(KvTypeFlag(&q.kv_type));
  fs.Add({"--precision", "", "P", "fast (default: f16 KV cache) or f32 (f32 KV cache), as ixc chat --precision",
          [&](const std::string& v) {
            auto p = ParsePrecision(v);
            if (p.ok()) q.precision = *p;
            return p.status();
          }});
  fs.Add({"--json", "", "", "print one JSON object", [&](const std::string&) { common.json_out = true; return Status::Ok(); }});
  fs.Add({"--help", "-h", "", "show this help", [&](const std::string&) { common.help = true; return Status::Ok(); }});
  Status s = fs.Parse(argc, argv, 2);
  if (common.help) {
    std::printf("usage: ixc info -m MODEL_DIR [--hd-num N] [--images N] [--context N] [--json]\n\n"
                "Prints the checkpoint's format and dtypes, parameter counts per component, the available modes,\n"
                "and an estimate of the peak memory (resident set) of one request of the given shape.\n\n%s",
                fs.Help().c_str());
    return 0;
  }
  if (!s.ok()) return Fail(s);
  auto m = ParseTaskMode(mode);
  if (!m.ok()) return Fail(m.status());
  q.mode = *m;
  q.context_tokens = context;
  q.text_tokens = text_tokens;
  q.threads = common.threads;

  auto model = LoadModel(common);
  if (!model.ok()) return Fail(model.status());
  const ModelInfo info = (*model)->Info(q);
  if (common.json_out) std::printf("%s\n", InfoJson(info).dump(2).c_str());
  else PrintInfo(info);
  return 0;
}

}  // namespace ixc::cli
