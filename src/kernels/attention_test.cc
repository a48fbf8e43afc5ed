#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"

namespace ixc {
namespace {

using testing::RandomFloats;

struct Shape {
  int64_t rows, q_heads, kv_heads, head_dim;
  std::vector<int64_t> runs;  // key count of each KvRun
  DType dtype = DType::kF32;
  int64_t causal_offset = -1;
  float q_range = 1.f;  // q (and k) uniform in ±q_range
};

std::string Describe(const Shape& s) {
  std::string r = "T=" + std::to_string(s.rows) + " Hq=" + std::to_string(s.q_heads) +
                  " Hkv=" + std::to_string(s.kv_heads) + " D=" + std::to_string(s.head_dim) + " runs=";
  for (int64_t n : s.runs) r += std::to_string(n) + ",";
  return r + " " + DTypeName(s.dtype) + " causal=" + std::to_string(s.causal_offset);
}

// Inputs with padded strides (rows longer than the heads they hold) and the values as the kernels see them.
struct Problem {
  Shape shape;
  int64_t q_stride, out_stride, kv_stride;
  std::vector<float> q;
  std::vector<std::vector<float>> k, v;         // f32 storage, or the widened f16 / Q8_0 values
  std::vector<std::vector<uint16_t>> kh, vh;    // f16 storage
  std::vector<std::vector<uint8_t>> kq, vq;     // Q8_0 storage
  std::vector<KvRun> runs;

