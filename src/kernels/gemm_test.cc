// MatMul against its scalar twin MatMulRef on ragged shapes, every stored dtype and every kernel level this CPU
// has (a forced lower level runs the portable kernels on any machine).
#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "kernels/cpu.h"
#include "kernels/gemm_kernels.h"
#include "kernels/kernels.h"

namespace ixc {
namespace {

using testing::RandomFloats;

struct Weights {
  TensorView view;
  std::vector<uint16_t> half;
  std::vector<uint8_t> blocks;  // Q8_0, Q4_0
  std::vector<float> f32;    // the stored values when dtype is F32
  std::vector<float> exact;  // the stored values widened, for error bounds
};

Weights MakeWeights(int64_t n, int64_t k, DType dtype, uint32_t seed) {
  Weights w;
  w.f32 = RandomFloats(n * k, seed);
  w.exact = w.f32;
  w.view = TensorView{dtype, {n, k}, w.f32.data()};
  if (dtype == DType::kQ4G128x8) {
    // AWQ-like rows: random 4-bit codes, scales and zero points, 8 rows × 128 inputs a block.
    w.blocks.resize(StorageBytes(dtype, n * k));
    auto* blocks = reinterpret_cast<BlockQ4G128x8*>(w.blocks.data());
    const auto r = RandomFloats(static_cast<int64_t>(w.blocks.size()), seed + 1, 0.f, 1.f);
    for (int64_t b = 0; b < n / 8 * (k / kG128); ++b) {
      for (int j = 0; j < 8; ++j) {
        const float u = r[(b * 8 + j) % r.size()];
        blocks[b].d[j] = F32ToF16(0.002f + 0.01f * u);
        blocks[b].m[j] = -std::floor(16 * r[(b * 8 + j + 3) % r.size()]) * F16ToF32(blocks[b].d[j]);
      }
      for (int i = 0; i < 512; ++i) {
        reinterpret_cast<uint8_t*>(blocks[b].qs)[i] = static_cast<uint8_t>(256 * r[(b * 512 + i) % r.size()]);
      }
    }
    w.view.data = w.blocks.data();
    for (int64_t row = 0; row < n; ++row) RowToF32(w.view, row, w.exact.data() + row * k);
  } else if (IsBlockType(dtype)) {
    const DType stored = dtype == DType::kQ4_0x8 ? DType::kQ4_0 : dtype;
    w.blocks.resize(StorageBytes(stored, n * k));
    QuantizeBlocks(stored, w.f32.data(), w.blocks.data(), n * k);
    ConvertToF32(stored, w.blocks.data(), w.exact.data(), n * k);
    if (dtype == DType::kQ4_0x8) InterleaveQ4_0x8(w.blocks.data(), n, k);
    w.view.data = w.blocks.data();
  } else if (dtype != DType::kF32) {
    w.half.resize(w.f32.size());
    for (size_t i = 0; i < w.f32.size(); ++i) {
      w.half[i] = dtype == DType::kBF16 ? F32ToBf16(w.f32[i]) : F32ToF16(w.f32[i]);
      w.exact[i] = dtype == DType::kBF16 ? Bf16ToF32(w.half[i]) : F16ToF32(w.half[i]);
    }
    w.view.data = w.half.data();
  }
  return w;
}

std::vector<Isa> LevelsToTest() {
  std::vector<Isa> levels = {Isa::kScalar};
  if (DetectedIsa() >= Isa::kAvx2) levels.push_back(Isa::kAvx2);
  return levels;
}

// Both sides sum K products in f32, in different orders (the fast path adds k-blocks of partial sums): each is
// within (K + 2)·u·(|y0| + |bias| + Σ|x·w|) of the exact value (u = 2^-24), so they differ by at most twice that.
// `int8_activations`: `got` came from x quantised per 32-value block (MatMul's decode path for block types): each
// value moved by at most half its block's step max|x|/127, so the result by at most Σ|w|·step/2 more.
void ExpectClose(const std::vector<float>& x, const Weights& w, const std::vector<float>& bias, float y0, int64_t T,
                 int64_t N, int64_t K, const std::vector<float>& got, const std::vector<float>& want,
                 const std::string& what, bool int8_activations = false) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t n = 0; n < N; ++n) {
      double mag = std::fabs(y0) + (bias.empty() ? 0.0 : std::fabs(bias[n]));
      double quant = 0;
      for (int64_t k = 0; k < K; ++k) mag += std::fabs(x[t * K + k] * w.exact[n * K + k]);
      if (int8_activations) {
        for (int64_t b = 0; b < K / 32; ++b) {
          double amax = 0, wsum = 0;
          for (int64_t i = b * 32; i < b * 32 + 32; ++i) {
            amax = std::max(amax, static_cast<double>(std::fabs(x[t * K + i])));
            wsum += std::fabs(w.exact[n * K + i]);
          }
          quant += wsum * amax / 127 / 2;
        }
      }
      ASSERT_NEAR(got[t * N + n], want[t * N + n], 2 * (K + 2) * std::ldexp(1.0, -24) * mag + 1.001 * quant)
          << what << " at row " << t << ", output " << n;
    }
  }
}

