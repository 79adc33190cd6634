#include "sessiond/once_tally.hpp"

namespace sessiond {
namespace {

// nullopt: the pass goes on (a retry, a reload); else whether it failed.
std::optional<bool> final_failure(const CycleReport& r) {
  switch (r.outcome) {
    case CycleOutcome::success:
    case CycleOutcome::file_missing:  // gone: nothing left to keep alive
    case CycleOutcome::removed:
    case CycleOutcome::paused:  // skipped on purpose: an operator paused it
      return false;
    case CycleOutcome::logged_out:
    case CycleOutcome::file_error:
    case CycleOutcome::invalid:
    case CycleOutcome::failed:
      return true;
    case CycleOutcome::transient_error:
      if (r.attempt >= OnceTally::kMaxAttempts || r.state == SessionState::at_risk) return true;
      return std::nullopt;
    case CycleOutcome::superseded:
    case CycleOutcome::shutting_down:
    case CycleOutcome::not_found:
    case CycleOutcome::resumed:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

void OnceTally::expect(const std::vector<std::string>& ids) {
  expected_ = ids;
}

void OnceTally::record(const CycleReport& report) {
  if (ended_.count(report.id)) return;  // its pass is over; later cycles do not count
  if (auto failed = final_failure(report)) ended_.emplace(report.id, *failed);
}

std::optional<OnceTally::Result> OnceTally::result() const {
  if (!expected_) return std::nullopt;
  Result r;
  r.total = static_cast<int>(expected_->size());
  for (const auto& id : *expected_) {
    auto it = ended_.find(id);
    if (it == ended_.end()) return std::nullopt;
    if (it->second) ++r.failed;
  }
  return r;
}

}  // namespace sessiond
