#include "kernels/probe.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <new>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ixc {

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Keeps results alive so the compiler cannot drop the loops that produce them.
volatile float g_sink;

// ---- streaming read -------------------------------------------------------------------------------------------

// n is a multiple of 64 floats. Sixteen independent sums so the adds never wait on each other.
float ReadSumPortable(const float* p, int64_t n) {
  float acc[16] = {};
  for (int64_t i = 0; i < n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
  float s = 0;
  for (float a : acc) s += a;
  return s;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) float ReadSumAvx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float f[8];
  _mm256_store_ps(f, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif

float ReadSum(const float* p, int64_t n) {
#if defined(__x86_64__)
  if (ActiveIsa() >= Isa::kAvx2) return ReadSumAvx2(p, n);
#endif
  return ReadSumPortable(p, n);
}

// ---- register-only arithmetic ---------------------------------------------------------------------------------
// Each kernel runs `iters` rounds of independent multiply-adds on accumulators that stay in registers and returns
// the FLOP it did. Enough accumulators to cover the FMA latency times the ports (4 cycles × 2 on Zen 3 and Intel).

double PeakScalar(int64_t iters) {
  float acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = 0.1f * static_cast<float>(j);
  const float x = 0.9999f, y = 0.0001f;
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 16; ++j) acc[j] = acc[j] * x + y;
  float s = 0;
  for (float a : acc) s += a;
  g_sink = s;
  return static_cast<double>(iters) * 16 * 2;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) double PeakFmaYmm(int64_t iters) {
  constexpr int kAcc = 12;
  __m256 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm256_set1_ps(0.1f * static_cast<float>(j));
  __m256 x = _mm256_set1_ps(0.9999f), y = _mm256_set1_ps(0.0001f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm256_fmadd_ps(acc[j], x, y);
    __asm__ volatile("" : "+x"(x));  // x might change: keeps the compiler from folding rounds together
  }
  __m256 s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = _mm256_add_ps(s, acc[j]);
  alignas(32) float f[8];
  _mm256_store_ps(f, s);
  g_sink = f[0];
  return static_cast<double>(iters) * kAcc * 8 * 2;
}

// Not _mm512_reduce_add_ps: GCC 12's version warns about an uninitialised temporary in its own header.
__attribute__((target("avx512f"))) float SumZmm(__m512 v) {
  alignas(64) float f[16];
  _mm512_store_ps(f, v);
  float s = 0;
  for (float x : f) s += x;
  return s;
}

__attribute__((target("avx512f"))) double PeakFmaZmm(int64_t iters) {
  constexpr int kAcc = 16;
  __m512 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_ps(0.1f * static_cast<float>(j));
  __m512 x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(0.0001f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_fmadd_ps(acc[j], x, y);
    __asm__ volatile("" : "+v"(x));
  }
  __m512 s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = _mm512_add_ps(s, acc[j]);
  g_sink = SumZmm(s);
  return static_cast<double>(iters) * kAcc * 16 * 2;
}

// vdpbf16ps: per fp32 lane, two bf16 products added: 16 lanes × 2 pairs × 2 = 64 FLOP per instruction.
__attribute__((target("avx512f,avx512bf16"))) double PeakDpbf16Zmm(int64_t iters) {
  constexpr int kAcc = 16;
  __m512 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_ps(0.1f * static_cast<float>(j));
  __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.001f), _mm512_set1_ps(0.002f));
  __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.003f), _mm512_set1_ps(0.004f));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
    __asm__ volatile("" : "+v"(a));
  }
  __m512 s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = _mm512_add_ps(s, acc[j]);
  g_sink = SumZmm(s);
  return static_cast<double>(iters) * kAcc * 64;
}

// AMX: tiles 0-3 accumulate 16×16 fp32, tiles 4-7 hold 16 rows × 32 bf16. One tdpbf16ps = 16·16·32 multiply-adds.
// The tile-data permission is process-wide and was requested by DetectedIsa().
struct alignas(64) TileConfig {
  uint8_t palette_id, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

__attribute__((target("amx-tile,amx-bf16"))) double PeakAmxBf16(int64_t iters) {
  TileConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int i = 0; i < 8; ++i) {
    cfg.rows[i] = 16;
    cfg.colsb[i] = 64;
  }
  alignas(64) static thread_local uint8_t buf[4][1024];  // zero bf16 inputs: AMX speed does not depend on values
  _tile_loadconfig(&cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, buf[0], 64);
  _tile_loadd(5, buf[1], 64);
  _tile_loadd(6, buf[2], 64);
  _tile_loadd(7, buf[3], 64);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, buf[0], 64);
  _tile_release();
  return static_cast<double>(iters) * 4 * 16 * 16 * 32 * 2;
}
#endif