  AttentionArgs Args(float* out) const {
    AttentionArgs a;
    a.rows = shape.rows;
    a.q_heads = shape.q_heads;
    a.kv_heads = shape.kv_heads;
    a.head_dim = shape.head_dim;
    a.q = q.data();
    a.q_stride = q_stride;
    a.out = out;
    a.out_stride = out_stride;
    a.kv = runs;
    a.causal_offset = shape.causal_offset;
    a.scale = 1.f / std::sqrt(static_cast<float>(shape.head_dim));
    return a;
  }
};

std::unique_ptr<Problem> MakeProblem(const Shape& s, uint32_t seed) {
  auto p = std::make_unique<Problem>();
  p->shape = s;
  const int64_t D = s.head_dim;
  p->q_stride = s.q_heads * D + 5;
  p->out_stride = s.q_heads * D + 7;
  // Q8_0 rows pad by a whole block (its rows and heads are whole blocks).
  p->kv_stride = s.kv_heads * D + (s.dtype == DType::kQ8_0 ? 32 : 3);
  p->q = RandomFloats(s.rows * p->q_stride, seed, -s.q_range, s.q_range);
  for (size_t r = 0; r < s.runs.size(); ++r) {
    const size_t n = std::max<int64_t>(s.runs[r], 1) * p->kv_stride;
    p->k.push_back(RandomFloats(n, seed + 100 + 2 * r, -s.q_range, s.q_range));
    p->v.push_back(RandomFloats(n, seed + 101 + 2 * r));
    if (s.dtype == DType::kQ8_0) {
      for (auto* pair : {&p->k, &p->v}) {
        auto& f = pair->back();
        auto& q = pair == &p->k ? p->kq : p->vq;
        q.emplace_back(StorageBytes(DType::kQ8_0, static_cast<int64_t>(f.size())));
        QuantizeQ8_0(f.data(), q.back().data(), static_cast<int64_t>(f.size()));
        ConvertToF32(DType::kQ8_0, q.back().data(), f.data(), f.size());
      }
    }
    if (s.dtype == DType::kF16) {
      for (auto* pair : {&p->k, &p->v}) {
        auto& f = pair->back();
        auto& h = pair == &p->k ? p->kh : p->vh;
        h.emplace_back(f.size());
        for (size_t i = 0; i < f.size(); ++i) {
          h.back()[i] = F32ToF16(f[i]);
          f[i] = F16ToF32(h.back()[i]);
        }
      }
    }
  }
  for (size_t r = 0; r < s.runs.size(); ++r) {
    const void* k = p->k[r].data();
    const void* v = p->v[r].data();
    if (s.dtype == DType::kF16) {
      k = p->kh[r].data();
      v = p->vh[r].data();
    } else if (s.dtype == DType::kQ8_0) {
      k = p->kq[r].data();
      v = p->vq[r].data();
    }
    p->runs.push_back({s.dtype, k, v, s.runs[r], p->kv_stride});
  }
  return p;
}

constexpr float kSentinel = 1234.5f;

std::vector<float> Compute(const Problem& p, ThreadPool* pool, bool ref) {
  std::vector<float> out(p.shape.rows * p.out_stride, kSentinel);
  const AttentionArgs a = p.Args(out.data());
  if (ref) {
    MultiHeadAttentionRef(a);
  } else {
    MultiHeadAttention(a, pool);
  }
  return out;
}

// Checks `got` against the exact (double) reference with a bound derived from f32 arithmetic, u = 2^-24:
//  - a score is a D-term f32 dot product of the pre-scaled query (scale·log2 e rounded: 3 roundings) and the key, so
//    its error is at most E_j = (D + 3)·u·scale·log2(e)·Σ_d |q_d·k_jd| in log2 units;
//  - a softmax weight depends on s_j and the normaliser, so its relative error is at most ln 2·2·max_j E_j;
//  - each 2^x is within 2u, and the running sum and Σ p·v accumulate n keys in f32 (n·u each), plus the rescales
//    and the final division: (2n + 16)·u;
//  - all of it relative to Σ w_j·|v_jd| <= max_j |v_jd|, plus half an ulp for the reference's own rounding.
void ExpectClose(const Problem& p, const std::vector<float>& got, const std::vector<float>& ref) {
  const Shape& s = p.shape;
  const int64_t D = s.head_dim, G = s.q_heads / s.kv_heads;
  const double u = std::ldexp(1.0, -24), scale = 1.0 / std::sqrt(static_cast<double>(D));
  int64_t N = 0;
  for (int64_t n : s.runs) N += n;
  for (int64_t t = 0; t < s.rows; ++t) {
    const int64_t visible = s.causal_offset >= 0 ? std::clamp<int64_t>(s.causal_offset + t + 1, 0, N) : N;
    for (int64_t h = 0; h < s.q_heads; ++h) {
      const float* q = &p.q[t * p.q_stride + h * D];
      const int64_t col = (h / G) * D;
      double e_max = 0;
      std::vector<double> vmax(D, 0.0);
      int64_t j = 0;
      for (size_t r = 0; r < s.runs.size() && j < visible; ++r) {
        for (int64_t jj = 0; jj < s.runs[r] && j < visible; ++jj, ++j) {
          const float* k = &p.k[r][jj * p.kv_stride + col];
          const float* v = &p.v[r][jj * p.kv_stride + col];
          double mag = 0;
          for (int64_t d = 0; d < D; ++d) mag += std::fabs(double{q[d]} * k[d]);
          e_max = std::max(e_max, (D + 3) * u * scale * std::numbers::log2e * mag);
          for (int64_t d = 0; d < D; ++d) vmax[d] = std::max(vmax[d], std::fabs(double{v[d]}));
        }
      }
      for (int64_t d = 0; d < D; ++d) {
        const size_t at = t * p.out_stride + h * D + d;
        const double tol =
            (2 * std::numbers::ln2 * 2 * e_max + (2 * visible + 16) * u) * vmax[d] + u * std::fabs(ref[at]);
        ASSERT_TRUE(std::isfinite(got[at])) << Describe(s) << " t=" << t << " h=" << h << " d=" << d;
        ASSERT_NEAR(got[at], ref[at], tol) << Describe(s) << " t=" << t << " h=" << h << " d=" << d;
      }
    }
  }
  // Bytes between the heads of a row (the stride padding) are left alone.
  for (int64_t t = 0; t < s.rows; ++t)
    for (int64_t x = s.q_heads * D; x < p.out_stride; ++x) ASSERT_EQ(got[t * p.out_stride + x], kSentinel);
}

void CheckAgainstRef(const Shape& s, ThreadPool* pool, uint32_t seed) {
  const auto p = MakeProblem(s, seed);
  const auto ref = Compute(*p, nullptr, true);
  const auto got = Compute(*p, pool, false);
  ExpectClose(*p, got, ref);
}

// Splits n keys into one run, or two (a shared prefix and the rest) when `two`.
std::vector<int64_t> Runs(int64_t n, bool two) {
  if (!two || n < 2) return {n};
  return {n / 3 + 1, n - (n / 3 + 1)};
}

class AttentionIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { limit_ = std::make_unique<ScopedIsaLimit>(GetParam()); }
  void TearDown() override { limit_.reset(); }

