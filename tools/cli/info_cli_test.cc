// `ixc info` as users run it (text and --json on the golden checkpoint), and an AWQ folder through `ixc chat`.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "core/testing.h"
#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using InfoRun = ixc::testing::CliRun;

// stdout only unless asked: the JSON must parse on its own.
InfoRun Ixc(const std::string& args, bool with_stderr = false) { return ixc::testing::RunIxc(args, with_stderr); }

std::string Model() { return ixc::testing::GoldenDir() + "/model"; }

// Expected counts from the golden safetensors header, by component (post_layernorm is stored but unused).
std::map<std::string, int64_t> HeaderCounts() {
  std::map<std::string, int64_t> c;
  auto f = ixc::SafetensorsFile::Open(Model() + "/model.safetensors");
  EXPECT_TRUE(f.ok());
  if (!f.ok()) return c;
  for (const auto& [name, t] : (*f)->tensors()) {
    const int64_t n = t.numel();
    std::string part = "decoder";
    if (name.find(".post_layernorm.") != std::string::npos) continue;
    if (name.find(".Plora_") != std::string::npos) part = "plora";
    else if (name.find(".lora_web_") != std::string::npos) part = "web";
    else if (name.find(".lora_sft_") != std::string::npos) part = "sft";
    else if (name.find(".lora_dpo_") != std::string::npos) part = "dpo";
    else if (name.rfind("vit.", 0) == 0) part = "vision";
    else if (name.rfind("vision_proj.", 0) == 0 || name.rfind("plora_", 0) == 0) part = "projector";
    c[part] += n;
    c["total"] += n;
  }
  return c;
}

