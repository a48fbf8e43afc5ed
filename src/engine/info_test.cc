// Real checkpoints as users have them: AWQ 4-bit folders end to end, quantization_config, load progress.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/testing.h"
#include "engine/model_impl.h"
#include "io/safetensors.h"
#include "ixc/ixc.h"

namespace ixc {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string GoldenModel() { return testing::GoldenDir() + "/model"; }

// A Python that can run the fixture scripts (Debian's has torch); empty when there is none.
std::string PythonWithTorch() {
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    const std::string cmd = std::string(py) + " -c 'import torch, numpy' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return "";
}

// tools/fixtures/make_awq_checkpoint.py run once per process on the golden checkpoint: <dir>/awq and <dir>/dense.
// Empty (with `why` set) when it cannot run here.
const std::string& AwqFixture(std::string* why) {
  static std::string reason;
  static const std::string dir = []() -> std::string {
    const std::string py = PythonWithTorch();
    if (py.empty()) {
      reason = "no python3 with torch and numpy (Debian: apt install python3-torch) to make the AWQ fixture";
      return "";
    }
    const fs::path script = fs::path(__FILE__).parent_path() / "../../tools/fixtures/make_awq_checkpoint.py";
    const std::string out = testing::MakeTempDir("awq_fixture");
    const std::string cmd = py + " " + script.string() + " " + GoldenModel() + " " + out + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      reason = "the fixture script failed: " + cmd;
      return "";
    }
    return out;
  }();
  *why = reason;
  return dir;
}

#define REQUIRE_AWQ_FIXTURE(dir)                       \
  IXC_REQUIRE_GOLDEN();                                \
  std::string why_;                                    \
  const std::string& dir = AwqFixture(&why_);          \
  if (dir.empty()) GTEST_SKIP() << why_;               \
  static_assert(true)

