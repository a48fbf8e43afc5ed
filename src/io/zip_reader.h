// A bounds-checked reader for the zip archives `torch.save` writes (and a minimal writer for tests and tools).
// The reader trusts nothing in the file: every offset and size from the end-of-central-directory record, the
// zip64 records, the central directory and the local headers is checked against the image before use.
// Stored members (what torch writes, 64-byte aligned) are handed out in place; deflated members are inflated
// into owned buffers under a size limit.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace ixc {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored, 8 = deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;  // first byte of the member's (compressed) data in the image
};

// Heap bytes aligned for any element type (and for SIMD loads): inflated members, materialised tensors.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // 64-byte aligned and NOT initialised: every user overwrites all of it (inflate, tensor copies), and zeroing
  // gigabytes first would double the load time.
  static Result<AlignedBuffer> Allocate(size_t size);
  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

class ZipReader {
 public:
  // Parses the archive directory of an image the caller keeps alive. `name` prefixes error messages (pass ""
  // when the caller adds its own context).
  static Result<ZipReader> Parse(const uint8_t* data, size_t size, std::string name);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* Find(std::string_view member) const;

  // A member's bytes. Stored members are a view into the image (`owned` untouched); deflated ones are inflated
  // into `*owned` when their declared size is at most `max_inflated_bytes`, and must inflate to exactly that
  // size. `verify_crc` checks the CRC-32 (always done for inflated members, where it is nearly free).
  // `prefix_bytes` below the member's size inflates only that many bytes from its start (memory bounded by what
  // the caller needs, not by what the member claims); the CRC, which covers the whole member, is then not checked.
  Result<std::span<const uint8_t>> Read(const ZipEntry& e, AlignedBuffer* owned, uint64_t max_inflated_bytes,
                                        bool verify_crc, uint64_t prefix_bytes = UINT64_MAX) const;

  const std::string& name() const { return name_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string name_;
  std::vector<ZipEntry> entries_;
  // name -> index into entries_ (owning keys, so copies stay valid); a linear Find would make a
  // many-member hostile archive quadratic to load.
  std::unordered_map<std::string, size_t> by_name_;
};

// One member for WriteZip.
struct ZipMemberToWrite {
  std::string name;
  std::string bytes;
  bool deflate = false;
};

struct ZipWriteOptions {
  // Pads each stored member's data start to this many bytes with an extra field, as torch does (64).
  uint32_t align = 64;
  // Writes zip64 extra fields and end records even for small archives, to exercise the zip64 reader.
  bool force_zip64 = false;
};

// Builds a zip image in memory (tests and fixture tools; not used by the loader).
Result<std::string> WriteZip(const std::vector<ZipMemberToWrite>& members, const ZipWriteOptions& options = {});

}  // namespace ixc
