// Wall-clock helpers for the timings reported with results (not for benchmarks: those use Google Benchmark).
#pragma once

#include <chrono>

namespace ixc {

using Clock = std::chrono::steady_clock;

inline double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

inline double SecondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace ixc
