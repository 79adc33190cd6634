#include "sessiond/watcher.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "sessiond/json_log.hpp"
#include "sessiond/metrics.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/thread_name.hpp"

namespace sessiond {
namespace {

// Blocks on the inotify fd (and an eventfd to stop) on its own thread and
// hands batches of events to `deliver`.
class InotifySource final : public DirEventSource {
 public:
  ~InotifySource() override { stop(); }

  bool start(Deliver deliver) override {
    if (started_) return ok();
    started_ = true;
    deliver_ = std::move(deliver);
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!ok()) return false;
    thread_ = start_named_thread("sd-inotify", [this] { run(); });
    return true;
  }

  bool watch(const std::string& dir) override {
    if (!ok()) return false;
    constexpr std::uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
                                   IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    return ::inotify_add_watch(fd_, dir.c_str(), mask) >= 0;
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    if (stop_fd_ >= 0) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
    }
    if (thread_.joinable()) thread_.join();
    deliver_ = nullptr;  // drops the watcher's handle
    if (fd_ >= 0) ::close(fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    fd_ = stop_fd_ = -1;
  }

 private:
  bool ok() const { return fd_ >= 0 && stop_fd_ >= 0; }

  void run() {
    alignas(inotify_event) char buf[64 * 1024];
    for (;;) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      int rc = ::poll(fds, 2, -1);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0 || (fds[1].revents & POLLIN)) return;
      auto batch = std::make_shared<std::vector<DirEvent>>();
      for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) break;
        for (char* p = buf; p < buf + n;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          // Temp files (every save writes one: four events) never name a
          // session; dropped here, they do not wake the watcher.
          if (ev->len && ev->name[0] == '.') continue;
          batch->push_back(DirEvent{ev->len ? std::string(ev->name) : std::string(), ev->mask});
        }
      }
      if (!batch->empty()) deliver_(DirEventsPtr(std::move(batch)));
    }
  }

  Deliver deliver_;
  int fd_ = -1;
  int stop_fd_ = -1;
  bool started_ = false;
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

using Self = watcher_actor::stateful_pointer<WatcherState>;

constexpr std::size_t kMaxIgnoredNamesRemembered = 10000;

std::optional<std::string> owned_id(WatcherState& st, const std::string& name) {
  auto id = st.setup.pattern.id_of(name);
  if (!id) {
    // Temp files of writers (ours and others') start with a dot: not worth a line.
    if (!name.empty() && name.front() != '.' &&
        st.ignored_names.size() < kMaxIgnoredNamesRemembered &&
        st.ignored_names.insert(name).second)
      log::debug("file_ignored", "not a session file name",
                 {{"file", name}, {"pattern", st.setup.pattern.text()}});
    return std::nullopt;
  }
  if (!owns(st.setup.shard, *id)) return std::nullopt;
  return id;
}

std::string path_of(const WatcherState& st, const std::string& id) {
  return st.setup.pattern.path(st.setup.dir, id);
}

// `seen`: the file as found now. It travels along so that the session actor
// can tell its own saves from the bot's writes without a stat of its own.
void report_added(Self self, const std::string& id, const std::optional<FileIdentity>& seen) {
  auto& st = self->state;
  st.known[id] = seen ? seen->mtime_ns : -1;
  self->send(st.setup.supervisor, file_added_atom::value, id, seen);
}

void report_gone(Self self, const std::string& id) {
  auto& st = self->state;
  if (st.known.erase(id)) self->send(st.setup.supervisor, file_gone_atom::value, id);
}

void ensure_watch(WatcherState& st) {
  if (st.watching || !st.events_ok) return;
  // Add the watch before scanning, so nothing written in between is missed.
  st.watching = st.setup.events->watch(st.setup.dir);
}