 private:
  std::unique_ptr<ScopedIsaLimit> limit_;
};

TEST_P(AttentionIsa, MatchesRefOverHeadShapesAndDtypes) {
  ThreadPool pool(3);
  // (q heads, kv heads, head dim): GQA ratios 1/2/4 (and 8), head dims 16/64/128 and odd ones.
  const int64_t shapes[][3] = {{2, 2, 16}, {4, 2, 64}, {8, 2, 128}, {4, 1, 20}, {3, 3, 3}, {16, 2, 8}};
  uint32_t seed = 1;
  for (auto [hq, hkv, d] : shapes) {
    for (DType dt : {DType::kF32, DType::kF16}) {
      for (int64_t T : {1, 5, 50}) {
        for (int64_t N : {1, 65, 600}) {
          if (N < T) continue;
          for (int64_t causal : {int64_t{-1}, N - T}) {
            Shape s{T, hq, hkv, d, Runs(N, seed % 2 == 0), dt, causal};
            CheckAgainstRef(s, &pool, seed++);
          }
        }
      }
    }
  }
}

TEST_P(AttentionIsa, RaggedKeyCountsAroundTheBlocks) {
  // Block 64 keys, split chunk 512: counts on either side of both, one and two runs, decode and a few rows.
  ThreadPool pool(2);
  uint32_t seed = 100;
  for (int64_t N : {1, 7, 8, 63, 64, 65, 127, 128, 129, 511, 512, 513, 1100}) {
    for (int64_t T : {1, 3, 17}) {
      for (bool two : {false, true}) {
        for (int64_t causal : {int64_t{-1}, N > T ? N - T : 0}) {
          Shape s{T, 8, 2, 64, Runs(N, two), two ? DType::kF16 : DType::kF32, causal};
          CheckAgainstRef(s, &pool, seed++);
        }
      }
    }
  }
}

TEST_P(AttentionIsa, DecodeWithEightKvHeadsAndLongCaches) {
  // The decode shape: 32 query heads over 8 KV heads of 128, thousands of keys split into chunks whose items walk
  // every KV head block by block; a prompt prefix run and a beam's own run; one row and a few (causal).
  ThreadPool pool(2);
  uint32_t seed = 500;
  for (DType dt : {DType::kF16, DType::kF32}) {
    for (int64_t T : {1, 3}) {
      for (int64_t N : {700, 4100}) {
        Shape s{T, 32, 8, 128, Runs(N, N > 1000), dt, T > 1 ? N - T : -1};
        CheckAgainstRef(s, &pool, seed++);
      }
    }
  }
}

TEST_P(AttentionIsa, Q8_0CacheMatchesRef) {
  // The q8_0 KV cache: head dims of whole blocks; decode (row layout, widened copies) and prompts (transposed).
  ThreadPool pool(2);
  uint32_t seed = 900;
  for (auto [hq, hkv, d] : {std::tuple<int64_t, int64_t, int64_t>{32, 8, 128}, {4, 2, 64}, {2, 2, 32}}) {
    for (int64_t T : {1, 3, 40}) {
      for (int64_t N : {65, 700}) {
        Shape s{T, hq, hkv, d, Runs(N, N > 100), DType::kQ8_0, T > 1 ? N - T : -1};
        CheckAgainstRef(s, &pool, seed++);
      }
    }
  }
}

TEST_P(AttentionIsa, RaggedRowCountsAndCausalOffsets) {
  // Rows around the tile sizes (48 queries: 48 rows at G = 1, 12 rows at G = 4), ViT-like causal (offset 0),
  // chunked prefill (offset = rows already cached), and offsets whose last rows see past the end (clamped).
  ThreadPool pool(3);
  uint32_t seed = 300;
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{2, 2}, {8, 2}}) {
    for (int64_t T : {4, 11, 12, 13, 47, 48, 49, 97}) {
      for (int64_t offset : {int64_t{-1}, int64_t{0}, int64_t{70}}) {
        const int64_t N = offset < 0 ? 130 : offset + T - (T > 20 ? 5 : 0);
        Shape s{T, hq, hkv, 32, Runs(N, T % 2 == 1), T % 3 == 0 ? DType::kF16 : DType::kF32, offset};
        CheckAgainstRef(s, &pool, seed++);
      }
    }
  }
}

