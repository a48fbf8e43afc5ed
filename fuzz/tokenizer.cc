// The tokenizer on arbitrary bytes (invalid UTF-8, NULs, control and special-token text): encode, then decode the
// ids every way the engine does. Uses the golden checkpoint's real InternLM2 tokenizer.model.
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "text/tokenizer.h"

namespace {
std::unique_ptr<ixc::Tokenizer> g_tokenizer;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("IXC_GOLDEN_DIR");
  const std::string dir = env && *env ? env : IXC_DEFAULT_GOLDEN_DIR;
  auto t = ixc::Tokenizer::Load(dir + "/model/tokenizer.model");
  if (!t.ok()) {
    std::fprintf(stderr, "tokenizer fuzz target: %s (set IXC_GOLDEN_DIR)\n", t.status().message().c_str());
    std::exit(77);
  }
  g_tokenizer = std::move(t).value();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<int> ids = g_tokenizer->Encode(text);
  for (int id : ids) {
    if (id < 0 || id >= g_tokenizer->vocab_size()) __builtin_trap();
  }
  ixc::fuzz::Keep(g_tokenizer->DecodeRaw(ids).size() + g_tokenizer->DecodeReply(ids).size() +
                  g_tokenizer->DecodeComposition(ids).size());
  return 0;
}
