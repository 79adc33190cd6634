// The admission gate (admission.hpp) and the cycle's wait for it
// (RefreshCycle with admit_first): when every session is due at once, only
// the admitted ones hold a loaded file and a built request.

#include <catch2/catch.hpp>

#include <deque>
#include <memory>
#include <vector>

#include "cycle_driver.hpp"
#include "sessiond/admission.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using namespace cycle_test;

TEST_CASE("admission queue: at most its slots held, most urgent first, ties in order",
          "[coldstart]") {
  AdmissionQueue<int> q(2);
  q.push(50, 1);
  q.push(10, 2);
  q.push(10, 3);
  q.push(5, 4);
  auto first = q.take_ready();
  REQUIRE(first.size() == 2);
  CHECK(first[0].payload == 4);
  CHECK(first[1].payload == 2);
  CHECK(q.held() == 2);
  CHECK(q.queued() == 2);
  CHECK(q.take_ready().empty());  // full
  q.release();
  auto next = q.take_ready();
  REQUIRE(next.size() == 1);
  CHECK(next[0].payload == 3);  // same priority as 2: in request order
  q.release();
  q.release();
  auto last = q.take_ready();
  REQUIRE(last.size() == 1);
  CHECK(last[0].payload == 1);
  CHECK(q.held() == 1);
  CHECK(q.queued() == 0);
  CHECK(AdmissionQueue<int>(0).slots() == 1);  // never zero: nothing would ever start
}

TEST_CASE("admission gate: a slot given back admits the next waiter; stop drops the waiters",
          "[coldstart]") {
  AdmissionGate gate(1);
  std::vector<AdmissionSlot> got(3);
  std::vector<int> order;
  for (int i = 0; i < 3; ++i)
    gate.request(100 - i, [&, i](AdmissionSlot s) {
      got[i] = std::move(s);
      order.push_back(i);
    });
  // The first asked while the slot was free: admitted at once, in request().
  REQUIRE(order == std::vector<int>{0});
  CHECK(got[0] != nullptr);
  CHECK(gate.held() == 1);
  CHECK(gate.queued() == 2);
  AdmissionSlot copy = got[0];
  got[0].reset();
  CHECK(order.size() == 1);  // a copy still holds it
  copy.reset();
  REQUIRE(order == std::vector<int>{0, 2});  // 2 is more urgent than 1
  CHECK(gate.held() == 1);
  gate.stop();
  CHECK(gate.queued() == 0);
  got[2].reset();
  CHECK(order.size() == 2);  // 1 was dropped, never admitted
  gate.request(0, [&](AdmissionSlot) { order.push_back(9); });
  CHECK(order.size() == 2);  // stopped: nothing is admitted any more
}

TEST_CASE("admission gate: the end of a backlog is told once, when its last waiter is admitted",
          "[coldstart]") {
  int ends = 0;
  AdmissionGate gate(2, [&] { ++ends; });
  std::deque<AdmissionSlot> held;
  auto ask = [&] { gate.request(0, [&](AdmissionSlot s) { held.push_back(std::move(s)); }); };
  // Given back outside the container: the grant it causes appends to it.
  auto give_back_one = [&] {
    AdmissionSlot s = std::move(held.front());
    held.pop_front();
    s.reset();
  };
  ask();
  ask();
  give_back_one();
  give_back_one();  // two at once, never a waiter: no backlog
  CHECK(ends == 0);
  for (int i = 0; i < 5; ++i) ask();  // three wait
  CHECK(gate.queued() == 3);
  give_back_one();  // admits one: two still wait
  give_back_one();
  CHECK(ends == 0);
  give_back_one();  // the last waiter admitted
  CHECK(ends == 1);
  CHECK(gate.queued() == 0);
  while (!held.empty()) give_back_one();
  CHECK(ends == 1);  // once per backlog
  CHECK(gate.held() == 0);
}

TEST_CASE("admission gate: a slot may outlive its gate", "[coldstart]") {
  AdmissionSlot kept;
  {
    AdmissionGate gate(1);
    gate.request(0, [&](AdmissionSlot s) { kept = std::move(s); });
    gate.request(0, [](AdmissionSlot) { FAIL("admitted after the gate is gone"); });
  }
  kept.reset();  // gives back to the gate's state, which the slot kept alive
  SUCCEED();
}

TEST_CASE("admission slots: enough for the requests in flight and those loading or saving",
          "[coldstart]") {
  CHECK(admission_slots(64) == 256);
  CHECK(admission_slots(1) == 64);
}

// A gate of one slot, held by another session; this session is due (its last
// refresh 20 minutes ago) and its timer has fired: it waits for admission.
struct WaitingForTheOnlySlot {
  WaitingForTheOnlySlot() {
    d.site->admit_first = true;
    d.gate = &gate;
    gate.request(0, [&](AdmissionSlot s) { other = std::move(s); });
    d.write(session_doc(d.wall0 - 20min));
    d.start();
    d.fire();
  }
  Driver d;
  AdmissionGate gate{1};
  AdmissionSlot other;  // the other session's slot
};

