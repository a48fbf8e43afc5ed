#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ixc {

Result<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
                  StrFormat("cannot open %s: %s", path.c_str(), std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(StrFormat("%s is not a regular file", path.c_str()));
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return InvalidArgument(StrFormat("cannot map %s: %s", path.c_str(), std::strerror(e)));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

Status MakePagesWritable(const void* p, size_t n) {
  if (n == 0) return Status::Ok();
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n + page - 1) / page * page;
  if (::mprotect(reinterpret_cast<void*>(begin), end - begin, PROT_READ | PROT_WRITE) != 0) {
    return Status(StatusCode::kInternal, StrFormat("cannot make %zu bytes of weights writable: %s", n, std::strerror(errno)));
  }
  return Status::Ok();
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(StrFormat("cannot open %s", path.c_str()));
  in.seekg(0, std::ios::end);
  std::streamoff n = in.tellg();
  if (n < 0) return InvalidArgument(StrFormat("cannot read %s", path.c_str()));
  if (static_cast<size_t>(n) > max_bytes) {
    return ResourceExhausted(StrFormat("%s is %lld bytes, over the %zu-byte limit for this kind of file",
                                       path.c_str(), static_cast<long long>(n), max_bytes));
  }
  in.seekg(0);
  std::string s(static_cast<size_t>(n), '\0');
  in.read(s.data(), n);
  if (!in) return DataLoss(StrFormat("short read of %s", path.c_str()));
  return s;
}

}  // namespace ixc
