// The elementwise and row kernels against their scalar twins, at every kernel level this CPU has.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"

namespace ixc {
namespace {

using testing::RandomFloats;

constexpr double kU = 1.0 / (1 << 24);  // unit roundoff of f32

std::vector<Isa> Levels() {
  std::vector<Isa> levels = {Isa::kScalar};
  if (DetectedIsa() >= Isa::kAvx2) levels.push_back(Isa::kAvx2);
  return levels;
}

// Sizes around the 8-wide vectors and the 64-element thread chunks, and one large enough to be split.
const int64_t kSizes[] = {1, 7, 8, 9, 63, 65, 1000, 70001};

TEST(Elementwise, SiluMulAndQuickGeluMatchTwins) {
  ThreadPool pool(3);
  for (Isa isa : Levels()) {
    ScopedIsaLimit limit(isa);
    for (int64_t n : kSizes) {
      // Wide range: the exp saturates at both ends (±100) and is exact near 0.
      auto a = RandomFloats(n, 1, -100, 100), b = RandomFloats(n, 2, -3, 3);
      for (int64_t i = 0; i < n; i += 5) a[i] *= 0.01f;
      std::vector<float> y(n), q = a;
      SiluMul(a.data(), b.data(), y.data(), n, &pool);
      QuickGeluInPlace(q.data(), n, &pool);
      for (int64_t i = 0; i < n; ++i) {
        // Both sides round e^x (a few ulp) and 3 more operations: 8 ulp of the result covers both.
        const double silu = Silu(a[i]) * b[i], gelu = QuickGelu(a[i]);
        ASSERT_NEAR(y[i], silu, 8 * kU * std::fabs(silu) + 1e-37) << IsaName(isa) << " silu(" << a[i] << ")";
        ASSERT_NEAR(q[i], gelu, 8 * kU * std::fabs(gelu) + 1e-37) << IsaName(isa) << " quick_gelu(" << a[i] << ")";
      }
    }
  }
}

TEST(Elementwise, ExpEdgesGiveZeroInfinityAndNan) {
  if (DetectedIsa() < Isa::kAvx2) GTEST_SKIP() << "no AVX2 on this CPU";
  std::vector<float> x = {-1e30f, -88.f, -87.f, 0.f, 88.f, 89.f, 1e30f, NAN};
  std::vector<float> y = x;
  QuickGeluInPlace(y.data(), static_cast<int64_t>(y.size()), nullptr);  // x / (1 + e^(-1.702x))
  EXPECT_EQ(y[0], 0.f);
  EXPECT_NEAR(y[1], -88.f * std::exp(-1.702 * 88), 1e-60);
  EXPECT_EQ(y[3], 0.f);
  EXPECT_EQ(y[4], 88.f);
  EXPECT_EQ(y[6], 1e30f);
  EXPECT_TRUE(std::isnan(y[7]));
}

TEST(Elementwise, AddAndGeluErf) {
  ThreadPool pool(2);
  for (Isa isa : Levels()) {
    ScopedIsaLimit limit(isa);
    for (int64_t n : kSizes) {
      auto x = RandomFloats(n, 3), y = RandomFloats(n, 4);
      auto sum = x, g = x;
      AddInPlace(sum.data(), y.data(), n, &pool);
      GeluErfInPlace(g.data(), n, &pool);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(sum[i], x[i] + y[i]);  // one rounding either way: bit-identical
        ASSERT_EQ(g[i], GeluErf(x[i]));
      }
    }
  }
}

TEST(Elementwise, NormsMatchTwins) {
  ThreadPool pool(3);
  for (Isa isa : Levels()) {
    ScopedIsaLimit limit(isa);
    for (int64_t D : {1, 7, 16, 97, 4096}) {
      const int64_t T = 37;
      auto x = RandomFloats(T * D, 5, -3, 3), w = RandomFloats(D, 6), b = RandomFloats(D, 7);
      std::vector<float> r(T * D), rr(T * D), l(T * D), lr(T * D);
      RmsNorm(x.data(), w.data(), T, D, 1e-5f, r.data(), &pool);
      RmsNormRef(x.data(), w.data(), T, D, 1e-5f, rr.data());
      LayerNorm(x.data(), w.data(), b.data(), T, D, 1e-5f, l.data(), &pool);
      LayerNormRef(x.data(), w.data(), b.data(), T, D, 1e-5f, lr.data());
      for (int64_t i = 0; i < T * D; ++i) {
        // Sums of D squares in different orders differ by D·u relatively; the rest adds a few roundings. The
        // layer norm's result may be near 0 after adding the bias: bound by the terms' magnitude.
        const double tol = (D + 8) * kU;
        ASSERT_NEAR(r[i], rr[i], tol * std::fabs(rr[i]) + 1e-30) << IsaName(isa) << " D=" << D;
        const double mag = std::fabs(lr[i] - b[i % D]) + std::fabs(b[i % D]);
        ASSERT_NEAR(l[i], lr[i], tol * mag + 1e-30) << IsaName(isa) << " D=" << D;
      }
    }
  }
}

TEST(Elementwise, StoreAsRoundsLikeTheScalarConversions) {
  for (Isa isa : Levels()) {
    ScopedIsaLimit limit(isa);
    auto x = RandomFloats(1003, 11, -70000, 70000);  // past f16's largest finite value (65504)
    for (int64_t i = 0; i < 1003; i += 3) x[i] *= 1e-6f;  // and into its subnormals
    x[5] = NAN;
    std::vector<uint16_t> h(x.size()), b(x.size());
    std::vector<float> f(x.size());
    StoreAs(DType::kF16, x.data(), h.data(), 1003);
    StoreAs(DType::kBF16, x.data(), b.data(), 1003);
    StoreAs(DType::kF32, x.data(), f.data(), 1003);
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::isnan(x[i])) {
        EXPECT_TRUE(std::isnan(F16ToF32(h[i])));
        continue;
      }
      ASSERT_EQ(h[i], F32ToF16(x[i])) << IsaName(isa) << " " << x[i];
      ASSERT_EQ(b[i], F32ToBf16(x[i]));
      ASSERT_EQ(f[i], x[i]);
    }
  }
}

