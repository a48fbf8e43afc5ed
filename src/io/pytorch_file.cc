#include "io/pytorch_file.h"

#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <span>

#include "core/mapped_file.h"
#include "io/pickle.h"
#include "io/zip_reader.h"

namespace ixc {

namespace {

// data.pkl of a 7B shard is ~100 KB; a limit far above that keeps a hostile pickle's value tree bounded.
constexpr uint64_t kMaxPickleBytes = 16u << 20;
// Copies beyond the archive's own size can only come from expanded/overlapping strides (see the header).
constexpr uint64_t kCopySlackBytes = 64u << 20;
constexpr size_t kMaxDims = 8;

struct StorageType {
  const char* name;
  DType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", DType::kF32}, {"HalfStorage", DType::kF16}, {"BFloat16Storage", DType::kBF16},
    {"DoubleStorage", DType::kF64}, {"LongStorage", DType::kI64}, {"IntStorage", DType::kI32},
    {"CharStorage", DType::kI8},   {"ByteStorage", DType::kU8},  {"BoolStorage", DType::kBool},
};

bool StorageDType(std::string_view name, DType* out) {
  for (const auto& s : kStorageTypes) {
    if (name == s.name) {
      *out = s.dtype;
      return true;
    }
  }
  return false;
}

// The only globals a state dict needs. Everything else (os.system, arbitrary classes...) is refused by name.
Status AllowTorchGlobal(std::string_view module, std::string_view name) {
  if (module == "collections" && name == "OrderedDict") return Status::Ok();
  if (module == "torch._utils" && (name == "_rebuild_tensor_v2" || name == "_rebuild_parameter")) return Status::Ok();
  DType unused;
  if (module == "torch" && StorageDType(name, &unused)) return Status::Ok();
  if (module == "torch" && name.size() > 7 && name.substr(name.size() - 7) == "Storage") {
    return Unimplemented(StrFormat("storage type torch.%.*s is not supported (F32, F16, BF16, F64, I64, I32, I8, U8 "
                                   "and BOOL are)", static_cast<int>(name.size()), name.data()));
  }
  return Unimplemented(StrFormat("refusing pickle global '%.*s %.*s': a state dict only needs torch tensor and "
                                 "storage globals, and nothing in a checkpoint is ever executed",
                                 static_cast<int>(module.size()), module.data(), static_cast<int>(name.size()),
                                 name.data()));
}

class PyTorchSource : public TensorSource {
 public:
  const std::map<std::string, TensorView>& tensors() const override { return tensors_; }
  const std::string& path() const override { return path_; }

  std::unique_ptr<MappedFile> file_;
  std::string path_;
  std::vector<AlignedBuffer> owned_;
  std::map<std::string, TensorView> tensors_;
};

struct Storage {
  DType dtype;
  uint64_t numel = 0;
  const ZipEntry* entry = nullptr;
  uint64_t used = 0;               // elements [0, used) are reached by some tensor: all that is read
  std::span<const uint8_t> bytes;  // those elements, once read
};

// A tensor as the pickle describes it, checked against its storage's size; its bytes come after every storage is
// read.
struct PendingTensor {
  std::string name;
  Storage* storage = nullptr;
  uint64_t offset = 0;
  Shape shape;
  std::vector<int64_t> stride;
  uint64_t numel = 0;
};

// Walks the unpickled tree into tensors. Holds the state shared across tensors (storages, copy budget). Two passes:
// every tensor's shape, stride and offset are checked against its storage's declared size first; then each storage
// is read only as far as its tensors reach, so a deflated member is never inflated past what the declared tensor
// shapes need, whatever size the archive claims for it.
class Builder {
 public:
  Builder(const ZipReader& zip, std::string prefix, const PyTorchLoadOptions& opt, uint64_t copy_budget,
          PyTorchSource* out)
      : zip_(zip), prefix_(std::move(prefix)), opt_(opt), copy_budget_(copy_budget), out_(out) {}

