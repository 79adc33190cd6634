#pragma once
// `sessiond once`: which sessions of the first scan have finished their pass,
// and how. A session's pass ends with its first cycle that reaches a final
// outcome: success, or a failure (logged out, an unusable or invalid file,
// given up after crashes, or transient errors kMaxAttempts times in a row or
// past the idle deadline). No CAF: the once listener actor owns one.

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sessiond/session_status.hpp"

namespace sessiond {

class OnceTally {
 public:
  static constexpr int kMaxAttempts = 3;

  struct Result {
    int failed = 0;
    int total = 0;
  };

  // The first scan found these sessions: the pass is over when each has ended.
  void expect(const std::vector<std::string>& ids);
  void record(const CycleReport& report);
  // Set once every expected session has ended.
  std::optional<Result> result() const;

 private:
  std::optional<std::vector<std::string>> expected_;
  std::unordered_map<std::string, bool> ended_;  // id -> failed
};

}  // namespace sessiond
