// EventBus: ids, the ring and Last-Event-ID resumption, filters, slow
// subscribers dropped without blocking the publisher, many subscribers; the
// wire format (JSON, SSE) and GET /events's request parsing.

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "event_stream.hpp"
#include "sessiond/events.hpp"
#include "sessiond/metrics.hpp"

using namespace sessiond;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

SessionEvent event(const std::string& type, const std::string& session = "09120000001") {
  SessionEvent e;
  e.type = type;
  e.session = session;
  e.previous_state = "active";
  e.state = "invalid";
  e.reason = "logged out";
  return e;
}

std::vector<std::uint64_t> ids(const std::vector<SessionEvent>& events) {
  std::vector<std::uint64_t> out;
  for (const auto& e : events) out.push_back(e.id);
  return out;
}

// Everything queued for `sub` now (it never waits when events are queued).
std::vector<SessionEvent> drain(EventSubscription& sub) {
  std::vector<SessionEvent> out;
  for (int i = 0; i < 1000; ++i) {
    auto batch = sub.wait(0ms, 100);
    if (batch.empty()) break;
    out.insert(out.end(), batch.begin(), batch.end());
  }
  return out;
}

EventBus::Options options(std::size_t ring, std::uint64_t first_id = 1) {
  EventBus::Options o;
  o.ring_capacity = ring;
  o.first_id = first_id;
  o.now = [] { return WallTime(std::chrono::milliseconds(1800000000123)); };
  return o;
}

}  // namespace

TEST_CASE("an event's JSON and SSE frame", "[events]") {
  auto e = event("logged_out");
  e.id = 42;
  e.time = WallTime(std::chrono::milliseconds(1800000000123));
  auto j = to_json(e);
  CHECK(j == json{{"id", 42},
                  {"time", "2027-01-15T08:00:00.123Z"},
                  {"type", "logged_out"},
                  {"session", "09120000001"},
                  {"previousState", "active"},
                  {"state", "invalid"},
                  {"reason", "logged out"}});
  e.reason = "two\nlines";  // data must stay one line
  auto frame = to_sse(e);
  CHECK(frame.rfind("id: 42\nevent: logged_out\ndata: {", 0) == 0);
  CHECK(frame.substr(frame.size() - 3) == "}\n\n");
  CHECK(std::count(frame.begin(), frame.end(), '\n') == 4);
}

TEST_CASE("ids increase from first_id; time is stamped by the bus", "[events]") {
  EventBus bus(options(10, 500));
  CHECK(bus.last_id() == 499);
  CHECK(bus.publish(event("registered")) == 500);
  CHECK(bus.publish(event("at_risk")) == 501);
  CHECK(bus.last_id() == 501);
  auto sub = bus.subscribe({}, 499, 10);
  auto got = drain(*sub);
  CHECK(ids(got) == std::vector<std::uint64_t>{500, 501});
  CHECK(got[0].time == WallTime(std::chrono::milliseconds(1800000000123)));
}

