#pragma once
// Structured logs: one JSON object per line on stdout, built with nlohmann so
// any message text (quotes, control characters, invalid UTF-8) stays valid
// JSON. Fields: ts (RFC 3339 UTC, ms), level, msg, event, then context.
// Never pass cookie values, tokens or header values in `fields`.

#include <spdlog/common.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond::log {

// Configures the process-wide logger; call once in main before any thread
// starts (spdlog's set_formatter is not thread-safe).
void init(spdlog::level::level_enum level);

// Parses "trace|debug|info|warn|error|off"; nullopt when unknown.
std::optional<spdlog::level::level_enum> parse_level(std::string_view text);

bool enabled(spdlog::level::level_enum level);

void event(spdlog::level::level_enum level, std::string_view event, std::string_view msg,
           const nlohmann::json& fields = nlohmann::json::object());

inline void info(std::string_view ev, std::string_view msg,
                 const nlohmann::json& fields = nlohmann::json::object()) {
  event(spdlog::level::info, ev, msg, fields);
}
inline void warn(std::string_view ev, std::string_view msg,
                 const nlohmann::json& fields = nlohmann::json::object()) {
  event(spdlog::level::warn, ev, msg, fields);
}
inline void error(std::string_view ev, std::string_view msg,
                  const nlohmann::json& fields = nlohmann::json::object()) {
  event(spdlog::level::err, ev, msg, fields);
}
inline void debug(std::string_view ev, std::string_view msg,
                  const nlohmann::json& fields = nlohmann::json::object()) {
  event(spdlog::level::debug, ev, msg, fields);
}

// "2026-11-28T10:30:00.000Z"
std::string iso8601(std::chrono::system_clock::time_point tp);

}  // namespace sessiond::log
