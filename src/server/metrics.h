// The server's counters in Prometheus' text format (GET /metrics). Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ixc::server {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}
  void Observe(double v);
  // The metric's lines: name_bucket{le="..."}, name_sum, name_count.
  std::string Render(const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  Metrics();
  void CountRequest(int status);
  void AddTokens(int64_t prompt, int64_t generated);
  void ObserveFirstToken(double seconds);
  void ObserveTokenInterval(double seconds);
  void SetQueueDepth(int64_t n);
  void SetBusySlots(int64_t n);
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<int, uint64_t> requests_;  // by HTTP status
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  int64_t queue_depth_ = 0, busy_slots_ = 0;
  Histogram first_token_, per_token_;
};

}  // namespace ixc::server
