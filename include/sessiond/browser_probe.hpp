#pragma once
// Which Chromium to run and whether it starts: `--browser PATH` (or
// SESSIOND_BROWSER), else Debian's headless shell, else full Chromium; and a
// probe that starts it, asks its version over the DevTools pipe and stops it
// (`check-config`, start-up). No CAF.

#include <optional>
#include <string>

#include "sessiond/browser_process.hpp"
#include "sessiond/duration.hpp"

namespace sessiond {

// `configured` when set; else the first executable of
// /usr/lib/chromium/chromium-headless-shell, /usr/lib/chromium/chromium.
// "" when none is there.
std::string choose_browser(const std::string& configured);

struct BrowserProbe {
  bool ok = false;
  std::string product;  // "HeadlessChrome/156.0..." when ok
  std::string error;    // why not, when !ok
};
// Starts the browser, waits (at most `timeout`) for Browser.getVersion, stops it.
BrowserProbe probe_browser(const BrowserLaunchOptions& options, Millis timeout);

}  // namespace sessiond
