#include "sessiond/thread_name.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace sessiond {

void name_this_thread(const char* name) {
  constexpr std::size_t kMaxName = 15;  // TASK_COMM_LEN - 1; longer names fail with ERANGE
  const std::string kept(name, std::min(std::strlen(name), kMaxName));
  ::pthread_setname_np(::pthread_self(), kept.c_str());  // only a label: a failure changes nothing
}

}  // namespace sessiond
