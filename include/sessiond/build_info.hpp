#pragma once
// What this binary is: the release version and the source revision it was
// built from (git describe at configure time, "unknown" outside a checkout).

#include <string>

namespace sessiond {

const char* build_version();   // "0.1.0"
const char* build_revision();  // "abc1234", "v0.1.0-3-gabc1234-dirty" or "unknown"
std::string version_line();    // "sessiond 0.1.0 (git abc1234)"

}  // namespace sessiond