struct PeakKernel {
  const char* kind;
  Isa isa;
  double (*run)(int64_t iters);
};

std::vector<PeakKernel> KernelsToProbe() {
  std::vector<PeakKernel> ks;
  const Isa detected = DetectedIsa();
  // The scalar figure matters only when the kernels run scalar (no vector ISA, or IXC_ISA=scalar).
  if (ActiveIsa() == Isa::kScalar) ks.push_back({"fp32_scalar", Isa::kScalar, PeakScalar});
#if defined(__x86_64__)
  if (detected >= Isa::kAvx2) ks.push_back({"fp32_fma_ymm", Isa::kAvx2, PeakFmaYmm});
  if (detected >= Isa::kAvx512) ks.push_back({"fp32_fma_zmm", Isa::kAvx512, PeakFmaZmm});
  if (detected >= Isa::kAvx512Bf16) ks.push_back({"bf16_dpbf16ps_zmm", Isa::kAvx512Bf16, PeakDpbf16Zmm});
  if (detected >= Isa::kAmx) ks.push_back({"amx_bf16", Isa::kAmx, PeakAmxBf16});
#else
  (void)detected;
#endif
  return ks;
}

// Free on destruction; aligned to pages so each thread's share starts on its own page.
struct PageBuffer {
  explicit PageBuffer(size_t bytes) : p(static_cast<float*>(std::aligned_alloc(4096, bytes))) {
    if (!p) throw std::bad_alloc();
  }
  ~PageBuffer() { std::free(p); }
  float* p;
};

}  // namespace

BandwidthProbe ProbeReadBandwidth(ThreadPool* pool, int64_t bytes, int passes) {
  BandwidthProbe r;
  const int threads = pool->num_threads();
  // Whole pages per thread.
  const int64_t per_thread = std::max<int64_t>(1, bytes / 4096 / threads) * 4096 / static_cast<int64_t>(sizeof(float));
  const int64_t total = per_thread * threads;
  PageBuffer buf(static_cast<size_t>(total) * sizeof(float));
  if (!buf.p) return r;
  // First touch by the thread that later reads the share (local memory on NUMA machines).
  pool->ParallelFor(threads, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) std::fill(buf.p + t * per_thread, buf.p + (t + 1) * per_thread, 1.0f);
  });
  std::vector<float> sums(threads);
  auto pass = [&]() {
    const auto t0 = Clock::now();
    pool->ParallelFor(threads, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) sums[t] = ReadSum(buf.p + t * per_thread, per_thread);
    });
    return SecondsSince(t0);
  };
  pass();  // warm-up: TLB, frequency
  std::vector<double> seconds;
  for (int i = 0; i < std::max(1, passes); ++i) seconds.push_back(pass());
  float s = 0;
  for (float x : sums) s += x;
  g_sink = s;
  r.bytes = total * static_cast<int64_t>(sizeof(float));
  r.passes = static_cast<int>(seconds.size());
  r.gbs = static_cast<double>(r.bytes) / Median(seconds) / 1e9;
  return r;
}

std::vector<PeakProbe> ProbePeakFlops(ThreadPool* pool, int passes, double seconds_per_pass) {
  std::vector<PeakProbe> out;
  const int threads = pool->num_threads();
  for (const PeakKernel& k : KernelsToProbe()) {
    // Calibrate on one thread: grow the round count until a run is long enough to time, then size it to the pass.
    int64_t iters = 1 << 12;
    double t = 0;
    for (;;) {
      const auto t0 = Clock::now();
      k.run(iters);
      t = SecondsSince(t0);
      if (t >= 2e-3 || iters >= (int64_t{1} << 40)) break;
      iters *= 8;
    }
    iters = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(iters) * seconds_per_pass / std::max(t, 1e-9)));
    std::vector<double> rates;
    std::vector<double> flop(threads);
    for (int p = 0; p < std::max(1, passes); ++p) {
      const auto t0 = Clock::now();
      pool->ParallelFor(threads, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) flop[i] = k.run(iters);
      });
      const double dt = SecondsSince(t0);
      double total = 0;
      for (double f : flop) total += f;
      rates.push_back(total / dt / 1e9);
    }
    out.push_back({k.kind, k.isa, *std::max_element(rates.begin(), rates.end())});
  }
  return out;
}

const PeakProbe* PeakForIsa(const std::vector<PeakProbe>& peaks, Isa level) {
  const PeakProbe* best = nullptr;
  for (const PeakProbe& p : peaks)
    if (p.isa <= level && (!best || p.gflops > best->gflops)) best = &p;
  return best;
}

int64_t AvailableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return value * 1024;
  }
  return -1;
}

}  // namespace ixc
