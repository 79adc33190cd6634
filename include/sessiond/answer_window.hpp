#pragma once
// How many requests the HTTP client keeps open at once, a request being open
// from its start until its answer is settled: saved (the rename done) or
// found to need no save. A site that rotates credentials has already retired
// the old ones when its answer is sent, so every open request whose answer
// arrived is a session a kill -9 would log out (issue 11). The window keeps
// answers from waiting behind new work: an answer settled later than
// `target` after it arrived shrinks the window by an eighth (at most once per
// `target`, so one backlog counts once); a window's worth of answers settled
// within half the target grows it by an eighth. Delay-based, like TCP Vegas:
// on a remote site the round trip is outside the measured lag, so the window
// grows to whatever that round trip needs while the local backlog stays small.
//
// Plain class, time passed in: decisions unit-tested without threads.

#include <chrono>
#include <cstddef>

namespace sessiond {

class AnswerWindow {
 public:
  using Clock = std::chrono::steady_clock;
  // target zero: the window stays at `max` (no control).
  AnswerWindow(std::size_t min, std::size_t max, Clock::duration target);

  std::size_t limit() const { return limit_; }
  // One answer settled `lag` after it arrived, at `now`.
  void settled(Clock::duration lag, Clock::time_point now);

 private:
  std::size_t min_;
  std::size_t max_;
  Clock::duration target_;
  std::size_t limit_;
  std::size_t fast_in_row_ = 0;      // answers settled within target/2 since the last change
  Clock::time_point last_shrink_{};  // a backlog shrinks the window once per target
};

}  // namespace sessiond
