#include <regex>

#include "ixc/ixc.h"
#include "text/chat_format.h"

namespace ixc {

ChatRequest MakeArticleRequest(const std::string& instruction, const std::vector<MediaInput>& images, bool use_meta) {
  ChatRequest r;
  r.query = instruction;
  r.images = images;
  r.system = use_meta ? kArticleMetaInstruction : "";
  r.mode = TaskMode::kWrite;
  r.reply_style = ReplyStyle::kCompose;
  GenerationOptions& g = r.generation;
  g.do_sample = true;
  g.num_beams = 1;
  g.temperature = 1.0f;
  g.top_p = 0.8f;
  g.top_k = 40;
  g.repetition_penalty = 1.005f;
  g.max_new_tokens = 8192;
  g.max_total_tokens = 8192;
  return r;
}

ChatRequest MakeWebpageRequest(const std::string& instruction, const std::vector<MediaInput>& images) {
  ChatRequest r;
  r.query = instruction;
  r.images = images;
  r.mode = TaskMode::kWeb;
  r.reply_style = ReplyStyle::kCompose;
  GenerationOptions& g = r.generation;
  g.do_sample = true;
  g.num_beams = 2;
  g.temperature = 1.0f;
  g.top_p = 1.0f;
  g.top_k = 50;
  g.repetition_penalty = 3.0f;
  g.max_new_tokens = 4800;
  g.stop_at_end_of_turn = false;
  return r;
}

std::string ResumePageInstruction(const std::string& md) {
  return " Generate a personal page using the content in the resume:" + md;
}
std::string JavaScriptInstruction(const std::string& html) { return " Generate JavaScript events for the html code:" + html; }
const char* ScreenshotInstruction() { return " Generate the HTML code of this web image with Tailwind CSS."; }

std::string RewriteImageUrls(const std::string& html) {
  static const std::regex kUnsplash(R"(https://source\.unsplash\.com/random/(\d+)x(\d+)/\?[^'"]+)");
  return std::regex_replace(html, kUnsplash, "https://picsum.photos/$1/$2");
}

std::string MergeJavaScript(const std::string& html, const std::string& js) {
  static const std::regex kScript(R"(<script[^>]*>([\s\S]*?)</script>)");
  std::string code;
  for (std::sregex_iterator it(js.begin(), js.end(), kScript), end; it != end; ++it) {
    if (!code.empty()) code += "\n";
    code += (*it)[1].str();
  }
  if (code.empty()) code = js;
  const std::string block = "<script>\n" + code + "\n</script>\n";
  for (const char* anchor : {"</body>", "</html>"}) {
    const size_t pos = html.rfind(anchor);
    if (pos != std::string::npos) return html.substr(0, pos) + block + html.substr(pos);
  }
  return html + "\n" + block;
}

}  // namespace ixc
