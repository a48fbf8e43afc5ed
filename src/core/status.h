// Error-propagation macros for library code; the Status/Result types are public (ixc/status.h).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>

#include "ixc/status.h"

#define IXC_CONCAT_INNER(a, b) a##b
#define IXC_CONCAT(a, b) IXC_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when it is an error.
#define IXC_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::ixc::Status ixc_status_ = (expr);        \
    if (!ixc_status_.ok()) return ixc_status_; \
  } while (0)

// `IXC_ASSIGN_OR_RETURN(auto x, F());` binds the value or returns the error.
#define IXC_ASSIGN_OR_RETURN(lhs, expr) IXC_ASSIGN_OR_RETURN_IMPL(IXC_CONCAT(ixc_result_, __LINE__), lhs, expr)
#define IXC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// Internal invariants (never user input): a violated one is a bug in ixc.cpp.
#define IXC_DCHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "ixc: internal invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

namespace ixc {

// Runs `f` (returning a Status or a Result) and turns an allocation failure inside it into ResourceExhausted naming
// `what`. The public entry points run their work through it, so a request too large for the machine's memory is
// an error the front end reports, never an abort; sizes are checked before allocating where they are known, and
// this catches the rest.
template <typename F>
auto CatchAllocationFailure(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return ResourceExhausted(StrFormat("out of memory while %s", what));
  } catch (const std::length_error&) {
    return ResourceExhausted(StrFormat("a buffer too large to allocate while %s", what));
  }
}

}  // namespace ixc
