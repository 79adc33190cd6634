#pragma once
// Figures for Prometheus' standard process_* metrics, read from /proc/self.

#include <cstdint>

namespace sessiond {

struct ProcessStats {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
  double start_time_seconds = 0;  // Unix time
};

ProcessStats read_process_stats();

}  // namespace sessiond
