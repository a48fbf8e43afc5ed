// Turns the growing list of generated ids into text pieces for streaming, such that the concatenated pieces equal
// the final reply exactly: text that a later token could still change (an incomplete UTF-8 character, a space
// the clean-up rules may remove) is held back until it is settled.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ixc {

class TextStream {
 public:
  // `decode` turns all generated ids into the reply text (the chat or composition rule).
  explicit TextStream(std::function<std::string(const std::vector<int>&)> decode) : decode_(std::move(decode)) {}
  // The new settled text after `ids` (all generated ids so far).
  std::string Update(const std::vector<int>& ids);
  // The rest of the final reply.
  std::string Finish(const std::vector<int>& ids);

 private:
  std::function<std::string(const std::vector<int>&)> decode_;
  size_t emitted_ = 0;
};

}  // namespace ixc
