// Runs the ixc binary from the CLI tests.
#pragma once

#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace ixc::testing {

struct CliRun {
  int code;         // exit status (-1 when killed by a signal)
  std::string out;  // stdout, plus stderr when asked for
};

// `env` is prepended to the command line (e.g. "IXC_MODEL=/x").
inline CliRun RunIxc(const std::string& args, bool with_stderr = true, const std::string& env = "") {
  const std::string cmd = env + " " + std::string(IXC_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace ixc::testing
