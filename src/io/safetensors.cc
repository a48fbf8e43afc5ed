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
}  // namespace

Status ParseSafetensors(const uint8_t* data, size_t size, const std::string& name,
                        std::map<std::string, TensorView>* out, AlignedBuffer* realigned) {
  if (size < 8) return DataLoss(StrFormat("%s: file is %zu bytes, too short for a safetensors header", name.c_str(), size));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > kMaxHeaderBytes || header_len > size - 8) {
    return DataLoss(StrFormat("%s: header length %llu does not fit in the %zu-byte file (truncated or not safetensors)",
                              name.c_str(), static_cast<unsigned long long>(header_len), size));
  }
  // A name given twice would silently take its last entry (a JSON object keeps one value per key): an error.
  std::set<std::string> names;
  std::string duplicate;
  json::parser_callback_t no_duplicates = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second &&
        duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json header = json::parse(data + 8, data + 8 + header_len, no_duplicates, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return DataLoss(StrFormat("%s: the header is not a valid JSON object", name.c_str()));
  }
  if (!duplicate.empty()) {
    return DataLoss(StrFormat("%s: the header names tensor '%s' twice", name.c_str(), duplicate.c_str()));
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
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& tname = it.key();
    const json& e = it.value();
    auto bad = [&](const std::string& why) {
      return DataLoss(StrFormat("%s: tensor '%s': %s", name.c_str(), tname.c_str(), why.c_str()));
    };
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets")) {
      return bad("entry needs dtype, shape and data_offsets");
    }
    if (!e["dtype"].is_string()) return bad("dtype is not a string");
    TensorView v;
    if (!ParseDType(e["dtype"].get<std::string>(), &v.dtype)) {
      return Status(StatusCode::kUnimplemented,
                    StrFormat("%s: tensor '%s': unknown dtype '%s'", name.c_str(), tname.c_str(),
                              e["dtype"].get<std::string>().c_str()));
    }
    const json& shape = e["shape"];
    if (!shape.is_array() || shape.size() > 8) return bad("shape is not an array of at most 8 sizes");
    uint64_t numel = 1;
    for (const json& d : shape) {
      if (!d.is_number_unsigned()) return bad("shape holds a negative or non-integer size");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (1ull << 40) || (dim && numel > std::numeric_limits<uint64_t>::max() / dim / 8)) return bad("shape is absurdly large");
      numel *= dim;
      v.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      return bad("data_offsets is not a pair of non-negative integers");
    }
    uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
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
