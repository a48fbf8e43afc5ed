// The load progress bar: drawn on stderr when stderr is a terminal, nothing at all otherwise (pipes, logs, tests).
#pragma once

#include <memory>

#include "ixc/ixc.h"

namespace ixc::cli {

class LoadProgressBar {
 public:
  // `enabled`: draw at all (callers pass isatty(stderr)); Terminal() decides it for them.
  explicit LoadProgressBar(bool enabled);
  static LoadProgressBar Terminal();
  ~LoadProgressBar();  // clears the bar's line
  LoadProgressBar(LoadProgressBar&&) = default;
  LoadProgressBar& operator=(LoadProgressBar&&) = delete;

  // The callback to put in LoadOptions::progress (empty when disabled, so the library skips it).
  LoadProgress callback();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ixc::cli