TEST_CASE("Last-Event-ID resumes from the ring; a gap or a foreign id is a reset", "[events]") {
  EventBus bus(options(3));
  for (int i = 0; i < 5; ++i) bus.publish(event("at_risk"));  // ids 1-5; ring 3-5
  SECTION("within the ring") {
    auto sub = bus.subscribe({}, 3, 10);
    CHECK(ids(drain(*sub)) == std::vector<std::uint64_t>{4, 5});
    bus.publish(event("recovered"));
    CHECK(ids(drain(*sub)) == std::vector<std::uint64_t>{6});
  }
  SECTION("the oldest missed event is still there") {
    auto sub = bus.subscribe({}, 2, 10);
    CHECK(ids(drain(*sub)) == std::vector<std::uint64_t>{3, 4, 5});
  }
  SECTION("up to date") {
    auto sub = bus.subscribe({}, 5, 10);
    CHECK(drain(*sub).empty());
  }
  SECTION("no Last-Event-ID: new events only") {
    auto sub = bus.subscribe({}, std::nullopt, 10);
    CHECK(drain(*sub).empty());
    bus.publish(event("recovered"));
    CHECK(ids(drain(*sub)) == std::vector<std::uint64_t>{6});
  }
  SECTION("events were lost: reset, then new events only") {
    auto sub = bus.subscribe({}, 1, 10);
    auto got = drain(*sub);
    REQUIRE(got.size() == 1);
    CHECK(got[0].type == "reset");
    CHECK(got[0].id == 5);  // a reconnection after it resumes from here
    CHECK(got[0].reason.find("no longer buffered") != std::string::npos);
    bus.publish(event("recovered"));
    CHECK(ids(drain(*sub)) == std::vector<std::uint64_t>{6});
  }
  SECTION("an id from the future (another process, a restart): reset") {
    auto sub = bus.subscribe({}, 99, 10);
    auto got = drain(*sub);
    REQUIRE(got.size() == 1);
    CHECK(got[0].type == "reset");
    CHECK(got[0].reason.find("not from this process") != std::string::npos);
  }
  SECTION("no ring at all: any resumption that missed something is a reset") {
    EventBus none(options(0));
    none.publish(event("at_risk"));
    CHECK(drain(*none.subscribe({}, 1, 10)).empty());
    CHECK(drain(*none.subscribe({}, 0, 10)).at(0).type == "reset");
  }
}

TEST_CASE("a type filter applies to the backlog and to new events", "[events]") {
  EventBus bus(options(100));
  bus.publish(event("registered"));
  bus.publish(event("logged_out"));
  bus.publish(event("at_risk"));
  auto sub = bus.subscribe(parse_type_filter("logged_out,at_risk"), 0, 10);
  auto got = drain(*sub);
  REQUIRE(got.size() == 2);
  CHECK(got[0].type == "logged_out");
  CHECK(got[1].type == "at_risk");
  bus.publish(event("recovered"));
  bus.publish(event("logged_out"));
  got = drain(*sub);
  REQUIRE(got.size() == 1);
  CHECK(got[0].type == "logged_out");
  CHECK(got[0].id == 5);
}

TEST_CASE("parse_type_filter: names, empty parts, unknown names", "[events]") {
  CHECK(parse_type_filter("").empty());
  CHECK(parse_type_filter("logged_out,,invalidated,") == TypeFilter{"logged_out", "invalidated"});
  for (const char* t : kEventTypes) CHECK(parse_type_filter(t) == TypeFilter{t});
  CHECK_THROWS_WITH(parse_type_filter("logged_out,loggedout"), Catch::Contains("loggedout"));
  CHECK_THROWS_AS(parse_type_filter("reset"), std::invalid_argument);
}

TEST_CASE("a slow subscriber is dropped, never blocks the publisher, and is counted", "[events]") {
  Metrics metrics{MetricsConfig{}};
  auto o = options(100);
  o.metrics = &metrics;
  EventBus bus(o);
  auto slow = bus.subscribe({}, std::nullopt, 5);  // never reads
  auto fast = bus.subscribe({}, std::nullopt, 5);
  CHECK(metrics.event_subscribers() == 2);
  // The fast one reads as it goes; the slow one's queue overflows at the 6th.
  auto started = std::chrono::steady_clock::now();
  std::size_t fast_got = 0;
  for (int i = 0; i < 50; ++i) {
    bus.publish(event("at_risk"));
    fast_got += drain(*fast).size();
  }
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  CHECK(fast_got == 50);
  CHECK_FALSE(fast->dropped());
  CHECK(slow->dropped());
  CHECK(slow->closed());
  CHECK(slow->wait(1s).empty());  // at once: nothing more comes
  CHECK(bus.subscribers() == 1);
  CHECK(metrics.event_subscribers() == 1);
  CHECK(metrics.event_subscribers_dropped() == 1);
  CHECK(metrics.events("at_risk") == 50);
  // A backlog from the ring is no slowness: 100 queued with a limit of 5.
  auto resumed = bus.subscribe({}, 0, 5);
  bus.publish(event("recovered"));
  CHECK_FALSE(resumed->dropped());
  CHECK(drain(*resumed).size() == 51);  // the ring's last 50... and the new one
}

