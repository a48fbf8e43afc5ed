#include "server/server.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/metrics.h"
#include "server/web_ui.h"

namespace ixc::server {

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string NewCompletionId() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  char buf[40];
  std::snprintf(buf, sizeof buf, "chatcmpl-%016llx%08llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng() & 0xffffffffu));
  return buf;
}

// One request from arrival to its last byte. The slot's worker writes; the HTTP handler reads.
struct Job {
  ChatCall call;
  std::string key;  // conversation affinity
  Clock::time_point arrived = Clock::now();
  std::string id = NewCompletionId();
  int64_t created = static_cast<int64_t>(std::time(nullptr));

  std::mutex mu;
  std::condition_variable cv;
  std::string pending;          // reply text not yet sent
  bool started = false;         // the prompt is being computed: its media were good
  bool done = false;
  std::optional<ApiError> error;
  std::string finish_reason;
  Usage usage;
  std::atomic<bool> cancelled{false};  // the client went away
};

struct Slot {
  explicit Slot(const Model& m, const SessionOptions& o) : session(m, o) {}
  Session session;
  std::shared_ptr<Job> job;  // the request it runs, or null when idle
  std::string key;           // the conversation its KV cache holds
  uint64_t last_used = 0;
  std::condition_variable cv;
  std::thread worker;
};

}  // namespace

struct Server::Impl {
  Impl(const Model& m, ServerOptions o) : model(m), options(std::move(o)) {}

  const Model& model;
  ServerOptions options;
  httplib::Server http;
  Metrics metrics;
  int port = -1;

  std::mutex mu;  // guards the queue, the slots' job/key fields, stopping
  std::deque<std::shared_ptr<Job>> queue;
  std::vector<std::unique_ptr<Slot>> slots;
  uint64_t tick = 0;
  bool stopping = false;
  std::atomic<bool> shutting_down{false};

  void StartWorkers();
  void StopWorkers();
  void WorkerLoop(Slot* slot);
  void RunJob(Slot* slot, Job* job);
  void DispatchLocked();
  void UpdateGaugesLocked();
  void Routes();
  void HandleChat(const httplib::Request& req, httplib::Response& res);
  bool Authorized(const httplib::Request& req, httplib::Response& res);
  void SendError(httplib::Response& res, const ApiError& e);
};

void Server::Impl::SendError(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(ErrorJson(e), "application/json");
}

bool Server::Impl::Authorized(const httplib::Request& req, httplib::Response& res) {
  if (options.api_key.empty()) return true;
  if (req.get_header_value("Authorization") == "Bearer " + options.api_key) return true;
  ApiError e;
  e.status = 401;
  e.code = "invalid_api_key";
  e.message = req.has_header("Authorization") ? "the API key is not valid" : "an API key is required (Authorization: Bearer KEY)";
  SendError(res, e);
  metrics.CountRequest(401);
  return false;
}

// Gives queued jobs to idle slots, oldest job first: to the slot that holds the job's conversation when it is
// idle, else to the slot idle the longest.
void Server::Impl::DispatchLocked() {
  for (auto it = queue.begin(); it != queue.end();) {
    Slot* best = nullptr;
    for (auto& s : slots) {
      if (s->job) continue;
      if (s->key == (*it)->key) {
        best = s.get();
        break;
      }
      if (!best || s->last_used < best->last_used) best = s.get();
    }
    if (!best) break;
    best->job = *it;
    best->key = (*it)->key;
    best->last_used = ++tick;
    best->cv.notify_one();
    it = queue.erase(it);
  }
  UpdateGaugesLocked();
}

void Server::Impl::UpdateGaugesLocked() {
  int64_t busy = 0;
  for (auto& s : slots) busy += s->job ? 1 : 0;
  metrics.SetBusySlots(busy);
  metrics.SetQueueDepth(static_cast<int64_t>(queue.size()));
}

void Server::Impl::StartWorkers() {
  SessionOptions so;
  so.threads = options.threads;
  so.precision = options.precision;
  so.kv_type = options.kv_type;
  // The slots decode in step: one batched forward per token for all streams (README "Server").
  if (options.parallel > 1) so.decode_group = std::make_shared<DecodeGroup>();
  for (int i = 0; i < options.parallel; ++i) slots.push_back(std::make_unique<Slot>(model, so));
  for (auto& s : slots) s->worker = std::thread([this, p = s.get()] { WorkerLoop(p); });
}

void Server::Impl::StopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
    for (auto& s : slots) s->cv.notify_all();
  }
  for (auto& s : slots)
    if (s->worker.joinable()) s->worker.join();
}

