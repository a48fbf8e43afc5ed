// Real checkpoints as users have them: AWQ 4-bit folders end to end, quantization_config, load progress,
// Model::Info on the golden checkpoint, and the memory estimator's formulas.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/testing.h"
#include "engine/memory_estimate.h"
#include "model/vision.h"
#include "engine/model_impl.h"
#include "io/gguf.h"
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

// Loaded for inference the layers stay in 4 bits (Q4G128x8), holding (q − z)·s exactly: rounded to f16 they are
// the script's dequantisation. Loaded as stored (ixc convert) they are that F16 dequantisation, bit for bit.
TEST(AwqLoad, FourBitWeightsEqualTheScriptsExpectation) {
  REQUIRE_AWQ_FIXTURE(dir);
  for (bool stored_layout : {false, true}) {
  LoadOptions lo;
  lo.model_dir = dir + "/awq";
  auto m = LoadModelImpl(lo, stored_layout);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ModelImpl& impl = **m;
  EXPECT_TRUE(impl.quantization.present);
  EXPECT_EQ(impl.quantization.method, "awq");
  EXPECT_EQ(impl.quantization.bits, 4);
  EXPECT_EQ(impl.awq.layers, 10);  // 2 layers x 5 linears
  EXPECT_EQ(impl.awq.four_bit, stored_layout ? 0 : 10);
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
      EXPECT_EQ(lw->weight.dtype, stored_layout ? DType::kF16 : DType::kQ4G128x8) << x;
      EXPECT_EQ(lw->weight.shape, want.shape) << x;
      if (stored_layout) {
        EXPECT_EQ(std::memcmp(lw->weight.data, want.data, want.nbytes()), 0) << x << " differs from the script's dequantisation";
      } else {
        std::vector<float> row(want.dim(1));
        int64_t mismatches = 0;
        for (int64_t r = 0; r < want.dim(0); ++r) {
          RowToF32(lw->weight, r, row.data());
          for (int64_t i = 0; i < want.dim(1); ++i) {
            mismatches += F16ToF32(F32ToF16(row[i])) != F16ToF32(static_cast<const uint16_t*>(want.data)[r * want.dim(1) + i]);
          }
        }
        EXPECT_EQ(mismatches, 0) << x << " differs from the script's dequantisation";
      }
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
}

// The dense twin holds the F16-rounded weights; the 4-bit layers hold them exactly and decode with int8 activations.
// Measured: 3.4e-4 relative L2 on the last logits, the same greedy tokens.
TEST(AwqLoad, GreedyChatStaysCloseToTheDenseTwin) {
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
  const double err = testing::RelL2(ra->tensors.last_logits.data(), rd->tensors.last_logits.data(),
                                    rd->tensors.last_logits.size());
  RecordProperty("awq_vs_dense_last_logits_rel_l2", std::to_string(err));
  std::printf("AWQ 4-bit vs dense twin: last logits rel L2 %.3g\n", err);
  EXPECT_LE(err, 1e-2);
  EXPECT_EQ(ra->tokens, rd->tokens);
  EXPECT_EQ(ra->tokens.size(), 6u);
  // Text only and the write adapter (whose lora_sft/dpo tensors stay 16-bit beside the 4-bit base).
  r.images.clear();
  r.mode = TaskMode::kWrite;
  ra = sa.Chat(r);
  rd = sd.Chat(r);
  ASSERT_TRUE(ra.ok() && rd.ok());
  EXPECT_LE(testing::RelL2(ra->tensors.last_logits.data(), rd->tensors.last_logits.data(), rd->tensors.last_logits.size()),
            1e-2);
}

// ixc convert quantises AWQ layers from their exact values (q − z)·s, rounded once into Q8_0 / Q4_0 blocks, not from
// the F16 dequantisation (which would round them twice); bf16 keeps that F16 dequantisation.
TEST(AwqLoad, ConvertQuantisesTheExactWeightsOnce) {
  REQUIRE_AWQ_FIXTURE(dir);
  LoadOptions lo;
  lo.model_dir = dir + "/awq";
  auto exact = LoadModelImpl(lo);  // for inference: the layers in 4 bits, exact
  ASSERT_TRUE(exact.ok()) << exact.status().message();
  auto dense = SafetensorsFile::Open(dir + "/dense/model.safetensors");
  ASSERT_TRUE(dense.ok()) << dense.status().message();
  for (const char* type : {"q4_0", "q8_0", "bf16"}) {
    ConvertOptions co;
    co.model_dir = dir + "/awq";
    co.output = testing::MakeTempDir("awq_convert") + "/m.gguf";
    co.type = type;
    auto report = ConvertModel(co);
    ASSERT_TRUE(report.ok()) << report.status().message();
    auto file = GgufFile::Open(co.output);
    ASSERT_TRUE(file.ok()) << file.status().message();
    int checked = 0;
    for (size_t i = 0; i < (*exact)->weights.text.layers.size(); ++i) {
      const DecoderLayerWeights& L = (*exact)->weights.text.layers[i];
      const std::pair<const char*, const LinearWeights*> linears[] = {
          {"attention.wqkv", &L.wqkv}, {"attention.wo", &L.wo}, {"feed_forward.w1", &L.w1},
          {"feed_forward.w3", &L.w3}, {"feed_forward.w2", &L.w2}};
      for (auto [name, lw] : linears) {
        const std::string x = "model.layers." + std::to_string(i) + "." + name + ".weight";
        const TensorView& got = (*file)->tensors().at(x);
        ASSERT_EQ(lw->weight.dtype, DType::kQ4G128x8) << x;
        if (std::string(type) == "bf16") {
          const TensorView& want = (*dense)->tensors().at(x);
          ASSERT_EQ(got.dtype, DType::kF16) << x;
          EXPECT_EQ(std::memcmp(got.data, want.data, want.nbytes()), 0) << x;
          ++checked;
          continue;
        }
        const DType q = std::string(type) == "q4_0" ? DType::kQ4_0 : DType::kQ8_0;
        ASSERT_EQ(got.dtype, q) << x;
        const int64_t cols = got.dim(1), row_bytes = StorageBytes(q, cols);
        std::vector<float> row(cols);
        std::vector<uint8_t> want(row_bytes);
        int64_t differing_rows = 0;
        for (int64_t r = 0; r < got.dim(0); ++r) {
          RowToF32(lw->weight, r, row.data());
          QuantizeBlocks(q, row.data(), want.data(), cols);
          differing_rows += std::memcmp(want.data(), got.row(r), row_bytes) != 0;
        }
        EXPECT_EQ(differing_rows, 0) << x << " (" << type << ") is not the exact weights quantised once";
        ++checked;
      }
    }
    EXPECT_EQ(checked, 10) << type;
  }
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
  EXPECT_EQ(stages, (std::vector<std::string>{"opening checkpoint", "checking weights", "dequantising AWQ weights", "binding weights",
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

// Parameter counts straight from the golden safetensors header, by the component each name belongs to. The
// vision tower's post_layernorm is stored but never read (spec §1.3), so it is not counted.
ParameterBreakdown CountFromHeader(const std::map<std::string, TensorView>& tensors) {
  ParameterBreakdown p;
  for (const auto& [name, t] : tensors) {
    const int64_t n = t.numel();
    if (name.find(".post_layernorm.") != std::string::npos) continue;
    if (name.find(".Plora_") != std::string::npos) p.plora += n;
    else if (name.find(".lora_web_") != std::string::npos) p.web += n;
    else if (name.find(".lora_sft_") != std::string::npos) p.sft += n;
    else if (name.find(".lora_dpo_") != std::string::npos) p.dpo += n;
    else if (name.rfind("vit.", 0) == 0) p.vision += n;
    else if (name.rfind("vision_proj.", 0) == 0 || name.rfind("plora_", 0) == 0) p.projector += n;
    else p.decoder += n;
  }
  return p;
}

TEST(ModelInfoTest, GoldenCheckpoint) {
  IXC_REQUIRE_GOLDEN();
  auto m = Model::Load({GoldenModel()});
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto file = SafetensorsFile::Open(GoldenModel() + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  const ModelInfo info = (*m)->Info();
  const ParameterBreakdown want = CountFromHeader((*file)->tensors());
  EXPECT_EQ(info.parameters.decoder, want.decoder);
  EXPECT_EQ(info.parameters.plora, want.plora);
  EXPECT_EQ(info.parameters.web, want.web);
  EXPECT_EQ(info.parameters.sft, want.sft);
  EXPECT_EQ(info.parameters.dpo, want.dpo);
  EXPECT_EQ(info.parameters.vision, want.vision);
  EXPECT_EQ(info.parameters.projector, want.projector);
  EXPECT_EQ(info.parameters.total(), want.total());
  EXPECT_EQ(info.container, "safetensors");
  EXPECT_EQ(info.shards, 1);
  EXPECT_FALSE(info.awq);
  EXPECT_EQ(info.modes, (std::vector<std::string>{"base", "web", "write"}));
  EXPECT_TRUE(info.vision);
  EXPECT_EQ(info.layers, 2);
  EXPECT_EQ(info.hidden, 128);
  EXPECT_EQ(info.vision_hidden, 32);
  int64_t stored = 0;
  for (const auto& [name, t] : (*file)->tensors()) stored += static_cast<int64_t>(t.nbytes());
  ASSERT_EQ(info.stored.size(), 1u);
  EXPECT_EQ(info.stored[0].dtype, "BF16");
  EXPECT_EQ(info.stored[0].bytes, stored);
  // Loaded: matrices mapped as stored; norms, biases and embeddings of the vision tower copied to f32.
  ASSERT_EQ(info.loaded_mapped.size(), 1u);
  ASSERT_EQ(info.loaded_owned.size(), 1u);
  EXPECT_EQ(info.loaded_owned[0].dtype, "F32");
  EXPECT_EQ(info.loaded_mapped[0].bytes / 2 + info.loaded_owned[0].bytes / 4, want.total());
  EXPECT_EQ(info.memory.weights_mapped, info.loaded_mapped[0].bytes);
  EXPECT_EQ(info.memory.weights_owned, info.loaded_owned[0].bytes);

  // The estimate for the defaults: one image at hd_num 24 (the tallest 24-tile grid), 4096-token context raised
  // to the prompt, all threads.
  EXPECT_EQ(info.query.hd_num, 24);
  EXPECT_EQ(info.query.images, 1);
  EXPECT_GT(info.query.threads, 0);
  EXPECT_EQ(info.memory.image_tokens, 10501);
  EXPECT_EQ(info.memory.prompt_tokens, 10501 + 64);
  EXPECT_EQ(info.memory.context_tokens, info.memory.prompt_tokens);
  EXPECT_EQ(info.memory.kv_bytes_per_token, 2 * 2 * 64 * 2);  // f16 by default
  MemoryQuery exact;
  exact.precision = Precision::kF32;
  EXPECT_EQ((*m)->Info(exact).memory.kv_bytes_per_token, 2 * 2 * 64 * 4);
  EXPECT_GT(info.memory.total, info.memory.runtime + info.memory.weights_owned);
  // Several images: hd_num 6 whatever was asked (the reference's rule).
  MemoryQuery q;
  q.images = 3;
  q.hd_num = 24;
  EXPECT_EQ((*m)->Info(q).query.hd_num, 6);
}

TEST(ModelInfoTest, WeightBytesForConfigMatchTheBoundGoldenWeights) {
  IXC_REQUIRE_GOLDEN();
  auto m = Model::Load({GoldenModel()});
  ASSERT_TRUE(m.ok());
  const ModelImpl& impl = (*m)->impl();
  LoraRanks ranks;
  ranks.plora = impl.weights.text.layers[0].wqkv.plora.rank();
  ranks.web = impl.weights.text.layers[0].wqkv.web.rank();
  ranks.sft = impl.weights.text.layers[0].wqkv.sft.rank();
  ranks.dpo = impl.weights.text.layers[0].wqkv.dpo.rank();
  const WeightBytes w = WeightBytesForConfig(impl.config, 2, ranks, /*vision=*/true);
  const ModelInfo info = (*m)->Info();
  EXPECT_EQ(w.mapped(), info.memory.weights_mapped);
  EXPECT_EQ(w.owned(), info.memory.weights_owned);
}

// ---- The estimator's formulas (pure; no files) ----

TEST(MemoryEstimate, SevenBWeightsMatchTheSpecInventory) {
  const ModelConfig c;  // the defaults are the real 7B model and its CLIP ViT-L/14-560
  const WeightBytes w = WeightBytesForConfig(c, 2, LoraRanks{}, /*vision=*/true);
  // spec §1.3: 11 095 734 272 parameters with post_layernorm (2 048), which the model never reads.
  const int64_t params = w.mapped() / 2 + w.owned() / 4;
  EXPECT_EQ(params, int64_t{11095734272} - 2048);
  EXPECT_EQ(w.plora.mapped, int64_t{603979776} * 2);
  EXPECT_EQ(w.web.mapped, int64_t{1207959552} * 2);
  EXPECT_EQ(w.sft.mapped, int64_t{603979776} * 2);
  EXPECT_EQ(w.dpo.mapped, int64_t{603979776} * 2);
  EXPECT_EQ(w.embedding_row_bytes, 4096 * 2);
  EXPECT_EQ(KvBytesPerToken(c.text, DType::kF16), 2 * 32 * 1024 * 2);  // 128 KiB per token in f16
  EXPECT_EQ(KvBytesPerToken(c.text, DType::kF32), 2 * 32 * 1024 * 4);
  EXPECT_EQ(KvBytesPerToken(c.text, DType::kQ8_0), 2 * 32 * 1024 / 32 * 34);  // 68 KiB in q8_0  // 256 KiB in f32
  // AWQ: the decoder linears become owned F16 (the same bytes as a 16-bit checkpoint, held in process memory).
  const WeightBytes q = WeightBytesForConfig(c, 2, LoraRanks{}, true, /*awq=*/true);
  EXPECT_EQ(q.decoder.mapped, 0);
  EXPECT_EQ(q.decoder.owned, w.decoder.mapped + w.decoder.owned);
}

TEST(MemoryEstimate, ImagesTokensAndMediaBuffers) {
  const ModelConfig c;
  EXPECT_EQ(ImageTokens(c.vision, {1, 1}), 841);
  EXPECT_EQ(ImageTokens(c.vision, {2, 2}), 2061);
  const ImageShape big = LargestImage(24);
  EXPECT_EQ(big.rows * big.cols, 24);
  EXPECT_EQ(ImageTokens(c.vision, big), 10501);
  for (const ImageShape g : {ImageShape{4, 6}, ImageShape{6, 4}, ImageShape{3, 8}})
    EXPECT_LE(ImageTokens(c.vision, g), ImageTokens(c.vision, big)) << "the tallest grid is the upper bound";
  // 2x2 from an 800x600 picture: the picture, the padded canvas (RGB8), the normalised canvas (f32) and the
  // five views (f32).
  ImageShape im{2, 2, 800 * 600};
  const int64_t canvas = 1120 * 1120, view = 3 * 560 * 560 * 4;
  EXPECT_EQ(MediaBytes(c.vision, im), 3 * 800 * 600 + 3 * canvas + 12 * canvas + 5 * view);
}

TEST(MemoryEstimate, VisionEncodesViewsInBatches) {
  const ModelConfig c;
  // Per thread: the matmul's packed rows and widened panel, the attention's scratch.
  const int64_t kernel = (192 * 256 + 8 + 256 * 16) * 4 + (320 << 10);
  // 2 views (global + one tile): one batch of both; patches of one view, six [2·1601, 1024] buffers and the MLP
  // hidden; the views, their features and the batch's features.
  const ImageShape im{1, 1, 0};
  const int64_t clip2 = (1600 * 588 + 2 * 1601 * (6 * 1024 + 4096)) * 4;
  const int64_t fixed2 = 2 * 3 * 560 * 560 * 4 + 2 * 1600 * 1024 * 4 + 2 * 1600 * 1024 * 4;
  EXPECT_EQ(VisionEncodeBytes(c, im, 1), fixed2 + clip2 + kernel);
  EXPECT_EQ(VisionEncodeBytes(c, im, 2), fixed2 + clip2 + 2 * kernel) << "threads add only their kernel scratch";
  // 25 views: batches of kMaxViewsPerBatch (2), so the tower's buffers are those of 2 views.
  const ImageShape big{4, 6, 0};
  const int64_t b = kMaxViewsPerBatch;
  const int64_t clip_b = (1600 * 588 + b * 1601 * (6 * 1024 + 4096)) * 4;
  EXPECT_EQ(VisionEncodeBytes(c, big, 1),
            25 * (3 * 560 * 560 * 4 + 1600 * 1024 * 4) + b * 1600 * 1024 * 4 +
                std::max(clip_b, ImageTokens(c.vision, big) * (4096 + 2 * 4096) * 4) + kernel);
}

TEST(MemoryEstimate, PrefillChunksAtFiveHundredTwelveRows) {
  const ModelConfig c;
  const DecoderConfig& d = c.text;
  // Embeddings, mask, three 8-byte row keys or bases, the f16 KV cache.
  const int64_t per_token = 4096 * 4 + 1 + 3 * 8 + KvBytesPerToken(d, DType::kF16);
  // Past one chunk, only the per-token terms grow.
  EXPECT_EQ(PrefillBytes(c, 1512, false, TaskMode::kBase, {}, 1, DType::kF16) - PrefillBytes(c, 512, false, TaskMode::kBase, {}, 1, DType::kF16),
            1000 * per_token);
  // Below it, the chunk's workspace grows too.
  const int64_t row = (5 * 4096 + 6144 + 2 * 14336 + 128) * 4;
  EXPECT_EQ(PrefillBytes(c, 101, false, TaskMode::kBase, {}, 1, DType::kF16) - PrefillBytes(c, 100, false, TaskMode::kBase, {}, 1, DType::kF16),
            per_token + row);
  // An f32 cache doubles the cache's part.
  EXPECT_EQ(PrefillBytes(c, 100, false, TaskMode::kBase, {}, 1, DType::kF32) - PrefillBytes(c, 100, false, TaskMode::kBase, {}, 1, DType::kF16),
            100 * KvBytesPerToken(d, DType::kF16));
  // Image rows add Partial LoRA's gathered rows; web mode its rank-512 middle.
  EXPECT_EQ(PrefillBytes(c, 512, true, TaskMode::kBase, {}, 1, DType::kF16) - PrefillBytes(c, 512, false, TaskMode::kBase, {}, 1, DType::kF16),
            512 * (4096 + 14336 + 256) * 4);
  EXPECT_EQ(PrefillBytes(c, 512, false, TaskMode::kWeb, {}, 1, DType::kF16) - PrefillBytes(c, 512, false, TaskMode::kBase, {}, 1, DType::kF16),
            512 * 512 * 4);
}

// Issue 35's long-context case: the 7B model converted with --type q4_0 (decoder linears Q4_0, interleaved in owned
// pages at load; the other matrices Q8_0, mapped) and a q8_0 KV cache, asked a 96K-token text question.
TEST(MemoryEstimate, Q4_0ModelWithAQ8_0CacheFitsA96KRequestIn24GB) {
  const ModelConfig c;
  const LoraRanks ranks;
  WeightBytes w = WeightBytesForConfig(c, 2, ranks, /*vision=*/true);  // bf16, then re-typed as convert stores it
  auto q8 = [](int64_t bf16_bytes) { return StorageBytes(DType::kQ8_0, bf16_bytes / 2); };
  const DecoderConfig& d = c.text;
  const int64_t linears = d.num_hidden_layers * (d.qkv_dim() * d.hidden_size + 2 * d.hidden_size * d.hidden_size +
                                                 3 * d.intermediate_size * d.hidden_size);
  w.decoder.owned += StorageBytes(DType::kQ4_0, linears);
  w.decoder.mapped = 0;
  for (WeightPart* p : {&w.embedding, &w.output, &w.plora, &w.web, &w.sft, &w.dpo, &w.projector}) p->mapped = q8(p->mapped);
  w.embedding_row_bytes = StorageBytes(DType::kQ8_0, d.hidden_size);
  const int64_t patch = c.vision.hidden_size * c.vision.num_channels * c.vision.patch_size * c.vision.patch_size * 2;
  w.vision.mapped = patch + q8(w.vision.mapped - patch);
  RequestShape r;
  r.threads = 2;
  r.text_tokens = 98304 - 512;
  r.context_tokens = 98304;
  r.kv_dtype = DType::kQ8_0;
  const MemoryEstimate e = EstimateMemory(c, w, ranks, r);
  RecordProperty("q4_0_96k_total_gib", std::to_string(static_cast<double>(e.total) / (1 << 30)));
  std::printf("q4_0 + q8_0 KV, 96K tokens: %.2f GiB (weights %.2f, KV %.2f)\n", static_cast<double>(e.total) / (1 << 30),
              static_cast<double>(e.weights_resident) / (1 << 30), static_cast<double>(e.kv_cache) / (1 << 30));
  EXPECT_EQ(e.kv_cache, int64_t{98304} * 2 * 32 * 1024 / 32 * 34);
  EXPECT_LT(e.total, int64_t{24} << 30);
  // With the default f16 cache it is 6 GiB more, still within 24 GB.
  r.kv_dtype = DType::kF16;
  EXPECT_GT(EstimateMemory(c, w, ranks, r).total - e.total, int64_t{5} << 30);
}

TEST(MemoryEstimate, RequestsTouchOnlyTheWeightsTheyUse) {
  const ModelConfig c;
  const LoraRanks ranks;
  const WeightBytes w = WeightBytesForConfig(c, 2, ranks, true);
  RequestShape text;
  text.threads = 4;
  text.text_tokens = 100;
  text.context_tokens = 4096;
  const MemoryEstimate t = EstimateMemory(c, w, ranks, text);
  EXPECT_EQ(t.image_tokens, 0);
  EXPECT_EQ(t.media, 0);
  EXPECT_EQ(t.context_tokens, 4096);
  EXPECT_EQ(t.kv_cache, 4096 * KvBytesPerToken(c.text, DType::kF16));
  EXPECT_EQ(t.peak_phase, "decode");
  const int64_t touched = w.decoder.mapped + w.output.mapped;  // no Plora, adapters, vision
  EXPECT_GE(t.weights_resident, touched + w.owned());
  EXPECT_LE(t.weights_resident, touched + w.owned() + w.embedding.mapped);
  EXPECT_EQ(t.total, t.runtime + t.weights_resident + t.decode);

  RequestShape web = text;
  web.mode = TaskMode::kWeb;
  EXPECT_EQ(EstimateMemory(c, w, ranks, web).weights_resident - t.weights_resident, w.web.mapped);
  RequestShape write = text;
  write.mode = TaskMode::kWrite;
  EXPECT_EQ(EstimateMemory(c, w, ranks, write).weights_resident - t.weights_resident, w.sft.mapped + w.dpo.mapped);

  RequestShape image = text;
  image.images = {LargestImage(24)};
  const MemoryEstimate i = EstimateMemory(c, w, ranks, image);
  EXPECT_EQ(i.image_tokens, 10501);
  EXPECT_EQ(i.context_tokens, 10601) << "the KV cache holds at least the prompt";
  // Images add Plora, the vision tower and the projector; the text request's 3996 generated tokens touched more
  // embedding rows (each up to the kernel's fault-around) than the image request, whose prompt fills the context.
  const int64_t rows_text = std::min(w.embedding.mapped, 4096 * kFaultAroundBytes);
  const int64_t rows_image = 100 * kFaultAroundBytes;
  EXPECT_EQ(i.weights_resident - t.weights_resident,
            w.plora.mapped + w.vision.mapped + w.projector.mapped + rows_image - rows_text);
  EXPECT_GT(i.total, t.total);
  EXPECT_GT(i.media, 0);
  EXPECT_GT(i.allocator_retained, 0);
}

}  // namespace
}  // namespace ixc