TEST(Elementwise, StoreAsQ8_0IsTheSameOnEveryLevel) {
  // Random blocks, an all-zero block, and a block whose values land on rounding ties (x / d = k + 0.5).
  auto x = RandomFloats(32 * 6, 12, -3, 3);
  for (int i = 0; i < 32; ++i) x[32 + i] = 0.f;
  for (int i = 0; i < 32; ++i) x[64 + i] = i == 0 ? 127.f : (i % 8) + 0.5f;
  std::vector<uint8_t> want(StorageBytes(DType::kQ8_0, static_cast<int64_t>(x.size())));
  {
    ScopedIsaLimit scalar(Isa::kScalar);
    StoreAs(DType::kQ8_0, x.data(), want.data(), static_cast<int64_t>(x.size()));
  }
  std::vector<float> back(x.size());
  ConvertToF32(DType::kQ8_0, want.data(), back.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float d = F16ToF32(reinterpret_cast<const BlockQ8_0*>(want.data())[i / 32].d);
    // Half a step, plus the f16 rounding of d scaled up to the block's largest code.
    ASSERT_NEAR(back[i], x[i], d * (0.5 + 127 * 0x1p-11) + 1e-6) << i;
  }
  EXPECT_EQ(reinterpret_cast<const BlockQ8_0*>(want.data())[2].q[3], 4) << "3.5 rounds to even";
  for (Isa isa : Levels()) {
    ScopedIsaLimit limit(isa);
    std::vector<uint8_t> got(want.size());
    StoreAs(DType::kQ8_0, x.data(), got.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(got, want) << IsaName(isa);
  }
}

TEST(Elementwise, NormsWorkInPlace) {
  const int64_t T = 5, D = 33;
  auto x = RandomFloats(T * D, 8, -2, 2), w = RandomFloats(D, 9), b = RandomFloats(D, 10);
  std::vector<float> out(T * D), in_place = x;
  LayerNorm(x.data(), w.data(), b.data(), T, D, 1e-5f, out.data());
  LayerNorm(in_place.data(), w.data(), b.data(), T, D, 1e-5f, in_place.data());
  EXPECT_EQ(in_place, out);
}

}  // namespace
}  // namespace ixc
