// Hostile inputs (docs/hostile-inputs.md): paths that are not regular files. A named pipe given as any input used to
// block open() forever; a directory was reported with a nonsensical size or as "not found". Every entry point that
// takes a path checks it with stat() first and names what it found.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "core/testing.h"
#include "engine/model_impl.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "ixc/ixc.h"
#include "media/image.h"
#include "text/tokenizer.h"
#include "video/label_font.h"
#include "video/video_decoder.h"

namespace ixc {
namespace {

namespace fs = std::filesystem;

// Runs `open` on another thread and returns its status; a call still blocked after 10 s fails the test (a writer
// then opens the pipe so the thread can finish).
Status ReturnsPromptly(const std::function<Status()>& open, const std::string& fifo) {
  auto result = std::async(std::launch::async, open);
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "blocked on " << fifo;
    const int fd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    Status s = result.get();
    if (fd >= 0) ::close(fd);
    return s;
  }
  return result.get();
}

TEST(Hostile, PathsThatAreNotRegularFilesAreRefusedWithoutBlocking) {
  const std::string dir = testing::MakeTempDir("hostile_paths");
  const std::string fifo = dir + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string sub = dir + "/folder";
  fs::create_directory(sub);
  struct Case {
    std::string path;
    std::string says;
  };
  const Case cases[] = {{fifo, "named pipe (FIFO), not a regular file"},
                        {sub, "is a directory, not a regular file"},
                        {"/dev/zero", "is a device, not a regular file"},
                        {dir + "/missing", "does not exist"}};
  const std::pair<const char*, std::function<Status(const std::string&)>> entries[] = {
      {"ReadFileToString", [](const std::string& p) { return ReadFileToString(p).status(); }},
      {"MappedFile", [](const std::string& p) { return MappedFile::Open(p).status(); }},
      {"image", [](const std::string& p) { return DecodeImageFile(p).status(); }},
      {"tokenizer", [](const std::string& p) { return Tokenizer::Load(p).status(); }},
      {"video", [](const std::string& p) { return VideoDecoder::Open(p, {}).status(); }},
      {"font", [](const std::string& p) { return LabelFont::Open(p, 16).status(); }},
      {"shard index", [](const std::string& p) { return ReadShardIndex(p).status(); }},
  };
  for (const auto& [entry, open] : entries) {
    for (const Case& c : cases) {
      const Status s = ReturnsPromptly([&, open = open] { return open(c.path); }, fifo);
      EXPECT_FALSE(s.ok()) << entry << " accepted " << c.path;
      EXPECT_NE(s.message().find(c.path), std::string::npos) << entry << ": " << s.message();
      EXPECT_NE(s.message().find(c.says), std::string::npos) << entry << ": " << s.message();
    }
  }
}

// A model folder whose config.json is a pipe: the load fails at once, naming config.json and what it is.
TEST(Hostile, ModelFolderWithAPipeForConfigFails) {
  const std::string dir = testing::MakeTempDir("hostile_model");
  const std::string fifo = dir + "/config.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const Status s = ReturnsPromptly([&] { return Model::Load({dir}).status(); }, fifo);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("config.json is a named pipe"), std::string::npos) << s.message();
}

// A copy of the golden checkpoint in a temp folder whose tensor `name` has `bits` (a bf16 or f32 pattern, widened
// or narrowed to the stored type) at flat element `at`.
std::string CheckpointWithBadValue(const std::string& tag, const std::string& name, int64_t at, uint32_t f32_bits) {
  const std::string golden = testing::GoldenDir() + "/model";
  const std::string dir = testing::MakeTempDir(tag);
  fs::copy_file(golden + "/config.json", dir + "/config.json");
  fs::copy_file(golden + "/tokenizer.model", dir + "/tokenizer.model");
  auto src = SafetensorsFile::Open(golden + "/model.safetensors");
  EXPECT_TRUE(src.ok()) << src.status().message();
  std::vector<NamedTensor> out;
  bool planted = false;
  for (const auto& [n, t] : (*src)->tensors()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    NamedTensor nt{n, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes())};
    if (n == name) {
      EXPECT_TRUE(t.dtype == DType::kBF16 || t.dtype == DType::kF32) << DTypeName(t.dtype);
      if (t.dtype == DType::kBF16) {
        const uint16_t h = static_cast<uint16_t>(f32_bits >> 16);
        std::memcpy(nt.bytes.data() + 2 * at, &h, 2);
      } else {
        std::memcpy(nt.bytes.data() + 4 * at, &f32_bits, 4);
      }
      planted = true;
    }
    out.push_back(std::move(nt));
  }
  EXPECT_TRUE(planted) << name;
  EXPECT_TRUE(WriteSafetensors(dir + "/model.safetensors", out).ok());
  return dir;
}

