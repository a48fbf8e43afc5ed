// ixc chat: one-shot (-p) or interactive multi-turn chat.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "progress.h"

namespace ixc::cli {

namespace {

using json = nlohmann::json;

Status ReadHistory(const std::string& path, std::vector<ChatTurnText>* out) {
  auto text = ReadTextFile(path, 64u << 20);
  if (!text.ok()) return text.status();
  auto turns = ParseChatHistory(*text, path);
  if (!turns.ok()) return turns.status();
  *out = std::move(turns).value();
  return Status::Ok();
}

const char kInteractiveHelp[] =
    "Commands:\n"
    "  /image PATH   add a picture to the next question\n"
    "  /video PATH   add a video to the next question\n"
    "  /reset        forget the conversation and its pictures\n"
    "  /help         this list\n"
    "  /exit         quit (also /quit, Ctrl-D)\n"
    "Ctrl-C stops an answer. Anything else is sent to the model.\n";

int RunInteractive(Session& session, const ChatRequest& base) {
  std::vector<ChatTurnText> history = base.history;
  // Pictures already placed in the conversation (in marker order), and those waiting for the next question. A single
  // --image waits like one added with /image: alone, the engine places it as ixc chat -p does; with more, every
  // picture gets its <ImageHere> marker (several --image take the markers the questions give them).
  std::vector<MediaInput> images, pending;
  if (base.images.size() == 1) {
    pending = base.images;
  } else {
    images = base.images;
  }
  int unmarked_turn = -1;  // the turn whose lone picture the engine placed (it needs a marker once there are more)
  std::fprintf(stderr, "Interactive chat. /help lists the commands; Ctrl-C stops an answer; Ctrl-D or /exit quits.\n");
  std::string line;
  while (true) {
    std::fprintf(stderr, "\n> ");
    g_interrupted = false;
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/help") {
      std::fputs(kInteractiveHelp, stderr);
      continue;
    }
    if (line == "/reset") {
      history.clear();
      images.clear();
      pending.clear();
      unmarked_turn = -1;
      continue;
    }
    if (line.rfind("/image ", 0) == 0 || line.rfind("/video ", 0) == 0) {
      const bool video = line[1] == 'v';
      std::string path = line.substr(7);
      while (!path.empty() && path.front() == ' ') path.erase(path.begin());
      while (!path.empty() && path.back() == ' ') path.pop_back();
      std::error_code ec;
      if (path.empty() || !std::filesystem::is_regular_file(path, ec)) {
        std::fprintf(stderr, "ixc: %s is not a file\n", path.empty() ? "(nothing)" : path.c_str());
        continue;
      }
      pending.push_back(MediaInput(path, video));
      std::fprintf(stderr, "[%s %s added to the next question]\n", video ? "video" : "image", path.c_str());
      continue;
    }
    if (line.empty()) continue;
    if (line[0] == '/' && line.size() > 1 && line.find(' ') == std::string::npos) {
      std::fprintf(stderr, "ixc: unknown command %s (/help lists them)\n", line.c_str());
      continue;
    }
    std::string query = line;
    std::vector<ChatTurnText> turns = history;
    int placed_turn = unmarked_turn;
    if (!pending.empty()) {
      if (images.empty() && pending.size() == 1) {
        placed_turn = static_cast<int>(history.size());
      } else {
        for (size_t i = 0; i < pending.size(); ++i) query = "<ImageHere>" + query;
        if (placed_turn >= 0) turns[placed_turn].user = "<ImageHere>" + turns[placed_turn].user;
        placed_turn = -1;
      }
    }
    ChatRequest req = base;
    req.history = turns;
    req.query = query;
    req.images = images;
    req.images.insert(req.images.end(), pending.begin(), pending.end());
    ChatProgressLine progress = ChatProgressLine::Terminal(true);
    req.progress = progress.callback();
    auto res = session.Chat(req, progress.Wrap(StdoutStreamer(true)));
    progress.Clear();
    std::printf("\n");
    if (!res.ok()) {
      // The pictures stay waiting: the question can be asked again (or /reset).
      std::fprintf(stderr, "ixc: error: %s\n", res.status().message().c_str());
      continue;
    }
    if (res->stop_reason == "cancelled") std::fprintf(stderr, "[stopped]\n");
    // The turn stays in the history (a stopped answer as far as it got), so the conversation goes on.
    history = std::move(turns);
    history.push_back({query, res->text});
    images = std::move(req.images);
    pending.clear();
    unmarked_turn = placed_turn;
  }
  return 0;
}

}  // namespace

