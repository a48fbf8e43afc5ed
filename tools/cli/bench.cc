// ixc bench: the engine's speed on this machine (RunBench in ixc/bench.h; this file parses flags and prints).
#include "ixc/bench.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <string>

#include "commands.h"
#include "common.h"

namespace ixc::cli {

namespace {

using json = nlohmann::json;

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

json Opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json BenchJson(const BenchReport& r) {
  json stages = json::array();
  for (BenchStage s : r.stages) stages.push_back(BenchStageName(s));
  json peaks = json::object();
  for (const BenchPeak& p : r.peaks) peaks[p.kind] = p.gflops;
  json j;
  j["model"] = r.model;
  j["type"] = r.type;
  j["threads"] = r.threads;
  j["precision"] = r.precision;
  j["kv_type"] = r.kv_type;
  j["layers"] = r.layers;
  j["vit_layers"] = r.vit_layers;
  j["model_layers"] = r.model_layers;
  j["model_vit_layers"] = r.model_vit_layers;
  j["cpu"] = r.cpu;
  j["stages"] = stages;
  j["vit_tile_s"] = Opt(r.vit_tile_s);
  j["prefill_tok_s_512"] = Opt(r.prefill_tok_s_512);
  j["image_prompt_s"] = Opt(r.image_prompt_s);
  j["image_encode_s"] = Opt(r.image_encode_s);
  j["image_prefill_s"] = Opt(r.image_prefill_s);
  j["decode_tok_s"] = Opt(r.decode_tok_s);
  j["decode_tok_s_16k"] = Opt(r.decode_tok_s_16k);
  j["decode_tok_s_x4"] = Opt(r.decode_tok_s_x4);
  j["decode_x4_speedup"] = Opt(r.decode_x4_speedup);
  j["decode_weight_bytes"] = r.decode_weight_bytes;
  j["decode_kv_bytes"] = r.decode_kv_bytes;
  j["decode_kv_bytes_16k"] = r.decode_kv_bytes_16k;
  j["decode_tokens"] = r.decode_tokens;
  j["decode_context"] = r.decode_context;
  j["decode_context_16k"] = r.decode_context_16k;
  j["prefill_tokens"] = r.prefill_tokens;
  j["image_tokens"] = r.image_tokens;
  j["image_prompt_tokens"] = r.image_prompt_tokens;
  j["prefill_flop_per_token"] = r.prefill_flop_per_token;
  j["vit_flop_per_tile"] = r.vit_flop_per_tile;
  j["image_prompt_flop"] = r.image_prompt_flop;
  j["bandwidth_gbs"] = r.bandwidth_gbs;
  j["bandwidth_gbs_start"] = r.bandwidth_gbs_start;
  j["bandwidth_gbs_end"] = r.bandwidth_gbs_end;
  j["bandwidth_probe_bytes"] = r.bandwidth_probe_bytes;
  j["peak_gflops"] = r.peak_gflops;
  j["peak_kind"] = r.peak_kind;
  j["peaks_gflops"] = peaks;
  j["decode_bandwidth_share"] = Opt(r.decode_bandwidth_share);
  j["decode_16k_bandwidth_share"] = Opt(r.decode_16k_bandwidth_share);
  j["decode_read_share"] = Opt(r.decode_read_share);
  j["decode_16k_read_share"] = Opt(r.decode_16k_read_share);
  j["prefill_peak_share"] = Opt(r.prefill_peak_share);
  j["vit_peak_share"] = Opt(r.vit_peak_share);
  j["image_peak_share"] = Opt(r.image_peak_share);
  j["setup_s"] = r.setup_s;
  j["peak_rss_mb"] = r.peak_rss_mb;
  return j;
}

std::string Num(const std::optional<double>& v, const char* fmt) {
  if (!v) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, *v);
  return buf;
}

std::string Percent(const std::optional<double>& v, const std::string& of) {
  if (!v) return "-";
  return Format("%.1f%% of ", 100 * *v) + of;
}

// Three significant digits in the largest unit that keeps the value at least 1.
std::string Scaled(double v, const char* unit) {
  const char* prefix[] = {"", "k", "M", "G", "T", "P"};
  int p = 0;
  while (p < 5 && v >= 1000) v /= 1000, ++p;
  return Format("%.3g %s%s", v, prefix[p], unit);
}
std::string Flop(double f) { return Scaled(f, "FLOP"); }
std::string Bytes(double b) { return Scaled(b, "B"); }

void PrintBench(const BenchReport& r) {
  std::string depth = std::to_string(r.layers) + " decoder layers";
  if (r.layers != r.model_layers) {
    depth = std::to_string(r.layers) + " of " + std::to_string(r.model_layers) + " decoder layers";
  }
  if (r.vit_layers > 0) {
    depth += r.vit_layers != r.model_vit_layers
                 ? ", " + std::to_string(r.vit_layers) + " of " + std::to_string(r.model_vit_layers) + " ViT layers"
                 : ", " + std::to_string(r.vit_layers) + " ViT layers";
  }
  std::printf("model     %s (%s), %s, %d thread%s, %s precision (%s KV cache)\n",
              r.model == "synthetic" ? "synthetic weights" : r.model.c_str(), r.type.c_str(), depth.c_str(), r.threads,
              r.threads == 1 ? "" : "s", r.precision.c_str(), r.kv_type.c_str());
  std::printf("cpu       %s\n", r.cpu.c_str());
  std::string peaks;
  for (const BenchPeak& p : r.peaks) peaks += Format("%s%s %.1f", peaks.empty() ? "" : ", ", p.kind.c_str(), p.gflops);
  std::printf("machine   read bandwidth %.1f GB/s (%s buffer; %.1f before the stages, %.1f after); peak %.1f GFLOP/s "
              "(%s; measured: %s)\n", r.bandwidth_gbs, Bytes(static_cast<double>(r.bandwidth_probe_bytes)).c_str(),
              r.bandwidth_gbs_start, r.bandwidth_gbs_end, r.peak_gflops, r.peak_kind.c_str(), peaks.c_str());
  std::printf("\n%-10s %-32s %10s  %-16s %s\n", "stage", "figure", "value", "work", "share of the machine");
  auto with_kv = [&](const std::optional<double>& share, int64_t kv_bytes) {
    return share ? Format("; %.1f%% with the KV cache's %s", 100 * *share, Bytes(static_cast<double>(kv_bytes)).c_str())
                 : std::string();
  };
  const std::string kv4 = with_kv(r.decode_read_share, r.decode_kv_bytes);
  const std::string kv16 = with_kv(r.decode_16k_read_share, r.decode_kv_bytes_16k);
  const std::string weights = Bytes(static_cast<double>(r.decode_weight_bytes)) + "/token";
  struct Row {
    const char* stage;
    std::string figure, value, work, share;
  } rows[] = {
      {"vit", "s per 560x560 view (7 together)", Num(r.vit_tile_s, "%.3f"), Flop(r.vit_flop_per_tile) + "/view",
       Percent(r.vit_peak_share, "peak")},
      {"prefill", "tokens/s, 512-token prompt", Num(r.prefill_tok_s_512, "%.2f"), Flop(r.prefill_flop_per_token) + "/token",
       Percent(r.prefill_peak_share, "peak")},
      {"image", Format("s to first token, %lld tokens", (long long)r.image_prompt_tokens), Num(r.image_prompt_s, "%.2f"),
       Flop(r.image_prompt_flop), Percent(r.image_peak_share, "peak")},
      {"decode", Format("tokens/s at %lld context", (long long)r.decode_context), Num(r.decode_tok_s, "%.3f"), weights,
       Percent(r.decode_bandwidth_share, "read bandwidth for weights" + kv4)},
      {"decode16k", Format("tokens/s at %lld context", (long long)r.decode_context_16k), Num(r.decode_tok_s_16k, "%.3f"),
       weights, Percent(r.decode_16k_bandwidth_share, "read bandwidth for weights" + kv16)},
      {"decodex4", Format("tokens/s, 4 streams at %lld", (long long)r.decode_context), Num(r.decode_tok_s_x4, "%.3f"),
       weights, r.decode_x4_speedup ? Format("%.2fx one stream's tokens/s", *r.decode_x4_speedup) : std::string()},
  };
  for (const Row& row : rows) {
    const bool ran = row.value != "-";
    std::printf("%-10s %-32s %10s  %-16s %s\n", row.stage, row.figure.c_str(), row.value.c_str(),
                ran ? row.work.c_str() : "", ran ? row.share.c_str() : "");
  }
  if (r.image_prompt_s) {
    std::printf("\nimage     %.2f s encoding 7 views + %.2f s prefilling %lld tokens (%lld image tokens, Partial LoRA)\n",
                *r.image_encode_s, *r.image_prefill_s, (long long)r.image_prompt_tokens, (long long)r.image_tokens);
  }
  std::printf("\npeak RSS  %.0f MiB; weights %s in %.1f s\n", r.peak_rss_mb,
              r.model == "synthetic" ? "generated" : "loaded", r.setup_s);
  if (r.layers != r.model_layers || (r.vit_layers > 0 && r.vit_layers != r.model_vit_layers)) {
    std::printf("note      measured with reduced layers; figures are as measured, not scaled to the full model\n");
  }
}

}  // namespace