// Weights holding NaN or ±inf are refused at load, naming the tensor and the element; the load-time scan can be
// switched off (LoadOptions::check_weights, --no-check-weights).
TEST(Hostile, NonFiniteWeightsAreRefusedAtLoad) {
  IXC_REQUIRE_GOLDEN();
  const std::string w2 = "model.layers.1.feed_forward.w2.weight";
  struct Case { uint32_t bits; const char* says; };
  for (const Case& c : {Case{0x7fc00000u, "NaN"}, Case{0x7f800000u, "+inf"}, Case{0xff800000u, "-inf"}}) {
    const std::string dir = CheckpointWithBadValue("hostile_nan_load", w2, 0, c.bits);
    const int64_t f = 256;  // the golden config's intermediate_size: w2 is [D, F], so this is row 2, column 3
    const std::string dir2 = CheckpointWithBadValue("hostile_nan_load", w2, 2 * f + 3, c.bits);
    for (const auto& [d, where] : {std::pair{dir, std::string("row 0, column 0")}, std::pair{dir2, std::string("row 2, column 3")}}) {
      auto model = Model::Load({d});
      ASSERT_FALSE(model.ok()) << c.says;
      EXPECT_EQ(model.status().code(), StatusCode::kDataLoss);
      const std::string& msg = model.status().message();
      EXPECT_NE(msg.find("'" + w2 + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::string("holds ") + c.says + " at " + where), std::string::npos) << msg;
      EXPECT_NE(msg.find("--no-check-weights"), std::string::npos) << msg;
    }
    LoadOptions lo;
    lo.model_dir = dir;
    lo.check_weights = false;
    EXPECT_TRUE(Model::Load(lo).ok());
  }
  // A small vector (copied to f32 at bind) is scanned too.
  auto model = Model::Load({CheckpointWithBadValue("hostile_nan_load", "model.norm.weight", 5, 0x7fc00000u)});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("'model.norm.weight'"), std::string::npos) << model.status().message();
  EXPECT_NE(model.status().message().find("at element 5"), std::string::npos) << model.status().message();
}

// Quantised files: an infinite weight converted without the scan becomes an infinite Q8_0 scale (d = max|x| / 127),
// which the scan of the GGUF file finds; converting with the scan refuses the input instead.
TEST(Hostile, NonFiniteQuantisedScalesAreRefusedAtLoad) {
  IXC_REQUIRE_GOLDEN();
  const std::string w1 = "model.layers.0.feed_forward.w1.weight";
  const std::string dir = CheckpointWithBadValue("hostile_inf_q8", w1, 40, 0x7f800000u);
  ConvertOptions o;
  o.model_dir = dir;
  o.output = dir + "/model-q8_0.gguf";
  o.type = "q8_0";
  auto refused = ConvertModel(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("'" + w1 + "'"), std::string::npos) << refused.status().message();
  o.check_weights = false;
  ASSERT_TRUE(ConvertModel(o).ok());
  auto model = Model::Load({o.output});
  ASSERT_FALSE(model.ok());
  const std::string& msg = model.status().message();
  EXPECT_EQ(model.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(msg.find("'" + w1 + "' (Q8_0) holds a block whose scale is NaN or infinite at row 0, column 32"),
            std::string::npos) << msg;
}

// Loaded without the scan, a checkpoint whose final norm holds a NaN gives NaN logits: the request fails with an
// error naming them, for greedy decoding and for beam search alike, instead of answering with text picked from
// garbage.
TEST(Hostile, NaNWeightsStopGenerationWithAnError) {
  IXC_REQUIRE_GOLDEN();
  LoadOptions lo;
  lo.model_dir = CheckpointWithBadValue("hostile_nan", "model.norm.weight", 0, 0x7fc00000u);
  lo.check_weights = false;
  auto model = Model::Load(lo);
  ASSERT_TRUE(model.ok()) << model.status().message();
  Session session(**model, {2});
  for (int beams : {1, 3}) {
    ChatRequest r;
    r.query = "Hello";
    r.generation.do_sample = false;
    r.generation.num_beams = beams;
    r.generation.max_new_tokens = 4;
    auto res = session.Chat(r);
    ASSERT_FALSE(res.ok()) << beams << " beams answered: " << res->text;
    EXPECT_EQ(res.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(res.status().message().find("non-finite logits"), std::string::npos) << res.status().message();
  }
}

// Configs whose numbers would turn every activation into NaN are refused by field, the vision config's too.
TEST(Hostile, ConfigsThatWouldComputeNaNAreRefused) {
  IXC_REQUIRE_GOLDEN();
  auto text = ReadFileToString(testing::GoldenDir() + "/model/config.json");
  ASSERT_TRUE(text.ok());
  auto good = ParseModelConfig(*text, "config.json");
  ASSERT_TRUE(good.ok()) << good.status().message();
  ASSERT_TRUE(good->vision_config_present);
  const std::pair<const char*, std::string> cases[] = {
      {"layer_norm_eps", "\"layer_norm_eps\": -1e-05"}, {"layer_norm_eps", "\"layer_norm_eps\": 0"},
      {"rms_norm_eps", "\"rms_norm_eps\": -1e-05"}, {"rope_theta", "\"rope_theta\": -5"}};
  for (const auto& [field, replacement] : cases) {
    std::string bad = *text;
    const std::string key = std::string("\"") + field + "\"";
    const size_t at = bad.find(key);
    ASSERT_NE(at, std::string::npos) << field;
    const size_t end = bad.find_first_of(",}", at);
    bad.replace(at, end - at, replacement);
    auto r = ParseModelConfig(bad, "config.json");
    EXPECT_FALSE(r.ok()) << replacement;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
  }
}

// Sizes past what an integer holds are reported as written, not wrapped: 2^63 used to read as a negative number.
TEST(Hostile, HugeConfigSizesAreReportedAsWritten) {
  IXC_REQUIRE_GOLDEN();
  auto text = ReadFileToString(testing::GoldenDir() + "/model/config.json");
  ASSERT_TRUE(text.ok());
  for (const std::string value : {"9223372036854775808", "18446744073709551615", "4294967297", "-3"}) {
    std::string bad = *text;
    const size_t at = bad.find("\"hidden_size\"");
    ASSERT_NE(at, std::string::npos);
    const size_t end = bad.find_first_of(",}", at);
    bad.replace(at, end - at, "\"hidden_size\": " + value);
    auto r = ParseModelConfig(bad, "config.json");
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_NE(r.status().message().find("\"hidden_size\" = " + value + " is out of range"), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace ixc
