#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "kernels/kernels.h"

namespace ixc {
namespace {

using testing::RandomFloats;

TEST(MatMul, ScalarTwinMatchesDoubleArithmetic) {
  const int64_t T = 3, N = 5, K = 300;
  auto x = RandomFloats(T * K, 4), wv = RandomFloats(N * K, 5);
  TensorView w{DType::kF32, {N, K}, wv.data()};
  std::vector<float> y(T * N);
  MatMulRef(x.data(), T, K, w, nullptr, y.data(), false);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        s += static_cast<double>(x[t * K + k]) * wv[n * K + k];
        mag += std::fabs(x[t * K + k] * wv[n * K + k]);
      }
      EXPECT_NEAR(y[t * N + n], s, K * std::ldexp(1.0, -24) * mag);
    }
}

TEST(Norms, RmsNormAndLayerNormMatchDouble) {
  const int64_t T = 3, D = 97;
  auto x = RandomFloats(T * D, 6, -3, 3), w = RandomFloats(D, 7), b = RandomFloats(D, 8);
  std::vector<float> y(T * D), z(T * D);
  RmsNormRef(x.data(), w.data(), T, D, 1e-5f, y.data());
  LayerNormRef(x.data(), w.data(), b.data(), T, D, 1e-5f, z.data());
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0, mean = 0, var = 0;
    for (int64_t i = 0; i < D; ++i) ss += double(x[t * D + i]) * x[t * D + i], mean += x[t * D + i];
    mean /= D;
    for (int64_t i = 0; i < D; ++i) var += (x[t * D + i] - mean) * (x[t * D + i] - mean);
    var /= D;
    for (int64_t i = 0; i < D; ++i) {
      EXPECT_NEAR(y[t * D + i], w[i] * x[t * D + i] / std::sqrt(ss / D + 1e-5), 1e-5);
      EXPECT_NEAR(z[t * D + i], (x[t * D + i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i], 1e-5);
    }
  }
}

TEST(Activations, KnownValues) {
  EXPECT_NEAR(Silu(1.0f), 1.0 / (1 + std::exp(-1.0)), 1e-7);
  EXPECT_NEAR(GeluErf(1.0f), 0.8413447460685429, 1e-7);
  EXPECT_NEAR(GeluErf(-2.0f), -0.04550026389635842, 1e-7);
  EXPECT_NEAR(QuickGelu(0.5f), 0.5 / (1 + std::exp(-0.851)), 1e-7);
}

TEST(Rope, RotateHalfRotatesEachPairByItsAngle) {
  const int64_t d = 8;
  auto x = RandomFloats(d, 9);
  std::vector<float> ang = {0.1f, 1.0f, 2.0f, -0.5f}, c(4), s(4);
  for (int i = 0; i < 4; ++i) c[i] = std::cos(ang[i]), s[i] = std::sin(ang[i]);
  std::vector<float> y = x;
  RotateHalf(y.data(), d, c.data(), s.data());
  for (int i = 0; i < 4; ++i) {
    // (x_i, x_{i+h}) is rotated as the complex number x_i + j·x_{i+h}.
    EXPECT_NEAR(y[i], x[i] * c[i] - x[i + 4] * s[i], 1e-6);
    EXPECT_NEAR(y[i + 4], x[i + 4] * c[i] + x[i] * s[i], 1e-6);
    EXPECT_NEAR(y[i] * y[i] + y[i + 4] * y[i + 4], x[i] * x[i] + x[i + 4] * x[i + 4], 1e-5);
  }
}

TEST(Attention, SegmentsEqualOneContiguousRun) {
  const int64_t d = 16, n = 11, stride = 24;
  auto q = RandomFloats(d, 10), kv = RandomFloats(n * stride, 11), vv = RandomFloats(n * stride, 12);
  std::vector<float> out1(d), out2(d), scratch(n);
  KvSegment whole{kv.data(), vv.data(), n, stride};
  Attention(q.data(), d, std::span(&whole, 1), 0.25f, out1.data(), scratch.data());
  KvSegment parts[2] = {{kv.data(), vv.data(), 4, stride}, {kv.data() + 4 * stride, vv.data() + 4 * stride, n - 4, stride}};
  Attention(q.data(), d, parts, 0.25f, out2.data(), scratch.data());
  // Naive double reference.
  std::vector<double> p(n);
  double m = -1e300, sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(q[j]) * kv[i * stride + j];
    p[i] = s * 0.25;
    m = std::max(m, p[i]);
  }
  for (auto& v : p) sum += (v = std::exp(v - m));
  for (int64_t j = 0; j < d; ++j) {
    double o = 0;
    for (int64_t i = 0; i < n; ++i) o += p[i] / sum * vv[i * stride + j];
    EXPECT_NEAR(out1[j], o, 1e-6);
    EXPECT_NEAR(out2[j], o, 1e-6);
  }
}

}  // namespace
}  // namespace ixc
