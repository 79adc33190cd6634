// Thread names by role (thread_name.hpp): what top -H, perf and
// bench/run.py's per-thread CPU split go by.

#include <pthread.h>

#include <catch2/catch.hpp>
#include <future>
#include <string>
#include <thread>

#include "sessiond/thread_name.hpp"
#include "sessiond/worker_pool.hpp"

using namespace sessiond;

namespace {

// Called on the thread in question, so no Catch2 assertion here (they are for
// the test's own thread): a failure reads as a name no test expects.
std::string this_thread_name() {
  char name[64] = {};
  if (::pthread_getname_np(::pthread_self(), name, sizeof name) != 0) return "<unreadable>";
  return name;
}

}  // namespace

TEST_CASE("a name longer than the kernel keeps is cut to its first 15 characters",
          "[thread_name]") {
  std::string seen;
  std::thread([&] {
    name_this_thread("sd-a-very-long-role-name");
    seen = this_thread_name();
  }).join();
  CHECK(seen == "sd-a-very-long-");
}

TEST_CASE("a worker pool's threads carry the pool's name", "[thread_name]") {
  std::promise<std::string> seen;  // outlives the pool: its threads are joined first
  WorkerPool pool(2, "sd-io");
  pool.post([&] { seen.set_value(this_thread_name()); });
  CHECK(seen.get_future().get() == "sd-io");
}
