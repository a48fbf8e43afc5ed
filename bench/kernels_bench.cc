// Kernel micro-benchmarks (Google Benchmark). Compare optimised kernels with their scalar twins side by side in
// one run, e.g.:
//   env -u OPENBLAS_CORETYPE build/release/bench/ixc_kernels_bench --benchmark_filter=MatMul
#include <vector>

#include <benchmark/benchmark.h>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"

namespace ixc {
namespace {

std::vector<uint16_t> Bf16Weights(int64_t n) {
  std::vector<uint16_t> w(n);
  uint32_t s = 12345;
  for (auto& x : w) {
    s = s * 1664525u + 1013904223u;
    x = F32ToBf16(static_cast<float>(static_cast<int32_t>(s >> 8) - (1 << 23)) / (1 << 26));
  }
  return w;
}

// args: rows T, out N, in K, threads
void BM_MatMulBf16(benchmark::State& st) {
  const int64_t T = st.range(0), N = st.range(1), K = st.range(2);
  ThreadPool pool(static_cast<int>(st.range(3)));
  auto w = Bf16Weights(N * K);
  TensorView tv{DType::kBF16, {N, K}, w.data()};
  std::vector<float> x(T * K, 0.01f), y(T * N);
  for (auto _ : st) {
    MatMul(x.data(), T, K, tv, nullptr, y.data(), false, &pool);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * T * N * K);  // multiply-adds
  st.SetBytesProcessed(st.iterations() * N * K * 2);  // weight bytes streamed
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * T * N * K * st.iterations(), benchmark::Counter::kIsRate,
                                             benchmark::Counter::kIs1000);
}
// Decode (1 row; 2-4 rows: streams decoded together), a 512-row prompt chunk through wqkv and w1, ViT fc1 over one 1601-token view.
BENCHMARK(BM_MatMulBf16)->Args({1, 4096, 4096, 1})->Args({1, 4096, 4096, 2})->Args({1, 14336, 4096, 1})
    ->Args({1, 14336, 4096, 2})->Args({2, 14336, 4096, 2})->Args({3, 14336, 4096, 2})->Args({4, 14336, 4096, 2})
    ->Args({4, 14336, 4096, 1})->Args({4, 1024, 4096, 1})->Args({1, 128, 4096, 1})->Args({2, 128, 4096, 1})
    ->Args({3, 128, 4096, 1})->Args({4, 128, 4096, 1})
    ->Args({64, 4096, 4096, 2})->Args({512, 6144, 4096, 2})->Args({512, 14336, 4096, 2})->Args({1601, 4096, 1024, 2})
    ->Args({11207, 1024, 1024, 2})->Args({11207, 4096, 1024, 2})->Args({11207, 1024, 4096, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MatMulF16(benchmark::State& st) {
  const int64_t T = st.range(0), N = st.range(1), K = st.range(2);
  ThreadPool pool(static_cast<int>(st.range(3)));
  std::vector<uint16_t> w = Bf16Weights(N * K);
  for (auto& h : w) h = F32ToF16(Bf16ToF32(h));
  TensorView tv{DType::kF16, {N, K}, w.data()};
  std::vector<float> x(T * K, 0.01f), y(T * N);
  for (auto _ : st) {
    MatMul(x.data(), T, K, tv, nullptr, y.data(), false, &pool);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * T * N * K);
  st.SetBytesProcessed(st.iterations() * N * K * 2);
}
// One thread, cache-resident shapes: the kernels' own speed, apart from memory and threading.
BENCHMARK(BM_MatMulBf16)->Args({192, 128, 256, 1})->Args({192, 128, 1024, 1})->Args({192, 128, 4096, 1})
    ->Args({192, 128, 4000, 1})->Args({192, 128, 4112, 1})
    ->Args({1601, 256, 1024, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK(BM_MatMulF16)->Args({1, 4096, 4096, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

// args: rows T, out N, in K, threads, type (0: Q8_0, 1: Q4_0, 2: Q4_0 interleaved as at load).
void BM_MatMulBlock(benchmark::State& st) {
  const int64_t T = st.range(0), N = st.range(1), K = st.range(2);
  const DType t = st.range(4) ? DType::kQ4_0 : DType::kQ8_0;
  st.SetLabel(st.range(4) == 2 ? "Q4_0x8" : DTypeName(t));
  ThreadPool pool(static_cast<int>(st.range(3)));
  std::vector<float> f(N * K);
  const std::vector<uint16_t> src = Bf16Weights(N * K);
  for (int64_t i = 0; i < N * K; ++i) f[i] = Bf16ToF32(src[i]);
  std::vector<uint8_t> w(StorageBytes(t, N * K));
  QuantizeBlocks(t, f.data(), w.data(), N * K);
  TensorView tv{t, {N, K}, w.data()};
  if (st.range(4) == 2) {
    InterleaveQ4_0x8(w.data(), N, K);
    tv.dtype = DType::kQ4_0x8;
  }
  std::vector<float> x(T * K, 0.01f), y(T * N);
  for (auto _ : st) {
    MatMul(x.data(), T, K, tv, nullptr, y.data(), false, &pool);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * T * N * K);
  st.SetBytesProcessed(st.iterations() * static_cast<int64_t>(w.size()));
}
// Decoding through w1 (memory-bound at 2 threads), and a cache-resident one-thread product: the kernel's arithmetic.
BENCHMARK(BM_MatMulBlock)->ArgsProduct({{1, 4}, {14336}, {4096}, {1, 2}, {0, 1, 2}})
    ->ArgsProduct({{1, 3}, {128}, {4096}, {1}, {0, 1, 2}})->ArgsProduct({{512}, {4096}, {4096}, {2}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MatMulRefBf16(benchmark::State& st) {
  const int64_t T = st.range(0), N = st.range(1), K = st.range(2);
  auto w = Bf16Weights(N * K);
  TensorView tv{DType::kBF16, {N, K}, w.data()};
  std::vector<float> x(T * K, 0.01f), y(T * N);
  for (auto _ : st) {
    MatMulRef(x.data(), T, K, tv, nullptr, y.data(), false);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * T * N * K);
}
BENCHMARK(BM_MatMulRefBf16)->Args({1, 4096, 4096, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

// The same product on the portable kernels (IXC_ISA=scalar's path), beside the SIMD one above.
void BM_MatMulBf16Scalar(benchmark::State& st) {
  ScopedIsaLimit limit(Isa::kScalar);
  BM_MatMulBf16(st);
}
BENCHMARK(BM_MatMulBf16Scalar)->Args({1, 4096, 4096, 1})->Args({192, 128, 1024, 1})->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Elementwise steps of one 512-row prompt chunk (SwiGLU gate over [512, 14336], RMSNorm over [512, 4096]), one
// thread; arg 1: the ISA level (0 scalar, 1 avx2).
void BM_SiluMul(benchmark::State& st) {
  ScopedIsaLimit limit(static_cast<Isa>(st.range(1)));
  const int64_t n = st.range(0);
  std::vector<float> a(n, 0.3f), b(n, -1.2f), y(n);
  for (auto _ : st) {
    SiluMul(a.data(), b.data(), y.data(), n, nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}
BENCHMARK(BM_SiluMul)->Args({512 * 14336, 0})->Args({512 * 14336, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RmsNorm(benchmark::State& st) {
  ScopedIsaLimit limit(static_cast<Isa>(st.range(1)));
  const int64_t T = 512, D = st.range(0);
  std::vector<float> x(T * D, 0.7f), w(D, 1.1f), y(T * D);
  for (auto _ : st) {
    RmsNorm(x.data(), w.data(), T, D, 1e-5f, y.data(), nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * T * D);
}
BENCHMARK(BM_RmsNorm)->Args({4096, 0})->Args({4096, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace ixc

BENCHMARK_MAIN();
