// Attention micro-benchmarks: the tiled MultiHeadAttention against its scalar twin and the old per-(row, head)
// `Attention` loop (parallel over rows × heads, as the callers ran it), in one run:
//   env -u OPENBLAS_CORETYPE build/release/bench/ixc_attention_bench
// Counters: FLOP/s counts 4·head_dim per visible (query head, key) pair (q·k and p·v, a multiply-add as 2);
// bytes/s counts the K and V bytes of one pass (meaningful for decode, where each key is read once).
#include <algorithm>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/kernels.h"

namespace ixc {
namespace {

struct Heads {
  int64_t q, kv, dim;
};
constexpr Heads kVit{16, 16, 64};       // ViT-L/14 at 336 px: 16 heads of 64
constexpr Heads kDecoder{32, 8, 128};   // 7B decoder: 32 query heads, 8 KV heads of 128

std::vector<float> Values(int64_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(static_cast<int32_t>(seed >> 8) - (1 << 23)) / (1 << 23);
  }
  return v;
}

// Inputs of one benchmark: args rows T, keys N, causal offset (−1: none), f16 (0/1), threads, runs (1/2).
struct Setup {
  Heads h;
  int64_t T, N, offset, runs;
  bool f16;
  std::vector<float> q, out, k, v;
  std::vector<uint16_t> kh, vh;
  std::vector<KvRun> kv;

  Setup(const Heads& heads, const benchmark::State& st)
      : h(heads), T(st.range(0)), N(st.range(1)), offset(st.range(2)), runs(st.range(5)), f16(st.range(3) != 0) {
    q = Values(T * h.q * h.dim, 1);
    out.assign(T * h.q * h.dim, 0.f);
    k = Values(N * h.kv * h.dim, 2);
    v = Values(N * h.kv * h.dim, 3);
    if (f16) {
      kh.resize(k.size());
      vh.resize(v.size());
      for (size_t i = 0; i < k.size(); ++i) kh[i] = F32ToF16(k[i]), vh[i] = F32ToF16(v[i]);
    }
    const int64_t row = h.kv * h.dim, es = f16 ? 2 : 4;
    const char* kb = f16 ? reinterpret_cast<const char*>(kh.data()) : reinterpret_cast<const char*>(k.data());
    const char* vb = f16 ? reinterpret_cast<const char*>(vh.data()) : reinterpret_cast<const char*>(v.data());
    const int64_t first = runs == 2 ? N / 2 : N;  // two runs: a shared prefix and a beam's own rows
    kv.push_back({f16 ? DType::kF16 : DType::kF32, kb, vb, first, row});
    if (runs == 2) kv.push_back({kv[0].dtype, kb + first * row * es, vb + first * row * es, N - first, row});
  }

  AttentionArgs Args() {
    AttentionArgs a;
    a.rows = T;
    a.q_heads = h.q;
    a.kv_heads = h.kv;
    a.head_dim = h.dim;
    a.q = q.data();
    a.q_stride = h.q * h.dim;
    a.out = out.data();
    a.out_stride = h.q * h.dim;
    a.kv = kv;
    a.causal_offset = offset;
    a.scale = 0.125f;
    return a;
  }

  int64_t Visible(int64_t t) const { return offset < 0 ? N : std::min(N, offset + t + 1); }

  void SetCounters(benchmark::State& st) const {
    double pairs = 0;
    for (int64_t t = 0; t < T; ++t) pairs += static_cast<double>(Visible(t));
    const double flop = 4.0 * h.dim * h.q * pairs;
    st.counters["FLOP/s"] = benchmark::Counter(flop * st.iterations(), benchmark::Counter::kIsRate);
    st.counters["GFLOP"] = flop * 1e-9;
    st.SetBytesProcessed(st.iterations() * 2 * N * h.kv * h.dim * (f16 ? 2 : 4));
  }
};

template <const Heads& H>
void BM_Attention(benchmark::State& st) {
  Setup s(H, st);
  ThreadPool pool(static_cast<int>(st.range(4)));
  const AttentionArgs a = s.Args();
  for (auto _ : st) {
    MultiHeadAttention(a, &pool);
    benchmark::DoNotOptimize(s.out.data());
  }
  s.SetCounters(st);
}

template <const Heads& H>
void BM_AttentionRef(benchmark::State& st) {
  Setup s(H, st);
  const AttentionArgs a = s.Args();
  for (auto _ : st) {
    MultiHeadAttentionRef(a);
    benchmark::DoNotOptimize(s.out.data());
  }
  s.SetCounters(st);
}

// The old kernel as decoder.cc and vision.cc call it: one (row, query head) per job, f32 K/V only.
template <const Heads& H>
void BM_AttentionOldLoop(benchmark::State& st) {
  Setup s(H, st);
  ThreadPool pool(static_cast<int>(st.range(4)));
  const int64_t G = H.q / H.kv, row = H.kv * H.dim;
  for (auto _ : st) {
    pool.ParallelFor(s.T * H.q, [&](int64_t b0, int64_t b1, int) {
      std::vector<float> scores(s.N);
      for (int64_t job = b0; job < b1; ++job) {
        const int64_t t = job / H.q, hq = job % H.q, col = hq / G * H.dim;
        KvSegment seg[2];
        int nseg = 0;
        int64_t left = s.Visible(t);
        for (const KvRun& r : s.kv) {
          const int64_t n = std::min(left, r.n);
          if (n > 0) {
            seg[nseg++] = {static_cast<const float*>(r.k) + col, static_cast<const float*>(r.v) + col, n, row};
          }
          left -= n;
        }
        Attention(&s.q[(t * H.q + hq) * H.dim], H.dim, std::span(seg, nseg), 0.125f,
                  &s.out[(t * H.q + hq) * H.dim], scores.data());
      }
    });
    benchmark::DoNotOptimize(s.out.data());
  }
  s.SetCounters(st);
}

#if defined(__x86_64__)
__attribute__((target("avx2,f16c"))) float SumF16(const uint16_t* x, int64_t n) {
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
  for (int64_t i = 0; i + 16 <= n; i += 16) {
    a = _mm256_add_ps(a, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
    b = _mm256_add_ps(b, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8))));
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(a, b));
  return t[0] + t[7];
}
#else
float SumF16(const uint16_t* x, int64_t n) {
  float a = 0;
  for (int64_t i = 0; i < n; ++i) a += static_cast<float>(x[i]);
  return a;
}
#endif

