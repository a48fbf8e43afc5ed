// IXC_AVX2_BEGIN / IXC_AVX2_END around the functions of the AVX2 + FMA + F16C kernel files compile them for those
// instructions while the rest of the binary stays baseline x86-64; the dispatchers call them only when the CPU has
// them (kernels/cpu.h). GCC: push_options and a target pragma; clang (fuzz builds), which ignores GCC's target
// pragma: a target attribute pushed onto every function in the range.
#pragma once

#if defined(__clang__)
#define IXC_AVX2_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c\"))), apply_to = function)")
#define IXC_AVX2_END _Pragma("clang attribute pop")
#else
#define IXC_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c\")")
#define IXC_AVX2_END _Pragma("GCC pop_options")
#endif
