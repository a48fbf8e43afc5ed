// The public API end to end: hostile model folders, mode availability, placeholder checks, streaming, seeds, and a
// checkpoint whose shapes differ from the golden one in every dimension the config controls.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <latch>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "engine/decode_batcher.h"
#include "core/testing.h"
#include "io/safetensors.h"
#include "ixc/ixc.h"
#include "model/synthetic.h"

namespace ixc {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

void WriteCheckpoint(const std::map<std::string, TensorView>& tensors, const std::string& path) {
  std::vector<NamedTensor> out;
  for (const auto& [name, t] : tensors) {
    NamedTensor n{name, t.dtype, t.shape, {}};
    n.bytes.resize(t.nbytes());
    std::memcpy(n.bytes.data(), t.data, t.nbytes());
    out.push_back(std::move(n));
  }
  ASSERT_TRUE(WriteSafetensors(path, out).ok());
}

// A model folder: config from `cfg`, synthetic weights for it, the golden tokenizer. With `keep`, the weights are
// not written but handed back (their storage lives in *keep) for the caller to edit and write.
std::string MakeModelDir(const json& cfg, const SyntheticOptions& so, const std::string& tag,
                         std::unique_ptr<SyntheticCheckpoint>* keep = nullptr) {
  std::string dir = testing::MakeTempDir(tag);
  testing::WriteFile(dir + "/config.json", cfg.dump());
  fs::copy_file(testing::GoldenDir() + "/model/tokenizer.model", dir + "/tokenizer.model");
  ModelConfig mc;
  auto& c = mc.text;
  c.vocab_size = cfg["vocab_size"];
  c.hidden_size = cfg["hidden_size"];
  c.intermediate_size = cfg["intermediate_size"];
  c.num_hidden_layers = cfg["num_hidden_layers"];
  c.num_attention_heads = cfg["num_attention_heads"];
  c.num_key_value_heads = cfg["num_key_value_heads"];
  const json& v = cfg["vision_config"];
  mc.vision.hidden_size = v["hidden_size"];
  mc.vision.num_hidden_layers = v["num_hidden_layers"];
  mc.vision.num_attention_heads = v["num_attention_heads"];
  mc.vision.intermediate_size = v["intermediate_size"];
  auto ck = MakeSyntheticCheckpoint(mc, so);
  if (keep) {
    *keep = std::move(ck);
    return dir;
  }
  WriteCheckpoint(ck->tensors, dir + "/model.safetensors");
  return dir;
}

json OtherConfig() {
  // Every size differs from the golden checkpoint: 3 layers, 6 query heads over 3 KV heads of width 16,
  // NTK from 64 positions, another theta, and a vision tower of width 24 with 3 heads.
  return json{{"vocab_size", 92544},      {"hidden_size", 96},
              {"intermediate_size", 80},  {"num_hidden_layers", 3},
              {"num_attention_heads", 6}, {"num_key_value_heads", 3},
              {"max_position_embeddings", 64},
              {"rms_norm_eps", 1e-6},     {"rope_theta", 50000},
              {"rope_scaling", {{"type", "dynamic"}, {"factor", 3.0}}},
              {"vision_config", {{"hidden_size", 24}, {"num_hidden_layers", 1}, {"num_attention_heads", 3},
                                 {"intermediate_size", 40}, {"image_size", 560}, {"patch_size", 14}}}};
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { IXC_REQUIRE_GOLDEN(); }
};

TEST_F(EngineTest, AnotherShapeLoadsAndRunsTextAndImages) {
  SyntheticOptions so;
  so.plora_rank = 7;
  so.web_rank = 0;
  std::string dir = MakeModelDir(OtherConfig(), so, "other");
  auto model = Model::Load({dir});
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_TRUE((*model)->HasVision());
  EXPECT_FALSE((*model)->HasMode(TaskMode::kWeb));
  EXPECT_TRUE((*model)->HasMode(TaskMode::kWrite));
  Session s(**model, {2});
  ChatRequest r;
  r.query = "Describe <ImageHere> please, in a long answer that passes the NTK threshold of sixty-four tokens.";
  r.images = {testing::GoldenDir() + "/images/synth3.png"};
  r.generation.do_sample = false;
  r.generation.max_new_tokens = 4;
  auto res = s.Chat(r);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->image_tokens, (std::vector<int64_t>{841}));
  EXPECT_EQ(res->tokens.size(), 4u);
  r.mode = TaskMode::kWeb;
  auto web = s.Chat(r);
  ASSERT_FALSE(web.ok());
  EXPECT_NE(web.status().message().find("lora_web"), std::string::npos);
}

