// Hostile-file tests for the safetensors reader and the checkpoint folder loader: each failure class gets a
// clear error naming the problem, never a crash.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "core/testing.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace ixc {
namespace {

// Pads the JSON with spaces so tensor data starts 8-byte aligned, as real writers do.
std::string Header(std::string json) {
  while (json.size() % 8) json.push_back(' ');
  std::string s(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s + json;
}

Status Parse(const std::string& bytes) {
  std::map<std::string, TensorView> out;
  // Copy into an 8-aligned buffer: alignment is part of what the reader checks.
  std::vector<uint64_t> buf(bytes.size() / 8 + 1);
  std::memcpy(buf.data(), bytes.data(), bytes.size());
  return ParseSafetensors(reinterpret_cast<const uint8_t*>(buf.data()), bytes.size(), "t.safetensors", &out);
}

TEST(Safetensors, RoundTrip) {
  std::string dir = testing::MakeTempDir("st");
  float data[6] = {1, 2, 3, 4, 5, 6};
  int32_t ids[2] = {7, -8};
  ASSERT_TRUE(WriteSafetensors(dir + "/a.safetensors", {MakeF32Tensor("x", {2, 3}, data), MakeI32Tensor("ids", {2}, ids)}).ok());
  auto f = SafetensorsFile::Open(dir + "/a.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().message();
  const TensorView& x = (*f)->tensors().at("x");
  EXPECT_EQ(x.shape, (Shape{2, 3}));
  EXPECT_EQ(static_cast<const float*>(x.data)[5], 6.f);
  EXPECT_EQ(static_cast<const int32_t*>((*f)->tensors().at("ids").data)[1], -8);
}

TEST(Safetensors, RejectsHostileHeaders) {
  struct Case { std::string bytes; std::string expect; };
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  std::vector<Case> cases = {
      {"abc", "too short"},
      {std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8) + "{}", "over the 104857600-byte limit"},
      {std::string("\x10\x00\x00\x00\x00\x00\x00\x00", 8) + "{}", "claims 16 bytes but the file has only 2"},
      // Not an object at the top, or an entry that is not one (the streaming reader stops or marks them).
      {Header(R"([{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}])") + std::string(8, 'x'), "not a valid JSON object"},
      {Header(R"("w")"), "not a valid JSON object"},
      {Header(R"({"w":[1,2]})") + std::string(8, 'x'), "needs dtype, shape and data_offsets"},
      {Header(R"({"w":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})") + std::string(8, 'x'), "dtype is not a string"},
      {Header(R"({"w":{"dtype":"F32","shape":{"a":2},"data_offsets":[0,8]}})") + std::string(8, 'x'), "shape is not an array"},
      {Header(R"({"w":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})") + std::string(8, 'x'), "negative or non-integer"},
      {Header(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})") + std::string(8, 'x'), "negative or non-integer"},
      {Header(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})") + std::string(8, 'x'), "at most 8 sizes"},
      {Header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})") + std::string(8, 'x'), "not a pair"},
      {Header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":"0-8"}})") + std::string(8, 'x'), "not a pair"},
      {Header("{not json") , "not a valid JSON"},
      {Header("[1,2]"), "not a valid JSON object"},
      {Header(R"({"w":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})") + std::string(8, 'x'), "unknown dtype 'Q9'"},
      {Header(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})") + std::string(8, 'x'), "negative"},
      {Header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})") + std::string(8, 'x'), "needs 12 bytes"},
      {Header("{" + ok_entry + "}") + std::string(4, 'x'), "outside the 4 data bytes"},
      {Header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})") + std::string(8, 'x'), "outside"},
      {Header(R"({"w":{"dtype":"F32","shape":[2]}})"), "needs dtype, shape and data_offsets"},
      {Header(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})"), "absurdly large"},
      // Aliasing: a name twice, bytes shared by two tensors (also a small one inside a larger one, not adjacent to it
      // in offset order).
      {Header("{" + ok_entry + "," + ok_entry + "}") + std::string(8, 'x'), "names tensor 'w' twice"},
      {Header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})") +
           std::string(12, 'x'), "tensors 'a' [0, 8) and 'b' [4, 12) overlap"},
      {Header(R"({"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
              R"("c":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}})") + std::string(24, 'x'), "overlap"},
  };
  for (const auto& c : cases) {
    Status s = Parse(c.bytes);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << "got: " << s.message() << " want: " << c.expect;
  }
  EXPECT_TRUE(Parse(Header("{" + ok_entry + "}") + std::string(8, 'x')).ok());
  // __metadata__ of any shape and unknown keys in an entry are ignored, as serde ignores them in the reference.
  EXPECT_TRUE(Parse(Header(R"({"__metadata__":{"format":"pt","n":[1,{"x":null}]},"w":{"note":[{"a":1}],"dtype":"F32",)"
                           R"("shape":[2],"data_offsets":[0,8],"z":-1}})") + std::string(8, 'x')).ok());
  // As the reference reader: tensors cover the data back to back (an empty one where the previous one ends), with
  // no gap between them and nothing after the last.
  EXPECT_TRUE(Parse(Header(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"F32","shape":[1],)"
                           R"("data_offsets":[0,4]},"c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})") +
                    std::string(8, 'x')).ok());
  Status gap = Parse(Header(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"F32","shape":[1],)"
                            R"("data_offsets":[8,12]}})") + std::string(12, 'x'));
  EXPECT_NE(gap.message().find("data bytes [4, 8) before tensor 'c' belong to no tensor"), std::string::npos)
      << gap.message();
  Status tail = Parse(Header("{" + ok_entry + "}") + std::string(12, 'x'));
  EXPECT_NE(tail.message().find("4 bytes after the last tensor's data belong to no tensor"), std::string::npos)
      << tail.message();
  Status inside = Parse(Header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],)"
                               R"("data_offsets":[4,4]}})") + std::string(8, 'x'));
  EXPECT_NE(inside.message().find("overlap"), std::string::npos) << inside.message();
}

