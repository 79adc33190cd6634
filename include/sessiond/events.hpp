#pragma once
// The event stream: one event per session state change that matters to the
// login bot or an operator (registered, removed, logged_out, invalidated,
// at_risk, recovered, file_error, failed, paused, resumed), derived from two
// successive statuses of a session by a plain function, and one EventBus per
// process that numbers them, keeps the last N for resumption (SSE
// Last-Event-ID) and hands them to subscribers. The status board actor
// publishes; subscribers (GET /events, hooks) read on their own threads.
// Publishing never waits for a subscriber: each has a bounded queue, and one
// that falls behind is dropped. No CAF, no HTTP here.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/config.hpp"
#include "sessiond/session_status.hpp"

namespace sessiond {

class Metrics;

struct SessionEvent {
  std::uint64_t id = 0;  // filled by EventBus::publish
  WallTime time{};       // filled by EventBus::publish
  std::string type;      // one of kEventTypes, or "reset" (stream control, see EventBus)
  std::string site;      // the session's site ("" in single-site tests)
  std::string session;
  std::string previous_state;  // "" for registered
  std::string state;           // "" for removed
  std::string reason;          // never a secret (status texts are secret-free)
};

// Every event type, in the order of the README.
inline const char* const kEventTypes[] = {"registered", "removed",   "logged_out", "invalidated",
                                          "at_risk",    "recovered", "file_error", "failed",
                                          "paused",     "resumed"};
bool valid_event_type(const std::string& type);

// {"id":N,"time":"RFC 3339 ms","type":...,"session":...,"previousState":...,
//  "state":...,"reason":...}
nlohmann::json to_json(const SessionEvent& e);
// One Server-Sent Events frame: "id: N\nevent: TYPE\ndata: JSON\n\n".
std::string to_sse(const SessionEvent& e);

// -- derivation (session_events.cpp) ------------------------------------------

// The events of one status update: `before` is the status the board held
// (nullptr: the session is new), `after` the new one. A refresh that changes
// only counts and times gives none. `mode` names what --on-logged-out did to
// a logged-out session's file (the invalidated event's reason).
std::vector<SessionEvent> derive_events(const SessionStatus* before, const SessionStatus& after,
                                        OnLoggedOut mode);
// The session is unregistered (its file is gone, DELETE): `last` its last status.
SessionEvent removed_event(const SessionStatus& last);

// -- the bus (event_bus.cpp) --------------------------------------------------

// Which types a subscriber wants; empty = all.
using TypeFilter = std::set<std::string>;
// "logged_out,at_risk" -> the set; std::invalid_argument naming an unknown type.
TypeFilter parse_type_filter(const std::string& text);

class EventSubscription;

class EventBus {
 public:
  struct Options {
    std::size_t ring_capacity = 10000;  // events kept for resumption (--event-buffer)
    std::uint64_t first_id = 1;         // the daemon uses the start time in µs: ids keep
                                        // increasing across restarts
    Metrics* metrics = nullptr;         // sessiond_events_total, subscribers, dropped
    std::function<WallTime()> now = [] { return std::chrono::system_clock::now(); };
  };
  EventBus();
  explicit EventBus(Options options);
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // Numbers and stamps the event, keeps it in the ring, queues it for every
  // subscriber whose filter takes it. Never blocks on a subscriber: one whose
  // queue is full is dropped. Returns the id.
  std::uint64_t publish(SessionEvent e);

  // A new subscriber. after_id: the last id the client saw (Last-Event-ID):
  // the ring's later events are queued first; when some of them are no longer
  // in the ring (or the id is not one of this process's), a "reset" event
  // (id = the last id published, data says why) comes first instead and the
  // stream goes on with new events only: the client re-reads /status.
  // queue_limit: events queued beyond the initial backlog before the
  // subscriber counts as slow and is dropped.
  std::shared_ptr<EventSubscription> subscribe(TypeFilter filter,
                                               std::optional<std::uint64_t> after_id,
                                               std::size_t queue_limit);

  std::uint64_t last_id() const;  // 0: nothing published yet (or first_id - 1)
  std::size_t subscribers() const;
  // Closes every subscription (shutdown: waiting readers return at once).
  void close_all();

  struct Core;  // shared with the subscriptions (they may outlive the bus)

 private:
  std::shared_ptr<Core> core_;
};

class EventSubscription {
 public:
  // Up to `max` queued events, waiting up to `timeout` for the first one.
  // Empty on timeout, or at once when closed or dropped.
  std::vector<SessionEvent> wait(std::chrono::milliseconds timeout, std::size_t max = 256);
  std::optional<SessionEvent> wait_next(std::chrono::milliseconds timeout);
  // The publisher dropped it (its queue overflowed); no more events come.
  bool dropped() const;
  bool closed() const;  // close() was called (or the bus closed it); dropped implies closed
  void close();         // unsubscribes; a waiting reader returns
  ~EventSubscription();

  EventSubscription(std::weak_ptr<EventBus::Core> bus, TypeFilter filter, std::size_t limit);

 private:
  friend class EventBus;
  bool wants(const std::string& type) const;
  // Called with the bus mutex held; false: the queue is full (drop it).
  bool offer(const SessionEvent& e);
  void mark_dropped();

  std::weak_ptr<EventBus::Core> bus_;
  const TypeFilter filter_;
  std::size_t limit_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<SessionEvent> queue_;
  bool closed_ = false;
  bool dropped_ = false;
};

}  // namespace sessiond
