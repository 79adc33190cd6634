#include "sessiond/session_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <random>

#include "sessiond/json_log.hpp"
#include "sessiond/sync_batcher.hpp"

namespace sessiond {
namespace {

using json = nlohmann::json;

constexpr std::string_view kTempMarker = ".tmp-";
constexpr std::string_view kProbeStem = "session-exchange-probe";

FileIdentity identity_of(const struct stat& st) {
  FileIdentity id;
  id.device = static_cast<std::uint64_t>(st.st_dev);
  id.inode = static_cast<std::uint64_t>(st.st_ino);
  id.size = static_cast<std::int64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

FileError errno_error(FileErrorKind fallback, const std::string& what, int err) {
  FileErrorKind kind = fallback;
  if (err == ENOENT)
    kind = FileErrorKind::not_found;
  else if (err == EACCES || err == EPERM)
    kind = FileErrorKind::permission;
  else if (err == ELOOP)
    kind = FileErrorKind::symlink;
  return FileError{kind, what + ": " + std::strerror(err)};
}

std::string dirname_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Playwright's storage state nests 5 levels deep (origins[].localStorage[]).
// Far deeper (a 200 KB file of "[[[[...") would make every save recurse that
// deep and write depth² bytes of indentation: gigabytes.
constexpr int kMaxNesting = 64;

bool nested_deeper_than(const json& v, int levels) {
  if (!v.is_structured()) return false;
  if (levels == 0) return true;
  for (const auto& child : v)
    if (nested_deeper_than(child, levels - 1)) return true;
  return false;
}

std::optional<FileError> validate_schema(const json& doc, const json::json_pointer& state) {
  if (!doc.is_object()) return FileError{FileErrorKind::schema, "top level is not a JSON object"};
  if (nested_deeper_than(doc, kMaxNesting))
    return FileError{FileErrorKind::schema,
                     "nested deeper than " + std::to_string(kMaxNesting) + " levels"};
  const std::string at = state_path_prefix(state);
  const json* st = storage_state_of(doc, state);
  if (!st)
    return FileError{FileErrorKind::schema, "no \"" + at.substr(0, at.size() - 1) +
                                                "\" object (the profile's state_pointer)"};
  auto cookies = st->find("cookies");
  if (cookies == st->end())
    return FileError{FileErrorKind::schema, "no \"" + at + "cookies\" array"};
  if (!cookies->is_array())
    return FileError{FileErrorKind::schema, "\"" + at + "cookies\" is not an array"};
  for (std::size_t i = 0; i < cookies->size(); ++i) {
    const auto& c = (*cookies)[i];
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string() || !c.contains("value") ||
        !c["value"].is_string() || !c.contains("domain") || !c["domain"].is_string())
      return FileError{FileErrorKind::schema, at + "cookies[" + std::to_string(i) +
                                                  "] needs string name, value and domain"};
    if (c.contains("expires") && !c["expires"].is_number())
      return FileError{FileErrorKind::schema,
                       at + "cookies[" + std::to_string(i) + "].expires is not a number"};
  }
  if (auto o = st->find("origins"); o != st->end() && !o->is_array())
    return FileError{FileErrorKind::schema, "\"" + at + "origins\" is not an array"};
  if (auto h = doc.find("headers"); h != doc.end()) {
    if (!h->is_object()) return FileError{FileErrorKind::schema, "\"headers\" is not an object"};
    for (auto& [k, v] : h->items())
      if (!v.is_string())
        return FileError{FileErrorKind::schema, "headers." + k + " is not a string"};
  }
  if (auto k = doc.find("keepalive"); k != doc.end() && !k->is_object())
    return FileError{FileErrorKind::schema, "\"keepalive\" is not an object"};
  return std::nullopt;
}

std::string random_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(rng() % 1000000);
}

}  // namespace

const char* to_string(FileErrorKind kind) {
  switch (kind) {
    case FileErrorKind::not_found:
      return "not_found";
    case FileErrorKind::io:
      return "io";
    case FileErrorKind::permission:
      return "permission";
    case FileErrorKind::too_large:
      return "too_large";
    case FileErrorKind::symlink:
      return "symlink";
    case FileErrorKind::parse:
      return "parse";
    case FileErrorKind::schema:
      return "schema";
    case FileErrorKind::write:
      return "write";
  }
  return "io";
}

