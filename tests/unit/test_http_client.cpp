#include <catch2/catch.hpp>

#include <httplib.h>

#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/http_client.hpp"

using namespace sessiond;
using namespace std::chrono_literals;

namespace {

// An in-process cpp-httplib server on 127.0.0.1 with an ephemeral port.
class TestServer {
 public:
  httplib::Server svr;

  TestServer() {
    svr.set_tcp_nodelay(true);
    svr.set_keep_alive_max_count(1000);
  }
  ~TestServer() { stop(); }

  void start() {
    port_ = svr.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { svr.listen_after_bind(); });
    // The socket already listens (connections queue in the backlog); wait
    // until the accept loop runs so that stop() cannot miss it.
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (!svr.is_running() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    REQUIRE(svr.is_running());
  }

  void stop() {
    if (thread_.joinable()) {
      svr.stop();
      thread_.join();
    }
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  int port_ = -1;
  std::thread thread_;
};

// A gate handlers block on until the test opens it (bounded by a timeout so a
// failing test never hangs the server's shutdown).
class Gate {
 public:
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait(std::chrono::milliseconds limit = 2500ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

HttpResponse fetch(HttpClient& client, HttpRequest req, std::chrono::milliseconds limit = 2500ms) {
  auto promise = std::make_shared<std::promise<HttpResponse>>();
  auto future = promise->get_future();
  client.submit(std::move(req), [promise](HttpResponse r) { promise->set_value(std::move(r)); });
  REQUIRE(future.wait_for(limit) == std::future_status::ready);
  return future.get();
}

HttpRequest get(const std::string& url) {
  HttpRequest r;
  r.url = url;
  r.timeout = 2000ms;
  return r;
}

// Field 5 (name) and 6 (value) of a Netscape cookie line.
std::pair<std::string, std::string> cookie_name_value(const std::string& line) {
  std::vector<std::string> f;
  std::size_t start = 0;
  for (;;) {
    auto tab = line.find('\t', start);
    f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  if (f.size() < 7) return {};
  return {f[5], f[6]};
}

std::vector<std::pair<std::string, std::string>> cookie_pairs(const std::vector<std::string>& jar) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& l : jar) out.push_back(cookie_name_value(l));
  std::sort(out.begin(), out.end());
  return out;
}

std::string cookie_line(const std::string& name, const std::string& value) {
  return "127.0.0.1\tFALSE\t/\tFALSE\t0\t" + name + "\t" + value;
}

HttpClient::Options opts(std::size_t max_in_flight = 16) {
  HttpClient::Options o;
  o.max_in_flight = max_in_flight;
  return o;
}

}  // namespace

TEST_CASE("GET returns status, body and lower-cased trimmed headers", "[http]") {
  std::string seen_header, seen_ua;
  TestServer server;
  server.svr.Get("/hello", [&](const httplib::Request& req, httplib::Response& res) {
    seen_header = req.get_header_value("X-Req");
    seen_ua = req.get_header_value("User-Agent");
    res.status = 203;
    res.set_header("X-Test", "  spaced value  ");
    res.set_content("hi there", "text/plain");
  });
  server.start();

  HttpClient::Options o = opts();
  o.user_agent = "sessiond-test/1";
  HttpClient client(o);
  HttpRequest req = get(server.url("/hello"));
  req.headers.push_back("X-Req: abc");
  const HttpResponse r = fetch(client, req);

  CHECK(r.transport_ok());
  CHECK(r.curl_code == 0);
  CHECK(r.error.empty());
  CHECK(r.status == 203);
  CHECK(r.body == "hi there");
  CHECK(r.header("x-test") == std::optional<std::string>("spaced value"));
  CHECK(r.header("X-TEST") == std::optional<std::string>("spaced value"));
  CHECK(r.header("Content-Type") == std::optional<std::string>("text/plain"));
  CHECK_FALSE(r.header("x-missing").has_value());
  for (const auto& [name, value] : r.headers) {
    CHECK(name == Catch::toLower(name));
  }
  CHECK(r.redirect_url.empty());
  CHECK(r.elapsed.count() > 0);
  CHECK(seen_header == "abc");
  CHECK(seen_ua == "sessiond-test/1");
}

TEST_CASE("POST sends the body; an empty POST still has Content-Length", "[http]") {
  TestServer server;
  server.svr.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_content("got:" + req.body + ";len=" + req.get_header_value("Content-Length") +
                        ";type=" + req.get_header_value("Content-Type"),
                    "text/plain");
  });
  server.svr.Put("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("put:" + req.body, "text/plain");
  });
  server.svr.Delete("/echo", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("deleted", "text/plain");
  });
  server.start();
  HttpClient client(opts());

  HttpRequest post = get(server.url("/echo"));
  post.method = "POST";
  post.headers.push_back("Content-Type: application/json");
  post.body = R"({"a":1})";
  HttpResponse r = fetch(client, post);
  CHECK(r.status == 201);
  CHECK(r.body == R"(got:{"a":1};len=7;type=application/json)");

  HttpRequest empty = get(server.url("/echo"));
  empty.method = "POST";
  r = fetch(client, empty);
  CHECK(r.status == 201);
  CHECK(r.body.rfind("got:;len=0;", 0) == 0);

  HttpRequest big = get(server.url("/echo"));
  big.method = "POST";
  big.headers.push_back("Content-Type: application/octet-stream");
  big.body.assign(100000, 'x');  // no "Expect: 100-continue" stall
  r = fetch(client, big, 1500ms);
  CHECK(r.status == 201);
  CHECK(r.body.find(";len=100000;") != std::string::npos);

  HttpRequest put = get(server.url("/echo"));
  put.method = "PUT";
  put.body = "p";
  r = fetch(client, put);
  CHECK(r.status == 200);
  CHECK(r.body == "put:p");

  HttpRequest del = get(server.url("/echo"));
  del.method = "DELETE";
  r = fetch(client, del);
  CHECK(r.status == 200);
  CHECK(r.body == "deleted");

  HttpRequest head = get(server.url("/echo"));
  head.method = "HEAD";
  r = fetch(client, head);
  CHECK(r.transport_ok());
  CHECK(r.body.empty());

  HttpRequest bad = get(server.url("/echo"));
  bad.method = "GET\r\nX: y";
  r = fetch(client, bad);
  CHECK_FALSE(r.transport_ok());
}