  Status Build(const PyObj* root) {
    if (root->kind != PyKind::kDict) {
      return Unimplemented(StrFormat("the pickled object has type %s, not a state dict (a dict of name -> tensor)",
                                     PyKindName(root->kind)));
    }
    std::vector<PendingTensor> pending;
    for (const auto& [k, v] : root->dict) {
      if (k->kind != PyKind::kStr) return DataLoss(StrFormat("state dict has a key of type %s, not a tensor name", PyKindName(k->kind)));
      if (out_->tensors_.count(k->str)) return DataLoss(StrFormat("tensor '%s' appears twice", k->str.c_str()));
      if (v->kind == PyKind::kDict) {
        return Unimplemented(StrFormat("entry '%s' is a nested dict; only a flat state dict of name -> tensor is "
                                       "supported (save the inner dict, e.g. checkpoint['%s'], on its own)",
                                       k->str.c_str(), k->str.c_str()));
      }
      PendingTensor t;
      t.name = k->str;
      IXC_RETURN_IF_ERROR(Describe(v, &t).WithContext(StrFormat("tensor '%s'", k->str.c_str())));
      out_->tensors_.emplace(k->str, TensorView{});
      pending.push_back(std::move(t));
    }
    for (auto& [key, st] : storages_) {
      if (st.used == 0) continue;
      const uint64_t esize = DTypeSize(st.dtype);
      AlignedBuffer owned;
      IXC_ASSIGN_OR_RETURN(st.bytes, zip_.Read(*st.entry, &owned, opt_.max_inflated_member_bytes,
                                               opt_.verify_storage_crc, st.used * esize));
      if (owned.data()) out_->owned_.push_back(std::move(owned));  // the buffer's heap address does not move
    }
    for (const PendingTensor& t : pending) {
      IXC_RETURN_IF_ERROR(Materialise(t, &out_->tensors_[t.name]).WithContext(StrFormat("tensor '%s'", t.name.c_str())));
    }
    return Status::Ok();
  }

 private:
  static bool IsCall(const PyObj* v, std::string_view fn) {
    return v->kind == PyKind::kCall && v->items.size() == 2 && v->items[0]->IsGlobal("torch._utils", fn) &&
           v->items[1]->kind == PyKind::kTuple;
  }
  static Status IntArg(const PyObj* v, const char* what, int64_t* out) {
    if (v->kind != PyKind::kInt || v->i < 0) return DataLoss(StrFormat("%s is not a non-negative integer", what));
    *out = v->i;
    return Status::Ok();
  }
  static Status IntTuple(const PyObj* v, const char* what, std::vector<int64_t>* out) {
    if (v->kind != PyKind::kTuple) return DataLoss(StrFormat("%s is a %s, not a tuple", what, PyKindName(v->kind)));
    if (v->items.size() > kMaxDims) return Unimplemented(StrFormat("%s has %zu dimensions (at most 8 are supported)", what, v->items.size()));
    for (const PyObj* d : v->items) {
      int64_t x;
      IXC_RETURN_IF_ERROR(IntArg(d, what, &x));
      out->push_back(x);
    }
    return Status::Ok();
  }