TEST(Gemm, MatchesScalarTwinOnRaggedShapes) {
  ThreadPool pool(3);
  // Few rows (row kernel), many rows (blocked kernel), edges of every block size: 6-row tiles, 16-output panels,
  // 4-output row groups, 8-wide vectors, 256-deep k-blocks, 192-row tasks.
  const std::tuple<int64_t, int64_t, int64_t> shapes[] = {
      {1, 37, 129}, {2, 4, 8}, {3, 5, 7}, {7, 64, 256}, {8, 16, 8}, {9, 17, 9},
      {13, 33, 300}, {33, 100, 70}, {200, 48, 513}, {31, 257, 1}, {1, 1, 1000},
  };
  for (Isa isa : LevelsToTest()) {
    ScopedIsaLimit limit(isa);
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      for (auto [T, N, K] : shapes) {
        const std::string what = std::string(IsaName(isa)) + " " + DTypeName(dt) + " T=" + std::to_string(T) +
                                 " N=" + std::to_string(N) + " K=" + std::to_string(K);
        auto x = RandomFloats(T * K, 1);
        Weights w = MakeWeights(N, K, dt, 2);
        auto bias = RandomFloats(N, 3);
        for (bool accumulate : {false, true}) {
          for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
            std::vector<float> y(T * N, 0.5f), ref(T * N, 0.5f);
            MatMul(x.data(), T, K, w.view, bias.data(), y.data(), accumulate, p);
            MatMulRef(x.data(), T, K, w.view, bias.data(), ref.data(), accumulate);
            ExpectClose(x, w, bias, accumulate ? 0.5f : 0.f, T, N, K, y, ref, what);
          }
        }
        std::vector<float> y(T * N, 7.f), ref(T * N, -7.f);  // no bias, overwrite: old contents must not leak
        MatMul(x.data(), T, K, w.view, nullptr, y.data(), false, &pool);
        MatMulRef(x.data(), T, K, w.view, nullptr, ref.data(), false);
        ExpectClose(x, w, {}, 0.f, T, N, K, y, ref, what + " no bias");
      }
    }
  }
}