TEST(AwqLoad, DequantisedWeightsEqualTheScriptsExpectation) {
  REQUIRE_AWQ_FIXTURE(dir);
  auto m = LoadModelImpl(dir + "/awq");
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ModelImpl& impl = **m;
  EXPECT_TRUE(impl.quantization.present);
  EXPECT_EQ(impl.quantization.method, "awq");
  EXPECT_EQ(impl.quantization.bits, 4);
  EXPECT_EQ(impl.awq.layers, 10);  // 2 layers x 5 linears
  EXPECT_EQ(impl.awq.group_size, 128);

  auto dense = SafetensorsFile::Open(dir + "/dense/model.safetensors");
  ASSERT_TRUE(dense.ok()) << dense.status().message();
  const auto& expected = (*dense)->tensors();
  int checked = 0;
  for (size_t i = 0; i < impl.weights.text.layers.size(); ++i) {
    const DecoderLayerWeights& L = impl.weights.text.layers[i];
    const std::pair<const char*, const LinearWeights*> linears[] = {
        {"attention.wqkv", &L.wqkv}, {"attention.wo", &L.wo}, {"feed_forward.w1", &L.w1},
        {"feed_forward.w3", &L.w3}, {"feed_forward.w2", &L.w2}};
    for (auto [name, lw] : linears) {
      const std::string x = "model.layers." + std::to_string(i) + "." + name;
      const TensorView& want = expected.at(x + ".weight");
      ASSERT_EQ(want.dtype, DType::kF16);
      EXPECT_EQ(lw->weight.dtype, DType::kF16) << x;
      EXPECT_EQ(lw->weight.shape, want.shape) << x;
      EXPECT_EQ(std::memcmp(lw->weight.data, want.data, want.nbytes()), 0) << x << " differs from the script's dequantisation";
      // The Plora weights are used exactly as stored (spec §1.5): still BF16, same bytes as in the AWQ file.
      const TensorView& pa = impl.checkpoint->tensors().at(x + ".Plora_A.weight");
      EXPECT_EQ(lw->plora.a.dtype, DType::kBF16);
      EXPECT_EQ(lw->plora.a.data, pa.data) << x << ": Plora_A must be the stored tensor itself";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 10);
  // 16-bit tensors stay as stored: the embeddings are views of the file.
  EXPECT_EQ(impl.weights.text.tok_embeddings.data, impl.checkpoint->tensors().at("model.tok_embeddings.weight").data);
}

TEST(AwqLoad, GreedyChatGivesTheSameLogitsAsTheDenseTwin) {
  REQUIRE_AWQ_FIXTURE(dir);
  auto awq = Model::Load({dir + "/awq"});
  auto dense = Model::Load({dir + "/dense"});
  ASSERT_TRUE(awq.ok()) << awq.status().message();
  ASSERT_TRUE(dense.ok()) << dense.status().message();
  ChatRequest r;
  r.query = "What colour is the circle?";
  r.images = {testing::GoldenDir() + "/images/synth3.png"};  // image rows: the Partial LoRA path runs too
  r.generation.do_sample = false;
  r.generation.max_new_tokens = 6;
  r.capture_tensors = true;
  Session sa(**awq, {2}), sd(**dense, {2});
  auto ra = sa.Chat(r);
  auto rd = sd.Chat(r);
  ASSERT_TRUE(ra.ok()) << ra.status().message();
  ASSERT_TRUE(rd.ok()) << rd.status().message();
  ASSERT_EQ(ra->tensors.last_logits.size(), rd->tensors.last_logits.size());
  EXPECT_EQ(std::memcmp(ra->tensors.last_logits.data(), rd->tensors.last_logits.data(),
                        ra->tensors.last_logits.size() * sizeof(float)), 0)
      << "dequantised weights must give bit-identical logits";
  EXPECT_EQ(ra->tokens, rd->tokens);
  EXPECT_EQ(ra->tokens.size(), 6u);
  // Text only and the write adapter (whose lora_sft/dpo tensors stay 16-bit beside the 4-bit base).
  r.images.clear();
  r.mode = TaskMode::kWrite;
  ra = sa.Chat(r);
  rd = sd.Chat(r);
  ASSERT_TRUE(ra.ok() && rd.ok());
  EXPECT_EQ(ra->tensors.last_logits, rd->tensors.last_logits);
}

TEST(AwqLoad, InconsistentFoldersGiveNamedErrors) {
  REQUIRE_AWQ_FIXTURE(dir);
  const std::string bad = testing::MakeTempDir("awq_bad");
  fs::create_symlink(dir + "/awq/tokenizer.model", bad + "/tokenizer.model");
  json cfg = json::parse(std::ifstream(dir + "/awq/config.json"));
  // quantization_config says group 64, the scales say 128.
  cfg["quantization_config"]["group_size"] = 64;
  testing::WriteFile(bad + "/config.json", cfg.dump());
  fs::create_symlink(dir + "/awq/model.safetensors", bad + "/model.safetensors");
  auto m = LoadModelImpl(bad);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("quantization_config says 64"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find(bad), std::string::npos) << m.status().message();
  // A triple with a part missing.
  cfg["quantization_config"]["group_size"] = 128;
  testing::WriteFile(bad + "/config.json", cfg.dump());
  fs::remove(bad + "/model.safetensors");
  auto f = SafetensorsFile::Open(dir + "/awq/model.safetensors");
  ASSERT_TRUE(f.ok());
  std::vector<NamedTensor> out;
  for (const auto& [name, t] : (*f)->tensors()) {
    if (name == "model.layers.1.feed_forward.w2.qzeros") continue;
    NamedTensor n{name, t.dtype, t.shape, {}};
    n.bytes.assign(static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(t.data) + t.nbytes());
    out.push_back(std::move(n));
  }
  ASSERT_TRUE(WriteSafetensors(bad + "/model.safetensors", out).ok());
  m = LoadModelImpl(bad);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("model.layers.1.feed_forward.w2"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("qzeros"), std::string::npos) << m.status().message();
}

TEST(AwqLoad, ProgressReportsEveryStageInOrder) {
  REQUIRE_AWQ_FIXTURE(dir);
  std::vector<std::pair<std::string, double>> calls;
  LoadOptions o;
  o.model_dir = dir + "/awq";
  o.progress = [&](std::string_view stage, double f) { calls.emplace_back(std::string(stage), f); };
  auto m = LoadModelImpl(o);
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::vector<std::string> stages;
  for (size_t i = 0; i < calls.size(); ++i) {
    const auto& [stage, f] = calls[i];
    EXPECT_GE(f, 0.0);
    EXPECT_LE(f, 1.0);
    if (stages.empty() || stages.back() != stage) {
      EXPECT_EQ(f, 0.0) << stage << " starts at 0";
      if (i > 0) {
        EXPECT_EQ(calls[i - 1].second, 1.0) << calls[i - 1].first << " ends at 1";
      }
      stages.push_back(stage);
    } else {
      EXPECT_GE(f, calls[i - 1].second) << stage << " never goes back";
    }
  }
  EXPECT_EQ(calls.back().second, 1.0);
  EXPECT_EQ(stages, (std::vector<std::string>{"opening checkpoint", "dequantising AWQ weights", "binding weights",
                                              "loading tokenizer"}));
  size_t dequant_calls = 0;
  for (const auto& c : calls) dequant_calls += c.first == "dequantising AWQ weights";
  EXPECT_EQ(dequant_calls, 11u) << "0 and one call per layer";
  // A dense folder has no dequantisation stage; the library never prints (nothing to check but the callback).
  calls.clear();
  o.model_dir = GoldenModel();
  ASSERT_TRUE(LoadModelImpl(o).ok());
  for (const auto& c : calls) EXPECT_NE(c.first, "dequantising AWQ weights");
}

TEST(QuantizationConfig, AcceptsAwqSpellingsAndRejectsOthers) {
  auto parse = [](const std::string& qc) { return ParseQuantizationConfig("{\"quantization_config\": " + qc + "}", "config.json"); };
  auto none = ParseQuantizationConfig("{\"hidden_size\": 8}", "config.json");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->present);
  auto hf = parse(R"({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm", "zero_point": true})");
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  EXPECT_TRUE(hf->present);
  EXPECT_EQ(hf->group_size, 128);
  auto autoawq = parse(R"({"w_bit": 4, "q_group_size": 64, "version": "GEMM", "zero_point": true})");
  ASSERT_TRUE(autoawq.ok()) << autoawq.status().message();
  EXPECT_EQ(autoawq->method, "awq");
  EXPECT_EQ(autoawq->group_size, 64);
  for (const char* bad : {R"({"quant_method": "gptq", "bits": 4})", R"({"quant_method": "awq", "bits": 8})",
                          R"({"quant_method": "awq", "version": "gemv"})", R"({"quant_method": "awq", "zero_point": false})"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << bad;
    EXPECT_NE(r.status().message().find("quantization_config"), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(parse("[1, 2]").ok());
  EXPECT_FALSE(parse(R"({"bits": "four"})").ok());
}

}  // namespace
}  // namespace ixc
