// The OpenAI request mapping, stop strings, base64 and metrics, without sockets or a model.
#include "server/openai.h"

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/testing.h"
#include "server/metrics.h"

namespace ixc::server {
namespace {

using json = nlohmann::json;

json ImagePart(const std::string& bytes) {
  return {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + EncodeBase64(bytes)}}}};
}
json Text(const std::string& t) { return {{"type", "text"}, {"text", t}}; }

ChatCall MustParse(const json& body, const RequestLimits& limits = {}) {
  ChatCall call;
  auto e = ParseChatCompletion(body.dump(), limits, &call);
  EXPECT_FALSE(e.has_value()) << (e ? e->message : "");
  return call;
}

ApiError MustFail(const std::string& body, const RequestLimits& limits = {}) {
  ChatCall call;
  auto e = ParseChatCompletion(body, limits, &call);
  EXPECT_TRUE(e.has_value()) << body;
  return e.value_or(ApiError{});
}

TEST(OpenAi, MessagesBecomeHistoryQueryAndPlacedImages) {
  // One image first in its message: left for the engine to place, as ixc chat --image does.
  ChatCall c = MustParse({{"messages", {{{"role", "user"}, {"content", {ImagePart("png1"), Text("What is this?")}}}}}});
  EXPECT_EQ(c.request.query, "What is this?");
  ASSERT_EQ(c.request.images.size(), 1u);
  ASSERT_TRUE(c.request.images[0].data);
  EXPECT_EQ(*c.request.images[0].data, "png1");
  EXPECT_FALSE(c.request.images[0].is_video);
  EXPECT_TRUE(c.request.history.empty());

  // After its text, the image stands where it was given.
  c = MustParse({{"messages", {{{"role", "user"}, {"content", {Text("Look: "), ImagePart("png1")}}}}}});
  EXPECT_EQ(c.request.query, "Look: <ImageHere>");

  // Several images: each at its place, across turns; the system text and a developer message join.
  c = MustParse({{"messages",
                  {{{"role", "system"}, {"content", "Be brief."}},
                   {{"role", "developer"}, {"content", {Text("Answer in English.")}}},
                   {{"role", "user"}, {"content", {ImagePart("a"), Text("Image1; "), ImagePart("b"), Text("compare.")}}},
                   {{"role", "assistant"}, {"content", "They differ."}},
                   {{"role", "user"}, {"content", {Text("And "), {{"type", "video_url"}, {"video_url", {{"url", "data:video/mp4;base64," + EncodeBase64("mp4")}}}}}}}}}});
  EXPECT_EQ(c.request.system, "Be brief.\nAnswer in English.");
  ASSERT_EQ(c.request.history.size(), 1u);
  EXPECT_EQ(c.request.history[0].user, "<ImageHere>Image1; <ImageHere>compare.");
  EXPECT_EQ(c.request.history[0].assistant, "They differ.");
  EXPECT_EQ(c.request.query, "And <ImageHere>");
  ASSERT_EQ(c.request.images.size(), 3u);
  EXPECT_TRUE(c.request.images[2].is_video);
  EXPECT_EQ(*c.request.images[2].data, "mp4");

  // Consecutive messages of one role are one turn.
  c = MustParse({{"messages", {{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}}}});
  EXPECT_EQ(c.request.query, "a\nb");
}

