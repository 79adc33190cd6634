#include "sessiond/browser_probe.hpp"

#include <poll.h>
#include <unistd.h>

#include <chrono>

#include "sessiond/devtools.hpp"

namespace sessiond {

std::string choose_browser(const std::string& configured) {
  if (!configured.empty()) return configured;
  for (const char* path :
       {"/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium"})
    if (::access(path, X_OK) == 0) return path;
  return {};
}

BrowserProbe probe_browser(const BrowserLaunchOptions& options, Millis timeout) {
  BrowserProbe probe;
  if (options.path.empty()) {
    probe.error =
        "no browser found: install Debian's chromium-headless-shell (or chromium), or set "
        "--browser PATH";
    return probe;
  }
  if (::access(options.path.c_str(), X_OK) != 0) {
    probe.error = options.path + ": not an executable file";
    return probe;
  }
  std::string error;
  auto browser = BrowserProcess::launch(options, error);
  if (!browser) {
    probe.error = options.path + ": " + error;
    return probe;
  }
  browser->write(devtools::frame({{"id", 1}, {"method", "Browser.getVersion"}}));
  devtools::Framer framer;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Bounded: until the reply, EOF, an error, or the deadline.
  while (!probe.ok && probe.error.empty()) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left <= Millis(0)) {
      probe.error = options.path + ": no answer over the DevTools pipe within " +
                    std::to_string(timeout.count()) + " ms";
      break;
    }
    pollfd fds[2] = {
        {browser->reply_fd(), POLLIN, 0},
        {browser->command_fd(), static_cast<short>(browser->wants_write() ? POLLOUT : 0), 0}};
    if (::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 200))) < 0) continue;
    if (fds[1].revents & POLLOUT) browser->flush();
    if (!(fds[0].revents & (POLLIN | POLLHUP))) continue;
    char buf[16384];
    ssize_t n = browser->read_some(buf, sizeof buf);
    if (n == 0) {
      probe.error = options.path +
                    ": exited at start-up (as root it needs --no-sandbox; is it the "
                    "real binary, not a wrapper script?)";
      break;
    }
    if (n < 0) continue;
    for (const auto& msg :
         framer.feed(std::string_view(buf, static_cast<std::size_t>(n))).messages) {
      if (msg.value("id", 0) != 1) continue;
      if (msg.contains("result")) {
        probe.ok = true;
        probe.product = msg["result"].value("product", "");
      } else {
        probe.error = options.path + ": Browser.getVersion failed";
      }
    }
  }
  browser->stop(std::chrono::milliseconds(2000));
  return probe;
}

}  // namespace sessiond
