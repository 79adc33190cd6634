"""`sessiond once` (exit status says if any session failed), `check-config`
(exit 2 naming the bad field), and bad command lines."""

import json
import os
import subprocess

from harness import DEMO_PROFILE, SESSIOND, FakeSite, check, load, run, temp_dir


def sessiond(*args, env=None):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([SESSIOND, *args], capture_output=True, text=True, timeout=60, env=full)


def test_once_and_cli():
    site = FakeSite(idle_timeout="30s")
    sessions = temp_dir("sessions-once-")
    mobiles = site.seed(sessions, 20)
    common = ["--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions]

    r = sessiond("once", *common)
    check(r.returncode == 0, f"once: exit {r.returncode}\n{r.stderr}")
    done = [json.loads(l) for l in r.stdout.splitlines() if '"once_done"' in l]
    check(done and done[-1]["sessions"] == 20 and done[-1]["failed"] == 0, f"once summary: {done}")
    check(all(load(os.path.join(sessions, f"session-{m}.json"))["keepalive"]["refreshCount"] == 1 for m in mobiles),
          "not every session refreshed exactly once")

    site.logout([mobiles[3]])
    r = sessiond("once", *common)
    check(r.returncode == 1, f"once with a logged-out session: exit {r.returncode}")
    check(os.path.exists(os.path.join(sessions, "invalid", f"session-{mobiles[3]}.json")), "not quarantined")

    # Environment variables stand in for flags.
    r = sessiond("once", env={"SESSIOND_PROFILE": DEMO_PROFILE, "SESSIOND_BASE_URL": site.base_url,
                              "SESSIOND_SESSIONS_DIR": sessions})
    check(r.returncode == 0, f"once from the environment: exit {r.returncode}\n{r.stderr}")

    r = sessiond("check-config", "--profile", DEMO_PROFILE)
    check(r.returncode == 0 and "configuration OK" in r.stdout, f"check-config: {r.returncode} {r.stderr}")

    bad = os.path.join(temp_dir("bad-profile-"), "bad.json")
    with open(bad, "w") as f:
        f.write('{"base_url": "http://127.0.0.1:1", "interval": "5 minutes", "check": {"path": "/"}}')
    r = sessiond("check-config", "--profile", bad)
    check(r.returncode == 2 and "interval" in r.stderr, f"bad interval: {r.returncode} {r.stderr}")
    with open(bad, "w") as f:
        f.write('{"base_url": "http://127.0.0.1:1", "check": {"path": "/", "logged_out": [{"status": 999}]}}')
    r = sessiond("check-config", "--profile", bad)
    check(r.returncode == 2 and "check.logged_out[0].status" in r.stderr, f"bad status: {r.stderr}")
    for args, needle in ((["run", "--interval", "5x"], "--interval"),
                         (["run", "--no-such-flag"], "--no-such-flag"),
                         (["frobnicate"], "unknown command"),
                         (["run", "--profile", DEMO_PROFILE, "--listen", "0.0.0.0:0", "--sessions-dir", sessions],
                          "--admin-token"),
                         (["run", "--profile", "/nonexistent.json"], "cannot read")):
        r = sessiond(*args)
        check(r.returncode == 2 and needle in r.stderr, f"{args}: exit {r.returncode}, stderr {r.stderr!r}")
    r = sessiond("--help")
    check(r.returncode == 0 and "check-config" in r.stdout, "--help")
    r = sessiond("status", "--url", "http://127.0.0.1:9")
    check(r.returncode == 1 and "no sessiond answers" in r.stderr, f"status without daemon: {r.stderr}")
    site.stop()


if __name__ == "__main__":
    run(test_once_and_cli)
