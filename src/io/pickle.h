// A restricted unpickler for the data.pkl of `torch.save` state dicts. It is a small stack machine that builds
// a tree of plain values; it never imports or calls anything. GLOBAL names are accepted only when the caller's
// filter allows them, and REDUCE only records "call this allowed global with these arguments" for the caller
// to interpret (the one exception: `collections.OrderedDict()` with no arguments becomes an empty dict).
//
// Opcodes understood (protocols 2 to 5 as torch writes them): PROTO FRAME STOP MARK POP POP_MARK
// EMPTY_DICT EMPTY_LIST EMPTY_TUPLE DICT LIST TUPLE TUPLE1-3 BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINBYTES
// SHORT_BINBYTES BININT BININT1 BININT2 LONG1 BINFLOAT NONE NEWTRUE NEWFALSE BINPUT LONG_BINPUT MEMOIZE BINGET
// LONG_BINGET GLOBAL STACK_GLOBAL REDUCE BUILD SETITEM SETITEMS APPEND APPENDS BINPERSID. Anything else is an
// error naming the opcode and its offset. At most 4 Mi values and 4 Mi memo entries are built (ResourceExhausted
// beyond), far above any state dict but bounding what a hostile pickle can allocate.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace ixc {

enum class PyKind : uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kStr,
  kBytes,
  kTuple,
  kList,
  kDict,
  kGlobal,   // module + name of an allowed global (a class or function, never resolved)
  kPersId,   // the result of BINPERSID: items[0] is the persistent id the caller resolves
  kCall,     // REDUCE of an allowed global: items[0] = the kGlobal, items[1] = the argument tuple
};

const char* PyKindName(PyKind k);

// One node of the value tree. Nodes are owned by their Pickle and may be shared (the memo hands out the same
// node twice) or even cyclic, so walkers must bound their depth.
struct PyObj {
  PyKind kind = PyKind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string str;     // kStr (UTF-8), kBytes; kGlobal: the module
  std::string name;    // kGlobal: the attribute name
  std::vector<PyObj*> items;                      // kTuple, kList, kPersId, kCall
  std::vector<std::pair<PyObj*, PyObj*>> dict;    // kDict, in insertion order (duplicate keys kept: callers decide)

  bool IsGlobal(std::string_view module, std::string_view n) const {
    return kind == PyKind::kGlobal && str == module && name == n;
  }
};

// The unpickled tree; owns every node.
class Pickle {
 public:
  const PyObj* root() const { return root_; }

 private:
  friend Result<Pickle> Unpickle(const uint8_t*, size_t, const std::function<Status(std::string_view, std::string_view)>&);
  PyObj* New(PyKind k) {
    nodes_.emplace_back();
    nodes_.back().kind = k;
    return &nodes_.back();
  }
  std::deque<PyObj> nodes_;  // a deque keeps node addresses stable as it grows
  PyObj* root_ = nullptr;
};

// `allow_global(module, name)` returns OK for the globals the caller understands and an error (which is passed
// through) for everything else.
Result<Pickle> Unpickle(const uint8_t* data, size_t size,
                        const std::function<Status(std::string_view module, std::string_view name)>& allow_global);

}  // namespace ixc