TEST_CASE_METHOD(WaitingForTheOnlySlot,
                 "cycle: with admit_first a due session reads its file only once admitted",
                 "[coldstart][cycle]") {
  CHECK(d.count("Admit") == 1);
  CHECK(d.count("Load") == 0);  // no document while it waits
  CHECK(d.http.empty());
  CHECK(d.grants.empty());
  CHECK(d.status().refreshing);
  CHECK(gate.queued() == 1);
  other.reset();
  REQUIRE(d.grants.size() == 1);
  d.admit();
  CHECK(d.count("Load") == 1);
  REQUIRE(d.http.size() == 1);
  CHECK(gate.held() == 1);  // held through the check, the refresh and the save
  d.refresh_ok("s1");
  CHECK(d.report().outcome == CycleOutcome::success);
  CHECK(d.read()["cookies"][0]["value"] == "s1");
  CHECK(gate.held() == 0);  // given back when the cycle ended
  CHECK_FALSE(d.status().refreshing);
}

TEST_CASE("cycle: without a gate, admit_first admits at once and refreshes as before",
          "[coldstart][cycle]") {
  Driver d;
  d.site->admit_first = true;
  d.write(session_doc(d.wall0 - 20min));
  d.start();
  d.fire();
  d.admit();
  d.refresh_ok("s1");
  CHECK(d.report().outcome == CycleOutcome::success);
  CHECK(d.count("Load") == 1);
}

TEST_CASE_METHOD(WaitingForTheOnlySlot,
                 "cycle: a drain or a removal while waiting for admission ends the wait at once",
                 "[coldstart][cycle]") {
  const bool drain = GENERATE(true, false);
  REQUIRE(d.count("Admit") == 1);
  if (drain) {
    d.drain();
    CHECK(d.drained == 1);  // not after the sessions ahead of it
    CHECK(d.report().outcome == CycleOutcome::shutting_down);
  } else {
    d.remove();
    CHECK(d.left == 1);
    CHECK(d.report().outcome == CycleOutcome::removed);
  }
  CHECK_FALSE(d.status().refreshing);
  // Its turn comes later: ignored, and the slot goes back at once.
  other.reset();
  REQUIRE(d.grants.size() == 1);
  d.admit();
  CHECK(d.count("Load") == 0);
  CHECK(d.http.empty());
  CHECK(gate.held() == 0);
}

TEST_CASE(
    "coldstart: sessions all due at once load their files a few at a time, most urgent first, "
    "and every one is refreshed",
    "[coldstart]") {
  constexpr std::size_t kSlots = 3;
  constexpr int kUnknown = 8;  // no keepalive block: the bot's files at a first start
  constexpr int kKnown = 4;    // refreshed long ago: past their idle deadline
  AdmissionGate gate(kSlots);
  std::vector<std::unique_ptr<Driver>> sessions;
  for (int i = 0; i < kUnknown + kKnown; ++i) {
    auto d = std::make_unique<Driver>();
    d->id = "0912000" + std::to_string(1000 + i);
    d->path = session_path(d->dir, d->id);
    d->site->admit_first = true;
    d->gate = &gate;
    // The known ones: 40, 30, 20, 11 minutes since their last refresh.
    const int known_ages[kKnown] = {40, 30, 20, 11};
    const int known = i - kUnknown;
    d->write(known >= 0 ? session_doc(d->wall0 - std::chrono::minutes(known_ages[known]))
                        : session_doc(std::nullopt));
    d->start();
    REQUIRE(d->schedules.size() == 1);
    sessions.push_back(std::move(d));
  }
  // Every timer fires (the unknown ones first), without the clock moving.
  for (auto& d : sessions) d->tick(d->schedules.back().gen);

  std::vector<int> admitted;  // in the order their files were read
  std::size_t most_loaded = 0;
  auto loaded_now = [&] {
    std::size_t n = 0;
    for (auto& d : sessions) n += d->count("Load") - d->reports.size();
    return n;
  };
  for (int round = 0; round < 100; ++round) {
    bool moved = false;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      auto& d = *sessions[i];
      while (!d.grants.empty()) {
        d.admit();
        admitted.push_back(static_cast<int>(i));
        moved = true;
      }
    }
    most_loaded = std::max(most_loaded, loaded_now());
    CHECK(gate.held() <= kSlots);
    // One session answers per round: the others stay loaded meanwhile.
    for (auto& d : sessions) {
      if (d->http.empty()) continue;
      d->refresh_ok("new");
      moved = true;
      break;
    }
    if (!moved) break;
  }
  CHECK(most_loaded == kSlots);
  CHECK(gate.held() == 0);
  CHECK(gate.queued() == 0);
  for (auto& d : sessions) {
    REQUIRE(d->reports.size() == 1);
    CHECK(d->report().outcome == CycleOutcome::success);
    CHECK(d->count("Load") == 1);
  }
  // The first three asked while slots were free; then the known sessions by
  // idle deadline (the oldest last refresh first), then the rest in order.
  REQUIRE(admitted.size() == sessions.size());
  CHECK(std::vector<int>(admitted.begin(), admitted.begin() + 3) == std::vector<int>{0, 1, 2});
  CHECK(std::vector<int>(admitted.begin() + 3, admitted.begin() + 7) ==
        std::vector<int>{8, 9, 10, 11});
  CHECK(std::vector<int>(admitted.begin() + 7, admitted.end()) == std::vector<int>{3, 4, 5, 6, 7});
}
