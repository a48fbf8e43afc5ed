#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
#include "core/mapped_file.h"
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

// The reference for FindNonFinite: every value converted to f32 on its own (block types: scale × code, which is
// NaN or inf for every value of a block whose scale is, the zero code included).
int64_t NaiveFindNonFinite(DType t, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> f(n);
  if (t == DType::kF64) {
    for (int64_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, bytes.data() + 8 * i, 8);
      f[i] = std::isfinite(d) ? 0.f : NAN;
    }
  } else {
    ConvertToF32(t, bytes.data(), f.data(), n);
  }
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(f[i])) return i;
  return -1;
}

// Random finite values in each float and block type, ragged lengths across the 4096-value chunks, then a NaN or
// ±inf planted at random places (bit patterns with any mantissa): the scan agrees with the naive conversion.
TEST(DType, FindNonFiniteAgreesWithConvertingEachValue) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kQ8_0, DType::kQ4_0}) {
    for (int trial = 0; trial < 40; ++trial) {
      const bool block = IsBlockType(t);
      int64_t n = 1 + rng() % 20000;
      if (block) n = (n + 31) / 32 * 32;
      std::vector<float> x(n);
      for (float& v : x) v = u(rng);
      const int64_t bytes = block ? StorageBytes(t, n) : n * static_cast<int64_t>(DTypeSize(t));
      std::vector<uint8_t> buf(bytes + 1);
      uint8_t* p = buf.data() + 1;  // unaligned on purpose: mapped tensors need not be aligned
      for (int64_t i = 0; i < n && !block; ++i) {
        if (t == DType::kF32) std::memcpy(p + 4 * i, &x[i], 4);
        if (t == DType::kF64) { double d = x[i]; std::memcpy(p + 8 * i, &d, 8); }
        if (t == DType::kF16) { uint16_t h = F32ToF16(x[i]); std::memcpy(p + 2 * i, &h, 2); }
        if (t == DType::kBF16) { uint16_t h = F32ToBf16(x[i]); std::memcpy(p + 2 * i, &h, 2); }
      }
      if (block) {  // quantised into aligned memory (block structs need it), then placed at the unaligned address
        std::vector<uint8_t> blocks(bytes);
        QuantizeBlocks(t, x.data(), blocks.data(), n);
        std::memcpy(p, blocks.data(), bytes);
      }
      std::vector<uint8_t> copy(p, p + bytes);
      ASSERT_EQ(FindNonFinite(t, p, n), -1) << DTypeName(t);
      ASSERT_EQ(NaiveFindNonFinite(t, copy, n), -1);
      // Plant 1-3 non-finite values (or scales) at random places.
      for (int k = 0, plants = 1 + rng() % 3; k < plants; ++k) {
        const uint32_t mant = rng() % 3 == 0 ? 0 : 1 + rng() % 0x3ff;  // inf or some NaN
        const bool neg = rng() % 2;
        if (block) {
          const int64_t b = rng() % (n / 32);
          const uint16_t h = static_cast<uint16_t>((neg ? 0x8000 : 0) | 0x7c00 | mant);
          std::memcpy(p + b * DTypeBlockBytes(t), &h, 2);
        } else {
          const int64_t i = rng() % n;
          if (t == DType::kF32) { uint32_t v = (neg ? 0x80000000u : 0) | 0x7f800000u | (mant << 13); std::memcpy(p + 4 * i, &v, 4); }
          if (t == DType::kF64) { uint64_t v = (neg ? 1ull << 63 : 0) | 0x7ff0000000000000ull | (uint64_t{mant} << 42); std::memcpy(p + 8 * i, &v, 8); }
          if (t == DType::kF16) { uint16_t v = static_cast<uint16_t>((neg ? 0x8000 : 0) | 0x7c00 | mant); std::memcpy(p + 2 * i, &v, 2); }
          if (t == DType::kBF16) { uint16_t v = static_cast<uint16_t>((neg ? 0x8000 : 0) | 0x7f80 | (mant & 0x7f)); std::memcpy(p + 2 * i, &v, 2); }
        }
      }
      copy.assign(p, p + bytes);
      const int64_t want = NaiveFindNonFinite(t, copy, n);
      ASSERT_GE(want, 0);
      EXPECT_EQ(FindNonFinite(t, p, n), want) << DTypeName(t) << " n=" << n;
    }
  }
  // Integer types hold no floats.
  const int32_t ints[3] = {0x7f800000, -1, 0x7fc00000};
  EXPECT_EQ(FindNonFinite(DType::kI32, ints, 3), -1);
}

