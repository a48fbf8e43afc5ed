// MatMul: blocking, threading and edge handling around the per-ISA kernels of gemm_kernels.h.
#include <algorithm>
#include <atomic>

#include "core/status.h"
#include "kernels/gemm_kernels.h"
#include "kernels/kernels.h"

namespace ixc {

namespace {

using gemm::kMr;
using gemm::kNr;
using gemm::kRowsW;
using gemm::kRowsX;

// Fewer rows than this take the row kernel (each weight byte read once per kRowsX rows, no panel conversion).
constexpr int64_t kFewRows = kMatMulRowKernelMax + 1;
// A task: up to kMc rows × kNc panels. The k-block keeps a converted panel (kKc × 16 f32 = 16 KiB) in L1 while
// the task's packed rows (kMc × kKc f32 = 192 KiB, in L2) stream past it; kMc rows amortise the panel's
// conversion and kNc panels the rows' packing.
constexpr int64_t kKc = 256;
constexpr int64_t kMc = 192;
constexpr int64_t kNc = 32;
// Row groups (of kRowsW weight rows) a thread takes at a time when decoding.
constexpr int64_t kFewRowsChunk = 16;
// Below this many multiply-adds a product runs on the calling thread.
constexpr int64_t kParallelMacs = 1 << 16;

void FewRows(const gemm::Kernels& kern, const float* x, int64_t T, int64_t K, const TensorView& w, const float* bias,
             float* y, bool accumulate, ThreadPool* pool) {
  const int64_t N = w.dim(0);
  const int64_t groups = (N + kRowsW - 1) / kRowsW;
  // Block-quantised weights meet int8 activations (quantised once here, shared by every thread): the integer dot
  // products cost a third of widening each weight to f32, which is what lets 4-bit weights stream at memory speed.
  const bool int8 = IsBlockType(w.dtype);
  gemm::QuantisedRows xq;
  if (int8) {
    static thread_local std::vector<int8_t> q;
    static thread_local std::vector<float> d, ds;
    xq = gemm::QuantiseRows(kern, x, T, K, &q, &d, &ds);
  } else {
    static thread_local std::vector<float> reordered;
    x = kern.rows_input(w.dtype, x, T, K, &reordered);
  }
  const int64_t rows_x = int8 ? gemm::kRowsX : gemm::kRowsXFloat;
  auto work = [&](int64_t g0, int64_t g1, int) {
    float out[std::max(gemm::kRowsX, gemm::kRowsXFloat) * kRowsW];
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n0 = g * kRowsW;
      const int nw = static_cast<int>(std::min<int64_t>(kRowsW, N - n0));
      for (int64_t t0 = 0; t0 < T; t0 += rows_x) {
        const int nx = static_cast<int>(std::min<int64_t>(rows_x, T - t0));
        if (int8) {
          gemm::QuantisedRows part = xq;
          part.q += t0 * K;
          part.d += t0 * xq.blocks;
          part.ds += t0 * xq.blocks;
          kern.rows_int8(w.dtype, part, nx, w.row(n0), K, nw, out);
        } else {
          kern.rows(w.dtype, x + t0 * K, K, nx, w.row(n0), K, nw, K, out);
        }
        for (int r = 0; r < nx; ++r) {
          float* yr = y + (t0 + r) * N + n0;
          for (int j = 0; j < nw; ++j) {
            float v = out[r * kRowsW + j];
            if (bias) v += bias[n0 + j];
            yr[j] = accumulate ? yr[j] + v : v;
          }
        }
      }
    }
  };
  if (pool && groups > 1 && T * N * K >= kParallelMacs) {
    // Threads take chunks of groups as they finish (a static half each leaves one core idle whenever the other is
    // slowed, which a shared machine does all the time); each output's arithmetic does not depend on who runs it.
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(kFewRowsChunk, groups / (4 * pool->num_threads())));
    const int64_t chunks = (groups + chunk - 1) / chunk;
    std::atomic<int64_t> next{0};
    pool->ParallelFor(pool->num_threads(), [&](int64_t, int64_t, int) {
      for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
        work(c * chunk, std::min(groups, (c + 1) * chunk), 0);
      }
    });
  } else {
    work(0, groups, 0);
  }
}

