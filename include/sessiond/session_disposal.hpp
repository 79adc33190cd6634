#pragma once
// What happens to the file of a session the site logged out, as a plain
// function (run on the disk I/O pool): quarantine (move to invalid/), mark
// (keep it, keepalive state "invalid") or delete, never over a newer file the
// login bot wrote meanwhile. No CAF.

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sessiond/config.hpp"
#include "sessiond/session_file.hpp"

namespace sessiond {

struct DisposeOutcome {
  bool changed_on_disk = false;  // the bot wrote a new file: nothing was disposed
  std::optional<FileError> error;
  std::string where;                     // the new path (quarantine), the file (mark, delete)
  std::optional<FileIdentity> identity;  // mark: the version written (the file stays ours)
};

// `doc` is the session as last read, already marked invalid (keepalive block);
// `expected` the version it was read from. mark and quarantine write `doc`
// first (save_if_unchanged), delete unlinks only if the file is still `expected`.
// `committed` (optional) runs once the file is known to be this session's and
// before it moves or goes: the place to announce the disposal, so that an
// announcement is never followed by "the bot wrote a new login, kept".
DisposeOutcome dispose_logged_out(const std::string& path, const std::string& sessions_dir,
                                  OnLoggedOut mode, const nlohmann::json& doc,
                                  const FileIdentity& expected,
                                  const std::function<void()>& committed = {});

}  // namespace sessiond
