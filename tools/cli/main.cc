// ixc: the command-line front end. Everything goes through the public API (ixc/ixc.h); this file only parses
// flags, prints, and decides exit codes.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "flags.h"
#include "ixc/ixc.h"

namespace {

using ixc::Status;
using json = nlohmann::json;

std::atomic<bool> g_interrupted{false};
void OnSigint(int) { g_interrupted = true; }

int Fail(const Status& s) {
  std::fprintf(stderr, "ixc: error: %s\n", s.message().c_str());
  return s.code() == ixc::StatusCode::kInvalidArgument ? 2 : 1;
}



struct ChatArgs {
  std::string model_dir;
  std::string prompt;
  bool has_prompt = false;
  std::string system;
  bool meta = false;
  std::string history_file;
  std::string mode = "base";
  std::string dump_path;
  bool json_out = false;
  int threads = 0;
  ixc::ChatRequest req;
};

Status ReadHistory(const std::string& path, std::vector<ixc::ChatTurnText>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return ixc::Status(ixc::StatusCode::kNotFound, "cannot open history file " + path);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (64u << 20)) text.append(buf, n);
  std::fclose(f);
  json j = json::parse(text, nullptr, false);
  const std::string bad = path + ": expected a JSON list of [user, assistant] pairs";
  if (j.is_discarded() || !j.is_array()) return ixc::InvalidArgument(bad);
  for (const auto& turn : j) {
    if (!turn.is_array() || turn.size() != 2 || !turn[0].is_string() || !turn[1].is_string()) return ixc::InvalidArgument(bad);
    out->push_back({turn[0].get<std::string>(), turn[1].get<std::string>()});
  }
  return Status::Ok();
}

void AddChatFlags(ixc::cli::FlagSet& fs, ChatArgs& a) {
  using ixc::cli::ParseFloat;
  using ixc::cli::ParseInt;
  auto& g = a.req.generation;
  fs.Add({"--model", "-m", "DIR", "model folder (Hugging Face layout: config.json, *.safetensors or *.bin, tokenizer.model)",
          [&](const std::string& v) { a.model_dir = v; return Status::Ok(); }});
  fs.Add({"--prompt", "-p", "TEXT", "the question; without it, an interactive chat starts",
          [&](const std::string& v) { a.prompt = v; a.has_prompt = true; return Status::Ok(); }});
  fs.Add({"--image", "", "PATH", "an image (repeatable; matched to <ImageHere> markers in order; one image needs none)",
          [&](const std::string& v) { a.req.images.push_back(v); return Status::Ok(); }});
  fs.Add({"--hd-num", "", "N", "max 560x560 tiles per image (default 24; the reference uses 6 whenever several images are given)",
          [&](const std::string& v) { return ParseInt("--hd-num", v, 1, 100, &a.req.hd_num); }});
  fs.Add({"--system", "", "TEXT", "system text placed before the conversation",
          [&](const std::string& v) { a.system = v; return Status::Ok(); }});
  fs.Add({"--meta", "", "", "use the reference chat()'s meta instruction as system text",
          [&](const std::string&) { a.meta = true; return Status::Ok(); }});
  fs.Add({"--history", "", "FILE.json", "earlier turns: a JSON list of [user, assistant] pairs",
          [&](const std::string& v) { a.history_file = v; return Status::Ok(); }});
  fs.Add({"--mode", "", "MODE", "base (default), web or write: which task adapter runs",
          [&](const std::string& v) { a.mode = v; return Status::Ok(); }});
  fs.Add({"--greedy", "", "", "greedy decoding (no sampling)",
          [&](const std::string&) { g.do_sample = false; return Status::Ok(); }});
  fs.Add({"--beams", "", "N", "beam search with N beams (implies no sampling unless --sample is given after it)",
          [&](const std::string& v) { g.do_sample = false; return ParseInt("--beams", v, 1, 16, &g.num_beams); }});
  fs.Add({"--sample", "", "", "sample (the reference chat() default); with --beams: beam sampling",
          [&](const std::string&) { g.do_sample = true; return Status::Ok(); }});
  fs.Add({"--preset", "", "NAME", "readme: the model card's settings (3 beams, no sampling, meta instruction on)",
          [&](const std::string& v) {
            if (v != "readme") return ixc::InvalidArgument("unknown preset '" + v + "' (readme)");
            g.do_sample = false;
            g.num_beams = 3;
            a.meta = true;
            return Status::Ok();
          }});
  fs.Add({"--temperature", "", "T", "sampling temperature (default 1.0)",
          [&](const std::string& v) { return ParseFloat("--temperature", v, 1e-4, 100, &g.temperature); }});
  fs.Add({"--top-p", "", "P", "nucleus sampling mass (default 0.8)",
          [&](const std::string& v) { return ParseFloat("--top-p", v, 1e-6, 1, &g.top_p); }});
  fs.Add({"--top-k", "", "K", "keep the K most likely tokens when sampling (default 50; 0 = off)",
          [&](const std::string& v) { return ParseInt("--top-k", v, 0, 1 << 20, &g.top_k); }});
  fs.Add({"--repetition-penalty", "", "R", "penalty on already generated tokens (default 1.005)",
          [&](const std::string& v) { return ParseFloat("--repetition-penalty", v, 1e-3, 100, &g.repetition_penalty); }});
  fs.Add({"--seed", "", "S", "random seed for sampling (default 0)",
          [&](const std::string& v) {
            unsigned long long s;
            Status st = ixc::cli::ParseU64("--seed", v, &s);
            g.seed = s;
            return st;
          }});
  fs.Add({"--max-new-tokens", "-n", "N", "generate at most N tokens (default 1024)",
          [&](const std::string& v) { return ParseInt("-n", v, 1, 1 << 20, &g.max_new_tokens); }});
  fs.Add({"--threads", "-t", "N", "worker threads (default: all cores)",
          [&](const std::string& v) { return ParseInt("--threads", v, 1, 1024, &a.threads); }});
  fs.Add({"--json", "", "", "print one JSON object (text, tokens, prompt_tokens, timings, ...) instead of the text",
          [&](const std::string&) { a.json_out = true; return Status::Ok(); }});
  fs.Add({"--dump-tensors", "", "OUT", "write last_logits (and image_embeds, pixels0) as safetensors",
          [&](const std::string& v) { a.dump_path = v; a.req.capture_tensors = true; return Status::Ok(); }});
}

