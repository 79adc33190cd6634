"""An exec step's command runs with a clean environment (sessiond's admin
token never reaches it; a variable the profile names does), and when it fails
the tail of its stderr is logged as `stderr_tail` with the session's cookie
values redacted."""

import json
import os
import sys

from harness import Daemon, FakeSite, check, run, temp_dir

ADMIN_TOKEN = "admin-token-of-the-exec-env-test"

SCRIPT = r"""
import json, os, sys
state = json.load(open(sys.argv[1]))
sys.stderr.write("admin=%s named=%s unnamed=%s tmpdir_is_private=%s\n" % (
    os.environ.get("SESSIOND_ADMIN_TOKEN", "none"), os.environ.get("EXEC_NAMED", "none"),
    os.environ.get("EXEC_UNNAMED", "none"),
    os.environ.get("TMPDIR") == os.path.dirname(os.path.abspath(sys.argv[1]))))
for c in state["cookies"]:
    sys.stderr.write("cookie %s=%s\n" % (c["name"], c["value"]))
sys.exit(1)
"""


def test_exec_env():
    site = FakeSite(idle_timeout="3s")
    sessions = temp_dir("sessions-exec-env-")
    work = temp_dir("profile-")
    script = os.path.join(work, "failing.py")
    with open(script, "w") as f:
        f.write(SCRIPT)
    profile = os.path.join(work, "exec.json")
    with open(profile, "w") as f:
        json.dump({"name": "exec-env", "base_url": site.base_url, "interval": "1s", "idle_timeout": "3s",
                   "refresh": {"exec": [sys.executable, script, "{file}"], "env": ["EXEC_NAMED"],
                               "timeout": "10s"},
                   "retry": {"base": "500ms", "max": "1s"}}, f)
    mobile = site.seed(sessions, 1)[0]
    d = Daemon("--profile", profile, "--sessions-dir", sessions, "--listen", "off",
               env={"SESSIOND_ADMIN_TOKEN": ADMIN_TOKEN, "EXEC_NAMED": "passed-through",
                    "EXEC_UNNAMED": "kept-back"})
    try:
        failed = d.wait_event("exec_failed", 15, session=mobile)[0]
    finally:
        code = d.stop()
    check(code == 0, f"sessiond exit status {code}")
    print("exec_failed:", {k: failed[k] for k in ("step", "outcome", "stderr_tail")})
    tail = failed["stderr_tail"]
    check(failed["outcome"] == "command exit status 1", f"outcome: {failed['outcome']!r}")
    check("admin=none named=passed-through unnamed=none tmpdir_is_private=True" in tail,
          f"the command's environment: {tail!r}")
    check("cookie sid=[redacted]" in tail, f"cookie value not redacted: {tail!r}")
    d.check_logs(site.secrets() + [ADMIN_TOKEN, "kept-back"])
    site.stop()


if __name__ == "__main__":
    run(test_exec_env)
