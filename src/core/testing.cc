#include "core/testing.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <unistd.h>

namespace ixc::testing {

std::string GoldenDir() {
  const char* env = std::getenv("IXC_GOLDEN_DIR");
  std::string dir = env && *env ? env : IXC_DEFAULT_GOLDEN_DIR;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "cases.json", ec)) return "";
  return std::filesystem::weakly_canonical(dir, ec).string();
}

std::string MakeTempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto p = std::filesystem::temp_directory_path() /
           ("ixc_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), bytes.size());
}

std::vector<float> RandomFloats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double RelL2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

}  // namespace ixc::testing
