// The only file that sees SESSIOND_REVISION (set by CMake on this file alone),
// so a new revision recompiles this file and relinks, nothing more.
#include "sessiond/build_info.hpp"

#ifndef SESSIOND_REVISION
#define SESSIOND_REVISION "unknown"
#endif

namespace sessiond {

const char* build_version() {
  return SESSIOND_VERSION;
}
const char* build_revision() {
  return SESSIOND_REVISION;
}
std::string version_line() {
  return std::string("sessiond ") + build_version() + " (git " + build_revision() + ")";
}

}  // namespace sessiond
