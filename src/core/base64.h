// Standard base64 (RFC 4648 §4): the server's data: URLs, and the clients that send them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ixc {

// With '=' padding.
std::string EncodeBase64(std::string_view bytes);
// Padding optional; any other character outside the alphabet (whitespace included) makes it malformed: nullopt.
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace ixc
