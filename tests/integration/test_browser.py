"""Browser steps end to end: the real daemon drives the real headless Chromium
(its browser pool) against the fake site in client-rendered mode, where only
the page's own script renews a session (a plain GET /pwa is no activity).

Scenarios (each with its own site, sessions and daemon; interval 3 s, idle
timeout 10 s, browser step timeout 3 s):
  keepalive      20 sessions, 1 MB bundle, > 3 idle timeouts: none lost, the
                 app's API did the renewing, the bundle came from the cache
  forced_logout  the site logs 2 accounts out: exactly those are quarantined
  browser_kill9  kill -9 of Chromium mid-run: the pool restarts it, nothing lost
  round_trip     files saved after browser steps load into a fresh daemon run
  no_orphans     SIGTERM / kill -9 of sessiond leave no Chromium behind
  hung_page      the page never renders: transient timeouts, then recovery
Every scenario ends by checking that no Chromium process it started is left
(found by the user-data-dir under this test's TMPDIR, the process group of
each browser seen, or descent from one of its daemons), and that the daemon's
log lines are JSON without any secret the site issued."""

import json
import os
import signal
import threading
import time

from harness import (SOURCE_DIR, Daemon, FakeSite, check, cookie, daemon_metrics, http, load, measured, metric_sum,
                     parse_ts, run_scenarios, session_files, temp_dir, wait_ready, wait_until, wall_now)

INTERVAL_S, IDLE_S, STEP_TIMEOUT_S = 3, 10, 3
BASE_PROFILE = os.path.join(SOURCE_DIR, "profiles", "baman24.json")
# Parent of every browser profile directory (the pool creates
# $TMPDIR/sessiond-chromium-XXXXXX): tells this test's Chromium from others'.
BROWSER_TMP = temp_dir("browser-tmp-")
USER_DATA_FLAG = "--user-data-dir=" + BROWSER_TMP + "/"