TEST(OpenAi, SamplingFieldsMapOntoGeneration) {
  ChatCall c = MustParse({{"messages", {{{"role", "user"}, {"content", "hi"}}}}});
  // Unset: the reference chat()'s defaults.
  EXPECT_TRUE(c.request.generation.do_sample);
  EXPECT_FLOAT_EQ(c.request.generation.top_p, 0.8f);
  EXPECT_EQ(c.request.generation.top_k, 50);
  EXPECT_FLOAT_EQ(c.request.generation.repetition_penalty, 1.005f);
  EXPECT_EQ(c.request.generation.max_new_tokens, 1024);
  EXPECT_FALSE(c.stream);
  c = MustParse({{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                 {"temperature", 0}, {"max_tokens", 7}, {"num_beams", 3}, {"seed", 9}, {"hd_num", 4},
                 {"mode", "web"}, {"stream", true}, {"stop", {"x", "yz"}}, {"top_k", 0}, {"repetition_penalty", 1.2},
                 {"stream_options", {{"include_usage", false}}}, {"frequency_penalty", 0.5}});
  EXPECT_FALSE(c.request.generation.do_sample);
  EXPECT_EQ(c.request.generation.max_new_tokens, 7);
  EXPECT_EQ(c.request.generation.num_beams, 3);
  EXPECT_EQ(c.request.generation.seed, 9u);
  EXPECT_EQ(c.request.generation.top_k, 0);
  EXPECT_FLOAT_EQ(c.request.generation.repetition_penalty, 1.2f);
  EXPECT_EQ(c.request.hd_num, 4);
  EXPECT_EQ(c.request.mode, TaskMode::kWeb);
  EXPECT_TRUE(c.stream);
  EXPECT_FALSE(c.include_usage);
  EXPECT_EQ(c.stop, (std::vector<std::string>{"x", "yz"}));
  c = MustParse({{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"temperature", 0.5}, {"stop", "END"}});
  EXPECT_TRUE(c.request.generation.do_sample);
  EXPECT_FLOAT_EQ(c.request.generation.temperature, 0.5f);
  EXPECT_EQ(c.stop, (std::vector<std::string>{"END"}));
}

TEST(OpenAi, BadRequestsNameTheField) {
  const std::string ok_msgs = R"("messages":[{"role":"user","content":"hi"}])";
  struct Case {
    std::string body;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"{not json", 400, "not valid JSON"},
      {"[1,2]", 400, "JSON object"},
      {"{}", 400, "messages: required"},
      {R"({"messages":"hi"})", 400, "messages: expected an array, got a string"},
      {R"({"messages":[]})", 400, "at least one message"},
      {R"({"messages":[{"role":"robot","content":"hi"}]})", 400, "messages[0].role: unknown role 'robot'"},
      {R"({"messages":[{"content":"hi"}]})", 400, "messages[0].role"},
      {R"({"messages":[{"role":"user","content":5}]})", 400, "messages[0].content: expected a string or an array"},
      {R"({"messages":[{"role":"user"}]})", 400, "messages[0].content: required"},
      {R"({"messages":[{"role":"assistant","content":"x"}]})", 400, "must follow a user message"},
      {R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]})", 400, "last message must be from the user"},
      {R"({"messages":[{"role":"user","content":[{"type":"audio"}]}]})", 400, "messages[0].content[0].type: unknown content type 'audio'"},
      {R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", 400, "messages[0].content[0].text"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,@@@"}}]}]})", 400,
       "messages[0].content[0].image_url.url: the data: URL's base64 is malformed"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]})", 400, "only base64"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x.org/a.png"}}]}]})", 400, "remote URLs are not fetched"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]})", 403, "local files are not allowed"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", 400, "messages[0].content[0].image_url: required"},
      {R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"data:;base64,AA=="}}]},{"role":"user","content":"b"}]})",
       400, "only user messages may hold images"},
      {"{" + ok_msgs + R"(,"temperature":"hot"})", 400, "temperature: expected a number, got a string"},
      {"{" + ok_msgs + R"(,"temperature":-1})", 400, "temperature: must be between"},
      {"{" + ok_msgs + R"(,"max_tokens":0})", 400, "max_tokens: must be between 1 and 4096"},
      {"{" + ok_msgs + R"(,"max_tokens":2.5})", 400, "max_tokens: expected an integer"},
      {"{" + ok_msgs + R"(,"n":2})", 400, "only n = 1"},
      {"{" + ok_msgs + R"(,"max_tokens":2e31})", 400, "max_tokens: must be between 1 and 4096"},  // no overflowing cast
      {"{" + ok_msgs + R"(,"seed":-1e300})", 400, "seed: must be between"},
      {"{" + ok_msgs + R"(,"seed":9223372036854775808.0})", 400, "seed: must be between"},  // 2^63 as a double
      {"{" + ok_msgs + R"(,"stream":"yes"})", 400, "stream: expected a boolean"},
      {"{" + ok_msgs + R"(,"stop":["a","b","c","d","e"]})", 400, "at most 4 stop strings"},
      {"{" + ok_msgs + R"(,"stop":[""]})", 400, "may not be empty"},
      {"{" + ok_msgs + R"(,"stop":7})", 400, "stop: expected a string or an array"},
      {"{" + ok_msgs + R"(,"mode":"poem"})", 400, "mode: must be base, web or write"},
      {"{" + ok_msgs + R"(,"num_beams":9})", 400, "num_beams: must be between 1 and 4"},
      {"{" + ok_msgs + R"(,"hd_num":0})", 400, "hd_num"},
      {"{" + ok_msgs + R"(,"seed":-3})", 400, "seed"},
      {"{" + ok_msgs + R"(,"top_p":0})", 400, "top_p"},
  };
  for (const Case& c : cases) {
    const ApiError e = MustFail(c.body);
    EXPECT_EQ(e.status, c.status) << c.body << " -> " << e.message;
    EXPECT_NE(e.message.find(c.says), std::string::npos) << c.body << " -> " << e.message;
    const json err = json::parse(ErrorJson(e));
    EXPECT_EQ(err["error"]["message"], e.message);
    EXPECT_TRUE(err["error"]["type"].is_string());
  }

  // Limits: media count and size, text size.
  RequestLimits small;
  small.max_media = 1;
  small.max_media_bytes = 8;
  small.max_text_bytes = 10;
  json two = {{"messages", {{{"role", "user"}, {"content", {ImagePart("a"), ImagePart("b")}}}}}};
  EXPECT_EQ(MustFail(two.dump(), small).status, 413);
  json big = {{"messages", {{{"role", "user"}, {"content", {ImagePart(std::string(64, 'x'))}}}}}};
  EXPECT_EQ(MustFail(big.dump(), small).status, 413);
  json long_text = {{"messages", {{{"role", "user"}, {"content", std::string(11, 'x')}}}}};
  EXPECT_EQ(MustFail(long_text.dump(), small).status, 413);
}

