#include "progress.h"

#include <unistd.h>

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

}  // namespace ixc::cli
