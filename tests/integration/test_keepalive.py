"""Core end to end: 200 sessions kept alive against the fake site for more than
10 idle timeouts (interval 1 s, idle 3 s), with files added, removed, logged
out, re-logged-in and malformed while it runs, then SIGTERM mid-refresh."""

import os
import signal
import time

from harness import (DEMO_PROFILE, Daemon, FakeSite, check, cookie, http, load, run,
                     session_files, temp_dir, wait_until)

SESSIONS = 200
IDLE_S = 3
RUN_S = 11 * IDLE_S


def test_keepalive():
    site = FakeSite(idle_timeout=f"{IDLE_S}s")
    sessions = temp_dir("sessions-")
    mobiles = site.seed(sessions, SESSIONS)
    first_sid = {m: cookie(load(os.path.join(sessions, f"session-{m}.json")), "sid") for m in mobiles}

    d = Daemon("--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions,
               "--interval", "1s", "--idle-timeout", f"{IDLE_S}s", "--listen", "127.0.0.1:0",
               "--heartbeat-interval", "2s", "--status-interval", "5s", "--rescan-interval", "2s")
    d.wait_event("ready", 10)
    t0 = time.monotonic()

    # A file added while running is refreshed within 1 s.
    time.sleep(2)
    added = site.seed(sessions, 1, first_mobile="09130000000")[0]
    written = time.time()
    ok = d.wait_event("refresh_ok", 5, session=added)[0]
    lag = time.mktime(time.strptime(ok["ts"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + \
        int(ok["ts"][20:23]) / 1000 - written
    print(f"new file -> first refresh: {lag * 1000:.0f} ms")
    check(lag < 1.0, f"new file refreshed after {lag:.2f}s (> 1 s)")

    # A removed file stops being refreshed (the site logs that account out so
    # that its expiry is not counted as lost).
    removed = mobiles[5]
    os.remove(os.path.join(sessions, f"session-{removed}.json"))
    d.wait_event("session_removed", 3, session=removed)
    site.logout([removed])
    refreshes_at_removal = len(d.events("refresh_ok", removed))

    # A forced logout quarantines exactly that session.
    victim = mobiles[7]
    before = {f: open(os.path.join(sessions, f), "rb").read() for f in session_files(sessions)}
    site.logout([victim])
    d.wait_event("session_invalidated", 5, session=victim)
    quarantined = os.path.join(sessions, "invalid", f"session-{victim}.json")
    check(os.path.exists(quarantined), "logged-out session was not moved to invalid/")
    check(not os.path.exists(os.path.join(sessions, f"session-{victim}.json")), "logged-out file still in place")
    ka = load(quarantined)["keepalive"]
    check(ka["state"] == "invalid" and "logged out" in ka["lastError"] and ka["invalidSince"], f"keepalive: {ka}")
    check(oct(os.stat(quarantined).st_mode & 0o777) == "0o600", "quarantined file is not 0600")
    invalidated = sorted({e["session"] for e in d.events("session_invalidated")})
    check(invalidated == [victim], f"sessions invalidated: {invalidated}; logged_out events: "
          f"{[e for e in d.events('logged_out') if e['session'] != victim][:3]}; site: {site.stats()}")
    check(len(session_files(sessions)) == len(before) - 1, "other session files changed in number")
    check(os.listdir(os.path.join(sessions, "invalid")) == [f"session-{victim}.json"], "invalid/ holds more")

    # The bot logs the account in again: a fresh session starts.
    site.seed(sessions, 1, first_mobile=victim)
    wait_until(lambda: [e for e in d.events("refresh_ok", victim)], 5, what="fresh session refreshed")

    # A malformed file is reported, left untouched, and the daemon goes on.
    bad = os.path.join(sessions, "session-09990000000.json")
    with open(bad, "w") as f:
        f.write('{"cookies": [ this is not json')
    d.wait_event("file_error", 5, session="09990000000")
    ok_before = len(d.events("refresh_ok"))
    time.sleep(1.5)
    check(len(d.events("refresh_ok")) > ok_before + 100, "refreshes stalled after a malformed file")

    # Keep going for more than 10 idle timeouts in all.
    time.sleep(max(0, RUN_S - (time.monotonic() - t0)))
    code = d.stop(signal.SIGTERM)  # refreshes are in flight at any moment at 200/s
    check(code == 0, f"sessiond exit status {code} after SIGTERM")
    check(d.events("shutdown"), "no shutdown log")

    stats = site.stats(per_session=True)
    print("fake site:", {k: stats[k] for k in ("sessions", "active", "lost", "forced_logout",
                                              "stale_cookie_requests", "requests")})
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost while the site was up")
    check(stats["stale_cookie_requests"] == 0, f"{stats['stale_cookie_requests']} requests with a rotated-away cookie")
    check(len(d.events("refresh_ok", removed)) == refreshes_at_removal, "removed session still refreshed")
    check(open(bad).read() == '{"cookies": [ this is not json', "malformed file was modified")

    leftovers = [f for f in os.listdir(sessions) if f.startswith(".")]
    check(not leftovers, f"temp files left behind: {leftovers}")
    live = [m for m in mobiles if m not in (removed, victim)]
    for m in live:
        doc = load(os.path.join(sessions, f"session-{m}.json"))  # parses: nothing torn
        check(cookie(doc, "sid") != first_sid[m], f"{m}: sid never rotated")
        check(doc["keepalive"]["state"] == "active", f"{m}: state {doc['keepalive']['state']}")
        check(doc["keepalive"]["refreshCount"] >= 10, f"{m}: only {doc['keepalive']['refreshCount']} refreshes")
        check(doc["origins"] and doc["origins"][0]["localStorage"], f"{m}: origins lost")
        check(oct(os.stat(os.path.join(sessions, f"session-{m}.json")).st_mode & 0o777) == "0o600", "mode")
    # The saved cookies are the live ones: the site accepts them.
    for m in live[:10]:
        doc = load(os.path.join(sessions, f"session-{m}.json"))
        header = "; ".join(f"{c['name']}={c['value']}" for c in doc["cookies"])
        status, body, _ = http("GET", site.base_url + "/pwa", headers={"Cookie": header})
        check(status == 200 and b"homeSection" in body, f"{m}: saved cookies rejected (HTTP {status})")
    n = d.check_logs(site.secrets())
    print(f"{n} log lines, all JSON, no secrets; {len(d.events('refresh_ok'))} refreshes")
    check(d.events("heartbeat") and d.events("status"), "no heartbeat/status logs")
    site.stop()


if __name__ == "__main__":
    run(test_keepalive)
