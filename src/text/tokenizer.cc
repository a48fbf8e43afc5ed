#include "text/tokenizer.h"

#include "core/mapped_file.h"

#include <filesystem>

#include <sentencepiece_processor.h>

namespace ixc {

Tokenizer::Tokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  IXC_RETURN_IF_ERROR(CheckRegularFile(path, "tokenizer file"));
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  auto st = t->sp_->Load(path);
  if (!st.ok()) return DataLoss(StrFormat("cannot load tokenizer %s: %s", path.c_str(), st.ToString().c_str()));
  IXC_RETURN_IF_ERROR(t->Init(path));
  return t;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromBytes(const std::string& bytes, const std::string& name) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  auto st = t->sp_->LoadFromSerializedProto(bytes);
  if (!st.ok()) return DataLoss(StrFormat("cannot load tokenizer %s: %s", name.c_str(), st.ToString().c_str()));
  IXC_RETURN_IF_ERROR(t->Init(name));
  return t;
}

Status Tokenizer::Init(const std::string& path) {
  vocab_size_ = sp_->GetPieceSize();
  unk_id_ = sp_->unk_id();
  bos_id_ = sp_->bos_id();
  eos_id_ = sp_->eos_id();
  im_start_id_ = PieceToId(kImStart);
  im_end_id_ = PieceToId(kImEnd);
  if (bos_id_ < 0 || eos_id_ < 0) {
    return DataLoss(StrFormat("tokenizer %s defines no BOS/EOS pieces", path.c_str()));
  }
  if (im_start_id_ < 0 || im_end_id_ < 0) {
    return DataLoss(StrFormat("tokenizer %s lacks the chat markers %s/%s", path.c_str(), kImStart, kImEnd));
  }
  return Status::Ok();
}

int Tokenizer::PieceToId(const std::string& piece) const {
  int id = sp_->PieceToId(piece);
  // SentencePiece answers unk for unknown pieces; only "<unk>" itself may map there.
  if (id == sp_->unk_id() && piece != sp_->IdToPiece(id)) return -1;
  return id;
}

namespace {
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
}  // namespace

std::vector<int> Tokenizer::Encode(const std::string& text) const {
  // transformers 4.33 splits the special tokens out of the text first and strips whitespace next to them.
  const std::pair<const char*, int> specials[] = {
      {"<unk>", unk_id_}, {"<s>", bos_id_}, {"</s>", eos_id_}};
  struct Piece { std::string text; int special = -1; };
  std::vector<Piece> pieces;
  size_t pos = 0, start = 0;
  while (pos < text.size()) {
    int hit = -1;
    size_t hit_len = 0;
    for (const auto& [lit, id] : specials) {
      size_t n = std::char_traits<char>::length(lit);
      if (text.compare(pos, n, lit) == 0) {
        hit = id;
        hit_len = n;
        break;
      }
    }
    if (hit < 0) {
      ++pos;
      continue;
    }
    pieces.push_back({text.substr(start, pos - start)});
    pieces.push_back({"", hit});
    pos += hit_len;
    start = pos;
  }
  pieces.push_back({text.substr(start)});
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].special < 0) continue;
    std::string& left = pieces[i - 1].text;  // a special is always between two text pieces
    std::string& right = pieces[i + 1].text;
    while (!left.empty() && IsSpace(left.back())) left.pop_back();
    size_t k = 0;
    while (k < right.size() && IsSpace(right[k])) ++k;
    right.erase(0, k);
  }
  std::vector<int> ids;
  for (const auto& p : pieces) {
    if (p.special >= 0) {
      ids.push_back(p.special);
    } else if (!p.text.empty()) {
      std::vector<int> part;
      sp_->Encode(p.text, &part).IgnoreError();  // Encode fails only when no model is loaded
      ids.insert(ids.end(), part.begin(), part.end());
    }
  }
  return ids;
}

std::string Tokenizer::DecodeRaw(const std::vector<int>& ids) const {
  std::vector<int> valid;
  valid.reserve(ids.size());
  for (int id : ids)
    if (id >= 0 && id < vocab_size_) valid.push_back(id);
  std::string out;
  sp_->Decode(valid, &out).IgnoreError();
  return out;
}

std::string Tokenizer::DecodeReply(const std::vector<int>& ids) const {
  std::vector<int> kept;
  for (int id : ids)
    if (id != unk_id_ && id != bos_id_ && id != eos_id_) kept.push_back(id);
  std::string text = CleanUpTokenization(DecodeRaw(kept));
  size_t cut = text.find(kImEnd);
  if (cut != std::string::npos) text.resize(cut);
  return text;
}

// Python's str.replace: one left-to-right pass over non-overlapping matches.
std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out += to;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

std::string Tokenizer::DecodeComposition(const std::vector<int>& ids) const {
  std::vector<int> kept;
  for (int id : ids)
    if (id != unk_id_ && id != bos_id_ && id != eos_id_) kept.push_back(id);
  std::string text = CleanUpTokenization(DecodeRaw(kept));
  return ReplaceAll(ReplaceAll(std::move(text), kImEnd, ""), kImStart, "");
}

std::string CleanUpTokenization(std::string text) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) text = ReplaceAll(std::move(text), from, to);
  return text;
}

}  // namespace ixc