json ResultJson(const ixc::ChatResult& r) {
  json j;
  j["text"] = r.text;
  j["tokens"] = r.tokens;
  j["prompt_tokens"] = r.prompt_tokens;
  j["prompt_text_ids"] = r.prompt_text_ids;
  j["image_tokens"] = r.image_tokens;
  json grids = json::array();
  for (auto [rows, cols] : r.grids) grids.push_back({rows, cols});
  j["grids"] = grids;
  j["stop_reason"] = r.stop_reason;
  const auto& t = r.timings;
  j["timings"] = {{"load_media_ms", t.load_media_ms},
                  {"encode_images_ms", t.encode_images_ms},
                  {"prefill_ms", t.prefill_ms},
                  {"decode_ms", t.decode_ms},
                  {"decoded_tokens", t.decoded_tokens},
                  {"prefill_tokens_per_s", t.prefill_ms > 0 ? r.prompt_tokens * 1000.0 / t.prefill_ms : 0.0},
                  {"decode_tokens_per_s", t.decode_ms > 0 ? t.decoded_tokens * 1000.0 / t.decode_ms : 0.0}};
  return j;
}

int RunInteractive(ixc::Session& session, ChatArgs& a) {
  std::vector<ixc::ChatTurnText> history = a.req.history;
  bool images_pending = !a.req.images.empty();
  std::fprintf(stderr, "Interactive chat. Ctrl-C stops an answer; Ctrl-D or /exit quits, /reset clears the history.\n");
  std::string line;
  while (true) {
    std::fprintf(stderr, "\n> ");
    g_interrupted = false;
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history.clear();
      continue;
    }
    if (line.empty()) continue;
    ixc::ChatRequest req = a.req;
    req.history = history;
    req.query = line;
    if (!images_pending) req.images.clear();
    std::string reply;
    auto res = session.Chat(req, [&](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return !g_interrupted.load();
    });
    std::printf("\n");
    if (!res.ok()) {
      std::fprintf(stderr, "ixc: error: %s\n", res.status().message().c_str());
      continue;
    }
    if (res->stop_reason == "cancelled") std::fprintf(stderr, "[stopped]\n");
    history.push_back({line, res->text});
  }
  return 0;
}

int RunChat(int argc, char** argv) {
  ChatArgs a;
  ixc::cli::FlagSet fs;
  AddChatFlags(fs, a);
  bool help = false;
  fs.Add({"--help", "-h", "", "show this help", [&](const std::string&) { help = true; return Status::Ok(); }});
  Status s = fs.Parse(argc, argv, 2);
  if (help) {
    std::printf("usage: ixc chat -m MODEL_DIR [-p TEXT] [options]\n\n%s", fs.Help().c_str());
    return 0;
  }
  if (!s.ok()) return Fail(s);
  if (a.model_dir.empty()) return Fail(ixc::InvalidArgument("no model: pass -m MODEL_DIR"));
  if (a.meta && !a.system.empty()) return Fail(ixc::InvalidArgument("--meta and --system are exclusive"));
  auto mode = ixc::ParseTaskMode(a.mode);
  if (!mode.ok()) return Fail(mode.status());
  a.req.mode = *mode;
  a.req.system = a.meta ? ixc::ChatMetaInstruction() : a.system;
  if (!a.history_file.empty()) {
    s = ReadHistory(a.history_file, &a.req.history);
    if (!s.ok()) return Fail(s);
  }
  if (a.json_out && !a.has_prompt) return Fail(ixc::InvalidArgument("--json needs -p (one-shot mode)"));

  auto model = ixc::Model::Load({a.model_dir});
  if (!model.ok()) return Fail(model.status());
  ixc::Session session(**model, {a.threads});

  std::signal(SIGINT, OnSigint);
  if (!a.has_prompt) return RunInteractive(session, a);

  a.req.query = a.prompt;
  const bool stream = !a.json_out;
  auto res = session.Chat(a.req, [&](std::string_view piece) {
    if (stream) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return !g_interrupted.load();
  });
  if (!res.ok()) return Fail(res.status());
  if (!a.dump_path.empty()) {
    s = ixc::SaveDebugTensors(*res, a.dump_path);
    if (!s.ok()) return Fail(s);
  }
  if (a.json_out) {
    std::printf("%s\n", ResultJson(*res).dump().c_str());
  } else {
    std::printf("\n");
  }
  return res->stop_reason == "cancelled" ? 130 : 0;
}

void Usage() {
  std::printf(
      "ixc: InternLM-XComposer-2.5 on the CPU\n\n"
      "usage: ixc COMMAND [options]\n\n"
      "commands:\n"
      "  chat    ask a question (one-shot with -p, interactive otherwise)\n\n"
      "Run 'ixc COMMAND --help' for the options of a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    Usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "chat") return RunChat(argc, argv);
  std::fprintf(stderr, "ixc: error: unknown command '%s' (see ixc --help)\n", cmd.c_str());
  return 2;
}