int RunChat(int argc, char** argv) {
  CommonArgs common;
  ChatRequest req;
  std::string prompt, system, history_file, mode = "base", dump_path;
  bool has_prompt = false, meta = false;
  FlagSet fs;
  AddCommonFlags(fs, common);
  fs.Add({"--prompt", "-p", "TEXT", "the question; without it, an interactive chat starts (/help there lists its commands)",
          [&](const std::string& v) { prompt = v; has_prompt = true; return Status::Ok(); }});
  AddMediaFlags(fs, req);
  fs.Add({"--system", "", "TEXT", "system text placed before the conversation",
          [&](const std::string& v) { system = v; return Status::Ok(); }});
  fs.Add({"--meta", "", "", "use the reference chat()'s meta instruction as system text",
          [&](const std::string&) { meta = true; return Status::Ok(); }});
  fs.Add({"--history", "", "FILE.json", "earlier turns: a JSON list of [user, assistant] pairs",
          [&](const std::string& v) { history_file = v; return Status::Ok(); }});
  fs.Add({"--mode", "", "MODE", "base (default), web or write: which task adapter runs",
          [&](const std::string& v) { mode = v; return Status::Ok(); }});
  AddGenerationFlags(fs, req.generation);
  fs.Add({"--ctx-size", "-c", "N", "most tokens a prompt (text and images) may have (default: the model's max_length, "
          "16384, where the reference cuts); raise it for long contexts, as far as memory allows (see ixc info)",
          [&](const std::string& v) {
            int n = 0;
            Status st = ParseInt("--ctx-size", v, 1, 1 << 20, &n);
            req.max_length = n;
            return st;
          }});
  fs.Add({"--preset", "", "NAME", "readme: the model card's settings (3 beams, no sampling, meta instruction on)",
          [&](const std::string& v) {
            if (v != "readme") return InvalidArgument("unknown preset '" + v + "' (readme)");
            req.generation.do_sample = false;
            req.generation.num_beams = 3;
            meta = true;
            return Status::Ok();
          }});
  fs.Add({"--dump-tensors", "", "OUT", "write last_logits (and image_embeds, pixels0) as safetensors",
          [&](const std::string& v) { dump_path = v; req.capture_tensors = true; return Status::Ok(); }});
  Status s = fs.Parse(argc, argv, 2);
  if (common.help) {
    std::printf("usage: ixc chat -m MODEL_DIR [-p TEXT] [options]\n\n"
                "Defaults follow the reference chat(): sampling with top-p 0.8, top-k 50, temperature 1.0,\n"
                "repetition penalty 1.005, up to 1024 new tokens.\n\n%s", fs.Help().c_str());
    return 0;
  }
  if (!s.ok()) return Fail(s);
  if (meta && !system.empty()) return Fail(InvalidArgument("--meta and --system are exclusive"));
  auto m = ParseTaskMode(mode);
  if (!m.ok()) return Fail(m.status());
  req.mode = *m;
  req.system = meta ? ChatMetaInstruction() : system;
  if (!history_file.empty()) {
    s = ReadHistory(history_file, &req.history);
    if (!s.ok()) return Fail(s);
  }
  if (common.json_out && !has_prompt) return Fail(InvalidArgument("--json needs -p (one-shot mode)"));

  auto model = LoadModel(common);
  if (!model.ok()) return Fail(model.status());
  Session session(**model, {common.threads, common.precision, common.kv_type});
  InstallInterruptHandler();
  if (!has_prompt) return RunInteractive(session, req);

  req.query = prompt;
  ChatProgressLine progress = ChatProgressLine::Terminal(!common.json_out);
  req.progress = progress.callback();
  auto res = session.Chat(req, progress.Wrap(StdoutStreamer(!common.json_out)));
  progress.Clear();
  if (!res.ok()) return Fail(res.status());
  if (!dump_path.empty()) {
    s = SaveDebugTensors(*res, dump_path);
    if (!s.ok()) return Fail(s);
  }
  if (common.json_out) std::printf("%s\n", ResultJson(*res).dump().c_str());
  else std::printf("\n");
  return ExitCodeFor(*res);
}

}  // namespace ixc::cli
