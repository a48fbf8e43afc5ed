#include "flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace ixc::cli {

Status FlagSet::Parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i], value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    }
    const Flag* f = nullptr;
    for (const auto& cand : flags_)
      if (arg == cand.name || (!cand.alias.empty() && arg == cand.alias)) f = &cand;
    if (!f) {
      if (arg.empty() || arg[0] != '-') return InvalidArgument("unexpected argument '" + arg + "'");
      return InvalidArgument("unknown flag '" + arg + "' (see --help)");
    }
    if (f->value_name.empty()) {
      if (has_inline) return InvalidArgument("flag " + f->name + " takes no value");
    } else if (!has_inline) {
      if (i + 1 >= argc) return InvalidArgument("flag " + f->name + " needs a value " + f->value_name);
      value = argv[++i];
    }
    Status s = f->set(value);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

std::string FlagSet::Help() const {
  std::string out;
  for (const auto& f : flags_) {
    std::string lhs = "  " + (f.alias.empty() ? "" : f.alias + ", ") + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
    if (lhs.size() < 34) lhs.resize(34, ' ');
    else lhs += "\n" + std::string(34, ' ');
    out += lhs + f.help + "\n";
  }
  return out;
}

Status ParseInt(const std::string& flag, const std::string& v, long long lo, long long hi, int* out) {
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno) return InvalidArgument(flag + " expects an integer, got '" + v + "'");
  if (x < lo || x > hi) return InvalidArgument(flag + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  *out = static_cast<int>(x);
  return Status::Ok();
}

Status ParseU64(const std::string& flag, const std::string& v, unsigned long long* out) {
  errno = 0;
  char* end = nullptr;
  unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end || errno) return InvalidArgument(flag + " expects a non-negative integer, got '" + v + "'");
  *out = x;
  return Status::Ok();
}

Status ParsePath(const std::string& flag, const std::string& v, std::string* out) {
  if (v.empty()) return InvalidArgument(flag + " needs a path; it was given an empty one");
  *out = v;
  return Status::Ok();
}

Status ParseFloat(const std::string& flag, const std::string& v, double lo, double hi, float* out) {
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || errno || !std::isfinite(x)) return InvalidArgument(flag + " expects a number, got '" + v + "'");
  if (x < lo || x > hi) return InvalidArgument(flag + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  *out = static_cast<float>(x);
  return Status::Ok();
}

}  // namespace ixc::cli
