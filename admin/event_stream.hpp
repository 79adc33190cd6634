#pragma once
// GET /events: the session event stream as Server-Sent Events on one of
// cpp-httplib's threads. Each stream holds an EventBus subscription and a
// thread of the server's pool for as long as the client stays, so their
// number is capped (max_subscribers; the server's pool has that many threads
// more than the other routes need, so streams never starve them).

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sessiond/events.hpp"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace sessiond {

struct EventStreamOptions {
  std::chrono::milliseconds heartbeat{15000};  // ": heartbeat" comment interval
  std::size_t max_subscribers = 64;            // more: 503 with Retry-After
  std::size_t queue_limit = 1000;              // events behind before a stream is dropped
};

// What GET /events asked for: ?types=, Last-Event-ID (header, or
// ?last_event_id= for clients that cannot set headers). Plain, unit-tested.
struct EventStreamRequest {
  TypeFilter types;
  std::optional<std::uint64_t> after_id;
};
// nullopt and `error` set: a 400 with that message.
std::optional<EventStreamRequest> parse_event_stream_request(
    const std::optional<std::string>& types, const std::string& last_event_id_header,
    const std::optional<std::string>& last_event_id_param, std::string& error);

class EventStream {
 public:
  EventStream(std::shared_ptr<EventBus> bus, EventStreamOptions options);
  // GET /events: answers 400 or 503 at once, else streams until the client
  // goes, the stream is dropped as too slow, or close_all().
  void serve(const httplib::Request& req, httplib::Response& res);
  // Shutdown: every stream ends at once (before the server joins its threads).
  void close_all();
  std::size_t active() const { return active_.load(); }
  const EventStreamOptions& options() const { return options_; }

 private:
  std::shared_ptr<EventBus> bus_;
  EventStreamOptions options_;
  std::atomic<std::size_t> active_{0};
  std::atomic<bool> closing_{false};
  std::mutex mutex_;
  std::vector<std::weak_ptr<EventSubscription>> streams_;
};

}  // namespace sessiond
