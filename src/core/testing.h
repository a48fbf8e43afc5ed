// Helpers shared by the test binaries (linked into tests only).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ixc::testing {

// $IXC_GOLDEN_DIR, else ../shared/golden beside the source tree. Empty when the folder is absent.
std::string GoldenDir();

// A fresh empty directory under the system temp dir, unique per call; removed with its contents when the test
// process exits normally (unless IXC_KEEP_TEST_DIRS=1).
std::string MakeTempDir(const std::string& tag);

// Writes bytes to a file (for hostile-file tests).
void WriteFile(const std::string& path, const std::string& bytes);

// Uniform random floats in [lo, hi) from a fixed seed (tests never use zeros as inputs).
std::vector<float> RandomFloats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f);

// Relative L2 error ||a-b|| / ||b||.
double RelL2(const float* a, const float* b, size_t n);

}  // namespace ixc::testing

// Skips the current test, with a message saying why, when the golden folder is missing.
#define IXC_REQUIRE_GOLDEN()                                                                         \
  do {                                                                                               \
    if (::ixc::testing::GoldenDir().empty())                                                         \
      GTEST_SKIP() << "golden set not found: set IXC_GOLDEN_DIR or place it at ../shared/golden";   \
  } while (0)
