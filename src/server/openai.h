// The OpenAI chat-completions API as ixc serves it: a request body becomes a ChatRequest (with stop strings and
// streaming choices), results become response bodies. Pure functions of their inputs: no sockets, no model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ixc/ixc.h"

namespace ixc::server {

// An error as the client sees it: the HTTP status and OpenAI's error object. `param` names the field at fault
// ("messages[1].content[0].image_url.url"), or is empty.
struct ApiError {
  int status = 400;
  std::string message;
  std::string param;
  std::string code;  // OpenAI's error code where one applies ("invalid_api_key"); may be empty
};
// {"error": {"message", "type", "param", "code"}}, the type following the status.
std::string ErrorJson(const ApiError& e);
// An engine error's status: bad input 400, over a limit 413, anything else 500.
ApiError ErrorFromStatus(const Status& s);

// Per-request bounds, checked before any work (README "Server").
struct RequestLimits {
  int max_media = 16;                          // image and video parts in one request
  int64_t max_media_bytes = int64_t{32} << 20; // bytes of one decoded data: URL or local file
  int64_t max_image_pixels = 50'000'000;       // decoded pixels of one picture or video frame
  int max_tokens = 4096;                       // the most max_tokens may ask for
  int max_beams = 4;
  int64_t max_text_bytes = int64_t{1} << 20;   // all messages' text together
  std::string local_files_dir;                 // file:// URLs and paths under this folder; empty: refused
};

// What one request asks for.
struct ChatCall {
  ChatRequest request;              // media held as bytes (data: URLs) or as allowed local paths
  bool stream = false;
  bool include_usage = true;        // usage in the stream's last chunk (stream_options.include_usage)
  std::vector<std::string> stop;    // stop strings: the reply ends before the first of them
  std::string model;                // as the client named it (echoed back)
  std::string user;                 // the client's `user` field (conversation affinity)
  std::string first_turn;           // the system text and first user message, for conversation affinity
};

// Parses and checks a POST /v1/chat/completions body. The messages become ChatRequest's system text, history and
// query: content parts keep their order, each image or video standing where its placeholder would, except that a
// request's only picture, given first in its message, is left for the engine to place (as `ixc chat --image` does).
// Unset sampling fields keep the reference chat()'s defaults; temperature 0 means greedy (or beam search with
// num_beams > 1). Unknown fields are ignored, as OpenAI's clients send many.
std::optional<ApiError> ParseChatCompletion(std::string_view body, const RequestLimits& limits, ChatCall* out);

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// Response bodies. `finish_reason` is "stop" or "length".
std::string CompletionJson(const std::string& id, int64_t created, const std::string& model, const std::string& text,
                           const std::string& finish_reason, const Usage& usage);
// One streamed chunk: `role` and/or `content` in the delta (empty: left out), a finish reason on the last one, and
// usage when given.
std::string ChunkJson(const std::string& id, int64_t created, const std::string& model, const std::string& role,
                      const std::string& content, const std::string& finish_reason, const Usage* usage);

// Makes generated text valid UTF-8 for JSON: holds back a character split between pieces and replaces each byte
// that cannot start or continue a character with U+FFFD, with the same result whether the text comes whole or in
// pieces (a small model may emit byte tokens that form no character).
class Utf8Stream {
 public:
  std::string Push(std::string_view piece);
  // At the end: a character left incomplete becomes U+FFFD.
  std::string Finish();

 private:
  std::string Drain(bool at_end);
  std::string held_;
};

// Stop strings over streamed text: holds back text that may be the start of a stop string, so a stream never shows
// part of one, and ends the reply before the first stop string seen.
class StopScanner {
 public:
  explicit StopScanner(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds a piece of the reply; returns the text now safe to send (nothing more once stopped()).
  std::string Push(std::string_view piece);
  // At the end of the reply: what was held back (nothing once stopped()).
  std::string Finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace ixc::server
