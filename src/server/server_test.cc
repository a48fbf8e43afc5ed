// ixc serve over real sockets against the golden checkpoint: greedy answers over HTTP equal the engine's for the
// same inputs (as ixc chat builds them), streams are valid SSE whose text equals the whole answer, bad requests get
// their status and leave the server serving.
#include "server/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/mapped_file.h"
#include "core/testing.h"
#include "load/load.h"

namespace ixc::server {
namespace {

using json = nlohmann::json;

std::string GoldenImage(const std::string& name) { return testing::GoldenDir() + "/images/" + name; }

json ImagePart(const std::string& path) {
  return {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + EncodeBase64(*ReadFileToString(path))}}}};
}
json Text(const std::string& t) { return {{"type", "text"}, {"text", t}}; }

const Model& Golden() {
  static std::unique_ptr<Model> m = std::move(Model::Load({testing::GoldenDir() + "/model"})).value();
  return *m;
}

// A server on a free port, run on its own thread for the test's lifetime.
class Running {
 public:
  explicit Running(ServerOptions o) : server_(Golden(), Prepare(std::move(o))) {
    Status s = server_.Bind();
    EXPECT_TRUE(s.ok()) << s.message();
    thread_ = std::thread([this] { run_status_ = server_.Run(); });
  }
  ~Running() {
    server_.Stop();
    thread_.join();
  }
  int port() const { return server_.port(); }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(120, 0);
    return c;
  }
  void Stop() { server_.Stop(); }

 private:
  static ServerOptions Prepare(ServerOptions o) {
    o.port = 0;
    o.threads = 2;
    return o;
  }
  Server server_;
  std::thread thread_;
  Status run_status_;
};

ChatRequest Greedy(const std::string& query, int n) {
  ChatRequest r;
  r.query = query;
  r.generation.do_sample = false;
  r.generation.max_new_tokens = n;
  return r;
}

std::string EngineAnswer(const ChatRequest& r) {
  Session s(Golden(), {2});
  auto res = s.Chat(r);
  EXPECT_TRUE(res.ok()) << res.status().message();
  return res.ok() ? res->text : "";
}

json Post(httplib::Client& c, const json& body, int want_status = 200) {
  auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  EXPECT_TRUE(res) << "no response";
  if (!res) return json();
  EXPECT_EQ(res->status, want_status) << res->body;
  json j = json::parse(res->body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << res->body;
  return j;
}

json Body(json messages, int max_tokens) {
  return {{"messages", std::move(messages)}, {"temperature", 0}, {"max_tokens", max_tokens}};
}

// A raw TCP connection to the server (for clients httplib cannot play: half requests, dropped streams); -1 on failure.
int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// Parses an SSE body: every event is "data: <payload>\n\n"; returns the payloads.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line: " << body.substr(at);
    if (end == std::string::npos) break;
    const std::string ev = body.substr(at, end - at);
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    out.push_back(ev.substr(6));
    at = end + 2;
  }
  return out;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { IXC_REQUIRE_GOLDEN(); }
};

