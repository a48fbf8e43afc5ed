#include "engine/text_stream.h"

#include "text/tokenizer.h"

namespace ixc {

namespace {
// Longest clean-up pattern minus one (" n't" is 4 bytes): a suffix this long after a space may still change.
constexpr size_t kHoldAfterSpace = 4;
}  // namespace

std::string TextStream::Update(const std::vector<int>& ids) {
  std::string text = decode_(ids);
  size_t settled = text.size();
  // An unfinished multi-byte character decodes to U+FFFD at the end: wait for its remaining bytes.
  const std::string kReplacement = "\xEF\xBF\xBD";
  while (settled >= 3 && text.compare(settled - 3, 3, kReplacement) == 0) settled -= 3;
  // A space near the end may be removed by the clean-up rules once the next token arrives.
  size_t space = text.rfind(' ', settled ? settled - 1 : 0);
  if (space != std::string::npos && settled - space <= kHoldAfterSpace) settled = space;
  // Text that could become the start of the end-of-turn marker is held back too.
  const std::string marker = kImEnd;
  for (size_t k = std::min(marker.size() - 1, settled); k > 0; --k) {
    if (text.compare(settled - k, k, marker, 0, k) == 0) {
      settled -= k;
      break;
    }
  }
  if (settled <= emitted_) return "";
  std::string piece = text.substr(emitted_, settled - emitted_);
  emitted_ = settled;
  return piece;
}

std::string TextStream::Finish(const std::vector<int>& ids) {
  std::string text = decode_(ids);
  std::string rest = emitted_ < text.size() ? text.substr(emitted_) : "";
  emitted_ = text.size();
  return rest;
}

}  // namespace ixc
