// ixc convert: the golden checkpoint as one GGUF file gives the folder's results (bf16: bit for bit; q8_0: within
// the stated tolerance), and files that are not ixc models are refused with the reason.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "core/testing.h"
#include "engine/gguf_model.h"
#include "engine/model_impl.h"
#include "io/gguf.h"
#include "ixc/ixc.h"

namespace ixc {
namespace {

namespace fs = std::filesystem;

std::string GoldenModelDir() { return testing::GoldenDir() + "/model"; }

ChatRequest ImageQuestion() {
  ChatRequest r;
  r.query = "What is in the picture?";
  r.images = {testing::GoldenDir() + "/images/synth1.png"};
  r.generation.do_sample = false;
  r.generation.max_new_tokens = 6;
  r.capture_tensors = true;
  return r;
}

Result<ChatResult> Ask(const std::string& model, const ChatRequest& r) {
  auto m = Model::Load({model});
  if (!m.ok()) return m.status();
  Session s(**m, {2, Precision::kF32});
  return s.Chat(r);
}

TEST(Convert, Bf16FileGivesTheFolderResultsBitForBit) {
  IXC_REQUIRE_GOLDEN();
  const std::string out = testing::MakeTempDir("convert") + "/m.gguf";
  ConvertOptions o;
  o.model_dir = GoldenModelDir();
  o.output = out;
  auto rep = ConvertModel(o);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  EXPECT_EQ(rep->quantised_tensors, 0);
  EXPECT_EQ(rep->tensors, 142);
  auto from_file = Ask(out, ImageQuestion());
  auto from_dir = Ask(GoldenModelDir(), ImageQuestion());
  ASSERT_TRUE(from_file.ok()) << from_file.status().message();
  ASSERT_TRUE(from_dir.ok());
  EXPECT_EQ(from_file->tokens, from_dir->tokens);
  EXPECT_EQ(from_file->tensors.last_logits, from_dir->tensors.last_logits);
  EXPECT_EQ(from_file->tensors.image_embeds, from_dir->tensors.image_embeds);

  auto model = Model::Load({out});
  ASSERT_TRUE(model.ok());
  const ModelInfo info = (*model)->Info();
  EXPECT_EQ(info.container, "gguf");
  EXPECT_EQ(info.model_dir, out);
  EXPECT_EQ(info.modes, (std::vector<std::string>{"base", "web", "write"}));

  // A file converted again is the same model.
  const std::string again = fs::path(out).parent_path().string() + "/again.gguf";
  o.model_dir = out;
  o.output = again;
  ASSERT_TRUE(ConvertModel(o).ok());
  auto a = GgufFile::Open(out), b = GgufFile::Open(again);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->tensors().size(), (*b)->tensors().size());
  for (const auto& [name, v] : (*a)->tensors()) {
    const TensorView& w = (*b)->tensors().at(name);
    ASSERT_EQ(v.nbytes(), w.nbytes()) << name;
    EXPECT_EQ(std::memcmp(v.data, w.data, v.nbytes()), 0) << name;
  }
}

// A quantised file against the folder it came from: which tensors were quantised, and how far the image question's
// last logits move.
struct QuantCase {
  const char* type;
  DType linears;     // the decoder linears' type
  double max_error;  // last-logit relative L2 allowed
};

class ConvertQuantised : public ::testing::TestWithParam<QuantCase> {};

TEST_P(ConvertQuantised, StaysCloseToTheFolder) {
  IXC_REQUIRE_GOLDEN();
  const QuantCase qc = GetParam();
  const std::string out = testing::MakeTempDir("convert") + "/m.gguf";
  ConvertOptions o;
  o.model_dir = GoldenModelDir();
  o.output = out;
  o.type = qc.type;
  auto rep = ConvertModel(o);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  auto file = GgufFile::Open(out);
  ASSERT_TRUE(file.ok());
  const auto& t = (*file)->tensors();
  int64_t block_tensors = 0;
  for (const auto& [name, v] : t) block_tensors += IsBlockType(v.dtype);
  EXPECT_EQ(rep->quantised_tensors, block_tensors);
  EXPECT_EQ(t.at("model.layers.1.feed_forward.w2.weight").dtype, qc.linears);
  EXPECT_EQ(t.at("model.layers.0.attention.wqkv.weight").dtype, qc.linears);
  for (const char* name : {"output.weight", "model.tok_embeddings.weight", "model.layers.0.attention.wo.Plora_A.weight",
                           "vision_proj.2.weight"}) {
    EXPECT_EQ(t.at(name).dtype, DType::kQ8_0) << name;
  }
  EXPECT_FALSE(IsBlockType(t.at("vit.vision_tower.vision_model.embeddings.patch_embedding.weight").dtype))
      << "its rows (3·14·14 values) are not whole blocks";
  EXPECT_FALSE(IsBlockType(t.at("model.norm.weight").dtype));

  auto read_all = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = read_all(out);
  auto q = Ask(out, ImageQuestion());
  auto f = Ask(GoldenModelDir(), ImageQuestion());
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(read_all(out) == before) << "loading rearranges weights in private pages, never in the file";
  // Converting the converted file again (read in its stored layout) gives the same bytes.
  o.model_dir = out;
  o.output = fs::path(out).parent_path().string() + "/again.gguf";
  ASSERT_TRUE(ConvertModel(o).ok());
  auto again = GgufFile::Open(o.output);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ((*again)->tensors().size(), t.size());
  for (const auto& [name, v] : t) {
    const TensorView& w = (*again)->tensors().at(name);
    ASSERT_EQ(v.dtype, w.dtype) << name;
    EXPECT_EQ(std::memcmp(v.data, w.data, v.nbytes()), 0) << name;
  }
  const double err = testing::RelL2(q->tensors.last_logits.data(), f->tensors.last_logits.data(),
                                    f->tensors.last_logits.size());
  RecordProperty(std::string(qc.type) + "_last_logits_rel_l2", std::to_string(err));
  std::printf("%s: last logits rel L2 %.3g\n", qc.type, err);
  EXPECT_LE(err, qc.max_error);
  EXPECT_GT(err, 0) << "the linears were really quantised";
  auto model = Model::Load({out});
  ASSERT_TRUE(model.ok());
  bool has_type = false;
  // Q8_0 stays mapped; Q4_0 linears are interleaved in place at load, which makes their pages the process's own.
  const ModelInfo info = (*model)->Info();
  for (const auto& list : {info.loaded_mapped, info.loaded_owned})
    for (const auto& d : list) has_type = has_type || (d.dtype == DTypeName(qc.linears) && d.bytes > 0);
  EXPECT_TRUE(has_type);
}

// Q8_0 rounds each weight to a step of 1/127 of its block's largest magnitude: for the golden model's evenly spread
// weights an RMS error of step/√12, 0.45% of the weights' RMS; Q4_0's step is 1/8 of the largest magnitude, an error
// of 6.3%. The errors of the layers add up (measured: q8_0 1.4e-2, q4_0 0.14).
INSTANTIATE_TEST_SUITE_P(Types, ConvertQuantised,
                         ::testing::Values(QuantCase{"q8_0", DType::kQ8_0, 2e-2}, QuantCase{"q4_0", DType::kQ4_0, 0.3}),
                         [](const auto& info) { return std::string(info.param.type); });

TEST(Convert, RefusesBadRequestsAndForeignFiles) {
  IXC_REQUIRE_GOLDEN();
  const std::string dir = testing::MakeTempDir("convert");
  ConvertOptions o;
  o.model_dir = GoldenModelDir();
  o.output = dir + "/x.gguf";
  o.type = "q4_k";
  EXPECT_NE(ConvertModel(o).status().message().find("q4_k"), std::string::npos);
  o.type = "bf16";
  o.output = "";
  EXPECT_FALSE(ConvertModel(o).ok());
  o.model_dir = dir + "/missing";
  o.output = dir + "/x.gguf";
  EXPECT_FALSE(ConvertModel(o).ok());

  // GGUF files that are not ixc models: another architecture, and one without the config.
  float w = 1.f;
  std::map<std::string, GgufValue> md = {{"general.architecture", GgufValue::String("llama")}};
  ASSERT_TRUE(WriteGguf(dir + "/llama.gguf", md, {{"w", DType::kF32, {1}, &w, {}}}).ok());
  auto m = Model::Load({dir + "/llama.gguf"});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'llama'"), std::string::npos) << m.status().message();
  md["general.architecture"] = GgufValue::String(kGgufArchitecture);
  md[kGgufKeyFormat] = GgufValue::U32(1);
  ASSERT_TRUE(WriteGguf(dir + "/noconfig.gguf", md, {{"w", DType::kF32, {1}, &w, {}}}).ok());
  m = Model::Load({dir + "/noconfig.gguf"});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(kGgufKeyConfig), std::string::npos) << m.status().message();
  // The output may not be the input.
  const std::string good = dir + "/good.gguf";
  o.model_dir = GoldenModelDir();
  o.output = good;
  ASSERT_TRUE(ConvertModel(o).ok());
  o.model_dir = good;
  EXPECT_NE(ConvertModel(o).status().message().find("overwrite"), std::string::npos);
}

