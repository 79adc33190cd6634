#include "sessiond/process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace sessiond {
namespace {

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats s;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  {
    std::ifstream in("/proc/self/stat");
    std::string line;
    std::getline(in, line);
    // Fields after the command name (which may contain spaces) start after ')'.
    auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::string field;
      // rest starts at field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24.
      for (int i = 3; rest >> field; ++i) {
        if (i == 14)
          s.cpu_seconds += std::stod(field) / ticks;
        else if (i == 15)
          s.cpu_seconds += std::stod(field) / ticks;
        else if (i == 22)
          s.start_time_seconds = boot_time_seconds() + std::stod(field) / ticks;
        else if (i == 23)
          s.virtual_bytes = std::stod(field);
        else if (i == 24) {
          s.resident_bytes = std::stod(field) * page;
          break;
        }
      }
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int n = 0;
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    s.open_fds = n - 1;  // the directory handle itself
  }
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) s.max_fds = static_cast<double>(rl.rlim_cur);
  return s;
}

}  // namespace sessiond
