#pragma once
// Watcher: reports session files added, rewritten and removed in the sessions
// directory to the supervisor. Directory events for promptness (inotify, read
// on a small thread of its own), a periodic full rescan as the safety net
// (missed events, queue overflow, network volumes), and recovery when the
// directory is deleted and recreated. Spawn it detached in production: a
// directory scan never occupies a scheduler thread.
//
// Rules (inotify masks; a test's event source speaks the same language):
//   IN_CLOSE_WRITE | IN_MOVED_TO    added or rewritten: file_added(id, identity as found)
//   IN_DELETE | IN_MOVED_FROM       gone (a rename over the name that leaves a
//                                   file there is a rewrite, not a removal)
//   IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED   the directory is gone: rescan,
//                                   which reports every file gone, then looks
//                                   every second until it is back and watches it again
//   IN_Q_OVERFLOW                   events were lost: rescan and diff
// Names that are not of the pattern (session-<id>.json) are logged once (debug); names that
// start with a dot (temp files of writers) silently; ids of other shards are
// not ours. After the first full scan: scanned.

#include <caf/stateful_actor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "sessiond/actors.hpp"
#include "sessiond/duration.hpp"
#include "sessiond/session_file.hpp"
#include "sessiond/sharding.hpp"

namespace sessiond {

class Metrics;

// Where directory events come from: inotify in production; tests deliver
// events themselves.
class DirEventSource {
 public:
  using Deliver = std::function<void(DirEventsPtr)>;
  virtual ~DirEventSource() = default;
  // Begins reading; `deliver` gets each batch, from any thread. false (errno
  // set): no events at all, the watcher relies on its rescans.
  virtual bool start(Deliver deliver) = 0;
  // Watches `dir`, again after it was deleted and recreated; false (errno
  // set) when it cannot (the directory is missing).
  virtual bool watch(const std::string& dir) = 0;
  // Once it returns, `deliver` is never called again and has been released
  // (it holds the watcher's handle). Idempotent.
  virtual void stop() = 0;
};

// An inotify instance read by its own thread. Names starting with a dot are
// dropped there: every save writes a temp file (four events).
std::shared_ptr<DirEventSource> make_inotify_source();

struct WatcherSetup {
  std::string dir;
  FilePattern pattern;  // which names are session files
  supervisor_actor supervisor;
  Millis rescan_interval{30000};
  Shard shard;
  // Null: make_inotify_source().
  std::shared_ptr<DirEventSource> events;
  // Optional: counts an unreadable directory as a file error ("io"), once per outage.
  Metrics* metrics = nullptr;
  // Optional: the site's name in logs, and the board told what is wrong with
  // the directory (and when it is back).
  std::string site;
  status_board_actor board;
};

struct WatcherState {
  static inline const char* name = "watcher";

  WatcherSetup setup;
  bool events_ok = false;                               // the event source started
  bool watching = false;                                // the watch on the directory is in place
  bool scanned = false;                                 // first full scan reported
  std::unordered_map<std::string, std::int64_t> known;  // id -> mtime_ns (-1: gone when looked)
  std::unordered_set<std::string> ignored_names;        // logged once each
  bool dir_missing_reported = false;
};

watcher_actor::behavior_type watcher_actor_impl(watcher_actor::stateful_pointer<WatcherState> self,
                                                WatcherSetup setup);

}  // namespace sessiond