TEST_F(EngineTest, HostileModelFoldersGiveNamedErrors) {
  std::unique_ptr<SyntheticCheckpoint> ck;
  SyntheticOptions so;
  std::string dir = MakeModelDir(OtherConfig(), so, "hostile", &ck);
  const std::map<std::string, TensorView>& tensors = ck->tensors;
  auto expect_error = [&](const std::string& what) {
    auto m = Model::Load({dir});
    ASSERT_FALSE(m.ok()) << "expected an error mentioning " << what;
    EXPECT_NE(m.status().message().find(what), std::string::npos) << m.status().message();
  };
  // No weights at all.
  expect_error("no weights");
  // A truncated file.
  WriteCheckpoint(tensors, dir + "/full.safetensors");
  {
    std::ifstream in(dir + "/full.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    testing::WriteFile(dir + "/model.safetensors", bytes.substr(0, bytes.size() / 2));
  }
  expect_error("model.safetensors");
  // A tensor with the wrong shape, a missing tensor.
  auto bad = tensors;
  bad["model.layers.2.ffn_norm.weight"].shape = {95};
  bad["model.layers.2.ffn_norm.weight"].data = tensors.at("model.norm.weight").data;
  WriteCheckpoint(bad, dir + "/model.safetensors");
  expect_error("model.layers.2.ffn_norm.weight");
  bad = tensors;
  bad.erase("vision_proj.2.bias");
  WriteCheckpoint(bad, dir + "/model.safetensors");
  expect_error("vision_proj.2.bias");
  // Invalid config JSON, a config value of the wrong type.
  WriteCheckpoint(tensors, dir + "/model.safetensors");
  testing::WriteFile(dir + "/config.json", "{\"hidden_size\": 96,");
  expect_error("config.json");
  json cfg = OtherConfig();
  cfg["num_attention_heads"] = "six";
  testing::WriteFile(dir + "/config.json", cfg.dump());
  expect_error("num_attention_heads");
  // A config that disagrees with the weights.
  cfg = OtherConfig();
  cfg["num_hidden_layers"] = 2;
  testing::WriteFile(dir + "/config.json", cfg.dump());
  expect_error("model.layers.2");
  // Missing tokenizer.
  testing::WriteFile(dir + "/config.json", OtherConfig().dump());
  fs::remove(dir + "/tokenizer.model");
  expect_error("tokenizer.model");
  fs::copy_file(testing::GoldenDir() + "/model/tokenizer.model", dir + "/tokenizer.model");
  ASSERT_TRUE(Model::Load({dir}).ok());
}

const Model& Golden() {
  static std::unique_ptr<Model> m = std::move(Model::Load({testing::GoldenDir() + "/model"})).value();
  return *m;
}

TEST_F(EngineTest, BadRequestsAreRejectedWithReasons) {
  Session s(Golden(), {1});
  ChatRequest r;
  r.query = "Image1 <ImageHere> Image2 <ImageHere>";
  r.images = {testing::GoldenDir() + "/images/synth3.png"};
  auto res = s.Chat(r);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("2 <ImageHere> placeholders but 1 image"), std::string::npos);
  r.query = "hi";
  r.images = {testing::GoldenDir() + "/no_such_image.png"};
  EXPECT_FALSE(s.Chat(r).ok());
  r.images.clear();
  r.generation.top_p = 0;
  EXPECT_FALSE(s.Chat(r).ok());
  r.generation.top_p = 0.8f;
  r.generation.max_new_tokens = 0;
  EXPECT_FALSE(s.Chat(r).ok());
}