void Server::Impl::WorkerLoop(Slot* slot) {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    slot->cv.wait(lock, [&] { return slot->job || stopping; });
    if (!slot->job) return;  // stopping, and nothing to do
    std::shared_ptr<Job> job = slot->job;
    lock.unlock();
    RunJob(slot, job.get());
    lock.lock();
    slot->job.reset();
    DispatchLocked();
  }
}

void Server::Impl::RunJob(Slot* slot, Job* job) {
  ChatRequest req = job->call.request;
  Utf8Stream utf8;
  StopScanner stops(job->call.stop);
  auto publish = [&](const std::string& text) {
    if (text.empty()) return;
    std::lock_guard<std::mutex> lock(job->mu);
    job->pending += text;
    job->cv.notify_all();
  };
  req.progress = [&](const ChatProgress& p) {
    if (p.stage != ChatProgress::Stage::kPrefill) return;
    std::lock_guard<std::mutex> lock(job->mu);
    if (!job->started) {
      job->started = true;
      job->cv.notify_all();
    }
  };
  bool first = true;
  Clock::time_point last = job->arrived;
  auto on_text = [&](std::string_view piece) {
    const Clock::time_point now = Clock::now();
    if (first) {
      metrics.ObserveFirstToken(SecondsBetween(job->arrived, now));
      first = false;
    } else {
      metrics.ObserveTokenInterval(SecondsBetween(last, now));
    }
    last = now;
    publish(stops.Push(utf8.Push(piece)));
    return !stops.stopped() && !job->cancelled.load();
  };
  // The worker thread is the outermost frame here: whatever the engine throws (an allocation failure) becomes this
  // request's error instead of ending the process.
  Result<ChatResult> result = Internal("no result");
  try {
    result = slot->session.Chat(req, on_text);
  } catch (const std::bad_alloc&) {
    result = ResourceExhausted("out of memory while answering this request");
  } catch (const std::exception& e) {
    result = Internal(std::string("internal error: ") + e.what());
  }
  std::lock_guard<std::mutex> lock(job->mu);
  if (!result.ok()) {
    job->error = ErrorFromStatus(result.status());
  } else {
    job->pending += stops.Push(utf8.Finish());
    job->pending += stops.Finish();
    job->finish_reason = stops.stopped() || result->stop_reason == "stop_token" ? "stop" : "length";
    job->usage.prompt_tokens = result->prompt_tokens;
    job->usage.completion_tokens = static_cast<int64_t>(result->tokens.size());
    metrics.AddTokens(result->prompt_tokens, static_cast<int64_t>(result->tokens.size()));
  }
  job->started = true;
  job->done = true;
  job->cv.notify_all();
}

void Server::Impl::HandleChat(const httplib::Request& req, httplib::Response& res) {
  if (!Authorized(req, res)) return;
  auto job = std::make_shared<Job>();
  if (auto e = ParseChatCompletion(req.body, options.limits, &job->call)) {
    SendError(res, *e);
    metrics.CountRequest(e->status);
    return;
  }
  if (job->call.model.empty()) job->call.model = options.model_name;
  job->key = req.has_header("X-Conversation-Id") ? "id:" + req.get_header_value("X-Conversation-Id")
             : !job->call.user.empty()            ? "user:" + job->call.user
                                                  : "turn:" + job->call.first_turn;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping || shutting_down) {
      ApiError e{503, "the server is shutting down", "", ""};
      SendError(res, e);
      metrics.CountRequest(503);
      return;
    }
    int idle = 0;
    for (auto& s : slots) idle += s->job ? 0 : 1;
    if (idle == 0 && static_cast<int>(queue.size()) >= options.max_queue) {
      ApiError e{503, "the server is busy: every slot is running and the queue is full; retry shortly", "", ""};
      res.set_header("Retry-After", "5");
      SendError(res, e);
      metrics.CountRequest(503);
      return;
    }
    queue.push_back(job);
    DispatchLocked();
  }

  if (!job->call.stream) {
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->done; });
    if (job->error) {
      SendError(res, *job->error);
      metrics.CountRequest(job->error->status);
      return;
    }
    res.set_content(CompletionJson(job->id, job->created, job->call.model, job->pending, job->finish_reason, job->usage),
                    "application/json");
    metrics.CountRequest(200);
    return;
  }

  // Streaming: errors found before generation starts (a corrupt picture, a prompt over the limit) still get their
  // status; after that the stream carries them.
  {
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->started || job->done; });
    if (job->done && job->error) {
      SendError(res, *job->error);
      metrics.CountRequest(job->error->status);
      return;
    }
  }
  metrics.CountRequest(200);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass events through as they come
  auto sent_role = std::make_shared<bool>(false);
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, sent_role](size_t, httplib::DataSink& sink) {
        auto event = [&](const std::string& data) {
          const std::string line = "data: " + data + "\n\n";
          if (!sink.write(line.data(), line.size())) {
            job->cancelled = true;
            return false;
          }
          return true;
        };
        if (!*sent_role) {
          *sent_role = true;
          return event(ChunkJson(job->id, job->created, job->call.model, "assistant", "", "", nullptr));
        }
        std::string text;
        bool done;
        {
          std::unique_lock<std::mutex> lock(job->mu);
          job->cv.wait(lock, [&] { return !job->pending.empty() || job->done; });
          text.swap(job->pending);
          done = job->done;
        }
        if (!text.empty() && !event(ChunkJson(job->id, job->created, job->call.model, "", text, "", nullptr))) return false;
        if (!done) return true;
        if (job->error) {
          event(ErrorJson(*job->error));
        } else {
          event(ChunkJson(job->id, job->created, job->call.model, "", "", job->finish_reason,
                          job->call.include_usage ? &job->usage : nullptr));
        }
        event("[DONE]");
        sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancelled = true;
      });
}