TEST_F(ServerTest, GreedyAnswersEqualTheEngineForEveryInputKind) {
  ServerOptions o;
  o.parallel = 2;
  Running srv(o);
  httplib::Client c = srv.Client();

  // Text.
  json j = Post(c, Body({{{"role", "user"}, {"content", "Tell me about the stars."}}}, 12));
  EXPECT_EQ(j["choices"][0]["message"]["content"], EngineAnswer(Greedy("Tell me about the stars.", 12)));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 5);
  EXPECT_GE(j["usage"]["completion_tokens"].get<int>(), 1);

  // One image before its text: exactly ixc chat --image X -p Q.
  ChatRequest r = Greedy("What is in the picture?", 10);
  r.images = {GoldenImage("synth1.png")};
  j = Post(c, Body({{{"role", "user"}, {"content", {ImagePart(GoldenImage("synth1.png")), Text("What is in the picture?")}}}}, 10));
  EXPECT_EQ(j["choices"][0]["message"]["content"], EngineAnswer(r));

  // Two images placed in the text, and a history turn; hd_num passed through.
  r = Greedy("Image2 <ImageHere>; which is brighter?", 8);
  r.history = {{"Image1 <ImageHere>; describe it.", "A shape."}};
  r.images = {GoldenImage("synth2.png"), GoldenImage("synth3.png")};
  r.hd_num = 2;
  j = Post(c, {{"messages",
                {{{"role", "user"}, {"content", {Text("Image1 "), ImagePart(GoldenImage("synth2.png")), Text("; describe it.")}}},
                 {{"role", "assistant"}, {"content", "A shape."}},
                 {{"role", "user"}, {"content", {Text("Image2 "), ImagePart(GoldenImage("synth3.png")), Text("; which is brighter?")}}}}},
               {"temperature", 0}, {"max_tokens", 8}, {"hd_num", 2}});
  EXPECT_EQ(j["choices"][0]["message"]["content"], EngineAnswer(r));

  // Each mode, with a system text.
  for (const char* mode : {"web", "write"}) {
    r = Greedy("Write about a lighthouse.", 8);
    r.system = "You are helpful.";
    r.mode = *ParseTaskMode(mode);
    j = Post(c, {{"messages", {{{"role", "system"}, {"content", "You are helpful."}}, {{"role", "user"}, {"content", "Write about a lighthouse."}}}},
                 {"temperature", 0}, {"max_tokens", 8}, {"mode", mode}});
    EXPECT_EQ(j["choices"][0]["message"]["content"], EngineAnswer(r)) << mode;
  }

  // Beam search.
  r = Greedy("Name a colour.", 6);
  r.generation.num_beams = 2;
  j = Post(c, {{"messages", {{{"role", "user"}, {"content", "Name a colour."}}}}, {"temperature", 0}, {"max_tokens", 6}, {"num_beams", 2}});
  EXPECT_EQ(j["choices"][0]["message"]["content"], EngineAnswer(r));
}

TEST_F(ServerTest, VideoPartEqualsTheEngine) {
  if (std::system("ffmpeg -version > /dev/null 2>&1") != 0) GTEST_SKIP() << "the ffmpeg command is not installed";
  const std::string clip = testing::MakeTempDir("server_video") + "/clip.mp4";
  ASSERT_EQ(std::system(("ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=size=160x120:rate=25 -t 3 "
                         "-pix_fmt yuv420p -y " + clip).c_str()), 0);
  Running srv({});
  httplib::Client c = srv.Client();
  ChatRequest r = Greedy("Describe this video.", 6);
  r.images = {MediaInput(clip, /*video=*/true)};
  const json j = Post(c, Body({{{"role", "user"},
                                {"content", {{{"type", "video_url"}, {"video_url", {{"url", "data:video/mp4;base64," + EncodeBase64(*ReadFileToString(clip))}}}},
                                             Text("Describe this video.")}}}}, 6));
  EXPECT_EQ(j["choices"][0]["message"]["content"], EngineAnswer(r));
}