// The load-time interleaved types: a bad scale (Q4_0x8) or offset (Q4G128x8) in block 1 is found at its first value.
TEST(DType, FindNonFiniteReadsTheInterleavedScalesAndOffsets) {
  std::vector<BlockQ4_0x8> q4(3);
  std::memset(q4.data(), 0, sizeof(BlockQ4_0x8) * 3);
  for (auto& b : q4) for (uint16_t& d : b.d) d = F32ToF16(0.5f);
  EXPECT_EQ(FindNonFinite(DType::kQ4_0x8, q4.data(), 3 * 256), -1);
  q4[1].d[5] = 0x7e00;
  EXPECT_EQ(FindNonFinite(DType::kQ4_0x8, q4.data(), 3 * 256), 256);
  std::vector<BlockQ4G128x8> g(3);
  std::memset(g.data(), 0, sizeof(BlockQ4G128x8) * 3);
  EXPECT_EQ(FindNonFinite(DType::kQ4G128x8, g.data(), 3 * 1024), -1);
  g[1].m[7] = INFINITY;
  EXPECT_EQ(FindNonFinite(DType::kQ4G128x8, g.data(), 3 * 1024), 1024);
  g[1].m[7] = 0;
  g[2].d[0] = 0xfc00;
  EXPECT_EQ(FindNonFinite(DType::kQ4G128x8, g.data(), 3 * 1024), 2048);
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
// Resident pages of this process (/proc/self/statm's second field).
int64_t ResidentPages() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident;
}

// Released mapped pages leave the resident set and read back unchanged; owned memory and pages made writable (and
// written) are left alone, whatever the caller passes.
TEST(MappedFile, ReleasedPagesLeaveTheResidentSetAndReadBackUnchanged) {
  const std::string path = testing::MakeTempDir("release_pages") + "/data.bin";
  const size_t n = 32u << 20;
  std::string bytes(n, '\0');
  std::mt19937 rng(3);
  for (char& c : bytes) c = static_cast<char>(rng());
  testing::WriteFile(path, bytes);
  auto f = MappedFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const uint8_t* p = (*f)->data();
  volatile uint64_t sum = 0;  // volatile: the reads must happen
  for (size_t i = 0; i < n; i += 512) sum = sum + p[i];  // map every page
  const int64_t before = ResidentPages();
  ReleaseMappedPages(p + 100, n - 200);  // ragged ends: only whole pages inside go
  const int64_t after = ResidentPages();
  EXPECT_LT(after, before - static_cast<int64_t>((n / 2) / sysconf(_SC_PAGESIZE))) << before << " -> " << after;
  EXPECT_EQ(std::memcmp(p, bytes.data(), n), 0);
  // Pages written through MakePagesWritable keep what was written.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  ASSERT_TRUE(MakePagesWritable(p + 4 * page, page).ok());
  uint8_t* w = const_cast<uint8_t*>(p) + 4 * page;
  std::memset(w, 0x5a, page);
  ReleaseMappedPages(p, n);
  for (size_t i = 0; i < page; ++i) ASSERT_EQ(w[i], 0x5a) << i;
  // Owned memory is not a mapping: left as it is.
  std::vector<uint8_t> owned(n, 7);
  ReleaseMappedPages(owned.data(), owned.size());
  EXPECT_EQ(std::count(owned.begin(), owned.end(), 7), static_cast<std::ptrdiff_t>(n));
  (void)sum;
}

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