void Server::Impl::Routes() {
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { HandleChat(req, res); });
  http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res)) return;
    json j = {{"object", "list"},
              {"data", json::array({{{"id", options.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "ixc"}}})}};
    res.set_content(j.dump(), "application/json");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (shutting_down) {
      res.status = 503;
      res.set_content(R"({"status":"shutting down"})", "application/json");
      return;
    }
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.Render(), "text/plain; version=0.0.4");
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy", WebUiContentSecurityPolicy());
    res.set_content(WebUiHtml(), "text/html; charset=utf-8");
  });
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler's own error
    ApiError e;
    e.status = res.status;
    if (res.status == 404) {
      e.message = "no route for " + req.method + " " + req.path;
    } else if (res.status == 413) {
      e.message = "the request body is over the " + std::to_string(options.max_body_bytes) + "-byte limit";
      metrics.CountRequest(413);
    } else {
      e.message = "HTTP status " + std::to_string(res.status);
    }
    res.set_content(ErrorJson(e), "application/json");
  });
  http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    ApiError e{500, "internal error", "", ""};
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::bad_alloc&) {
      e.message = "out of memory";
    } catch (const std::exception& x) {
      e.message = std::string("internal error: ") + x.what();
    } catch (...) {
    }
    SendError(res, e);
    metrics.CountRequest(500);
  });
}

Server::Server(const Model& model, ServerOptions options) : impl_(std::make_unique<Impl>(model, std::move(options))) {}

Server::~Server() {
  Stop();
  impl_->StopWorkers();
}

Status Server::Bind() {
  ServerOptions& o = impl_->options;
  if (o.parallel < 1 || o.parallel > 64) return InvalidArgument("parallel must be between 1 and 64");
  if (o.max_queue < 0) return InvalidArgument("the queue length must not be negative");
  if (o.port < 0 || o.port > 65535) return InvalidArgument("the port must be between 0 and 65535");
  httplib::Server& h = impl_->http;
  // Handlers wait for their slot, so every running and queued request holds a thread; a few more answer /health
  // and /metrics meanwhile and turn away requests beyond the queue.
  const size_t handlers = static_cast<size_t>(o.parallel + o.max_queue + 4);
  h.new_task_queue = [handlers] { return new httplib::ThreadPool(handlers); };
  h.set_payload_max_length(static_cast<size_t>(o.max_body_bytes));
  h.set_read_timeout(o.read_timeout_s, 0);
  h.set_write_timeout(o.read_timeout_s, 0);
  impl_->Routes();
  if (o.port == 0) {
    impl_->port = h.bind_to_any_port(o.host);
  } else {
    impl_->port = h.bind_to_port(o.host, o.port) ? o.port : -1;
  }
  if (impl_->port < 0) {
    return Unimplemented("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                         " (in use, or not an address of this machine)");
  }
  impl_->StartWorkers();
  return Status::Ok();
}

int Server::port() const { return impl_->port; }

Status Server::Run() {
  if (impl_->port < 0) return FailedPrecondition("Bind() first");
  if (!impl_->http.listen_after_bind() && !impl_->shutting_down) return Internal("the listener failed");
  impl_->StopWorkers();
  return Status::Ok();
}

void Server::Stop() {
  impl_->shutting_down = true;
  impl_->http.stop();
}

}  // namespace ixc::server
