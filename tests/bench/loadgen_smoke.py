"""Smoke test of bench's raw load generator (sessiond-loadgen): 2 s against the
fake site with 20 seeded sessions; every refresh must succeed (no errors, no
session logged out), and the site must have rotated the sessions' sids (the
generator followed the rotation through its cookie engines). Then 1 s with
--save: files rewritten whole (0600, valid JSON, a rotated sid in every file
it saved), no temp file left."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import FakeSite, check, run, temp_dir  # noqa: E402

LOADGEN = os.environ.get("LOADGEN_BIN", "../../build/bench/sessiond-loadgen")


def test_loadgen_smoke():
    site = FakeSite(idle_timeout="30s")
    d = temp_dir("loadgen-")
    mobiles = site.seed(d, 20)
    before = site.stats()
    out = subprocess.run([LOADGEN, "--base-url", site.base_url, "--dir", d, "--concurrency", "8",
                          "--seconds", "2"], capture_output=True, text=True, timeout=40)
    check(out.returncode == 0, f"loadgen exit {out.returncode}: {out.stderr[-500:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print("loadgen:", res)
    check(res["refreshes"] > 0, f"no refreshes: {res}")
    check(res["errors"] == 0, f"errors: {res}")
    check(res["logged_out"] == 0, f"logged out: {res}")
    check(res["requests"] >= 2 * res["refreshes"], f"fewer requests than 2 per refresh: {res}")
    after = site.stats()
    refreshed = after["requests"]["refresh"] - before["requests"]["refresh"]
    # Transfers in flight at the deadline are abandoned: the site may have
    # answered up to --concurrency refreshes the generator did not count.
    check(res["refreshes"] <= refreshed <= res["refreshes"] + 8,
          f"site saw {refreshed} refreshes, generator counted {res['refreshes']}")
    check(after["lost"] == 0, f"site lost sessions: {after['lost']}")
    stale = after["stale_cookie_requests"] - before["stale_cookie_requests"]
    check(stale == 0, f"{stale} requests with a rotated-away sid")

    # --save on fresh accounts (the files above still hold the seeded sids).
    d2 = temp_dir("loadgen-save-")
    mobiles2 = site.seed(d2, 20, first_mobile="09130000000")

    def sids():
        out = {}
        for name in os.listdir(d2):
            check(name.startswith("session-") and name.endswith(".json"), f"stray file {name}")
            path = os.path.join(d2, name)
            check(os.stat(path).st_mode & 0o777 == 0o600, f"{name} not 0600")
            with open(path) as f:
                out[name] = [c["value"] for c in json.load(f)["cookies"] if c["name"] == "sid"]
        return out
    seeded = sids()
    out = subprocess.run([LOADGEN, "--base-url", site.base_url, "--dir", d2, "--concurrency", "8",
                          "--seconds", "1", "--save"], capture_output=True, text=True, timeout=40)
    check(out.returncode == 0, f"loadgen --save exit {out.returncode}: {out.stderr[-500:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print("loadgen --save:", res)
    check(res["save"] and res["save_errors"] == 0 and res["refreshes"] > 0, f"saves failed: {res}")
    check(res["errors"] == 0 and res["logged_out"] == 0, f"--save run: {res}")
    saved = sids()
    check(len(saved) == 20, f"{len(saved)} files after --save")
    changed = [n for n in saved if saved[n] and saved[n] != seeded[n]]
    # Every session the generator saved holds a rotated sid (one none of whose
    # refreshes finished within the second keeps its file: seen, 2 of 20).
    check(len(changed) == res["sessions_saved"] > 0,
          f"{len(changed)} files hold a rotated sid, {res['sessions_saved']} saved: "
          f"{ {n: (seeded[n], saved[n]) for n in saved if n not in changed} }")
    site.logout(mobiles + mobiles2)
    site.stop()


if __name__ == "__main__":
    run(test_loadgen_smoke)
