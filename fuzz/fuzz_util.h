// Helpers shared by the fuzz targets (each target is one LLVMFuzzerTestOneInput over a parser's entry point).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/tensor.h"

namespace ixc::fuzz {

// An input as a file, for entry points that take a path: an anonymous in-memory file (memfd) named through
// /proc/self/fd, so the fuzzer's millions of inputs never touch the disk. Closed when this goes out of scope.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = memfd_create("ixc-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Reads every byte of a view the parser handed out, so ASan proves it lies inside the input.
inline uint64_t TouchAll(const TensorView& t) {
  const auto* p = static_cast<const uint8_t*>(t.data);
  uint64_t sum = 0;
  for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
  return sum;
}

// Keeps a value alive past the optimiser.
inline void Keep(uint64_t v) {
  static volatile uint64_t sink;
  sink = sink + v;
}

}  // namespace ixc::fuzz