TEST_CASE("request cookies reach the server and Set-Cookie rotation shows in the jar", "[http]") {
  std::string seen_cookie;
  TestServer server;
  server.svr.Get("/rotate", [&](const httplib::Request& req, httplib::Response& res) {
    seen_cookie = req.get_header_value("Cookie");
    res.set_header("Set-Cookie", "sid=new; Path=/");
    res.set_content("ok", "text/plain");
  });
  server.start();
  HttpClient client(opts());

  HttpRequest req = get(server.url("/rotate"));
  req.cookies = {cookie_line("sid", "old"), cookie_line("keep", "k1")};
  const HttpResponse r = fetch(client, req);

  REQUIRE(r.status == 200);
  // both cookies sent (order is libcurl's business)
  CHECK(seen_cookie.find("sid=old") != std::string::npos);
  CHECK(seen_cookie.find("keep=k1") != std::string::npos);
  using P = std::pair<std::string, std::string>;
  CHECK(cookie_pairs(r.cookies) == std::vector<P>{{"keep", "k1"}, {"sid", "new"}});
}

TEST_CASE("Max-Age=0 deletes a cookie from the jar", "[http]") {
  TestServer server;
  server.svr.Get("/logout", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("Set-Cookie", "sid=gone; Max-Age=0; Path=/");
    res.set_content("bye", "text/plain");
  });
  server.start();
  HttpClient client(opts());

  HttpRequest req = get(server.url("/logout"));
  req.cookies = {cookie_line("sid", "abc"), cookie_line("other", "o")};
  const HttpResponse r = fetch(client, req);

  REQUIRE(r.status == 200);
  using P = std::pair<std::string, std::string>;
  CHECK(cookie_pairs(r.cookies) == std::vector<P>{{"other", "o"}});
}

