#pragma once
// Watcher: reports session files added, rewritten and removed in the sessions
// directory to the Supervisor. inotify for promptness (read on a small thread
// of its own), a periodic full rescan as the safety net (missed events, queue
// overflow, network volumes), and recovery when the directory is deleted and
// recreated. Runs detached: directory scans never occupy a scheduler thread.
//
// Messages handled:
//   (inotify_atom, DirEventsPtr)   a batch read by the inotify thread
//   (rescan_atom)                  timer: full scan and diff
// Sends to the supervisor:
//   (added_atom, std::string id, std::optional<FileIdentity>)
//                                  new or rewritten file, as found (nullopt: gone again)
//   (removed_atom, std::string id)
//   (scanned_atom)                 after the first full scan

#include <caf/behavior.hpp>
#include <caf/stateful_actor.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sessiond/duration.hpp"
#include "sessiond/messages.hpp"
#include "sessiond/sharding.hpp"

namespace sessiond {

struct DirEvent {
  std::string name;
  std::uint32_t mask = 0;
};
using DirEventsPtr = std::shared_ptr<const std::vector<DirEvent>>;

class InotifyReader;  // the thread that blocks on the inotify fd

struct WatcherSetup {
  std::string dir;
  caf::actor supervisor;
  caf::actor metrics;
  Millis rescan_interval{30000};
  Shard shard;
};

struct WatcherState {
  static inline const char* name = "watcher";

  WatcherSetup setup;
  std::shared_ptr<InotifyReader> reader;
  bool watching = false;  // the inotify watch on the directory is in place
  bool scanned = false;   // first full scan reported
  std::unordered_map<std::string, std::int64_t> known;  // id -> mtime_ns
  std::unordered_set<std::string> ignored_names;        // logged once each
  bool dir_missing_reported = false;
};

caf::behavior watcher_actor(caf::stateful_actor<WatcherState>* self, WatcherSetup setup);

}  // namespace sessiond

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sessiond::DirEventsPtr)
