// ixc serve: flags -> server::Server; SIGINT/SIGTERM stop it gracefully (requests in flight finish).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "commands.h"
#include "common.h"
#include "server/server.h"

namespace ixc::cli {

int RunServe(int argc, char** argv) {
  server::ServerOptions o;
  std::string model_dir;
  bool help = false, check_weights = true;
  FlagSet fs;
  fs.Add({"--model", "-m", "MODEL", "model folder or GGUF file (default: $IXC_MODEL, else the bundled demo model)",
          [&](const std::string& v) { return ParsePath("-m", v, &model_dir); }});
  fs.Add({"--host", "", "ADDR", "address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
          [&](const std::string& v) { o.host = v; return Status::Ok(); }});
  fs.Add({"--port", "", "N", "port (default 8080; 0: any free port, printed at start)",
          [&](const std::string& v) { return ParseInt("--port", v, 0, 65535, &o.port); }});
  fs.Add({"--parallel", "", "N", "requests computed at once, each in its own slot with its own KV cache (default 1)",
          [&](const std::string& v) { return ParseInt("--parallel", v, 1, 64, &o.parallel); }});
  fs.Add({"--threads", "-t", "N", "worker threads shared by all slots (default: all cores)",
          [&](const std::string& v) { return ParseInt("--threads", v, 1, 1024, &o.threads); }});
  fs.Add(KvTypeFlag(&o.kv_type));
  fs.Add(NoCheckWeightsFlag(&check_weights));
  fs.Add({"--api-key", "", "KEY", "require \"Authorization: Bearer KEY\" on /v1/* (default: $IXC_API_KEY, else none)",
          [&](const std::string& v) { o.api_key = v; return Status::Ok(); }});
  fs.Add({"--allow-local-files", "", "DIR", "accept file:// image and video URLs under DIR (default: only data: URLs)",
          [&](const std::string& v) {
            std::error_code ec;
            if (!std::filesystem::is_directory(v, ec)) return InvalidArgument("--allow-local-files: " + v + " is not a folder");
            o.limits.local_files_dir = v;
            return Status::Ok();
          }});
  fs.Add({"--name", "", "NAME", "the model id /v1/models lists (default: internlm-xcomposer2d5-7b)",
          [&](const std::string& v) { o.model_name = v; return Status::Ok(); }});
  fs.Add({"--queue", "", "N", "requests that may wait for a slot; more get 503 (default 16)",
          [&](const std::string& v) { return ParseInt("--queue", v, 0, 4096, &o.max_queue); }});
  fs.Add({"--max-body", "", "MB", "largest request body in MiB (default 64)",
          [&](const std::string& v) {
            int mb = 0;
            Status s = ParseInt("--max-body", v, 1, 4096, &mb);
            o.max_body_bytes = int64_t{mb} << 20;
            return s;
          }});
  fs.Add({"--max-tokens", "", "N", "the most max_tokens a request may ask for (default 4096)",
          [&](const std::string& v) { return ParseInt("--max-tokens", v, 1, 1 << 20, &o.limits.max_tokens); }});
  fs.Add({"--max-media", "", "N", "images and videos per request (default 16)",
          [&](const std::string& v) { return ParseInt("--max-media", v, 0, 64, &o.limits.max_media); }});
  fs.Add({"--help", "-h", "", "show this help", [&](const std::string&) { help = true; return Status::Ok(); }});
  Status s = fs.Parse(argc, argv, 2);
  if (help) {
    std::printf("usage: ixc serve [-m MODEL] [--host ADDR] [--port N] [--parallel N] [--api-key KEY]\n\n"
                "An OpenAI-compatible server: POST /v1/chat/completions (text, image_url and video_url parts,\n"
                "streaming), GET /v1/models, /health, /metrics, and a chat page at /.\n\n%s",
                fs.Help().c_str());
    return 0;
  }
  if (!s.ok()) return Fail(s);
  if (o.api_key.empty()) {
    const char* env = std::getenv("IXC_API_KEY");
    if (env && *env) o.api_key = env;
  }

  // Stop on SIGINT/SIGTERM: the signals are blocked in every thread and taken by one waiting thread, which may
  // call into the server (a signal handler may not).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  CommonArgs ca;
  ca.model_dir = model_dir;
  ca.check_weights = check_weights;
  auto model = LoadModel(ca);
  if (!model.ok()) return Fail(model.status());
  server::Server srv(**model, o);
  if (Status b = srv.Bind(); !b.ok()) return Fail(b);
  std::fprintf(stderr, "ixc: serving %s on http://%s:%d (%d slot%s%s)\n", (*model)->Describe().c_str(), o.host.c_str(),
               srv.port(), o.parallel, o.parallel == 1 ? "" : "s", o.api_key.empty() ? "" : ", API key required");
  std::fflush(stderr);
  std::atomic<bool> finished{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!finished) {
      std::fprintf(stderr, "ixc: %s: finishing the requests in flight\n", sig == SIGINT ? "interrupted" : "terminated");
      srv.Stop();
    }
  });
  Status r = srv.Run();
  // Run also returns when the listener fails; wake the waiter so it can be joined.
  finished = true;
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (!r.ok()) return Fail(r);
  std::fprintf(stderr, "ixc: stopped\n");
  return 0;
}

}  // namespace ixc::cli
