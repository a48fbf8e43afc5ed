// The ixc binary as users run it: exit codes, error messages, --json, --dump-tensors, and the composition
// commands end to end on the golden checkpoint.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "core/testing.h"
#include "io/safetensors.h"

namespace {

using json = nlohmann::json;

using ixc::testing::CliRun;

CliRun Ixc(const std::string& args, const std::string& env = "") { return ixc::testing::RunIxc(args, true, env); }

std::string Model() { return ixc::testing::GoldenDir() + "/model"; }
std::string Image(const std::string& n) { return ixc::testing::GoldenDir() + "/images/" + n; }

TEST(Cli, UsageErrorsExitTwoAndNameTheProblem) {
  CliRun r = Ixc("chat --bogus");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown flag '--bogus'"), std::string::npos) << r.out;
  r = Ixc("chat -m");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("needs a value"), std::string::npos) << r.out;
  r = Ixc("chat -m '' -p hi");  // not the demo model: an empty path is a mistake
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("-m needs a path; it was given an empty one"), std::string::npos) << r.out;
  r = Ixc("frobnicate");
  EXPECT_EQ(r.code, 2);
  r = Ixc("chat -m x -p hi -n many");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("expects an integer"), std::string::npos) << r.out;
  r = Ixc("chat -p hi", "IXC_MODEL=/nonexistent");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("-m MODEL_DIR"), std::string::npos) << r.out;
  EXPECT_EQ(Ixc("chat --help").code, 0);
}

TEST(Cli, ConvertWritesAFileEveryCommandTakes) {
  IXC_REQUIRE_GOLDEN();
  const std::string out = ixc::testing::MakeTempDir("cli_convert") + "/m4.gguf";
  CliRun r = Ixc("convert -m " + Model() + " -o " + out + " --type q4_0");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(" quantised)"), std::string::npos) << r.out;
  r = Ixc("chat -m " + out + " -p hello --greedy -n 3 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  r = Ixc("chat -m " + out + " -p hello --greedy -n 3 --json --kv-type q8_0");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(Ixc("chat -m " + out + " -p hello --kv-type q4").code, 2);
  r = Ixc("info -m " + out + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["format"]["container"], "gguf") << r.out;
  EXPECT_EQ(Ixc("convert -m " + Model()).code, 2) << "no -o";
  EXPECT_EQ(Ixc("convert -o x.gguf").code, 2) << "no -m";
  EXPECT_EQ(Ixc("convert -m " + Model() + " -o x.gguf --type q4_k").code, 2);
  EXPECT_EQ(Ixc("convert --help").code, 0);
}

// A checkpoint holding a NaN weight: every command that loads it refuses it (exit 2, the tensor named) unless told
// --no-check-weights, after which generation stops at the NaN logits instead.
TEST(Cli, NaNWeightsAreRefusedUnlessTheCheckIsSkipped) {
  IXC_REQUIRE_GOLDEN();
  const std::string dir = ixc::testing::MakeTempDir("cli_nan");
  std::filesystem::copy_file(Model() + "/config.json", dir + "/config.json");
  std::filesystem::copy_file(Model() + "/tokenizer.model", dir + "/tokenizer.model");
  auto src = ixc::SafetensorsFile::Open(Model() + "/model.safetensors");
  ASSERT_TRUE(src.ok());
  std::vector<ixc::NamedTensor> out;
  for (const auto& [name, t] : (*src)->tensors()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    ixc::NamedTensor n{name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes())};
    if (name == "model.norm.weight") std::memset(n.bytes.data(), 0xff, n.bytes.size());  // all-ones: NaN in any float type
    out.push_back(std::move(n));
  }
  ASSERT_TRUE(ixc::WriteSafetensors(dir + "/model.safetensors", out).ok());
  for (const std::string& cmd : std::vector<std::string>{"chat -p hi -n 2", "info", "bench --stages decode --probe-mb 16", "convert -o " + dir + "/x.gguf"}) {
    CliRun r = Ixc(cmd + " -m " + dir);
    EXPECT_EQ(r.code, 2) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find("'model.norm.weight'"), std::string::npos) << cmd << ": " << r.out;
  }
  CliRun r = Ixc("info --no-check-weights -m " + dir);
  EXPECT_EQ(r.code, 0) << r.out;
  r = Ixc("chat --no-check-weights -m " + dir + " -p hi -n 2");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("non-finite logits"), std::string::npos) << r.out;
  r = Ixc("serve --no-check-weights -m " + dir + " --port 0 --help");
  EXPECT_EQ(r.code, 0) << r.out;
}

