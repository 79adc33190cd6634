// The DevTools pipe protocol without I/O (see devtools.hpp).

#include "sessiond/devtools.hpp"

#include <cstring>

namespace sessiond::devtools {
namespace {

using json = nlohmann::json;

// Whether the nesting of `text` stays within `max_depth` (strings skipped).
// Run before parsing, so a hostile message cannot make anyone recurse deeply.
bool nesting_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

std::string size_text(std::size_t n) {
  return std::to_string(n) + " bytes";
}

}  // namespace

Framer::Output Framer::feed(std::string_view bytes) {
  Output out;
  if (broken_) return out;
  while (!bytes.empty()) {
    const void* nul = std::memchr(bytes.data(), '\0', bytes.size());
    const std::size_t take =
        nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - bytes.data()) : bytes.size();
    if (pending_.size() + take > max_message_) {
      broken_ = true;
      pending_.clear();
      pending_.shrink_to_fit();
      out.errors.push_back("message longer than " + size_text(max_message_));
      return out;
    }
    if (!nul) {
      pending_.append(bytes);
      break;
    }
    if (pending_.empty()) {
      complete(bytes.substr(0, take), out);  // the common case: no copy
    } else {
      pending_.append(bytes.data(), take);
      complete(pending_, out);
      pending_.clear();
    }
    bytes.remove_prefix(take + 1);
  }
  return out;
}

void Framer::complete(std::string_view text, Output& out) {
  if (!nesting_within(text, kMaxDepth)) {
    out.errors.push_back("message nested deeper than " + std::to_string(kMaxDepth) + " (" +
                         size_text(text.size()) + ")");
    return;
  }
  json msg = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded()) {
    out.errors.push_back("message is not JSON (" + size_text(text.size()) + ")");
  } else if (!msg.is_object()) {
    out.errors.push_back(std::string("message is a JSON ") + msg.type_name() + ", not an object");
  } else {
    out.messages.push_back(std::move(msg));
  }
}

std::optional<std::string> Framer::finish() const {
  if (broken_) return "stream broken by an oversized message";
  if (!pending_.empty())
    return "stream ended inside a message (" + size_text(pending_.size()) + ")";
  return std::nullopt;
}

std::string frame(const json& message) {
  // Replace invalid UTF-8 instead of throwing: a page's text must not kill the pipe.
  std::string text = message.dump(-1, ' ', false, json::error_handler_t::replace);
  text.push_back('\0');
  return text;
}

Correlator::Outgoing Correlator::send(const std::string& method, json params,
                                      const std::string& session_id, Callback on_reply) {
  const std::int64_t id = next_id_++;
  json msg = {{"id", id}, {"method", method}};
  if (!params.is_null()) msg["params"] = std::move(params);
  if (!session_id.empty()) msg["sessionId"] = session_id;
  pending_.emplace(id, Pending{method, session_id, std::move(on_reply)});
  return Outgoing{id, frame(msg)};
}

Correlator::Dispatched Correlator::dispatch(const json& message) {
  if (!message.is_object()) return std::monostate{};
  const auto id_it = message.find("id");
  if (id_it != message.end()) {
    if (!id_it->is_number_integer()) return std::monostate{};
    const auto it = pending_.find(id_it->get<std::int64_t>());
    if (it == pending_.end()) return std::monostate{};  // not ours / already failed
    Reply reply;
    reply.id = it->first;
    reply.method = std::move(it->second.method);
    Callback cb = std::move(it->second.on_reply);
    pending_.erase(it);  // before the callback: it may send()
    const auto result = message.find("result");
    const auto error = message.find("error");
    if (error != message.end()) {
      if (error->is_object()) {
        const auto code = error->find("code");
        if (code != error->end() && code->is_number_integer()) {
          const auto c = code->get<std::int64_t>();
          reply.error_code = (c >= INT32_MIN && c <= INT32_MAX) ? static_cast<int>(c) : 0;
        }
        const auto text = error->find("message");
        if (text != error->end() && text->is_string()) reply.error = text->get<std::string>();
      }
      if (reply.error.empty()) reply.error = "error reply without a message";
    } else if (result != message.end() && result->is_object()) {
      reply.ok = true;
      reply.result = *result;
    } else {
      reply.error = "reply without a result object";
    }
    if (cb) cb(reply);
    return reply;
  }
  const auto method = message.find("method");
  if (method == message.end() || !method->is_string()) return std::monostate{};
  Event ev;
  ev.method = method->get<std::string>();
  const auto params = message.find("params");
  ev.params = (params != message.end() && params->is_object()) ? *params : json::object();
  const auto sid = message.find("sessionId");
  if (sid != message.end() && sid->is_string()) ev.session_id = sid->get<std::string>();
  return ev;
}

std::vector<Reply> Correlator::fail_all(const std::string& reason) {
  std::map<std::int64_t, Pending> failing;
  failing.swap(pending_);  // callbacks may send(): those wait for the next fail_all()
  std::vector<Reply> out;
  out.reserve(failing.size());
  for (auto& [id, p] : failing) {
    Reply r;
    r.id = id;
    r.method = std::move(p.method);
    r.error = reason;
    if (p.on_reply) p.on_reply(r);
    out.push_back(std::move(r));
  }
  return out;
}

std::size_t Correlator::forget_session(const std::string& session_id) {
  std::size_t n = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.session_id == session_id) {
      it = pending_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

std::optional<std::int64_t> Correlator::oldest_pending() const {
  if (pending_.empty()) return std::nullopt;
  return pending_.begin()->first;
}

}  // namespace sessiond::devtools
