#include "server/metrics.h"

#include <cstdio>

namespace ixc::server {

namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  if (i < counts_.size()) ++counts_[i];
  ++count_;
  sum_ += v;
}

std::string Histogram::Render(const std::string& name) const {
  std::string out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + Num(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + Num(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
  return out;
}

// Time to first token spans a short text question to a many-tile image prompt on a slow CPU; a decoded token's
// interval spans a small model's milliseconds to a 7B model's seconds.
Metrics::Metrics()
    : first_token_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}),
      per_token_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}) {}

void Metrics::CountRequest(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[status];
}

void Metrics::AddTokens(int64_t prompt, int64_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += static_cast<uint64_t>(prompt);
  generated_tokens_ += static_cast<uint64_t>(generated);
}

void Metrics::ObserveFirstToken(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  first_token_.Observe(seconds);
}

void Metrics::ObserveTokenInterval(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  per_token_.Observe(seconds);
}

void Metrics::SetQueueDepth(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_depth_ = n;
}

void Metrics::SetBusySlots(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  busy_slots_ = n;
}

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP ixc_requests_total Chat completion requests answered, by HTTP status.\n";
  out += "# TYPE ixc_requests_total counter\n";
  for (const auto& [status, n] : requests_) {
    out += "ixc_requests_total{status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP ixc_prompt_tokens_total Prompt tokens (text and image) of answered requests.\n";
  out += "# TYPE ixc_prompt_tokens_total counter\n";
  out += "ixc_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  out += "# HELP ixc_generated_tokens_total Tokens generated.\n";
  out += "# TYPE ixc_generated_tokens_total counter\n";
  out += "ixc_generated_tokens_total " + std::to_string(generated_tokens_) + "\n";
  out += "# HELP ixc_queue_depth Requests waiting for a slot.\n";
  out += "# TYPE ixc_queue_depth gauge\n";
  out += "ixc_queue_depth " + std::to_string(queue_depth_) + "\n";
  out += "# HELP ixc_busy_slots Slots running a request.\n";
  out += "# TYPE ixc_busy_slots gauge\n";
  out += "ixc_busy_slots " + std::to_string(busy_slots_) + "\n";
  out += "# HELP ixc_time_to_first_token_seconds From a request's arrival to its first generated token.\n";
  out += "# TYPE ixc_time_to_first_token_seconds histogram\n";
  out += first_token_.Render("ixc_time_to_first_token_seconds");
  out += "# HELP ixc_time_per_output_token_seconds Between consecutive generated tokens.\n";
  out += "# TYPE ixc_time_per_output_token_seconds histogram\n";
  out += per_token_.Render("ixc_time_per_output_token_seconds");
  return out;
}

}  // namespace ixc::server
