#include "io/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace ixc {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEocdSize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EocdSize = 56;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;
constexpr uint16_t kZip64ExtraId = 0x0001;
// Deflate cannot expand data by more than ~1032:1; a larger declared size is a lie (or a zip bomb).
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t Le64(const uint8_t* p) { return static_cast<uint64_t>(Le32(p)) | (static_cast<uint64_t>(Le32(p + 4)) << 32); }

void Put16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v & 0xff));
  s->push_back(static_cast<char>(v >> 8));
}
void Put32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void Put64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// zlib's length arguments are 32-bit; feed large buffers in slices.
uint32_t Crc32(const uint8_t* p, uint64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

// Reads the zip64 extended-information extra field: only the values whose 32-bit fields are saturated are
// present, in the fixed order uncompressed, compressed, local header offset, disk.
Status ReadZip64Extra(const uint8_t* extra, size_t extra_len, bool need_usize, bool need_csize, bool need_lho,
                      bool need_disk, uint64_t* usize, uint64_t* csize, uint64_t* lho, const std::string& where) {
  size_t pos = 0;
  while (pos + 4 <= extra_len) {
    const uint16_t id = Le16(extra + pos);
    const uint16_t len = Le16(extra + pos + 2);
    if (pos + 4 + len > extra_len) break;
    if (id == kZip64ExtraId) {
      const uint8_t* f = extra + pos + 4;
      size_t need = 8 * (need_usize + need_csize + need_lho) + 4 * need_disk;
      if (len < need) return DataLoss(where + ": zip64 extra field is too short");
      if (need_usize) *usize = Le64(f), f += 8;
      if (need_csize) *csize = Le64(f), f += 8;
      if (need_lho) *lho = Le64(f), f += 8;
      if (need_disk && Le32(f) != 0) return Unimplemented(where + ": multi-disk zip archives are not supported");
      return Status::Ok();
    }
    pos += 4 + len;
  }
  return DataLoss(where + ": 32-bit size fields are saturated but there is no zip64 extra field");
}

// "name: " for messages, or nothing when the caller adds the archive name itself.
std::string Prefix(const std::string& name) { return name.empty() ? std::string() : name + ": "; }

}  // namespace

void AlignedBuffer::Free::operator()(uint8_t* p) const { std::free(p); }

Result<AlignedBuffer> AlignedBuffer::Allocate(size_t size) {
  // aligned_alloc wants a multiple of the alignment; round up (and never ask for 0 bytes).
  if (size > std::numeric_limits<size_t>::max() - 64) return ResourceExhausted("buffer size overflows");
  const size_t alloc = (std::max<size_t>(size, 1) + 63) / 64 * 64;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, alloc));
  if (!p) return ResourceExhausted(StrFormat("out of memory allocating %zu bytes", size));
  AlignedBuffer b;
  b.data_.reset(p);
  b.size_ = size;
  return b;
}

