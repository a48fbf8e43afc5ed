#include "server/openai.h"

#include <sys/stat.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/mapped_file.h"

namespace ixc::server {

using json = nlohmann::json;

namespace {

constexpr char kImageMarker[] = "<ImageHere>";
constexpr int kMaxStops = 4;
constexpr int kMaxHdNum = 100;  // the engine's bound

ApiError Bad(std::string param, std::string message, int status = 400) {
  ApiError e;
  e.status = status;
  e.param = std::move(param);
  e.message = e.param.empty() ? std::move(message) : e.param + ": " + message;
  return e;
}

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

// Typed field readers: absent or null leaves *out as it is.
std::optional<ApiError> GetNumber(const json& j, const char* key, double lo, double hi, double* out) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  const json& v = j[key];
  if (!v.is_number()) return Bad(key, std::string("expected a number, got ") + TypeName(v));
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) return Bad(key, "must be between " + json(lo).dump() + " and " + json(hi).dump());
  *out = x;
  return std::nullopt;
}

std::optional<ApiError> GetInt(const json& j, const char* key, int64_t lo, int64_t hi, int64_t* out) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  const json& v = j[key];
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())) {
    return Bad(key, std::string("expected an integer, got ") + TypeName(v));
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return Bad(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  // A float is range-checked before it is converted: out of int64's range the conversion is undefined (found by
  // fuzz/chat_request.cc: "n": 2e31).
  const double d = v.get<double>();
  // (d is whole here; "< hi + 1" also keeps 2^63, which INT64_MAX rounds to as a double, out.)
  if (v.is_number_float() && !(d >= static_cast<double>(lo) && d < static_cast<double>(hi) + 1.0)) {
    return Bad(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  const int64_t x = v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(d);
  if (x < lo || x > hi) return Bad(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  *out = x;
  return std::nullopt;
}

std::optional<ApiError> GetBool(const json& j, const char* key, bool* out) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (!j[key].is_boolean()) return Bad(key, std::string("expected a boolean, got ") + TypeName(j[key]));
  *out = j[key].get<bool>();
  return std::nullopt;
}

std::optional<ApiError> GetString(const json& j, const char* key, std::string* out) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (!j[key].is_string()) return Bad(key, std::string("expected a string, got ") + TypeName(j[key]));
  *out = j[key].get<std::string>();
  return std::nullopt;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// A media URL -> the bytes (data: URL) or an allowed local path.
std::optional<ApiError> ResolveMedia(const std::string& url, bool video, const std::string& param,
                                     const RequestLimits& limits, std::vector<MediaInput>* media) {
  if (StartsWith(url, "data:")) {
    const size_t comma = url.find(',');
    if (comma == std::string::npos) return Bad(param, "a data: URL needs a comma before its data");
    const std::string_view meta = std::string_view(url).substr(5, comma - 5);
    if (meta.size() < 7 || meta.substr(meta.size() - 7) != ";base64") {
      return Bad(param, "only base64 data: URLs are supported (data:<type>;base64,<data>)");
    }
    const std::string_view data = std::string_view(url).substr(comma + 1);
    if (static_cast<int64_t>(data.size()) / 4 * 3 > limits.max_media_bytes) {
      return Bad(param, "the data is over the " + std::to_string(limits.max_media_bytes) + "-byte limit", 413);
    }
    std::optional<std::string> bytes = DecodeBase64(data);
    if (!bytes) return Bad(param, "the data: URL's base64 is malformed");
    if (bytes->empty()) return Bad(param, "the data: URL is empty");
    media->push_back(MediaInput::FromBytes(std::move(*bytes), param, video));
    return std::nullopt;
  }
  if (StartsWith(url, "http://") || StartsWith(url, "https://")) {
    return Bad(param, "remote URLs are not fetched; send the file as a data: URL");
  }
  std::string path = url;
  if (StartsWith(url, "file://")) path = url.substr(7);
  if (path.empty() || path[0] != '/') return Bad(param, "expected a data: URL (or a file:// URL where the server allows)");
  if (limits.local_files_dir.empty()) {
    return Bad(param, "local files are not allowed on this server (ixc serve --allow-local-files DIR)", 403);
  }
  // The real path must lie inside the allowed folder (no .. or symbolic links out of it).
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(path, ec);
  const std::filesystem::path root = std::filesystem::canonical(limits.local_files_dir, ec);
  const std::string rs = real.string(), roots = root.string();
  if (ec || real.empty() || root.empty() || rs.size() <= roots.size() || rs.compare(0, roots.size(), roots) != 0 ||
      (roots != "/" && rs[roots.size()] != '/')) {
    return Bad(param, "the file is missing or outside the folder this server allows", 403);
  }
  struct stat st {};
  if (::stat(rs.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return Bad(param, "not a regular file");
  if (st.st_size > limits.max_media_bytes) {
    return Bad(param, "the file is over the " + std::to_string(limits.max_media_bytes) + "-byte limit", 413);
  }
  media->push_back(MediaInput(rs, video));
  return std::nullopt;
}

struct Turn {
  std::string role;  // "user" or "assistant"
  std::string text;
};

// One message's content -> text with image markers where its media parts stand.
struct MediaPart {
  size_t index;      // into the request's media list
  bool first;        // the message's first part
  size_t turn;       // the turn it belongs to
  size_t marker_at;  // the marker's byte offset in that turn's text
};

}  // namespace

std::string ErrorJson(const ApiError& e) {
  const char* type = e.status == 401 ? "authentication_error"
                     : e.status == 403 ? "permission_error"
                     : e.status == 404 ? "not_found_error"
                     : e.status == 429 || e.status == 503 ? "server_overloaded"
                     : e.status >= 500 ? "server_error"
                                       : "invalid_request_error";
  json err = {{"message", e.message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return json{{"error", err}}.dump();
}

ApiError ErrorFromStatus(const Status& s) {
  ApiError e;
  e.message = s.message();
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kDataLoss:
    case StatusCode::kUnimplemented:
    case StatusCode::kFailedPrecondition: e.status = 400; break;
    case StatusCode::kResourceExhausted: e.status = 413; break;
    default: e.status = 500; break;
  }
  return e;
}

std::optional<ApiError> ParseChatCompletion(std::string_view body, const RequestLimits& limits, ChatCall* out) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("", "the body is not valid JSON");
  if (!j.is_object()) return Bad("", "the body must be a JSON object");
  ChatCall call;
  ChatRequest& r = call.request;
  GenerationOptions& g = r.generation;
  r.max_image_pixels = limits.max_image_pixels;

  if (auto e = GetString(j, "model", &call.model)) return e;
  if (auto e = GetString(j, "user", &call.user)) return e;
  if (auto e = GetBool(j, "stream", &call.stream)) return e;
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    if (!j["stream_options"].is_object()) return Bad("stream_options", "expected an object");
    if (auto e = GetBool(j["stream_options"], "include_usage", &call.include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }
  int64_t n = 1;
  if (auto e = GetInt(j, "n", 1, 1, &n)) return Bad("n", "only n = 1 is supported");

  // Sampling: the reference chat()'s defaults unless given.
  int64_t max_tokens = g.max_new_tokens;
  max_tokens = std::min<int64_t>(max_tokens, limits.max_tokens);
  if (auto e = GetInt(j, "max_completion_tokens", 1, limits.max_tokens, &max_tokens)) return e;
  if (auto e = GetInt(j, "max_tokens", 1, limits.max_tokens, &max_tokens)) return e;
  g.max_new_tokens = static_cast<int>(max_tokens);
  double temperature = g.temperature, top_p = g.top_p, penalty = g.repetition_penalty;
  if (auto e = GetNumber(j, "temperature", 0, 100, &temperature)) return e;
  if (auto e = GetNumber(j, "top_p", 1e-6, 1, &top_p)) return e;
  if (auto e = GetNumber(j, "repetition_penalty", 1e-3, 100, &penalty)) return e;
  int64_t top_k = g.top_k, beams = 1, seed = 0, hd_num = 0;
  if (auto e = GetInt(j, "top_k", 0, 100000, &top_k)) return e;
  if (auto e = GetInt(j, "num_beams", 1, limits.max_beams, &beams)) return e;
  if (auto e = GetInt(j, "seed", 0, INT64_MAX, &seed)) return e;
  if (auto e = GetInt(j, "hd_num", 1, kMaxHdNum, &hd_num)) return e;
  g.do_sample = temperature > 0;
  g.temperature = temperature > 0 ? static_cast<float>(temperature) : 1.0f;
  g.top_p = static_cast<float>(top_p);
  g.repetition_penalty = static_cast<float>(penalty);
  g.top_k = static_cast<int>(top_k);
  g.num_beams = static_cast<int>(beams);
  g.seed = static_cast<uint64_t>(seed);
  r.hd_num = static_cast<int>(hd_num);
  std::string mode = "base";
  if (auto e = GetString(j, "mode", &mode)) return e;
  auto m = ParseTaskMode(mode);
  if (!m.ok()) return Bad("mode", "must be base, web or write");
  r.mode = *m;

  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) {
      call.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      if (s.size() > kMaxStops) return Bad("stop", "at most " + std::to_string(kMaxStops) + " stop strings");
      for (const json& x : s) {
        if (!x.is_string()) return Bad("stop", "expected strings");
        call.stop.push_back(x.get<std::string>());
      }
    } else {
      return Bad("stop", std::string("expected a string or an array of strings, got ") + TypeName(s));
    }
    for (const std::string& x : call.stop)
      if (x.empty()) return Bad("stop", "stop strings may not be empty");
  }

  // Messages -> system text, turns, media.
  if (!j.contains("messages")) return Bad("messages", "required");
  const json& msgs = j["messages"];
  if (!msgs.is_array()) return Bad("messages", std::string("expected an array, got ") + TypeName(msgs));
  if (msgs.empty()) return Bad("messages", "at least one message is required");
  std::vector<Turn> turns;
  std::vector<MediaPart> parts;
  std::vector<MediaInput> media;
  std::string system;
  int64_t text_bytes = 0;
  bool saw_user = false;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const json& msg = msgs[i];
    if (!msg.is_object()) return Bad(at, "expected an object");
    if (!msg.contains("role") || !msg["role"].is_string()) return Bad(at + ".role", "required, a string");
    std::string role = msg["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant") {
      return Bad(at + ".role", "unknown role '" + role + "' (system, user or assistant)");
    }
    if (role == "assistant" && !saw_user) return Bad(at, "an assistant message must follow a user message");
    if (role == "user") saw_user = true;
    const json* content = msg.contains("content") ? &msg["content"] : nullptr;
    if (!content || content->is_null()) return Bad(at + ".content", "required");
    // Merge consecutive messages of one role into one turn.
    const bool new_turn = role != "system" && (turns.empty() || turns.back().role != role);
    if (new_turn) turns.push_back({role, ""});
    std::string* text = role == "system" ? &system : &turns.back().text;
    if (!text->empty()) *text += "\n";
    bool first_part = true;
    auto add_text = [&](const std::string& t) {
      text_bytes += static_cast<int64_t>(t.size());
      *text += t;
    };
    if (content->is_string()) {
      add_text(content->get<std::string>());
    } else if (content->is_array()) {
      for (size_t k = 0; k < content->size(); ++k) {
        const std::string pat = at + ".content[" + std::to_string(k) + "]";
        const json& part = (*content)[k];
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
          return Bad(pat, "expected an object with a \"type\"");
        }
        const std::string type = part["type"].get<std::string>();
        if (type == "text") {
          if (!part.contains("text") || !part["text"].is_string()) return Bad(pat + ".text", "required, a string");
          add_text(part["text"].get<std::string>());
        } else if (type == "image_url" || type == "video_url") {
          if (role != "user") return Bad(pat, "only user messages may hold images and videos");
          const json* u = part.contains(type) ? &part[type] : nullptr;
          std::string url, param = pat + "." + type;
          if (u && u->is_string()) {
            url = u->get<std::string>();
          } else if (u && u->is_object() && u->contains("url") && (*u)["url"].is_string()) {
            url = (*u)["url"].get<std::string>();
            param += ".url";
          } else {
            return Bad(param, "required: an object with a \"url\" string");
          }
          if (static_cast<int>(media.size()) >= limits.max_media) {
            return Bad(pat, "at most " + std::to_string(limits.max_media) + " images and videos per request", 413);
          }
          if (auto e = ResolveMedia(url, type == "video_url", param, limits, &media)) return e;
          parts.push_back({media.size() - 1, first_part, turns.size() - 1, text->size()});
          *text += kImageMarker;
        } else {
          return Bad(pat + ".type", "unknown content type '" + type + "' (text, image_url or video_url)");
        }
        first_part = false;
      }
    } else {
      return Bad(at + ".content", std::string("expected a string or an array of parts, got ") + TypeName(*content));
    }
    if (text_bytes > limits.max_text_bytes) {
      return Bad("messages", "the text is over the " + std::to_string(limits.max_text_bytes) + "-byte limit", 413);
    }
  }
  if (turns.empty() || turns.back().role != "user") return Bad("messages", "the last message must be from the user");

  // A request's only picture, first in its message, is placed by the engine (right after BOS), as ixc chat places
  // an --image given with -p.
  if (parts.size() == 1 && parts[0].first) {
    Turn& t = turns[parts[0].turn];
    t.text.erase(parts[0].marker_at, std::strlen(kImageMarker));
  }
  r.system = system;
  for (size_t t = 0; t + 1 < turns.size(); t += 2) r.history.push_back({turns[t].text, turns[t + 1].text});
  r.query = turns.back().text;
  r.images = std::move(media);
  call.first_turn = system + '\x1f' + turns.front().text;
  *out = std::move(call);
  return std::nullopt;
}

std::string CompletionJson(const std::string& id, int64_t created, const std::string& model, const std::string& text,
                           const std::string& finish_reason, const Usage& usage) {
  json j = {
      {"id", id},
      {"object", "chat.completion"},
      {"created", created},
      {"model", model},
      {"choices", json::array({{{"index", 0},
                                {"message", {{"role", "assistant"}, {"content", text}}},
                                {"finish_reason", finish_reason}}})},
      {"usage",
       {{"prompt_tokens", usage.prompt_tokens},
        {"completion_tokens", usage.completion_tokens},
        {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}},
  };
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ChunkJson(const std::string& id, int64_t created, const std::string& model, const std::string& role,
                      const std::string& content, const std::string& finish_reason, const Usage* usage) {
  json delta = json::object();
  if (!role.empty()) delta["role"] = role;
  if (!content.empty()) delta["content"] = content;
  json choice = {{"index", 0}, {"delta", delta}, {"finish_reason", nullptr}};
  if (!finish_reason.empty()) choice["finish_reason"] = finish_reason;
  json j = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
            {"choices", json::array({choice})}};
  if (usage) {
    j["usage"] = {{"prompt_tokens", usage->prompt_tokens},
                  {"completion_tokens", usage->completion_tokens},
                  {"total_tokens", usage->prompt_tokens + usage->completion_tokens}};
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Utf8Stream::Push(std::string_view piece) {
  held_ += piece;
  return Drain(false);
}

std::string Utf8Stream::Finish() { return Drain(true); }

std::string Utf8Stream::Drain(bool at_end) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  size_t i = 0;
  const size_t n = held_.size();
  while (i < n) {
    const auto b = static_cast<unsigned char>(held_[i]);
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range (RFC 3629's table)
    if (b < 0x80) {
      len = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    bool valid = len > 0;
    int have = 1;
    for (; valid && have < len && i + have < n; ++have) {
      const auto c = static_cast<unsigned char>(held_[i + have]);
      valid = have == 1 ? c >= lo && c <= hi : c >= 0x80 && c <= 0xBF;
    }
    if (valid && have < len && !at_end) break;  // the rest of the character has not come yet
    if (valid && have == len) {
      out.append(held_, i, static_cast<size_t>(len));
      i += static_cast<size_t>(len);
    } else {
      out += kReplacement;
      ++i;
    }
  }
  held_.erase(0, i);
  return out;
}

std::string StopScanner::Push(std::string_view piece) {
  if (stopped_) return "";
  // Byte by byte, so the cut does not depend on how the text was split into pieces: the reply ends where a stop
  // string is first completed, before the longest one completed there.
  for (char ch : piece) {
    held_ += ch;
    size_t cut = std::string::npos;
    for (const std::string& s : stops_) {
      if (held_.size() >= s.size() && held_.compare(held_.size() - s.size(), s.size(), s) == 0) {
        cut = std::min(cut, held_.size() - s.size());
      }
    }
    if (cut != std::string::npos) {
      stopped_ = true;
      std::string out = held_.substr(0, cut);
      held_.clear();
      return out;
    }
  }
  // Keep the longest tail that is a proper prefix of some stop string; the rest is safe.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, held_.size()); len > keep; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopScanner::Finish() {
  if (stopped_) return "";
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace ixc::server
