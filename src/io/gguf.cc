#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

namespace ixc {

namespace {

using Type = GgufValue::Type;

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
// Far above any real model, so that lying counts cannot make the parser allocate or loop for long.
constexpr uint64_t kMaxTensors = 1u << 20, kMaxKeys = 1u << 20, kMaxDims = 4;
constexpr uint64_t kMaxString = 1u << 30;

// ggml's type ids for the tensor types ixc reads.
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ8_0 = 8, kGgmlBf16 = 30;

const char* GgmlTypeName(uint32_t t) {
  static const char* kNames[] = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
                                 "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS",
                                 "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64",
                                 "IQ1_M", "BF16"};
  return t < sizeof(kNames) / sizeof(kNames[0]) ? kNames[t] : "unknown";
}

bool FromGgml(uint32_t t, DType* out) {
  switch (t) {
    case kGgmlF32: *out = DType::kF32; return true;
    case kGgmlF16: *out = DType::kF16; return true;
    case kGgmlQ4_0: *out = DType::kQ4_0; return true;
    case kGgmlQ8_0: *out = DType::kQ8_0; return true;
    case kGgmlBf16: *out = DType::kBF16; return true;
    default: return false;
  }
}

uint32_t ToGgml(DType t) {
  switch (t) {
    case DType::kF16: return kGgmlF16;
    case DType::kQ4_0: return kGgmlQ4_0;
    case DType::kQ8_0: return kGgmlQ8_0;
    case DType::kBF16: return kGgmlBf16;
    default: return kGgmlF32;
  }
}

// Bytes of one fixed-size metadata scalar; 0 for strings and arrays.
uint64_t ScalarSize(Type t) {
  switch (t) {
    case Type::kU8: case Type::kI8: case Type::kBool: return 1;
    case Type::kU16: case Type::kI16: return 2;
    case Type::kU32: case Type::kI32: case Type::kF32: return 4;
    case Type::kU64: case Type::kI64: case Type::kF64: return 8;
    default: return 0;
  }
}

bool KnownType(uint32_t t) { return t <= static_cast<uint32_t>(Type::kF64); }

// A bounds-checked little-endian reader over the image.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& name) : data_(data), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  Status Fail(const std::string& what) const {
    return DataLoss(StrFormat("%s: %s (at byte %zu of %zu)", name_.c_str(), what.c_str(), pos_, size_));
  }

  template <typename T>
  Status Read(T* v, const char* what) {
    if (left() < sizeof(T)) return Fail(StrFormat("truncated %s", what));
    std::memcpy(v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadString(std::string* s, const char* what) {
    uint64_t n;
    IXC_RETURN_IF_ERROR(Read(&n, what));
    if (n > kMaxString || n > left()) return Fail(StrFormat("%s of %llu bytes runs past the end", what, (unsigned long long)n));
    s->assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return Status::Ok();
  }

  Status ReadScalar(Type t, GgufValue* v, const char* what) {
    switch (t) {
      case Type::kU8: { uint8_t x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->i = x; return Status::Ok(); }
      case Type::kI8: { int8_t x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->i = x; return Status::Ok(); }
      case Type::kBool: {
        uint8_t x;
        IXC_RETURN_IF_ERROR(Read(&x, what));
        if (x > 1) return Fail(StrFormat("%s is a bool of value %u", what, x));
        v->i = x;
        return Status::Ok();
      }
      case Type::kU16: { uint16_t x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->i = x; return Status::Ok(); }
      case Type::kI16: { int16_t x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->i = x; return Status::Ok(); }
      case Type::kU32: { uint32_t x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->i = x; return Status::Ok(); }
      case Type::kI32: { int32_t x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->i = x; return Status::Ok(); }
      case Type::kU64: {
        uint64_t x;
        IXC_RETURN_IF_ERROR(Read(&x, what));
        if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Fail(StrFormat("%s is too large", what));
        v->i = static_cast<int64_t>(x);
        return Status::Ok();
      }
      case Type::kI64: { int64_t x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->i = x; return Status::Ok(); }
      case Type::kF32: { float x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->f = x; return Status::Ok(); }
      case Type::kF64: { double x; IXC_RETURN_IF_ERROR(Read(&x, what)); v->f = x; return Status::Ok(); }
      case Type::kString: return ReadString(&v->s, what);
      default: return Fail(StrFormat("%s has type %u", what, static_cast<unsigned>(t)));
    }
  }

  Status ReadValue(GgufValue* v, const std::string& key) {
    uint32_t t;
    IXC_RETURN_IF_ERROR(Read(&t, "metadata type"));
    if (!KnownType(t)) return Fail(StrFormat("metadata '%s' has unknown type %u", key.c_str(), t));
    v->type = static_cast<Type>(t);
    if (v->type != Type::kArray) return ReadScalar(v->type, v, "metadata value");
    uint32_t et;
    uint64_t n;
    IXC_RETURN_IF_ERROR(Read(&et, "array element type"));
    IXC_RETURN_IF_ERROR(Read(&n, "array length"));
    if (!KnownType(et) || et == static_cast<uint32_t>(Type::kArray)) {
      return Fail(StrFormat("metadata '%s' is an array of unsupported type %u", key.c_str(), et));
    }
    v->element_type = static_cast<Type>(et);
    const uint64_t esize = ScalarSize(v->element_type);
    // Every element takes at least a byte (a string at least its 8-byte length): a count the image cannot hold is
    // refused before anything is allocated.
    if (n > left() / (esize ? esize : 8)) return Fail(StrFormat("metadata '%s' claims %llu elements", key.c_str(), (unsigned long long)n));
    v->count = static_cast<int64_t>(n);
    if (esize) {
      v->bytes.assign(data_ + pos_, data_ + pos_ + n * esize);
      pos_ += n * esize;
    } else {
      v->strings.resize(n);
      for (auto& s : v->strings) IXC_RETURN_IF_ERROR(ReadString(&s, "array string"));
    }
    return Status::Ok();
  }

  Status Seek(size_t p) {
    if (p > size_) return Fail("padding runs past the end");
    pos_ = p;
    return Status::Ok();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

}  // namespace

GgufValue GgufValue::String(std::string v) {
  GgufValue g;
  g.type = Type::kString;
  g.s = std::move(v);
  return g;
}
GgufValue GgufValue::U32(uint32_t v) {
  GgufValue g;
  g.type = Type::kU32;
  g.i = v;
  return g;
}
GgufValue GgufValue::I64(int64_t v) {
  GgufValue g;
  g.type = Type::kI64;
  g.i = v;
  return g;
}
GgufValue GgufValue::F32(float v) {
  GgufValue g;
  g.type = Type::kF32;
  g.f = v;
  return g;
}
GgufValue GgufValue::Bytes(std::vector<uint8_t> v) {
  GgufValue g;
  g.type = Type::kArray;
  g.element_type = Type::kU8;
  g.count = static_cast<int64_t>(v.size());
  g.bytes = std::move(v);
  return g;
}

Status ParseGguf(const uint8_t* data, size_t size, const std::string& name, GgufContents* out) {
  Cursor c(data, size, name);
  uint32_t magic, version;
  uint64_t n_tensors, n_keys;
  IXC_RETURN_IF_ERROR(c.Read(&magic, "magic"));
  if (magic != kMagic) return DataLoss(StrFormat("%s: not a GGUF file (bad magic)", name.c_str()));
  IXC_RETURN_IF_ERROR(c.Read(&version, "version"));
  if (version != 2 && version != 3) {
    return Status(StatusCode::kUnimplemented, StrFormat("%s: GGUF version %u (ixc reads 2 and 3)", name.c_str(), version));
  }
  IXC_RETURN_IF_ERROR(c.Read(&n_tensors, "tensor count"));
  IXC_RETURN_IF_ERROR(c.Read(&n_keys, "metadata count"));
  if (n_tensors > kMaxTensors || n_keys > kMaxKeys) {
    return c.Fail(StrFormat("%llu tensors and %llu metadata keys is not a real model", (unsigned long long)n_tensors,
                            (unsigned long long)n_keys));
  }
  GgufContents g;
  g.version = version;
  for (uint64_t k = 0; k < n_keys; ++k) {
    std::string key;
    IXC_RETURN_IF_ERROR(c.ReadString(&key, "metadata key"));
    GgufValue v;
    IXC_RETURN_IF_ERROR(c.ReadValue(&v, key));
    if (!g.metadata.emplace(key, std::move(v)).second) return c.Fail(StrFormat("metadata key '%s' appears twice", key.c_str()));
  }
  auto align = g.metadata.find("general.alignment");
  if (align != g.metadata.end()) {
    const GgufValue& a = align->second;
    if (a.type != Type::kU32 || a.i <= 0 || a.i > 65536 || (a.i & (a.i - 1)) != 0) {
      return c.Fail("general.alignment is not a power of two up to 65536 stored as U32");
    }
    g.alignment = a.i;
  }

  struct Info {
    std::string name;
    TensorView view;
    uint64_t offset, bytes;
  };
  std::vector<Info> infos(n_tensors);
  for (Info& t : infos) {
    IXC_RETURN_IF_ERROR(c.ReadString(&t.name, "tensor name"));
    auto bad = [&](const std::string& why) { return c.Fail(StrFormat("tensor '%s': %s", t.name.c_str(), why.c_str())); };
    uint32_t n_dims;
    IXC_RETURN_IF_ERROR(c.Read(&n_dims, "dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) return bad(StrFormat("%u dimensions", n_dims));
    uint64_t ne[kMaxDims], numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      IXC_RETURN_IF_ERROR(c.Read(&ne[d], "dimension"));
      if (ne[d] == 0 || ne[d] > (uint64_t{1} << 40) || numel > (uint64_t{1} << 44) / ne[d]) return bad("absurd dimensions");
      numel *= ne[d];
    }
    uint32_t ggml_type;
    IXC_RETURN_IF_ERROR(c.Read(&ggml_type, "tensor type"));
    IXC_RETURN_IF_ERROR(c.Read(&t.offset, "tensor offset"));
    if (!FromGgml(ggml_type, &t.view.dtype)) {
      return Status(StatusCode::kUnimplemented,
                    StrFormat("%s: tensor '%s' has type %s (%u); ixc reads F32, F16, BF16, Q8_0 and Q4_0", name.c_str(),
                              t.name.c_str(), GgmlTypeName(ggml_type), ggml_type));
    }
    if (ne[0] % static_cast<uint64_t>(DTypeBlockValues(t.view.dtype)) != 0) return bad("rows are not whole blocks");
    for (uint32_t d = n_dims; d-- > 0;) t.view.shape.push_back(static_cast<int64_t>(ne[d]));  // outermost first
    t.bytes = static_cast<uint64_t>(StorageBytes(t.view.dtype, static_cast<int64_t>(numel)));
  }
  // The data section starts at the next multiple of the alignment.
  const uint64_t al = static_cast<uint64_t>(g.alignment);
  const uint64_t data_start = (c.pos() + al - 1) / al * al;
  IXC_RETURN_IF_ERROR(c.Seek(data_start));
  const uint64_t data_size = size - data_start;
  for (Info& t : infos) {
    if (t.offset % al != 0) return c.Fail(StrFormat("tensor '%s' is not aligned to %llu bytes", t.name.c_str(), (unsigned long long)al));
    if (t.offset > data_size || t.bytes > data_size - t.offset) {
      return c.Fail(StrFormat("tensor '%s' (%llu bytes at offset %llu) runs past the end of the data", t.name.c_str(),
                              (unsigned long long)t.bytes, (unsigned long long)t.offset));
    }
    t.view.data = data + data_start + t.offset;
    if (!g.tensors.emplace(t.name, t.view).second) return c.Fail(StrFormat("tensor '%s' appears twice", t.name.c_str()));
  }
  *out = std::move(g);
  return Status::Ok();
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  IXC_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  auto g = std::unique_ptr<GgufFile>(new GgufFile());
  IXC_RETURN_IF_ERROR(ParseGguf(file->data(), file->size(), path, &g->contents_));
  g->file_ = std::move(file);
  return g;
}

Result<std::string> GgufFile::GetString(const std::string& key) const {
  auto it = contents_.metadata.find(key);
  if (it == contents_.metadata.end()) return NotFound(StrFormat("%s: no metadata '%s'", path().c_str(), key.c_str()));
  if (it->second.type != Type::kString) return InvalidArgument(StrFormat("%s: metadata '%s' is not a string", path().c_str(), key.c_str()));
  return it->second.s;
}

Result<int64_t> GgufFile::GetInt(const std::string& key) const {
  auto it = contents_.metadata.find(key);
  if (it == contents_.metadata.end()) return NotFound(StrFormat("%s: no metadata '%s'", path().c_str(), key.c_str()));
  const Type t = it->second.type;
  if (ScalarSize(t) == 0 || t == Type::kF32 || t == Type::kF64 || t == Type::kBool) {
    return InvalidArgument(StrFormat("%s: metadata '%s' is not an integer", path().c_str(), key.c_str()));
  }
  return it->second.i;
}

Result<std::vector<uint8_t>> GgufFile::GetBytes(const std::string& key) const {
  auto it = contents_.metadata.find(key);
  if (it == contents_.metadata.end()) return NotFound(StrFormat("%s: no metadata '%s'", path().c_str(), key.c_str()));
  const GgufValue& v = it->second;
  if (v.type != Type::kArray || (v.element_type != Type::kU8 && v.element_type != Type::kI8)) {
    return InvalidArgument(StrFormat("%s: metadata '%s' is not an array of bytes", path().c_str(), key.c_str()));
  }
  return v.bytes;
}

namespace {

class Writer {
 public:
  explicit Writer(std::ofstream& out) : out_(out) {}
  template <typename T>
  void Put(T v) {
    out_.write(reinterpret_cast<const char*>(&v), sizeof(T));
    pos_ += sizeof(T);
  }
  void PutString(const std::string& s) {
    Put<uint64_t>(s.size());
    out_.write(s.data(), static_cast<std::streamsize>(s.size()));
    pos_ += s.size();
  }
  void PutBytes(const void* p, uint64_t n) {
    out_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    pos_ += n;
  }
  void Pad(uint64_t alignment) {
    static const char kZeros[64] = {};
    while (pos_ % alignment) {
      const uint64_t n = std::min<uint64_t>(sizeof(kZeros), alignment - pos_ % alignment);
      PutBytes(kZeros, n);
    }
  }
  Status PutValue(const std::string& key, const GgufValue& v) {
    Put<uint32_t>(static_cast<uint32_t>(v.type));
    if (v.type == Type::kArray) {
      Put<uint32_t>(static_cast<uint32_t>(v.element_type));
      Put<uint64_t>(static_cast<uint64_t>(v.count));
      if (v.element_type == Type::kString) {
        for (const auto& s : v.strings) PutString(s);
      } else {
        if (v.bytes.size() != static_cast<size_t>(v.count) * ScalarSize(v.element_type)) {
          return InvalidArgument(StrFormat("metadata '%s': %zu bytes for %lld elements", key.c_str(), v.bytes.size(),
                                           (long long)v.count));
        }
        PutBytes(v.bytes.data(), v.bytes.size());
      }
      return Status::Ok();
    }
    switch (v.type) {
      case Type::kU8: Put<uint8_t>(static_cast<uint8_t>(v.i)); break;
      case Type::kI8: Put<int8_t>(static_cast<int8_t>(v.i)); break;
      case Type::kBool: Put<uint8_t>(v.i ? 1 : 0); break;
      case Type::kU16: Put<uint16_t>(static_cast<uint16_t>(v.i)); break;
      case Type::kI16: Put<int16_t>(static_cast<int16_t>(v.i)); break;
      case Type::kU32: Put<uint32_t>(static_cast<uint32_t>(v.i)); break;
      case Type::kI32: Put<int32_t>(static_cast<int32_t>(v.i)); break;
      case Type::kU64: Put<uint64_t>(static_cast<uint64_t>(v.i)); break;
      case Type::kI64: Put<int64_t>(v.i); break;
      case Type::kF32: Put<float>(static_cast<float>(v.f)); break;
      case Type::kF64: Put<double>(v.f); break;
      case Type::kString: PutString(v.s); break;
      default: return InvalidArgument(StrFormat("metadata '%s' has an unknown type", key.c_str()));
    }
    return Status::Ok();
  }
  uint64_t pos() const { return pos_; }

 private:
  std::ofstream& out_;
  uint64_t pos_ = 0;
};

}  // namespace

Status WriteGguf(const std::string& path, const std::map<std::string, GgufValue>& metadata,
                 const std::vector<GgufTensor>& tensors, const std::function<void(size_t, size_t)>& on_tensor) {
  constexpr uint64_t kAlign = 32;
  std::map<std::string, GgufValue> md = metadata;
  md["general.alignment"] = GgufValue::U32(kAlign);
  for (const GgufTensor& t : tensors) {
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16 && t.dtype != DType::kQ8_0 &&
        t.dtype != DType::kQ4_0) {
      return InvalidArgument(StrFormat("tensor '%s': GGUF output takes F32, F16, BF16, Q8_0 or Q4_0, not %s", t.name.c_str(),
                                       DTypeName(t.dtype)));
    }
    if (t.shape.empty() || t.shape.size() > kMaxDims || t.shape.back() % DTypeBlockValues(t.dtype) != 0) {
      return InvalidArgument(StrFormat("tensor '%s': shape %s cannot be stored as %s", t.name.c_str(),
                                       ShapeToString(t.shape).c_str(), DTypeName(t.dtype)));
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InvalidArgument("cannot write " + path);
  Writer w(out);
  w.Put<uint32_t>(kMagic);
  w.Put<uint32_t>(3);
  w.Put<uint64_t>(tensors.size());
  w.Put<uint64_t>(md.size());
  for (const auto& [key, v] : md) {
    w.PutString(key);
    IXC_RETURN_IF_ERROR(w.PutValue(key, v));
  }
  uint64_t offset = 0;
  for (const GgufTensor& t : tensors) {
    w.PutString(t.name);
    w.Put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) w.Put<uint64_t>(static_cast<uint64_t>(t.shape[d]));  // innermost first
    w.Put<uint32_t>(ToGgml(t.dtype));
    w.Put<uint64_t>(offset);
    offset += (static_cast<uint64_t>(StorageBytes(t.dtype, NumElements(t.shape))) + kAlign - 1) / kAlign * kAlign;
  }
  w.Pad(kAlign);
  std::vector<uint8_t> produced;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensor& t = tensors[i];
    const uint64_t bytes = static_cast<uint64_t>(StorageBytes(t.dtype, NumElements(t.shape)));
    const void* data = t.data;
    if (t.produce) {
      produced.resize(bytes);
      IXC_RETURN_IF_ERROR(t.produce(produced.data()));
      data = produced.data();
    }
    if (!data) return InvalidArgument(StrFormat("tensor '%s' has no data", t.name.c_str()));
    w.PutBytes(data, bytes);
    w.Pad(kAlign);
    if (on_tensor) on_tensor(i + 1, tensors.size());
  }
  out.close();
  if (!out) return DataLoss("writing " + path + " failed (disk full?)");
  return Status::Ok();
}

}  // namespace ixc
