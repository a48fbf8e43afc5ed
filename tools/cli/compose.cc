// ixc write-article and ixc webpage: the reference's composition methods (spec §5.2–5.4).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "common.h"
#include "progress.h"

namespace ixc::cli {

namespace {

// An output file checked before any work: a temporary file is created beside it now, so an unwritable folder or a
// directory in the way fails at once rather than after a long generation; Commit writes the text into it and
// renames it over the path. Dropped uncommitted, the temporary file is removed.
class PendingOutput {
 public:
  static Result<std::unique_ptr<PendingOutput>> Create(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
      return InvalidArgument("cannot write " + path + ": it exists and is not a regular file");
    }
    std::string tmp = path + ".partial-XXXXXX";
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0) return InvalidArgument("cannot write " + path + ": " + std::strerror(errno));
    ::close(fd);
    return std::unique_ptr<PendingOutput>(new PendingOutput(path, tmp));
  }
  ~PendingOutput() {
    if (!committed_) ::unlink(tmp_.c_str());
  }
  Status Commit(const std::string& text) {
    std::ofstream out(tmp_, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out || std::rename(tmp_.c_str(), path_.c_str()) != 0) return Status(StatusCode::kInternal, "cannot write " + path_);
    committed_ = true;
    return Status::Ok();
  }

 private:
  PendingOutput(std::string path, std::string tmp) : path_(std::move(path)), tmp_(std::move(tmp)) {}
  std::string path_, tmp_;
  bool committed_ = false;
};

// Runs one composition request, streaming to stderr-free stdout unless JSON is asked for.
Result<ChatResult> Run(Session& s, ChatRequest r, bool stream) {
  ChatProgressLine progress = ChatProgressLine::Terminal(stream);
  r.progress = progress.callback();
  auto res = s.Chat(r, progress.Wrap(StdoutStreamer(stream)));
  progress.Clear();
  if (res.ok() && stream) std::printf("\n");
  return res;
}

}  // namespace

int RunWriteArticle(int argc, char** argv) {
  CommonArgs common;
  std::string prompt, out_path;
  bool meta = false;
  ChatRequest media;
  GenerationOptions gen = MakeArticleRequest("", {}, false).generation;
  FlagSet fs;
  AddCommonFlags(fs, common);
  fs.Add({"--prompt", "-p", "TEXT", "what to write", [&](const std::string& v) { prompt = v; return Status::Ok(); }});
  AddMediaFlags(fs, media);
  fs.Add({"--meta", "", "", "use write_artical's meta instruction", [&](const std::string&) { meta = true; return Status::Ok(); }});
  fs.Add({"--output", "-o", "FILE", "also write the article to FILE", [&](const std::string& v) { out_path = v; return Status::Ok(); }});
  AddGenerationFlags(fs, gen);
  Status s = fs.Parse(argc, argv, 2);
  if (common.help) {
    std::printf("usage: ixc write-article -m MODEL_DIR -p TEXT [--image PATH]... [-o FILE] [options]\n\n"
                "Runs the reference's write_artical: the write adapter (lora_sft + lora_dpo), sampling with top-p 0.8,\n"
                "top-k 40, temperature 1.0, repetition penalty 1.005, up to 8192 tokens in all, stopping at the end of\n"
                "the turn. History is not used.\n\n%s", fs.Help().c_str());
    return 0;
  }
  if (!s.ok()) return Fail(s);
  if (prompt.empty()) return Fail(InvalidArgument("write-article needs -p TEXT"));
  std::unique_ptr<PendingOutput> output;
  if (!out_path.empty()) {
    auto o = PendingOutput::Create(out_path);
    if (!o.ok()) return Fail(o.status());
    output = std::move(o).value();
  }
  auto model = LoadModel(common);
  if (!model.ok()) return Fail(model.status());
  ChatRequest r = MakeArticleRequest(prompt, media.images, meta);
  r.hd_num = media.hd_num;
  r.generation = gen;
  Session session(**model, {common.threads, common.precision, common.kv_type});
  InstallInterruptHandler();
  auto res = Run(session, r, !common.json_out);
  if (!res.ok()) return Fail(res.status());
  if (output) {
    s = output->Commit(res->text);
    if (!s.ok()) return Fail(s);
    if (!common.json_out) std::fprintf(stderr, "ixc: wrote %s\n", out_path.c_str());
  }
  if (common.json_out) std::printf("%s\n", ResultJson(*res).dump().c_str());
  return ExitCodeFor(*res);
}

