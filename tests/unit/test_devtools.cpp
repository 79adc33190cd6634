#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/devtools.hpp"

using namespace sessiond::devtools;
using nlohmann::json;

namespace {

std::string two_messages() {
  return std::string(R"({"id":1,"result":{}})") + '\0' + R"({"method":"Page.loadEventFired"})" +
         '\0';
}

}  // namespace

TEST_CASE("framer: whole messages, two in one read", "[devtools]") {
  Framer f;
  auto out = f.feed(two_messages());
  REQUIRE(out.messages.size() == 2);
  CHECK(out.errors.empty());
  CHECK(out.messages[0]["id"] == 1);
  CHECK(out.messages[1]["method"] == "Page.loadEventFired");
  CHECK(f.buffered() == 0);
  CHECK_FALSE(f.finish());
}

TEST_CASE("framer: every chunking gives the same messages", "[devtools]") {
  const std::string stream = two_messages() + R"({"id":2,"result":{"s":"a\u0000b"}})" + '\0';
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    Framer f;
    std::vector<json> got;
    for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
      auto out = f.feed(std::string_view(stream).substr(pos, chunk));
      CHECK(out.errors.empty());
      for (auto& m : out.messages) got.push_back(std::move(m));
    }
    REQUIRE(got.size() == 3);
    CHECK(got[2]["result"]["s"].get<std::string>() == std::string("a\0b", 3));
    CHECK_FALSE(f.finish());
  }
}

TEST_CASE("framer: a split at every boundary position", "[devtools]") {
  const std::string stream = two_messages();
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Framer f;
    auto a = f.feed(std::string_view(stream).substr(0, cut));
    auto b = f.feed(std::string_view(stream).substr(cut));
    CHECK(a.messages.size() + b.messages.size() == 2);
  }
}

TEST_CASE("framer: invalid JSON is an error and the stream goes on", "[devtools]") {
  Framer f;
  std::string s =
      std::string("{not json") + '\0' + "[1,2]" + '\0' + "" + '\0' + R"({"id":5})" + '\0';
  auto out = f.feed(s);
  REQUIRE(out.messages.size() == 1);
  CHECK(out.messages[0]["id"] == 5);
  REQUIRE(out.errors.size() == 3);
  CHECK(out.errors[0].find("not JSON") != std::string::npos);
  CHECK(out.errors[1].find("array") != std::string::npos);
  CHECK_FALSE(f.broken());
}

TEST_CASE("framer: too deep nesting is refused, not parsed", "[devtools]") {
  Framer f;
  std::string deep = R"({"a":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
  auto out = f.feed(deep + '\0');
  CHECK(out.messages.empty());
  REQUIRE(out.errors.size() == 1);
  CHECK(out.errors[0].find("deeper") != std::string::npos);
  // Brackets inside strings do not count.
  auto ok = f.feed(R"({"s":")" + std::string(1000, '[') + "\"}" + '\0');
  CHECK(ok.messages.size() == 1);
}

TEST_CASE("framer: an oversized message breaks the stream", "[devtools]") {
  Framer f(20);
  auto out = f.feed(R"({"id":1})" + std::string(1, '\0') + R"({"id":2,"result":)");
  CHECK(out.messages.size() == 1);
  auto more = f.feed(R"({"x":"yyyyyyyy"}})");
  CHECK(more.messages.empty());
  REQUIRE(more.errors.size() == 1);
  CHECK(more.errors[0].find("longer than 20") != std::string::npos);
  CHECK(f.broken());
  CHECK(f.feed(R"({"id":3})" + std::string(1, '\0')).messages.empty());
  CHECK(f.finish());
  // Exactly the maximum is fine.
  Framer g(8);
  CHECK(g.feed(R"({"id":1})" + std::string(1, '\0')).messages.size() == 1);
}

TEST_CASE("framer: EOF inside a message is reported", "[devtools]") {
  Framer f;
  f.feed(R"({"id":1,"res)");
  REQUIRE(f.finish());
  CHECK(f.finish()->find("inside a message (12 bytes)") != std::string::npos);
}