void rescan(Self self) {
  auto& st = self->state;
  ensure_watch(st);
  DIR* d = ::opendir(st.setup.dir.c_str());
  if (!d) {
    if (!st.dir_missing_reported) {
      const int err = errno;
      log::error("file_error",
                 "cannot read the sessions directory; sessions in it are paused until it is back",
                 {{"site", st.setup.site},
                  {"dir", st.setup.dir},
                  {"reason", err == ENOENT ? "not_found" : "io"},
                  {"error", std::strerror(err)}});
      if (st.setup.metrics) st.setup.metrics->file_error(FileErrorKind::io, st.setup.site);
      if (st.setup.board)
        self->send(st.setup.board, site_error_atom::value, st.setup.site,
                   "cannot read " + st.setup.dir + ": " + std::strerror(err));
      st.dir_missing_reported = true;
    }
    // Its files are gone with it: stop refreshing them (nothing is deleted).
    std::vector<std::string> ids;
    for (auto& [id, _] : st.known) ids.push_back(id);
    for (auto& id : ids) report_gone(self, id);
    st.watching = false;
  } else {
    if (st.dir_missing_reported) {
      log::info("dir_restored", "sessions directory is back",
                {{"site", st.setup.site}, {"dir", st.setup.dir}});
      if (st.setup.board)
        self->send(st.setup.board, site_error_atom::value, st.setup.site, std::string());
      st.dir_missing_reported = false;
    }
    std::unordered_set<std::string> seen;
    while (auto* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || e->d_type == DT_DIR) continue;
      auto id = owned_id(st, name);
      if (!id) continue;
      seen.insert(*id);
      auto found = stat_identity(path_of(st, *id));
      auto it = st.known.find(*id);
      if (it == st.known.end() || it->second != (found ? found->mtime_ns : -1))
        report_added(self, *id, found);
    }
    ::closedir(d);
    std::vector<std::string> gone;
    for (auto& [id, _] : st.known)
      if (!seen.count(id)) gone.push_back(id);
    for (auto& id : gone) report_gone(self, id);
  }
  if (!st.scanned) {
    st.scanned = true;
    self->send(st.setup.supervisor, scanned_atom::value);
  }
}

void on_events(Self self, const std::vector<DirEvent>& events) {
  auto& st = self->state;
  bool need_rescan = false;
  for (const auto& ev : events) {
    if (ev.mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
      if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) st.watching = false;
      need_rescan = true;
      continue;
    }
    if (ev.mask & IN_ISDIR) continue;
    auto id = owned_id(st, ev.name);
    if (!id) continue;
    if (ev.mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
      report_added(self, *id, stat_identity(path_of(st, *id)));
    } else if (ev.mask & (IN_DELETE | IN_MOVED_FROM)) {
      // A rename *over* the name (our RENAME_EXCHANGE saves, some writers)
      // also says "moved from": only a name that is gone is a removal.
      auto seen = stat_identity(path_of(st, *id));
      if (!seen) {
        report_gone(self, *id);
      } else if (auto it = st.known.find(*id);
                 it != st.known.end() && it->second != seen->mtime_ns) {
        report_added(self, *id, seen);
      }
    }
  }
  if (need_rescan) rescan(self);
}

}  // namespace

std::shared_ptr<DirEventSource> make_inotify_source() {
  return std::make_shared<InotifySource>();
}

watcher_actor::behavior_type watcher_actor_impl(Self self, WatcherSetup setup) {
  auto& st = self->state;
  st.setup = std::move(setup);
  if (!st.setup.events) st.setup.events = make_inotify_source();
  auto me = caf::actor_cast<watcher_actor>(self);
  st.events_ok = st.setup.events->start(
      [me](DirEventsPtr batch) { caf::anon_send(me, dir_events_atom::value, std::move(batch)); });
  if (!st.events_ok)
    log::warn("startup", "inotify unavailable; relying on periodic rescans",
              {{"error", std::strerror(errno)}});
  auto events = st.setup.events;
  // The source holds a strong handle to us: released when we terminate.
  self->attach_functor([events] { events->stop(); });
  rescan(self);
  self->delayed_send(self, st.setup.rescan_interval, rescan_atom::value);
  return {
      [=](dir_events_atom, const DirEventsPtr& events) {
        if (events) on_events(self, *events);
      },
      [=](rescan_atom) {
        rescan(self);
        auto& st = self->state;
        // While the directory is missing, look for it more often.
        Millis next = st.dir_missing_reported ? std::min(st.setup.rescan_interval, Millis(1000))
                                              : st.setup.rescan_interval;
        self->delayed_send(self, next, rescan_atom::value);
      },
  };
}

}  // namespace sessiond