TEST_P(AttentionIsa, LargeScoreSpreadStaysFiniteAndExact) {
  // q and k in ±10 with head dim 64: scores (after the 1/8 scale) spread over about ±80, so most weights
  // underflow relative to the largest; nothing may overflow or turn NaN.
  for (DType dt : {DType::kF32, DType::kF16}) {
    for (int64_t T : {1, 40}) {
      Shape s{T, 4, 2, 64, {300, 200}, dt, -1, 10.f};
      const auto p = MakeProblem(s, 7);
      double spread = 0;
      for (int64_t j = 0; j < 100; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < 64; ++d) dot += double{p->q[d]} * p->k[0][j * p->kv_stride + d];
        spread = std::max(spread, std::fabs(dot / 8));
      }
      EXPECT_GT(spread, 60.0);
      ThreadPool pool(2);
      ExpectClose(*p, Compute(*p, &pool, false), Compute(*p, nullptr, true));
    }
  }
}

TEST_P(AttentionIsa, BitIdenticalForAnyThreadCount) {
  // The split of rows, heads and keys depends only on the shapes, so the thread count cannot change a bit.
  ThreadPool two(2), three(3);
  for (const Shape& s : {Shape{1, 32, 8, 128, {700, 900}, DType::kF16, 1599},
                         Shape{30, 8, 2, 64, {100, 140}, DType::kF32, 210}, Shape{97, 2, 2, 16, {97}}}) {
    const auto p = MakeProblem(s, 11);
    const auto base = Compute(*p, nullptr, false);
    for (ThreadPool* pool : {&two, &three}) {
      const auto got = Compute(*p, pool, false);
      EXPECT_EQ(0, std::memcmp(got.data(), base.data(), got.size() * sizeof(float))) << Describe(s);
    }
  }
}

TEST_P(AttentionIsa, NoKeysGivesZeros) {
  Shape s{3, 2, 1, 16, {}};
  const auto p = MakeProblem(s, 3);
  const auto got = Compute(*p, nullptr, false);
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t x = 0; x < 32; ++x) EXPECT_EQ(got[t * p->out_stride + x], 0.f);
}

INSTANTIATE_TEST_SUITE_P(, AttentionIsa, ::testing::Values(Isa::kScalar, DetectedIsa()),
                         [](const ::testing::TestParamInfo<Isa>& i) {
                           return std::string(i.index == 0 ? "Scalar_" : "Default_") + IsaName(i.param);
                         });

TEST(AttentionRef, MatchesTheOldSingleHeadKernel) {
  // The twin agrees with the kernel it replaces (per row and head, f32, causal over two segments).
  const int64_t T = 4, Hq = 4, Hkv = 2, D = 16, N0 = 5, N1 = 9;
  Shape s{T, Hq, Hkv, D, {N0, N1}, DType::kF32, N0 + N1 - T};
  const auto p = MakeProblem(s, 5);
  const auto ref = Compute(*p, nullptr, true);
  std::vector<float> scores(N0 + N1), out(D);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t col = (h / 2) * D;
      KvSegment segs[2] = {{p->k[0].data() + col, p->v[0].data() + col, N0, p->kv_stride},
                           {p->k[1].data() + col, p->v[1].data() + col, N1 - T + 1 + t, p->kv_stride}};
      Attention(&p->q[t * p->q_stride + h * D], D, segs, 0.25f, out.data(), scores.data());
      for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(out[d], ref[t * p->out_stride + h * D + d], 1e-5);
    }
  }
}

}  // namespace
}  // namespace ixc
