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

// The request's stages (media decoded, views encoded k/n, prompt prefilled with tokens/s) on one stderr line that
// is cleared when the answer starts; drawn only on a terminal and never with --json.
class ChatProgressLine {
 public:
  explicit ChatProgressLine(bool enabled);
  static ChatProgressLine Terminal(bool wanted);  // enabled when wanted and stderr is a terminal
  ~ChatProgressLine();  // clears the line

  // For ChatRequest::progress (empty when disabled).
  ChatProgressCallback callback();
  // Wraps the text callback so the line is cleared before the first piece is written.
  TextCallback Wrap(TextCallback on_text);
  void Clear();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ixc::cli