TEST_CASE("cookies of one request never appear in another", "[http]") {
  std::mutex mu;
  std::vector<std::string> seen;
  TestServer server;
  server.svr.Get("/c", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(req.has_header("Cookie") ? req.get_header_value("Cookie") : "<none>");
    }
    if (req.has_param("set"))
      res.set_header("Set-Cookie", "fromserver=" + req.get_param_value("set") + "; Path=/");
    res.set_content("ok", "text/plain");
  });
  server.start();
  // one transfer at a time: every request reuses the previous easy handle
  HttpClient client(opts(1));

  HttpRequest a = get(server.url("/c?set=s1"));
  a.cookies = {cookie_line("secret", "alpha"),
               "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\thonly\th1"};
  const HttpResponse ra = fetch(client, a);
  HttpRequest b = get(server.url("/c"));
  const HttpResponse rb = fetch(client, b);
  HttpRequest c = get(server.url("/c"));
  c.cookies = {cookie_line("mine", "beta")};
  const HttpResponse rc = fetch(client, c);

  using P = std::pair<std::string, std::string>;
  CHECK(cookie_pairs(ra.cookies) ==
        std::vector<P>{{"fromserver", "s1"}, {"honly", "h1"}, {"secret", "alpha"}});
  CHECK(rb.cookies.empty());
  CHECK(cookie_pairs(rc.cookies) == std::vector<P>{{"mine", "beta"}});
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].find("secret=alpha") != std::string::npos);
  CHECK(seen[0].find("honly=h1") != std::string::npos);
  CHECK(seen[1] == "<none>");
  CHECK(seen[2] == "mine=beta");
}

TEST_CASE("a redirect is reported, not followed", "[http]") {
  std::atomic<int> target_hits{0};
  TestServer server;
  server.svr.Get("/r", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/target", 302);
  });
  server.svr.Get("/target", [&](const httplib::Request&, httplib::Response& res) {
    ++target_hits;
    res.set_content("target", "text/plain");
  });
  server.start();
  HttpClient client(opts());

  const HttpResponse r = fetch(client, get(server.url("/r")));
  CHECK(r.transport_ok());
  CHECK(r.status == 302);
  CHECK(r.redirect_url == server.url("/target"));
  CHECK(r.header("location") == std::optional<std::string>("/target"));
  CHECK(target_hits == 0);
}

TEST_CASE("a timeout fails the transfer without a status", "[http]") {
  Gate gate;
  TestServer server;
  server.svr.Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    gate.wait();
    res.set_content("late", "text/plain");
  });
  server.start();
  HttpClient client(opts());

  HttpRequest req = get(server.url("/slow"));
  req.timeout = 200ms;
  const auto t0 = std::chrono::steady_clock::now();
  const HttpResponse r = fetch(client, req);
  const auto took = std::chrono::steady_clock::now() - t0;
  gate.open();

  CHECK(r.curl_code == CURLE_OPERATION_TIMEDOUT);
  CHECK_FALSE(r.transport_ok());
  CHECK(r.status == 0);
  CHECK_FALSE(r.error.empty());
  CHECK(took < 1500ms);
}

TEST_CASE("connection refused is a transport error", "[http]") {
  // A port that was free a moment ago and has no listener now.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int port = ntohs(addr.sin_port);
  ::close(fd);

  HttpClient client(opts());
  const HttpResponse r =
      fetch(client, get("http://127.0.0.1:" + std::to_string(port) + "/nothing"));
  CHECK(r.curl_code == CURLE_COULDNT_CONNECT);
  CHECK(r.status == 0);
  CHECK_FALSE(r.error.empty());
}

