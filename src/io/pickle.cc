#include "io/pickle.h"

#include <cctype>
#include <cstring>
#include <unordered_map>

namespace ixc {

const char* PyKindName(PyKind k) {
  switch (k) {
    case PyKind::kNone: return "None";
    case PyKind::kBool: return "bool";
    case PyKind::kInt: return "int";
    case PyKind::kFloat: return "float";
    case PyKind::kStr: return "str";
    case PyKind::kBytes: return "bytes";
    case PyKind::kTuple: return "tuple";
    case PyKind::kList: return "list";
    case PyKind::kDict: return "dict";
    case PyKind::kGlobal: return "global";
    case PyKind::kPersId: return "persistent id";
    case PyKind::kCall: return "call";
  }
  return "?";
}

namespace {

// The opcodes we understand (names as in Python's pickletools).
enum Op : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kBinFloat = 'G',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinUnicode = 'X',
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kProto = 0x80,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

// Module and attribute names in GLOBAL are identifiers with dots; anything else is not a real global.
bool PlausibleGlobalPart(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  }
  return true;
}

// A 7B shard's data.pkl makes ~25k values; these caps stop a hostile pickle of one-byte opcodes from turning
// each byte into a ~150-byte node or memo entry.
constexpr size_t kMaxNodes = size_t{4} << 20;
constexpr size_t kMaxMemo = size_t{4} << 20;

}  // namespace

