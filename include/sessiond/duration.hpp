#pragma once
// Durations as operators write them: "300ms", "5s", "5m", "1h", "1.5s", and
// compounds from the largest unit down: "1m30s", "1h30m15s", "2h500ms". A bare
// number means seconds. At most 1e12 ms; anything else is nullopt.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

using Millis = std::chrono::milliseconds;

std::optional<Millis> parse_duration(std::string_view text);
std::string format_duration(Millis d);  // "5m", "1500ms", "3s"

}  // namespace sessiond
