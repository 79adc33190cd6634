#include "sessiond/admission.hpp"

namespace sessiond {

struct AdmissionGate::State {
  State(std::size_t slots, std::function<void()> backlog_end)
      : backlog_end(std::move(backlog_end)), queue(slots) {}
  const std::function<void()> backlog_end;
  std::mutex mu;
  AdmissionQueue<Granted> queue;  // guarded by mu
  bool stopped = false;           // guarded by mu
};

namespace {

using State = AdmissionGate::State;

void release(const std::shared_ptr<State>& state);

// A slot whose last copy gives it back.
AdmissionSlot make_slot(const std::shared_ptr<State>& state) {
  return make_release_token([state] { release(state); });
}

// Grants outside the lock: a callback may request again, or drop its slot.
void grant(const std::shared_ptr<State>& state,
           std::vector<AdmissionQueue<AdmissionGate::Granted>::Waiter> ready) {
  for (auto& w : ready) w.payload(make_slot(state));
}

void release(const std::shared_ptr<State>& state) {
  std::vector<AdmissionQueue<AdmissionGate::Granted>::Waiter> ready;
  bool backlog_end = false;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->queue.release();
    if (!state->stopped) {
      ready = state->queue.take_ready();
      backlog_end = state->queue.take_backlog_end();
    }
  }
  grant(state, std::move(ready));
  if (backlog_end && state->backlog_end) state->backlog_end();
}

}  // namespace

AdmissionGate::AdmissionGate(std::size_t slots, std::function<void()> backlog_end)
    : state_(std::make_shared<State>(slots, std::move(backlog_end))) {}

void AdmissionGate::stop() {
  std::vector<AdmissionQueue<Granted>::Waiter> rest;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopped = true;
    rest = state_->queue.take_all();
  }
  // Destroyed outside the lock (a callback may own a slot).
  rest.clear();
}

void AdmissionGate::request(std::int64_t priority, Granted granted) {
  std::vector<AdmissionQueue<Granted>::Waiter> ready;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stopped) return;
    state_->queue.push(priority, std::move(granted));
    ready = state_->queue.take_ready();
  }
  grant(state_, std::move(ready));
}

std::size_t AdmissionGate::slots() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->queue.slots();
}

std::size_t AdmissionGate::held() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->queue.held();
}

std::size_t AdmissionGate::queued() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->queue.queued();
}

std::size_t admission_slots(std::size_t max_in_flight) {
  // In flight, plus as many loading, waiting for the step after the check,
  // and saving (group commits wait for a sync).
  return std::max<std::size_t>(64, 4 * max_in_flight);
}

}  // namespace sessiond