TEST_F(ServerTest, StreamIsValidSseAndEqualsTheWholeAnswer) {
  Running srv({});
  httplib::Client c = srv.Client();
  json body = Body({{{"role", "user"}, {"content", {ImagePart(GoldenImage("synth0.png")), Text("Describe the picture in detail.")}}}}, 24);
  const json whole = Post(c, body);
  body["stream"] = true;
  auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const std::vector<std::string> events = Events(res->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string id;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json ev = json::parse(events[i]);
    EXPECT_EQ(ev["object"], "chat.completion.chunk");
    if (i == 0) {
      EXPECT_EQ(ev["choices"][0]["delta"]["role"], "assistant");
      id = ev["id"];
    }
    EXPECT_EQ(ev["id"], id);
    const json& delta = ev["choices"][0]["delta"];
    if (delta.contains("content")) text += delta["content"].get<std::string>();
    if (i + 2 == events.size()) {
      EXPECT_EQ(ev["choices"][0]["finish_reason"], whole["choices"][0]["finish_reason"]);
      EXPECT_EQ(ev["usage"], whole["usage"]);
    } else {
      EXPECT_TRUE(ev["choices"][0]["finish_reason"].is_null());
    }
  }
  EXPECT_EQ(text, whole["choices"][0]["message"]["content"]);

  // Stop strings cut both the same way, before the stop string.
  const std::string answer = whole["choices"][0]["message"]["content"];
  ASSERT_GE(answer.size(), 6u);
  // A stop string of whole characters from the middle of the answer.
  auto boundary = [&](size_t i) {
    while (i < answer.size() && (static_cast<unsigned char>(answer[i]) & 0xC0) == 0x80) ++i;
    return i;
  };
  const size_t from = boundary(answer.size() / 2), to = boundary(from + 3);
  ASSERT_LT(from, to);
  const std::string stop = answer.substr(from, to - from);
  body["stop"] = stop;
  body["stream"] = false;
  const json cut = Post(c, body);
  EXPECT_EQ(cut["choices"][0]["message"]["content"], answer.substr(0, answer.find(stop)));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
  body["stream"] = true;
  res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  text.clear();
  for (const std::string& e : Events(res->body)) {
    if (e == "[DONE]") continue;
    const json ev = json::parse(e);
    if (ev["choices"][0]["delta"].contains("content")) text += ev["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, cut["choices"][0]["message"]["content"]);
}

TEST_F(ServerTest, BadRequestsGetTheirStatusAndTheServerGoesOn) {
  ServerOptions o;
  o.max_body_bytes = 1 << 20;
  Running srv(o);
  httplib::Client c = srv.Client();
  struct Case {
    std::string body;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"{oops", 400, "not valid JSON"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", 400, "unknown role"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"many"})", 400, "max_tokens"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,%%%"}}]}]})", 400, "base64"},
      // Valid base64 of bytes that are no picture: the decoder's error, naming the part.
      {json{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + EncodeBase64("\x89PNG\r\n\x1a\nbroken")}}}}, Text("q")}}}}}}.dump(),
       400, "messages[0].content[0].image_url.url"},
      {json{{"messages", {{{"role", "user"}, {"content", {{{"type", "video_url"}, {"video_url", {{"url", "data:video/mp4;base64," + EncodeBase64("no video here")}}}}, Text("q")}}}}}}.dump(),
       400, "video_url"},
      {R"({"messages":[{"role":"user","content":"x"}],"mode":"dance"})", 400, "mode"},
      {std::string(2 << 20, ' '), 413, "byte limit"},
  };
  for (const Case& k : cases) {
    auto res = c.Post("/v1/chat/completions", k.body, "application/json");
    ASSERT_TRUE(res) << k.says;
    EXPECT_EQ(res->status, k.status) << res->body;
    const json j = json::parse(res->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << res->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(k.says), std::string::npos) << res->body;
  }
  // The same errors when streaming: no stream starts for a request that cannot run.
  json streamed = json::parse(cases[4].body);
  streamed["stream"] = true;
  auto res = c.Post("/v1/chat/completions", streamed.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);

  res = c.Get("/v1/nothing");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(res->body.find("no route"), std::string::npos);

  // A slow client that sends half a request and stops is dropped; the server still answers others.
  const int fd = ConnectLoopback(srv.port());
  ASSERT_GE(fd, 0);
  const std::string half = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"messa";
  ASSERT_EQ(write(fd, half.data(), half.size()), static_cast<ssize_t>(half.size()));

  const json ok = Post(c, Body({{{"role", "user"}, {"content", "Still there?"}}}, 4));
  EXPECT_EQ(ok["choices"][0]["message"]["content"], EngineAnswer(Greedy("Still there?", 4)));
  close(fd);

  res = c.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = c.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("ixc_requests_total{status=\"400\"}"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("ixc_requests_total{status=\"413\"} 1"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("ixc_requests_total{status=\"200\"} 1"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("ixc_time_to_first_token_seconds_count 1"), std::string::npos) << res->body;
}

TEST_F(ServerTest, ApiKeyModelsAndPage) {
  ServerOptions o;
  o.api_key = "sesame";
  o.model_name = "ixc-test";
  Running srv(o);
  httplib::Client c = srv.Client();
  const std::string body = Body({{{"role", "user"}, {"content", "hi"}}}, 2).dump();
  auto res = c.Post("/v1/chat/completions", body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "invalid_api_key");
  res = c.Post("/v1/chat/completions", {{"Authorization", "Bearer wrong"}}, body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = c.Post("/v1/chat/completions", {{"Authorization", "Bearer sesame"}}, body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["model"], "ixc-test");
  res = c.Get("/v1/models", {{"Authorization", "Bearer sesame"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["data"][0]["id"], "ixc-test");
  // The page and the health check need no key.
  res = c.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("/v1/chat/completions"), std::string::npos);
  EXPECT_FALSE(res->get_header_value("Content-Security-Policy").empty());
  res = c.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

// With one slot and no queue, a request that arrives while another runs is turned away with 503 and Retry-After;
// a client that leaves a stream frees its slot.
TEST_F(ServerTest, FullServerSays503AndADisconnectFreesTheSlot) {
  ServerOptions o;
  o.parallel = 1;
  o.max_queue = 0;
  o.limits.max_tokens = 100000;
  Running srv(o);
  // A long stream over a raw socket, read until the first content arrives, then dropped.
  json body = {{"messages", {{{"role", "user"}, {"content", "Count to a thousand."}}}}, {"temperature", 0},
               {"max_tokens", 16000}, {"stream", true}, {"repetition_penalty", 1.0}};
  const std::string payload = body.dump();
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload;
  const int fd = ConnectLoopback(srv.port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string got;
  char buf[4096];
  while (got.find("\"content\"") == std::string::npos) {
    const ssize_t n = read(fd, buf, sizeof buf);
    ASSERT_GT(n, 0) << got;
    got.append(buf, static_cast<size_t>(n));
  }
  httplib::Client c = srv.Client();
  auto res = c.Post("/v1/chat/completions", Body({{{"role", "user"}, {"content", "hi"}}}, 2).dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_FALSE(res->get_header_value("Retry-After").empty());

  close(fd);
  // The slot frees once the server notices (its next write fails); then requests run again.
  int status = 0;
  for (int i = 0; i < 200 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    res = c.Post("/v1/chat/completions", Body({{{"role", "user"}, {"content", "hi"}}}, 2).dump(), "application/json");
    ASSERT_TRUE(res);
    status = res->status;
  }
  EXPECT_EQ(status, 200);
}

// The bounded load test: 1,000 requests (a third streamed, a quarter with a picture) from 16 clients against 4 slots,
// every answer complete and equal to the one the same question gets alone, nothing lost or mixed, memory flat.
TEST_F(ServerTest, ThousandRequestsFromSixteenClientsAllAnsweredRight) {
  ServerOptions o;
  o.parallel = 4;
  o.max_queue = 16;
  Running srv(o);
  load::LoadOptions lo;
  lo.port = srv.port();
  lo.clients = 16;
  lo.requests = 1000;
  lo.max_tokens = 6;
  for (const char* n : {"synth0.png", "synth1.png", "synth2.png", "synth3.png"}) lo.images.push_back(GoldenImage(n));
  lo.hd_num = 1;
  lo.pid = static_cast<int>(getpid());
  // A first round fills every slot's cache and the allocator's pools; the measured one must then hold steady.
  load::LoadOptions warm = lo;
  warm.requests = 100;
  const load::LoadReport w = load::RunLoad(warm);
  ASSERT_EQ(w.ok, 100) << (w.problems.empty() ? "" : w.problems[0]);
  const load::LoadReport r = load::RunLoad(lo);
  for (const std::string& p : r.problems) ADD_FAILURE() << p;
  EXPECT_EQ(r.sent, 1000);
  EXPECT_EQ(r.ok, 1000);
  EXPECT_EQ(r.statuses.at(200), 1000);
  // Flat: the process (server and clients) grows by less than 8 MiB over the second half of the requests.
  EXPECT_LT(r.rss_after_kb - r.rss_half_kb, 8 * 1024) << r.rss_half_kb << " KiB halfway, " << r.rss_after_kb << " after";
  std::printf("load: %d requests in %.1f s, p50 %.0f ms, p99 %.0f ms, RSS %lld -> %lld -> %lld KiB\n", r.sent, r.seconds,
              r.p50_ms, r.p99_ms, (long long)r.rss_before_kb, (long long)r.rss_half_kb, (long long)r.rss_after_kb);
}

}  // namespace
}  // namespace ixc::server