TEST_CASE("max_in_flight bounds concurrent transfers; the rest queue FIFO", "[http]") {
  Gate gate;
  std::mutex mu;
  std::condition_variable cv;
  int active = 0, max_active = 0, arrived = 0;
  std::vector<int> order;
  constexpr int kN = 10;
  std::atomic<int> ok{0};
  std::atomic<int> finished{0};
  std::promise<void> all_done;
  TestServer server;
  server.svr.Get("/work", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++active;
      ++arrived;
      max_active = std::max(max_active, active);
      order.push_back(std::stoi(req.get_param_value("i")));
      cv.notify_all();
    }
    gate.wait();
    std::this_thread::sleep_for(20ms);  // widens the window an overlap would show in
    {
      std::lock_guard<std::mutex> lock(mu);
      --active;
    }
    res.set_content("done", "text/plain");
  });
  server.start();
  HttpClient client(opts(2));

  for (int i = 0; i < kN; ++i) {
    client.submit(get(server.url("/work?i=" + std::to_string(i))), [&](HttpResponse r) {
      if (r.status == 200 && r.body == "done") ++ok;
      if (++finished == kN) all_done.set_value();
    });
  }
  CHECK(client.queued() >= kN - 2);
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(cv.wait_for(lock, 2s, [&] { return arrived == 2; }));
  }
  CHECK(client.in_flight() == 2);
  CHECK(client.queued() == kN - 2);
  gate.open();

  REQUIRE(all_done.get_future().wait_for(2500ms) == std::future_status::ready);
  CHECK(ok == kN);
  CHECK(client.in_flight() == 0);
  CHECK(client.queued() == 0);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(max_active <= 2);
  CHECK(max_active == 2);
  // FIFO: the first two started first. Later ones start in submission order,
  // but two connections may deliver them to the server swapped; still, when
  // the k-th request arrives at most k have finished, so at most k + 2 have
  // started: the k-th arrival is one of the first k + 2 submitted.
  REQUIRE(order.size() == static_cast<std::size_t>(kN));
  CHECK(std::set<int>(order.begin(), order.begin() + 2) == std::set<int>{0, 1});
  CHECK(std::set<int>(order.begin(), order.end()).size() == static_cast<std::size_t>(kN));
  for (int k = 0; k < kN; ++k) {
    INFO("arrival " << k << " was request " << order[k]);
    CHECK(order[k] <= k + 1);
  }
}

TEST_CASE("keep-alive: sequential requests reuse connections", "[http]") {
  std::mutex mu;
  std::set<int> ports;
  TestServer server;
  server.svr.Get("/ka", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ports.insert(req.remote_port);
    }
    res.set_content("k", "text/plain");
  });
  server.start();
  HttpClient client(opts());

  int ok = 0;
  for (int i = 0; i < 50; ++i) {
    const HttpResponse r = fetch(client, get(server.url("/ka")));
    if (r.status == 200) ++ok;
  }
  CHECK(ok == 50);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(ports.size() >= 1);
  CHECK(ports.size() <= 2);
}

TEST_CASE("a body over max_body_bytes fails the transfer", "[http]") {
  TestServer server;
  server.svr.Get("/big", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(10000, 'b'), "text/plain");  // with Content-Length
  });
  server.svr.Get("/chunked", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
      const std::string part(500, 'c');
      for (int i = 0; i < 20; ++i) {
        if (!sink.write(part.data(), part.size())) return false;
      }
      sink.done();
      return true;
    });
  });
  server.svr.Get("/small", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(1000, 's'), "text/plain");
  });
  server.start();
  HttpClient::Options o = opts();
  o.max_body_bytes = 1000;
  HttpClient client(o);

  for (const char* path : {"/big", "/chunked"}) {
    INFO(path);
    const HttpResponse r = fetch(client, get(server.url(path)));
    CHECK(r.curl_code != 0);
    CHECK(r.error == "response body over 1000 bytes");
  }
  const HttpResponse small = fetch(client, get(server.url("/small")));
  CHECK(small.transport_ok());
  CHECK(small.body.size() == 1000);
}

