#include "kernels/cpu.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ixc {

namespace {

#if defined(__x86_64__)
uint64_t Xgetbv(uint32_t index) {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(index));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux keeps AMX tile data off until a process asks (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 18).
bool RequestAmxPermission() {
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

Isa Detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::kScalar;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!osxsave || !avx) return Isa::kScalar;
  const uint64_t xcr0 = Xgetbv(0);
  if ((xcr0 & 0x6) != 0x6) return Isa::kScalar;  // XMM and YMM state saved by the OS
  if (__get_cpuid_max(0, nullptr) < 7) return Isa::kScalar;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31);
  const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24);
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  const bool avx512bf16 = a1 & (1u << 5);
  if (!(avx2 && fma && f16c)) return Isa::kScalar;
  const bool zmm_state = (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  if (!(zmm_state && avx512f && avx512dq && avx512bw && avx512vl)) return Isa::kAvx2;
  if (!avx512bf16) return Isa::kAvx512;
  const bool tile_state = (xcr0 & (3ull << 17)) == (3ull << 17);  // XTILECFG, XTILEDATA
  if (amx_tile && amx_bf16 && tile_state && RequestAmxPermission()) return Isa::kAmx;
  return Isa::kAvx512Bf16;
}
#else
Isa Detect() { return Isa::kScalar; }
#endif

std::atomic<int> g_limit{-1};  // -1: not yet initialised from the environment

int InitialLimit() {
  const char* env = std::getenv("IXC_ISA");
  Isa isa;
  if (env && *env) {
    if (ParseIsa(env, &isa)) return static_cast<int>(isa);
    std::fprintf(stderr, "ixc: ignoring IXC_ISA=%s (scalar, avx2, avx512, avx512bf16 or amx)\n", env);
  }
  return static_cast<int>(Isa::kAmx);
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Bf16: return "avx512bf16";
    case Isa::kAmx: return "amx";
  }
  return "?";
}

bool ParseIsa(std::string_view name, Isa* out) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16, Isa::kAmx}) {
    if (name == IsaName(i)) {
      *out = i;
      return true;
    }
  }
  return false;
}

Isa DetectedIsa() {
  static const Isa detected = Detect();
  return detected;
}

Isa ActiveIsa() {
  int limit = g_limit.load(std::memory_order_relaxed);
  if (limit < 0) {
    int expected = -1;
    g_limit.compare_exchange_strong(expected, InitialLimit());
    limit = g_limit.load(std::memory_order_relaxed);
  }
  const int detected = static_cast<int>(DetectedIsa());
  return static_cast<Isa>(limit < detected ? limit : detected);
}

void SetIsaLimit(Isa limit) { g_limit.store(static_cast<int>(limit), std::memory_order_relaxed); }

std::string CpuDescription() {
  std::string model = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) model = line.substr(colon + 2);
      break;
    }
  }
  std::string s = model + " (kernels: " + IsaName(ActiveIsa());
  if (ActiveIsa() != DetectedIsa()) s += std::string(", detected ") + IsaName(DetectedIsa());
  return s + ")";
}

ScopedIsaLimit::ScopedIsaLimit(Isa limit) : previous_(ActiveIsa()) { SetIsaLimit(limit); }
ScopedIsaLimit::~ScopedIsaLimit() { SetIsaLimit(previous_); }

}  // namespace ixc