// The prompt limit is the config's max_length unless the request sets its own (ixc chat --ctx-size): a request may
// both lower it and raise it past the config's, and the limit bounds max_new_tokens too.
TEST_F(EngineTest, RequestMaxLengthReplacesTheConfigsLimit) {
  Session s(Golden(), {1});
  ChatRequest r;
  r.query = "Describe a quiet morning by the sea in a few words.";
  r.generation.do_sample = false;
  r.generation.max_new_tokens = 2;
  r.max_length = 8;
  auto res = s.Chat(r);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(res.status().message().find("over the request's max_length of 8"), std::string::npos) << res.status().message();
  r.max_length = 0;
  res = s.Chat(r);
  ASSERT_TRUE(res.ok()) << res.status().message();
  const int64_t prompt = res->prompt_tokens;
  r.max_length = prompt;
  EXPECT_TRUE(s.Chat(r).ok());
  // The golden config's max_length is 16384: a longer history is refused unless the request allows it.
  std::string long_text;
  for (int i = 0; i < 20000; ++i) long_text += "stars ";  // a token or more per word
  r.history = {{long_text, "ok"}};
  r.max_length = 0;
  res = s.Chat(r);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("model's max_length of 16384"), std::string::npos) << res.status().message();
  r.history.clear();
  r.max_length = 4;
  r.generation.max_new_tokens = 5;
  EXPECT_NE(s.Chat(r).status().message().find("max_new_tokens must be between 1 and 4"), std::string::npos);
  r.max_length = -1;
  EXPECT_FALSE(s.Chat(r).ok());
}

// Sessions in one decode group, run at once on their own threads, give exactly the answers they give alone: their
// steps are batched (bit-identical products below 8 rows), and members that finish early leave the others going.
TEST_F(EngineTest, DecodeGroupMembersAnswerAsTheyDoAlone) {
  struct Ask {
    std::string query;
    int tokens;
    TaskMode mode;
    bool image;
  };
  const std::vector<Ask> asks = {{"Tell me a story about the sea.", 14, TaskMode::kBase, false},
                                 {"What is in the picture?", 5, TaskMode::kBase, true},
                                 {"Write about mountains.", 9, TaskMode::kWrite, false},
                                 {"Name three colours.", 11, TaskMode::kBase, false}};
  auto request = [&](const Ask& a) {
    ChatRequest r;
    r.query = a.query;
    r.mode = a.mode;
    r.generation.do_sample = false;
    r.generation.max_new_tokens = a.tokens;
    r.generation.stop_at_end_of_turn = false;
    r.generation.repetition_penalty = 1.0f;
    if (a.image) r.images = {testing::GoldenDir() + "/images/synth2.png"};
    return r;
  };
  std::vector<std::vector<int>> alone;
  for (const Ask& a : asks) {
    Session s(Golden(), {2});
    auto res = s.Chat(request(a));
    ASSERT_TRUE(res.ok()) << res.status().message();
    alone.push_back(res->tokens);
  }
  for (int round = 0; round < 3; ++round) {
    auto group = std::make_shared<DecodeGroup>();
    std::vector<std::vector<int>> together(asks.size());
    std::vector<std::thread> threads;
    // The tiny model decodes in microseconds: the sessions start decoding together so that they overlap.
    std::latch prefilled(static_cast<std::ptrdiff_t>(asks.size()));
    for (size_t i = 0; i < asks.size(); ++i) {
      threads.emplace_back([&, i] {
        SessionOptions o;
        o.threads = 2;
        o.decode_group = group;
        Session s(Golden(), o);
        ChatRequest r = request(asks[i]);
        r.progress = [&](const ChatProgress& p) {
          if (p.stage == ChatProgress::Stage::kPrefill && p.done == p.total) prefilled.arrive_and_wait();
        };
        auto res = s.Chat(r);
        if (res.ok()) together[i] = res->tokens;
      });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < asks.size(); ++i) EXPECT_EQ(together[i], alone[i]) << asks[i].query << ", round " << round;
    // The base-mode streams were stepped together (the write-mode one apart: another adapter).
    const DecodeBatcher::Stats st = group->batcher().stats();
    EXPECT_GE(st.max_steps, 2) << "round " << round;
    EXPECT_LT(st.forwards, st.steps) << "round " << round;
  }
}