bool valid_session_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  if (id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<FilePattern> FilePattern::parse(std::string_view text, std::string* why) {
  auto fail = [&](const std::string& reason) -> std::optional<FilePattern> {
    if (why) *why = reason;
    return std::nullopt;
  };
  constexpr std::string_view kId = "{id}";
  auto at = text.find(kId);
  if (at == std::string_view::npos) return fail("expected exactly one {id}");
  if (text.find(kId, at + 1) != std::string_view::npos) return fail("expected exactly one {id}");
  if (text.size() > 100) return fail("longer than 100 characters");
  FilePattern p;
  p.prefix_ = std::string(text.substr(0, at));
  p.suffix_ = std::string(text.substr(at + kId.size()));
  if (p.prefix_.empty() && p.suffix_.empty())
    return fail("{id} alone would take every file in the directory");
  for (const auto* part : {&p.prefix_, &p.suffix_})
    for (char c : *part) {
      bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-';
      if (!ok) return fail("only letters, digits, _ . - around {id}");
    }
  if (!p.prefix_.empty() && p.prefix_.front() == '.')
    return fail("must not start with a dot (temp files do)");
  return p;
}

namespace {
bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}
bool ends_with(const std::string& s, const std::string& x) {
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}
}  // namespace

bool FilePattern::overlaps(const FilePattern& o) const {
  const bool prefixes = starts_with(prefix_, o.prefix_) || starts_with(o.prefix_, prefix_);
  const bool suffixes = ends_with(suffix_, o.suffix_) || ends_with(o.suffix_, suffix_);
  return prefixes && suffixes;
}

std::optional<std::string> FilePattern::id_of(std::string_view name) const {
  if (name.size() <= prefix_.size() + suffix_.size()) return std::nullopt;
  if (name.substr(0, prefix_.size()) != prefix_) return std::nullopt;
  if (name.substr(name.size() - suffix_.size()) != suffix_) return std::nullopt;
  auto id = name.substr(prefix_.size(), name.size() - prefix_.size() - suffix_.size());
  if (!valid_session_id(id)) return std::nullopt;
  // Without a prefix, a dot name would be a hidden (or temp) file.
  if (prefix_.empty() && id.front() == '.') return std::nullopt;
  return std::string(id);
}

std::string FilePattern::filename(std::string_view id) const {
  return prefix_ + std::string(id) + suffix_;
}

std::string FilePattern::path(std::string_view dir, std::string_view id) const {
  return std::string(dir) + "/" + filename(id);
}

std::optional<std::string> session_id_from_filename(std::string_view name) {
  return FilePattern().id_of(name);
}

std::string session_filename(std::string_view id) {
  return FilePattern().filename(id);
}

std::string session_path(std::string_view dir, std::string_view id) {
  return FilePattern().path(dir, id);
}

std::optional<FileIdentity> stat_identity(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return identity_of(st);
}

