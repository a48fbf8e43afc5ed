// Per-ISA inner loops of the elementwise and row kernels (kernels.h); internal to the kernels library.
#pragma once

#include <cstdint>

#include "kernels/cpu.h"

namespace ixc::elementwise {

struct Kernels {
  void (*silu_mul)(const float* a, const float* b, float* y, int64_t n);
  void (*quick_gelu)(float* x, int64_t n);
  void (*add)(float* x, const float* y, int64_t n);
  void (*rms_norm_row)(const float* x, const float* w, int64_t d, float eps, float* y);
  void (*layer_norm_row)(const float* x, const float* w, const float* b, int64_t d, float eps, float* y);
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n);  // round to nearest even, as F32ToF16
  // n values (a multiple of 32) as Q8_0 blocks: d = max|x| / 127 stored as f16, q = x · (1/d) rounded to nearest
  // even (GGUF rounds halves away from zero; a cache need not match files). Every set gives identical bytes.
  void (*f32_to_q8_0)(const float* x, void* blocks, int64_t n);
};

const Kernels& ScalarKernels();
#if defined(__x86_64__)
const Kernels& Avx2Kernels();
#endif
const Kernels& KernelsFor(Isa isa);

}  // namespace ixc::elementwise
