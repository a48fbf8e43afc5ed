#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <chrono>
#include <thread>

#include "core/base64.h"
#include "core/dtype.h"
#include "core/status.h"
#include "core/testing.h"
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

// RFC 4648 §10's vectors, random bytes both ways, and what the decoder refuses.
TEST(Base64, KnownVectorsRoundTripAndMalformedInput) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                          {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                          {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(EncodeBase64(plain), coded);
    EXPECT_EQ(DecodeBase64(coded).value_or("?"), plain);
  }
  std::mt19937 rng(3);
  for (int n = 0; n < 70; ++n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string coded = EncodeBase64(bytes);
    EXPECT_EQ(DecodeBase64(coded).value_or("x"), bytes) << n;
    while (!coded.empty() && coded.back() == '=') coded.pop_back();
    EXPECT_EQ(DecodeBase64(coded).value_or("x"), bytes) << n;  // padding is optional
  }
  EXPECT_FALSE(DecodeBase64("ab$d").has_value());
  EXPECT_FALSE(DecodeBase64("abcde").has_value());
  EXPECT_FALSE(DecodeBase64("ab d").has_value());
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

TEST(ThreadPool, ManyQuickJobsAndJobsAfterSleeping) {
  // Thousands of back-to-back jobs (workers spinning), then jobs after pauses longer than the spin (workers asleep).
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  for (int i = 0; i < 2000; ++i) {
    pool.ParallelFor(3 + i % 5, [&](int64_t b, int64_t e, int) { sum += e - b; });
  }
  int64_t want = 0;
  for (int i = 0; i < 2000; ++i) want += 3 + i % 5;
  EXPECT_EQ(sum.load(), want);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::atomic<int> chunks{0};
    pool.ParallelFor(3, [&](int64_t, int64_t, int) { chunks++; });
    EXPECT_EQ(chunks.load(), 3);
  }
}

TEST(ThreadPool, NestedCallsRunInlineWithTheSameChunks) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(40);
  pool.ParallelFor(4, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      pool.ParallelFor(10, [&](int64_t b2, int64_t e2, int) {
        for (int64_t j = b2; j < e2; ++j) hits[i * 10 + j]++;
      });
    }
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, ConcurrentCallersTakeTurns) {
  auto pool = SharedThreadPool(2);
  EXPECT_EQ(pool, SharedThreadPool(2));  // one pool per process and size
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 300; ++i) pool->ParallelFor(7, [&](int64_t b, int64_t e, int) { total += e - b; });
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 3 * 300 * 7);
}

TEST(Status, ResultCarriesErrorsAndValues) {
  Result<int> good = 3;
  EXPECT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  Result<int> bad = InvalidArgument("nope");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "nope");
}

// Test fixtures (some are 100 MB converted models) must not pile up in the temp dir: a process's directories go
// when it exits normally, and a forked child's exit leaves its parent's alone.
TEST(Testing, TempDirsAreRemovedWhenTheProcessExits) {
  const char* keep = std::getenv("IXC_KEEP_TEST_DIRS");
  if (keep && *keep && std::string(keep) != "0") GTEST_SKIP() << "IXC_KEEP_TEST_DIRS is set";
  const std::string mine = testing::MakeTempDir("parent");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::fflush(nullptr);  // (buffered output would be written twice, once by each process)
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    const std::string dir = testing::MakeTempDir("child");
    testing::WriteFile(dir + "/file", "x");
    const bool sent = ::write(fds[1], dir.data(), dir.size()) == static_cast<ssize_t>(dir.size());
    ::close(fds[1]);
    std::exit(sent ? 0 : 1);  // a normal exit: static destructors run
  }
  ::close(fds[1]);
  std::string child;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) child.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_FALSE(child.empty());
  EXPECT_FALSE(std::filesystem::exists(child)) << child;
  EXPECT_TRUE(std::filesystem::exists(mine)) << mine;
}

}  // namespace
}  // namespace ixc