std::variant<LoadedSession, FileError> load_session_file(const std::string& path,
                                                         std::size_t max_bytes,
                                                         const json::json_pointer& state) {
  struct stat lst {};
  if (::lstat(path.c_str(), &lst) != 0) return errno_error(FileErrorKind::io, "stat", errno);
  if (S_ISLNK(lst.st_mode))
    return FileError{FileErrorKind::symlink,
                     "is a symbolic link; session files must be regular files in the sessions "
                     "directory (links are never followed)"};
  // O_NONBLOCK: a FIFO planted in the directory must not hang a worker.
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno_error(FileErrorKind::io, "open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return errno_error(FileErrorKind::io, "fstat", err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return FileError{FileErrorKind::io, "not a regular file"};
  }
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return FileError{FileErrorKind::too_large, "file is " + std::to_string(st.st_size) +
                                                   " bytes, over the limit of " +
                                                   std::to_string(max_bytes)};
  }
  std::string content;
  content.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < content.size()) {
    ssize_t n = ::read(fd, content.data() + got, content.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return errno_error(FileErrorKind::io, "read", err);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  content.resize(got);
  auto parsed = parse_session(content, state);
  if (auto* err = std::get_if<FileError>(&parsed)) return std::move(*err);
  return LoadedSession{std::move(std::get<json>(parsed)), identity_of(st)};
}

const json* storage_state_of(const json& doc, const json::json_pointer& state) {
  if (!doc.is_object()) return nullptr;
  // contains() throws for a pointer through an array with a non-number token.
  try {
    if (!doc.contains(state)) return nullptr;
    const json& st = doc.at(state);
    return st.is_object() ? &st : nullptr;
  } catch (const json::exception&) {
    return nullptr;
  }
}

std::string state_path_prefix(const json::json_pointer& state) {
  std::string out;
  for (auto p = state; !p.empty(); p = p.parent_pointer()) out = p.back() + "." + out;
  return out;
}

std::variant<json, FileError> parse_session(std::string_view content,
                                            const json::json_pointer& state) {
  if (content.empty()) return FileError{FileErrorKind::parse, "file is empty"};
  json doc = json::parse(content, nullptr, false);
  if (doc.is_discarded()) return FileError{FileErrorKind::parse, "not valid JSON"};
  if (auto err = validate_schema(doc, state)) return *err;
  return doc;
}

std::string serialize_session(const json& doc) {
  return doc.dump(2, ' ', false, json::error_handler_t::replace);
}

namespace {

struct TempFile {
  std::string path;
  FileIdentity identity;
};

// Writes `content` to a new 0600 temp file next to `path`, fsynced unless a
// SyncBatcher makes it durable later.
std::variant<TempFile, FileError> write_temp_file(const std::string& path,
                                                  const std::string& content, bool fsync_now) {
  const std::string tmp =
      dirname_of(path) + "/." + basename_of(path) + std::string(kTempMarker) + random_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return errno_error(FileErrorKind::write, "create temp file", errno);
  auto abandon = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    FileError e = errno_error(FileErrorKind::write, what, err);
    if (e.kind == FileErrorKind::not_found) e.kind = FileErrorKind::write;
    return e;
  };
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return abandon("write", errno);
    done += static_cast<std::size_t>(n);
  }
  if (fsync_now && ::fsync(fd) != 0) return abandon("fsync", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return abandon("fstat", errno);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_error(FileErrorKind::write, "close", err);
  }
  return TempFile{tmp, identity_of(st)};
}

}  // namespace

// No fsync of the directory after a rename: after a crash the rename may be
// lost, which leaves the previous (complete) file: old or new, never torn. It
// would double the cost of every save (~10 ms per fsync on some disks).
std::variant<FileIdentity, FileError> write_file_atomic(const std::string& path,
                                                        const std::string& content) {
  auto written = write_temp_file(path, content, true);
  if (auto* err = std::get_if<FileError>(&written)) return *err;
  const auto& tmp = std::get<TempFile>(written);
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.path.c_str());
    return errno_error(FileErrorKind::write, "rename", err);
  }
  return tmp.identity;
}

namespace {

std::atomic<SaveMethod> g_save_method{SaveMethod::exchange};

// The previous version of a replaced file: kept until the batcher's next sync
// made the new one durable, or removed now (the new one was fsynced first).
void keep_or_remove(const std::string& previous, SyncBatcher* sync) {
  if (sync)
    sync->keep_until_durable(previous);
  else
    ::unlink(previous.c_str());
}

bool exchange_unsupported(int err) {
  return err == EINVAL || err == ENOSYS || err == ENOTSUP || err == EOPNOTSUPP;
}

SaveOutcome failed_outcome(const char* what, int err) {
  return SaveOutcome{SaveOutcome::Kind::failed, {}, errno_error(FileErrorKind::write, what, err)};
}

// The last step of a save without RENAME_EXCHANGE. lstat() on NFS may answer
// from the attribute cache (seconds old: it would say "unchanged" after the
// bot replaced the file from another node); link() is done by the server on
// what the name means now (a stale cached name fails with ESTALE and the
// kernel looks it up again), and its reply refreshes the attributes compared.
// The pinned version cannot go away (or its inode number be reused) while we
// compare. What remains: a rename landing between the link and our rename.
SaveOutcome replace_if_pinned_unchanged(const std::string& path, const std::string& tmp,
                                        const FileIdentity& expected,
                                        const std::function<void(SaveStage)>& stage_hook,
                                        SyncBatcher* sync) {
  const SaveOutcome changed{SaveOutcome::Kind::changed_on_disk, {}, std::nullopt};
  // A temp name: left behind by a crash, it is removed like any temp file. It
  // only ever adds a link: removing it never loses a version.
  const std::string pin = tmp + ".pin";
  struct stat st {};
  bool pinned = ::link(path.c_str(), pin.c_str()) == 0;
  if (!pinned) {
    int err = errno;
    if (err == ENOENT) {
      ::unlink(tmp.c_str());
      return changed;  // gone: not ours to recreate
    }
    // No hard links here (a filesystem without them, protected_hardlinks):
    // the weaker check, which may be answered from a cache.
  }
  if (::lstat((pinned ? pin : path).c_str(), &st) != 0 || identity_of(st) != expected) {
    if (pinned) ::unlink(pin.c_str());
    ::unlink(tmp.c_str());
    return changed;
  }
  if (stage_hook) stage_hook(SaveStage::checked);
  int rc = ::rename(tmp.c_str(), path.c_str());
  int err = errno;
  if (rc == 0) {
    // The pin is the previous version: with a batcher it stays until the new
    // one is durable (the power-loss fallback), as the exchange's displaced file.
    if (pinned) keep_or_remove(pin, sync);
    return SaveOutcome{SaveOutcome::Kind::saved, {}, std::nullopt};
  }
  if (pinned) ::unlink(pin.c_str());
  ::unlink(tmp.c_str());
  if (err == ENOENT) return changed;
  return failed_outcome("rename", err);
}

}  // namespace

