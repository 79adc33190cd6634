#include <algorithm>
#include <stdexcept>

#include "sessiond/events.hpp"
#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"

namespace sessiond {

bool valid_event_type(const std::string& type) {
  for (const char* t : kEventTypes)
    if (type == t) return true;
  return false;
}

nlohmann::json to_json(const SessionEvent& e) {
  nlohmann::json j = {
      {"id", e.id},           {"time", log::iso8601(e.time)},      {"type", e.type},
      {"session", e.session}, {"previousState", e.previous_state}, {"state", e.state},
      {"reason", e.reason}};
  if (!e.site.empty()) j["site"] = e.site;
  return j;
}

std::string to_sse(const SessionEvent& e) {
  // dump() escapes line breaks, so the data is one line, as SSE needs.
  return "id: " + std::to_string(e.id) + "\nevent: " + e.type + "\ndata: " + to_json(e).dump() +
         "\n\n";
}

TypeFilter parse_type_filter(const std::string& text) {
  TypeFilter out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string name = text.substr(start, comma - start);
    if (!name.empty()) {
      if (!valid_event_type(name)) {
        std::string all;
        for (const char* t : kEventTypes) all += (all.empty() ? "" : ", ") + std::string(t);
        throw std::invalid_argument("unknown event type \"" + name + "\" (expected " + all + ")");
      }
      out.insert(std::move(name));
    }
    start = comma + 1;
  }
  return out;
}

// -- EventBus -------------------------------------------------------------------

struct EventBus::Core {
  Options options;
  mutable std::mutex mutex;
  std::deque<SessionEvent> ring;
  std::uint64_t next_id = 1;
  // Weak: a subscription whose holder lets go of it unsubscribes itself.
  std::vector<std::weak_ptr<EventSubscription>> subscribers;

  void subscribers_changed() {
    if (options.metrics)
      options.metrics->set_event_subscribers(static_cast<double>(subscribers.size()));
  }
  // `s` (closed), and any subscription already destroyed.
  void remove(const EventSubscription* s) {
    // Released after the unlock: the last reference may run the destructor,
    // which comes back here.
    std::vector<std::shared_ptr<EventSubscription>> held;
    std::lock_guard<std::mutex> lock(mutex);
    auto before = subscribers.size();
    subscribers.erase(std::remove_if(subscribers.begin(), subscribers.end(),
                                     [&](const auto& w) {
                                       auto p = w.lock();
                                       bool gone = !p || p.get() == s;
                                       held.push_back(std::move(p));
                                       return gone;
                                     }),
                      subscribers.end());
    if (subscribers.size() != before) subscribers_changed();
  }
};

EventBus::EventBus() : EventBus(Options()) {}

EventBus::EventBus(Options options) : core_(std::make_shared<Core>()) {
  core_->options = std::move(options);
  core_->next_id = std::max<std::uint64_t>(1, core_->options.first_id);
}

EventBus::~EventBus() {
  close_all();
}

std::uint64_t EventBus::publish(SessionEvent e) {
  auto& c = *core_;
  // Released after the unlock (see Core::remove).
  std::vector<std::shared_ptr<EventSubscription>> held;
  std::lock_guard<std::mutex> lock(c.mutex);
  held.reserve(c.subscribers.size());
  e.id = c.next_id++;
  e.time = c.options.now();
  if (c.options.metrics) c.options.metrics->event_published(e.type);
  // Under the bus mutex: every subscriber gets events in id order. Each
  // offer only takes that subscriber's own mutex for a push_back; readers
  // never hold it while writing to a socket.
  bool removed_any = false;
  for (auto& w : c.subscribers) {
    auto s = w.lock();
    if (!s) {
      removed_any = true;
      continue;
    }
    held.push_back(s);
    if (!s->wants(e.type)) continue;
    if (!s->offer(e)) {
      s->mark_dropped();
      w.reset();
      removed_any = true;
      if (c.options.metrics) c.options.metrics->event_subscriber_dropped();
    }
  }
  if (removed_any) {
    c.subscribers.erase(std::remove_if(c.subscribers.begin(), c.subscribers.end(),
                                       [](const auto& w) { return w.expired(); }),
                        c.subscribers.end());
    c.subscribers_changed();
  }
  if (c.options.ring_capacity > 0) {
    if (c.ring.size() >= c.options.ring_capacity) c.ring.pop_front();
    c.ring.push_back(std::move(e));
  }
  return c.next_id - 1;
}

