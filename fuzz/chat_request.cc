// The server's request parser: POST /v1/chat/completions bodies (JSON, content parts, data: URLs, limits).
#include <string_view>

#include "fuzz_util.h"
#include "server/openai.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ixc::server::RequestLimits limits;
  limits.max_media_bytes = 1 << 20;
  ixc::server::ChatCall call;
  auto error = ixc::server::ParseChatCompletion(std::string_view(reinterpret_cast<const char*>(data), size), limits, &call);
  if (error) ixc::fuzz::Keep(ixc::server::ErrorJson(*error).size());
  return 0;
}