const char* to_string(SaveMethod method) {
  return method == SaveMethod::exchange ? "exchange" : "pin_check";
}

void set_save_method(SaveMethod method) {
  g_save_method.store(method);
}

SaveMethod save_method() {
  return g_save_method.load();
}

ExchangeProbe probe_atomic_exchange(const std::string& dir) {
  // A dot name with the temp marker: ignored by the watcher, and removed at
  // the next start-up if we crash in between.
  const std::string base =
      dir + "/." + std::string(kProbeStem) + std::string(kTempMarker) + random_suffix();
  const std::string a = base + ".a", b = base + ".b";
  ExchangeProbe out;
  auto create = [](const std::string& p) -> std::optional<FileIdentity> {
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    bool ok = ::fstat(fd, &st) == 0;
    ::close(fd);
    if (!ok) return std::nullopt;
    return identity_of(st);
  };
  auto ida = create(a);
  if (!ida) {
    out.detail = std::string("cannot create a probe file: ") + std::strerror(errno);
    return out;
  }
  auto idb = create(b);
  if (!idb) {
    out.detail = std::string("cannot create a probe file: ") + std::strerror(errno);
    ::unlink(a.c_str());
    return out;
  }
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
    out.detail = std::string("renameat2(RENAME_EXCHANGE): ") + std::strerror(errno);
  } else {
    // Believe it only if the names really traded places.
    auto now_a = stat_identity(a);
    out.supported = now_a && now_a->inode == idb->inode;
    if (!out.supported) out.detail = "renameat2(RENAME_EXCHANGE) succeeded but swapped nothing";
  }
  ::unlink(a.c_str());
  ::unlink(b.c_str());
  return out;
}

SaveOutcome save_if_unchanged(const std::string& path, const json& doc,
                              const FileIdentity& expected, SyncBatcher* sync) {
  return save_if_unchanged(path, doc, expected, save_method(), {}, sync);
}

