"""Signals: SIGHUP reloads (issue 13). A valid changed profile is applied by a
drain and a re-exec in place (same PID, same admin port, sessions resume from
their files); an invalid profile or config file is logged (reload_rejected)
and the daemon keeps running on the old ones. Before the fix SIGHUP killed
the daemon at once."""

import json
import os
import signal
import socket
import time

from harness import (DEMO_PROFILE, Daemon, FakeSite, check, http, parse_ts, run, session_files,
                     temp_dir, wait_until)

SESSIONS = 20


def free_port():
    # A fixed port (not :0) so that the re-executed daemon must bind the same
    # one: a listening socket leaked across exec would make that fail.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(d, pid):
    check(d.proc.poll() is None, f"sessiond exited with {d.proc.returncode}; stderr: {d.stderr[-500:]!r}")
    check(d.proc.pid == pid, "PID changed")


def refreshes_by_session(d):
    out = {}
    for e in d.events("refresh_ok"):
        out.setdefault(e["session"], []).append(parse_ts(e["ts"]))
    return out


def test_signals():
    site = FakeSite(idle_timeout="6s")
    sessions = temp_dir("sessions-")
    conf_dir = temp_dir("sighup-")
    mobiles = site.seed(sessions, SESSIONS)
    profile = os.path.join(conf_dir, "profile.json")
    original = open(DEMO_PROFILE).read()
    check('"interval": "2s"' in original, "demo profile no longer has interval 2s")
    with open(profile, "w") as f:
        f.write(original)
    port = free_port()
    config = os.path.join(conf_dir, "sessiond.json")
    config_doc = {"listen": f"127.0.0.1:{port}", "heartbeat-interval": "2s"}
    with open(config, "w") as f:
        json.dump(config_doc, f)
    base = f"http://127.0.0.1:{port}"

    d = Daemon("--config", config, "--profile", profile, "--base-url", site.base_url,
               "--sessions-dir", sessions, "--rescan-interval", "2s")
    pid = d.proc.pid
    d.wait_event("ready", 10)
    wait_until(lambda: len(refreshes_by_session(d)) == SESSIONS, 10, what="every session refreshed once")
    check(json.loads(http("GET", base + "/status")[1])["refreshInterval"] == 2, "interval before reload")

    # 1. A valid, changed profile: drained, re-executed in place, applied.
    with open(profile, "w") as f:
        f.write(original.replace('"interval": "2s"', '"interval": "3s"'))
    hup_at = time.time()
    os.kill(pid, signal.SIGHUP)
    d.wait_event("reload", 10, count=2)  # validated, then drained
    d.wait_event("ready", 15, count=2)   # the new image scanned the directory
    alive(d, pid)
    starts = [e for e in d.events("startup") if e.get("msg") == "sessiond starting"]
    check(len(starts) == 2, f"expected a second start after the re-exec, got {len(starts)}")
    drained = d.events("reload")[-1]
    check(drained.get("drained") is True, f"reload drain: {drained}")
    check(not d.events("shutdown"), "a reload must not log shutdown")
    wait_until(lambda: http("GET", base + "/healthz", timeout=2)[0] == 200, 10, what="/healthz after reload")
    status = json.loads(http("GET", base + "/status")[1])
    check(status["refreshInterval"] == 3, f"new profile not applied: {status['refreshInterval']}")
    check(status["revision"], "no revision in /status")

    # Every session refreshed again after the re-exec, none early, none lost.
    ready2 = parse_ts(d.events("ready")[-1]["ts"])
    wait_until(lambda: all(any(t > ready2 for t in ts) for ts in refreshes_by_session(d).values())
               and len(refreshes_by_session(d)) == SESSIONS, 15,
               what="every session refreshed after the reload")
    for m, ts in refreshes_by_session(d).items():
        before = [t for t in ts if t < hup_at]
        after = [t for t in ts if t > ready2]
        if before and after:
            gap = after[0] - before[-1]
            # Resumed from the keepalive block's schedule, not refreshed at start.
            check(gap >= 1.0, f"{m}: refreshed {gap:.2f}s after its previous refresh across the reload")
    check(not d.events("session_invalidated"), "a session was invalidated across the reload")
    check(sorted(session_files(sessions)) == sorted(f"session-{m}.json" for m in mobiles),
          "session files changed across the reload")

    # 2. A broken profile: rejected with the reason, the old one keeps running.
    with open(profile, "w") as f:
        f.write('{"name": "broken", ')
    os.kill(pid, signal.SIGHUP)
    rejected = d.wait_event("reload_rejected", 10)[-1]
    check("profile" in rejected.get("error", ""), f"reload_rejected without the reason: {rejected}")
    rejected_at = parse_ts(rejected["ts"])
    # 3. A broken config file, too (the profile is still broken: fix it first).
    with open(profile, "w") as f:
        f.write(original)
    with open(config, "w") as f:
        json.dump({**config_doc, "no-such-flag": 1}, f)
    os.kill(pid, signal.SIGHUP)
    rejected = d.wait_event("reload_rejected", 10, count=2)[-1]
    check("no-such-flag" in rejected.get("error", ""), f"config error not named: {rejected}")
    alive(d, pid)
    check(len(d.events("reload")) == 2, "a rejected reload re-executed")
    check(len([e for e in d.events("startup") if e.get("msg") == "sessiond starting"]) == 2,
          "a rejected reload restarted the daemon")
    check(http("GET", base + "/healthz", timeout=2)[0] == 200, "/healthz after a rejected reload")
    wait_until(lambda: all(any(t > rejected_at for t in ts) for ts in refreshes_by_session(d).values()),
               15, what="sessions still refreshed after a rejected reload")
    check(json.loads(http("GET", base + "/status")[1])["refreshInterval"] == 3,
          "the rejected reload changed the running configuration")

    code = d.stop()
    check(code == 0, f"SIGTERM exit code {code}")
    stats = site.stats()
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
    d.check_logs(site.secrets())
    site.stop()


if __name__ == "__main__":
    run(test_signals)