TEST_F(EngineTest, ProgressReportsEveryStageInOrder) {
  Session s(Golden(), {2});
  ChatRequest r;
  r.query = "Image1 <ImageHere> Image2 <ImageHere> Compare.";
  r.images = {testing::GoldenDir() + "/images/synth1.png", testing::GoldenDir() + "/images/cars2.jpg"};
  r.generation.max_new_tokens = 2;
  std::vector<ChatProgress> seen;
  r.progress = [&](const ChatProgress& p) { seen.push_back(p); };
  auto res = s.Chat(r);
  ASSERT_TRUE(res.ok()) << res.status().message();
  // Per image: decoded, then views 0..n; then the prompt in chunks up to its length.
  using Stage = ChatProgress::Stage;
  size_t i = 0;
  for (int64_t image = 1; image <= 2; ++image) {
    ASSERT_LT(i, seen.size());
    EXPECT_EQ(seen[i].stage, Stage::kMedia);
    EXPECT_EQ(seen[i].item, image);
    EXPECT_EQ(seen[i].items, 2);
    ++i;
    int64_t last = -1, total = 0;
    for (; i < seen.size() && seen[i].stage == Stage::kEncode; ++i) {
      EXPECT_EQ(seen[i].item, image);
      EXPECT_GT(seen[i].done, last);
      last = seen[i].done;
      total = seen[i].total;
    }
    EXPECT_EQ(last, total);
    EXPECT_EQ(total, 1 + res->grids[image - 1].first * res->grids[image - 1].second);
  }
  int64_t last = -1;
  for (; i < seen.size(); ++i) {
    ASSERT_EQ(seen[i].stage, Stage::kPrefill);
    EXPECT_EQ(seen[i].total, res->prompt_tokens);
    EXPECT_GT(seen[i].done, last);
    last = seen[i].done;
  }
  EXPECT_EQ(last, res->prompt_tokens);
  EXPECT_EQ(res->timings.encoded_views, (1 + res->grids[0].first * res->grids[0].second) +
                                            (1 + res->grids[1].first * res->grids[1].second));
  EXPECT_EQ(res->timings.prefilled_tokens, res->prompt_tokens);
}

// The golden checkpoint with max_position_embeddings raised from 256 to 16384: its image prompts (800+ tokens)
// then stay below the dynamic-NTK threshold, so the RoPE base does not change between turns.
const Model& GoldenWithLongPositions() {
  static std::unique_ptr<Model> m = [] {
    const std::string dir = testing::MakeTempDir("long_positions");
    std::ifstream in(testing::GoldenDir() + "/model/config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config["max_position_embeddings"] = 16384;
    std::ofstream(dir + "/config.json") << config.dump(1);
    for (const char* f : {"model.safetensors", "tokenizer.model"})
      fs::create_symlink(testing::GoldenDir() + "/model/" + f, dir + "/" + f);
    return std::move(Model::Load({dir})).value();
  }();
  return *m;
}

// A follow-up question computes only the rows after the longest cached prefix that a fresh prefill would compute
// the same way, and never re-encodes an image in that prefix; the answer is the fresh session's.
TEST_F(EngineTest, FollowUpTurnsReuseTheCachedPrefix) {
  ChatRequest first;
  first.query = "What is in the picture?";
  first.images = {testing::GoldenDir() + "/images/synth2.png"};
  first.generation.do_sample = false;
  first.generation.max_new_tokens = 6;
  Session s(GoldenWithLongPositions(), {2, Precision::kF32});
  auto r1 = s.Chat(first);
  ASSERT_TRUE(r1.ok()) << r1.status().message();
  EXPECT_EQ(r1->timings.prefilled_tokens, r1->prompt_tokens);

  ChatRequest second = first;
  second.history = {{first.query, r1->text}};
  second.query = "And what colour is it?";
  second.generation.max_new_tokens = 12;
  auto r2 = s.Chat(second);
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  EXPECT_EQ(r2->timings.encoded_views, 0) << "the image is in the reused prefix";
  EXPECT_GT(r2->timings.prefilled_tokens, 0);
  EXPECT_LT(r2->timings.prefilled_tokens, r2->prompt_tokens - r2->image_tokens[0]);
  Session fresh(GoldenWithLongPositions(), {2, Precision::kF32});
  auto want = fresh.Chat(second);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(want->timings.prefilled_tokens, want->prompt_tokens);
  EXPECT_EQ(r2->tokens, want->tokens);
  EXPECT_EQ(r2->prompt_tokens, want->prompt_tokens);

  // The same request again: everything but the last prompt row comes from the cache.
  auto again = s.Chat(second);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->timings.prefilled_tokens, 1);
  EXPECT_EQ(again->tokens, want->tokens);

  // Another picture: the rows before it are reused, the picture and everything after it are computed.
  ChatRequest other = first;
  other.images = {testing::GoldenDir() + "/images/synth3.png"};
  auto r3 = s.Chat(other);
  ASSERT_TRUE(r3.ok());
  EXPECT_GT(r3->timings.encoded_views, 0);
  EXPECT_GT(r3->timings.prefilled_tokens, r3->image_tokens[0]);
  EXPECT_LT(r3->timings.prefilled_tokens, r3->prompt_tokens);
  auto want3 = Session(GoldenWithLongPositions(), {2, Precision::kF32}).Chat(other);
  ASSERT_TRUE(want3.ok());
  EXPECT_EQ(r3->tokens, want3->tokens);

  // Another adapter changes every row: nothing is reused.
  ChatRequest write = other;
  write.mode = TaskMode::kWrite;
  auto r4 = s.Chat(write);
  ASSERT_TRUE(r4.ok()) << r4.status().message();
  EXPECT_EQ(r4->timings.prefilled_tokens, r4->prompt_tokens);
}