SaveOutcome save_if_unchanged(const std::string& path, const json& doc,
                              const FileIdentity& expected, SaveMethod method,
                              const std::function<void(SaveStage)>& stage_hook, SyncBatcher* sync) {
  const SaveOutcome changed{SaveOutcome::Kind::changed_on_disk, {}, std::nullopt};
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    // Gone (the bot or an operator moved it): not ours to recreate. Anything
    // else (ENOTDIR, EIO, ...) is a failure to retry.
    if (errno == ENOENT) return changed;
    return failed_outcome("stat", errno);
  }
  if (identity_of(st) != expected) return changed;
  auto written = write_temp_file(path, serialize_session(doc), sync == nullptr);
  if (auto* err = std::get_if<FileError>(&written))
    return SaveOutcome{SaveOutcome::Kind::failed, {}, *err};
  const auto& tmp = std::get<TempFile>(written);
  if (stage_hook) stage_hook(SaveStage::temp_written);
  if (method == SaveMethod::pin_check) {
    auto out = replace_if_pinned_unchanged(path, tmp.path, expected, stage_hook, sync);
    if (out.kind == SaveOutcome::Kind::saved) out.identity = tmp.identity;
    return out;
  }
  // The bot may rename its new login over the file while we write the temp
  // file (milliseconds with the fsync). Swap ours in atomically and look at
  // what we displaced: if it is not the version we read, swap the bot's back.
  if (stage_hook) stage_hook(SaveStage::checked);
  if (::renameat2(AT_FDCWD, tmp.path.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) != 0) {
    int err = errno;
    if (exchange_unsupported(err)) {
      // The start-up probe said yes, this directory says no (another mount?).
      static std::atomic<bool> warned{false};
      if (!warned.exchange(true))
        log::warn("atomic_exchange_unsupported",
                  "a save could not use renameat2(RENAME_EXCHANGE): saves there fall back to "
                  "link-check-then-rename, which can overwrite a bot write landing during the "
                  "save (docs/DEPLOY.md, Shared storage)",
                  {{"file", path}, {"error", std::strerror(err)}});
      auto out = replace_if_pinned_unchanged(path, tmp.path, expected, stage_hook, sync);
      if (out.kind == SaveOutcome::Kind::saved) out.identity = tmp.identity;
      return out;
    }
    ::unlink(tmp.path.c_str());
    if (err == ENOENT) return changed;
    return failed_outcome("rename", err);
  }
  struct stat displaced {};
  if (::lstat(tmp.path.c_str(), &displaced) == 0 && identity_of(displaced) == expected) {
    keep_or_remove(tmp.path, sync);  // the version we read: ours replaces it
    return SaveOutcome{SaveOutcome::Kind::saved, tmp.identity, std::nullopt};
  }
  // The bot's file was displaced: put it back, drop ours.
  ::renameat2(AT_FDCWD, tmp.path.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE);
  ::unlink(tmp.path.c_str());
  return changed;
}

std::variant<std::string, FileError> quarantine_file(const std::string& path,
                                                     const std::string& sessions_dir) {
  const std::string dir = sessions_dir + "/invalid";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return errno_error(FileErrorKind::write, "create " + dir, errno);
  const std::string name = basename_of(path);
  std::string target = dir + "/" + name;
  // Never replace an earlier quarantined file: link() fails if the name exists.
  for (int i = 0; i < 100; ++i) {
    if (::link(path.c_str(), target.c_str()) == 0) {
      if (::unlink(path.c_str()) != 0) {
        int err = errno;
        ::unlink(target.c_str());
        return errno_error(FileErrorKind::write, "unlink after quarantine", err);
      }
      fsync_dir(dir);
      fsync_dir(sessions_dir);
      return target;
    }
    if (errno != EEXIST) return errno_error(FileErrorKind::write, "link into " + dir, errno);
    // name.<time>[-i].ext: the extension (any pattern's) stays last.
    const auto dot = name.rfind('.');
    const std::string ext = dot == std::string::npos || dot == 0 ? "" : name.substr(dot);
    const std::string stem = name.substr(0, name.size() - ext.size());
    target = dir + "/" + stem + "." + std::to_string(std::time(nullptr)) +
             (i ? "-" + std::to_string(i) : std::string()) + ext;
  }
  return FileError{FileErrorKind::write, "no free name in " + dir};
}

std::vector<std::string> restore_from_leftovers(const std::string& dir, const FilePattern& pattern,
                                                const nlohmann::json::json_pointer& state) {
  // Leftovers by the session file they belong to: ".NAME.tmp-..." (a temp
  // file, or a version a save displaced) and ".NAME.tmp-....pin".
  std::map<std::string, std::vector<std::string>> leftovers;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      auto marker = name.find(kTempMarker);
      if (name.size() < 2 || name.front() != '.' || marker == std::string_view::npos) continue;
      std::string session(name.substr(1, marker - 1));
      if (!pattern.id_of(session)) continue;
      leftovers[session].push_back(dir + "/" + std::string(name));
    }
    ::closedir(d);
  }
  std::vector<std::string> restored;
  for (auto& [session, candidates] : leftovers) {
    const std::string path = dir + "/" + session;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      continue;  // gone: not ours to recreate
    // Complete as the site reads it (its storage state may be nested).
    if (std::holds_alternative<LoadedSession>(load_session_file(path, kMaxSessionFileBytes, state)))
      continue;
    // The newest complete one: the version the interrupted save displaced, or
    // a newer one written but not yet renamed (also the site's latest).
    std::vector<std::pair<std::int64_t, std::string>> by_age;
    for (const auto& c : candidates) {
      struct stat cst {};
      if (::lstat(c.c_str(), &cst) == 0 && S_ISREG(cst.st_mode))
        by_age.emplace_back(
            static_cast<std::int64_t>(cst.st_mtim.tv_sec) * 1000000000 + cst.st_mtim.tv_nsec, c);
    }
    std::sort(by_age.rbegin(), by_age.rend());
    for (const auto& [mtime, candidate] : by_age) {
      if (!std::holds_alternative<LoadedSession>(
              load_session_file(candidate, kMaxSessionFileBytes, state)))
        continue;
      if (::rename(candidate.c_str(), path.c_str()) == 0) restored.push_back(path);
      break;
    }
  }
  return restored;
}

