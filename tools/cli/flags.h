// A small declarative command-line parser: each option is declared once (name, value, help) and the help text
// is generated from the same table. Unknown flags and missing values are errors, never ignored.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ixc/status.h"

namespace ixc::cli {

struct Flag {
  std::string name;        // "--model"
  std::string alias;       // "-m" or ""
  std::string value_name;  // "DIR"; empty for switches
  std::string help;
  std::function<Status(const std::string& value)> set;
};

class FlagSet {
 public:
  void Add(Flag f) { flags_.push_back(std::move(f)); }
  // Parses argv[first..]; positional arguments are errors.
  Status Parse(int argc, char** argv, int first);
  std::string Help() const;

 private:
  std::vector<Flag> flags_;
};

// Value parsers with range checks and messages that name the flag.
Status ParseInt(const std::string& flag, const std::string& v, long long lo, long long hi, int* out);
Status ParseU64(const std::string& flag, const std::string& v, unsigned long long* out);
Status ParseFloat(const std::string& flag, const std::string& v, double lo, double hi, float* out);
// A path value; an empty one (`-m ""`, an unset shell variable) is an error rather than "not given".
Status ParsePath(const std::string& flag, const std::string& v, std::string* out);

}  // namespace ixc::cli
