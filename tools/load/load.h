// A bounded load test of an OpenAI-compatible server (ixc serve, or a balancer in front of replicas): first each
// distinct request once, one at a time, for its expected greedy answer; then `requests` requests from `clients`
// concurrent clients, each checked against its expected answer (streamed ones by their concatenated text).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ixc::load {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  int clients = 16;
  int requests = 1000;
  int max_tokens = 8;
  int distinct = 24;                // distinct questions; every fourth carries a picture
  std::vector<std::string> images;  // pictures sent as data: URLs (none: text only)
  int hd_num = 0;                   // sent with the pictures (0: the server's default)
  std::string api_key;
  int pid = 0;                      // the server's process, to read its memory before and after (0: not read)
};

struct LoadReport {
  int sent = 0, ok = 0, wrong = 0, failed = 0;
  std::map<int, int> statuses;       // HTTP status (0: no response) -> count
  double seconds = 0;                // the concurrent phase
  double p50_ms = 0, p99_ms = 0;     // request latencies in it
  // The server's resident memory (with `pid`): before the concurrent phase, when half its requests were sent, after.
  int64_t rss_before_kb = 0, rss_half_kb = 0, rss_after_kb = 0;
  std::vector<std::string> problems; // the first few wrong or failed requests
};

LoadReport RunLoad(const LoadOptions& o);

// Resident set of a process in KiB (0 when unknown).
int64_t ResidentKb(int pid);

}  // namespace ixc::load