int remove_stale_temp_files(const std::string& dir, std::chrono::seconds min_age,
                            const FilePattern& pattern) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  const auto now = std::time(nullptr);
  while (auto* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name.size() < 2 || name.front() != '.' || name.find(kTempMarker) == std::string_view::npos)
      continue;
    // ".<session file name>.tmp-..." (saves, with ".pin" for the NFS path) or the probe's.
    const auto stem = name.substr(1, name.find(kTempMarker) - 1);
    if (!pattern.id_of(stem) && stem != kProbeStem) continue;
    std::string full = dir + "/" + std::string(name);
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (now - st.st_mtime < min_age.count()) continue;
    if (::unlink(full.c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

KeepaliveBlock read_keepalive(const json& doc) {
  KeepaliveBlock k;
  auto it = doc.find("keepalive");
  if (it == doc.end() || !it->is_object()) return k;
  const json& b = *it;
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto f = b.find(key);
    if (f != b.end() && f->is_string()) return f->get<std::string>();
    return std::nullopt;
  };
  if (auto s = str("state")) k.state = *s;
  k.last_refresh = str("lastRefresh");
  if (auto c = b.find("refreshCount"); c != b.end() && c->is_number_integer())
    k.refresh_count = c->get<std::int64_t>();
  k.last_error = str("lastError");
  k.invalid_since = str("invalidSince");
  if (auto p = b.find("paused"); p != b.end() && p->is_boolean()) k.paused = p->get<bool>();
  if (k.paused) {
    k.paused_at = str("pausedAt");
    k.pause_reason = str("pauseReason");
  }
  k.session_start = str("sessionStart");
  return k;
}

void write_keepalive(json& doc, const KeepaliveBlock& k) {
  auto opt = [](const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); };
  json block =
      doc.contains("keepalive") && doc["keepalive"].is_object() ? doc["keepalive"] : json::object();
  block["state"] = k.state;
  block["lastRefresh"] = opt(k.last_refresh);
  block["refreshCount"] = k.refresh_count;
  block["lastError"] = opt(k.last_error);
  block["invalidSince"] = opt(k.invalid_since);
  // Written only while paused: the block of a session never paused keeps the
  // fields it always had.
  if (k.paused) {
    block["paused"] = true;
    block["pausedAt"] = opt(k.paused_at);
    block["pauseReason"] = opt(k.pause_reason);
  } else {
    block.erase("paused");
    block.erase("pausedAt");
    block.erase("pauseReason");
  }
  if (k.session_start) block["sessionStart"] = *k.session_start;
  doc["keepalive"] = std::move(block);
}

bool plausible_unix_seconds(double seconds) {
  return seconds >= 0 && seconds < 7258118400.0;  // before 2200-01-01T00:00:00Z
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  std::tm tm{};
  int ms = 0;
  std::string s(text);
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  if (*rest == '.') {
    ++rest;
    int digits = 0;
    while (*rest >= '0' && *rest <= '9') {
      if (digits < 3) ms = ms * 10 + (*rest - '0');
      ++digits;
      ++rest;
    }
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (*rest != 'Z' && *rest != '\0') return std::nullopt;
  auto secs = timegm(&tm);
  if (!plausible_unix_seconds(static_cast<double>(secs))) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs)) +
         std::chrono::milliseconds(ms);
}

}  // namespace sessiond
