"""An exec step (a script instead of HTTP requests) keeps sessions alive too,
and its exit status 3 means logged out."""

import json
import os
import sys

from harness import Daemon, FakeSite, check, cookie, load, run, temp_dir, wait_until

IDLE_S = 3


def test_exec_step():
    site = FakeSite(idle_timeout=f"{IDLE_S}s")
    sessions = temp_dir("sessions-exec-")
    work = temp_dir("profile-")
    profile = os.path.join(work, "exec.json")
    script = os.path.abspath("exec_refresh.py")
    with open(profile, "w") as f:
        json.dump({"name": "exec-demo", "base_url": site.base_url, "interval": "1s", "idle_timeout": f"{IDLE_S}s",
                   "refresh": {"exec": [sys.executable, script, "{file}", "{base_url}"], "timeout": "10s"},
                   "exec_max_concurrent": 4, "retry": {"base": "200ms", "max": "1s"}}, f)
    mobiles = site.seed(sessions, 5)
    first = {m: cookie(load(os.path.join(sessions, f"session-{m}.json")), "sid") for m in mobiles}
    d = Daemon("--profile", profile, "--sessions-dir", sessions, "--listen", "off")
    d.wait_event("ready", 10)
    # At least four refreshes of every session (several idle timeouts), with a
    # generous bound: each refresh starts a Python interpreter.
    wait_until(lambda: all(len(d.events("refresh_ok", m)) >= 4 for m in mobiles), 60,
               what="four refreshes of every session")
    site.logout([mobiles[0]])
    d.wait_event("session_invalidated", 10, session=mobiles[0])
    code = d.stop()
    check(code == 0, f"exit status {code}")
    stats = site.stats()
    check(stats["lost"] == 0, f"lost {stats['lost']}")
    for m in mobiles[1:]:
        doc = load(os.path.join(sessions, f"session-{m}.json"))
        check(cookie(doc, "sid") != first[m], f"{m}: cookie not rotated by the script")
        check(doc["keepalive"]["refreshCount"] >= 3, f"{m}: {doc['keepalive']}")
        check(doc["origins"], "origins lost")
    check(os.path.exists(os.path.join(sessions, "invalid", f"session-{mobiles[0]}.json")), "exit 3 not quarantined")
    d.check_logs(site.secrets())
    site.stop()


if __name__ == "__main__":
    run(test_exec_step)