def write_profile():
    """profiles/baman24.json with a short settle and step timeout and a retry
    pace scaled to the 10 s idle timeout (interval and idle come as flags)."""
    with open(BASE_PROFILE) as f:
        doc = json.loads("\n".join(line for line in f if not line.lstrip().startswith("//")))
    doc["check"]["browser"].update(settle="100ms", timeout=f"{STEP_TIMEOUT_S}s")
    doc["retry"] = {"base": "500ms", "max": "2s"}
    path = os.path.join(temp_dir("profile-"), "browser.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return path


PROFILE = write_profile()


# --- Chromium processes of this test ------------------------------------------------------------

def proc_table():
    """{pid: (ppid, pgrp, state, argv)} of every process, from /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rfind(")") + 2:].split()  # after the command name: state ppid pgrp
        out[int(name)] = (int(fields[1]), int(fields[2]), fields[0], argv)
    return out


def is_chromium(argv):
    return bool(argv) and "chrom" in os.path.basename(argv[0])


class BrowserWatch:
    """Remembers every browser process of this test (its pid is also its
    process group: the pool starts it with setpgid) by sampling /proc on its
    own thread, so that the children of a browser that was killed between two
    checks are still recognised. Bounded: stops itself after max_s."""

    def __init__(self, period=0.1, max_s=600):
        self.pgids, self.daemon_pids = set(), set()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._period, self._max_s = period, max_s
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        end = time.monotonic() + self._max_s
        while not self._stop.is_set() and time.monotonic() < end:
            self.sample()
            self._stop.wait(self._period)

    def sample(self, table=None):
        table = table if table is not None else proc_table()
        with self.lock:
            for pid, (_, pgrp, state, argv) in table.items():
                if state != "Z" and is_chromium(argv) and any(a.startswith(USER_DATA_FLAG) for a in argv):
                    self.pgids.add(pgrp)
        return table

    def add_daemon(self, d):
        with self.lock:
            self.daemon_pids.add(d.proc.pid)

    def ours(self):
        """{pid: argv} of this test's live (non-zombie) Chromium processes."""
        table = self.sample()
        with self.lock:
            pgids, daemons = set(self.pgids), set(self.daemon_pids)

        def from_daemon(pid):
            for _ in range(64):  # bounded walk up the tree
                ppid = table.get(pid, (0,))[0]
                if ppid in daemons:
                    return True
                if ppid <= 1 or ppid not in table:
                    return False
                pid = ppid
            return False
        return {pid: argv for pid, (ppid, pgrp, state, argv) in table.items()
                if state != "Z" and is_chromium(argv)
                and (pgrp in pgids or any(a.startswith(USER_DATA_FLAG) for a in argv) or from_daemon(pid))}

    def zombies(self):
        with self.lock:
            pgids = set(self.pgids)
        return sum(1 for (_, pgrp, state, argv) in proc_table().values() if state == "Z" and pgrp in pgids)

    def kill_all(self):
        """Last resort at exit (a failed scenario must not leave Chromium running)."""
        for pid in self.ours():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


WATCH = BrowserWatch()


def browser_pids(d):
    """Pids of the daemon's children that are a browser (--remote-debugging-pipe)."""
    return sorted(pid for pid, (ppid, _, state, argv) in WATCH.sample().items()
                  if ppid == d.proc.pid and state != "Z" and "--remote-debugging-pipe" in argv)


def wait_no_chromium(timeout, what):
    """Waits until no Chromium process of this test is left; returns the seconds it took."""
    started = time.monotonic()
    try:
        wait_until(lambda: not WATCH.ours(), timeout, interval=0.05, what=what)
    except AssertionError:
        left = WATCH.ours()
        raise AssertionError(f"{what}: {len(left)} Chromium processes left after {timeout}s: "
                             f"{[(pid, ' '.join(argv)[:120]) for pid, argv in sorted(left.items())[:6]]}")
    return round(time.monotonic() - started, 2)


# --- site and daemon --------------------------------------------------------------------------

def client_site(bundle_bytes=100000, extra=()):
    return FakeSite(idle_timeout=f"{IDLE_S}s",
                    extra=["--client-rendered", "--bundle-bytes", str(bundle_bytes), *extra])


def start(site, directory, *extra):
    d = Daemon("--profile", PROFILE, "--base-url", site.base_url, "--sessions-dir", directory,
               "--interval", f"{INTERVAL_S}s", "--idle-timeout", f"{IDLE_S}s", "--listen", "127.0.0.1:0",
               "--heartbeat-interval", "5s", "--rescan-interval", "5s", *extra,
               env={"TMPDIR": BROWSER_TMP})
    WATCH.add_daemon(d)
    return d


def seeded(site, count):
    directory = temp_dir("sessions-browser-")
    os.chmod(directory, 0o700)
    mobiles = site.seed(directory, count)
    return directory, mobiles


def ok_since(d, t, mobiles):
    """The sessions (of `mobiles`) with a refresh_ok logged at or after wall time t."""
    return {e["session"] for e in d.events("refresh_ok") if parse_ts(e["ts"]) >= t} & set(mobiles)


def wait_all_ok_since(d, t, mobiles, timeout, what):
    wait_until(lambda: ok_since(d, t, mobiles) >= set(mobiles), timeout, interval=0.1,
               what=f"{what} (missing: {sorted(set(mobiles) - ok_since(d, t, mobiles))[:5]})")


def stored_token(doc):
    """The app's token in the file's localStorage (what the page renews)."""
    for origin in doc.get("origins", []):
        for item in origin.get("localStorage", []):
            if item.get("name") == "pwa_access_token":
                return item.get("value")
    return None


def stop_clean(d, m, key="no_chromium_after_sigterm_s"):
    code = d.stop(signal.SIGTERM)
    check(code == 0, f"sessiond exit status {code} after SIGTERM")
    m[key] = wait_no_chromium(3, "Chromium left after SIGTERM of sessiond")


def invalidated(d):
    return sorted({e["session"] for e in d.events("session_invalidated")})


# --- scenarios --------------------------------------------------------------------------------

@measured
def keepalive(m):
    sessions, run_s = 20, 35
    site = client_site(bundle_bytes=1000000)
    directory, mobiles = seeded(site, sessions)
    first = {mb: load(os.path.join(directory, f"session-{mb}.json")) for mb in mobiles}
    m.update(sessions=sessions, run_s=run_s, idle_timeout_s=IDLE_S)
    # In this mode the server's HTML is no proof of anything and no activity:
    # plain HTTP (what the HTTP profile does) would not keep a session alive.
    doc = first[mobiles[0]]
    status, body, _ = http("GET", site.base_url + "/pwa",
                           headers={"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in doc["cookies"])})
    check(status == 200 and b"homeSection" not in body, f"GET /pwa: HTTP {status}, homeSection in the HTML")
    st = site.stats(per_session=True)["per_session"][mobiles[0]]
    check(st["api_calls"] == 0 and st["checks"] == 0, f"a plain GET /pwa counted as activity: {st}")
    d = start(site, directory)
    wait_ready(d)
    t0 = time.monotonic()
    app0 = site.stats()["app"]
    check(app0["api_calls"] == 0, f"API calls before sessiond ran: {app0}")
    # Bounded run, watching that the daemon stays up.
    while time.monotonic() - t0 < run_s:
        check(d.proc.poll() is None, f"sessiond exited ({d.proc.returncode})")
        time.sleep(1)
    stats = site.stats(per_session=True)
    metrics = daemon_metrics(d)
    steps = metric_sum(metrics, "sessiond_browser_steps_total")
    app = stats["app"]
    oks, fails = len(d.events("refresh_ok")), len(d.events("refresh_failed"))
    m.update(lost=stats["lost"], active=stats["active"], refresh_ok=oks, refresh_failed=fails,
             browser_steps=int(steps), api_calls=app["api_calls"], api_rejected=app["api_rejected"],
             shell_requests=app["shell_requests"], bundle_fetches=app["bundle_fetches"],
             bundle_not_modified=app["bundle_not_modified"],
             min_api_calls_per_session=min(stats["per_session"][mb]["api_calls"] for mb in mobiles),
             browser_restarts=metric_sum(metrics, "sessiond_browser_restarts_total"))
    print(f"keepalive: {int(steps)} browser steps, bundle fetched {app['bundle_fetches']}x "
          f"({app['bundle_not_modified']} revalidated), {app['api_calls']} API calls, {oks} refresh_ok, "
          f"{fails} refresh_failed", flush=True)
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
    check(stats["active"] == sessions, f"{stats['active']}/{sessions} active at the site")
    bad = {mb: s["state"] for mb, s in stats["per_session"].items() if s["state"] != "active"}
    check(not bad, f"sessions not active at the site: {bad}")
    check(not invalidated(d) and not d.events("logged_out"), f"invalidated: {invalidated(d)}")
    # The browser did it: only the page's API call is activity in this mode,
    # every logged-in step made one, and each account kept being renewed
    # (at least once per idle timeout).
    check(app["api_calls"] >= oks > 0, f"{app['api_calls']} API calls for {oks} successful steps")
    check(app["api_rejected"] == 0, f"{app['api_rejected']} API calls rejected")
    check(m["min_api_calls_per_session"] >= run_s // IDLE_S, f"an account had only "
          f"{m['min_api_calls_per_session']} accepted API calls in {run_s}s")
    check(steps >= oks, f"sessiond_browser_steps_total {steps} < {oks} refresh_ok")
    # The shared HTTP cache: the 1 MB bundle is fetched far fewer times than pages load.
    check(app["bundle_fetches"] * 10 <= steps, f"bundle fetched {app['bundle_fetches']}x for {steps} steps")
    check(stats["stale_cookie_requests"] == 0, f"{stats['stale_cookie_requests']} stale-cookie requests")
    stop_clean(d, m)
    # What the page left was saved: rotated sid, renewed token, 0600, still active.
    for mb in mobiles:
        path = os.path.join(directory, f"session-{mb}.json")
        doc = load(path)
        check(doc["keepalive"]["state"] == "active", f"{mb}: keepalive {doc['keepalive']}")
        check(cookie(doc, "sid") != cookie(first[mb], "sid"), f"{mb}: sid never rotated in the file")
        check(stored_token(doc) and stored_token(doc) != stored_token(first[mb]), f"{mb}: token not renewed")
        check(oct(os.stat(path).st_mode & 0o777) == "0o600", f"{mb}: mode")
    m["log_lines"] = d.check_logs(site.secrets())
    site.stop()


@measured
def forced_logout(m):
    sessions = 20
    site = client_site()
    directory, mobiles = seeded(site, sessions)
    victims = [mobiles[3], mobiles[11]]
    m.update(sessions=sessions, logged_out=victims)
    d = start(site, directory)
    wait_ready(d)
    t_ready = wall_now()
    wait_all_ok_since(d, t_ready, mobiles, 3 * INTERVAL_S, "every session refreshed once")
    t_logout = wall_now()
    site.logout(victims)
    started = time.monotonic()
    for v in victims:
        d.wait_event("session_invalidated", 3 * INTERVAL_S + STEP_TIMEOUT_S, session=v)
    m["invalidated_after_s"] = round(time.monotonic() - started, 1)
    # Everyone else went through at least one more step after the logout.
    others = [mb for mb in mobiles if mb not in victims]
    wait_all_ok_since(d, t_logout, others, 3 * INTERVAL_S, "every other session refreshed after the logout")
    check(invalidated(d) == sorted(victims), f"invalidated: {invalidated(d)}, expected {sorted(victims)}")
    inv_dir = os.path.join(directory, "invalid")
    check(sorted(os.listdir(inv_dir)) == sorted(f"session-{v}.json" for v in victims),
          f"invalid/ holds {sorted(os.listdir(inv_dir))}")
    for v in victims:
        ka = load(os.path.join(inv_dir, f"session-{v}.json"))["keepalive"]
        check(ka["state"] == "invalid" and ka["invalidSince"], f"{v}: keepalive {ka}")
        check(not os.path.exists(os.path.join(directory, f"session-{v}.json")), f"{v}: file still in place")
    check(session_files(directory) == sorted(f"session-{mb}.json" for mb in others), "other files changed")
    stats = site.stats(per_session=True)
    m.update(lost=stats["lost"], forced_logout_at_site=stats["forced_logout"])
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
    check(all(stats["per_session"][mb]["state"] == "active" for mb in others), "another account is not active")
    stop_clean(d, m)
    m["log_lines"] = d.check_logs(site.secrets())
    site.stop()


@measured
def browser_kill9(m):
    sessions = 20
    # The site accepts a rotated-away pair for 5 s (as in test_faults_process's
    # kill loop): if the kill lands in the few ms between the site renewing the
    # token of the step in flight and the pool capturing it, no client can
    # keep that session without such a grace. "0s" to measure that race.
    grace = os.environ.get("KILL_TEST_ROTATE_GRACE", "5s")
    site = client_site(extra=["--rotate-grace", grace])
    m["site_rotate_grace"] = grace
    directory, mobiles = seeded(site, sessions)
    m["sessions"] = sessions
    d = start(site, directory)
    wait_ready(d)
    wait_all_ok_since(d, wall_now(), mobiles, 3 * INTERVAL_S, "every session refreshed once")
    old = wait_until(lambda: browser_pids(d), 5, what="the daemon's browser process")
    check(len(old) == 1, f"the daemon has {len(old)} browser children: {old}")
    # Mid-step: the kill lands while the pool reports a step running.
    in_flight = wait_until(lambda: metric_sum(daemon_metrics(d, timeout=2), "sessiond_browser_in_flight"), 10,
                           interval=0.01, what="a browser step in flight")
    t_kill = wall_now()
    os.kill(old[0], signal.SIGKILL)
    killed_at = time.monotonic()
    new = wait_until(lambda: [p for p in browser_pids(d) if p != old[0]], 10, what="a new browser process")
    m.update(in_flight_at_kill=int(in_flight), new_browser_after_s=round(time.monotonic() - killed_at, 2))
    # The old browser's whole process group is gone (the pool kills the group).
    wait_until(lambda: not [p for p, (_, pgrp, st, _) in proc_table().items() if pgrp == old[0] and st != "Z"], 5,
               what="the killed browser's processes to go")
    wait_until(lambda: metric_sum(daemon_metrics(d), "sessiond_browser_restarts_total") >= 1, 5,
               what="sessiond_browser_restarts_total >= 1")
    wait_all_ok_since(d, t_kill, mobiles, 4 * INTERVAL_S, "every session refreshed after the kill")
    m["all_refreshed_after_s"] = round(time.monotonic() - killed_at, 1)
    time.sleep(IDLE_S)  # one more idle timeout on the new browser: a session lost to the kill would show
    check(d.proc.poll() is None, "sessiond died")
    check(browser_pids(d) == new, f"browser pids changed again: {new} -> {browser_pids(d)}")
    metrics = daemon_metrics(d)
    stats = site.stats(per_session=True)
    crashed = d.events("browser_crashed")
    m.update(lost=stats["lost"], invalidated=len(invalidated(d)), browser_crashed_events=len(crashed),
             browser_restarts=metric_sum(metrics, "sessiond_browser_restarts_total"),
             failed_after_kill=len([e for e in d.events("refresh_failed") if parse_ts(e["ts"]) >= t_kill]),
             errors_after_kill=sorted({e.get("error", "") for e in d.events("refresh_failed")
                                       if parse_ts(e["ts"]) >= t_kill}))
    check(crashed, "no browser_crashed log event")
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost: "
          f"{[mb for mb, s in stats['per_session'].items() if s['state'] != 'active']}")
    check(not invalidated(d), f"invalidated: {invalidated(d)}")
    check(not os.path.exists(os.path.join(directory, "invalid")), "files in invalid/")
    stop_clean(d, m)
    m["log_lines"] = d.check_logs(site.secrets())
    site.stop()


@measured
def round_trip(m):
    sessions = 10
    site = client_site()
    directory, mobiles = seeded(site, sessions)
    seeded_tokens = {mb: stored_token(load(os.path.join(directory, f"session-{mb}.json"))) for mb in mobiles}
    m["sessions"] = sessions
    first = start(site, directory)
    wait_ready(first)
    wait_all_ok_since(first, wall_now(), mobiles, 3 * INTERVAL_S, "every session refreshed once")
    stop_clean(first, m, key="first_run_no_chromium_after_s")
    saved = {mb: load(os.path.join(directory, f"session-{mb}.json")) for mb in mobiles}
    for mb, doc in saved.items():
        check(doc["keepalive"]["refreshCount"] >= 1, f"{mb}: not saved after a browser step")
        check(stored_token(doc) != seeded_tokens[mb], f"{mb}: the saved token is the seeded one")
    second = start(site, directory)
    wait_ready(second)
    t_second = wall_now()
    wait_all_ok_since(second, t_second, mobiles, 3 * INTERVAL_S, "every session refreshed by the fresh run")
    for mb in mobiles:  # the first step of the fresh run started from the saved file
        evs = [e["event"] for e in second.events(session=mb) if e["event"] in ("refresh_ok", "refresh_failed")]
        check(evs[0] == "refresh_ok", f"{mb}: first outcome of the fresh run: {evs[:3]}")
    stats = site.stats()
    m.update(lost=stats["lost"], invalidated=len(invalidated(second)))
    check(not invalidated(second) and not second.events("logged_out"), f"invalidated: {invalidated(second)}")
    check(stats["lost"] == 0 and stats["active"] == sessions, f"site: lost {stats['lost']}, active {stats['active']}")
    stop_clean(second, m, key="second_run_no_chromium_after_s")
    secrets = site.secrets()
    first.check_logs(secrets)
    second.check_logs(secrets)
    site.stop()


@measured
def no_orphans(m):
    site = client_site()
    directory, mobiles = seeded(site, 4)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        d = start(site, directory)
        wait_ready(d)
        wait_all_ok_since(d, wall_now(), mobiles, 3 * INTERVAL_S, "every session refreshed once")
        browsers = browser_pids(d)
        tree = len(WATCH.ours())
        check(browsers and tree > len(browsers), f"no browser tree to orphan: {browsers}, {tree} processes")
        started = time.monotonic()
        code = d.stop(sig)
        name = signal.Signals(sig).name
        m[f"exit_after_{name}"] = code
        check(code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), f"exit status {code} after {name}")
        m[f"chromium_processes_before_{name}"] = tree
        wait_no_chromium(3, f"Chromium left after {name} of sessiond")
        m[f"no_chromium_after_{name}_s"] = round(time.monotonic() - started, 2)
        if sig == signal.SIGKILL:
            d.check_logs_killed(site.secrets())
        else:
            d.check_logs(site.secrets())
    m["zombies_left_to_init"] = WATCH.zombies()  # reaped by init, not by us: reported only
    site.stop()


@measured
def hung_page(m):
    sessions = 6
    site = client_site()
    directory, mobiles = seeded(site, sessions)
    m.update(sessions=sessions, step_timeout_s=STEP_TIMEOUT_S)
    d = start(site, directory)
    wait_ready(d)
    wait_all_ok_since(d, wall_now(), mobiles, 3 * INTERVAL_S, "every session refreshed once")
    t_hang = wall_now()
    site.faults(hang=True)
    hang_started = time.monotonic()

    def timeouts():
        return [e for e in d.events("refresh_failed") if parse_ts(e["ts"]) >= t_hang]
    # Two timed-out steps (one per browser slot), then the page renders again:
    # well inside the idle timeout of a session refreshed just before the hang.
    wait_until(lambda: len(timeouts()) >= 2, INTERVAL_S + 2 * STEP_TIMEOUT_S, interval=0.1,
               what="refresh_failed while the page hangs")
    site.faults()
    t_clear = wall_now()
    m["hang_s"] = round(time.monotonic() - hang_started, 1)
    failed = timeouts()
    m.update(refresh_failed_during_hang=len(failed), errors=sorted({e.get("error", "") for e in failed}))
    check(all("timeout" in e.get("error", "") for e in failed),
          f"failures that are not timeouts: {[e.get('error') for e in failed]}")
    check(all(e.get("state") in ("retrying", "at_risk") for e in failed), f"states: {[e.get('state') for e in failed]}")
    wait_all_ok_since(d, t_clear, mobiles, 3 * INTERVAL_S, "every session refreshed after the hang")
    m["recovered_s"] = round(time.monotonic() - hang_started, 1)
    time.sleep(INTERVAL_S)
    stats = site.stats()
    m.update(lost=stats["lost"], invalidated=len(invalidated(d)),
             browser_transient=metric_sum(daemon_metrics(d), "sessiond_browser_steps_total", result="transient"))
    check(stats["lost"] == 0 and stats["active"] == sessions, f"site: lost {stats['lost']}, active {stats['active']}")
    check(not invalidated(d) and not d.events("logged_out"), f"invalidated: {invalidated(d)}")
    check(not os.path.exists(os.path.join(directory, "invalid")), "files in invalid/")
    stop_clean(d, m)
    m["log_lines"] = d.check_logs(site.secrets())
    site.stop()


def no_chromium_at_end():
    WATCH.stop()
    left = WATCH.ours()
    if left:
        WATCH.kill_all()
    check(not left, f"Chromium processes of this test still running: {sorted(left)}")


@measured
def nothing_left(m):
    no_chromium_at_end()
    m["browsers_seen"] = len(WATCH.pgids)


if __name__ == "__main__":
    scenarios = [keepalive, forced_logout, browser_kill9, round_trip, no_orphans, hung_page]
    only = os.environ.get("BROWSER_TEST_ONLY")  # e.g. "browser_kill9,hung_page" while debugging
    if only:
        scenarios = [s for s in scenarios if s.__name__ in only.split(",")]
    try:
        run_scenarios(scenarios + [nothing_left], results_name="browser")
    finally:
        WATCH.kill_all()
