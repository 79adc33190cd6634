// libFuzzer target: the DevTools pipe. Its bytes come from Chromium, which
// renders pages of a remote site: the framer and correlator must turn any
// byte stream into messages or errors (never an exception, a crash or UB),
// give the same messages however the stream is chunked, and the correlator
// must answer every pending command exactly once.
//
// Input: byte 0 picks the chunk size, the rest is the stream.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "sessiond/devtools.hpp"

using namespace sessiond::devtools;
using json = nlohmann::json;

namespace {

constexpr std::size_t kMax = 4096;  // small, so the fuzzer reaches the oversize path

std::vector<json> feed_all(Framer& f, std::string_view stream, std::size_t chunk,
                           std::size_t& errors) {
  std::vector<json> out;
  for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
    auto o = f.feed(stream.substr(pos, chunk));
    errors += o.errors.size();
    for (const auto& e : o.errors) FUZZ_CHECK(!e.empty(), "an error says what is wrong");
    for (auto& m : o.messages) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    Framer whole(kMax), chunked(kMax);
    std::size_t whole_errors = 0, chunked_errors = 0;
    const auto a = feed_all(whole, stream, stream.size() + 1, whole_errors);
    const auto b = feed_all(chunked, stream, chunk, chunked_errors);
    FUZZ_CHECK(a == b, "chunking changed the messages");
    FUZZ_CHECK(whole_errors == chunked_errors, "chunking changed the errors");
    FUZZ_CHECK(whole.broken() == chunked.broken(), "chunking changed the break");
    FUZZ_CHECK(whole.buffered() == chunked.buffered(), "chunking changed what is left");
    FUZZ_CHECK(whole.buffered() <= kMax, "the framer buffers more than the maximum");
    FUZZ_CHECK(whole.finish().has_value() == (whole.broken() || whole.buffered() > 0),
               "finish() reports a partial message exactly");

    // Every message survives our own framing unchanged.
    for (const auto& m : a) {
      FUZZ_CHECK(m.is_object(), "a message is an object");
      const std::string f = frame(m);
      FUZZ_CHECK(f.back() == '\0' && f.find('\0') == f.size() - 1, "one NUL, at the end");
      Framer again(f.size());
      std::size_t errors = 0;
      const auto back = feed_all(again, f, f.size(), errors);
      FUZZ_CHECK(errors == 0 && back.size() == 1 && back[0] == m, "frame() round trip");
    }

    // Commands 1..8 pending; every reply answers at most once, and the rest
    // fail on close: each callback runs exactly once.
    Correlator c;
    std::vector<int> calls(9, 0);
    for (int i = 1; i <= 8; ++i) {
      auto out = c.send("M" + std::to_string(i), json::object(), i % 2 ? "" : "S",
                        [&calls, i](const Reply& r) {
                          ++calls[i];
                          FUZZ_CHECK(r.id == i, "reply to the wrong command");
                          FUZZ_CHECK(r.ok || !r.error.empty(), "a failure says why");
                        });
      FUZZ_CHECK(out.id == i, "ids count from 1");
    }
    for (const auto& m : a) {
      auto d = c.dispatch(m);
      if (auto* ev = std::get_if<Event>(&d)) {
        FUZZ_CHECK(!m.contains("id"), "a message with an id is no event");
        FUZZ_CHECK(ev->params.is_object(), "event params are an object");
      }
    }
    c.fail_all("closed");
    FUZZ_CHECK(c.pending() == 0, "nothing pending after fail_all()");
    for (int i = 1; i <= 8; ++i) FUZZ_CHECK(calls[i] == 1, "each command answered exactly once");
  } catch (const std::exception& e) {
    FUZZ_FAIL(std::string("exception escaped: ") + e.what());
  }
  return 0;
}