TEST(OpenAi, LocalFilesOnlyInsideTheAllowedFolder) {
  namespace fs = std::filesystem;
  const std::string root = testing::MakeTempDir("openai_files");
  fs::create_directories(root + "/allowed");
  std::ofstream(root + "/allowed/a.png") << "png";
  std::ofstream(root + "/secret.png") << "secret";
  fs::create_symlink(root + "/secret.png", root + "/allowed/link.png");
  RequestLimits limits;
  limits.local_files_dir = root + "/allowed";
  auto body = [](const std::string& url) {
    return json{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}, {"image_url", {{"url", url}}}}, Text("q")}}}}}};
  };
  ChatCall c = MustParse(body("file://" + root + "/allowed/a.png"), limits);
  ASSERT_EQ(c.request.images.size(), 1u);
  EXPECT_FALSE(c.request.images[0].data);
  EXPECT_EQ(c.request.images[0].path, fs::canonical(root + "/allowed/a.png").string());
  for (const std::string& url : {"file://" + root + "/allowed/../secret.png", "file://" + root + "/allowed/link.png",
                                 "file://" + root + "/allowed/missing.png", "file://" + root + "/allowed",
                                 std::string("relative/a.png")}) {
    const ApiError e = MustFail(body(url).dump(), limits);
    EXPECT_GE(e.status, 400) << url;
    EXPECT_NE(e.param.find("image_url"), std::string::npos) << url;
  }
}

TEST(OpenAi, StopScannerCutsWhereAStopIsFirstCompletedWhateverThePieces) {
  std::mt19937 rng(11);
  const std::string alphabet = "abc";
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    std::vector<std::string> stops;
    for (int k = 0, m = 1 + static_cast<int>(rng() % 2); k < m; ++k) {
      std::string s;
      for (int i = 0, len = 1 + static_cast<int>(rng() % 3); i < len; ++i) s += alphabet[rng() % alphabet.size()];
      stops.push_back(s);
    }
    // The reply ends where a stop string is first completed, before the longest one completed there.
    size_t cut = std::string::npos;
    for (size_t end = 1; end <= text.size() && cut == std::string::npos; ++end) {
      for (const auto& s : stops) {
        if (s.size() <= end && text.compare(end - s.size(), s.size(), s) == 0) cut = std::min(cut, end - s.size());
      }
    }
    const std::string want = cut == std::string::npos ? text : text.substr(0, cut);
    StopScanner scan(stops);
    std::string got;
    size_t at = 0;
    while (at < text.size() && !scan.stopped()) {
      const size_t len = std::min<size_t>(text.size() - at, rng() % 4);
      const std::string out = scan.Push(text.substr(at, len));
      // Nothing sent may ever reach past the cut.
      got += out;
      ASSERT_LE(got.size(), want.size()) << text << " stops " << stops[0] << (stops.size() > 1 ? " " + stops[1] : "");
      at += len;
    }
    got += scan.Finish();
    EXPECT_EQ(got, want) << "text " << text << " stop " << stops[0];
    EXPECT_EQ(scan.stopped(), cut != std::string::npos);
  }
}

