#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace ixc {

using json = nlohmann::json;

namespace {
// Far above any real header (the 7B index is ~100 KB); stops a lying length from allocating gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

// One header entry as read, before validation.
struct RawEntry {
  std::string name;
  bool object = true;  // the entry is a JSON object
  bool has_dtype = false, has_shape = false, has_offsets = false;
  bool dtype_string = false, shape_array = false, offsets_array = false;
  bool shape_ok = true, offsets_ok = true;  // every element a non-negative integer, at most 8 of them
  std::string dtype;
  std::vector<uint64_t> shape, offsets;
};

// Reads the header with nlohmann's SAX interface into compact RawEntry records: a DOM of a 100 MB header of tiny
// tensors took 25 times its size in memory; this keeps the names and a few numbers per tensor. The structure is
// {name: {"dtype": str, "shape": [uint...], "data_offsets": [uint, uint], other keys ignored}, "__metadata__": any}.
class HeaderReader : public nlohmann::json_sax<json> {
 public:
  std::vector<RawEntry> entries;
  std::string duplicate;  // the first name given twice
  bool top_object = false;

  bool null() override { return depth_ > 0 && Value(); }
  bool boolean(bool) override { return depth_ > 0 && Value(); }
  bool number_integer(number_integer_t v) override { return depth_ > 0 && Number(v >= 0, static_cast<uint64_t>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return depth_ > 0 && Number(true, v); }
  bool number_float(number_float_t, const string_t&) override { return depth_ > 0 && Number(false, 0); }
  bool string(string_t& v) override {
    if (depth_ == 0) return false;  // the header must be an object: stop here
    if (depth_ == 2 && field_ == Field::kDtype) {
      entries.back().dtype = v;
      entries.back().dtype_string = true;
      return true;
    }
    return Value();
  }
  bool binary(binary_t&) override { return depth_ > 0 && Value(); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) top_object = true;
    if (depth_ == 1 && !skip_entry_) entries.back().object = true;
    if (depth_ == 2 && field_ != Field::kNone) Bad();
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    if (depth_ == 1) field_ = Field::kNone;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      skip_entry_ = k == "__metadata__";
      if (!skip_entry_) {
        if (!names_.insert(k).second && duplicate.empty()) duplicate = k;
        entries.push_back(RawEntry{});
        entries.back().name = k;
        entries.back().object = false;  // until its value opens an object
      }
    } else if (depth_ == 2 && !skip_entry_) {
      RawEntry& e = entries.back();
      field_ = k == "dtype" ? Field::kDtype : k == "shape" ? Field::kShape : k == "data_offsets" ? Field::kOffsets : Field::kNone;
      if (field_ == Field::kDtype) e.has_dtype = true;
      if (field_ == Field::kShape) e.has_shape = true;
      if (field_ == Field::kOffsets) e.has_offsets = true;
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return false;  // the header must be an object: stop here
    if (depth_ == 2 && !skip_entry_ && (field_ == Field::kShape || field_ == Field::kOffsets)) {
      in_array_ = true;
      (field_ == Field::kShape ? entries.back().shape_array : entries.back().offsets_array) = true;
    } else if (depth_ >= 2) {
      Bad();
    }
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    if (depth_ == 2) in_array_ = false;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  enum class Field { kNone, kDtype, kShape, kOffsets };
  // A scalar where an entry's field expects something else.
  bool Value() {
    Bad();
    return true;
  }
  bool Number(bool non_negative, uint64_t v) {
    if (depth_ == 3 && in_array_ && !skip_entry_) {
      RawEntry& e = entries.back();
      std::vector<uint64_t>& dst = field_ == Field::kShape ? e.shape : e.offsets;
      if (!non_negative) (field_ == Field::kShape ? e.shape_ok : e.offsets_ok) = false;
      if (dst.size() < 9) dst.push_back(v);  // more are reported from the count, not kept
      else (field_ == Field::kShape ? e.shape_ok : e.offsets_ok) = false;
      return true;
    }
    Bad();
    return true;
  }
  // Marks the current field of the current entry as malformed (or the entry, for a value that is no object).
  void Bad() {
    if (skip_entry_ || entries.empty() || depth_ < 1) return;
    RawEntry& e = entries.back();
    if (depth_ == 1) e.object = false;
    if (field_ == Field::kDtype) e.dtype_string = false;
    if (field_ == Field::kShape) e.shape_ok = false;
    if (field_ == Field::kOffsets) e.offsets_ok = false;
  }

  int depth_ = 0;
  bool skip_entry_ = false, in_array_ = false;
  Field field_ = Field::kNone;
  std::set<std::string> names_;
};

}  // namespace

Status ParseSafetensors(const uint8_t* data, size_t size, const std::string& name,
                        std::map<std::string, TensorView>* out, AlignedBuffer* realigned) {
  if (size < 8) return DataLoss(StrFormat("%s: file is %zu bytes, too short for a safetensors header", name.c_str(), size));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > kMaxHeaderBytes) {
    return DataLoss(StrFormat("%s: the header claims %llu bytes, over the %llu-byte limit for a safetensors header "
                              "(not a safetensors file?)", name.c_str(), static_cast<unsigned long long>(header_len),
                              static_cast<unsigned long long>(kMaxHeaderBytes)));
  }
  if (header_len > size - 8) {
    return DataLoss(StrFormat("%s: the header claims %llu bytes but the file has only %zu after its length (truncated "
                              "or not safetensors)", name.c_str(), static_cast<unsigned long long>(header_len), size - 8));
  }
  HeaderReader reader;
  const bool parsed = json::sax_parse(data + 8, data + 8 + header_len, &reader, nlohmann::json::input_format_t::json,
                                      /*strict=*/true);
  if (!parsed || !reader.top_object) {
    return DataLoss(StrFormat("%s: the header is not a valid JSON object", name.c_str()));
  }
  if (!reader.duplicate.empty()) {
    return DataLoss(StrFormat("%s: the header names tensor '%s' twice", name.c_str(), reader.duplicate.c_str()));
  }
  const uint8_t* base = data + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::string misaligned;  // the first tensor the header's length leaves misaligned
  struct Range {
    uint64_t begin, end;
    std::string name;
    bool operator<(const Range& o) const { return begin != o.begin ? begin < o.begin : end < o.end; }
  };
  std::vector<Range> ranges;
  for (const RawEntry& e : reader.entries) {
    const std::string& tname = e.name;
    auto bad = [&](const std::string& why) {
      return DataLoss(StrFormat("%s: tensor '%s': %s", name.c_str(), tname.c_str(), why.c_str()));
    };
    if (!e.object || !e.has_dtype || !e.has_shape || !e.has_offsets) return bad("entry needs dtype, shape and data_offsets");
    if (!e.dtype_string) return bad("dtype is not a string");
    TensorView v;
    if (!ParseDType(e.dtype, &v.dtype)) {
      return Status(StatusCode::kUnimplemented,
                    StrFormat("%s: tensor '%s': unknown dtype '%s'", name.c_str(), tname.c_str(), e.dtype.c_str()));
    }
    if (!e.shape_array || e.shape.size() > 8) return bad("shape is not an array of at most 8 sizes");
    if (!e.shape_ok) return bad("shape holds a negative or non-integer size");
    uint64_t numel = 1;
    for (uint64_t dim : e.shape) {
      if (dim > (1ull << 40) || (dim && numel > std::numeric_limits<uint64_t>::max() / dim / 8)) return bad("shape is absurdly large");
      numel *= dim;
      v.shape.push_back(static_cast<int64_t>(dim));
    }
    if (!e.offsets_array || !e.offsets_ok || e.offsets.size() != 2) {
      return bad("data_offsets is not a pair of non-negative integers");
    }
    const uint64_t b = e.offsets[0], en = e.offsets[1];
    if (b > en || en > data_size) {
      return bad(StrFormat("data_offsets [%llu, %llu) lie outside the %llu data bytes (truncated file?)",
                           static_cast<unsigned long long>(b), static_cast<unsigned long long>(en),
                           static_cast<unsigned long long>(data_size)));
    }
    if (en - b != numel * DTypeSize(v.dtype)) {
      return bad(StrFormat("shape %s of %s needs %llu bytes but data_offsets span %llu", ShapeToString(v.shape).c_str(),
                           DTypeName(v.dtype), static_cast<unsigned long long>(numel * DTypeSize(v.dtype)),
                           static_cast<unsigned long long>(en - b)));
    }
    if ((b % DTypeSize(v.dtype)) != 0) return bad("data_offsets do not start on a multiple of the element size");
    if ((reinterpret_cast<uintptr_t>(base + b) % DTypeSize(v.dtype)) != 0 && misaligned.empty()) misaligned = tname;
    v.data = base + b;
    ranges.push_back({b, en, tname});
    (*out)[tname] = std::move(v);
  }
  // As the format's reference reader (huggingface/safetensors, Metadata::validate): sorted by offsets, the tensors
  // cover the data bytes back to back, from 0 to the end of the file. Two tensors sharing bytes would alias each
  // other's weights; bytes that belong to no tensor mean a damaged or hand-edited file.
  std::sort(ranges.begin(), ranges.end());
  uint64_t expect = 0;
  const Range* prev = nullptr;
  for (const Range& q : ranges) {
    if (q.begin < expect) {
      return DataLoss(StrFormat("%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", name.c_str(),
                                prev->name.c_str(), static_cast<unsigned long long>(prev->begin),
                                static_cast<unsigned long long>(prev->end), q.name.c_str(),
                                static_cast<unsigned long long>(q.begin), static_cast<unsigned long long>(q.end)));
    }
    if (q.begin > expect) {
      return DataLoss(StrFormat("%s: data bytes [%llu, %llu) before tensor '%s' belong to no tensor (safetensors packs "
                                "tensors back to back; the format's reference reader refuses this file)",
                                name.c_str(), static_cast<unsigned long long>(expect),
                                static_cast<unsigned long long>(q.begin), q.name.c_str()));
    }
    expect = q.end;
    prev = &q;
  }
  if (expect != data_size) {
    return DataLoss(StrFormat("%s: %llu bytes after the last tensor's data belong to no tensor (the format's reference "
                              "reader refuses this file)", name.c_str(),
                              static_cast<unsigned long long>(data_size - expect)));
  }
  if (!misaligned.empty()) {
    // Writers pad the header with spaces to a multiple of 8 bytes so that the data is aligned; ixc reads tensors in
    // place and needs that, so an unpadded file's data is copied once into aligned memory.
    if (!realigned) {
      return DataLoss(StrFormat("%s: the header is %llu bytes, not padded to a multiple of 8, so tensor '%s' is not "
                                "aligned in the file", name.c_str(), static_cast<unsigned long long>(header_len),
                                misaligned.c_str()));
    }
    IXC_ASSIGN_OR_RETURN(*realigned, AlignedBuffer::Allocate(std::max<uint64_t>(data_size, 1)));
    if (data_size > 0) std::memcpy(realigned->data(), base, data_size);
    for (auto& [tname, v] : *out) v.data = realigned->data() + (static_cast<const uint8_t*>(v.data) - base);
  }
  return Status::Ok();
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  IXC_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  std::unique_ptr<SafetensorsFile> st(new SafetensorsFile());
  IXC_RETURN_IF_ERROR(ParseSafetensors(file->data(), file->size(), path, &st->tensors_, &st->realigned_));
  st->file_ = std::move(file);
  return st;
}

