#include "event_stream.hpp"

#include <httplib.h>

#include <algorithm>
#include <cctype>

#include "admin_routes.hpp"

namespace sessiond {
namespace {

// The stream's waits are sliced so httplib's loop sees a server stop even
// when nothing wakes the subscription.
constexpr std::chrono::milliseconds kWaitSlice{500};

std::optional<std::uint64_t> parse_id(const std::string& text) {
  if (text.empty() || text.size() > 20 ||
      !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  try {
    return std::stoull(text);
  } catch (...) {
    return std::nullopt;
  }
}

void reply(httplib::Response& res, const Reply& r) {
  res.status = r.status;
  for (const auto& [name, value] : r.headers) res.set_header(name.c_str(), value);
  res.set_content(r.body, r.content_type.c_str());
}

// One stream's state, shared by httplib's content provider; its end (the
// response destroyed) unsubscribes and frees the slot.
struct Stream {
  std::shared_ptr<EventSubscription> sub;
  std::atomic<std::size_t>* active = nullptr;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
  bool started = false;
  ~Stream() {
    if (sub) sub->close();
    if (active) --*active;
  }
};

}  // namespace

std::optional<EventStreamRequest> parse_event_stream_request(
    const std::optional<std::string>& types, const std::string& last_event_id_header,
    const std::optional<std::string>& last_event_id_param, std::string& error) {
  EventStreamRequest r;
  if (types) {
    try {
      r.types = parse_type_filter(*types);
    } catch (const std::invalid_argument& e) {
      error = std::string("types: ") + e.what();
      return std::nullopt;
    }
  }
  const std::string& id_text =
      !last_event_id_header.empty() ? last_event_id_header : last_event_id_param.value_or("");
  if (!id_text.empty()) {
    r.after_id = parse_id(id_text);
    if (!r.after_id) {
      error = "Last-Event-ID: expected an event id (a whole number)";
      return std::nullopt;
    }
  }
  return r;
}

EventStream::EventStream(std::shared_ptr<EventBus> bus, EventStreamOptions options)
    : bus_(std::move(bus)), options_(options) {}

void EventStream::serve(const httplib::Request& req, httplib::Response& res) {
  std::string error;
  auto types = req.has_param("types") ? std::optional<std::string>(req.get_param_value("types"))
                                      : std::nullopt;
  auto id_param = req.has_param("last_event_id")
                      ? std::optional<std::string>(req.get_param_value("last_event_id"))
                      : std::nullopt;
  auto parsed =
      parse_event_stream_request(types, req.get_header_value("Last-Event-ID"), id_param, error);
  if (!parsed) {
    reply(res, AdminRoutes::error(400, error));
    return;
  }
  if (closing_) {
    reply(res, AdminRoutes::error(503, "shutting down"));
    return;
  }
  if (++active_ > options_.max_subscribers) {
    --active_;
    auto r = AdminRoutes::error(503, "too many event stream subscribers (at most " +
                                         std::to_string(options_.max_subscribers) + ")");
    r.headers.emplace_back("Retry-After", "5");
    reply(res, r);
    return;
  }
  auto stream = std::make_shared<Stream>();
  stream->active = &active_;
  stream->sub = bus_->subscribe(std::move(parsed->types), parsed->after_id, options_.queue_limit);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    streams_.erase(
        std::remove_if(streams_.begin(), streams_.end(), [](const auto& w) { return w.expired(); }),
        streams_.end());
    streams_.push_back(stream->sub);
  }
  if (closing_) stream->sub->close();  // close_all() ran meanwhile

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: do not buffer the stream
  const auto heartbeat = options_.heartbeat;
  res.set_chunked_content_provider(
      "text/event-stream", [stream, heartbeat](std::size_t, httplib::DataSink& sink) {
        auto& s = *stream;
        std::string out;
        if (!s.started) {
          // The reconnection delay EventSource uses after the stream ends.
          out = "retry: 1000\n\n";
          s.started = true;
        } else {
          auto now = std::chrono::steady_clock::now();
          auto until_heartbeat =
              std::chrono::duration_cast<std::chrono::milliseconds>(s.last_write + heartbeat - now);
          auto wait = std::clamp(until_heartbeat, std::chrono::milliseconds(0), kWaitSlice);
          for (const auto& e : s.sub->wait(wait)) out += to_sse(e);
          if (s.sub->dropped()) {
            // Too slow: the publisher let go of it. The client reconnects
            // with Last-Event-ID and resumes from the ring.
            sink.write(": dropped: this subscriber fell behind\n\n", 40);
            return false;
          }
          if (s.sub->closed()) return false;
          if (out.empty() && std::chrono::steady_clock::now() - s.last_write >= heartbeat)
            out = ": heartbeat\n\n";
        }
        if (out.empty()) return true;
        s.last_write = std::chrono::steady_clock::now();
        return sink.write(out.data(), out.size());
      });
}

void EventStream::close_all() {
  closing_ = true;
  std::vector<std::weak_ptr<EventSubscription>> streams;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    streams.swap(streams_);
  }
  for (auto& w : streams)
    if (auto s = w.lock()) s->close();
}

}  // namespace sessiond