  Status Describe(const PyObj* v, PendingTensor* out) {
    // A saved nn.Parameter is _rebuild_parameter(tensor, requires_grad, hooks); only the tensor matters.
    if (IsCall(v, "_rebuild_parameter")) {
      const auto& args = v->items[1]->items;
      if (args.empty()) return DataLoss("_rebuild_parameter has no arguments");
      v = args[0];
    }
    if (!IsCall(v, "_rebuild_tensor_v2")) {
      return Unimplemented(StrFormat("value has type %s, not a tensor (a flat state dict of tensors is required)",
                                     v->kind == PyKind::kCall ? "call of an unsupported function" : PyKindName(v->kind)));
    }
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    const auto& a = v->items[1]->items;
    if (a.size() != 6 && a.size() != 7) return DataLoss(StrFormat("_rebuild_tensor_v2 has %zu arguments, not 6 or 7", a.size()));
    Storage* st = nullptr;
    IXC_RETURN_IF_ERROR(GetStorage(a[0], &st));
    int64_t offset;
    Shape shape;
    std::vector<int64_t> stride;
    IXC_RETURN_IF_ERROR(IntArg(a[1], "storage offset", &offset));
    IXC_RETURN_IF_ERROR(IntTuple(a[2], "size", &shape));
    IXC_RETURN_IF_ERROR(IntTuple(a[3], "stride", &stride));
    if (stride.size() != shape.size()) return DataLoss("size and stride have different lengths");

    // numel and the highest element index, with overflow checks (each factor is bounded first).
    uint64_t numel = 1, last = static_cast<uint64_t>(offset);
    for (size_t i = 0; i < shape.size(); ++i) {
      const uint64_t n = static_cast<uint64_t>(shape[i]), s = static_cast<uint64_t>(stride[i]);
      if (n > (uint64_t{1} << 48) || s > (uint64_t{1} << 48)) return DataLoss("size or stride is absurdly large");
      if (n && numel > (uint64_t{1} << 56) / n) return DataLoss("element count overflows");
      numel *= n;
    }
    if (static_cast<uint64_t>(offset) > st->numel) {
      return DataLoss(StrFormat("storage offset %lld is past the %llu-element storage", static_cast<long long>(offset),
                                static_cast<unsigned long long>(st->numel)));
    }
    if (numel > 0) {
      // (size - 1) * stride can pass 2^64 for hostile values (each is below 2^48): sum in 128 bits.
      unsigned __int128 reach = static_cast<uint64_t>(offset);
      for (size_t i = 0; i < shape.size(); ++i) {
        reach += static_cast<unsigned __int128>(shape[i] - 1) * static_cast<uint64_t>(stride[i]);
      }
      last = reach > std::numeric_limits<uint64_t>::max() ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(reach);
      if (last >= st->numel) {
        return DataLoss(StrFormat("size %s, stride and offset %lld reach element %llu of a %llu-element storage",
                                  ShapeToString(shape).c_str(), static_cast<long long>(offset),
                                  static_cast<unsigned long long>(last), static_cast<unsigned long long>(st->numel)));
      }
    }
    out->storage = st;
    out->offset = static_cast<uint64_t>(offset);
    out->shape = std::move(shape);
    out->stride = std::move(stride);
    out->numel = numel;
    if (numel > 0) st->used = std::max(st->used, last + 1);
    return Status::Ok();
  }

  // The tensor's bytes: in place when contiguous and aligned, else gathered into an owned buffer.
  Status Materialise(const PendingTensor& t, TensorView* out) {
    const Storage* st = t.storage;
    const size_t esize = DTypeSize(st->dtype);
    bool contiguous = true;
    int64_t expect = 1;
    for (size_t i = t.shape.size(); i-- > 0;) {
      if (t.shape[i] != 1 && t.stride[i] != expect) contiguous = false;
      expect *= t.shape[i];
    }
    out->dtype = st->dtype;
    out->shape = t.shape;
    if (t.numel == 0) {
      // An empty tensor gets a static aligned address: its storage may sit anywhere, even at an odd offset.
      alignas(64) static const uint8_t kEmpty[64] = {};
      out->data = kEmpty;
      return Status::Ok();
    }
    const uint8_t* src = st->bytes.data() + t.offset * esize;
    if (contiguous && reinterpret_cast<uintptr_t>(src) % esize == 0) {
      out->data = src;
      return Status::Ok();
    }
    // Materialise: non-contiguous strides, or data misaligned for its element type.
    const uint64_t nbytes = t.numel * esize;
    if (nbytes > copy_budget_) {
      return ResourceExhausted(StrFormat("materialising this non-contiguous tensor (%s) needs %llu bytes, more than "
                                         "the archive could hold; save it with .contiguous()",
                                         ShapeToString(t.shape).c_str(), static_cast<unsigned long long>(nbytes)));
    }
    copy_budget_ -= nbytes;
    IXC_ASSIGN_OR_RETURN(AlignedBuffer buf, AlignedBuffer::Allocate(nbytes));
    StridedCopy(st->bytes.data(), esize, t.offset, t.shape, t.stride, buf.data());
    out->data = buf.data();
    out_->owned_.push_back(std::move(buf));
    return Status::Ok();
  }