Result<ZipReader> ZipReader::Parse(const uint8_t* data, size_t size, std::string name) {
  auto bad = [&](const std::string& why) { return DataLoss(Prefix(name) + why); };
  if (size < kEocdSize) return bad(StrFormat("%zu bytes is too short for a zip archive (truncated?)", size));

  // The end record sits at the very end, after a comment of at most 64 KiB: scan backwards for its signature,
  // taking the first candidate whose comment length reaches exactly the end of the file.
  size_t eocd = std::numeric_limits<size_t>::max();
  const size_t lowest = size > kEocdSize + 0xffff ? size - kEocdSize - 0xffff : 0;
  for (size_t p = size - kEocdSize + 1; p-- > lowest;) {
    if (Le32(data + p) == kEocdSig && p + kEocdSize + Le16(data + p + 20) == size) {
      eocd = p;
      break;
    }
  }
  if (eocd == std::numeric_limits<size_t>::max()) {
    return bad("no zip end-of-central-directory record (truncated, or not a zip archive)");
  }
  const uint8_t* e = data + eocd;
  uint64_t disk = Le16(e + 4), cd_disk = Le16(e + 6), n_disk = Le16(e + 8), n_total = Le16(e + 10);
  uint64_t cd_size = Le32(e + 12), cd_offset = Le32(e + 16);
  uint64_t cd_limit = eocd;  // the central directory must end before the records that describe it

  // torch (miniz) always writes zip64 end records; use them whenever the locator is present.
  if (eocd >= kZip64LocatorSize && Le32(data + eocd - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint8_t* loc = data + eocd - kZip64LocatorSize;
    const uint64_t rec = Le64(loc + 8);
    if (Le32(loc + 4) != 0 || Le32(loc + 16) > 1) return Unimplemented(Prefix(name) + "multi-disk zip archives are not supported");
    if (rec > eocd - kZip64LocatorSize || eocd - kZip64LocatorSize - rec < kZip64EocdSize) {
      return bad("zip64 end record offset points outside the file");
    }
    const uint8_t* z = data + rec;
    if (Le32(z) != kZip64EocdSig) return bad("zip64 end record has a bad signature");
    disk = Le32(z + 16);
    cd_disk = Le32(z + 20);
    n_disk = Le64(z + 24);
    n_total = Le64(z + 32);
    cd_size = Le64(z + 40);
    cd_offset = Le64(z + 48);
    cd_limit = rec;
  } else if (n_total == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu) {
    return bad("zip end record asks for zip64 records that are missing");
  }
  if (disk != 0 || cd_disk != 0 || n_disk != n_total) return Unimplemented(Prefix(name) + "multi-disk zip archives are not supported");
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset) {
    return bad(StrFormat("central directory [%llu, +%llu) lies outside the %zu-byte file (truncated?)",
                         static_cast<unsigned long long>(cd_offset), static_cast<unsigned long long>(cd_size), size));
  }
  if (n_total > cd_size / kCentralSize) return bad("central directory is too small for the entry count it claims");

  ZipReader r;
  r.data_ = data;
  r.size_ = size;
  r.name_ = name;
  r.entries_.reserve(n_total);
  const uint8_t* cd = data + cd_offset;
  uint64_t pos = 0;
  for (uint64_t i = 0; i < n_total; ++i) {
    if (cd_size - pos < kCentralSize || Le32(cd + pos) != kCentralSig) {
      return bad(StrFormat("central directory entry %llu is truncated or has a bad signature", static_cast<unsigned long long>(i)));
    }
    const uint8_t* c = cd + pos;
    const uint16_t flags = Le16(c + 8);
    ZipEntry ent;
    ent.method = Le16(c + 10);
    ent.crc32 = Le32(c + 16);
    ent.compressed_size = Le32(c + 20);
    ent.uncompressed_size = Le32(c + 24);
    const uint16_t name_len = Le16(c + 28), extra_len = Le16(c + 30), comment_len = Le16(c + 32);
    const uint16_t disk_start = Le16(c + 34);
    ent.local_header_offset = Le32(c + 42);
    if (cd_size - pos - kCentralSize < uint64_t{name_len} + extra_len + comment_len) {
      return bad(StrFormat("central directory entry %llu runs past the directory", static_cast<unsigned long long>(i)));
    }
    ent.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    const std::string where = Prefix(name) + "member '" + ent.name + "'";
    const bool need_u = ent.uncompressed_size == 0xffffffffu, need_c = ent.compressed_size == 0xffffffffu;
    const bool need_l = ent.local_header_offset == 0xffffffffu, need_d = disk_start == 0xffff;
    if (need_u || need_c || need_l || need_d) {
      IXC_RETURN_IF_ERROR(ReadZip64Extra(c + kCentralSize + name_len, extra_len, need_u, need_c, need_l, need_d,
                                         &ent.uncompressed_size, &ent.compressed_size, &ent.local_header_offset, where));
    } else if (disk_start != 0) {
      return Unimplemented(where + ": multi-disk zip archives are not supported");
    }
    pos += kCentralSize + name_len + extra_len + comment_len;

    if (flags & 0x41) return Unimplemented(where + " is encrypted");
    if (ent.method != 0 && ent.method != 8) {
      return Unimplemented(StrFormat("%s uses compression method %u (only stored and deflated are supported)",
                                     where.c_str(), ent.method));
    }
    if (ent.method == 0 && ent.compressed_size != ent.uncompressed_size) {
      return DataLoss(where + " is stored but its compressed and uncompressed sizes differ");
    }
    // Members live before the central directory; check the local header, then the data, against that range.
    const uint64_t lho = ent.local_header_offset;
    if (lho > cd_offset || cd_offset - lho < kLocalSize) return DataLoss(where + ": local header lies outside the archive");
    const uint8_t* l = data + lho;
    if (Le32(l) != kLocalSig) return DataLoss(where + ": local header has a bad signature");
    if (Le16(l + 6) & 0x41) return Unimplemented(where + " is encrypted");
    const uint64_t lname = Le16(l + 26), lextra = Le16(l + 28);
    if (cd_offset - lho - kLocalSize < lname + lextra) return DataLoss(where + ": local header runs into the central directory");
    if (lname != name_len || std::memcmp(l + kLocalSize, c + kCentralSize, name_len) != 0) {
      return DataLoss(where + ": local header names a different member");
    }
    ent.data_offset = lho + kLocalSize + lname + lextra;
    if (ent.compressed_size > cd_offset - ent.data_offset) {
      return DataLoss(StrFormat("%s: %llu data bytes at offset %llu run past the end of the member area (truncated?)",
                                where.c_str(), static_cast<unsigned long long>(ent.compressed_size),
                                static_cast<unsigned long long>(ent.data_offset)));
    }
    r.entries_.push_back(std::move(ent));
  }
  // One index entry per name; a second one is a duplicate.
  for (size_t i = 0; i < r.entries_.size(); ++i) {
    if (!r.by_name_.emplace(r.entries_[i].name, i).second) return bad("member '" + r.entries_[i].name + "' appears twice");
  }
  // Members may not share bytes: a hostile archive could otherwise alias one storage as another's header.
  std::vector<const ZipEntry*> by_offset;
  for (const auto& ent : r.entries_) by_offset.push_back(&ent);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->local_header_offset < b->local_header_offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const ZipEntry* prev = by_offset[i - 1];
    if (by_offset[i]->local_header_offset < prev->data_offset + prev->compressed_size) {
      return bad("members '" + prev->name + "' and '" + by_offset[i]->name + "' overlap");
    }
  }
  return r;
}

