// GGUF: writing and reading back every supported tensor type and metadata kind, and clean errors on hostile files.
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "io/gguf.h"

namespace ixc {
namespace {

using Type = GgufValue::Type;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Sample {
  std::vector<float> f32 = testing::RandomFloats(15, 1);
  std::vector<uint16_t> bf16, f16;
  std::vector<uint8_t> q8, q4;
  std::vector<GgufTensor> tensors;
  std::map<std::string, GgufValue> metadata;

  Sample() {
    for (float v : testing::RandomFloats(32, 2)) bf16.push_back(F32ToBf16(v));
    for (float v : testing::RandomFloats(24, 3)) f16.push_back(F32ToF16(v));
    const auto q = testing::RandomFloats(128, 4);
    q8.resize(StorageBytes(DType::kQ8_0, 128));
    QuantizeQ8_0(q.data(), q8.data(), 128);
    q4.resize(StorageBytes(DType::kQ4_0, 128));
    QuantizeQ4_0(q.data(), q4.data(), 128);
    tensors = {{"a.f32", DType::kF32, {3, 5}, f32.data()},
               {"b.bf16", DType::kBF16, {4, 8}, bf16.data()},
               {"c.f16", DType::kF16, {2, 3, 4}, f16.data()},
               {"d.q8", DType::kQ8_0, {2, 64}, q8.data()},
               {"e.q4", DType::kQ4_0, {4, 32}, q4.data()}};
    metadata["general.architecture"] = GgufValue::String("ixc-test");
    metadata["test.u32"] = GgufValue::U32(7);
    metadata["test.i64"] = GgufValue::I64(-123456789012);
    metadata["test.f32"] = GgufValue::F32(0.25f);
    metadata["test.bytes"] = GgufValue::Bytes({0, 1, 2, 255});
    GgufValue words;
    words.type = Type::kArray;
    words.element_type = Type::kString;
    words.strings = {"hello", "", "world"};
    words.count = 3;
    metadata["test.words"] = words;
  }

  std::string Write() const {
    const std::string path = testing::MakeTempDir("gguf") + "/t.gguf";
    EXPECT_TRUE(WriteGguf(path, metadata, tensors).ok());
    return ReadAll(path);
  }
};

Status Parse(const std::string& bytes, GgufContents* out = nullptr) {
  GgufContents local;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[std::max<size_t>(bytes.size(), 1)]);  // exact size: overreads are ASan errors
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  Status s = ParseGguf(buf.get(), bytes.size(), "t.gguf", out ? out : &local);
  if (out) out->tensors.clear();  // the views pointed into buf
  return s;
}

TEST(Gguf, RoundTripsTensorsAndMetadata) {
  Sample s;
  const std::string path = testing::MakeTempDir("gguf") + "/t.gguf";
  ASSERT_TRUE(WriteGguf(path, s.metadata, s.tensors).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const auto& t = (*f)->tensors();
  ASSERT_EQ(t.size(), 5u);
  for (const GgufTensor& want : s.tensors) {
    const TensorView& got = t.at(want.name);
    EXPECT_EQ(got.dtype, want.dtype) << want.name;
    EXPECT_EQ(got.shape, want.shape) << want.name;
    EXPECT_EQ(std::memcmp(got.data, want.data, got.nbytes()), 0) << want.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got.data) % 32, 0u) << want.name << " is aligned";
  }
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "ixc-test");
  EXPECT_EQ(*(*f)->GetInt("test.u32"), 7);
  EXPECT_EQ(*(*f)->GetInt("test.i64"), -123456789012);
  EXPECT_EQ(*(*f)->GetInt("general.alignment"), 32);
  EXPECT_EQ(*(*f)->GetBytes("test.bytes"), (std::vector<uint8_t>{0, 1, 2, 255}));
  const GgufValue& words = (*f)->contents().metadata.at("test.words");
  EXPECT_EQ(words.strings, (std::vector<std::string>{"hello", "", "world"}));
  EXPECT_FLOAT_EQ(static_cast<float>((*f)->contents().metadata.at("test.f32").f), 0.25f);
  // Wrong types and missing keys name the key.
  EXPECT_NE((*f)->GetInt("general.architecture").status().message().find("general.architecture"), std::string::npos);
  EXPECT_FALSE((*f)->GetString("no.such.key").ok());
  EXPECT_FALSE((*f)->GetBytes("test.u32").ok());
}

