// Which vector instruction sets the kernels may use, decided at run time so one binary runs on any x86-64 (and
// builds elsewhere with the portable path only). Tests and `--isa` force a lower level to exercise every path.
#pragma once

#include <string>
#include <string_view>

namespace ixc {

// Ordered: each level implies the ones below it.
enum class Isa : int {
  kScalar = 0,      // portable C++, no intrinsics
  kAvx2 = 1,        // AVX2 + FMA + F16C (Haswell, Zen 1 and later)
  kAvx512 = 2,      // AVX-512 F/BW/DQ/VL
  kAvx512Bf16 = 3,  // + AVX512_BF16 (vdpbf16ps): Cooper Lake, Sapphire Rapids, Zen 4/5
  kAmx = 4,         // + AMX-TILE/AMX-BF16 with the kernel's tile-data permission granted
};

const char* IsaName(Isa isa);  // "scalar", "avx2", "avx512", "avx512bf16", "amx"
bool ParseIsa(std::string_view name, Isa* out);

// The best level this CPU and OS support (AMX only when the kernel grants tile data; the request is made here).
Isa DetectedIsa();

// The level kernels use: the detected one, lowered by $IXC_ISA (read once) or SetIsaLimit.
Isa ActiveIsa();

// Caps the active level (never raises it above DetectedIsa). For tests and the CLI's --isa; not thread-safe
// against kernels running at the same time.
void SetIsaLimit(Isa limit);

// A one-line description for logs and `ixc bench`: CPU model name and the active/detected levels.
std::string CpuDescription();

// RAII cap for tests: restores the previous limit on destruction.
class ScopedIsaLimit {
 public:
  explicit ScopedIsaLimit(Isa limit);
  ~ScopedIsaLimit();
  ScopedIsaLimit(const ScopedIsaLimit&) = delete;
  ScopedIsaLimit& operator=(const ScopedIsaLimit&) = delete;

 private:
  Isa previous_;
};

}  // namespace ixc
