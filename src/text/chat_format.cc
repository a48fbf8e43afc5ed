#include "text/chat_format.h"

#include "text/tokenizer.h"

namespace ixc {

const char kChatMetaInstruction[] =
    "You are an AI assistant whose name is InternLM-XComposer (浦语·灵笔).\n"
    "- InternLM-XComposer (浦语·灵笔) is a multi-modality conversational language model that is developed by Shanghai "
    "AI Laboratory (上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
    "- InternLM-XComposer (浦语·灵笔) can understand and communicate fluently in the language chosen by the user such "
    "as English and 中文.\n"
    "- InternLM-XComposer (浦语·灵笔) is capable of comprehending and articulating responses effectively based on the "
    "provided image.";

const char kArticleMetaInstruction[] =
    "You are an AI assistant whose name is InternLM-XComposer (浦语·灵笔).\n"
    "- InternLM-XComposer (浦语·灵笔) is a conversational language model that is developed by Shanghai AI Laboratory "
    "(上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
    "- InternLM-XComposer (浦语·灵笔) can understand and communicate fluently in the language chosen by the user such "
    "as English and 中文.\n";

std::string BuildChatPrompt(const std::string& system, const std::vector<ChatTurn>& history, const std::string& query) {
  const std::string start = kImStart, end = std::string(kImEnd) + "\n";
  std::string p;
  if (!system.empty()) p += start + "system\n" + system + end;
  for (const auto& t : history) {
    p += start + "user\n" + t.user + end;
    p += start + "assistant\n" + t.assistant + end;
  }
  p += start + "user\n" + query + end;
  p += start + "assistant\n";
  return p;
}

int CountImagePlaceholders(const std::string& prompt) {
  int n = 0;
  const std::string marker = kImagePlaceholder;
  for (size_t pos = prompt.find(marker); pos != std::string::npos; pos = prompt.find(marker, pos + marker.size())) ++n;
  return n;
}

Result<std::vector<std::string>> SplitForImages(const std::string& prompt_in, int num_images) {
  std::string prompt = prompt_in;
  const int markers = CountImagePlaceholders(prompt);
  if (num_images == 1 && markers == 0) prompt = kImagePlaceholder + prompt;
  else if (markers != num_images) {
    return InvalidArgument(StrFormat("the conversation has %d <ImageHere> placeholder%s but %d image%s given; "
                                     "give one image per placeholder (a single image needs none)",
                                     markers, markers == 1 ? "" : "s", num_images, num_images == 1 ? " was" : "s were"));
  }
  std::vector<std::string> parts;
  const std::string marker = kImagePlaceholder;
  size_t start = 0;
  for (size_t pos = prompt.find(marker); pos != std::string::npos; pos = prompt.find(marker, start)) {
    parts.push_back(prompt.substr(start, pos - start));
    start = pos + marker.size();
  }
  parts.push_back(prompt.substr(start));
  return parts;
}

}  // namespace ixc
