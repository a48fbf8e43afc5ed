// The --history and --resume files: a history is parsed (ParseChatHistory) and, when accepted, built into the
// prompt the model would see; a resume's bytes become the webpage instruction's prompt. Prompt building is where
// the text meets the tokenizer, the <ImageHere> markers and the prompt-length bound. Uses the golden checkpoint.
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/model_impl.h"
#include "engine/prompt_builder.h"
#include "fuzz_util.h"

namespace {
std::unique_ptr<ixc::ModelImpl> g_model;
std::unique_ptr<ixc::ThreadPool> g_pool;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("IXC_GOLDEN_DIR");
  const std::string dir = env && *env ? env : IXC_DEFAULT_GOLDEN_DIR;
  auto m = ixc::LoadModelImpl(dir + "/model");
  if (!m.ok()) {
    std::fprintf(stderr, "history fuzz target: %s (set IXC_GOLDEN_DIR)\n", m.status().message().c_str());
    std::exit(77);
  }
  g_model = std::move(m).value();
  g_pool = std::make_unique<ixc::ThreadPool>(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto turns = ixc::ParseChatHistory(text, "fuzz/history.json");
  ixc::ChatRequest r;
  r.query = "What next?";
  if (turns.ok()) r.history = std::move(turns).value();
  ixc::ChatResult res;
  auto seq = ixc::BuildPrompt(*g_model, r, g_pool.get(), &res);
  if (seq.ok() && seq->length <= 0) __builtin_trap();
  ixc::ChatRequest resume;
  resume.query = ixc::ResumePageInstruction(text);
  resume.mode = ixc::TaskMode::kWeb;
  auto seq2 = ixc::BuildPrompt(*g_model, resume, g_pool.get(), &res);
  ixc::fuzz::Keep(seq.ok() + seq2.ok());
  return 0;
}