int RunBench(int argc, char** argv) {
  BenchOptions o;
  bool synthetic = false, json_out = false, help = false, type_given = false;
  std::string model_dir;
  FlagSet fs;
  fs.Add({"--synthetic", "", "", "random weights of the real IXC-2.5 shapes, built in memory (no download)",
          [&](const std::string&) { synthetic = true; return Status::Ok(); }});
  fs.Add({"--model", "-m", "DIR", "bench a model folder instead, loaded as ixc chat loads it",
          [&](const std::string& v) { return ParsePath("-m", v, &model_dir); }});
  fs.Add(NoCheckWeightsFlag(&o.check_weights));
  fs.Add({"--type", "", "T", "synthetic weight type: bf16 (default), f16, f32, q8_0 or q4_0 (laid out as ixc convert writes them)",
          [&](const std::string& v) {
            o.type = v;
            type_given = true;
            if (v != "bf16" && v != "f16" && v != "f32" && v != "q8_0" && v != "q4_0") {
              return InvalidArgument("--type must be bf16, f16, f32, q8_0 or q4_0");
            }
            return Status::Ok();
          }});
  fs.Add({"--one-model", "", "", "synthetic: one model (decoder, vision tower, Partial LoRA) for every stage, so the peak "
          "RSS is that of a model serving image questions (default: text stages get a decoder alone)",
          [&](const std::string&) { o.one_model = true; return Status::Ok(); }});
  fs.Add({"--threads", "-t", "N", "worker threads (default: all cores)",
          [&](const std::string& v) { return ParseInt("--threads", v, 1, 1024, &o.threads); }});
  fs.Add(KvTypeFlag(&o.kv_type));
  fs.Add({"--precision", "", "P", "fast (default: f16 KV cache) or f32, as ixc chat",
          [&](const std::string& v) {
            auto p = ParsePrecision(v);
            if (p.ok()) o.precision = *p;
            return p.status();
          }});
  fs.Add({"--isa", "", "LEVEL", "use kernels up to this instruction set: scalar, avx2, avx512, avx512bf16, amx "
          "(default: the best the CPU has)",
          [&](const std::string& v) { return LimitInstructionSet(v); }});
  fs.Add({"--stages", "", "LIST", "comma-separated subset of vit,prefill,image,decode,decode16k,decodex4 (default: all)",
          [&](const std::string& v) {
            auto s = ParseBenchStages(v);
            if (!s.ok()) return Status(s.status().code(), "--stages: " + s.status().message());
            o.stages = *s;
            return Status::Ok();
          }});
  fs.Add({"--layers", "", "N", "synthetic decoder layers (default: the config's, 32); figures are not scaled",
          [&](const std::string& v) { return ParseInt("--layers", v, 1, 65536, &o.layers); }});
  fs.Add({"--vit-layers", "", "N", "synthetic ViT layers (default: the config's, 24)",
          [&](const std::string& v) { return ParseInt("--vit-layers", v, 1, 65536, &o.vit_layers); }});
  fs.Add({"--config", "", "FILE", "synthetic shapes from this config.json (default: the real IXC-2.5 shapes)",
          [&](const std::string& v) { o.config_path = v; return Status::Ok(); }});
  fs.Add({"--decode-context", "", "N", "KV positions before the decode stage's steps (default 4096; 0 matches "
          "llama-bench's tg test)",
          [&](const std::string& v) {
            int n = 0;
            Status st = ParseInt("--decode-context", v, 0, 1 << 20, &n);
            o.decode_context = n;
            return st;
          }});
  fs.Add({"--repeat", "", "N", "decode tokens timed per decode figure (default 8)",
          [&](const std::string& v) { return ParseInt("--repeat", v, 1, 100000, &o.decode_tokens); }});
  fs.Add({"--probe-mb", "", "N", "read bandwidth probe buffer in MiB (default 1024, less when memory is short)",
          [&](const std::string& v) {
            int mb = 0;
            Status st = ParseInt("--probe-mb", v, 1, 1 << 20, &mb);
            o.probe_bytes = static_cast<int64_t>(mb) << 20;
            return st;
          }});
  fs.Add({"--seed", "", "S", "seed of the synthetic weights and inputs (default 1)",
          [&](const std::string& v) {
            unsigned long long s = 0;
            Status st = ParseU64("--seed", v, &s);
            o.seed = s;
            return st;
          }});
  fs.Add({"--json", "", "", "print one JSON object", [&](const std::string&) { json_out = true; return Status::Ok(); }});
  fs.Add({"--help", "-h", "", "show this help", [&](const std::string&) { help = true; return Status::Ok(); }});
  Status s = fs.Parse(argc, argv, 2);
  if (help) {
    std::printf("usage: ixc bench [--synthetic | -m MODEL] [--type bf16] [--threads N] [--stages LIST] [--json]\n\n"
                "Times the engine's stages (ViT tile, 512-token prefill, hd_num 6 image question, decoding at 4k and\n"
                "16k context) and measures the machine's read bandwidth and arithmetic peak in the same run.\n\n%s",
                fs.Help().c_str());
    return 0;
  }
  if (!s.ok()) return Fail(s);
  if (synthetic == !model_dir.empty()) return Fail(InvalidArgument("pass either --synthetic or -m MODEL_DIR"));
  if (!synthetic && (type_given || o.layers || o.vit_layers || !o.config_path.empty())) {
    return Fail(InvalidArgument("--type, --layers, --vit-layers and --config apply to --synthetic only"));
  }
  o.model_dir = model_dir;

  BenchProgress progress;
  if (isatty(fileno(stderr)) == 1) {
    progress = [](std::string_view line) {
      std::fprintf(stderr, "ixc bench: %.*s\n", static_cast<int>(line.size()), line.data());
      std::fflush(stderr);
    };
  }
  auto report = ixc::RunBench(o, progress);
  if (!report.ok()) return Fail(report.status());
  if (json_out) std::printf("%s\n", BenchJson(*report).dump(2).c_str());
  else PrintBench(*report);
  return 0;
}

}  // namespace ixc::cli