Result<Pickle> Unpickle(const uint8_t* data, size_t size,
                        const std::function<Status(std::string_view, std::string_view)>& allow_global) {
  Pickle p;
  std::vector<PyObj*> stack;
  std::vector<size_t> marks;
  std::unordered_map<uint64_t, PyObj*> memo;
  size_t pos = 0;
  size_t op_pos = 0;

  auto err = [&](const std::string& why) {
    return DataLoss(StrFormat("pickle opcode 0x%02x at offset %zu: %s", op_pos < size ? data[op_pos] : 0, op_pos, why.c_str()));
  };
  auto need = [&](size_t n) { return size - pos >= n; };
  auto read_le = [&](int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | data[pos + k];
    pos += n;
    return v;
  };
  // Items pushed since the innermost MARK (and the mark itself) are popped into a vector.
  auto pop_mark = [&](std::vector<PyObj*>* items) -> bool {
    if (marks.empty()) return false;
    const size_t m = marks.back();
    marks.pop_back();
    if (m > stack.size()) return false;
    if (items) items->assign(stack.begin() + m, stack.end());
    stack.resize(m);
    return true;
  };
  auto push_str = [&](PyKind kind, uint64_t len) -> Status {
    if (!need(len)) return err(StrFormat("a %llu-byte string runs past the end of the pickle", static_cast<unsigned long long>(len)));
    PyObj* o = p.New(kind);
    o->str.assign(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
    stack.push_back(o);
    return Status::Ok();
  };

  bool stopped = false;
  while (!stopped) {
    if (pos >= size) return DataLoss(StrFormat("pickle ends at offset %zu without a STOP opcode (truncated?)", size));
    op_pos = pos;
    if (p.nodes_.size() > kMaxNodes || memo.size() > kMaxMemo) {
      return ResourceExhausted(StrFormat("pickle builds more than %zu values; not a state dict", kMaxNodes));
    }
    const uint8_t op = data[pos++];
    switch (op) {
      case kProto: {
        if (!need(1)) return err("truncated");
        const uint8_t v = data[pos++];
        if (v < 2 || v > 5) return err(StrFormat("unsupported pickle protocol %u", v));
        break;
      }
      case kFrame:  // framing only groups opcodes for buffered readers; the opcodes follow inline
        if (!need(8)) return err("truncated");
        pos += 8;
        break;
      case kStop:
        if (stack.empty()) return err("STOP with an empty stack");
        stopped = true;
        break;
      case kMark:
        marks.push_back(stack.size());
        break;
      case kPop:
        if (stack.empty()) return err("POP with an empty stack");
        stack.pop_back();
        break;
      case kPopMark:
        if (!pop_mark(nullptr)) return err("POP_MARK without a MARK");
        break;
      case kNone:
        stack.push_back(p.New(PyKind::kNone));
        break;
      case kNewTrue:
      case kNewFalse: {
        PyObj* o = p.New(PyKind::kBool);
        o->b = op == kNewTrue;
        stack.push_back(o);
        break;
      }
      case kBinInt:
      case kBinInt1:
      case kBinInt2: {
        const int n = op == kBinInt ? 4 : op == kBinInt1 ? 1 : 2;
        if (!need(n)) return err("truncated");
        const uint64_t v = read_le(n);
        PyObj* o = p.New(PyKind::kInt);
        o->i = op == kBinInt ? static_cast<int32_t>(static_cast<uint32_t>(v)) : static_cast<int64_t>(v);
        stack.push_back(o);
        break;
      }
      case kLong1: {
        if (!need(1)) return err("truncated");
        const uint8_t n = data[pos++];
        if (n > 8) return err(StrFormat("a %u-byte integer does not fit in 64 bits", n));
        if (!need(n)) return err("truncated");
        uint64_t v = n ? read_le(n) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        PyObj* o = p.New(PyKind::kInt);
        o->i = static_cast<int64_t>(v);
        stack.push_back(o);
        break;
      }
      case kBinFloat: {
        if (!need(8)) return err("truncated");
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | data[pos + k];  // big-endian, unlike everything else
        pos += 8;
        PyObj* o = p.New(PyKind::kFloat);
        std::memcpy(&o->f, &bits, 8);
        stack.push_back(o);
        break;
      }
      case kShortBinUnicode:
      case kShortBinBytes:
        if (!need(1)) return err("truncated");
        IXC_RETURN_IF_ERROR(push_str(op == kShortBinUnicode ? PyKind::kStr : PyKind::kBytes, read_le(1)));
        break;
      case kBinUnicode:
      case kBinBytes:
        if (!need(4)) return err("truncated");
        IXC_RETURN_IF_ERROR(push_str(op == kBinUnicode ? PyKind::kStr : PyKind::kBytes, read_le(4)));
        break;
      case kBinUnicode8:
        if (!need(8)) return err("truncated");
        IXC_RETURN_IF_ERROR(push_str(PyKind::kStr, read_le(8)));
        break;
      case kEmptyDict:
        stack.push_back(p.New(PyKind::kDict));
        break;
      case kEmptyList:
        stack.push_back(p.New(PyKind::kList));
        break;
      case kEmptyTuple:
        stack.push_back(p.New(PyKind::kTuple));
        break;
      case kTuple:
      case kList: {
        PyObj* o = p.New(op == kTuple ? PyKind::kTuple : PyKind::kList);
        if (!pop_mark(&o->items)) return err("no MARK before it");
        stack.push_back(o);
        break;
      }
      case kDict: {
        std::vector<PyObj*> items;
        if (!pop_mark(&items) || items.size() % 2) return err("needs a MARK and key/value pairs");
        PyObj* o = p.New(PyKind::kDict);
        for (size_t k = 0; k < items.size(); k += 2) o->dict.emplace_back(items[k], items[k + 1]);
        stack.push_back(o);
        break;
      }
      case kTuple1:
      case kTuple2:
      case kTuple3: {
        const size_t n = op - kTuple1 + 1;
        if (stack.size() < n) return err("stack underflow");
        PyObj* o = p.New(PyKind::kTuple);
        o->items.assign(stack.end() - n, stack.end());
        stack.resize(stack.size() - n);
        stack.push_back(o);
        break;
      }
      case kBinPut:
      case kLongBinPut: {
        const int n = op == kBinPut ? 1 : 4;
        if (!need(n)) return err("truncated");
        const uint64_t idx = read_le(n);
        if (stack.empty()) return err("memo PUT with an empty stack");
        memo[idx] = stack.back();
        break;
      }
      case kMemoize:
        if (stack.empty()) return err("MEMOIZE with an empty stack");
        memo[memo.size()] = stack.back();
        break;
      case kBinGet:
      case kLongBinGet: {
        const int n = op == kBinGet ? 1 : 4;
        if (!need(n)) return err("truncated");
        const uint64_t idx = read_le(n);
        auto it = memo.find(idx);
        if (it == memo.end()) return err(StrFormat("memo slot %llu was never stored", static_cast<unsigned long long>(idx)));
        stack.push_back(it->second);
        break;
      }
      case kGlobal:
      case kStackGlobal: {
        std::string module, name;
        if (op == kGlobal) {
          // Two newline-terminated lines: module, then attribute name.
          const void* nl1 = std::memchr(data + pos, '\n', size - pos);
          if (!nl1) return err("unterminated GLOBAL module name");
          const size_t e1 = static_cast<const uint8_t*>(nl1) - data;
          const void* nl2 = std::memchr(data + e1 + 1, '\n', size - e1 - 1);
          if (!nl2) return err("unterminated GLOBAL attribute name");
          const size_t e2 = static_cast<const uint8_t*>(nl2) - data;
          module.assign(reinterpret_cast<const char*>(data + pos), e1 - pos);
          name.assign(reinterpret_cast<const char*>(data + e1 + 1), e2 - e1 - 1);
          pos = e2 + 1;
        } else {
          if (stack.size() < 2 || stack[stack.size() - 1]->kind != PyKind::kStr ||
              stack[stack.size() - 2]->kind != PyKind::kStr) {
            return err("STACK_GLOBAL needs two strings on the stack");
          }
          name = stack.back()->str;
          module = stack[stack.size() - 2]->str;
          stack.resize(stack.size() - 2);
        }
        if (!PlausibleGlobalPart(module) || !PlausibleGlobalPart(name)) return err("malformed global name");
        Status allowed = allow_global(module, name);
        if (!allowed.ok()) return allowed;
        PyObj* o = p.New(PyKind::kGlobal);
        o->str = std::move(module);
        o->name = std::move(name);
        stack.push_back(o);
        break;
      }
      case kReduce: {
        if (stack.size() < 2) return err("REDUCE needs a callable and arguments");
        PyObj* args = stack.back();
        PyObj* fn = stack[stack.size() - 2];
        stack.resize(stack.size() - 2);
        if (fn->kind != PyKind::kGlobal) return err(StrFormat("REDUCE of a %s, not of a global", PyKindName(fn->kind)));
        if (args->kind != PyKind::kTuple) return err("REDUCE arguments are not a tuple");
        if (fn->IsGlobal("collections", "OrderedDict")) {
          if (!args->items.empty()) return err("OrderedDict built from arguments is not supported");
          stack.push_back(p.New(PyKind::kDict));
          break;
        }
        PyObj* o = p.New(PyKind::kCall);
        o->items = {fn, args};
        stack.push_back(o);
        break;
      }
      case kBuild: {
        // torch uses BUILD only to set attributes such as `_metadata` on an OrderedDict; they do not affect
        // the tensors, so the state is dropped. BUILD on anything else would need real object semantics.
        if (stack.size() < 2) return err("BUILD needs an object and a state");
        stack.pop_back();
        if (stack.back()->kind != PyKind::kDict) {
          return err(StrFormat("BUILD on a %s is not supported", PyKindName(stack.back()->kind)));
        }
        break;
      }
      case kSetItem: {
        if (stack.size() < 3) return err("SETITEM needs a dict, a key and a value");
        PyObj* d = stack[stack.size() - 3];
        if (d->kind != PyKind::kDict) return err(StrFormat("SETITEM on a %s", PyKindName(d->kind)));
        d->dict.emplace_back(stack[stack.size() - 2], stack.back());
        stack.resize(stack.size() - 2);
        break;
      }
      case kSetItems: {
        std::vector<PyObj*> items;
        if (!pop_mark(&items) || items.size() % 2) return err("needs a MARK and key/value pairs");
        if (stack.empty() || stack.back()->kind != PyKind::kDict) return err("SETITEMS target is not a dict");
        PyObj* d = stack.back();
        for (size_t k = 0; k < items.size(); k += 2) d->dict.emplace_back(items[k], items[k + 1]);
        break;
      }
      case kAppend: {
        if (stack.size() < 2 || stack[stack.size() - 2]->kind != PyKind::kList) return err("APPEND target is not a list");
        stack[stack.size() - 2]->items.push_back(stack.back());
        stack.pop_back();
        break;
      }
      case kAppends: {
        std::vector<PyObj*> items;
        if (!pop_mark(&items)) return err("no MARK before it");
        if (stack.empty() || stack.back()->kind != PyKind::kList) return err("APPENDS target is not a list");
        auto& v = stack.back()->items;
        v.insert(v.end(), items.begin(), items.end());
        break;
      }
      case kBinPersId: {
        if (stack.empty()) return err("BINPERSID with an empty stack");
        PyObj* o = p.New(PyKind::kPersId);
        o->items = {stack.back()};
        stack.back() = o;
        break;
      }
      default:
        return err("unsupported opcode (not part of what torch.save writes for a state dict)");
    }
  }
  p.root_ = stack.back();
  return p;
}

}  // namespace ixc
