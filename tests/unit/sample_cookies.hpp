#pragma once
// The cookies of a logged-in baman24 account as Playwright saves them: a
// rotating host-only JWT, a domain cookie on a sub-path with fields sessiond
// does not own (partitionKey, a custom object), and a session cookie. Shared
// by the cookie and session-file tests.

#include <nlohmann/json.hpp>

namespace sessiond::testing {

inline nlohmann::json sample_cookies() {
  using json = nlohmann::json;
  return json::array({
      {{"name", "pwa_access_token"},
       {"value", "jwt-1"},
       {"domain", "baman24.ir"},
       {"path", "/"},
       {"expires", 1753354887.55},
       {"httpOnly", true},
       {"secure", true},
       {"sameSite", "None"}},
      {{"name", "refresh_token"},
       {"value", "r1"},
       {"domain", ".baman24.ir"},
       {"path", "/api"},
       {"expires", 1784890887.125},
       {"httpOnly", false},
       {"secure", true},
       {"sameSite", "Strict"},
       {"partitionKey", "https://baman24.ir"},
       {"_custom", {{"kept", true}}}},
      {{"name", "csrftoken"},
       {"value", "c1"},
       {"domain", "baman24.ir"},
       {"path", "/"},
       {"expires", -1},
       {"httpOnly", false},
       {"secure", false},
       {"sameSite", "Lax"}},
  });
}

}  // namespace sessiond::testing
