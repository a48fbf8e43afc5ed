// `ixc bench` as users run it, on synthetic weights of the golden checkpoint's tiny shapes: the JSON has every
// field, the table marks skipped stages, and bad flags, stage names and config files are clear errors. No timing
// is asserted beyond "positive".
#include <algorithm>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "core/testing.h"

namespace {

using json = nlohmann::json;
using ixc::testing::CliRun;

std::string TinyConfig() { return ixc::testing::GoldenDir() + "/model/config.json"; }

// Small probe buffer and few decode tokens: the run takes seconds.
const char kQuick[] = " --threads 2 --repeat 2 --probe-mb 16";

TEST(CliBench, JsonHasEveryFigure) {
  IXC_REQUIRE_GOLDEN();
  CliRun r = ixc::testing::RunIxc("bench --synthetic --config " + TinyConfig() + kQuick + " --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["type"], "bf16");
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["precision"], "fast");
  EXPECT_EQ(j["kv_type"], "f16");
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["model_layers"], 2);
  EXPECT_EQ(j["vit_layers"], 2);
  EXPECT_EQ(j["decode_tokens"], 2);
  EXPECT_EQ(j["stages"], json::parse(R"(["vit", "prefill", "image", "decode", "decode16k", "decodex4"])"));
  EXPECT_EQ(j["image_prompt_tokens"], 2878);  // the tiny tower keeps the real 560 px views and 14 px patches
  for (const char* k : {"vit_tile_s", "prefill_tok_s_512", "image_prompt_s", "image_encode_s", "image_prefill_s",
                        "decode_tok_s", "decode_tok_s_16k", "decode_tok_s_x4", "decode_x4_speedup", "decode_weight_bytes", "decode_kv_bytes",
                        "decode_kv_bytes_16k", "peak_rss_mb", "bandwidth_gbs", "bandwidth_probe_bytes", "peak_gflops",
                        "prefill_flop_per_token", "vit_flop_per_tile", "image_prompt_flop", "bandwidth_gbs_start",
                        "bandwidth_gbs_end",
                        "decode_bandwidth_share", "decode_16k_bandwidth_share", "prefill_peak_share",
                        "vit_peak_share", "image_peak_share", "setup_s"}) {
    ASSERT_TRUE(j.contains(k)) << k;
    ASSERT_TRUE(j[k].is_number()) << k << ": " << j[k];
    EXPECT_GT(j[k].get<double>(), 0) << k;
  }
  EXPECT_FALSE(j["peak_kind"].get<std::string>().empty());
  EXPECT_TRUE(j["peaks_gflops"].contains(j["peak_kind"].get<std::string>()));
  EXPECT_EQ(j["bandwidth_probe_bytes"], 16 << 20);
  EXPECT_EQ(j["bandwidth_gbs"], std::max(j["bandwidth_gbs_start"].get<double>(), j["bandwidth_gbs_end"].get<double>()));
  // Synthetic bf16 weights of the tiny shape: 2 layers of linears, f32 norms, the LM head, one embedding row.
  const int64_t linears = 128 * 256 + 128 * 128 + 3 * 128 * 256;
  EXPECT_EQ(j["decode_weight_bytes"], 2 * 2 * linears + 4 * (2 * 2 * 128 + 128) + 2 * 92544 * 128 + 2 * 128);
}

