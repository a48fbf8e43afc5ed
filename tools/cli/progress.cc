#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace ixc::cli {

struct LoadProgressBar::State {
  bool drawn = false;
  std::string stage;
  int percent = -1;
};

LoadProgressBar::LoadProgressBar(bool enabled) : state_(enabled ? std::make_shared<State>() : nullptr) {}

LoadProgressBar LoadProgressBar::Terminal() { return LoadProgressBar(isatty(fileno(stderr)) == 1); }

LoadProgressBar::~LoadProgressBar() {
  if (state_ && state_->drawn) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
}

LoadProgress LoadProgressBar::callback() {
  if (!state_) return {};
  std::shared_ptr<State> s = state_;
  return [s](std::string_view stage, double fraction) {
    constexpr int kWidth = 30;
    const int percent = fraction <= 0 ? 0 : fraction >= 1 ? 100 : static_cast<int>(fraction * 100);
    if (stage == s->stage && percent == s->percent) return;  // redraw only on visible change
    s->stage = std::string(stage);
    s->percent = percent;
    s->drawn = true;
    const int filled = percent * kWidth / 100;
    std::fprintf(stderr, "\r\033[K%-26s [%s%s] %3d%%", s->stage.c_str(), std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), percent);
    std::fflush(stderr);
  };
}

struct ChatProgressLine::State {
  bool drawn = false;
  std::string last;
};

ChatProgressLine::ChatProgressLine(bool enabled) : state_(enabled ? std::make_shared<State>() : nullptr) {}

ChatProgressLine ChatProgressLine::Terminal(bool wanted) {
  return ChatProgressLine(wanted && isatty(fileno(stderr)) == 1);
}

ChatProgressLine::~ChatProgressLine() { Clear(); }

void ChatProgressLine::Clear() {
  if (state_ && state_->drawn) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    state_->drawn = false;
    state_->last.clear();
  }
}

namespace {

std::string Bar(int64_t done, int64_t total) {
  constexpr int kWidth = 24;
  const int filled = total > 0 ? static_cast<int>(std::min<int64_t>(done, total) * kWidth / total) : 0;
  return "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "]";
}

}  // namespace

ChatProgressCallback ChatProgressLine::callback() {
  if (!state_) return {};
  std::shared_ptr<State> s = state_;
  return [s](const ChatProgress& p) {
    char buf[160];
    switch (p.stage) {
      case ChatProgress::Stage::kMedia:
        std::snprintf(buf, sizeof buf, "media %lld/%lld decoded", (long long)p.item, (long long)p.items);
        break;
      case ChatProgress::Stage::kEncode:
        std::snprintf(buf, sizeof buf, "image %lld/%lld: views encoded %lld/%lld %s %.1f s", (long long)p.item,
                      (long long)p.items, (long long)p.done, (long long)p.total, Bar(p.done, p.total).c_str(),
                      p.elapsed_s);
        break;
      case ChatProgress::Stage::kPrefill:
        std::snprintf(buf, sizeof buf, "prompt %lld/%lld tokens %s %.1f tokens/s", (long long)p.done,
                      (long long)p.total, Bar(p.done, p.total).c_str(),
                      p.elapsed_s > 0 ? p.done / p.elapsed_s : 0.0);
        break;
    }
    if (s->last == buf) return;
    s->last = buf;
    s->drawn = true;
    std::fprintf(stderr, "\r\033[K%s", buf);
    std::fflush(stderr);
  };
}

TextCallback ChatProgressLine::Wrap(TextCallback on_text) {
  if (!state_) return on_text;
  std::shared_ptr<State> s = state_;
  return [s, on_text](std::string_view piece) {
    if (s->drawn) {
      std::fputs("\r\033[K", stderr);
      std::fflush(stderr);
      s->drawn = false;
      s->last.clear();
    }
    return on_text ? on_text(piece) : true;
  };
}

}  // namespace ixc::cli