TEST_CASE("correlator: ids, frames and replies", "[devtools]") {
  Correlator c;
  std::vector<Reply> seen;
  auto a = c.send("Target.createTarget", {{"url", "about:blank"}}, "",
                  [&](const Reply& r) { seen.push_back(r); });
  auto b = c.send("Page.enable", json::object(), "S1", [&](const Reply& r) { seen.push_back(r); });
  CHECK(a.id == 1);
  CHECK(b.id == 2);
  REQUIRE(a.frame.back() == '\0');
  auto sent = json::parse(a.frame.substr(0, a.frame.size() - 1));
  CHECK(sent ==
        json{{"id", 1}, {"method", "Target.createTarget"}, {"params", {{"url", "about:blank"}}}});
  CHECK_FALSE(sent.contains("sessionId"));
  CHECK(json::parse(b.frame.substr(0, b.frame.size() - 1))["sessionId"] == "S1");
  CHECK(c.pending() == 2);
  CHECK(c.oldest_pending() == 1);

  // Out of order; an error reply; an unknown id; a second reply to the same id.
  auto d2 = c.dispatch(
      json::parse(R"({"id":2,"error":{"code":-32601,"message":"nope"},"sessionId":"S1"})"));
  REQUIRE(std::holds_alternative<Reply>(d2));
  CHECK_FALSE(std::get<Reply>(d2).ok);
  CHECK(std::get<Reply>(d2).error_code == -32601);
  CHECK(std::get<Reply>(d2).error == "nope");
  CHECK(std::get<Reply>(d2).method == "Page.enable");
  CHECK(
      std::holds_alternative<std::monostate>(c.dispatch(json::parse(R"({"id":99,"result":{}})"))));
  auto d1 = c.dispatch(json::parse(R"({"id":1,"result":{"targetId":"T"}})"));
  REQUIRE(std::holds_alternative<Reply>(d1));
  CHECK(std::get<Reply>(d1).ok);
  CHECK(std::get<Reply>(d1).result["targetId"] == "T");
  CHECK(std::holds_alternative<std::monostate>(c.dispatch(json::parse(R"({"id":1,"result":{}})"))));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].id == 2);
  CHECK(seen[1].id == 1);
  CHECK(c.pending() == 0);
  CHECK_FALSE(c.oldest_pending());
}

TEST_CASE("correlator: malformed replies and events", "[devtools]") {
  Correlator c;
  c.send("A");
  c.send("B");
  c.send("C");
  auto r1 = std::get<Reply>(c.dispatch(json::parse(R"({"id":1,"result":[1]})")));
  CHECK_FALSE(r1.ok);
  CHECK(r1.error == "reply without a result object");
  auto r2 = std::get<Reply>(c.dispatch(json::parse(R"({"id":2,"error":"text"})")));
  CHECK_FALSE(r2.ok);
  CHECK_FALSE(r2.error.empty());
  CHECK(
      std::holds_alternative<std::monostate>(c.dispatch(json::parse(R"({"id":"3","result":{}})"))));
  CHECK(
      std::holds_alternative<std::monostate>(c.dispatch(json::parse(R"({"id":3.5,"result":{}})"))));
  CHECK(std::holds_alternative<std::monostate>(c.dispatch(json::parse(R"([1])"))));
  CHECK(std::holds_alternative<std::monostate>(c.dispatch(json::parse(R"({"method":7})"))));
  CHECK(c.pending() == 1);

  auto ev = c.dispatch(json::parse(
      R"({"method":"Runtime.bindingCalled","params":{"name":"x","payload":"{}"},"sessionId":"S"})"));
  REQUIRE(std::holds_alternative<Event>(ev));
  CHECK(std::get<Event>(ev).method == "Runtime.bindingCalled");
  CHECK(std::get<Event>(ev).params["name"] == "x");
  CHECK(std::get<Event>(ev).session_id == "S");
  auto bare = std::get<Event>(c.dispatch(json::parse(R"({"method":"Target.targetCrashed"})")));
  CHECK(bare.params == json::object());
  CHECK(bare.session_id.empty());
}

TEST_CASE("correlator: fail_all when the pipe closes", "[devtools]") {
  Correlator c;
  int called = 0;
  std::vector<std::int64_t> resent;
  c.send("A", {}, "", [&](const Reply& r) {
    ++called;
    CHECK_FALSE(r.ok);
    CHECK(r.error == "browser gone");
    // A callback that sends again must not loop or crash.
    resent.push_back(c.send("A.again").id);
  });
  c.send("B", {}, "", [&](const Reply&) { ++called; });
  auto failed = c.fail_all("browser gone");
  REQUIRE(failed.size() == 2);
  CHECK(failed[0].id == 1);
  CHECK(failed[1].method == "B");
  CHECK(called == 2);
  CHECK(resent == std::vector<std::int64_t>{3});
  CHECK(c.pending() == 1);
  CHECK(c.fail_all("again").size() == 1);
  CHECK(c.pending() == 0);
  // Replies after the failure are unknown ids.
  CHECK(std::holds_alternative<std::monostate>(c.dispatch(json::parse(R"({"id":2,"result":{}})"))));
}

TEST_CASE("correlator: forget_session drops a closed page's commands", "[devtools]") {
  Correlator c;
  int called = 0;
  c.send("Runtime.evaluate", json::object(), "PAGE", [&](const Reply&) { ++called; });
  c.send("Target.closeTarget", json::object(), "", [&](const Reply&) { ++called; });
  c.send("Page.navigate", json::object(), "PAGE", [&](const Reply&) { ++called; });
  CHECK(c.forget_session("PAGE") == 2);
  CHECK(c.pending() == 1);
  CHECK(std::holds_alternative<std::monostate>(c.dispatch(json::parse(R"({"id":1,"result":{}})"))));
  CHECK(std::holds_alternative<Reply>(c.dispatch(json::parse(R"({"id":2,"result":{}})"))));
  CHECK(called == 1);
  CHECK(c.forget_session("PAGE") == 0);
}

TEST_CASE("frame(): invalid UTF-8 does not throw", "[devtools]") {
  std::string f = frame(json{{"s", std::string("\xff\xfe")}});
  CHECK(f.back() == '\0');
  CHECK(json::accept(f.substr(0, f.size() - 1)));
}