  // Gathers a strided tensor into dense row-major order; bounds were checked by the caller.
  static void StridedCopy(const uint8_t* base, size_t esize, uint64_t offset, const Shape& shape,
                          const std::vector<int64_t>& stride, uint8_t* dst) {
    if (shape.empty()) {
      std::memcpy(dst, base + offset * esize, esize);
      return;
    }
    const size_t nd = shape.size();
    std::vector<int64_t> idx(nd, 0);
    const int64_t inner = shape[nd - 1], inner_stride = stride[nd - 1];
    for (;;) {
      uint64_t off = offset;
      for (size_t d = 0; d + 1 < nd; ++d) off += static_cast<uint64_t>(idx[d] * stride[d]);
      for (int64_t j = 0; j < inner; ++j) {
        std::memcpy(dst, base + (off + static_cast<uint64_t>(j * inner_stride)) * esize, esize);
        dst += esize;
      }
      size_t d = nd - 1;
      for (;;) {
        if (d == 0) return;
        --d;
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
  }

  // Resolves a persistent id ('storage', torch.<T>Storage, key, location, numel) to its member's bytes.
  Status GetStorage(const PyObj* v, Storage** out) {
    if (v->kind != PyKind::kPersId || v->items.size() != 1 || v->items[0]->kind != PyKind::kTuple) {
      return DataLoss("storage argument is not a persistent id tuple");
    }
    const auto& pid = v->items[0]->items;
    if (pid.size() != 5 || pid[0]->kind != PyKind::kStr || pid[0]->str != "storage") {
      return DataLoss("persistent id is not ('storage', type, key, location, numel)");
    }
    DType dtype;
    if (pid[1]->kind != PyKind::kGlobal || pid[1]->str != "torch" || !StorageDType(pid[1]->name, &dtype)) {
      return DataLoss("persistent id does not name a torch storage type");
    }
    std::string key;
    if (pid[2]->kind == PyKind::kStr) {
      key = pid[2]->str;
    } else if (pid[2]->kind == PyKind::kInt) {
      key = std::to_string(pid[2]->i);
    } else {
      return DataLoss("storage key is not a string");
    }
    int64_t numel;
    IXC_RETURN_IF_ERROR(IntArg(pid[4], "storage element count", &numel));
    auto it = storages_.find(key);
    if (it != storages_.end()) {
      if (it->second.dtype != dtype || it->second.numel != static_cast<uint64_t>(numel)) {
        return DataLoss(StrFormat("storage '%s' is described with two different types or sizes", key.c_str()));
      }
      *out = &it->second;
      return Status::Ok();
    }
    const std::string member = prefix_ + "/data/" + key;
    const ZipEntry* e = zip_.Find(member);
    if (!e) return DataLoss(StrFormat("its storage member '%s' is missing from the archive", member.c_str()));
    const size_t esize = DTypeSize(dtype);
    if (static_cast<uint64_t>(numel) > e->uncompressed_size / esize || e->uncompressed_size != static_cast<uint64_t>(numel) * esize) {
      return DataLoss(StrFormat("storage member '%s' holds %llu bytes, but %lld %s elements need %llu",
                                member.c_str(), static_cast<unsigned long long>(e->uncompressed_size),
                                static_cast<long long>(numel), DTypeName(dtype),
                                static_cast<unsigned long long>(numel) * esize));
    }
    Storage s{dtype, static_cast<uint64_t>(numel), e, 0, {}};
    *out = &storages_.emplace(key, s).first->second;
    return Status::Ok();
  }

  const ZipReader& zip_;
  std::string prefix_;
  const PyTorchLoadOptions& opt_;
  uint64_t copy_budget_;
  PyTorchSource* out_;
  std::map<std::string, Storage> storages_;
};

Status ParseInto(const uint8_t* data, size_t size, const std::string& name, const PyTorchLoadOptions& options,
                 PyTorchSource* out) {
  // torch < 1.6 (or _use_new_zipfile_serialization=False) wrote a bare pickle stream starting with PROTO.
  if (size >= 2 && data[0] == 0x80 && data[1] <= 5) {
    return Unimplemented("this is the legacy (pre-1.6, non-zip) torch.save format; re-save it with a current torch");
  }
  if (size < 4 || std::memcmp(data, "PK\x03\x04", 4) != 0) {
    return DataLoss("not a PyTorch checkpoint: the file does not start with a zip local header");
  }
  IXC_ASSIGN_OR_RETURN(ZipReader zip, ZipReader::Parse(data, size, /*name=*/""));

  // The archive's one top-level folder (the saved file's stem, or "archive") holds data.pkl.
  const ZipEntry* pkl = nullptr;
  bool torchscript = false;
  for (const auto& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || e.name.find('/', slash + 1) != std::string::npos) continue;
    const std::string_view file = std::string_view(e.name).substr(slash + 1);
    if (file == "constants.pkl") torchscript = true;
    if (file != "data.pkl") continue;
    if (pkl) return DataLoss("the archive holds more than one data.pkl ('" + pkl->name + "' and '" + e.name + "')");
    pkl = &e;
  }
  if (!pkl) {
    return torchscript ? Unimplemented("this is a TorchScript archive (torch.jit.save), not a torch.save state dict")
                       : DataLoss("the archive has no <name>/data.pkl member: not a torch.save checkpoint");
  }
  const std::string prefix = pkl->name.substr(0, pkl->name.find('/'));
  if (const ZipEntry* bo = zip.Find(prefix + "/byteorder")) {
    AlignedBuffer owned;
    IXC_ASSIGN_OR_RETURN(auto bytes, zip.Read(*bo, &owned, 64, /*verify_crc=*/true));
    std::string order(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    while (!order.empty() && (order.back() == '\n' || order.back() == '\r')) order.pop_back();
    if (order != "little") return Unimplemented("storages are stored in '" + order + "' byte order; only little is supported");
  }
  AlignedBuffer pkl_owned;
  if (pkl->uncompressed_size > kMaxPickleBytes) {
    return ResourceExhausted(StrFormat("'%s' is %llu bytes, over the %llu-byte limit for a state dict's pickle",
                                       pkl->name.c_str(), static_cast<unsigned long long>(pkl->uncompressed_size),
                                       static_cast<unsigned long long>(kMaxPickleBytes)));
  }
  IXC_ASSIGN_OR_RETURN(auto pkl_bytes, zip.Read(*pkl, &pkl_owned, kMaxPickleBytes, /*verify_crc=*/true));
  auto pickle = Unpickle(pkl_bytes.data(), pkl_bytes.size(), AllowTorchGlobal);
  if (!pickle.ok()) return pickle.status().WithContext(pkl->name);
  Builder b(zip, prefix, options, static_cast<uint64_t>(size) + kCopySlackBytes, out);
  return b.Build(pickle->root());
}

}  // namespace

Result<std::unique_ptr<TensorSource>> ParsePyTorchArchive(const uint8_t* data, size_t size, const std::string& name,
                                                          const PyTorchLoadOptions& options) {
  auto src = std::make_unique<PyTorchSource>();
  src->path_ = name;
  IXC_RETURN_IF_ERROR(ParseInto(data, size, name, options, src.get()).WithContext(name));
  return std::unique_ptr<TensorSource>(std::move(src));
}

Result<std::unique_ptr<TensorSource>> OpenPyTorchFile(const std::string& path, const PyTorchLoadOptions& options) {
  IXC_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  auto src = std::make_unique<PyTorchSource>();
  src->path_ = path;
  IXC_RETURN_IF_ERROR(ParseInto(file->data(), file->size(), path, options, src.get()).WithContext(path));
  src->file_ = std::move(file);
  return std::unique_ptr<TensorSource>(std::move(src));
}

}  // namespace ixc
