"""--on-logged-out mark and delete against the fake site (quarantine, the
default, is covered by test_keepalive.py).

mark: the file stays where it is with an "invalid" keepalive block, the
session is not refreshed again, a manual refresh neither refreshes it nor
logs a false session_reloaded (sessiond's own mark is not the bot's rewrite),
and a new login written by the bot brings it back.
delete: the file is gone, sessiond forgets the session (status, manual
refresh), session_invalidated is logged, the other sessions go on."""

import json
import os
import stat

from harness import (DEMO_PROFILE, Daemon, FakeSite, check, cookie, daemon_status, http, load, run,
                     temp_dir, wait_until)

IDLE_S = 3
SESSIONS = 4


def start(site, sessions, mode):
    d = Daemon("--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions,
               "--interval", "1s", "--idle-timeout", f"{IDLE_S}s", "--listen", "127.0.0.1:0",
               "--on-logged-out", mode)
    d.wait_event("ready", 10)
    return d


def by_id(d):
    return {s["mobile"]: s for s in daemon_status(d)["sessions"]}


def refresh_events(d, session):
    return [e for e in d.events(session=session)
            if e.get("event") in ("refresh_ok", "refresh_failed", "logged_out", "session_invalidated")]


def others_refreshed(d, others, rounds):
    """Waits until every other session has `rounds` more refresh_ok lines: time
    enough for a victim that was still scheduled to have been refreshed."""
    start_counts = {m: len(d.events("refresh_ok", m)) for m in others}
    wait_until(lambda: all(len(d.events("refresh_ok", m)) >= start_counts[m] + rounds for m in others),
               10, what=f"{rounds} more refreshes of the other sessions")


def test_mark(site):
    sessions = temp_dir("sessions-mark-")
    mobiles = site.seed(sessions, SESSIONS, first_mobile="09140000000")
    victim, others = mobiles[1], [m for m in mobiles if m != mobiles[1]]
    path = os.path.join(sessions, f"session-{victim}.json")
    d = start(site, sessions, "mark")
    d.wait_event("refresh_ok", 5, session=victim)

    site.logout([victim])
    inv = d.wait_event("session_invalidated", 5, session=victim)[0]
    check(inv.get("file") == path, f"session_invalidated names {inv.get('file')}, not {path}")

    # The file stays in place, marked, still 0600; nothing is moved to invalid/.
    check(os.path.exists(path), "marked file is gone")
    check(not os.path.exists(os.path.join(sessions, "invalid")), "mark moved something to invalid/")
    ka = load(path)["keepalive"]
    check(ka["state"] == "invalid" and "logged out" in ka["lastError"] and ka["invalidSince"],
          f"keepalive block after mark: {ka}")
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "marked file is not 0600")
    check(cookie(load(path), "sid"), "the mark dropped the cookies")
    marked = open(path, "rb").read()

    st = wait_until(lambda: by_id(d).get(victim, {}).get("state") == "invalid" and by_id(d)[victim], 5,
                    what="status of the marked session")
    check(not st["isActive"] and "logged out" in (st["lastError"] or ""), f"status: {st}")

    # Not refreshed again: the others go on for several rounds, the victim's
    # file and log stay as they were.
    seen = len(refresh_events(d, victim))
    others_refreshed(d, others, 3)
    check(len(refresh_events(d, victim)) == seen,
          f"marked session refreshed again: {refresh_events(d, victim)[seen:]}")
    check(open(path, "rb").read() == marked, "marked file rewritten")

    # A manual refresh reads the file, sees its own mark and stops there: no
    # request, no session_reloaded (the file changed only by sessiond's mark).
    status, body, _ = http("POST", f"{d.url()}/sessions/{victim}/refresh", b"")
    check(status == 502 and json.loads(body).get("outcome") == "invalid",
          f"manual refresh of a marked session: HTTP {status} {body[:200]!r}")
    check(not d.events("session_reloaded", victim),
          f"false session_reloaded after a manual refresh: {d.events('session_reloaded', victim)}")
    check(len(refresh_events(d, victim)) == seen, "the manual refresh refreshed a marked session")
    check(open(path, "rb").read() == marked, "marked file rewritten by the manual refresh")
    check(by_id(d)[victim]["state"] == "invalid", f"status after manual refresh: {by_id(d)[victim]}")

    # The bot logs the account in again: that rewrite is a real reload.
    site.seed(sessions, 1, first_mobile=victim)
    d.wait_event("session_reloaded", 5, session=victim)
    d.wait_event("refresh_ok", 5, session=victim, count=len(d.events("refresh_ok", victim)) + 1)
    check(load(path)["keepalive"]["state"] == "active", f"after the new login: {load(path)['keepalive']}")

    code = d.stop()
    check(code == 0, f"sessiond exit status {code}")
    site.logout(mobiles)  # no longer kept alive: not to be counted as lost by the site
    n = d.check_logs(site.secrets())
    print(f"mark: {n} log lines, no secrets")


def test_delete(site):
    sessions = temp_dir("sessions-delete-")
    mobiles = site.seed(sessions, SESSIONS, first_mobile="09150000000")
    victim, others = mobiles[2], [m for m in mobiles if m != mobiles[2]]
    path = os.path.join(sessions, f"session-{victim}.json")
    d = start(site, sessions, "delete")
    d.wait_event("refresh_ok", 5, session=victim)

    site.logout([victim])
    inv = d.wait_event("session_invalidated", 5, session=victim)[0]
    check(inv.get("file") == path, f"session_invalidated names {inv.get('file')}, not {path}")
    check(not os.path.exists(path), "deleted session file still exists")
    check(not os.path.exists(os.path.join(sessions, "invalid")), "delete moved something to invalid/")

    # The watcher sees the file go: the session is forgotten.
    d.wait_event("session_removed", 5, session=victim)
    wait_until(lambda: victim not in by_id(d), 5, what="status to forget the deleted session")
    status, body, _ = http("POST", f"{d.url()}/sessions/{victim}/refresh", b"")
    check(status == 404, f"manual refresh of a deleted session: HTTP {status} {body[:200]!r}")

    seen = len(refresh_events(d, victim))
    others_refreshed(d, others, 3)
    check(len(refresh_events(d, victim)) == seen, "deleted session refreshed again")
    check(sorted(by_id(d)) == sorted(others), f"status lists {sorted(by_id(d))}")
    check(not d.events("session_reloaded", victim), "session_reloaded for a deleted session")

    code = d.stop()
    check(code == 0, f"sessiond exit status {code}")
    site.logout(mobiles)  # no longer kept alive: not to be counted as lost by the site
    n = d.check_logs(site.secrets())
    print(f"delete: {n} log lines, no secrets")


def test_logged_out_modes():
    site = FakeSite(idle_timeout=f"{IDLE_S}s")
    try:
        test_mark(site)
        test_delete(site)
        stats = site.stats()
        check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
    finally:
        site.stop()


if __name__ == "__main__":
    run(test_logged_out_modes)