TEST(Gemm, BlockTypesMatchScalarTwin) {
  ThreadPool pool(2);
  // K a multiple of the 32-value block; rows around the kernels' edges; K past one 256-deep k-block.
  const std::tuple<int64_t, int64_t, int64_t> shapes[] = {{1, 37, 64}, {2, 9, 32}, {3, 17, 96}, {7, 20, 288},
                                                          {8, 33, 64}, {40, 50, 544}, {1, 8, 4096}};
  for (Isa isa : LevelsToTest()) {
    ScopedIsaLimit limit(isa);
    for (DType dtype : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_0x8, DType::kQ4G128x8})
    for (auto [T, N, K] : shapes) {
      // Interleaved matrices have whole 8-row groups; AWQ's layout whole groups of 128 inputs.
      if (dtype == DType::kQ4_0x8 || dtype == DType::kQ4G128x8) N = (N + 7) / 8 * 8;
      if (dtype == DType::kQ4G128x8) K = (K + 127) / 128 * 128;
      const std::string what = std::string(IsaName(isa)) + " " + DTypeName(dtype) + " T=" + std::to_string(T) +
                               " N=" + std::to_string(N) + " K=" + std::to_string(K);
      auto x = RandomFloats(T * K, 6);
      Weights w = MakeWeights(N, K, dtype, 7);
      auto bias = RandomFloats(N, 8);
      for (bool accumulate : {false, true}) {
        std::vector<float> y(T * N, 0.5f), ref(T * N, 0.5f);
        MatMul(x.data(), T, K, w.view, bias.data(), y.data(), accumulate, &pool);
        MatMulRef(x.data(), T, K, w.view, bias.data(), ref.data(), accumulate);
        // Both multiply the same dequantised values; the fast path sums per block then scales (one more rounding
        // per block), which the (K + 2)·u bound covers. Below 8 rows the activations are int8 too.
        ExpectClose(x, w, bias, accumulate ? 0.5f : 0.f, T, N, K, y, ref, what, T < 8);
        if (T < 8 && isa != Isa::kScalar) {
          // Against the portable int8 kernel: the same integer sums, scaled and added in another order.
          std::vector<float> y_scalar(T * N, 0.5f);
          {
            ScopedIsaLimit scalar(Isa::kScalar);
            MatMul(x.data(), T, K, w.view, bias.data(), y_scalar.data(), accumulate, &pool);
          }
          ExpectClose(x, w, bias, accumulate ? 0.5f : 0.f, T, N, K, y, y_scalar, what + " vs scalar int8");
        }
      }
    }
  }
}

TEST(Gemm, InterleavedQ4_0KeepsEveryValue) {
  const int64_t n = 16, k = 96;
  Weights plain = MakeWeights(n, k, DType::kQ4_0, 3), x8 = MakeWeights(n, k, DType::kQ4_0x8, 3);
  EXPECT_EQ(plain.blocks.size(), x8.blocks.size()) << "the same bytes, rearranged";
  EXPECT_NE(plain.blocks, x8.blocks);
  std::vector<float> a(k), b(k);
  for (int64_t r = 0; r < n; ++r) {
    RowToF32(plain.view, r, a.data());
    RowToF32(x8.view, r, b.data());
    EXPECT_EQ(a, b) << "row " << r;
  }
}

TEST(Gemm, ActivationQuantisationIsTheSameOnEveryLevel) {
  // Random blocks, an all-zero block, and values on rounding ties (x·127/max = k + 0.5 goes to the even k).
  const int64_t blocks = 9;
  std::vector<float> x = RandomFloats(blocks * 32, 11);
  for (int i = 0; i < 32; ++i) x[32 + i] = 0.f;
  for (int i = 0; i < 32; ++i) x[64 + i] = i == 0 ? 127.f : (i % 8) + 0.5f;
  std::vector<int8_t> q_ref(blocks * 32);
  std::vector<float> d_ref(blocks), ds_ref(blocks);
  gemm::ScalarKernels().quantise(x.data(), blocks, q_ref.data(), d_ref.data(), ds_ref.data());
  EXPECT_EQ(q_ref[64 + 1], 2) << "1.5 rounds to 2";
  EXPECT_EQ(q_ref[64 + 3], 4) << "3.5 rounds to 4";
  EXPECT_EQ(q_ref[64 + 2], 2) << "2.5 rounds to 2";
  EXPECT_EQ(d_ref[1], 0.f);
  for (int64_t b = 0; b < blocks; ++b) {
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      sum += q_ref[b * 32 + i];
      EXPECT_NEAR(q_ref[b * 32 + i] * d_ref[b], x[b * 32 + i], d_ref[b] * 0.5001) << b << "," << i;
    }
    EXPECT_FLOAT_EQ(ds_ref[b], d_ref[b] * sum);
  }
  for (Isa isa : LevelsToTest()) {
    const gemm::Kernels& k = gemm::KernelsFor(isa);
    std::vector<int8_t> q(blocks * 32);
    std::vector<float> d(blocks), ds(blocks);
    k.quantise(x.data(), blocks, q.data(), d.data(), ds.data());
    EXPECT_EQ(q, q_ref) << IsaName(isa);
    EXPECT_EQ(d, d_ref) << IsaName(isa);
    EXPECT_EQ(ds, ds_ref) << IsaName(isa);
  }
}

