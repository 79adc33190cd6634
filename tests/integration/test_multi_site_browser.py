"""Two sites with browser steps share one pooled Chromium (issue 14): each
has its own pages (browser.max_concurrent 1 here) in front of the pool. The
slow site's page script hangs, so each of its steps runs until its timeout;
the fast site keeps its own page and refreshes at its pace all along, and the
slow site's sessions are only retried (transient), never logged out.

Without the per-site share, the pool had max(1, 1) = 1 page: the slow site's
hung steps (four sessions, retried) held it and the fast site waited behind
them."""

import json
import os

from harness import (processes_naming, SOURCE_DIR, Daemon, FakeSite, check, daemon_metrics, daemon_status, metric_sum, run, temp_dir,
                     wait_ready, wait_until)

BROWSER_TMP = temp_dir("share-browser-tmp-")
STEP_TIMEOUT_S = 4
WINDOW_S = 14  # three and a half step timeouts of the slow site


def browser_profile(name):
    """profiles/baman24.json (a browser check), one page, a short timeout."""
    with open(os.path.join(SOURCE_DIR, "profiles", "baman24.json")) as f:
        doc = json.loads("\n".join(line for line in f if not line.lstrip().startswith("//")))
    doc["check"]["browser"].update(settle="100ms", timeout=f"{STEP_TIMEOUT_S}s")
    doc["retry"] = {"base": "500ms", "max": "1s"}
    doc["browser"] = {"max_concurrent": 1}
    path = os.path.join(temp_dir("profile-"), f"{name}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return path


def successes(d, site):
    return metric_sum(daemon_metrics(d), "sessiond_refresh_total", site=site, result="success")


def test_multi_site_browser():
    app = ["--client-rendered", "--bundle-bytes", "20000"]
    slow = FakeSite(idle_timeout="60s", extra=app)
    fast = FakeSite(idle_timeout="60s", extra=app)
    dirs = {"slow": temp_dir("sessions-slow-"), "fast": temp_dir("sessions-fast-")}
    slow.seed(dirs["slow"], 4, first_mobile="09120000000")
    fast.seed(dirs["fast"], 3, first_mobile="09130000000")
    config = {
        "listen": "127.0.0.1:0",
        "sites": [
            {"name": "slow", "profile": browser_profile("slow"), "sessions_dir": dirs["slow"],
             "base_url": slow.base_url, "interval": "2s", "idle_timeout": "60s"},
            {"name": "fast", "profile": browser_profile("fast"), "sessions_dir": dirs["fast"],
             "base_url": fast.base_url, "interval": "2s", "idle_timeout": "60s"},
        ],
    }
    cfg_path = os.path.join(temp_dir("share-config-"), "sites.json")
    with open(cfg_path, "w") as f:
        json.dump(config, f)
    d = Daemon("--config", cfg_path, env={"TMPDIR": BROWSER_TMP})
    try:
        wait_ready(d, timeout=40)
        wait_until(lambda: successes(d, "slow") >= 4 and successes(d, "fast") >= 3, 40, interval=0.3,
                   what="both sites' first browser checks")
        slow.faults(hang=True)
        # Once the slow site's page is held by a hung step, count the fast site.
        wait_until(lambda: metric_sum(daemon_metrics(d), "sessiond_browser_steps_total", result="transient") >= 1,
                   STEP_TIMEOUT_S + 10, interval=0.3, what="a slow step timed out")
        before = successes(d, "fast")
        slow_before = successes(d, "slow")
        # Three sessions every 2 s: about 21 checks in 14 s (8 leaves room
        # for a sanitized daemon on a loaded machine). Behind the slow site's
        # hung steps (one page, 4 s each) the fast site got about one check
        # per timeout: 3 or 4.
        wait_until(lambda: successes(d, "fast") >= before + 8, WINDOW_S, interval=0.3,
                   what="the fast site's checks while the slow site hangs")
        check(successes(d, "slow") == slow_before, "the slow site's steps did not succeed while it hung")
        st = daemon_status(d)
        states = {s["mobile"]: s["state"] for s in st["sessions"] if s["site"] == "slow"}
        check(len(states) == 4 and all(v not in ("logged_out", "invalid") for v in states.values()),
              f"a hung page is transient, not a logout: {states}")
        slow.faults()
        wait_until(lambda: successes(d, "slow") >= slow_before + 4, 30, interval=0.3,
                   what="the slow site's checks once it renders again")
    finally:
        code = d.stop()
    check(code == 0, f"exit status {code}")
    wait_until(lambda: not processes_naming(BROWSER_TMP), 5, what="no Chromium left")
    for name, site in (("slow", slow), ("fast", fast)):
        stats = site.stats()
        print(f"{name}: lost {stats['lost']}, requests {stats['requests']}")
        check(stats["lost"] == 0, f"{name}: lost {stats['lost']}")
    print(f"log lines checked: {d.check_logs(slow.secrets() + fast.secrets())}")
    for site in (slow, fast):
        site.stop()


if __name__ == "__main__":
    run(test_multi_site_browser)
