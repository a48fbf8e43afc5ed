// ixc_load: the load test against a running server. Exit 0 when every response is complete and equals its
// expected greedy answer.
//
//   ixc_load --port 8080 --clients 16 --requests 1000 --image a.png --pid $(pgrep -f 'ixc serve')
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "load/load.h"

int main(int argc, char** argv) {
  ixc::load::LoadOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "ixc_load: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--host") o.host = value();
    else if (a == "--port") o.port = std::atoi(value().c_str());
    else if (a == "--clients") o.clients = std::atoi(value().c_str());
    else if (a == "--requests") o.requests = std::atoi(value().c_str());
    else if (a == "--max-tokens") o.max_tokens = std::atoi(value().c_str());
    else if (a == "--image") o.images.push_back(value());
    else if (a == "--hd-num") o.hd_num = std::atoi(value().c_str());
    else if (a == "--api-key") o.api_key = value();
    else if (a == "--pid") o.pid = std::atoi(value().c_str());
    else {
      std::fprintf(stderr, "usage: ixc_load [--host H] [--port N] [--clients N] [--requests N] [--max-tokens N] "
                           "[--image PNG]... [--hd-num N] [--api-key K] [--pid SERVER_PID]\n");
      return 2;
    }
  }
  if (o.clients < 1 || o.requests < 1 || o.port <= 0) {
    std::fprintf(stderr, "ixc_load: --clients, --requests and --port must be positive\n");
    return 2;
  }
  const ixc::load::LoadReport r = ixc::load::RunLoad(o);
  std::printf("%d requests from %d clients in %.1f s (%.1f requests/s): %d ok, %d wrong, %d failed; latency p50 %.0f ms, "
              "p99 %.0f ms\n", r.sent, o.clients, r.seconds, r.seconds > 0 ? r.sent / r.seconds : 0.0, r.ok, r.wrong,
              r.failed, r.p50_ms, r.p99_ms);
  for (const auto& [status, n] : r.statuses) std::printf("  HTTP %d: %d\n", status, n);
  if (o.pid) {
    std::printf("server memory %.1f MiB before, %.1f MiB halfway, %.1f MiB after\n", r.rss_before_kb / 1024.0,
                r.rss_half_kb / 1024.0, r.rss_after_kb / 1024.0);
  }
  for (const std::string& p : r.problems) std::printf("problem: %s\n", p.c_str());
  return r.ok == o.requests && r.sent == o.requests ? 0 : 1;
}