TEST(CliBench, SkippedStagesAreNullAndDashes) {
  IXC_REQUIRE_GOLDEN();
  const std::string args =
      "bench --synthetic --config " + TinyConfig() + kQuick + " --stages decode --layers 1 --precision f32";
  CliRun r = ixc::testing::RunIxc(args + " --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["layers"], 1);
  EXPECT_EQ(j["model_layers"], 2);
  EXPECT_EQ(j["kv_type"], "f32");
  EXPECT_EQ(j["decode_kv_bytes"], 4096 * 2 * 1 * 64 * 4);  // positions × (k, v) × layers × kv width × f32
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  for (const char* k : {"vit_tile_s", "prefill_tok_s_512", "image_prompt_s", "decode_tok_s_16k", "decode_tok_s_x4",
                        "decode_x4_speedup", "vit_peak_share"})
    EXPECT_TRUE(j[k].is_null()) << k;

  CliRun t = ixc::testing::RunIxc(args, false);
  ASSERT_EQ(t.code, 0) << t.out;
  for (const char* s : {"read bandwidth", "GFLOP/s", "1 of 2 decoder layers", "not scaled", "of read bandwidth"})
    EXPECT_NE(t.out.find(s), std::string::npos) << s << "\n" << t.out;
  const size_t vit = t.out.find("\nvit ");
  ASSERT_NE(vit, std::string::npos) << t.out;
  const std::string line = t.out.substr(vit + 1, t.out.find('\n', vit + 1) - vit - 1);
  EXPECT_NE(line.find(" - "), std::string::npos) << line;
  EXPECT_EQ(t.out.find("ixc bench:"), std::string::npos) << "no progress lines when stderr is not a terminal";

  // Q8_0 decoder linears: fewer bytes per decoded token than bf16 (34 bytes per 32 values against 64).
  CliRun q = ixc::testing::RunIxc(args + " --type q8_0 --json", false);
  ASSERT_EQ(q.code, 0) << q.out;
  const json jq = json::parse(q.out);
  EXPECT_EQ(jq["type"], "q8_0");
  EXPECT_GT(jq["decode_tok_s"].get<double>(), 0);
  EXPECT_LT(jq["decode_weight_bytes"].get<int64_t>(), j["decode_weight_bytes"].get<int64_t>());

  // Q4_0 linears (interleaved at load) with a q8_0 KV cache: fewer bytes again, and the cache's bytes per position
  // are 34 per 32 values.
  CliRun q4 = ixc::testing::RunIxc(args + " --type q4_0 --kv-type q8_0 --json", false);
  ASSERT_EQ(q4.code, 0) << q4.out;
  const json j4 = json::parse(q4.out);
  EXPECT_EQ(j4["type"], "q4_0");
  EXPECT_EQ(j4["kv_type"], "q8_0");
  EXPECT_EQ(j4["decode_kv_bytes"], 4096 * 2 * 1 * 64 / 32 * 34);
  EXPECT_GT(j4["decode_tok_s"].get<double>(), 0);
  EXPECT_LT(j4["decode_weight_bytes"].get<int64_t>(), jq["decode_weight_bytes"].get<int64_t>());

  // Decoding from an empty cache, as llama-bench's tg test does.
  CliRun z = ixc::testing::RunIxc(args + " --decode-context 0 --json", false);
  ASSERT_EQ(z.code, 0) << z.out;
  EXPECT_EQ(json::parse(z.out)["decode_context"], 0);
  EXPECT_EQ(json::parse(z.out)["decode_kv_bytes"], 0);
  EXPECT_EQ(ixc::testing::RunIxc(args + " --decode-context -1", false).code, 2);

  // One model for text and vision stages.
  CliRun one = ixc::testing::RunIxc("bench --synthetic --config " + TinyConfig() + kQuick +
                                        " --stages decode,vit --one-model --json", false);
  ASSERT_EQ(one.code, 0) << one.out;
  EXPECT_GT(json::parse(one.out)["decode_tok_s"].get<double>(), 0);
  EXPECT_GT(json::parse(one.out)["vit_tile_s"].get<double>(), 0);

  // The vision stage alone (its synthetic model still needs Partial LoRA beside the tower).
  CliRun v = ixc::testing::RunIxc("bench --synthetic --config " + TinyConfig() + kQuick + " --stages vit --json", false);
  ASSERT_EQ(v.code, 0) << v.out;
  EXPECT_GT(json::parse(v.out)["vit_tile_s"].get<double>(), 0);
}

// -m: the folder goes through Model::Load; its tokenizer counts the question's text tokens.
TEST(CliBench, RealFolder) {
  IXC_REQUIRE_GOLDEN();
  const std::string dir = ixc::testing::GoldenDir() + "/model";
  CliRun r = ixc::testing::RunIxc("bench -m " + dir + kQuick + " --stages image,decode --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["model"], dir);
  EXPECT_EQ(j["type"], "bf16");
  EXPECT_EQ(j["image_prompt_tokens"], 2878);
  EXPECT_GT(j["image_prompt_s"].get<double>(), 0);
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  EXPECT_TRUE(j["prefill_tok_s_512"].is_null());
}

// Out of memory is an error with exit code 3, not an abort: under a 1.5 GB address-space limit the synthetic
// weights of two full-size layers (about 2.6 GB) cannot be allocated.
TEST(CliBench, OutOfMemoryIsAnErrorNotAnAbort) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves more address space than the limit allows";
#else
  CliRun r = ixc::testing::RunIxc("bench --synthetic --type bf16 --layers 2 --stages decode --threads 2 --json", true,
                                  "ulimit -v 1500000;");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("out of memory"), std::string::npos) << r.out;
#endif
}

TEST(CliBench, UsageErrors) {
  auto expect_error = [](const std::string& args, int code, const std::string& mention) {
    CliRun r = ixc::testing::RunIxc("bench " + args);
    EXPECT_EQ(r.code, code) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(mention), std::string::npos) << args << "\n" << r.out;
  };
  expect_error("--synthetic --bogus", 2, "--bogus");
  expect_error("--synthetic --stages vit,bogus", 2, "bogus");
  expect_error("--synthetic --type int4", 2, "--type");
  expect_error("--synthetic --precision f8", 2, "f8");
  expect_error("--synthetic --kv-type int4", 2, "int4");
  expect_error("", 2, "--synthetic");
  expect_error("--synthetic -m /some/model", 2, "--synthetic");
  expect_error("-m /some/model --layers 2", 2, "--layers");
  expect_error("--synthetic --config /nonexistent/config.json", 2, "/nonexistent/config.json");
  expect_error("--synthetic --type f32 --layers 60000", 3, "--type bf16");  // far more memory than any machine has
  EXPECT_EQ(ixc::testing::RunIxc("bench --help").code, 0);
}

}  // namespace
