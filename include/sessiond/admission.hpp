#pragma once
// The admission gate in front of a site's refresh cycles: a cycle asks for a
// slot before it reads its file and builds its request, and gives the slot
// back when the cycle ends. At most `slots` cycles of the site hold a loaded
// document and a built request at once; the rest wait here as a small entry
// (priority, callback), most urgent first, as the HTTP queues order them.
// So a start-up where every session is due at once (files without a
// keepalive block) no longer loads tens of thousands of documents that then
// wait for an HTTP slot: the memory of such a burst is never taken.
//
// AdmissionQueue decides (no threads: unit-tested); AdmissionGate performs
// (a mutex; the grant callbacks run outside it).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "sessiond/release_token.hpp"

namespace sessiond {

// A held slot (release_token.hpp): given back when its last copy goes.
using AdmissionSlot = ReleaseToken;

template <class Payload>
class AdmissionQueue {
 public:
  struct Waiter {
    std::int64_t priority = 0;
    std::uint64_t seq = 0;
    Payload payload;
  };
  explicit AdmissionQueue(std::size_t slots) : slots_(slots < 1 ? 1 : slots) {}

  void push(std::int64_t priority, Payload payload) {
    queue_.push_back(Waiter{priority, next_seq_++, std::move(payload)});
    std::push_heap(queue_.begin(), queue_.end(), later);
  }
  // The waiters that get a slot now (each counted as held), most urgent first.
  std::vector<Waiter> take_ready() {
    std::vector<Waiter> out;
    while (!queue_.empty() && held_ < slots_) {
      std::pop_heap(queue_.begin(), queue_.end(), later);
      out.push_back(std::move(queue_.back()));
      queue_.pop_back();
      ++held_;
    }
    if (!queue_.empty()) backlogged_ = true;
    return out;
  }
  // True once each time a backlog (waiters that found every slot taken) has
  // been admitted to the last waiter: the burst is over.
  bool take_backlog_end() {
    if (!backlogged_ || !queue_.empty()) return false;
    backlogged_ = false;
    return true;
  }
  // A held slot was given back.
  void release() {
    if (held_ > 0) --held_;
  }
  // Everything still waiting (shutdown).
  std::vector<Waiter> take_all() {
    std::vector<Waiter> out;
    out.swap(queue_);
    return out;
  }
  std::size_t slots() const { return slots_; }
  std::size_t held() const { return held_; }
  std::size_t queued() const { return queue_.size(); }

 private:
  // Heap order: the smallest priority, then the oldest, on top.
  static bool later(const Waiter& a, const Waiter& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.seq > b.seq;
  }
  std::size_t slots_;
  std::vector<Waiter> queue_;
  std::uint64_t next_seq_ = 0;
  std::size_t held_ = 0;
  bool backlogged_ = false;
};

class AdmissionGate {
 public:
  // Runs on the thread that granted (the requester's or a releaser's): short.
  using Granted = std::function<void(AdmissionSlot)>;

  // `backlog_end`: called (outside the lock) each time a backlog has been
  // admitted to its last waiter, e.g. to give the burst's freed memory back.
  explicit AdmissionGate(std::size_t slots, std::function<void()> backlog_end = {});
  // Waiters still queued are dropped (their callbacks never run).
  void stop();
  ~AdmissionGate() { stop(); }
  AdmissionGate(const AdmissionGate&) = delete;
  AdmissionGate& operator=(const AdmissionGate&) = delete;

  // Smaller priority first; equal ones in request order. `granted` may run
  // before this returns.
  void request(std::int64_t priority, Granted granted);

  std::size_t slots() const;
  std::size_t held() const;
  std::size_t queued() const;

  // Shared with the slots it hands out: a slot may outlive the gate.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

// How many cycles of a site may hold a loaded file at once: enough to keep
// its `max_in_flight` requests busy while others load and save.
std::size_t admission_slots(std::size_t max_in_flight);

}  // namespace sessiond