TEST(Gguf, WriterRefusesWhatItCannotStore) {
  const std::string dir = testing::MakeTempDir("gguf");
  std::vector<uint8_t> q(34 * 2);
  EXPECT_FALSE(WriteGguf(dir + "/a.gguf", {}, {{"q", DType::kQ8_0, {1, 48}, q.data()}}).ok()) << "rows of 48 values";
  int32_t i = 0;
  EXPECT_FALSE(WriteGguf(dir + "/b.gguf", {}, {{"i", DType::kI32, {1}, &i}}).ok());
  EXPECT_FALSE(WriteGguf(dir + "/no_such_dir/c.gguf", {}, {}).ok());
}

// Little-endian builders for hand-made images.
struct Bytes {
  std::string s;
  template <typename T>
  Bytes& put(T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& v) {
    put<uint64_t>(v.size());
    s += v;
    return *this;
  }
  Bytes& header(uint64_t tensors, uint64_t keys, uint32_t version = 3) {
    return put<uint32_t>(0x46554747).put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(keys);
  }
  // One tensor info with the given dims (innermost first), type and offset.
  Bytes& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Bytes& pad(size_t alignment = 32) {
    while (s.size() % alignment) s += '\0';
    return *this;
  }
  Bytes& data(size_t n) {
    s.append(n, '\x11');
    return *this;
  }
};

TEST(Gguf, HandMadeImageParses) {
  Bytes b;
  b.header(1, 0).tensor("w", {4, 2}, 0, 0).pad().data(32);
  GgufContents g;
  ASSERT_TRUE(Parse(b.s, &g).ok());
}

TEST(Gguf, HostileImagesGiveNamedErrors) {
  auto expect = [](const std::string& bytes, const std::string& needle) {
    Status s = Parse(bytes);
    ASSERT_FALSE(s.ok()) << needle;
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  };
  expect("GGU", "truncated magic");
  expect(Bytes().put<uint32_t>(0x12345678).s + std::string(40, '\0'), "not a GGUF file");
  expect(Bytes().header(0, 0, 4).s, "version 4");
  expect(Bytes().header(1ull << 40, 0).s, "not a real model");
  expect(Bytes().header(0, 1).put<uint64_t>(1ull << 50).s, "runs past the end");  // key length
  expect(Bytes().header(0, 1).str("k").put<uint32_t>(99).s, "unknown type 99");
  expect(Bytes().header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2).s, "bool of value 2");
  expect(Bytes().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 40).s, "claims");
  expect(Bytes().header(0, 2).str("k").put<uint32_t>(4).put<uint32_t>(1).str("k").put<uint32_t>(4).put<uint32_t>(1).s,
         "appears twice");
  expect(Bytes().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(24).s, "power of two");
  expect(Bytes().header(1, 0).tensor("w", {}, 0, 0).s, "0 dimensions");
  expect(Bytes().header(1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0).s, "5 dimensions");
  expect(Bytes().header(1, 0).tensor("w", {0}, 0, 0).s, "absurd dimensions");
  expect(Bytes().header(1, 0).tensor("w", {1ull << 30, 1ull << 30}, 0, 0).s, "absurd dimensions");
  expect(Bytes().header(1, 0).tensor("w", {256}, 12, 0).pad().data(256).s, "Q4_K");
  expect(Bytes().header(1, 0).tensor("w", {48}, 8, 0).pad().data(64).s, "whole blocks");
  expect(Bytes().header(1, 0).tensor("w", {8}, 0, 16).pad().data(64).s, "not aligned");
  expect(Bytes().header(1, 0).tensor("w", {8}, 0, 32).pad().data(40).s, "runs past the end of the data");
  expect(Bytes().header(1, 0).tensor("w", {8}, 0, 1ull << 62).pad().data(32).s, "runs past the end of the data");
  expect(Bytes().header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 0).pad().data(32).s, "appears twice");
  // Every truncation of a valid file that cuts into its data fails cleanly (only the last tensor's padding, under
  // 32 bytes, may go).
  const std::string good = Sample().Write();
  ASSERT_TRUE(Parse(good).ok());
  for (size_t n = 0; n + 32 < good.size(); n += 7) EXPECT_FALSE(Parse(good.substr(0, n)).ok()) << n;
}

TEST(Gguf, MissingFileIsAnError) { EXPECT_FALSE(GgufFile::Open("/no/such/file.gguf").ok()); }

}  // namespace
}  // namespace ixc