TEST(OpenAi, Utf8StreamIsValidAndTheSameHoweverSplit) {
  std::mt19937 rng(5);
  const unsigned char bytes[] = {'a', 'Z', ' ', 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xED, 0xA0, 0xC0, 0xE0};
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    for (int i = 0, n = static_cast<int>(rng() % 16); i < n; ++i) text += static_cast<char>(bytes[rng() % sizeof bytes]);
    Utf8Stream whole;
    std::string want = whole.Push(text);
    want += whole.Finish();
    EXPECT_NO_THROW(json(want).dump()) << trial;  // nlohmann throws on invalid UTF-8
    Utf8Stream parts;
    std::string got;
    for (size_t at = 0; at < text.size();) {
      const size_t len = std::min<size_t>(text.size() - at, rng() % 4);
      got += parts.Push(text.substr(at, len));
      at += len;
    }
    got += parts.Finish();
    EXPECT_EQ(got, want) << trial;
  }
  // Valid text passes unchanged, split anywhere; a lone continuation byte or a cut-off character becomes U+FFFD.
  const std::string valid = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";
  for (size_t cut = 0; cut <= valid.size(); ++cut) {
    Utf8Stream u;
    std::string got = u.Push(valid.substr(0, cut));
    got += u.Push(valid.substr(cut));
    got += u.Finish();
    EXPECT_EQ(got, valid);
  }
  Utf8Stream u;
  std::string got = u.Push("a\x80" "b\xE2\x82");
  got += u.Finish();
  EXPECT_EQ(got, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(OpenAi, ResponseBodiesFollowTheApi) {
  const json done = json::parse(CompletionJson("id1", 5, "m", "hello", "stop", {10, 3}));
  EXPECT_EQ(done["object"], "chat.completion");
  EXPECT_EQ(done["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(done["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(done["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(done["usage"]["total_tokens"], 13);
  const json first = json::parse(ChunkJson("id1", 5, "m", "assistant", "", "", nullptr));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_FALSE(first["choices"][0]["delta"].contains("content"));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));
  Usage u{4, 2};
  const json last = json::parse(ChunkJson("id1", 5, "m", "", "", "length", &u));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(last["usage"]["completion_tokens"], 2);
  // Invalid UTF-8 from a model is replaced, never an exception.
  EXPECT_NO_THROW(json::parse(CompletionJson("i", 0, "m", std::string("\xff\xfe", 2), "stop", {})));
}

TEST(Metrics, PrometheusTextWithCumulativeBuckets) {
  Metrics m;
  m.CountRequest(200);
  m.CountRequest(200);
  m.CountRequest(400);
  m.AddTokens(30, 7);
  m.ObserveFirstToken(0.07);
  m.ObserveFirstToken(3);
  m.ObserveFirstToken(1000);
  m.SetQueueDepth(2);
  const std::string t = m.Render();
  EXPECT_NE(t.find("ixc_requests_total{status=\"200\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("ixc_requests_total{status=\"400\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("ixc_prompt_tokens_total 30\n"), std::string::npos);
  EXPECT_NE(t.find("ixc_generated_tokens_total 7\n"), std::string::npos);
  EXPECT_NE(t.find("ixc_queue_depth 2\n"), std::string::npos);
  EXPECT_NE(t.find("ixc_time_to_first_token_seconds_bucket{le=\"0.05\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("ixc_time_to_first_token_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("ixc_time_to_first_token_seconds_bucket{le=\"5\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("ixc_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("ixc_time_to_first_token_seconds_count 3\n"), std::string::npos);
}

}  // namespace
}  // namespace ixc::server
