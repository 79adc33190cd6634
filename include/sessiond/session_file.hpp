#pragma once
// Session files on disk: `<dir>/session-<id>.json` in Playwright storage-state
// format. Reading validates without ever modifying; writing is atomic (temp
// file in the same directory, fsync, rename, fsync of the directory) with mode
// 0600, so a crash leaves the old or the new file, never a torn one.

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sessiond {

class SyncBatcher;

// What identifies one version of a file: any rewrite (in place or by rename)
// changes at least one of these.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t size = -1;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileIdentity& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
  }
  bool operator!=(const FileIdentity& o) const { return !(*this == o); }
};

// Reasons double as the `reason` label of sessiond_session_file_errors_total.
enum class FileErrorKind { not_found, io, permission, too_large, symlink, parse, schema, write };
const char* to_string(FileErrorKind kind);

struct FileError {
  FileErrorKind kind;
  std::string message;  // never contains file content
};

struct LoadedSession {
  nlohmann::json doc;
  FileIdentity identity;
};

constexpr std::size_t kMaxSessionFileBytes = 8u << 20;

bool valid_session_id(std::string_view id);

// How a site names its session files: a pattern with exactly one {id}, such
// as session-{id}.json (the default) or {id}_session.json. The text around
// {id} is [A-Za-z0-9_.-], does not start with a dot (writers' temp files do)
// and is not empty. An id matches [A-Za-z0-9_.-]{1,64}; with nothing before
// {id}, it does not start with a dot either.
class FilePattern {
 public:
  static constexpr const char* kDefault = "session-{id}.json";
  FilePattern() = default;  // session-{id}.json
  // nullopt with `why` set when the text is not a valid pattern.
  static std::optional<FilePattern> parse(std::string_view text, std::string* why = nullptr);

  // The id in a file name of this pattern, or nullopt.
  std::optional<std::string> id_of(std::string_view filename) const;
  std::string filename(std::string_view id) const;
  // dir + "/" + filename(id): where session `id` lives.
  std::string path(std::string_view dir, std::string_view id) const;
  std::string text() const { return prefix_ + "{id}" + suffix_; }
  // Whether some file name could match both patterns: then two sites in one
  // directory would both manage it. (A name matching both starts with both
  // prefixes and ends with both suffixes, so one prefix starts the other and
  // one suffix ends the other; conservative beyond that.)
  bool overlaps(const FilePattern& other) const;
  bool operator==(const FilePattern& o) const {
    return prefix_ == o.prefix_ && suffix_ == o.suffix_;
  }

 private:
  std::string prefix_ = "session-";
  std::string suffix_ = ".json";
};

// The default pattern (session-<id>.json): id, when it matches [A-Za-z0-9_.-]{1,64}.
std::optional<std::string> session_id_from_filename(std::string_view filename);
std::string session_filename(std::string_view id);
// dir + "/" + session_filename(id): where session `id` lives (default pattern).
std::string session_path(std::string_view dir, std::string_view id);

// Reads (without following links or blocking on FIFOs), then parse_session().
// `state`: where the storage state (cookies, origins) lives in the file (a
// profile's state_pointer; empty = the top level).
std::variant<LoadedSession, FileError> load_session_file(
    const std::string& path, std::size_t max_bytes = kMaxSessionFileBytes,
    const nlohmann::json::json_pointer& state = nlohmann::json::json_pointer());
// The bytes of a session file -> the validated document, or a parse error
// (empty, not JSON) or schema error naming the field. Never throws; the one
// code path for content read from disk (fuzzed: tests/fuzz/).
std::variant<nlohmann::json, FileError> parse_session(
    std::string_view content,
    const nlohmann::json::json_pointer& state = nlohmann::json::json_pointer());
// The storage state object at `state` in a session document; nullptr when it
// is missing or not an object.
const nlohmann::json* storage_state_of(const nlohmann::json& doc,
                                       const nlohmann::json::json_pointer& state);
// "storageState." for "/storageState" (empty for the top level): error paths.
std::string state_path_prefix(const nlohmann::json::json_pointer& state);
std::optional<FileIdentity> stat_identity(const std::string& path);

// Writes `content` to `path` atomically with mode 0600.
std::variant<FileIdentity, FileError> write_file_atomic(const std::string& path,
                                                        const std::string& content);

// Serialises a session document as Playwright does (2-space indentation).
std::string serialize_session(const nlohmann::json& doc);

