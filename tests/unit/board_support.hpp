#pragma once
// What the tests of the status board's metrics share: a status put on the
// board, its /metrics text as a scrape asks for it, a line looked up in it.

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "sessiond/status_board.hpp"

namespace sessiond::testing {

// Whether the exposition text has exactly this line.
inline bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

inline void put_active(status_board_actor board, const std::string& site, const std::string& id,
                       WallTime last_refresh) {
  SessionStatus s;
  s.site = site;
  s.id = id;
  s.state = SessionState::active;
  s.last_refresh = last_refresh;
  caf::anon_send(board, put_atom::value, SessionStatusPtr(std::make_shared<SessionStatus>(s)));
}

inline std::string scrape_board(caf::actor_system& sys, status_board_actor board) {
  caf::scoped_actor self{sys};
  std::string out;
  self->request(board, caf::infinite, metrics_atom::value)
      .receive([&](const std::string& s) { out = s; }, [&](caf::error& e) { FAIL(sys.render(e)); });
  return out;
}

}  // namespace sessiond::testing
