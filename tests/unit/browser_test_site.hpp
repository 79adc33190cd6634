#pragma once
// A tiny client-rendered site on 127.0.0.1 for the browser pool's tests and
// bench/browser_step.cpp. GET /app?mode=... serves a page whose script (a
// static, immutable /static/app.js, and optionally a 1 MB /static/bundle.js)
// reads a token from localStorage and the `sid` cookie, calls /api/rotate
// with both, stores the rotated token and inserts div.homeSection, or routes
// to /auth/login (form.login) when the site says 401.
//   mode=ok    rotate, then div.homeSection
//   mode=hang  rotate, then 200 ms later GET /api/ack, and never log in
//   mode=iso   report what the page can see (sessionStorage, localStorage,
//              cookies, IndexedDB, Cache Storage, service workers, a cacheable
//              /api/me answer) to /api/report, write its own of each (a
//              service worker registered), then div.homeSection
// Accounts: sid "sid-<acct>-<n>" + token "tok-<acct>-<n>" (n rotates).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace browser_test {

inline const char* kAppJs = R"JS((async () => {
  const q = new URLSearchParams(location.search);
  const mode = q.get('mode') || 'ok';
  const report = (what) => fetch('/api/report', {method: 'POST', body: JSON.stringify(what)});
  const idb = (write) => new Promise((res) => {
    const r = indexedDB.open('iso', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('s');
    r.onerror = () => res('error');
    r.onsuccess = () => {
      const db = r.result;
      const tx = db.transaction('s', write === undefined ? 'readonly' : 'readwrite');
      let value = null;
      if (write === undefined) {
        const g = tx.objectStore('s').get('k');
        g.onsuccess = () => { value = g.result === undefined ? null : g.result; };
      } else {
        tx.objectStore('s').put(write, 'k');
        value = write;
      }
      tx.oncomplete = () => { db.close(); res(value); };
      tx.onerror = () => { db.close(); res('error'); };
    };
  });
  if (mode === 'iso') {
    const who = q.get('who');
    const seen = {
      ss: sessionStorage.getItem('ss'),
      ls: localStorage.getItem('mine'),
      cookie: document.cookie,
      idb: await idb(),
      cache: await caches.open('iso').then((c) => c.match('/cached')).then((r) => r ? r.text() : null),
      me: await fetch('/api/me').then((r) => r.text()),
      sw: await navigator.serviceWorker.getRegistrations().then((r) => r.length),
      who,
    };
    await report(seen);
    sessionStorage.setItem('ss', who);
    localStorage.setItem('mine', who);
    document.cookie = 'js=' + who + '; path=/';
    await idb(who);
    await caches.open('iso').then((c) => c.put('/cached', new Response(who)));
    // Bounded: the registration is what matters, not its activation.
    await Promise.race([navigator.serviceWorker.register('/static/sw.js?who=' + who)
                            .then(() => navigator.serviceWorker.ready),
                        new Promise((res) => setTimeout(res, 2000))]);
    document.body.insertAdjacentHTML('beforeend', '<div class="homeSection">done</div>');
    return;
  }
  const token = localStorage.getItem('token') || '';
  const r = await fetch('/api/rotate', {headers: {'X-Token': token}});
  if (r.status === 401) {
    history.pushState({}, '', '/auth/login');
    document.body.insertAdjacentHTML('beforeend', '<form class="login"><input name="m"></form>');
    return;
  }
  const j = await r.json();
  localStorage.setItem('token', j.token);
  if (mode === 'hang') {
    await new Promise((res) => setTimeout(res, 200));
    fetch('/api/ack');
    return;
  }
  document.body.insertAdjacentHTML('beforeend', '<div class="homeSection">Welcome</div>');
})();)JS";

class Site {
 public:
  httplib::Server svr;

