#include <catch2/catch.hpp>

#include <chrono>

#include "sessiond/answer_window.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {
const auto t0 = AnswerWindow::Clock::time_point{} + 1h;
}

TEST_CASE("answers settled late shrink the window by an eighth, once per target",
          "[answer_window]") {
  AnswerWindow w(4, 64, 3ms);
  CHECK(w.limit() == 64);
  w.settled(10ms, t0);
  CHECK(w.limit() == 56);
  // The same backlog's other late answers, within one target: counted once.
  w.settled(10ms, t0 + 1ms);
  w.settled(10ms, t0 + 2ms);
  CHECK(w.limit() == 56);
  w.settled(10ms, t0 + 3ms);
  CHECK(w.limit() == 49);
  // A long backlog ends at the minimum, never below.
  for (int i = 1; i <= 100; ++i) w.settled(10ms, t0 + 3ms + i * 3ms);
  CHECK(w.limit() == 4);
}

TEST_CASE("a window's worth of fast answers grows it by an eighth, up to the maximum",
          "[answer_window]") {
  AnswerWindow w(4, 64, 4ms);
  for (int i = 0; i < 100; ++i) w.settled(10ms, t0 + i * 4ms);
  REQUIRE(w.limit() == 4);
  for (int i = 0; i < 3; ++i) w.settled(1ms, t0 + 1s);
  CHECK(w.limit() == 4);
  w.settled(1ms, t0 + 1s);  // the fourth fast answer in a row at 4
  CHECK(w.limit() == 5);
  // One answer between target/2 and target holds the window: no growth, no shrink.
  for (int i = 0; i < 4; ++i) w.settled(3ms, t0 + 2s);
  CHECK(w.limit() == 5);
  // A late answer resets the count of fast ones.
  for (int i = 0; i < 4; ++i) w.settled(1ms, t0 + 3s);
  w.settled(10ms, t0 + 4s);
  CHECK(w.limit() == 4);
  for (int i = 0; i < 3; ++i) w.settled(1ms, t0 + 5s);
  CHECK(w.limit() == 4);
  for (int i = 0; i < 10000; ++i) w.settled(1ms, t0 + 6s);
  CHECK(w.limit() == 64);
}

TEST_CASE("target zero: the window stays at its maximum", "[answer_window]") {
  AnswerWindow w(4, 64, 0ms);
  for (int i = 0; i < 100; ++i) w.settled(1s, t0 + i * 1s);
  CHECK(w.limit() == 64);
}
