#include "common.h"

#include "core/mapped_file.h"
#include "progress.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ixc::cli {

std::atomic<bool> g_interrupted{false};

namespace {
void OnSigint(int) { g_interrupted = true; }
}  // namespace

void InstallInterruptHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kInvalidArgument: case StatusCode::kNotFound: case StatusCode::kDataLoss:
    case StatusCode::kUnimplemented: case StatusCode::kFailedPrecondition:
      return 2;  // usage or invalid input: a flag, a missing or corrupt file, an unsupported format or mode
    case StatusCode::kResourceExhausted: return 3;
    case StatusCode::kCancelled: return 130;
    default: return 1;  // a run-time or I/O failure
  }
}

int Fail(const Status& s) {
  std::fprintf(stderr, "ixc: error: %s\n", s.message().c_str());
  return ExitCodeFor(s);
}

Flag KvTypeFlag(KvCacheType* out) {
  return {"--kv-type", "", "T", "KV cache type: f16, f32 or q8_0 (8-bit blocks: half of f16's memory, for long contexts); "
          "default: f16, f32 under --precision f32",
          [out](const std::string& v) {
            auto t = ParseKvCacheType(v);
            if (t.ok()) *out = *t;
            return t.status();
          }};
}

Flag NoCheckWeightsFlag(bool* check) {
  return {"--no-check-weights", "", "", "load without scanning the weights for NaN and infinite values",
          [check](const std::string&) { *check = false; return Status::Ok(); }};
}

void AddCommonFlags(FlagSet& fs, CommonArgs& a) {
  fs.Add({"--model", "-m", "DIR", "model folder (Hugging Face layout: config.json, *.safetensors or *.bin, tokenizer.model); "
          "default: $IXC_MODEL, else the bundled demo model",
          [&](const std::string& v) { return ParsePath("-m", v, &a.model_dir); }});
  fs.Add({"--threads", "-t", "N", "worker threads (default: all cores)",
          [&](const std::string& v) { return ParseInt("--threads", v, 1, 1024, &a.threads); }});
  fs.Add({"--precision", "", "P", "fast (default: f16 KV cache) or f32 (every activation and the KV cache in f32)",
          [&](const std::string& v) {
            auto p = ParsePrecision(v);
            if (p.ok()) a.precision = *p;
            return p.status();
          }});
  fs.Add(KvTypeFlag(&a.kv_type));
  fs.Add(NoCheckWeightsFlag(&a.check_weights));
  fs.Add({"--isa", "", "LEVEL", "use kernels up to this instruction set: scalar, avx2, avx512, avx512bf16, amx "
          "(default: the best the CPU has; $IXC_ISA does the same)",
          [&](const std::string& v) { return LimitInstructionSet(v); }});
  fs.Add({"--json", "", "", "print one JSON object (text, tokens, prompt_tokens, timings, ...) instead of the text",
          [&](const std::string&) { a.json_out = true; return Status::Ok(); }});
  fs.Add({"--help", "-h", "", "show this help", [&](const std::string&) { a.help = true; return Status::Ok(); }});
}

void AddMediaFlags(FlagSet& fs, ChatRequest& r) {
  fs.Add({"--image", "", "PATH", "an image (repeatable; matched to <ImageHere> markers in order; one image needs none)",
          [&](const std::string& v) { r.images.push_back(v); return Status::Ok(); }});
  fs.Add({"--video", "", "PATH", "a video (MP4, MKV, AVI, MOV, WebM): about one frame per second, up to 32, as one labelled picture",
          [&](const std::string& v) { r.images.push_back(MediaInput(v, /*video=*/true)); return Status::Ok(); }});
  fs.Add({"--font", "", "PATH", "font for video frame labels (default: SimHei.ttf in the model folder, else a CJK system font)",
          [&](const std::string& v) { r.font_path = v; return Status::Ok(); }});
  fs.Add({"--max-image-pixels", "", "N", "refuse images and video frames with more pixels than this (default 200000000)",
          [&](const std::string& v) {
            unsigned long long n = 0;
            Status st = ParseU64("--max-image-pixels", v, &n);
            if (st.ok() && (n < 1 || n > (1ull << 40))) st = InvalidArgument("--max-image-pixels is out of range");
            r.max_image_pixels = static_cast<int64_t>(n);
            return st;
          }});
  fs.Add({"--hd-num", "", "N", "max 560x560 tiles per image (default 24; the reference uses 6 whenever several images are given)",
          [&](const std::string& v) { return ParseInt("--hd-num", v, 1, 100, &r.hd_num); }});
}