// What the memory delivers to a plain read of the same K and V bytes (f16 widened and summed, each of the pool's
// threads streaming a contiguous share): the ceiling for decode, measured in the same run.
void BM_StreamRead(benchmark::State& st) {
  Setup s(kDecoder, st);
  ThreadPool pool(static_cast<int>(st.range(4)));
  std::vector<float> sums(pool.num_threads());
  for (auto _ : st) {
    pool.ParallelFor(pool.num_threads(), [&](int64_t b, int64_t, int tid) {
      const int64_t n = static_cast<int64_t>(s.kh.size()), lo = n * b / pool.num_threads(),
                    hi = n * (b + 1) / pool.num_threads();
      sums[tid] = SumF16(s.kh.data() + lo, hi - lo) + SumF16(s.vh.data() + lo, hi - lo);
    });
    benchmark::DoNotOptimize(sums.data());
  }
  s.SetCounters(st);
}

void Names(benchmark::internal::Benchmark* b) { b->ArgNames({"T", "keys", "causal", "f16", "threads", "runs"}); }

// ViT: one 336-px view, 1601 tokens, no mask.
BENCHMARK(BM_Attention<kVit>)->Name("Vit")->Apply(Names)->Args({1601, 1601, -1, 0, 1, 1})
    ->Args({1601, 1601, -1, 0, 2, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionOldLoop<kVit>)->Name("VitOldLoop")->Apply(Names)->Args({1601, 1601, -1, 0, 2, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionRef<kVit>)->Name("VitRef")->Apply(Names)->Args({1601, 1601, -1, 0, 1, 1})->Iterations(1)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Decoder prefill: a 512-row chunk, causal, with 0 / 512 / 2048 rows already cached.
BENCHMARK(BM_Attention<kDecoder>)->Name("Prefill")->Apply(Names)->Args({512, 512, 0, 0, 2, 1})
    ->Args({512, 1024, 512, 0, 2, 1})->Args({512, 1024, 512, 1, 2, 1})->Args({512, 2560, 2048, 1, 2, 1})
    ->Args({512, 1024, 512, 1, 1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionOldLoop<kDecoder>)->Name("PrefillOldLoop")->Apply(Names)->Args({512, 1024, 512, 0, 2, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionRef<kDecoder>)->Name("PrefillRef")->Apply(Names)->Args({512, 1024, 512, 0, 1, 1})
    ->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Decode: one row over the whole cache; two runs = shared prompt prefix + a beam's own rows.
BENCHMARK(BM_Attention<kDecoder>)->Name("Decode")->Apply(Names)->Args({1, 16384, -1, 1, 1, 1})
    ->Args({1, 16384, -1, 1, 2, 1})->Args({1, 16384, -1, 1, 2, 2})->Args({1, 16384, -1, 0, 2, 1})
    ->Args({1, 4096, -1, 1, 2, 1})->Args({1, 1024, -1, 1, 2, 1})->Args({1, 128, -1, 1, 1, 1})
    ->Args({1, 1024, -1, 1, 1, 1})->Args({4, 16384, 16380, 1, 2, 1})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_StreamRead)->Name("DecodeStreamRead")->Apply(Names)->Args({1, 16384, -1, 1, 2, 1})
    ->Args({1, 16384, -1, 1, 1, 1})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_AttentionOldLoop<kDecoder>)->Name("DecodeOldLoop")->Apply(Names)->Args({1, 16384, -1, 0, 2, 1})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_AttentionRef<kDecoder>)->Name("DecodeRef")->Apply(Names)->Args({1, 16384, -1, 1, 1, 1})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace ixc

BENCHMARK_MAIN();
