// Names of the browser step's verdicts (logs, metrics labels).

#include "sessiond/browser_step.hpp"

namespace sessiond {

const char* to_string(BrowserStepResult::Verdict v) {
  switch (v) {
    case BrowserStepResult::Verdict::logged_in:
      return "logged_in";
    case BrowserStepResult::Verdict::logged_out:
      return "logged_out";
    case BrowserStepResult::Verdict::transient:
      return "transient";
  }
  return "transient";
}

}  // namespace sessiond
