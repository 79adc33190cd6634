#include "sessiond/session_disposal.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <variant>

namespace sessiond {

DisposeOutcome dispose_logged_out(const std::string& path, const std::string& sessions_dir,
                                  OnLoggedOut mode, const nlohmann::json& doc,
                                  const FileIdentity& expected,
                                  const std::function<void()>& committed) {
  DisposeOutcome out;
  auto commit = [&] {
    if (committed) committed();
  };
  if (mode == OnLoggedOut::remove) {
    // Nothing to write first: unlink only the version we read, never a newer
    // login the bot put in its place. (A rewrite between the stat and the
    // unlink is not covered: POSIX has no compare-and-unlink.)
    auto current = stat_identity(path);
    if (!current || *current != expected) {
      out.changed_on_disk = true;
      return out;
    }
    commit();
    if (::unlink(path.c_str()) != 0) {
      out.error = FileError{FileErrorKind::write, std::string("unlink: ") + std::strerror(errno)};
    } else {
      out.where = path;
    }
    return out;
  }
  // mark and quarantine: the "invalid" keepalive block is written first, so a
  // quarantined file says why it is there.
  auto saved = save_if_unchanged(path, doc, expected);
  if (saved.kind == SaveOutcome::Kind::changed_on_disk) {
    out.changed_on_disk = true;
    return out;
  }
  // Disposed even if the write failed: the session is no longer refreshed.
  commit();
  if (saved.kind == SaveOutcome::Kind::failed) {
    out.error = saved.error ? *saved.error : FileError{FileErrorKind::write, "write failed"};
  } else if (mode == OnLoggedOut::quarantine) {
    auto moved = quarantine_file(path, sessions_dir);
    if (auto* err = std::get_if<FileError>(&moved))
      out.error = *err;
    else
      out.where = std::get<std::string>(moved);
  } else {
    out.where = path;
    out.identity = saved.identity;
  }
  return out;
}

}  // namespace sessiond
