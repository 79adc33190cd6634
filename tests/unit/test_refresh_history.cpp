// RefreshHistory: refresh outcomes per minute over the last hour, with a
// clock the test moves.

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "sessiond/refresh_history.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

struct FakeClock {
  WallTime now = WallTime(std::chrono::seconds(1800000000));  // a whole minute
  RefreshHistory::Clock fn() {
    return [this] { return now; };
  }
};

}  // namespace

TEST_CASE("refresh history: counts per minute, oldest first, current minute last",
          "[refresh_history]") {
  FakeClock clock;
  RefreshHistory h(clock.fn());
  auto empty = h.last_hour();
  REQUIRE(empty.size() == RefreshHistory::kMinutes);
  for (const auto& m : empty) CHECK(m.total() == 0);
  CHECK(empty.back().start == clock.now);
  CHECK(empty.front().start == clock.now - 59min);

  h.record(RefreshResult::success);
  h.record(RefreshResult::success);
  h.record(RefreshResult::transient_error);
  clock.now += 59s;  // same minute
  h.record(RefreshResult::logged_out);
  auto rows = h.last_hour();
  CHECK(rows.back().success == 2);
  CHECK(rows.back().transient_error == 1);
  CHECK(rows.back().logged_out == 1);
  CHECK(rows.back().total() == 4);
  CHECK(rows.back().failures() == 2);

  clock.now += 1s;  // the next minute
  h.record(RefreshResult::success);
  rows = h.last_hour();
  CHECK(rows.back().total() == 1);
  CHECK(rows[58].total() == 4);
}

TEST_CASE("refresh history: a minute an hour old rolls out and its bucket is reused",
          "[refresh_history]") {
  FakeClock clock;
  RefreshHistory h(clock.fn());
  for (int i = 0; i < 5; ++i) h.record(RefreshResult::success);

  clock.now += 59min;  // still inside the hour: the first entry
  auto rows = h.last_hour();
  CHECK(rows.front().total() == 5);
  CHECK(rows.back().total() == 0);

  clock.now += 1min;  // an hour later: gone, though nothing was recorded since
  rows = h.last_hour();
  for (const auto& m : rows) CHECK(m.total() == 0);

  // The same ring slot, an hour later: starts from zero.
  h.record(RefreshResult::transient_error);
  rows = h.last_hour();
  CHECK(rows.back().total() == 1);
  CHECK(rows.back().success == 0);

  // Long idle gaps (days) leave nothing behind either.
  clock.now += 24h * 3 + 30s;
  rows = h.last_hour();
  for (const auto& m : rows) CHECK(m.total() == 0);
}

TEST_CASE("refresh history: records from many threads are all counted", "[refresh_history]") {
  RefreshHistory h;  // the real clock: a minute may roll over mid-test
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.record(RefreshResult::success);
    });
  for (auto& t : threads) t.join();
  std::uint64_t total = 0;
  for (const auto& m : h.last_hour()) total += m.total();
  CHECK(total == 40000);
}
