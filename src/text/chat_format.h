// The IXC-2.5 conversation format (spec §4.2–4.3): the prompt string the reference builds for chat(), and its
// split at <ImageHere> placeholders.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace ixc {

inline constexpr char kImagePlaceholder[] = "<ImageHere>";

// The reference chat()'s meta instruction (used with --meta), exactly as in the remote code.
extern const char kChatMetaInstruction[];
// write_artical's own meta instruction.
extern const char kArticleMetaInstruction[];

struct ChatTurn {
  std::string user;
  std::string assistant;
};

// [system block if `system` is non-empty] + history turns + the current user turn + the assistant header.
std::string BuildChatPrompt(const std::string& system, const std::vector<ChatTurn>& history, const std::string& query);

// Counts non-overlapping <ImageHere> markers.
int CountImagePlaceholders(const std::string& prompt);

// Splits the prompt at its placeholders for `num_images` images: the reference prepends one placeholder when a
// single image comes without any; otherwise placeholder and image counts must agree (the reference silently drops
// the surplus; we report it). Returns the text parts p0..pn, with n = num_images.
Result<std::vector<std::string>> SplitForImages(const std::string& prompt, int num_images);

}  // namespace ixc