NamedTensor MakeF32Tensor(std::string name, Shape shape, const float* data) {
  NamedTensor t{std::move(name), DType::kF32, std::move(shape), {}};
  t.bytes.resize(NumElements(t.shape) * 4);
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), data, t.bytes.size());
  return t;
}

NamedTensor MakeI32Tensor(std::string name, Shape shape, const int32_t* data) {
  NamedTensor t{std::move(name), DType::kI32, std::move(shape), {}};
  t.bytes.resize(NumElements(t.shape) * 4);
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), data, t.bytes.size());
  return t;
}

Status WriteSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors) {
  // Data goes largest element first: every tensor then starts on a multiple of its element size (the reader
  // checks), with no gaps between tensors (which other safetensors readers reject). Caller order would put
  // e.g. an F32 after an odd-length F16 at a misaligned offset.
  std::vector<const NamedTensor*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(),
                   [](const NamedTensor* a, const NamedTensor* b) { return DTypeSize(a->dtype) > DTypeSize(b->dtype); });
  json header = json::object();
  uint64_t offset = 0;
  for (const NamedTensor* t : order) {
    header[t->name] = {{"dtype", DTypeName(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->bytes.size()}}};
    offset += t->bytes.size();
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h.push_back(' ');  // keep tensor data 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  if (!out) return InvalidArgument(StrFormat("cannot write %s", path.c_str()));
  uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(h.data(), h.size());
  for (const NamedTensor* t : order) out.write(reinterpret_cast<const char*>(t->bytes.data()), t->bytes.size());
  if (!out) return DataLoss(StrFormat("short write to %s", path.c_str()));
  return Status::Ok();
}

}  // namespace ixc