TEST_CASE("a throwing callback does not stop the client", "[http]") {
  std::promise<void> thrown;
  TestServer server;
  server.svr.Get("/x", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("x", "text/plain");
  });
  server.start();
  HttpClient client(opts());

  client.submit(get(server.url("/x")), [&](HttpResponse) {
    thrown.set_value();
    throw std::runtime_error("callback failure");
  });
  REQUIRE(thrown.get_future().wait_for(2s) == std::future_status::ready);
  const HttpResponse r = fetch(client, get(server.url("/x")));
  CHECK(r.status == 200);
  CHECK(r.body == "x");
}

TEST_CASE("the destructor completes queued and in-flight requests with shutdown", "[http]") {
  Gate gate;
  std::promise<void> first_arrived;
  std::atomic<bool> arrived_once{false};
  constexpr int kN = 5;
  std::mutex mu;
  std::vector<HttpResponse> results;
  TestServer server;
  server.svr.Get("/hang", [&](const httplib::Request&, httplib::Response& res) {
    if (!arrived_once.exchange(true)) first_arrived.set_value();
    gate.wait();
    res.set_content("late", "text/plain");
  });
  server.start();

  {
    HttpClient client(opts(1));
    for (int i = 0; i < kN; ++i) {
      client.submit(get(server.url("/hang")), [&](HttpResponse r) {
        std::lock_guard<std::mutex> lock(mu);
        results.push_back(std::move(r));
      });
    }
    REQUIRE(first_arrived.get_future().wait_for(2s) == std::future_status::ready);
    CHECK(client.in_flight() == 1);
    CHECK(client.queued() == kN - 1);
  }  // ~HttpClient: every callback has run when it returns
  gate.open();

  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(results.size() == static_cast<std::size_t>(kN));
  for (const auto& r : results) {
    CHECK(r.curl_code != 0);
    CHECK(r.error == "shutdown");
    CHECK(r.status == 0);
  }
}

