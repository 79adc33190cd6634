#include "sessiond/answer_window.hpp"

#include <algorithm>

namespace sessiond {

namespace {
std::size_t eighth(std::size_t n) {
  return std::max<std::size_t>(1, n / 8);
}
}  // namespace

AnswerWindow::AnswerWindow(std::size_t min, std::size_t max, Clock::duration target)
    : min_(std::max<std::size_t>(1, std::min(min, max))),
      max_(std::max<std::size_t>(1, max)),
      target_(target),
      limit_(max_) {}

void AnswerWindow::settled(Clock::duration lag, Clock::time_point now) {
  if (target_ <= Clock::duration::zero()) return;
  if (lag > target_) {
    fast_in_row_ = 0;
    if (last_shrink_ != Clock::time_point{} && now - last_shrink_ < target_) return;
    last_shrink_ = now;
    limit_ = std::max(min_, limit_ - std::min(limit_, eighth(limit_)));
    return;
  }
  if (lag * 2 > target_) return;  // in between: hold
  if (++fast_in_row_ < limit_) return;
  fast_in_row_ = 0;
  limit_ = std::min(max_, limit_ + eighth(limit_));
}

}  // namespace sessiond