TEST(Convert, ConfigJsonReadsBackToTheSameConfig) {
  ModelConfig c;
  c.text.num_hidden_layers = 3;
  c.text.rope_scaling_type = "dynamic";
  c.text.rope_scaling_factor = 2.0;
  c.text.rms_norm_eps = 3e-6;
  c.vision.num_hidden_layers = 5;
  c.vision.layer_norm_eps = 2e-5;
  auto back = ParseModelConfig(ModelConfigJson(c), "round trip");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(ModelConfigJson(*back), ModelConfigJson(c));
  EXPECT_EQ(back->text.num_hidden_layers, 3);
  EXPECT_EQ(back->text.rope_scaling_type, "dynamic");
  EXPECT_EQ(back->text.rms_norm_eps, 3e-6);
  EXPECT_EQ(back->vision.num_hidden_layers, 5);
  EXPECT_TRUE(back->vision_config_present);
  c.text.rope_scaling_type.clear();
  back = ParseModelConfig(ModelConfigJson(c), "round trip");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->text.rope_scaling_type.empty());
}

// A synthetic file holds exactly the weights `ixc bench --synthetic` generates for the same shapes and seed, with
// the real adapter ranks, and loads like any converted model.
TEST(Convert, SyntheticFileHoldsTheBenchWeights) {
  IXC_REQUIRE_GOLDEN();
  const std::string dir = testing::MakeTempDir("convert");
  ConvertOptions o;
  o.synthetic = true;
  o.synthetic_config = GoldenModelDir() + "/config.json";
  o.tokenizer = GoldenModelDir() + "/tokenizer.model";
  o.output = dir + "/syn.gguf";
  o.type = "q4_0";
  o.seed = 7;
  auto rep = ConvertModel(o);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  EXPECT_GT(rep->quantised_tensors, 0);
  auto model = Model::Load({o.output});
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelInfo info = (*model)->Info();
  const int64_t hidden = info.hidden, layers = info.layers, inter = info.intermediate;
  const int64_t qkv = hidden + 2 * hidden * info.kv_heads / info.heads;
  // Rank r on every linear: A is [r, in], B is [out, r].
  auto lora = [&](int64_t r) { return layers * r * (hidden + qkv + hidden + hidden + hidden + inter + 2 * (hidden + inter)); };
  EXPECT_EQ(info.parameters.plora, lora(256));
  EXPECT_EQ(info.parameters.web, lora(512));
  EXPECT_EQ(info.parameters.sft, lora(256));
  EXPECT_EQ(info.parameters.dpo, lora(256));

  auto config = ParseModelConfig(*ReadFileToString(o.synthetic_config, 1 << 20), "config");
  ASSERT_TRUE(config.ok());
  SyntheticOptions so;
  so.seed = 7;
  so.type = WeightType::kQ4_0;
  so.plora_rank = so.sft_rank = so.dpo_rank = 256;
  so.web_rank = 512;
  auto bench = MakeSyntheticModelImpl(*config, so);
  ASSERT_TRUE(bench.ok()) << bench.status().message();
  const DecoderWeights& a = (*model)->impl().weights.text;
  const DecoderWeights& b = (*bench)->weights.text;
  for (const auto& [x, y] : {std::pair{&a.layers[1].w2.weight, &b.layers[1].w2.weight},
                             {&a.layers[0].wqkv.plora.a, &b.layers[0].wqkv.plora.a},
                             {&a.layers[0].wo.web.b, &b.layers[0].wo.web.b},
                             {&a.output, &b.output}}) {
    ASSERT_EQ(x->dtype, y->dtype);
    ASSERT_EQ(x->nbytes(), y->nbytes());
    EXPECT_EQ(std::memcmp(x->data, y->data, x->nbytes()), 0);
  }

  o.synthetic_config.clear();
  o.tokenizer.clear();
  EXPECT_NE(ConvertModel(o).status().message().find("tokenizer"), std::string::npos);
  o.model_dir = GoldenModelDir();
  EXPECT_FALSE(ConvertModel(o).ok());
}

}  // namespace
}  // namespace ixc