std::shared_ptr<EventSubscription> EventBus::subscribe(TypeFilter filter,
                                                       std::optional<std::uint64_t> after_id,
                                                       std::size_t queue_limit) {
  auto& c = *core_;
  std::lock_guard<std::mutex> lock(c.mutex);
  auto sub = std::make_shared<EventSubscription>(core_, std::move(filter), queue_limit);
  if (after_id) {
    const std::uint64_t last = c.next_id - 1;
    // The oldest id the client may have missed is after_id + 1: it must
    // still be in the ring (or nothing was published after after_id).
    const std::uint64_t oldest = c.ring.empty() ? c.next_id : c.ring.front().id;
    const bool in_range = *after_id <= last && *after_id + 1 >= oldest;
    if (!in_range) {
      SessionEvent reset;
      reset.id = last;
      reset.time = c.options.now();
      reset.type = "reset";
      reset.reason = *after_id > last
                         ? "Last-Event-ID " + std::to_string(*after_id) +
                               " is not from this process (restarted?): re-read /status"
                         : "events after " + std::to_string(*after_id) +
                               " are no longer buffered: re-read /status";
      sub->queue_.push_back(std::move(reset));
    } else {
      for (const auto& e : c.ring)
        if (e.id > *after_id && sub->wants(e.type)) sub->queue_.push_back(e);
    }
    // The backlog is not the subscriber being slow.
    sub->limit_ += sub->queue_.size();
  }
  c.subscribers.push_back(sub);
  c.subscribers_changed();
  return sub;
}

std::uint64_t EventBus::last_id() const {
  std::lock_guard<std::mutex> lock(core_->mutex);
  return core_->next_id - 1;
}

std::size_t EventBus::subscribers() const {
  std::lock_guard<std::mutex> lock(core_->mutex);
  return core_->subscribers.size();
}

void EventBus::close_all() {
  std::vector<std::weak_ptr<EventSubscription>> subs;
  {
    std::lock_guard<std::mutex> lock(core_->mutex);
    subs.swap(core_->subscribers);
    core_->subscribers_changed();
  }
  for (auto& w : subs)
    if (auto s = w.lock()) s->close();
}

// -- EventSubscription ------------------------------------------------------------

EventSubscription::EventSubscription(std::weak_ptr<EventBus::Core> bus, TypeFilter filter,
                                     std::size_t limit)
    : bus_(std::move(bus)), filter_(std::move(filter)), limit_(std::max<std::size_t>(1, limit)) {}

EventSubscription::~EventSubscription() {
  if (auto bus = bus_.lock()) bus->remove(this);
}

bool EventSubscription::wants(const std::string& type) const {
  return filter_.empty() || filter_.count(type) > 0;
}

bool EventSubscription::offer(const SessionEvent& e) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return true;  // removed by its own close() in a moment
    if (queue_.size() >= limit_) return false;
    queue_.push_back(e);
  }
  cv_.notify_one();
  return true;
}

void EventSubscription::mark_dropped() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped_ = true;
    closed_ = true;
    queue_.clear();
  }
  cv_.notify_all();
}

std::vector<SessionEvent> EventSubscription::wait(std::chrono::milliseconds timeout,
                                                  std::size_t max) {
  std::vector<SessionEvent> out;
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, timeout, [this] { return closed_ || !queue_.empty(); });
  if (closed_) return out;
  const std::size_t n = std::min(std::max<std::size_t>(1, max), queue_.size());
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return out;
}

std::optional<SessionEvent> EventSubscription::wait_next(std::chrono::milliseconds timeout) {
  auto batch = wait(timeout, 1);
  if (batch.empty()) return std::nullopt;
  return std::move(batch.front());
}

bool EventSubscription::dropped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_;
}

bool EventSubscription::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

void EventSubscription::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ && !dropped_) return;
    closed_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  if (auto bus = bus_.lock()) bus->remove(this);
}

}  // namespace sessiond
