#include "load/load.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/base64.h"

namespace ixc::load {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Question i: a short text question, every fourth with a picture first.
json Body(const LoadOptions& o, const std::vector<std::string>& data_urls, int i, bool stream) {
  const std::string text = "Question " + std::to_string(i) + ": tell me something about the number " + std::to_string(i * 7);
  json content = text;
  if (!data_urls.empty() && i % 4 == 0) {
    content = json::array({{{"type", "image_url"}, {"image_url", {{"url", data_urls[(i / 4) % data_urls.size()]}}}},
                           {{"type", "text"}, {"text", text}}});
  }
  json body = {{"messages", json::array({{{"role", "user"}, {"content", content}}})},
               {"temperature", 0},
               {"max_tokens", o.max_tokens},
               {"stream", stream}};
  if (o.hd_num > 0) body["hd_num"] = o.hd_num;
  return body;
}

struct Answer {
  int status = 0;
  std::string text;
  std::string error;
};

Answer Ask(httplib::Client& c, const LoadOptions& o, const json& body) {
  httplib::Headers h;
  if (!o.api_key.empty()) h.emplace("Authorization", "Bearer " + o.api_key);
  auto res = c.Post("/v1/chat/completions", h, body.dump(), "application/json");
  Answer a;
  if (!res) {
    a.error = "no response (" + httplib::to_string(res.error()) + ")";
    return a;
  }
  a.status = res->status;
  if (res->status != 200) {
    a.error = res->body;
    return a;
  }
  if (!body["stream"].get<bool>()) {
    json j = json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.contains("choices")) {
      a.error = "not a completion: " + res->body.substr(0, 200);
      return a;
    }
    a.text = j["choices"][0]["message"]["content"];
    return a;
  }
  // SSE: "data: {...}\n\n" events ending with [DONE].
  bool done = false;
  for (size_t at = 0; at < res->body.size();) {
    const size_t end = res->body.find("\n\n", at);
    if (end == std::string::npos || res->body.compare(at, 6, "data: ") != 0) {
      a.error = "malformed event stream";
      return a;
    }
    const std::string data = res->body.substr(at + 6, end - at - 6);
    at = end + 2;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    json ev = json::parse(data, nullptr, false);
    if (ev.is_discarded() || !ev.contains("choices")) {
      a.error = "bad event: " + data.substr(0, 200);
      return a;
    }
    const json& delta = ev["choices"][0]["delta"];
    if (delta.contains("content")) a.text += delta["content"].get<std::string>();
  }
  if (!done) a.error = "the stream did not end with [DONE]";
  return a;
}

}  // namespace

int64_t ResidentKb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

LoadReport RunLoad(const LoadOptions& o) {
  LoadReport r;
  std::vector<std::string> data_urls;
  for (const std::string& p : o.images) data_urls.push_back("data:image/png;base64," + EncodeBase64(ReadAll(p)));
  auto client = [&] {
    httplib::Client c(o.host, o.port);
    c.set_read_timeout(600, 0);
    c.set_connection_timeout(10, 0);
    return c;
  };

  // Expected answers, one request at a time.
  std::vector<std::string> expected(o.distinct);
  {
    httplib::Client c = client();
    for (int i = 0; i < o.distinct; ++i) {
      Answer a = Ask(c, o, Body(o, data_urls, i, false));
      if (a.status != 200 || !a.error.empty()) {
        r.problems.push_back("expected answer " + std::to_string(i) + ": HTTP " + std::to_string(a.status) + " " + a.error);
        r.failed = 1;
        return r;
      }
      expected[i] = a.text;
    }
  }
  if (o.pid) r.rss_before_kb = ResidentKb(o.pid);

  std::mutex mu;
  std::vector<double> latencies;
  std::atomic<int> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int k = 0; k < o.clients; ++k) {
    threads.emplace_back([&] {
      httplib::Client c = client();
      for (int n; (n = next.fetch_add(1)) < o.requests;) {
        if (o.pid && n == o.requests / 2) {
          const int64_t kb = ResidentKb(o.pid);
          std::lock_guard<std::mutex> lock(mu);
          r.rss_half_kb = kb;
        }
        const int q = n % o.distinct;
        const bool stream = n % 3 == 1;
        const auto s = Clock::now();
        Answer a = Ask(c, o, Body(o, data_urls, q, stream));
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
        std::lock_guard<std::mutex> lock(mu);
        ++r.sent;
        ++r.statuses[a.status];
        latencies.push_back(ms);
        if (a.status == 200 && a.error.empty() && a.text == expected[q]) {
          ++r.ok;
          continue;
        }
        std::string what;
        if (a.status == 200 && a.error.empty()) {
          ++r.wrong;
          what = "request " + std::to_string(n) + " (question " + std::to_string(q) + (stream ? ", streamed" : "") +
                 "): got \"" + a.text + "\", expected \"" + expected[q] + "\"";
        } else {
          ++r.failed;
          what = "request " + std::to_string(n) + ": HTTP " + std::to_string(a.status) + " " + a.error.substr(0, 300);
        }
        if (r.problems.size() < 5) r.problems.push_back(what);
      }
    });
  }
  for (auto& t : threads) t.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (o.pid) r.rss_after_kb = ResidentKb(o.pid);
  std::sort(latencies.begin(), latencies.end());
  if (!latencies.empty()) {
    r.p50_ms = latencies[latencies.size() / 2];
    r.p99_ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  return r;
}

}  // namespace ixc::load