  Site() {
    // 1 MB of script like a site's hashed bundle: thousands of small module
    // functions, every one run once at startup, with pseudo-random content
    // (compresses about as badly as real minified code).
    bundle_ = "var __m = [];\n";
    std::uint32_t seed = 12345;
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$";
    for (int i = 0; bundle_.size() < (1u << 20) - 200; ++i) {
      std::string text;
      for (int k = 0; k < 48; ++k) {
        seed = seed * 1664525u + 1013904223u;
        text += alphabet[(seed >> 24) % 64];
      }
      bundle_ += "__m.push(function(x){var s=\"" + text + "\";return x+s.length*" +
                 std::to_string(seed % 997) + "+s.charCodeAt(x%48);});\n";
    }
    bundle_ += "var __r = 0; for (var i = 0; i < __m.length; ++i) __r += __m[i](i);\n";
    svr.Get("/app", [this](const httplib::Request& req, httplib::Response& res) {
      std::string html = "<!doctype html><html><head><title>app</title>";
      if (req.has_param("bundle")) html += "<script src=\"/static/bundle.js\"></script>";
      html += "<script src=\"/static/app.js\"></script></head><body><p>loading</p></body></html>";
      res.set_header("Cache-Control", "no-cache");
      res.set_content(html, "text/html");
    });
    // A service worker that sees every request of the origin (mode=iso).
    svr.Get("/static/sw.js", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("self.addEventListener('fetch', () => {});", "application/javascript");
    });
    svr.Get("/auth/login", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<!doctype html><form class=\"login\"></form>", "text/html");
    });
    svr.Get("/static/app.js", [this](const httplib::Request&, httplib::Response& res) {
      static_hit("app.js", std::string(kAppJs).size());
      res.set_header("Cache-Control", "public, max-age=31536000, immutable");
      res.set_content(kAppJs, "application/javascript");
    });
    svr.Get("/static/bundle.js", [this](const httplib::Request&, httplib::Response& res) {
      static_hit("bundle.js", bundle_.size());
      res.set_header("Cache-Control", "public, max-age=31536000, immutable");
      res.set_content(bundle_, "application/javascript");
    });
    svr.Get("/api/rotate", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      const std::string sid = cookie(req, "sid");
      const std::string token = req.get_header_value("X-Token");
      auto it = accounts_.find(sid);
      if (it == accounts_.end() || it->second.token != token) {
        ++unauthorized_;
        res.status = 401;
        res.set_content("{}", "application/json");
        return;
      }
      Account a = it->second;
      accounts_.erase(it);
      ++a.n;
      a.token = "tok-" + a.name + "-" + std::to_string(a.n);
      const std::string new_sid = "sid-" + a.name + "-" + std::to_string(a.n);
      accounts_[new_sid] = a;
      ++rotations_;
      res.set_header("Set-Cookie", "sid=" + new_sid + "; Path=/; HttpOnly; SameSite=Lax");
      res.set_content(nlohmann::json{{"token", a.token}}.dump(), "application/json");
      cv_.notify_all();
    });
    svr.Get("/api/me", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      ++me_calls_;
      auto it = accounts_.find(cookie(req, "sid"));
      // Cacheable on purpose: an authenticated answer a shared HTTP cache must never reuse.
      res.set_header("Cache-Control", "private, max-age=3600");
      res.set_content(it == accounts_.end() ? "nobody" : it->second.name, "text/plain");
    });
    svr.Get("/api/ack", [this](const httplib::Request&, httplib::Response& res) {
      std::function<void()> hook;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++acks_;
        hook = on_ack;
      }
      if (hook) hook();
      cv_.notify_all();
      res.set_content("{}", "application/json");
    });
    svr.Post("/api/report", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      reports_.push_back(nlohmann::json::parse(req.body, nullptr, false));
      cv_.notify_all();
      res.set_content("{}", "application/json");
    });
  }
  ~Site() { stop(); }

  bool start() {
    port_ = svr.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return false;
    thread_ = std::thread([this] { svr.listen_after_bind(); });
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!svr.is_running() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    return svr.is_running();
  }
  void stop() {
    if (thread_.joinable()) {
      svr.stop();
      thread_.join();
    }
  }

  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string url(const std::string& path) const { return origin() + path; }

  // A new account, logged in: its Playwright storage state.
  nlohmann::json add_account(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    Account a{name, "tok-" + name + "-0", 0};
    accounts_["sid-" + name + "-0"] = a;
    return state_for("sid-" + name + "-0", a.token);
  }
  nlohmann::json state_for(const std::string& sid, const std::string& token) const {
    return {{"cookies",
             {{{"name", "sid"},
               {"value", sid},
               {"domain", "127.0.0.1"},
               {"path", "/"},
               {"expires", -1},
               {"httpOnly", true},
               {"secure", false},
               {"sameSite", "Lax"}}}},
            {"origins",
             {{{"origin", origin()}, {"localStorage", {{{"name", "token"}, {"value", token}}}}}}}};
  }
  // The current sid and token of an account.
  std::pair<std::string, std::string> current(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [sid, a] : accounts_)
      if (a.name == name) return {sid, a.token};
    return {};
  }

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(); });
  }

  int rotations() const {
    std::lock_guard<std::mutex> l(mu_);
    return rotations_;
  }
  int unauthorized() const {
    std::lock_guard<std::mutex> l(mu_);
    return unauthorized_;
  }
  int acks_locked() const { return acks_; }  // inside wait()
  int me_calls() const {
    std::lock_guard<std::mutex> l(mu_);
    return me_calls_;
  }
  std::vector<nlohmann::json> reports() const {
    std::lock_guard<std::mutex> l(mu_);
    return reports_;
  }
  std::size_t reports_locked() const { return reports_.size(); }  // inside wait()
  std::map<std::string, int> static_hits() const {
    std::lock_guard<std::mutex> l(mu_);
    return static_hits_;
  }
  std::uint64_t static_bytes() const {
    std::lock_guard<std::mutex> l(mu_);
    return static_bytes_;
  }

  std::function<void()> on_ack;  // set before the step; runs on the server's thread

 private:
  struct Account {
    std::string name, token;
    int n = 0;
  };
  static std::string cookie(const httplib::Request& req, const std::string& name) {
    const std::string h = req.get_header_value("Cookie");
    std::size_t pos = 0;
    while (pos < h.size()) {
      auto end = h.find(';', pos);
      if (end == std::string::npos) end = h.size();
      std::string part = h.substr(pos, end - pos);
      while (!part.empty() && part.front() == ' ') part.erase(0, 1);
      if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
      pos = end + 1;
    }
    return "";
  }
  void static_hit(const std::string& name, std::size_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    ++static_hits_[name];
    static_bytes_ += bytes;
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Account> accounts_;  // by current sid
  int rotations_ = 0, unauthorized_ = 0, acks_ = 0, me_calls_ = 0;
  std::vector<nlohmann::json> reports_;
  std::map<std::string, int> static_hits_;
  std::uint64_t static_bytes_ = 0;
  std::string bundle_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace browser_test
