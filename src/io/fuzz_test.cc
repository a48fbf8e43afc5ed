// Deterministic mutation fuzzing of the checkpoint readers: valid .bin (zip + pickle) and safetensors files are
// bit-flipped, truncated, overwritten and given huge length fields. Every result must be OK or a clean Status;
// when a mutant parses, every byte of every tensor is read (summed) so the sanitizer build proves the views are
// in bounds. Case counts: IXC_FUZZ_CASES overrides the per-target count (default 10000, 2500 under ASan), IXC_FUZZ_SEED
// shifts every seed for exploratory runs.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "io/gguf.h"
#include "io/pickle.h"
#include "io/pytorch_file.h"
#include "io/safetensors.h"
#include "io/zip_reader.h"

namespace ixc {
namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IXC_FUZZ_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(IXC_FUZZ_UNDER_ASAN)
constexpr int kDefaultCases = 2500;
#else
constexpr int kDefaultCases = 10000;
#endif

uint32_t SeedBase() {
  const char* env = std::getenv("IXC_FUZZ_SEED");
  return env && *env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) * 1000u : 0u;
}

int Cases() {
  const char* env = std::getenv("IXC_FUZZ_CASES");
  return env && *env ? std::max(1, std::atoi(env)) : kDefaultCases;
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(IXC_SOURCE_DIR) + "/tests/fixtures/io/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reads every byte a view claims, so an out-of-bounds view is a sanitizer report (and a wrong size a crash).
uint64_t TouchAll(const std::map<std::string, TensorView>& tensors) {
  uint64_t sum = 0;
  for (const auto& [name, v] : tensors) {
    EXPECT_TRUE(v.valid()) << name;
    const auto* p = static_cast<const uint8_t*>(v.data);
    for (size_t i = 0; i < v.nbytes(); ++i) sum += p[i];
  }
  return sum;
}

// The structure fields a hostile file would lie about: sizes, offsets, counts and lengths, located relative to
// each zip signature. Random positions are added by the caller.
std::vector<size_t> ZipFieldOffsets(const std::string& z) {
  struct Sig {
    const char* bytes;
    std::vector<size_t> fields;
  };
  const Sig sigs[] = {
      {"PK\x03\x04", {6, 8, 18, 22, 26, 28}},
      {"PK\x01\x02", {8, 10, 20, 24, 28, 30, 32, 34, 42}},
      {"PK\x05\x06", {4, 8, 10, 12, 16, 20}},
      {"PK\x06\x06", {4, 24, 32, 40, 48}},
      {"PK\x06\x07", {4, 8, 16}},
  };
  std::vector<size_t> out;
  for (const auto& s : sigs) {
    for (size_t pos = z.find(s.bytes); pos != std::string::npos; pos = z.find(s.bytes, pos + 1)) {
      for (size_t f : s.fields) {
        if (pos + f < z.size()) out.push_back(pos + f);
      }
    }
  }
  return out;
}

class Mutator {
 public:
  explicit Mutator(uint32_t seed) : rng_(seed) {}

  size_t Below(size_t n) { return n ? std::uniform_int_distribution<size_t>(0, n - 1)(rng_) : 0; }

  // One random mutation of `s`; `fields` are positions worth hitting with huge values.
  std::string Mutate(std::string s, const std::vector<size_t>& fields) {
    if (s.empty()) return s;
    switch (Below(6)) {
      case 0: {  // flip a few bits
        const size_t n = 1 + Below(8);
        for (size_t i = 0; i < n; ++i) s[Below(s.size())] ^= static_cast<char>(1u << Below(8));
        break;
      }
      case 1:  // truncate
        s.resize(Below(s.size()));
        break;
      case 2: {  // overwrite a range with 0x00, 0xff or random bytes
        const size_t at = Below(s.size()), len = std::min(s.size() - at, 1 + Below(32));
        const size_t kind = Below(3);
        for (size_t i = 0; i < len; ++i) s[at + i] = static_cast<char>(kind == 0 ? 0 : kind == 1 ? 0xff : Below(256));
        break;
      }
      case 3:
      case 4: {  // a length/offset field set to a huge or off-by-some value
        const size_t at = !fields.empty() && Below(4) ? fields[Below(fields.size())] : Below(s.size());
        static const uint64_t kValues[] = {0xffffffffffffffffull, 0xffffffffull, 0x7fffffffull, 0x80000000ull,
                                           0xffffull, 0, 1, 0x100000000ull, 0x7fffffffffffffffull};
        uint64_t v = kValues[Below(std::size(kValues))];
        if (Below(3) == 0) v = s.size() + Below(64) - 32;
        const size_t width = size_t{1} << Below(4);  // 1, 2, 4 or 8 bytes
        for (size_t i = 0; i < width && at + i < s.size(); ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
        break;
      }
      case 5: {  // insert or delete a few bytes (shifts everything after)
        const size_t at = Below(s.size());
        if (Below(2)) {
          s.insert(at, std::string(1 + Below(8), static_cast<char>(Below(256))));
        } else {
          s.erase(at, 1 + Below(8));
        }
        break;
      }
    }
    return s;
  }

 private:
  std::mt19937 rng_;
};

// Parses `bytes` from an exact-size heap copy (any read past the end is a sanitizer error).
template <typename Fn>
void WithExactCopy(const std::string& bytes, Fn fn) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[std::max<size_t>(bytes.size(), 1)]);
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  fn(buf.get(), bytes.size());
}

