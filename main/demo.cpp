#include "demo.hpp"

#include <curl/curl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessiond/json_log.hpp"

namespace sessiond {
namespace {

// sessiond-fakesite beside this executable, or in fakesite/ below it (the
// build tree's layout).
std::string fakesite_path() {
  std::error_code ec;
  auto dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  if (ec) throw std::runtime_error("cannot find this executable: " + ec.message());
  for (auto path : {dir / "sessiond-fakesite", dir / "fakesite" / "sessiond-fakesite"})
    if (::access(path.c_str(), X_OK) == 0) return path.string();
  throw std::runtime_error("sessiond-fakesite not found beside " + dir.string() +
                           ": the demo needs the fake site built with sessiond (scripts/setup.sh)");
}

}  // namespace

DemoSite::DemoSite(int sessions) : sessions_(sessions) {
  const std::string site_binary = fakesite_path();
  char tmpl[] = "/tmp/sessiond-demo-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  work_dir_ = tmpl;
  sessions_dir_ = work_dir_ + "/sessions";
  ::mkdir(sessions_dir_.c_str(), 0700);  // session files hold credentials
  try {
    start_site(site_binary);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir_, ec);  // the destructor does not run
    throw;
  }
}

void DemoSite::start_site(const std::string& site_binary) {
  const std::string port_file = work_dir_ + "/site.json";
  std::vector<std::string> args = {site_binary,
                                   "--idle-timeout",
                                   "6s",
                                   "--threads",
                                   "8",
                                   "--port-file",
                                   port_file,
                                   "--seed-dir",
                                   sessions_dir_,
                                   "--seed-count",
                                   std::to_string(sessions_),
                                   "--seed-localstorage-bytes",
                                   "2000"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    // Its own process group: Ctrl-C in a terminal reaches sessiond only, which
    // drains its refreshes against the site before it stops the site.
    ::setpgid(0, 0);
    // The daemon blocks SIGINT/SIGTERM for sigtimedwait; the site must not.
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  // Bounded wait for the site to listen (it writes the port file then).
  for (int i = 0; i < 200 && base_url_.empty(); ++i) {
    std::ifstream in(port_file);
    auto doc = nlohmann::json::parse(in, nullptr, false);
    if (!doc.is_discarded() && doc.contains("base_url")) {
      base_url_ = doc["base_url"].get<std::string>();
      admin_port_ = doc["admin_port"].get<int>();
      break;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("the fake site exited at start-up");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (base_url_.empty()) throw std::runtime_error("the fake site did not start within 10 s");
}

void DemoSite::stop_timeline() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

DemoSite::~DemoSite() {
  stop_timeline();
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  std::error_code ec;
  if (!work_dir_.empty()) std::filesystem::remove_all(work_dir_, ec);
}

bool DemoSite::admin_post(const std::string& path, const std::string& body) {
  CURL* curl = curl_easy_init();
  if (!curl) return false;
  std::string url = "http://127.0.0.1:" + std::to_string(admin_port_) + path;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
  long code = 0;
  bool ok = curl_easy_perform(curl) == CURLE_OK &&
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return ok;
}

void DemoSite::start_timeline() {
  thread_ = std::thread([this] { timeline(); });
}

void DemoSite::timeline() {
  auto sleep_for = [&](std::chrono::seconds d) {
    for (auto end = std::chrono::steady_clock::now() + d; std::chrono::steady_clock::now() < end;) {
      if (stop_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return !stop_;
  };
  if (!sleep_for(std::chrono::seconds(8))) return;
  const std::string added = "0912" + std::to_string(7000000 + sessions_);
  nlohmann::json seed = {
      {"dir", sessions_dir_}, {"count", 1}, {"first_mobile", added}, {"localstorage_bytes", 2000}};
  if (admin_post("/seed", seed.dump()))
    log::info("demo", "demo: the login bot wrote a new session file", {{"session", added}});
  if (!sleep_for(std::chrono::seconds(7))) return;
  if (admin_post("/logout", nlohmann::json{{"mobiles", {"09120000001"}}}.dump()))
    log::info("demo", "demo: the site logged session 09120000001 out; watch it move to invalid/",
              {{"session", "09120000001"}});
}

}  // namespace sessiond
