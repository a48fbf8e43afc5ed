#include "core/testing.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <utility>
#include <unistd.h>

namespace ixc::testing {

std::string GoldenDir() {
  const char* env = std::getenv("IXC_GOLDEN_DIR");
  std::string dir = env && *env ? env : IXC_DEFAULT_GOLDEN_DIR;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "cases.json", ec)) return "";
  return std::filesystem::weakly_canonical(dir, ec).string();
}

namespace {

// Every directory MakeTempDir made in this process, removed when the process exits normally: some hold converted
// model fixtures of 100 MB, and a test run used to leave all of them behind. IXC_KEEP_TEST_DIRS=1 keeps them for
// debugging a failure.
// A forked child inherits the list; it removes only the directories it made itself.
class TempDirs {
 public:
  void Add(std::filesystem::path p) {
    std::lock_guard<std::mutex> lock(mu_);
    paths_.emplace_back(::getpid(), std::move(p));
  }
  ~TempDirs() {
    const char* keep = std::getenv("IXC_KEEP_TEST_DIRS");
    if (keep && *keep && std::string(keep) != "0") return;
    std::error_code ec;
    for (const auto& [pid, p] : paths_)
      if (pid == ::getpid()) std::filesystem::remove_all(p, ec);
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<pid_t, std::filesystem::path>> paths_;
};

TempDirs& Registry() {
  static TempDirs dirs;
  return dirs;
}

}  // namespace

std::string MakeTempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto p = std::filesystem::temp_directory_path() /
           ("ixc_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  Registry().Add(p);
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