// Saves `doc` unless the file on disk is no longer the version we read
// (`expected`): the login bot wrote a newer session, which wins.
struct SaveOutcome {
  enum class Kind { saved, changed_on_disk, failed } kind;
  FileIdentity identity;  // saved: the new file
  std::optional<FileError> error;
};
// `sync`: with a batcher the new version is renamed in place without an fsync
// and the displaced previous version is handed to the batcher (kept until the
// next group commit); without one the new version is fsynced before the rename
// and the previous one removed at once.
SaveOutcome save_if_unchanged(const std::string& path, const nlohmann::json& doc,
                              const FileIdentity& expected, SyncBatcher* sync = nullptr);

// How a save replaces the file. exchange: renameat2(RENAME_EXCHANGE), then a
// look at what was displaced (swapped back if it was not the version read):
// no window. pin_check (filesystems without it, NFS): link() the current file
// to a temp name, compare that with the version read, rename: a bot write that
// lands between the link and the rename (one round trip to the server) is
// overwritten. docs/DEPLOY.md "Shared storage (NFS)".
enum class SaveMethod { exchange, pin_check };
const char* to_string(SaveMethod method);
// The method of the 3-argument save_if_unchanged (process-wide; set once at
// start-up from probe_atomic_exchange and --save-without-exchange).
void set_save_method(SaveMethod method);
SaveMethod save_method();

// Whether renameat2(RENAME_EXCHANGE) works in `dir`: swaps two 0600 temp files
// (dot names: the watcher ignores them) and removes them. `detail` says why not.
struct ExchangeProbe {
  bool supported = false;
  std::string detail;
};
ExchangeProbe probe_atomic_exchange(const std::string& dir);

// Tests: called after the temp file is written (before the last check), and
// just before the call that replaces the file (after the last check).
enum class SaveStage { temp_written, checked };
SaveOutcome save_if_unchanged(const std::string& path, const nlohmann::json& doc,
                              const FileIdentity& expected, SaveMethod method,
                              const std::function<void(SaveStage)>& stage_hook = {},
                              SyncBatcher* sync = nullptr);

// Moves a logged-out session into <dir>/invalid/ (created 0700) without ever
// replacing an earlier quarantined file. Returns the new path.
std::variant<std::string, FileError> quarantine_file(const std::string& path,
                                                     const std::string& sessions_dir);

// After a power loss between a save and its group commit (SyncBatcher): a
// session file that does not load (empty, torn) is replaced by the newest
// complete leftover of its own (the version the save displaced). Files that
// load are never touched. `pattern` names the site's files, `state` where
// their storage state lives (a profile's state_pointer). Returns the paths
// restored.
std::vector<std::string> restore_from_leftovers(
    const std::string& dir, const FilePattern& pattern = FilePattern(),
    const nlohmann::json::json_pointer& state = nlohmann::json::json_pointer());

// Removes temp files left by a crashed writer (older than `min_age`: another
// replica may be writing right now).
// Only temp files of names of `pattern` (and of the save-method probe).
int remove_stale_temp_files(const std::string& dir, std::chrono::seconds min_age,
                            const FilePattern& pattern = FilePattern());

// The keepalive block sessiond owns inside each file.
struct KeepaliveBlock {
  std::string state = "active";             // active | retrying | at_risk | invalid
  std::optional<std::string> last_refresh;  // RFC 3339
  std::int64_t refresh_count = 0;
  std::optional<std::string> last_error;
  std::optional<std::string> invalid_since;
  // An operator's pause (POST /sessions/{id}/pause): not refreshed, across
  // restarts, until resumed or the bot writes the file without this block.
  bool paused = false;
  std::optional<std::string> paused_at;  // RFC 3339
  std::optional<std::string> pause_reason;
  // refresh_when's default age (RFC 3339): when the session began, i.e. the
  // bot's login or the last refresh step that renewed it. Kept only by
  // profiles with refresh_when; written when set, left as it is otherwise.
  std::optional<std::string> session_start;
};
KeepaliveBlock read_keepalive(const nlohmann::json& doc);
void write_keepalive(nlohmann::json& doc, const KeepaliveBlock& block);

// Parses the RFC 3339 timestamps sessiond writes ("2026-11-28T10:30:00.000Z").
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

// A time read from untrusted input (a file's lastRefresh, a JWT's exp), in
// seconds since the epoch, is used only within 1970..2199: a year such as 4832
// would overflow system_clock's int64 nanoseconds (1677..2262), and 1e300 does
// not convert to an integer at all. sessiond itself writes only present times.
bool plausible_unix_seconds(double seconds);

}  // namespace sessiond