// Past max_position_embeddings (256 in the golden config) dynamic NTK changes the RoPE base with the prompt length,
// so rows cached under the old base are computed again, as the reference would.
TEST_F(EngineTest, FollowUpPastTheNtkThresholdRecomputes) {
  ChatRequest first;
  first.query = "Tell me a long story about a cat.";
  first.generation.do_sample = false;
  first.generation.max_new_tokens = 8;
  Session s(Golden(), {1, Precision::kF32});
  auto r1 = s.Chat(first);
  ASSERT_TRUE(r1.ok());
  ASSERT_LT(r1->prompt_tokens, 256);
  ChatRequest second = first;
  std::string longer;
  for (int i = 0; i < 120; ++i) longer += "more words please ";
  second.history = {{first.query, r1->text}};
  second.query = longer;
  auto r2 = s.Chat(second);
  ASSERT_TRUE(r2.ok());
  ASSERT_GT(r2->prompt_tokens, 256);
  EXPECT_EQ(r2->timings.prefilled_tokens, r2->prompt_tokens);
  auto want = Session(Golden(), {1, Precision::kF32}).Chat(second);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(r2->tokens, want->tokens);
}

TEST_F(EngineTest, StreamingPiecesConcatenateToTheReplyAndCancelStops) {
  ChatRequest r;
  r.query = "Tell me a story.";
  r.generation.max_new_tokens = 40;
  r.generation.seed = 7;
  for (int threads : {1, 2}) {
    Session s(Golden(), {threads});
    std::string streamed;
    auto res = s.Chat(r, [&](std::string_view piece) {
      streamed += piece;
      return true;
    });
    ASSERT_TRUE(res.ok());
    EXPECT_EQ(streamed, res->text);
    EXPECT_EQ(res->tokens.size(), 40u);
    static std::vector<int> first;
    if (threads == 1) first = res->tokens;
    else EXPECT_EQ(res->tokens, first) << "the same seed must give the same tokens on any thread count";
  }
  Session s(Golden(), {1});
  int pieces = 0;
  auto res = s.Chat(r, [&](std::string_view) { return ++pieces < 3; });
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->stop_reason, "cancelled");
  EXPECT_LT(res->tokens.size(), 40u);
  r.generation.seed = 8;
  auto other = s.Chat(r);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->tokens.size(), 40u);
}

TEST_F(EngineTest, BeamSearchCanBeStoppedThroughTheCallback) {
  Session s(Golden(), {1});
  ChatRequest r;
  r.query = "Hello";
  r.generation.do_sample = false;
  r.generation.num_beams = 3;
  r.generation.max_new_tokens = 30;
  int calls = 0;
  auto res = s.Chat(r, [&](std::string_view piece) {
    EXPECT_TRUE(piece.empty());
    return ++calls < 4;
  });
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->stop_reason, "cancelled");
  EXPECT_EQ(calls, 4);
  EXPECT_LT(res->tokens.size(), 30u);
}

TEST_F(EngineTest, BeamsOneEqualsGreedy) {
  Session s(Golden(), {2});
  ChatRequest r;
  r.query = "Hello";
  r.generation.do_sample = false;
  r.generation.max_new_tokens = 6;
  auto greedy = s.Chat(r);
  r.generation.num_beams = 1;
  auto beams = s.Chat(r);
  ASSERT_TRUE(greedy.ok() && beams.ok());
  EXPECT_EQ(greedy->tokens, beams->tokens);
}

}  // namespace
}  // namespace ixc

