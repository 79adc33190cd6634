#pragma once
// Names the calling thread (top, perf, /proc/<pid>/task/*/comm), so CPU and
// context switches can be told apart by role: "sd-http", "sd-io", "sd-actors",
// ... bench/run.py throughput splits sessiond's CPU by these names.

namespace sessiond {

// At most 15 characters are kept (the kernel's limit).
void name_this_thread(const char* name);

}  // namespace sessiond