TEST(Gemm, Q8_0QuantisationIsGgufs) {
  // One block: d = max|x| / 127 stored as f16, q = round(x / d); the largest magnitude maps to ±127.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = (i - 10) * 0.37f;
  BlockQ8_0 b;
  QuantizeQ8_0(x.data(), &b, 32);
  EXPECT_EQ(b.d, F32ToF16(21 * 0.37f / 127));
  EXPECT_EQ(b.q[31], 127);
  EXPECT_EQ(b.q[10], 0);
  EXPECT_EQ(b.q[0], static_cast<int8_t>(std::lround(-10 * 0.37f / (21 * 0.37f / 127))));
  std::vector<float> back(32);
  ConvertToF32(DType::kQ8_0, &b, back.data(), 32);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(back[i], x[i], F16ToF32(b.d) * 0.5 + 1e-3) << i;
  const TensorView v{DType::kQ8_0, {2, 64}, &b};
  EXPECT_EQ(v.nbytes(), 4u * 34);
  EXPECT_EQ(v.row(1) - v.row(0), 2 * 34);
}

TEST(Gemm, Q4_0QuantisationIsGgufs) {
  // One block: the value of largest magnitude (here −9) gets code 0, i.e. d = −9 / −8; the others
  // q = min(15, trunc(x / d + 8.5)); low nibbles hold values 0..15, high nibbles 16..31.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = (i - 10) * 0.37f;
  x[3] = -9.f;
  BlockQ4_0 b;
  QuantizeQ4_0(x.data(), &b, 32);
  const float d = -9.f / -8.f;
  EXPECT_EQ(b.d, F32ToF16(d));
  EXPECT_EQ(b.qs[3] & 15, 0);
  EXPECT_EQ(Q4Code(b, 3), -8);
  for (int i = 0; i < 32; ++i) {
    const int want = std::min(15, static_cast<int>(static_cast<int8_t>(x[i] / d + 8.5f))) - 8;
    EXPECT_EQ(Q4Code(b, i), want) << i;
  }
  std::vector<float> back(32);
  ConvertToF32(DType::kQ4_0, &b, back.data(), 32);
  // Within half a step, except at the top, where code 15 (+7) clips values up to +8 steps.
  for (int i = 0; i < 32; ++i) {
    if (x[i] / d < 7.5f) EXPECT_NEAR(back[i], x[i], F16ToF32(b.d) * 0.5 + 1e-3) << i;
  }
  const TensorView v{DType::kQ4_0, {2, 64}, &b};
  EXPECT_EQ(v.nbytes(), 4u * 18);
  EXPECT_EQ(v.row(1) - v.row(0), 2 * 18);
}

TEST(Gemm, ResultDoesNotDependOnThreadCount) {
  // Each output is computed by one task whose arithmetic is fixed by the shape, whichever thread runs it.
  const int64_t T = 50, N = 70, K = 600;
  auto x = RandomFloats(T * K, 4);
  Weights w = MakeWeights(N, K, DType::kBF16, 5);
  std::vector<float> one(T * N), three(T * N);
  ThreadPool p1(1), p3(3);
  MatMul(x.data(), T, K, w.view, nullptr, one.data(), false, &p1);
  MatMul(x.data(), T, K, w.view, nullptr, three.data(), false, &p3);
  EXPECT_EQ(one, three);
}

TEST(Cpu, IsaNamesRoundTripAndLimitsOnlyLower) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16, Isa::kAmx}) {
    Isa parsed;
    ASSERT_TRUE(ParseIsa(IsaName(i), &parsed));
    EXPECT_EQ(parsed, i);
  }
  Isa dummy;
  EXPECT_FALSE(ParseIsa("sse9", &dummy));
  {
    ScopedIsaLimit limit(Isa::kScalar);
    EXPECT_EQ(ActiveIsa(), Isa::kScalar);
  }
  {
    ScopedIsaLimit limit(Isa::kAmx);
    EXPECT_EQ(ActiveIsa(), DetectedIsa());
  }
  EXPECT_FALSE(CpuDescription().empty());
}

}  // namespace
}  // namespace ixc