int RunWebpage(int argc, char** argv) {
  CommonArgs common;
  std::string from = "instruction", prompt, resume_path, out_path;
  ChatRequest media;
  GenerationOptions gen = MakeWebpageRequest("", {}).generation;
  FlagSet fs;
  AddCommonFlags(fs, common);
  fs.Add({"--from", "", "KIND", "instruction (default), resume or screenshot",
          [&](const std::string& v) { from = v; return Status::Ok(); }});
  fs.Add({"--prompt", "-p", "TEXT", "the page to build (--from instruction)", [&](const std::string& v) { prompt = v; return Status::Ok(); }});
  fs.Add({"--resume", "", "FILE.md", "a markdown resume (--from resume)", [&](const std::string& v) { resume_path = v; return Status::Ok(); }});
  AddMediaFlags(fs, media);
  fs.Add({"--output", "-o", "FILE.html", "where to write the page (required)", [&](const std::string& v) { out_path = v; return Status::Ok(); }});
  AddGenerationFlags(fs, gen);
  Status s = fs.Parse(argc, argv, 2);
  if (common.help) {
    std::printf(
        "usage: ixc webpage -m MODEL_DIR --from instruction -p TEXT -o OUT.html\n"
        "       ixc webpage -m MODEL_DIR --from resume --resume CV.md -o OUT.html\n"
        "       ixc webpage -m MODEL_DIR --from screenshot --image SHOT.png -o OUT.html\n\n"
        "Runs the reference's write_webpage / resume_2_webpage / screen_2_webpage: the web adapter, beam sampling\n"
        "with 2 beams, repetition penalty 3.0, up to 4800 new tokens, stopping at eos only; image URLs from\n"
        "source.unsplash.com are rewritten to picsum.photos. The resume flow writes the page, then asks for its\n"
        "JavaScript and merges it. The reference's merge pastes a Python list's repr before every </script>; ixc\n"
        "does what it evidently meant: the script bodies go into one <script> element before </body>.\n\n%s",
        fs.Help().c_str());
    return 0;
  }
  if (!s.ok()) return Fail(s);
  if (out_path.empty()) return Fail(InvalidArgument("webpage needs -o OUT.html"));
  auto output = PendingOutput::Create(out_path);
  if (!output.ok()) return Fail(output.status());
  std::string instruction;
  if (from == "instruction") {
    if (prompt.empty()) return Fail(InvalidArgument("--from instruction needs -p TEXT"));
    instruction = prompt;
  } else if (from == "resume") {
    if (resume_path.empty()) return Fail(InvalidArgument("--from resume needs --resume FILE.md"));
    auto md = ReadTextFile(resume_path, 1u << 20);
    if (!md.ok()) return Fail(md.status());
    if (md->find_first_not_of(" \t\r\n") == std::string::npos) {
      return Fail(InvalidArgument("the resume " + resume_path + " is empty"));
    }
    instruction = ResumePageInstruction(*md);
  } else if (from == "screenshot") {
    if (media.images.empty()) return Fail(InvalidArgument("--from screenshot needs --image SHOT"));
    instruction = ScreenshotInstruction();  // the reference replaces the user's text with its own
  } else {
    return Fail(InvalidArgument("--from must be instruction, resume or screenshot"));
  }
  auto model = LoadModel(common);
  if (!model.ok()) return Fail(model.status());
  Session session(**model, {common.threads, common.precision, common.kv_type});
  InstallInterruptHandler();
  ChatRequest r = MakeWebpageRequest(instruction, media.images);
  r.hd_num = media.hd_num;
  r.generation = gen;
  const bool stream = !common.json_out && r.generation.num_beams == 1;
  if (!stream && !common.json_out) std::fprintf(stderr, "ixc: generating the page (beam search; this prints at the end)...\n");
  auto res = Run(session, r, stream);
  if (!res.ok()) return Fail(res.status());
  std::string html = res->text;
  if (from == "resume" && res->stop_reason != "cancelled") {
    ChatRequest js_req = MakeWebpageRequest(JavaScriptInstruction(html), media.images);
    js_req.hd_num = media.hd_num;
    js_req.generation = gen;
    std::fprintf(stderr, "ixc: generating the page's JavaScript...\n");
    auto js = Run(session, js_req, stream);
    if (!js.ok()) return Fail(js.status());
    html = MergeJavaScript(html, js->text);
  }
  html = RewriteImageUrls(html);
  s = (*output)->Commit(html);
  if (!s.ok()) return Fail(s);
  if (common.json_out) {
    nlohmann::json j = ResultJson(*res);
    j["html"] = html;
    j["output"] = out_path;
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (!stream) std::printf("%s\n", html.c_str());
    std::fprintf(stderr, "ixc: wrote %s\n", out_path.c_str());
  }
  return ExitCodeFor(*res);
}

}  // namespace ixc::cli
