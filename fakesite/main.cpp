// sessiond-fakesite: the bundled fake upstream website as a standalone server.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "fake_site.hpp"

namespace {

const char kUsage[] =
    "usage: sessiond-fakesite [options]\n"
    "\n"
    "The bundled fake upstream website (loopback only).\n"
    "\n"
    "  --port N                    site port (default 0 = ephemeral)\n"
    "  --admin-port N              admin port (default 0 = ephemeral)\n"
    "  --idle-timeout DUR          session expires when idle longer (default 10m)\n"
    "  --rotate-grace DUR          how long a rotated-away sid still works (default 0s)\n"
    "  --token-ttl DUR             JWT lifetime, whole seconds (default 1h)\n"
    "  --require-token             check/refresh also need 'Authorization: Bearer <token>'\n"
    "  --threads N                 site thread pool size (default 32)\n"
    "  --client-rendered           GET /pwa is a client-rendered app: an HTML shell whose script\n"
    "                              renews the session through /api/pwa/session (see README)\n"
    "  --bundle-bytes N            size of the app's script (default 8192)\n"
    "  --api-cacheable             the app's API answers 'Cache-Control: public, max-age=600'\n"
    "  --port-file PATH            once listening, write {\"port\",\"admin_port\",\"base_url\"} "
    "there\n"
    "  --seed-dir DIR              log accounts in and write session files into DIR ...\n"
    "  --seed-count N              ... this many (requires --seed-dir)\n"
    "  --seed-first-mobile M       first mobile (default 09120000000)\n"
    "  --seed-localstorage-bytes N size of the localStorage value (default 20000)\n"
    "  -h, --help                  this text\n"
    "\n"
    "DUR: <integer><unit>, unit ms, s, m or h (e.g. 500ms, 3s, 10m); a bare integer is seconds.\n"
    "Runs until SIGINT/SIGTERM, then exits 0. Usage errors exit 2.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int to_int(const std::string& flag, const std::string& v, int lo, int hi) {
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(v, &used);
  } catch (const std::exception&) {
    throw UsageError(flag + ": not an integer: '" + v + "'");
  }
  if (used != v.size()) throw UsageError(flag + ": not an integer: '" + v + "'");
  if (n < lo || n > hi)
    throw UsageError(flag + ": out of range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "]");
  return static_cast<int>(n);
}

std::chrono::milliseconds to_dur(const std::string& flag, const std::string& v) {
  try {
    return fakesite::parse_duration(v);
  } catch (const std::exception& e) {
    throw UsageError(flag + ": " + e.what());
  }
}

void write_atomic(const std::string& path, const std::string& content) {
  std::filesystem::path p(path);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  std::size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(e));
    }
    off += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
}

}  // namespace

int main(int argc, char** argv) {
  fakesite::Options opt;
  std::string port_file, seed_dir, seed_first = "09120000000";
  std::optional<int> seed_count;
  int seed_ls = 20000;

  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      std::string value;
      bool has_inline = false;
      if (arg.rfind("--", 0) == 0) {
        auto eq = arg.find('=');
        if (eq != std::string::npos) {
          value = arg.substr(eq + 1);
          arg = arg.substr(0, eq);
          has_inline = true;
        }
      }
      auto need = [&]() -> std::string {
        if (has_inline) return value;
        if (i + 1 >= argc) throw UsageError(arg + ": missing value");
        return argv[++i];
      };
      if (arg == "-h" || arg == "--help") {
        std::cout << kUsage;
        return 0;
      } else if (arg == "--port") {
        opt.port = to_int(arg, need(), 0, 65535);
      } else if (arg == "--admin-port") {
        opt.admin_port = to_int(arg, need(), 0, 65535);
      } else if (arg == "--idle-timeout") {
        opt.idle_timeout = to_dur(arg, need());
        if (opt.idle_timeout.count() <= 0) throw UsageError("--idle-timeout must be > 0");
      } else if (arg == "--rotate-grace") {
        opt.rotate_grace = to_dur(arg, need());
      } else if (arg == "--token-ttl") {
        auto ms = to_dur(arg, need());
        opt.token_ttl = std::chrono::seconds((ms.count() + 999) / 1000);
        if (opt.token_ttl.count() <= 0) throw UsageError("--token-ttl must be > 0");
      } else if (arg == "--require-token") {
        if (has_inline) throw UsageError("--require-token takes no value");
        opt.require_token = true;
      } else if (arg == "--client-rendered") {
        if (has_inline) throw UsageError("--client-rendered takes no value");
        opt.client_rendered = true;
      } else if (arg == "--bundle-bytes") {
        opt.bundle_bytes = static_cast<std::size_t>(to_int(arg, need(), 0, 64 * 1024 * 1024));
      } else if (arg == "--api-cacheable") {
        if (has_inline) throw UsageError("--api-cacheable takes no value");
        opt.api_cacheable = true;
      } else if (arg == "--threads") {
        opt.threads = to_int(arg, need(), 1, 1024);
      } else if (arg == "--port-file") {
        port_file = need();
      } else if (arg == "--seed-dir") {
        seed_dir = need();
      } else if (arg == "--seed-count") {
        seed_count = to_int(arg, need(), 0, 10000000);
      } else if (arg == "--seed-first-mobile") {
        seed_first = need();
      } else if (arg == "--seed-localstorage-bytes") {
        seed_ls = to_int(arg, need(), 0, 64 * 1024 * 1024);
      } else {
        throw UsageError("unknown argument: " + arg);
      }
    }
    if (seed_count && seed_dir.empty()) throw UsageError("--seed-count requires --seed-dir");
    if (!seed_dir.empty() && !seed_count) throw UsageError("--seed-dir requires --seed-count");
  } catch (const UsageError& e) {
    std::cerr << "sessiond-fakesite: " << e.what() << "\n(see --help)\n";
    return 2;
  }

  // Block the stop signals in every thread; main waits for them below.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    fakesite::FakeSite site(opt);
    site.start();
    if (!seed_dir.empty()) site.write_session_files(seed_dir, *seed_count, seed_first, seed_ls);
    if (!port_file.empty()) {
      nlohmann::json pf = {
          {"port", site.port()}, {"admin_port", site.admin_port()}, {"base_url", site.base_url()}};
      write_atomic(port_file, pf.dump() + "\n");
    }
    std::cerr << "sessiond-fakesite: site " << site.base_url()
              << ", admin http://127.0.0.1:" << site.admin_port() << std::endl;
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    site.stop();
  } catch (const std::exception& e) {
    std::cerr << "sessiond-fakesite: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
