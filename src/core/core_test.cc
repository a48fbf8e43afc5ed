#include <atomic>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace ixc {
namespace {

TEST(DType, Bf16RoundTripAndRounding) {
  for (float f : {0.f, 1.f, -2.5f, 3.1415926f, 1e-30f, -65504.f}) {
    float back = Bf16ToF32(F32ToBf16(f));
    EXPECT_NEAR(back, f, std::fabs(f) * (1.0 / 256));
  }
  // 1 + 2^-8 is a tie between 1 and 1+2^-7: round to even gives 1.
  EXPECT_EQ(Bf16ToF32(F32ToBf16(1.0f + 1.0f / 256)), 1.0f);
}

TEST(DType, F16MatchesKnownEncodings) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToF16(65504.f), 0x7bff);
  EXPECT_EQ(F32ToF16(1e6f), 0x7c00);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  for (uint32_t h = 0; h < 0x7c00; ++h) EXPECT_EQ(F32ToF16(F16ToF32(h)), h) << h;
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 3, 7, 1000}) {
    std::vector<std::atomic<int>> hits(n);
    pool.ParallelFor(n, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1);
  }
}

TEST(Status, ResultCarriesErrorsAndValues) {
  Result<int> good = 3;
  EXPECT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  Result<int> bad = InvalidArgument("nope");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "nope");
}

}  // namespace
}  // namespace ixc
