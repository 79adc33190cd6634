#pragma once
// Durations as operators write them: "300ms", "5s", "5m", "1h", "1.5s"; a
// bare number means seconds.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

using Millis = std::chrono::milliseconds;

std::optional<Millis> parse_duration(std::string_view text);
std::string format_duration(Millis d);  // "5m", "1500ms", "3s"

}  // namespace sessiond
