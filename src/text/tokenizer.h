// The InternLM2 SentencePiece tokenizer (the model folder's tokenizer.model) with the Hugging Face slow
// tokenizer's behaviour around it: literal "<s>", "</s>", "<unk>" in text become their ids, and decoding applies
// transformers' clean-up rules (spec Part A §5, §4.5, §7).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace ixc {

class Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> Load(const std::string& path);
  // The same from the serialised model (a tokenizer.model file's bytes, e.g. kept inside a GGUF file); `name` is
  // used in errors.
  static Result<std::unique_ptr<Tokenizer>> FromBytes(const std::string& bytes, const std::string& name);
  ~Tokenizer();

  // Token ids of `text`, no BOS/EOS.
  std::vector<int> Encode(const std::string& text) const;
  // Plain SentencePiece decoding of ids (no special-id filtering, no clean-up).
  std::string DecodeRaw(const std::vector<int>& ids) const;
  // What the reference's chat() returns for generated ids: drops unk/bos/eos, decodes, applies the ten clean-up
  // replacements, then cuts at the first end-of-turn marker.
  std::string DecodeReply(const std::vector<int>& ids) const;
  // What the composition methods (write_artical, write_webpage, ...) return: the same decoding, but every start-
  // and end-of-turn marker is deleted instead of cutting at the first.
  std::string DecodeComposition(const std::vector<int>& ids) const;

  int vocab_size() const { return vocab_size_; }
  int PieceToId(const std::string& piece) const;  // -1 when absent
  int unk_id() const { return unk_id_; }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  // Chat-template markers, looked up by piece so tokenizers with other vocabularies work.
  int im_start_id() const { return im_start_id_; }  // [UNUSED_TOKEN_146]
  int im_end_id() const { return im_end_id_; }      // [UNUSED_TOKEN_145]

 private:
  Tokenizer();
  Status Init(const std::string& name);  // ids of the special pieces, checked
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int vocab_size_ = 0, unk_id_ = 0, bos_id_ = 1, eos_id_ = 2, im_start_id_ = -1, im_end_id_ = -1;
};

inline constexpr char kImStart[] = "[UNUSED_TOKEN_146]";
inline constexpr char kImEnd[] = "[UNUSED_TOKEN_145]";

// Python's str.replace semantics (one pass, non-overlapping).
std::string ReplaceAll(std::string text, const std::string& from, const std::string& to);

// transformers' clean_up_tokenization: " ." -> "." and nine more, in the reference's order.
std::string CleanUpTokenization(std::string text);

}  // namespace ixc
