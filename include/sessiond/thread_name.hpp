#pragma once
// Names the calling thread (top, perf, /proc/<pid>/task/*/comm), so CPU and
// context switches can be told apart by role: "sd-http", "sd-io", "sd-actors",
// ... bench/run.py throughput splits sessiond's CPU by these names.

#include <string>
#include <thread>
#include <utility>

namespace sessiond {

// At most 15 characters are kept (the kernel's limit).
void name_this_thread(const char* name);

// A thread that names itself `name`, then runs `body`.
template <class Body>
std::thread start_named_thread(std::string name, Body body) {
  return std::thread([name = std::move(name), body = std::move(body)]() mutable {
    name_this_thread(name.c_str());
    body();
  });
}

}  // namespace sessiond