TEST_CASE("close, close_all and a released subscription unsubscribe", "[events]") {
  Metrics metrics{MetricsConfig{}};
  auto o = options(10);
  o.metrics = &metrics;
  EventBus bus(o);
  auto a = bus.subscribe({}, std::nullopt, 10);
  auto b = bus.subscribe({}, std::nullopt, 10);
  auto c = bus.subscribe({}, std::nullopt, 10);
  CHECK(bus.subscribers() == 3);
  a->close();
  CHECK(a->closed());
  CHECK_FALSE(a->dropped());
  CHECK(bus.subscribers() == 2);
  c.reset();  // the holder went away
  CHECK(bus.subscribers() == 1);
  CHECK(metrics.event_subscribers() == 1);
  // A reader waiting on b returns at once when everything closes.
  std::atomic<bool> returned{false};
  std::thread reader([&] {
    b->wait(10s);
    returned = true;
  });
  std::this_thread::sleep_for(50ms);  // let it block (the test holds if it did not yet)
  auto started = std::chrono::steady_clock::now();
  bus.close_all();
  reader.join();
  CHECK(returned);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  CHECK(bus.subscribers() == 0);
  CHECK(metrics.event_subscribers() == 0);
  bus.publish(event("at_risk"));  // nobody left: fine
}

TEST_CASE("many subscribers on their own threads each get every event in order", "[events]") {
  EventBus bus(options(10000));
  constexpr int kSubscribers = 50;
  constexpr int kEvents = 2000;
  std::vector<std::shared_ptr<EventSubscription>> subs;
  for (int i = 0; i < kSubscribers; ++i) subs.push_back(bus.subscribe({}, std::nullopt, kEvents));
  std::vector<std::vector<std::uint64_t>> got(kSubscribers);
  std::vector<std::thread> readers;
  for (int i = 0; i < kSubscribers; ++i)
    readers.emplace_back([&, i] {
      auto deadline = std::chrono::steady_clock::now() + 20s;
      while (got[i].size() < static_cast<std::size_t>(kEvents) &&
             std::chrono::steady_clock::now() < deadline)
        for (const auto& e : subs[i]->wait(100ms)) got[i].push_back(e.id);
    });
  for (int i = 0; i < kEvents; ++i) bus.publish(event(i % 2 ? "at_risk" : "recovered"));
  for (auto& t : readers) t.join();
  for (int i = 0; i < kSubscribers; ++i) {
    REQUIRE(got[i].size() == static_cast<std::size_t>(kEvents));
    CHECK(std::is_sorted(got[i].begin(), got[i].end()));
    CHECK(got[i].front() == 1);
    CHECK(got[i].back() == kEvents);
  }
}

TEST_CASE("GET /events request: types, Last-Event-ID header or parameter", "[events]") {
  std::string error;
  auto r = parse_event_stream_request(std::nullopt, "", std::nullopt, error);
  REQUIRE(r);
  CHECK(r->types.empty());
  CHECK_FALSE(r->after_id);
  r = parse_event_stream_request(std::string("logged_out,at_risk"), "17", std::string("3"), error);
  REQUIRE(r);
  CHECK(r->types == TypeFilter{"logged_out", "at_risk"});
  CHECK(r->after_id == 17u);  // the header wins
  r = parse_event_stream_request(std::nullopt, "", std::string("3"), error);
  REQUIRE(r);
  CHECK(r->after_id == 3u);
  CHECK_FALSE(parse_event_stream_request(std::string("bogus"), "", std::nullopt, error));
  CHECK(error.find("bogus") != std::string::npos);
  for (const char* bad : {"-1", "abc", "1 2", "99999999999999999999999"}) {
    error.clear();
    CHECK_FALSE(parse_event_stream_request(std::nullopt, bad, std::nullopt, error));
    CHECK_FALSE(error.empty());
  }
}
