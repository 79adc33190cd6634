#include "sessiond/json_log.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <iterator>

namespace sessiond::log {
namespace {

constexpr std::string_view kFieldsMarker = "\x1e";  // payload built by event()

// spdlog's own names say "warning"; the log format says "warn".
std::string_view level_name(spdlog::level::level_enum level) {
  static constexpr std::string_view kNames[] = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  static_assert(std::size(kNames) == spdlog::level::n_levels);
  return kNames[level];
}

// The payload of an event() call is the serialized inner part of a JSON
// object, prefixed by a marker; anything else (a stray spdlog call from a
// library) is escaped into "msg".
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    std::string head = "{\"ts\":\"" + iso8601(msg.time) + "\",\"level\":\"" +
                       std::string(level_name(msg.level)) + "\",";
    dest.append(head.data(), head.data() + head.size());
    std::string body;
    if (payload.substr(0, kFieldsMarker.size()) == kFieldsMarker) {
      payload.remove_prefix(kFieldsMarker.size());
      body.assign(payload);
    } else {
      nlohmann::json m = std::string(payload);
      body = "\"msg\":" + m.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    dest.append(body.data(), body.data() + body.size());
    dest.push_back('}');
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::string iso8601(std::chrono::system_clock::time_point tp) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(tp.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  if (ms < 0 && ms % 1000 != 0) --secs;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(((ms % 1000) + 1000) % 1000));
  return buf;
}

void init(spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>("sessiond",
                                                 std::make_shared<spdlog::sinks::stdout_sink_mt>());
  logger->set_formatter(std::make_unique<JsonFormatter>());
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // one line per write: pipes see events at once
  spdlog::set_default_logger(logger);
}

std::optional<spdlog::level::level_enum> parse_level(std::string_view text) {
  if (text == "trace") return spdlog::level::trace;
  if (text == "debug") return spdlog::level::debug;
  if (text == "info") return spdlog::level::info;
  if (text == "warn" || text == "warning") return spdlog::level::warn;
  if (text == "error") return spdlog::level::err;
  if (text == "off") return spdlog::level::off;
  return std::nullopt;
}

bool enabled(spdlog::level::level_enum level) {
  return spdlog::default_logger_raw()->should_log(level);
}

void event(spdlog::level::level_enum level, std::string_view ev, std::string_view msg,
           const nlohmann::json& fields) {
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  nlohmann::ordered_json obj = nlohmann::ordered_json::object();  // keep msg, event first
  obj["msg"] = msg;
  obj["event"] = ev;
  if (fields.is_object())
    for (auto& [k, v] : fields.items()) obj[k] = v;
  auto text = obj.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Strip the braces: the formatter adds ts and level in front.
  std::string payload(kFieldsMarker);
  payload.append(text, 1, text.size() - 2);
  logger->log(level, spdlog::string_view_t(payload.data(), payload.size()));
}

}  // namespace sessiond::log