struct Tally {
  int ok = 0, failed = 0;
};

void ParseBin(const std::string& bytes, Tally* t) {
  WithExactCopy(bytes, [&](const uint8_t* p, size_t n) {
    PyTorchLoadOptions opt;
    opt.verify_storage_crc = (n & 1) != 0;  // both settings get exercised
    auto src = ParsePyTorchArchive(p, n, "fuzz.bin", opt);
    if (src.ok()) {
      ++t->ok;
      TouchAll((*src)->tensors());
    } else {
      ++t->failed;
      EXPECT_FALSE(src.status().message().empty());
    }
  });
}

TEST(Fuzz, PyTorchArchiveBytes) {
  const auto t0 = std::chrono::steady_clock::now();
  Tally tally;
  uint32_t seed = SeedBase() + 1;
  for (const char* name : {"small_sd.bin", "small_sd_p4.bin", "small_sd_deflated.bin", "sharded/pytorch_model-00001-of-00002.bin"}) {
    const std::string good = ReadFixture(name);
    ASSERT_FALSE(good.empty()) << name;
    const auto fields = ZipFieldOffsets(good);
    Mutator m(seed++);
    for (int i = 0; i < Cases(); ++i) {
      std::string s = m.Mutate(good, fields);
      if (i % 4 == 3) s = m.Mutate(s, fields);  // some double mutations
      ParseBin(s, &tally);
    }
  }
  EXPECT_GT(tally.failed, 0);
  std::printf("archive bytes: %d parsed, %d rejected, %.2f s\n", tally.ok, tally.failed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// Rewrites a few BININT1 ('K' n) arguments of a protocol-2 pickle (which has no frame lengths to keep in step).
std::string GeometryMutation(const std::string& pkl, Mutator* m) {
  std::vector<size_t> ks;
  for (size_t i = 2; i + 1 < pkl.size(); ++i) {
    if (pkl[i] == 'K') ks.push_back(i);
  }
  if (ks.empty()) return pkl;
  std::string s = pkl;
  const size_t n = 1 + m->Below(3);
  std::vector<size_t> chosen;
  for (size_t k = 0; k < n; ++k) chosen.push_back(ks[m->Below(ks.size())]);
  std::sort(chosen.rbegin(), chosen.rend());  // back to front, so earlier positions stay valid
  for (size_t at : chosen) {
    if (s[at] != 'K') continue;
    switch (m->Below(4) % 3) {
      case 0:
        s[at + 1] = static_cast<char>(m->Below(2) ? m->Below(8) : m->Below(256));  // small values often fit
        break;
      case 1: {  // BININT: 4-byte signed
        std::string rep = "J";
        const uint32_t v = m->Below(2) ? static_cast<uint32_t>(m->Below(1u << 31)) * 2u + m->Below(2) : 0x80000000u;
        for (int b = 0; b < 4; ++b) rep.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
        s.replace(at, 2, rep);
        break;
      }
      case 2: {  // LONG1 with 8 bytes: anything in int64
        std::string rep = "\x8a\x08";
        uint64_t v = (static_cast<uint64_t>(m->Below(1u << 31)) << 33) ^ (static_cast<uint64_t>(m->Below(1u << 31)) << 2) ^ m->Below(4);
        if (m->Below(4) == 0) v = uint64_t{1} << (40 + m->Below(24));
        for (int b = 0; b < 8; ++b) rep.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
        s.replace(at, 2, rep);
        break;
      }
    }
  }
  return s;
}

// The CRC of data.pkl masks pickle-level corruption, so mutate the pickle itself and re-zip it with a correct CRC.
TEST(Fuzz, PickleInsideValidArchive) {
  const auto t0 = std::chrono::steady_clock::now();
  Tally tally;
  uint32_t seed = SeedBase() + 100;
  for (const char* name : {"small_sd.bin", "small_sd_p4.bin"}) {
    const std::string good = ReadFixture(name);
    auto zip = ZipReader::Parse(reinterpret_cast<const uint8_t*>(good.data()), good.size(), name);
    ASSERT_TRUE(zip.ok()) << zip.status().message();
    std::vector<ZipMemberToWrite> members;
    size_t pkl_index = 0;
    for (const auto& e : zip->entries()) {
      AlignedBuffer owned;
      auto bytes = zip->Read(e, &owned, 1 << 20, true);
      ASSERT_TRUE(bytes.ok());
      if (e.name.ends_with("/data.pkl")) pkl_index = members.size();
      members.push_back({e.name, std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size())});
    }
    const std::string pkl = members[pkl_index].bytes;
    Mutator m(seed++);
    for (int i = 0; i < Cases(); ++i) {
      // Half the cases keep the pickle well-formed and only change the small integers (BININT1: storage sizes,
      // offsets, sizes, strides, memo indices), some widened to a random 32- or 64-bit value; they reach the
      // tensor geometry checks and the strided copy instead of dying in the opcode parser.
      std::string mutated = i % 2 ? m.Mutate(pkl, {}) : GeometryMutation(pkl, &m);
      if (i % 3 == 2) mutated = m.Mutate(mutated, {});
      // The bare unpickler first (fast, and it sees the raw stream), then the whole loader.
      WithExactCopy(mutated, [&](const uint8_t* p, size_t n) {
        auto r = Unpickle(p, n, [](std::string_view, std::string_view) { return Status::Ok(); });
        if (!r.ok()) {
          EXPECT_FALSE(r.status().message().empty());
        }
      });
      auto ms = members;
      ms[pkl_index].bytes = mutated;
      auto z = WriteZip(ms);
      ASSERT_TRUE(z.ok());
      ParseBin(*z, &tally);
    }
  }
  EXPECT_GT(tally.ok, 0);
  EXPECT_GT(tally.failed, 0);
  std::printf("pickles: %d parsed, %d rejected, %.2f s\n", tally.ok, tally.failed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

TEST(Fuzz, SafetensorsBytes) {
  const auto t0 = std::chrono::steady_clock::now();
  Tally tally;
  uint32_t seed = SeedBase() + 200;
  for (const char* name : {"small_sd_expected.safetensors", "awq_small.safetensors"}) {
    const std::string good = ReadFixture(name);
    ASSERT_FALSE(good.empty()) << name;
    // The 8-byte header length, and the digits of offsets and shapes in the JSON header.
    std::vector<size_t> fields = {0, 4};
    for (size_t i = 8; i < std::min<size_t>(good.size(), 8 + 2048); ++i) {
      if (good[i] >= '0' && good[i] <= '9') fields.push_back(i);
    }
    Mutator m(seed++);
    for (int i = 0; i < Cases(); ++i) {
      std::string s = m.Mutate(good, fields);
      // Field hits in the JSON are also tried as digit edits, which keep the header parseable.
      if (i % 2 && !fields.empty()) {
        const size_t at = fields[m.Below(fields.size())];
        if (at >= 8 && at < s.size()) s[at] = static_cast<char>('0' + m.Below(10));
      }
      WithExactCopy(s, [&](const uint8_t* p, size_t n) {
        std::map<std::string, TensorView> out;
        Status st = ParseSafetensors(p, n, "fuzz.safetensors", &out);
        if (st.ok()) {
          ++tally.ok;
          TouchAll(out);
        } else {
          ++tally.failed;
          EXPECT_FALSE(st.message().empty());
        }
      });
    }
  }
  EXPECT_GT(tally.ok, 0);
  EXPECT_GT(tally.failed, 0);
  std::printf("safetensors: %d parsed, %d rejected, %.2f s\n", tally.ok, tally.failed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

TEST(Fuzz, GgufBytes) {
  const auto t0 = std::chrono::steady_clock::now();
  // A small valid file: metadata of every kind, tensors of every type ixc reads.
  const std::string path = testing::MakeTempDir("fuzz_gguf") + "/t.gguf";
  std::vector<float> f32(96, 0.5f);
  std::vector<uint16_t> half(64, 0x3c00);
  std::vector<uint8_t> q8(StorageBytes(DType::kQ8_0, 64), 1);
  std::map<std::string, GgufValue> md = {{"general.architecture", GgufValue::String("fuzz")},
                                         {"a.u32", GgufValue::U32(3)},
                                         {"b.bytes", GgufValue::Bytes({1, 2, 3, 4, 5})}};
  ASSERT_TRUE(WriteGguf(path, md, {{"x", DType::kF32, {8, 12}, f32.data()},
                                   {"y", DType::kBF16, {2, 32}, half.data()},
                                   {"z", DType::kQ8_0, {1, 64}, q8.data()}})
                  .ok());
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string good = ss.str();
  // Counts, string lengths, dimensions and offsets are 8-byte fields: hit the positions of every 8-byte word.
  std::vector<size_t> fields;
  for (size_t i = 8; i + 8 <= std::min<size_t>(good.size(), 512); i += 4) fields.push_back(i);
  Tally tally;
  Mutator m(SeedBase() + 300);
  for (int i = 0; i < Cases(); ++i) {
    std::string s = m.Mutate(good, fields);
    if (i % 4 == 3) s = m.Mutate(s, fields);
    WithExactCopy(s, [&](const uint8_t* p, size_t n) {
      GgufContents g;
      Status st = ParseGguf(p, n, "fuzz.gguf", &g);
      if (st.ok()) {
        ++tally.ok;
        TouchAll(g.tensors);
      } else {
        ++tally.failed;
        EXPECT_FALSE(st.message().empty());
      }
    });
  }
  EXPECT_GT(tally.ok, 0);
  EXPECT_GT(tally.failed, 0);
  std::printf("gguf: %d parsed, %d rejected, %.2f s\n", tally.ok, tally.failed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace
}  // namespace ixc