const ZipEntry* ZipReader::Find(std::string_view member) const {
  auto it = by_name_.find(std::string(member));
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

Result<std::span<const uint8_t>> ZipReader::Read(const ZipEntry& e, AlignedBuffer* owned, uint64_t max_inflated_bytes,
                                                 bool verify_crc, uint64_t prefix_bytes) const {
  const std::string where = Prefix(name_) + "member '" + e.name + "'";
  const uint8_t* src = data_ + e.data_offset;
  if (e.method == 0) {
    if (verify_crc && Crc32(src, e.compressed_size) != e.crc32) return DataLoss(where + " fails its CRC-32 check");
    return std::span<const uint8_t>(src, e.compressed_size);
  }
  const bool whole = prefix_bytes >= e.uncompressed_size;
  const uint64_t want = whole ? e.uncompressed_size : prefix_bytes;
  if (want > max_inflated_bytes) {
    return ResourceExhausted(StrFormat("%s would inflate to %llu bytes, over the %llu-byte limit", where.c_str(),
                                       static_cast<unsigned long long>(want),
                                       static_cast<unsigned long long>(max_inflated_bytes)));
  }
  if (e.uncompressed_size > e.compressed_size * kMaxDeflateRatio + 1024) {
    return DataLoss(StrFormat("%s claims %llu bytes from %llu compressed bytes, more than deflate can produce",
                              where.c_str(), static_cast<unsigned long long>(e.uncompressed_size),
                              static_cast<unsigned long long>(e.compressed_size)));
  }
  IXC_ASSIGN_OR_RETURN(AlignedBuffer out, AlignedBuffer::Allocate(want));
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return Internal("zlib inflateInit2 failed");
  uint64_t in_left = e.compressed_size, out_left = want;
  zs.next_in = const_cast<Bytef*>(src);
  zs.next_out = out.data();
  int rc = Z_OK;
  // Feed zlib in 1 GiB slices (its counters are 32-bit). Z_OK means progress was made, so the loop ends.
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      zs.avail_in = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      in_left -= zs.avail_in;
    }
    if (zs.avail_out == 0 && out_left > 0) {
      zs.avail_out = static_cast<uInt>(std::min<uint64_t>(out_left, 1u << 30));
      out_left -= zs.avail_out;
    }
    rc = inflate(&zs, Z_NO_FLUSH);
    if (!whole && rc == Z_OK && zs.avail_out == 0 && out_left == 0) break;  // the prefix is complete
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && ((zs.avail_in == 0 && in_left > 0) || (zs.avail_out == 0 && out_left > 0))) continue;
    break;
  }
  const bool finished = zs.avail_out == 0 && out_left == 0 && (whole ? rc == Z_STREAM_END : rc == Z_OK);
  inflateEnd(&zs);
  if (rc == Z_MEM_ERROR) return ResourceExhausted(where + ": out of memory inflating it");
  if (rc != Z_STREAM_END && rc != Z_BUF_ERROR && !(finished && !whole)) return DataLoss(where + ": corrupt deflate data");
  // Z_BUF_ERROR here: the input ran out early, or the stream wants to write past the declared size.
  if (!finished) return DataLoss(where + ": deflate data does not inflate to the declared size");
  if (whole && Crc32(out.data(), out.size()) != e.crc32) return DataLoss(where + " fails its CRC-32 check");
  *owned = std::move(out);
  return std::span<const uint8_t>(owned->data(), owned->size());
}