std::string WithCommas(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

TEST(CliInfo, JsonCountsEqualTheHeaderSums) {
  IXC_REQUIRE_GOLDEN();
  InfoRun r = Ixc("info -m " + Model() + " --json --hd-num 4 --context 3000 -t 2");
  ASSERT_EQ(r.code, 0) << r.out;
  json j = json::parse(r.out);
  for (const auto& [part, n] : HeaderCounts()) EXPECT_EQ(j["parameters"][part], n) << part;
  EXPECT_EQ(j["format"]["container"], "safetensors");
  EXPECT_EQ(j["format"]["shards"], 1);
  EXPECT_EQ(j["format"]["awq"], false);
  EXPECT_EQ(j["modes"], json::parse(R"(["base", "web", "write"])"));
  EXPECT_EQ(j["dtypes"]["stored"].size(), 1u);
  EXPECT_TRUE(j["dtypes"]["stored"].contains("BF16"));
  const json& m = j["memory"];
  EXPECT_EQ(m["query"]["hd_num"], 4);
  EXPECT_EQ(m["query"]["threads"], 2);
  EXPECT_EQ(m["image_tokens"], 2101);  // the tallest 4-tile grid, 4x1
  EXPECT_EQ(m["context_tokens"], 3000);
  EXPECT_EQ(m["query"]["precision"], "fast");
  EXPECT_EQ(m["kv_bytes_per_token"], 512);  // 2 layers × (k, v) × 64 × f16
  EXPECT_EQ(m["kv_cache"], 3000 * 512);
  for (const char* k : {"media", "vision", "prefill", "decode"}) EXPECT_GT(m["activations"][k].get<int64_t>(), 0) << k;
  EXPECT_GT(m["total"].get<int64_t>(), m["weights_resident"].get<int64_t>() + m["runtime"].get<int64_t>());

  InfoRun f32 = Ixc("info -m " + Model() + " --json --hd-num 4 --context 3000 -t 2 --precision f32");
  ASSERT_EQ(f32.code, 0) << f32.out;
  EXPECT_EQ(json::parse(f32.out)["memory"]["kv_bytes_per_token"], 1024);
  InfoRun q8 = Ixc("info -m " + Model() + " --json --hd-num 4 --context 3000 -t 2 --kv-type q8_0");
  ASSERT_EQ(q8.code, 0) << q8.out;
  EXPECT_EQ(json::parse(q8.out)["memory"]["kv_bytes_per_token"], 2 * 2 * 2 * 34);  // 2 layers × (k, v) × 2 blocks
  EXPECT_EQ(json::parse(q8.out)["memory"]["query"]["kv_type"], "q8_0");
  EXPECT_EQ(Ixc("info -m " + Model() + " --precision f8").code, 2);
  EXPECT_EQ(Ixc("info -m " + Model() + " --kv-type q4_0").code, 2);
}

TEST(CliInfo, TextOutputPrintsEveryComponent) {
  IXC_REQUIRE_GOLDEN();
  InfoRun r = Ixc("info -m " + Model() + " --images 0");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto counts = HeaderCounts();
  for (auto [label, part] : {std::pair{"decoder", "decoder"}, {"partial LoRA", "plora"}, {"web adapter", "web"},
                             {"sft adapter", "sft"}, {"dpo adapter", "dpo"}, {"vision tower", "vision"},
                             {"projector", "projector"}, {"total", "total"}}) {
    const size_t at = r.out.find(std::string("  ") + label + " ");
    ASSERT_NE(at, std::string::npos) << label << "\n" << r.out;
    const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    EXPECT_NE(line.find(WithCommas(counts.at(part))), std::string::npos) << line;
  }
  for (const char* s : {"format       safetensors (1 file)", "modes        base, web, write", "stored       BF16",
                        "text only", "peak RSS"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
}

TEST(CliInfo, UsageErrors) {
  EXPECT_EQ(Ixc("info --hd-num 0 -m x").code, 2);
  EXPECT_EQ(Ixc("info --bogus").code, 2);
  EXPECT_EQ(Ixc("info --help").code, 0);
  InfoRun r = Ixc("info -m /nonexistent/model", true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("/nonexistent/model"), std::string::npos) << r.out;
}

// The AWQ fixture (tools/fixtures/make_awq_checkpoint.py, needs python3 with torch): `ixc info` reports it, and
// `ixc chat --greedy` on it gives the dense twin's tokens. The progress bar stays off when stderr is not a terminal.
TEST(CliInfo, AwqFolderEndToEnd) {
  IXC_REQUIRE_GOLDEN();
  std::string py;
  for (const char* cand : {"/usr/bin/python3", "python3"}) {
    if (std::system((std::string(cand) + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) == 0) {
      py = cand;
      break;
    }
  }
  if (py.empty()) GTEST_SKIP() << "no python3 with torch and numpy to make the AWQ fixture";
  const std::string dir = ixc::testing::MakeTempDir("cli_awq");
  const fs::path script = fs::path(__FILE__).parent_path() / "../fixtures/make_awq_checkpoint.py";
  ASSERT_EQ(std::system((py + " " + script.string() + " " + Model() + " " + dir + " >/dev/null").c_str()), 0);

  InfoRun info = Ixc("info -m " + dir + "/awq --json", true);
  ASSERT_EQ(info.code, 0) << info.out;
  EXPECT_EQ(info.out.find("dequantising"), std::string::npos) << "no progress bar on a pipe";
  json j = json::parse(info.out);
  EXPECT_EQ(j["format"]["awq"], true);
  EXPECT_EQ(j["format"]["awq_detail"]["group_size"], 128);
  EXPECT_EQ(j["format"]["awq_detail"]["layers"], 10);
  EXPECT_TRUE(j["dtypes"]["stored"].contains("I32"));
  EXPECT_EQ(j["format"]["awq_detail"]["four_bit_layers"], 10);
  // The 4-bit layers are owned in their kernel layout; no F16 copy of them exists.
  EXPECT_TRUE(j["dtypes"]["loaded_owned"].contains("Q4G128x8")) << j["dtypes"].dump();
  EXPECT_FALSE(j["dtypes"]["loaded_owned"].contains("F16")) << j["dtypes"].dump();

  const std::string ask = " -p 'What colour is the circle?' --image " + ixc::testing::GoldenDir() +
                          "/images/synth3.png --greedy -n 5 --json -t 2";
  InfoRun a = Ixc("chat -m " + dir + "/awq" + ask);
  InfoRun d = Ixc("chat -m " + dir + "/dense" + ask);
  ASSERT_EQ(a.code, 0) << a.out;
  ASSERT_EQ(d.code, 0) << d.out;
  EXPECT_EQ(json::parse(a.out)["tokens"], json::parse(d.out)["tokens"]);
  EXPECT_EQ(json::parse(a.out)["tokens"].size(), 5u);
}

}  // namespace
