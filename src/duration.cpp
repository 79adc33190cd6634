#include "sessiond/duration.hpp"

#include <cctype>
#include <cmath>
#include <string>

namespace sessiond {
namespace {

// Largest duration accepted, in ms (about 31 years): converting a larger
// double to an integer count is undefined, and no setting needs more.
constexpr double kMaxMillis = 1e12;

struct Unit {
  std::string_view name;
  int rank;  // components must come in decreasing rank: "1h30m", not "30m1h"
  double ms;
};

constexpr Unit kUnits[] = {{"h", 3, 3600000}, {"m", 2, 60000}, {"s", 1, 1000}, {"ms", 0, 1}};

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double total = 0;
  int last_rank = 4;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t i = pos;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (i == pos) return std::nullopt;  // "s", "-1s", "5 s", "1h 30m"
    double value = 0;
    try {
      std::size_t used = 0;
      value = std::stod(std::string(text.substr(pos, i - pos)), &used);
      if (used != i - pos) return std::nullopt;  // "1.2.3s"
    } catch (...) {
      return std::nullopt;  // ".", or out of range
    }
    std::size_t j = i;
    while (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j]))) ++j;
    auto unit_name = text.substr(i, j - i);
    double scale = 0;
    if (unit_name.empty()) {
      // A bare number means seconds, but only on its own: "1m30" is a typo.
      if (pos != 0 || j != text.size()) return std::nullopt;
      scale = 1000;
    } else {
      const Unit* unit = nullptr;
      for (const auto& u : kUnits)
        if (u.name == unit_name) unit = &u;
      if (!unit || unit->rank >= last_rank) return std::nullopt;  // "5sec", "30s1m", "1m1m"
      last_rank = unit->rank;
      scale = unit->ms;
    }
    total += value * scale;
    if (!std::isfinite(total) || total > kMaxMillis) return std::nullopt;
    pos = j;
  }
  return Millis(static_cast<Millis::rep>(std::llround(total)));
}

std::string format_duration(Millis d) {
  auto ms = d.count();
  if (ms % 3600000 == 0 && ms != 0) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0 && ms != 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace sessiond