Result<std::string> WriteZip(const std::vector<ZipMemberToWrite>& members, const ZipWriteOptions& options) {
  std::string out, central;
  const bool z64 = options.force_zip64;
  for (const auto& m : members) {
    std::string payload = m.bytes;
    uint16_t method = 0;
    if (m.deflate) {
      z_stream zs;
      std::memset(&zs, 0, sizeof(zs));
      if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return Internal("zlib deflateInit2 failed");
      }
      payload.resize(deflateBound(&zs, m.bytes.size()));
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(m.bytes.data()));
      zs.avail_in = static_cast<uInt>(m.bytes.size());
      zs.next_out = reinterpret_cast<Bytef*>(payload.data());
      zs.avail_out = static_cast<uInt>(payload.size());
      const int rc = deflate(&zs, Z_FINISH);
      payload.resize(zs.total_out);
      deflateEnd(&zs);
      if (rc != Z_STREAM_END) return Internal("zlib deflate failed");
      method = 8;
    }
    const uint32_t crc = Crc32(reinterpret_cast<const uint8_t*>(m.bytes.data()), m.bytes.size());
    const uint64_t lho = out.size();
    std::string extra;
    if (z64) {
      Put16(&extra, kZip64ExtraId);
      Put16(&extra, 16);
      Put64(&extra, m.bytes.size());
      Put64(&extra, payload.size());
    }
    if (options.align > 1) {
      // A padding extra field ("FB", as torch writes) so the member's data starts on an aligned offset.
      size_t start = lho + kLocalSize + m.name.size() + extra.size() + 4;
      size_t pad = (options.align - start % options.align) % options.align;
      Put16(&extra, 0x4246);
      Put16(&extra, static_cast<uint16_t>(pad));
      extra.append(pad, 'Z');
    }
    Put32(&out, kLocalSig);
    Put16(&out, z64 ? 45 : 20);
    Put16(&out, 0x0800);  // UTF-8 names
    Put16(&out, method);
    Put16(&out, 0);
    Put16(&out, 0x21);
    Put32(&out, crc);
    Put32(&out, z64 ? 0xffffffffu : static_cast<uint32_t>(payload.size()));
    Put32(&out, z64 ? 0xffffffffu : static_cast<uint32_t>(m.bytes.size()));
    Put16(&out, static_cast<uint16_t>(m.name.size()));
    Put16(&out, static_cast<uint16_t>(extra.size()));
    out += m.name;
    out += extra;
    out += payload;

    std::string cextra;
    if (z64) {
      Put16(&cextra, kZip64ExtraId);
      Put16(&cextra, 24);
      Put64(&cextra, m.bytes.size());
      Put64(&cextra, payload.size());
      Put64(&cextra, lho);
    }
    Put32(&central, kCentralSig);
    Put16(&central, z64 ? 45 : 20);
    Put16(&central, z64 ? 45 : 20);
    Put16(&central, 0x0800);
    Put16(&central, method);
    Put16(&central, 0);
    Put16(&central, 0x21);
    Put32(&central, crc);
    Put32(&central, z64 ? 0xffffffffu : static_cast<uint32_t>(payload.size()));
    Put32(&central, z64 ? 0xffffffffu : static_cast<uint32_t>(m.bytes.size()));
    Put16(&central, static_cast<uint16_t>(m.name.size()));
    Put16(&central, static_cast<uint16_t>(cextra.size()));
    Put16(&central, 0);
    Put16(&central, 0);
    Put16(&central, 0);
    Put32(&central, 0);
    Put32(&central, z64 ? 0xffffffffu : static_cast<uint32_t>(lho));
    central += m.name;
    central += cextra;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  if (z64) {
    const uint64_t rec = out.size();
    Put32(&out, kZip64EocdSig);
    Put64(&out, kZip64EocdSize - 12);
    Put16(&out, 45);
    Put16(&out, 45);
    Put32(&out, 0);
    Put32(&out, 0);
    Put64(&out, members.size());
    Put64(&out, members.size());
    Put64(&out, central.size());
    Put64(&out, cd_offset);
    Put32(&out, kZip64LocatorSig);
    Put32(&out, 0);
    Put64(&out, rec);
    Put32(&out, 1);
  }
  Put32(&out, kEocdSig);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, z64 ? 0xffff : static_cast<uint16_t>(members.size()));
  Put16(&out, z64 ? 0xffff : static_cast<uint16_t>(members.size()));
  Put32(&out, z64 ? 0xffffffffu : static_cast<uint32_t>(central.size()));
  Put32(&out, z64 ? 0xffffffffu : static_cast<uint32_t>(cd_offset));
  Put16(&out, 0);
  return out;
}

}  // namespace ixc