// A header not padded to a multiple of 8 bytes leaves the data misaligned. The format's reference reader accepts
// such a file, and so does SafetensorsFile (the data is copied once into aligned memory); the bare parser, which
// only hands out views, names the header as the cause.
TEST(Safetensors, UnpaddedHeaderIsReadLikeTheReferenceReader) {
  std::string json = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}})";
  while (json.size() % 8 != 2) json.push_back(' ');
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(static_cast<uint64_t>(json.size()) >> (8 * i));
  const float w[2] = {1.5f, -2.25f};
  const uint16_t h = 0x3c00;
  bytes += json + std::string(reinterpret_cast<const char*>(w), 8) + std::string(reinterpret_cast<const char*>(&h), 2);
  const Status s = Parse(bytes);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not padded to a multiple of 8"), std::string::npos) << s.message();

  const std::string path = testing::MakeTempDir("unpadded") + "/m.safetensors";
  testing::WriteFile(path, bytes);
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const TensorView& tw = (*f)->tensors().at("w");
  ASSERT_EQ(reinterpret_cast<uintptr_t>(tw.data) % 4, 0u);
  EXPECT_EQ(static_cast<const float*>(tw.data)[0], 1.5f);
  EXPECT_EQ(static_cast<const float*>(tw.data)[1], -2.25f);
  EXPECT_EQ(*static_cast<const uint16_t*>((*f)->tensors().at("h").data), 0x3c00);
}

// A header of half a million tiny tensors (45 MB, inside the 100 MiB limit) parses within a 1 GB address space:
// the streaming reader keeps a few numbers per tensor, where a JSON document tree took 25 times the header's size.
TEST(Safetensors, AHugeHeaderParsesInBoundedMemory) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan reserves more address space than the limit this test sets";
#else
  std::string json = "{";
  const int n = 500000;
  for (int i = 0; i < n; ++i) {
    json += StrFormat("%s\"model.layers.%07d.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                      i ? "," : "", i, 4 * i, 4 * i + 4);
  }
  json += "}";
  const std::string bytes = Header(json) + std::string(4 * n, '\0');
  ASSERT_GT(bytes.size(), 40u << 20);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct rlimit lim = {1ull << 30, 1ull << 30};
    setrlimit(RLIMIT_AS, &lim);
    try {  // the child must end here whatever happens, never return into the test runner
      std::map<std::string, TensorView> out;
      const Status st = ParseSafetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "huge", &out);
      _exit(st.ok() && out.size() == static_cast<size_t>(n) ? 0 : 1);
    } catch (...) {
      _exit(2);  // out of memory
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the parse was killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
#endif
}

TEST(Checkpoint, ShardedIndexIsValidated) {
  std::string dir = testing::MakeTempDir("shards");
  float a[2] = {1, 2}, b[3] = {3, 4, 5};
  ASSERT_TRUE(WriteSafetensors(dir + "/model-00001-of-00002.safetensors", {MakeF32Tensor("a", {2}, a)}).ok());
  ASSERT_TRUE(WriteSafetensors(dir + "/model-00002-of-00002.safetensors", {MakeF32Tensor("b", {3}, b)}).ok());
  testing::WriteFile(dir + "/model.safetensors.index.json",
                     R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})");
  auto ck = Checkpoint::Open(dir);
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  EXPECT_EQ((*ck)->tensors().size(), 2u);
  EXPECT_EQ((*ck)->format(), "safetensors (2 shards)");

  testing::WriteFile(dir + "/model.safetensors.index.json", R"({"weight_map":{"a":"model-00003-of-00002.safetensors"}})");
  auto missing = Checkpoint::Open(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("model-00003-of-00002.safetensors"), std::string::npos);

  testing::WriteFile(dir + "/model.safetensors.index.json", R"({"weight_map":{"b":"model-00001-of-00002.safetensors"}})");
  auto wrong = Checkpoint::Open(dir);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("does not hold it"), std::string::npos);

  testing::WriteFile(dir + "/model.safetensors.index.json", "{oops");
  EXPECT_FALSE(Checkpoint::Open(dir).ok());
  EXPECT_FALSE(Checkpoint::Open(dir + "/nope").ok());
}

}  // namespace
}  // namespace ixc