TEST_CASE("waiting requests start in priority order (smallest first), ties in submission order",
          "[http]") {
  Gate gate;
  std::mutex mu;
  std::vector<int> order;
  TestServer server;
  server.svr.Get("/p", [&](const httplib::Request& req, httplib::Response& res) {
    const int i = std::stoi(req.get_param_value("i"));
    if (i == 0) gate.wait();  // holds the only slot while the rest queue up
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(i);
    res.set_content("ok", "text/plain");
  });
  server.start();
  HttpClient client(opts(1));
  std::promise<void> all_done;
  std::atomic<int> finished{0};
  // (request id, priority): ids 3 and 4 tie; 4 was submitted first.
  const std::vector<std::pair<int, std::int64_t>> reqs{{0, 0},  {1, 50}, {2, 10},
                                                       {4, 30}, {3, 30}, {5, -7}};
  for (const auto& [id, prio] : reqs) {
    auto r = get(server.url("/p?i=" + std::to_string(id)));
    r.priority = prio;
    client.submit(std::move(r), [&](HttpResponse) {
      if (++finished == static_cast<int>(reqs.size())) all_done.set_value();
    });
    if (id == 0) {
      // Request 0 must hold the slot before the others are queued.
      const auto until = std::chrono::steady_clock::now() + 2s;
      while (client.in_flight() == 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(1ms);
      REQUIRE(client.in_flight() == 1);
    }
  }
  gate.open();
  REQUIRE(all_done.get_future().wait_for(2500ms) == std::future_status::ready);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(order == std::vector<int>{0, 5, 2, 4, 3, 1});
}

TEST_CASE("the token bucket paces requests: burst at once, then rate per second", "[http]") {
  TestServer server;
  server.svr.Get("/r", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  server.start();
  auto o = opts(16);
  o.rate_per_second = 20;  // one token per 50 ms
  o.rate_burst = 2;
  HttpClient client(o);
  constexpr int kN = 8;
  std::promise<void> all_done;
  std::atomic<int> ok{0}, finished{0};
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; ++i) {
    client.submit(get(server.url("/r")), [&](HttpResponse r) {
      if (r.status == 200) ++ok;
      if (++finished == kN) all_done.set_value();
    });
  }
  REQUIRE(all_done.get_future().wait_for(5s) == std::future_status::ready);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(ok == kN);
  // The last request cannot start before (kN - burst) tokens have refilled.
  CHECK(took >= std::chrono::milliseconds((kN - 2) * 1000 / 20));
  const HttpLoad load = client.load();
  CHECK(load.rate_limited_total >= 1);
  CHECK(load.rate_limited_total <= kN - 2);
  CHECK(load.queued == 0);
  CHECK(load.rate_limit_tokens < 2.0 + 1e-9);
}

TEST_CASE("Retry-After: delta-seconds or HTTP-date, capped at an hour", "[http]") {
  const auto now =
      std::chrono::system_clock::from_time_t(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  auto with = [](std::string value) {
    HttpResponse r;
    r.headers.emplace_back("retry-after", std::move(value));
    return r;
  };
  CHECK(retry_after_delay(HttpResponse{}, now) == std::nullopt);
  CHECK(retry_after_delay(with("120"), now) == std::optional<std::chrono::milliseconds>(120s));
  CHECK(retry_after_delay(with(" 0 "), now) == std::optional<std::chrono::milliseconds>(0s));
  CHECK(retry_after_delay(with("999999999999"), now) ==
        std::optional<std::chrono::milliseconds>(1h));
  CHECK(retry_after_delay(with("Wed, 21 Oct 2015 07:30:00 GMT"), now) ==
        std::optional<std::chrono::milliseconds>(120s));
  // The obsolete RFC 850 form is an HTTP-date too.
  CHECK(retry_after_delay(with("Wednesday, 21-Oct-15 07:28:30 GMT"), now) ==
        std::optional<std::chrono::milliseconds>(30s));
  CHECK(retry_after_delay(with("Wed, 21 Oct 2015 07:00:00 GMT"), now) ==
        std::optional<std::chrono::milliseconds>(0s));
  CHECK(retry_after_delay(with("Wed, 21 Oct 2015 19:28:00 GMT"), now) ==
        std::optional<std::chrono::milliseconds>(1h));
  CHECK(retry_after_delay(with("-5"), now) == std::nullopt);
  CHECK(retry_after_delay(with("soon"), now) == std::nullopt);
}

TEST_CASE("with an answer lag target, a request stays open until its answer is released",
          "[http][answer_window]") {
  TestServer server;
  server.svr.Get("/a", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  server.start();
  auto o = opts(2);
  o.answer_lag_target = std::chrono::hours(1);  // never late here: the window stays at 2
  HttpClient client(o);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<HttpResponse> held;
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    client.submit(get(server.url("/a")), [&](HttpResponse r) {
      std::lock_guard<std::mutex> lock(mu);
      ++answered;
      held.push_back(std::move(r));  // kept, like a save in progress
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  REQUIRE(cv.wait_for(lock, 2s, [&] { return answered == 2; }));
  // Both answers are held: the third request may not start.
  CHECK_FALSE(cv.wait_for(lock, 300ms, [&] { return answered == 3; }));
  CHECK(client.queued() == 1);
  REQUIRE(held.size() == 2);
  CHECK(held[0].answer_hold != nullptr);
  held.erase(held.begin());  // one answer settled: the third starts
  CHECK(cv.wait_for(lock, 2s, [&] { return answered == 3; }));
  held.clear();
}

TEST_CASE("without an answer lag target, answers hold nothing", "[http][answer_window]") {
  TestServer server;
  server.svr.Get("/a", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  server.start();
  HttpClient client(opts(1));
  std::promise<HttpResponse> first, second;
  client.submit(get(server.url("/a")), [&](HttpResponse r) { first.set_value(std::move(r)); });
  client.submit(get(server.url("/a")), [&](HttpResponse r) { second.set_value(std::move(r)); });
  auto f = first.get_future();
  REQUIRE(f.wait_for(2s) == std::future_status::ready);
  const HttpResponse kept = f.get();  // kept, yet the next request runs
  CHECK(kept.answer_hold == nullptr);
  CHECK(second.get_future().wait_for(2s) == std::future_status::ready);
}