namespace ixc {
namespace {

TEST(Compose, RequestsCarryTheReferenceDefaults) {
  ChatRequest a = MakeArticleRequest("x", {}, true);
  EXPECT_EQ(a.mode, TaskMode::kWrite);
  EXPECT_EQ(a.generation.top_k, 40);
  EXPECT_FLOAT_EQ(a.generation.top_p, 0.8f);
  EXPECT_EQ(a.generation.max_total_tokens, 8192);
  EXPECT_TRUE(a.generation.stop_at_end_of_turn);
  EXPECT_NE(a.system.find("conversational language model"), std::string::npos);
  EXPECT_TRUE(MakeArticleRequest("x", {}, false).system.empty());
  ChatRequest w = MakeWebpageRequest("x", {});
  EXPECT_EQ(w.mode, TaskMode::kWeb);
  EXPECT_EQ(w.generation.num_beams, 2);
  EXPECT_TRUE(w.generation.do_sample);
  EXPECT_FLOAT_EQ(w.generation.repetition_penalty, 3.0f);
  EXPECT_EQ(w.generation.max_new_tokens, 4800);
  EXPECT_FALSE(w.generation.stop_at_end_of_turn);  // the reference stops web generation at eos only
}

TEST(Compose, ImageUrlRewriteAndScriptMerge) {
  EXPECT_EQ(RewriteImageUrls("<img src=\"https://source.unsplash.com/random/800x600/?bread,cake\">"),
            "<img src=\"https://picsum.photos/800/600\">");
  EXPECT_EQ(RewriteImageUrls("no urls"), "no urls");
  std::string html = "<html><body><p>hi</p><script src=\"x.js\"></script></body></html>";
  std::string merged = MergeJavaScript(html, "Here: <script>a();</script> and <script>b();</script>");
  EXPECT_EQ(merged, "<html><body><p>hi</p><script src=\"x.js\"></script><script>\na();\nb();\n</script>\n</body></html>");
  EXPECT_EQ(MergeJavaScript("<p>x</p>", "c();"), "<p>x</p>\n<script>\nc();\n</script>\n");
  // Backslashes and $ stay literal (the reference used the text as a regex replacement template).
  EXPECT_NE(MergeJavaScript("</html>", "s.replace(/\\d/, '$1');").find("s.replace(/\\d/, '$1');"), std::string::npos);
}

TEST_F(EngineTest, CompositionStopsOnlyAtItsStopTokens) {
  Session s(Golden(), {2});
  ChatRequest r = MakeArticleRequest("Write.", {}, false);
  r.generation.max_new_tokens = 5;
  auto a = s.Chat(r);
  ASSERT_TRUE(a.ok()) << a.status().message();
  for (size_t i = 0; i + 1 < a->tokens.size(); ++i) EXPECT_NE(a->tokens[i], 92542);
  ChatRequest w = MakeWebpageRequest("Page.", {});
  w.generation.max_new_tokens = 4;
  auto p = s.Chat(w);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->text.find("[UNUSED_TOKEN_14"), std::string::npos);
}

}  // namespace
}  // namespace ixc

#include "video/video.h"

