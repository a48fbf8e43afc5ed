// The --history file format (ParseChatHistory).
#include <nlohmann/json.hpp>

#include "ixc/ixc.h"

namespace ixc {

Result<std::vector<ChatTurnText>> ParseChatHistory(std::string_view json_text, const std::string& name) {
  const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  const std::string bad = name + ": expected a JSON list of [user, assistant] pairs";
  if (j.is_discarded() || !j.is_array()) return InvalidArgument(bad);
  std::vector<ChatTurnText> turns;
  for (const auto& turn : j) {
    if (!turn.is_array() || turn.size() != 2 || !turn[0].is_string() || !turn[1].is_string()) {
      return InvalidArgument(StrFormat("%s (turn %zu is not)", bad.c_str(), turns.size() + 1));
    }
    turns.push_back({turn[0].get<std::string>(), turn[1].get<std::string>()});
  }
  return turns;
}

}  // namespace ixc