// Exit codes (README): 2 for invalid input (a missing or corrupt file), 3 for a resource limit.
TEST(Cli, BadFilesExitTwoWithTheFileNamed) {
  IXC_REQUIRE_GOLDEN();
  CliRun r = Ixc("chat -m /nonexistent/model -p hi");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("/nonexistent/model"), std::string::npos);
  std::string dir = ixc::testing::MakeTempDir("cli");
  ixc::testing::WriteFile(dir + "/broken.png", "\x89PNG\r\n\x1a\nnot really");
  r = Ixc("chat -m " + Model() + " --image " + dir + "/broken.png -p hi -n 2");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("broken.png"), std::string::npos) << r.out;
  r = Ixc("chat -m " + Model() + " --image " + Image("synth0.png") + " --max-image-pixels 1000 -p hi -n 2");
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.out.find("synth0.png"), std::string::npos) << r.out;
  ixc::testing::WriteFile(dir + "/h.json", "{\"not\": \"a list\"}");
  r = Ixc("chat -m " + Model() + " --history " + dir + "/h.json -p hi -n 2");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("h.json"), std::string::npos) << r.out;
}

TEST(Cli, JsonAndTensorDump) {
  IXC_REQUIRE_GOLDEN();
  std::string dir = ixc::testing::MakeTempDir("cli");
  CliRun r = Ixc("chat -m " + Model() + " --image " + Image("synth3.png") + " -p 'What colour is the circle?' --greedy -n 3 "
              "--json --dump-tensors " + dir + "/t.safetensors");
  ASSERT_EQ(r.code, 0) << r.out;
  json j = json::parse(r.out);
  EXPECT_EQ(j["tokens"].size(), 3u);
  EXPECT_EQ(j["image_tokens"], json::array({841}));
  EXPECT_EQ(j["grids"], json::parse("[[1,1]]"));
  EXPECT_EQ(j["prompt_tokens"], 857);
  EXPECT_TRUE(j["timings"].contains("prefill_ms"));
  auto f = ixc::SafetensorsFile::Open(dir + "/t.safetensors");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->tensors().at("last_logits").shape, (ixc::Shape{92544}));
  EXPECT_EQ((*f)->tensors().at("image_embeds").shape, (ixc::Shape{841, 128}));
  EXPECT_EQ((*f)->tensors().at("pixels0").shape, (ixc::Shape{1, 3, 560, 560}));
}

TEST(Cli, WithoutModelFlagUsesIxcModelAndSaysSo) {
  IXC_REQUIRE_GOLDEN();
  CliRun r = Ixc("chat -p hi --greedy -n 2", "IXC_MODEL=" + Model());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("no -m given; using " + Model()), std::string::npos) << r.out;
}

TEST(Cli, HistoryFileFeedsEarlierTurns) {
  IXC_REQUIRE_GOLDEN();
  std::string dir = ixc::testing::MakeTempDir("cli");
  ixc::testing::WriteFile(dir + "/h.json", R"([["Name two colours.", "Red and blue."]])");
  CliRun r = Ixc("chat -m " + Model() + " --history " + dir + "/h.json -p 'And what about the second one?' --greedy -n 2 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_GT(json::parse(r.out)["prompt_tokens"].get<int>(), 30);
}

// Interactive chat: /help and unknown commands are not sent to the model; /image adds a picture to the next
// question, placed as the one-shot command places it (alone: by the engine; with more: <ImageHere> markers, the
// first picture's turn included).
TEST(Cli, InteractiveCommandsAddPicturesAsTheOneShotCommandDoes) {
  IXC_REQUIRE_GOLDEN();
  std::string dir = ixc::testing::MakeTempDir("cli");
  ixc::testing::WriteFile(dir + "/in.txt", "/help\n/bogus\n/image " + Image("synth1.png") + "\nWhat is this?\n/image " +
                                               dir + "/missing.png\n/image " + Image("synth2.png") +
                                               "\nCompare them.\n/exit\n");
  CliRun inter = ixc::testing::RunIxc("chat -m " + Model() + " --greedy -n 4 < " + dir + "/in.txt", false);
  ASSERT_EQ(inter.code, 0) << inter.out;
  CliRun err = Ixc("chat -m " + Model() + " --greedy -n 4 < " + dir + "/in.txt");
  EXPECT_NE(err.out.find("/video PATH"), std::string::npos) << err.out;
  EXPECT_NE(err.out.find("unknown command /bogus"), std::string::npos) << err.out;
  EXPECT_NE(err.out.find("missing.png is not a file"), std::string::npos) << err.out;

  CliRun first = Ixc("chat -m " + Model() + " --image " + Image("synth1.png") + " -p 'What is this?' --greedy -n 4 --json");
  ASSERT_EQ(first.code, 0) << first.out;
  const std::string a1 = json::parse(first.out)["text"];
  ixc::testing::WriteFile(dir + "/h.json", json::array({json::array({"<ImageHere>What is this?", a1})}).dump());
  CliRun second = Ixc("chat -m " + Model() + " --history " + dir + "/h.json --image " + Image("synth1.png") + " --image " +
                      Image("synth2.png") + " -p '<ImageHere>Compare them.' --greedy -n 4 --json");
  ASSERT_EQ(second.code, 0) << second.out;
  const std::string a2 = json::parse(second.out)["text"];
  EXPECT_EQ(inter.out, a1 + "\n" + a2 + "\n");
}

TEST(Cli, WriteArticleRunsInWriteModeAndWritesItsFile) {
  IXC_REQUIRE_GOLDEN();
  std::string dir = ixc::testing::MakeTempDir("cli");
  CliRun r = Ixc("write-article -m " + Model() + " --image " + Image("synth1.png") + " -p 'Write about the picture.' -n 6 "
              "--seed 8192 --json -o " + dir + "/a.txt");
  ASSERT_EQ(r.code, 0) << r.out;
  json j = json::parse(r.out);
  std::ifstream in(dir + "/a.txt");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, j["text"].get<std::string>());
  EXPECT_LE(j["tokens"].size(), 6u);
}