void ManyRows(const gemm::Kernels& kern, const float* x, int64_t T, int64_t K, const TensorView& w, const float* bias,
              float* y, bool accumulate, ThreadPool* pool) {
  const int64_t N = w.dim(0);
  const int64_t panels = (N + kNr - 1) / kNr;
  const int64_t mtasks = (T + kMc - 1) / kMc, ntasks = (panels + kNc - 1) / kNc, tasks = mtasks * ntasks;
  const auto* wbytes = static_cast<const uint8_t*>(w.data);
  const bool interleaved = w.dtype == DType::kQ4_0x8 || w.dtype == DType::kQ4G128x8;

  auto task = [&](int64_t index, float* apack, float* bpack) {
    // Consecutive tasks share a column block, so threads working side by side read the same weight panels.
    const int64_t nb = index / mtasks, mb = index % mtasks;
    const int64_t m0 = mb * kMc, m1 = std::min(T, m0 + kMc);
    const int64_t p0 = nb * kNc, p1 = std::min(panels, p0 + kNc);
    alignas(32) float tile[kMr * kNr];
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t kc = std::min(kKc, K - k0);
      const bool add = accumulate || k0 > 0;
      for (int64_t r0 = m0; r0 < m1; r0 += kMr) {
        const int mr = static_cast<int>(std::min<int64_t>(kMr, m1 - r0));
        kern.pack_a(x + r0 * K + k0, K, mr, kc, apack + (r0 - m0) * kKc);
      }
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n0 = p * kNr;
        const int nr = static_cast<int>(std::min<int64_t>(kNr, N - n0));
        if (interleaved) {
          // Interleaved rows are widened a group at a time into f32 rows, then packed like f32 weights. Their
          // blocks for k0.. start StorageBytes(8·k0) into the group (k0 is a multiple of 256, so of any block).
          alignas(64) static thread_local float rows[kNr * kKc];
          for (int g = 0; g < nr; g += 8) {
            kern.widen_x8(w.dtype, w.row(n0 + g) + StorageBytes(w.dtype, 8 * k0), kc, rows + g * kc, kc);
          }
          kern.pack_b(DType::kF32, rows, kc, nr, kc, bpack);
        } else {
          kern.pack_b(w.dtype, wbytes + StorageBytes(w.dtype, n0 * K + k0), K, nr, kc, bpack);
        }
        for (int64_t r0 = m0; r0 < m1; r0 += kMr) {
          const int mr = static_cast<int>(std::min<int64_t>(kMr, m1 - r0));
          const float* a = apack + (r0 - m0) * kKc;
          float* c = y + r0 * N + n0;
          if (mr == kMr && nr == kNr) {
            kern.micro(kc, a, bpack, c, N, add);
          } else {
            kern.micro(kc, a, bpack, tile, kNr, false);
            for (int r = 0; r < mr; ++r)
              for (int j = 0; j < nr; ++j) c[r * N + j] = add ? c[r * N + j] + tile[r * kNr + j] : tile[r * kNr + j];
          }
        }
      }
    }
    if (bias) {
      const int64_t n0 = p0 * kNr, n1 = std::min(N, p1 * kNr);
      for (int64_t t = m0; t < m1; ++t) AddInPlace(y + t * N + n0, bias + n0, n1 - n0, nullptr);
    }
  };

  std::atomic<int64_t> next{0};
  auto worker = [&](int64_t, int64_t, int) {
    // Per thread: the task's rows as 6-row micro-panels of one k-block (tile i at i·6·kKc), and one weight panel.
    alignas(64) static thread_local float apack[kMc * kKc + 8];
    alignas(64) static thread_local float bpack[kKc * kNr];
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) task(i, apack, bpack);
  };
  if (pool && tasks > 1 && T * N * K >= kParallelMacs) {
    pool->ParallelFor(pool->num_threads(), worker);
  } else {
    worker(0, 1, 0);
  }
}

}  // namespace

void MatMul(const float* x, int64_t T, int64_t K, const TensorView& w, const float* bias, float* y, bool accumulate,
            ThreadPool* pool) {
  if (T <= 0 || w.dim(0) <= 0) return;
  IXC_DCHECK(w.dtype != DType::kQ4_0x8 || w.dim(0) % 8 == 0);
  IXC_DCHECK(w.dtype != DType::kQ4G128x8 || (w.dim(0) % 8 == 0 && K % kG128 == 0));
  const gemm::Kernels& kern = gemm::KernelsFor(ActiveIsa());
  if (T < kFewRows) {
    FewRows(kern, x, T, K, w, bias, y, accumulate, pool);
  } else {
    ManyRows(kern, x, T, K, w, bias, y, accumulate, pool);
  }
}

}  // namespace ixc
