#pragma once
// The Chrome DevTools protocol over a pipe (--remote-debugging-pipe), without
// I/O: a framer that cuts the reply stream into NUL-terminated JSON messages,
// and a correlator that numbers commands and matches replies to them. The
// browser pool (src/browser_pool.cpp) owns the descriptors and feeds bytes in.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace sessiond::devtools {

// Cuts a byte stream (any chunking) into messages: each is one JSON object
// followed by '\0'.
class Framer {
 public:
  static constexpr std::size_t kDefaultMaxMessage = std::size_t{64} << 20;
  // Deeper nesting is refused: it only costs stack in whoever walks the value.
  static constexpr int kMaxDepth = 256;

  struct Output {
    std::vector<nlohmann::json> messages;  // complete messages, in order
    // Frames that were no JSON object (skipped: the stream stays in sync) and,
    // last, the fatal error that broke the stream (see broken()).
    std::vector<std::string> errors;
  };

  explicit Framer(std::size_t max_message = kDefaultMaxMessage) : max_message_(max_message) {}

  // Appends `bytes`; returns the messages they completed. A message longer
  // than the maximum breaks the stream for good: the rest is ignored.
  Output feed(std::string_view bytes);

  // At EOF: an error when the stream ended inside a message (or was broken).
  std::optional<std::string> finish() const;

  bool broken() const { return broken_; }
  std::size_t buffered() const { return pending_.size(); }

 private:
  void complete(std::string_view frame, Output& out);

  std::size_t max_message_;
  std::string pending_;  // bytes of the message not yet terminated
  bool broken_ = false;
};

// A parsed message as one line of JSON followed by '\0' (what the pipe wants).
std::string frame(const nlohmann::json& message);

// The answer to one command.
struct Reply {
  std::int64_t id = 0;
  std::string method;     // of the command (for logs)
  bool ok = false;        // false: error object, malformed reply, or pipe closed
  nlohmann::json result;  // ok: the "result" object
  int error_code = 0;     // !ok: the protocol's error code (0 when closed/malformed)
  std::string error;      // !ok: the error message (never contains our parameters)
};

// A message without an id: a notification from a target.
struct Event {
  std::string method;
  nlohmann::json params;   // an object (empty when absent)
  std::string session_id;  // "" for the browser target
};

// Numbers commands and matches replies to them. Callbacks run inside
// dispatch()/fail_all() and may send() new commands.
class Correlator {
 public:
  using Callback = std::function<void(const Reply&)>;
  struct Outgoing {
    std::int64_t id = 0;
    std::string frame;  // JSON + '\0', ready to write
  };

  // A new command; `session_id` empty: the browser target.
  Outgoing send(const std::string& method, nlohmann::json params = nlohmann::json::object(),
                const std::string& session_id = {}, Callback on_reply = {});

  // What an incoming message was: a reply to a pending command (its callback
  // has run), an event, or nothing we wait for (unknown id, malformed).
  using Dispatched = std::variant<std::monostate, Reply, Event>;
  Dispatched dispatch(const nlohmann::json& message);

  // The pipe closed: every pending command fails with `reason` (callbacks run,
  // in id order); they are returned too.
  std::vector<Reply> fail_all(const std::string& reason);

  // A target went away: its pending commands are dropped without their
  // callbacks (their replies, should any come, are unknown ids). Returns how many.
  std::size_t forget_session(const std::string& session_id);

  std::size_t pending() const { return pending_.size(); }
  // The id of the oldest command still waiting (ids grow with time).
  std::optional<std::int64_t> oldest_pending() const;

 private:
  struct Pending {
    std::string method;
    std::string session_id;
    Callback on_reply;
  };
  std::int64_t next_id_ = 1;
  std::map<std::int64_t, Pending> pending_;
};

}  // namespace sessiond::devtools