TEST(Cli, WebpageFromInstructionResumeAndScreenshot) {
  IXC_REQUIRE_GOLDEN();
  std::string dir = ixc::testing::MakeTempDir("cli");
  CliRun r = Ixc("webpage -m " + Model() + " --from instruction -p 'A bakery page.' -n 5 --json -o " + dir + "/p.html");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir + "/p.html"));
  ixc::testing::WriteFile(dir + "/cv.md", "# Ada Lovelace\n\n- Mathematician\n- First programmer\n");
  r = Ixc("webpage -m " + Model() + " --from resume --resume " + dir + "/cv.md -n 4 -o " + dir + "/cv.html");
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(dir + "/cv.html");
  std::string html((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(html.find("<script>"), std::string::npos) << "the JavaScript stage is merged into the page";
  r = Ixc("webpage -m " + Model() + " --from screenshot -n 3 -o " + dir + "/s.html");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--image"), std::string::npos);
  r = Ixc("webpage -m " + Model() + " --from screenshot --image " + Image("synth3.png") + " -n 3 -o " + dir + "/s.html");
  ASSERT_EQ(r.code, 0) << r.out;
}

// A 24 MB history is refused while it is tokenized, a slice at a time, within a 1.5 GB address-space limit; it used
// to be tokenized whole first (gigabytes) and only then measured.
TEST(Cli, AHugeHistoryIsRefusedWithinBoundedMemory) {
  IXC_REQUIRE_GOLDEN();
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves more address space than the limit allows";
#else
  std::string dir = ixc::testing::MakeTempDir("cli");
  std::string turn;
  for (int i = 0; i < 400000; ++i) turn += "word ";
  std::string history = "[";
  for (int i = 0; i < 6; ++i) history += std::string(i ? "," : "") + "[\"" + turn + "\", \"" + turn + "\"]";
  ixc::testing::WriteFile(dir + "/h.json", history + "]");
  CliRun r = Ixc("chat -m " + Model() + " --history " + dir + "/h.json -p hi -n 2", "ulimit -v 1500000;");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("is far over the model's max_length of"), std::string::npos) << r.out;
#endif
}

// Outputs and inputs are checked before the model is loaded and the page generated: an unwritable -o, a directory
// in its place and an empty resume fail at once (exit 2), and no temporary file is left behind.
TEST(Cli, ComposeChecksItsFilesBeforeWorking) {
  IXC_REQUIRE_GOLDEN();
  std::string dir = ixc::testing::MakeTempDir("cli");
  CliRun r = Ixc("webpage -m " + Model() + " -p 'A page.' -n 2 -o " + dir + "/no/such/folder/p.html");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("cannot write " + dir + "/no/such/folder/p.html"), std::string::npos) << r.out;
  r = Ixc("write-article -m " + Model() + " -p 'An essay.' -n 2 -o " + dir);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("exists and is not a regular file"), std::string::npos) << r.out;
  ixc::testing::WriteFile(dir + "/empty.md", " \n\n");
  r = Ixc("webpage -m " + Model() + " --from resume --resume " + dir + "/empty.md -n 2 -o " + dir + "/cv.html");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("is empty"), std::string::npos) << r.out;
  r = Ixc("write-article -m " + Model() + " -p 'An essay.' -n 2 -o " + dir + "/a.txt");
  ASSERT_EQ(r.code, 0) << r.out;
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 2) << "empty.md and a.txt, no .partial file";
}

}  // namespace