void AddGenerationFlags(FlagSet& fs, GenerationOptions& g) {
  fs.Add({"--greedy", "", "", "greedy decoding (no sampling, one beam)",
          [&](const std::string&) { g.do_sample = false; g.num_beams = 1; return Status::Ok(); }});
  fs.Add({"--beams", "", "N", "beam search with N beams, no sampling (add --sample after it for beam sampling)",
          [&](const std::string& v) { g.do_sample = false; return ParseInt("--beams", v, 1, 16, &g.num_beams); }});
  fs.Add({"--sample", "", "", "sample the next token (with --beams: beam sampling)",
          [&](const std::string&) { g.do_sample = true; return Status::Ok(); }});
  fs.Add({"--temperature", "", "T", "sampling temperature",
          [&](const std::string& v) { return ParseFloat("--temperature", v, 1e-4, 100, &g.temperature); }});
  fs.Add({"--top-p", "", "P", "nucleus sampling mass",
          [&](const std::string& v) { return ParseFloat("--top-p", v, 1e-6, 1, &g.top_p); }});
  fs.Add({"--top-k", "", "K", "keep the K most likely tokens when sampling (0 = off)",
          [&](const std::string& v) { return ParseInt("--top-k", v, 0, 1 << 20, &g.top_k); }});
  fs.Add({"--repetition-penalty", "", "R", "penalty on already generated tokens",
          [&](const std::string& v) { return ParseFloat("--repetition-penalty", v, 1e-3, 100, &g.repetition_penalty); }});
  fs.Add({"--seed", "", "S", "random seed for sampling (default 0)",
          [&](const std::string& v) {
            unsigned long long s = 0;
            Status st = ParseU64("--seed", v, &s);
            g.seed = s;
            return st;
          }});
  fs.Add({"--max-new-tokens", "-n", "N", "generate at most N tokens",
          [&](const std::string& v) { return ParseInt("-n", v, 1, 1 << 20, &g.max_new_tokens); }});
}

Result<std::unique_ptr<Model>> LoadModel(const CommonArgs& a) {
  std::string dir = a.model_dir;
  if (dir.empty()) {
    // No -m: $IXC_MODEL, else the tiny demo model that ships in the source tree.
    const char* env = std::getenv("IXC_MODEL");
    dir = env && *env ? env : IXC_DEMO_MODEL_DIR;
    if (!std::filesystem::exists(std::filesystem::path(dir) / "config.json")) {
      return InvalidArgument("no model: pass -m MODEL_DIR (the bundled demo model is not at " + dir + ")");
    }
    std::fprintf(stderr, "ixc: no -m given; using %s%s\n", dir.c_str(),
                 env && *env ? " ($IXC_MODEL)" : " (the bundled demo model: it knows only pictures of simple shapes)");
  }
  LoadProgressBar bar = LoadProgressBar::Terminal();
  LoadOptions lo;
  lo.model_dir = dir;
  lo.progress = bar.callback();
  lo.check_weights = a.check_weights;
  return Model::Load(lo);
}

TextCallback StdoutStreamer(bool enabled) {
  return [enabled](std::string_view piece) {
    if (enabled) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return !g_interrupted.load();
  };
}

nlohmann::json ResultJson(const ChatResult& r) {
  nlohmann::json j;
  j["text"] = r.text;
  j["tokens"] = r.tokens;
  j["prompt_tokens"] = r.prompt_tokens;
  j["prompt_text_ids"] = r.prompt_text_ids;
  j["image_tokens"] = r.image_tokens;
  nlohmann::json grids = nlohmann::json::array();
  for (auto [rows, cols] : r.grids) grids.push_back({rows, cols});
  j["grids"] = grids;
  j["stop_reason"] = r.stop_reason;
  nlohmann::json videos = nlohmann::json::array();
  for (const VideoSummary& v : r.videos) {
    videos.push_back({{"frame_indices", v.frame_indices},
                      {"composite_size", {v.composite_width, v.composite_height}},
                      {"grid", {v.rows, v.cols}}});
  }
  if (!videos.empty()) {
    j["video"] = videos[0];
    j["videos"] = videos;
  }
  const Timings& t = r.timings;
  j["timings"] = {{"load_media_ms", t.load_media_ms},
                  {"encode_images_ms", t.encode_images_ms},
                  {"prefill_ms", t.prefill_ms},
                  {"decode_ms", t.decode_ms},
                  {"decoded_tokens", t.decoded_tokens},
                  {"encoded_views", t.encoded_views},
                  {"prefilled_tokens", t.prefilled_tokens},
                  {"encode_views_per_s", t.encode_images_ms > 0 ? t.encoded_views * 1000.0 / t.encode_images_ms : 0.0},
                  {"prefill_tokens_per_s", t.prefill_ms > 0 ? t.prefilled_tokens * 1000.0 / t.prefill_ms : 0.0},
                  {"decode_tokens_per_s", t.decode_ms > 0 ? t.decoded_tokens * 1000.0 / t.decode_ms : 0.0}};
  return j;
}

Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes) { return ReadFileToString(path, max_bytes); }

int ExitCodeFor(const ChatResult& r) { return r.stop_reason == "cancelled" ? 130 : 0; }

}  // namespace ixc::cli
