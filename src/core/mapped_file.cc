#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

namespace ixc {

namespace {

// The live MappedFile mappings and the page ranges of them made writable, for ReleaseMappedPages: only pages that
// are provably the file's unchanged bytes may be dropped from a private mapping.
struct MappingRegistry {
  std::mutex mu;
  std::map<uintptr_t, uintptr_t> mapped;    // begin -> end
  std::map<uintptr_t, uintptr_t> writable;  // begin -> end, page-aligned
};
MappingRegistry& Registry() {
  static MappingRegistry* r = new MappingRegistry();  // never destroyed: mappings may outlive static destruction
  return *r;
}

// Whether some range of `ranges` overlaps [begin, end).
bool Overlaps(const std::map<uintptr_t, uintptr_t>& ranges, uintptr_t begin, uintptr_t end) {
  // The last range starting before `end` is the only candidate: the ranges are disjoint, so earlier ones end before
  // it starts.
  auto it = ranges.lower_bound(end);
  if (it == ranges.begin()) return false;
  return std::prev(it)->second > begin;
}

}  // namespace

Status CheckRegularFile(const std::string& path, const char* what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR) return NotFound(StrFormat("%s %s does not exist", what, path.c_str()));
    return InvalidArgument(StrFormat("cannot read %s %s: %s", what, path.c_str(), std::strerror(e)));
  }
  if (S_ISREG(st.st_mode)) return Status::Ok();
  const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                     : S_ISFIFO(st.st_mode) ? "a named pipe (FIFO)"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                   : "not a regular file";
  return InvalidArgument(StrFormat("%s %s is %s, not a regular file", what, path.c_str(), kind));
}

namespace {

// A regular file opened for reading, with its size: CheckRegularFile first, then open() with O_NONBLOCK and fstat()
// on the descriptor, so that a path swapped for a pipe in between can neither block nor pass.
struct OpenFile {
  int fd;
  uint64_t size;
};
Result<OpenFile> OpenRegular(const std::string& path, const char* what) {
  IXC_RETURN_IF_ERROR(CheckRegularFile(path, what));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
                  StrFormat("cannot open %s: %s", path.c_str(), std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(StrFormat("%s is not a regular file", path.c_str()));
  }
  return OpenFile{fd, static_cast<uint64_t>(st.st_size)};
}

}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  IXC_ASSIGN_OR_RETURN(const OpenFile file, OpenRegular(path, "file"));
  const int fd = file.fd;
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(file.size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return InvalidArgument(StrFormat("cannot map %s: %s", path.c_str(), std::strerror(e)));
    }
    f->data_ = static_cast<const uint8_t*>(p);
    std::lock_guard<std::mutex> lock(Registry().mu);
    Registry().mapped[reinterpret_cast<uintptr_t>(p)] = reinterpret_cast<uintptr_t>(p) + f->size_;
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
  MappingRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  // Merged with the ranges it touches, so that the recorded ranges never overlap.
  uintptr_t b = begin, e = end;
  for (auto it = r.writable.lower_bound(0); it != r.writable.end();) {
    if (it->second >= b && it->first <= e) {
      b = std::min(b, it->first);
      e = std::max(e, it->second);
      it = r.writable.erase(it);
    } else {
      ++it;
    }
  }
  r.writable[b] = e;
  return Status::Ok();
}

void ReleaseMappedPages(const void* p, size_t n) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (end <= begin) return;
  MappingRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.mapped.upper_bound(begin);
  if (it == r.mapped.begin()) return;
  --it;
  if (end > it->second) return;  // not inside one mapping
  if (Overlaps(r.writable, begin, end)) return;
  // MADV_DONTNEED on a private file mapping only unmaps: the next touch reads the page cache (or the file) again.
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (!data_) return;
  MappingRegistry& r = Registry();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    const uintptr_t b = reinterpret_cast<uintptr_t>(data_), e = b + size_;
    r.mapped.erase(b);
    for (auto it = r.writable.begin(); it != r.writable.end();) {
      it = (it->first < e && it->second > b) ? r.writable.erase(it) : std::next(it);
    }
  }
  ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  IXC_ASSIGN_OR_RETURN(const OpenFile file, OpenRegular(path, "file"));
  const int fd = file.fd;
  const uint64_t n = file.size;
  if (n > max_bytes) {
    ::close(fd);
    return ResourceExhausted(StrFormat("%s is %llu bytes, over the %zu-byte limit for this kind of file", path.c_str(),
                                       static_cast<unsigned long long>(n), max_bytes));
  }
  std::string s(static_cast<size_t>(n), '\0');
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t got = ::read(fd, s.data() + done, s.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  if (done != s.size()) return DataLoss(StrFormat("short read of %s (%zu of %zu bytes)", path.c_str(), done, s.size()));
  return s;
}

}  // namespace ixc
