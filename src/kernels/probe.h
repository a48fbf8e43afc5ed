// This machine's limits, measured in process so a benchmark can divide its figures by them (on a shared machine
// ratios hold where absolute times do not): streaming read bandwidth and register-only arithmetic peaks.
// Each kind runs only where DetectedIsa() says the CPU has it; x86 code is compiled per function for its level.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu.h"

namespace ixc {

struct BandwidthProbe {
  double gbs = 0;     // median over the passes, 1e9 bytes/s
  int64_t bytes = 0;  // buffer size read per pass
  int passes = 0;
};

// Reads a `bytes` buffer (rounded down to whole 4 KiB pages) with every thread of the pool, each its own contiguous
// share, `passes` times after one untimed pass; vector loads at the active ISA. The buffer lives only in this call.
BandwidthProbe ProbeReadBandwidth(ThreadPool* pool, int64_t bytes, int passes = 7);

struct PeakProbe {
  std::string kind;   // "fp32_scalar", "fp32_fma_ymm", "fp32_fma_zmm", "bf16_dpbf16ps_zmm", "amx_bf16"
  Isa isa;            // the level that kind needs
  double gflops = 0;  // the best pass, all threads together; FMA = 2 FLOP per lane
};

// Every vector kind this CPU has (DetectedIsa), in increasing level, plus scalar when the kernels run scalar. Each
// pass lasts about `seconds_per_pass`; the best pass counts, since a peak is what the core can do and on a shared
// machine other processes only ever lower a pass.
std::vector<PeakProbe> ProbePeakFlops(ThreadPool* pool, int passes = 5, double seconds_per_pass = 0.1);

// The fastest of `peaks` the kernels may use at `level` (e.g. ActiveIsa()); null when none qualifies.
const PeakProbe* PeakForIsa(const std::vector<PeakProbe>& peaks, Isa level);

// MemAvailable of /proc/meminfo in bytes; -1 where unknown.
int64_t AvailableMemoryBytes();

}  // namespace ixc