namespace ixc {
namespace {

// 24-bit bottom-up BMP, the simplest lossless format our decoder reads.
void WriteBmp(const Image& im, const std::string& path) {
  const int row = (im.width * 3 + 3) & ~3;
  const uint32_t size = 54 + row * im.height;
  std::string b(size, '\0');
  auto put32 = [&](int off, uint32_t v) { for (int i = 0; i < 4; ++i) b[off + i] = static_cast<char>(v >> (8 * i)); };
  b[0] = 'B';
  b[1] = 'M';
  put32(2, size);
  put32(10, 54);
  put32(14, 40);
  put32(18, im.width);
  put32(22, im.height);
  b[26] = 1;
  b[28] = 24;
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x)
      for (int c = 0; c < 3; ++c)
        b[54 + (im.height - 1 - y) * row + x * 3 + c] = static_cast<char>(im.rgb[(y * im.width + x) * 3 + (2 - c)]);
  testing::WriteFile(path, b);
}

TEST_F(EngineTest, VideoEqualsItsCompositeGivenAsAnImage) {
  if (std::system("ffmpeg -version > /dev/null 2>&1") != 0) GTEST_SKIP() << "the ffmpeg command is not installed";
  std::string dir = testing::MakeTempDir("video");
  const std::string clip = dir + "/clip.mp4";
  ASSERT_EQ(std::system(("ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=size=160x120:rate=25 -t 3 "
                         "-pix_fmt yuv420p -y " + clip).c_str()), 0);
  Session s(Golden(), {2});
  ChatRequest r;
  r.query = "Describe this video.";
  r.images = {MediaInput(clip, /*video=*/true)};
  r.generation.do_sample = false;
  r.generation.max_new_tokens = 5;
  auto video = s.Chat(r);
  ASSERT_TRUE(video.ok()) << video.status().message();
  ASSERT_EQ(video->videos.size(), 1u);
  EXPECT_EQ(video->videos[0].frame_indices, (std::vector<int64_t>{0, 25, 50}));
  const auto [rows, cols] = video->grids[0];
  EXPECT_EQ(video->image_tokens[0], (rows * cols + 1) * 400 + 1 + (rows + 1) * 20);

  // The same composite, fitted to the 560 grid, given as a picture: the HD partition leaves it as it is.
  VideoOptions vo;
  auto font = FindLabelFont(testing::GoldenDir() + "/model", "");
  ASSERT_TRUE(font.ok()) << font.status().message();
  vo.font_path = *font;
  auto loaded = LoadVideo(clip, vo);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  WriteBmp(loaded->transformed, dir + "/composite.bmp");
  r.images = {dir + "/composite.bmp"};
  auto image = s.Chat(r);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(image->grids, video->grids);
  EXPECT_EQ(image->tokens, video->tokens);

  // Given as bytes in memory (as the server's data: URLs are), the video and the picture give the same answers,
  // and errors name the given name, not the temporary file the demuxer reads.
  r.capture_tensors = true;
  r.images = {MediaInput::FromBytes(*ReadFileToString(clip), "clip-in-memory", /*video=*/true)};
  auto video_bytes = s.Chat(r);
  ASSERT_TRUE(video_bytes.ok()) << video_bytes.status().message();
  EXPECT_EQ(video_bytes->tokens, video->tokens);
  EXPECT_EQ(video_bytes->grids, video->grids);
  r.images = {MediaInput::FromBytes(*ReadFileToString(dir + "/composite.bmp"), "composite-in-memory")};
  auto image_bytes = s.Chat(r);
  ASSERT_TRUE(image_bytes.ok()) << image_bytes.status().message();
  EXPECT_EQ(image_bytes->tokens, video->tokens);
  r.images = {MediaInput::FromBytes("not a video", "broken-clip", /*video=*/true)};
  auto broken = s.Chat(r);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("broken-clip"), std::string::npos) << broken.status().message();
  EXPECT_EQ(broken.status().message().find("ixc-video-"), std::string::npos) << broken.status().message();
  r.images = {MediaInput::FromBytes("not an image", "broken-image")};
  broken = s.Chat(r);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("broken-image"), std::string::npos) << broken.status().message();
}

}  // namespace
}  // namespace ixc

namespace ixc {
namespace {

// The golden checkpoint re-saved by torch.save as sharded .bin files gives bit-identical logits and tokens.
TEST_F(EngineTest, PyTorchBinShardsGiveBitIdenticalLogits) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with torch (Debian python3-torch) is not available to make the .bin shards";
  }
  const std::string out = testing::MakeTempDir("bin_model");
  const std::string cmd = "/usr/bin/python3 " + std::string(IXC_SOURCE_DIR) +
                          "/tools/fixtures/make_bin_fixtures.py golden '" + testing::GoldenDir() + "/model' '" + out + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto bin = Model::Load({out});
  ASSERT_TRUE(bin.ok()) << bin.status().message();
  ChatRequest r;
  r.query = "What colour is the circle?";
  r.images = {testing::GoldenDir() + "/images/synth3.png"};
  r.generation.do_sample = false;
  r.generation.max_new_tokens = 4;
  r.capture_tensors = true;
  Session a(Golden(), {2}), b(**bin, {2});
  auto ra = a.Chat(r), rb = b.Chat(r);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra->tensors.last_logits, rb->tensors.last_logits);
  EXPECT_EQ(ra->tokens, rb->tokens);
  std::filesystem::remove_all(out);
}

}  // namespace
}  // namespace ixc
