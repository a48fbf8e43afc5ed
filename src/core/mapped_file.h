// Read-only memory mapping of a whole file (weights are paged in lazily and shared between processes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace ixc {

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Makes the pages holding [p, p + n) writable. For a MappedFile's (private) mapping, written pages become the
// process's own copies and the file is never changed: how load-time repacking replaces mapped bytes in place
// without holding both.
Status MakePagesWritable(const void* p, size_t n);

// Lets go of the whole pages of [p, p + n) when they lie in a MappedFile's mapping and were never made writable:
// they leave the process's resident set but stay in the page cache, and touching them again maps them back with
// the same bytes (a minor fault). Anything else (owned memory, pages MakePagesWritable touched) is left alone, so
// it is safe to call on any tensor. For weights read once at load and then not for a long time (task adapters
// after the load-time scan, AWQ's 4-bit words after dequantising).
void ReleaseMappedPages(const void* p, size_t n);

// Reads a whole (small) file into a string: configs, index files, JSON requests. The size is checked against
// `max_bytes` before anything is allocated (ResourceExhausted).
Result<std::string> ReadFileToString(const std::string& path, size_t max_bytes = 64u << 20);

// Whether `path` names a regular file (following symbolic links), checked with stat() before anything opens it: a
// named pipe would block open() until a writer came, and a directory or device is never an input. Errors name the
// path, `what` it was meant to be ("tokenizer file", "video") and what it is instead: NotFound when nothing is
// there, InvalidArgument for a directory, pipe, socket or device.
Status CheckRegularFile(const std::string& path, const char* what = "file");

}  // namespace ixc
