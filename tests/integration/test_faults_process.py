"""Process and disk faults: sessiond killed with SIGKILL over and over while it
refreshes and writes, the login bot rewriting session files under it, and the
disk filling up. In every scenario: no session lost while the site is up, none
wrongly marked invalid, files always whole (old or new, never torn, 0600),
recovery by itself, and no secret in the daemon's output.

Numbers are printed on a `RESULTS` line (and written to
$RELIABILITY_RESULTS_DIR/faults_process.json if set)."""

import glob
import json
import os
import random
import re
import stat
import subprocess
import time
from collections import namedtuple

from harness import (measured, Daemon, Failure, FakeSite, check, cookie, daemon_metrics, http,
                     metric_histogram_quantiles, metric_sum, parse_ts,
                     run_scenarios, scaled_profile, temp_dir, wait_ready, wait_until, wall_now)

TEMP_RE = re.compile(r"^\.session-.*\.tmp-(\d+)-")



def start(site, directory, *extra, idle_ms=4000, interval_ms=1000, profile=None):
    return Daemon("--profile", profile or scaled_profile(), "--base-url", site.base_url, "--sessions-dir", directory,
                  "--interval", f"{interval_ms}ms", "--idle-timeout", f"{idle_ms}ms", "--listen", "127.0.0.1:0",
                  "--rescan-interval", "2s", "--heartbeat-interval", "5s", *extra)


def temp_files(directory):
    return sorted(f for f in os.listdir(directory) if TEMP_RE.match(f))


def check_files_whole(directory, names):
    """Every session file parses as JSON and is mode 0600; returns {name: doc}."""
    docs = {}
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.exists(path) and os.path.exists(os.path.join(directory, "invalid", name)):
            path = os.path.join(directory, "invalid", name)  # quarantined: checked in place (and counted later)
        with open(path, "rb") as f:
            raw = f.read()
        try:
            docs[name] = json.loads(raw)
        except ValueError as e:
            raise Failure(f"{name} is torn / not JSON ({len(raw)} bytes): {e}")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        check(mode == 0o600, f"{name} has mode {oct(mode)}")
    return docs


def cookies_work(site, doc):
    header = "; ".join(f"{c['name']}={c['value']}" for c in doc["cookies"])
    status, body, _ = http("GET", site.base_url + "/pwa", headers={"Cookie": header})
    return status == 200 and b"homeSection" in body


def stop_then_broken(d, site, directory, mobiles):
    """Stops the daemon (exit status 0 required), then returns the mobiles whose
    file is missing or holds cookies the site rejects. Only after the stop: while
    it runs, a file read between the site's rotation and sessiond's save holds
    the just-rotated-away cookie (the fake site has no rotate grace)."""
    code = d.stop()
    check(code == 0, f"exit status {code}")
    broken = []
    for mb in mobiles:
        path = os.path.join(directory, f"session-{mb}.json")
        if not os.path.exists(path) or not cookies_work(site, json.load(open(path))):
            broken.append(mb)
    return broken


def all_events(daemons, event):
    return [e for d in daemons for e in d.events(event)]


@measured
def kill9_loop(m):
    # The site accepts a rotated-away sid for 5 s (rotate_grace): a kill between
    # the site's rotation and the rename of the saved file leaves the previous
    # cookie in the file, and only such a grace lets any client survive that.
    # Without it (--rotate-grace 0) see docs/RELIABILITY.md.
    sessions, kills = 100, 10
    grace = os.environ.get("KILL_TEST_ROTATE_GRACE", "5s")  # "0s" to measure what a site without grace loses
    site = FakeSite(idle_timeout="4s", extra=["--rotate-grace", grace])
    directory = temp_dir("sessions-kill-")
    mobiles = site.seed(directory, sessions, localstorage_bytes=20000)
    names = [f"session-{mb}.json" for mb in mobiles]
    m.update(fault="kill -9 loop", injected=f"SIGKILL x{kills} during refresh+write (~100 saves/s, 20 KB files), "
             f"site rotate grace {grace}", sessions=sessions)
    profile = scaled_profile()
    daemons, max_temp, refreshes_before_kill = [], 0, []
    rng = random.Random(7)
    downtimes, killed_at, killed_pid = [], None, None
    for i in range(kills):
        d = start(site, directory, profile=profile)
        daemons.append(d)
        if killed_pid is not None:
            # While the next one starts: a crash at any instant leaves the old
            # or the new file, never a torn one (a torn file would stay torn:
            # sessiond never overwrites a file it cannot parse).
            check_files_whole(directory, names)
            max_temp = max(max_temp, len([f for f in temp_files(directory)
                                          if TEMP_RE.match(f).group(1) == str(killed_pid)]))
        wait_ready(d)
        if killed_at is not None:
            downtimes.append(time.monotonic() - killed_at)
        # Every session refreshed (and saved) once in this life, then the kill
        # lands at a random point of the next round, while saves go on.
        # (Quarantined ones excepted: they fail the test at the end, but the
        # loop goes on so that KILL_TEST_ROTATE_GRACE=0s can count them.)
        wait_until(lambda: {mb for mb in mobiles if os.path.exists(os.path.join(directory, f"session-{mb}.json"))}
                   - {e["session"] for e in d.events("session_invalidated")}
                   <= {e["session"] for e in d.events("refresh_ok")}, 10, interval=0.1,
                   what="every session refreshed in this run")
        time.sleep(rng.uniform(0.0, 0.5))
        refreshes_before_kill.append(len(d.events("refresh_ok")))
        d.proc.kill()
        killed_at, killed_pid = time.monotonic(), d.proc.pid
        d.proc.wait(timeout=10)
        d.reader.join(timeout=5)
        d.err_reader.join(timeout=5)
    check_files_whole(directory, names)
    m["refreshes_between_kills_min"] = min(refreshes_before_kill)
    m["downtime_max_s"] = round(max(downtimes), 2)
    m["temp_files_left_by_kills_max"] = max_temp
    leftovers = temp_files(directory)
    m["temp_files_after_kills"] = len(leftovers)
    # Make the kills' leftovers (and one planted file) older than 60 s: the
    # next start-up must remove them all.
    old = time.time() - 120
    planted = os.path.join(directory, ".session-09999999999.json.tmp-1-2-3")
    with open(planted, "w") as f:
        f.write("{")
    for name in leftovers + [os.path.basename(planted)]:
        os.utime(os.path.join(directory, name), (old, old))
    # The clean restart comes right away (sessions are 4 s from their idle
    # deadline and a rotated-away cookie works for 5 s: a long pause here
    # would lose them to the test, not to sessiond). Most are overdue anyway:
    # their last refresh is more than an interval old by the time it is ready.
    last = {}
    for mb in mobiles:
        path = os.path.join(directory, f"session-{mb}.json")
        if os.path.exists(path):
            ka = json.load(open(path)).get("keepalive") or {}
            last[mb] = parse_ts(ka["lastRefresh"]) if ka.get("lastRefresh") else 0.0
    d = start(site, directory, profile=profile)
    daemons.append(d)
    wait_ready(d)
    ready_ts = parse_ts(d.events("ready")[0]["ts"])
    check(d.events("startup") and any("temp files" in e["msg"] for e in d.events("startup")),
          "no start-up log about removed temp files")
    check(not temp_files(directory) or all(TEMP_RE.match(f).group(1) == str(d.proc.pid) for f in temp_files(directory)),
          f"stale temp files not removed at start-up: {temp_files(directory)[:5]}")
    # (A session quarantined by an earlier run is not expected here; the
    # invalidation check below fails the test for it.)
    live = sorted(last)
    m["quarantined_before_final_start"] = len(mobiles) - len(live)
    overdue = [mb for mb in live if ready_ts - last[mb] > 1.0]
    m["overdue_at_restart"] = len(overdue)

    def first_ok():
        firsts = {}
        for e in d.events("refresh_ok"):
            firsts.setdefault(e["session"], parse_ts(e["ts"]))
        gone = {e["session"] for e in d.events("session_invalidated")}
        return firsts if set(live) - gone <= set(firsts) else None
    firsts = wait_until(first_ok, 10, interval=0.1, what="every session refreshed after the clean restart")
    late = max((firsts[mb] - ready_ts for mb in overdue if mb in firsts), default=0.0)
    m["restart_catchup_s"] = round(late, 3)
    # Whether any session is overdue depends on how quickly the restart came;
    # the promptness check below covers those that are.
    print(f"overdue at the clean restart: {len(overdue)}")
    check(late <= 2.0, f"overdue sessions refreshed {late:.2f}s after ready (> 2 s)")
    time.sleep(1.0)
    code = d.stop()
    check(code == 0, f"exit status {code} after SIGTERM")
    own = [f for f in temp_files(directory) if TEMP_RE.match(f).group(1) == str(d.proc.pid)]
    check(not own, f"a clean run left its temp files: {own}")
    m["temp_files_at_end"] = len(temp_files(directory))
    check(not temp_files(directory), f"temp files left: {temp_files(directory)[:5]}")
    docs = check_files_whole(directory, names)
    bad = [n for n, doc in docs.items() if not cookies_work(site, doc)]
    m["files_with_dead_cookies"] = len(bad)
    stats = site.stats(per_session=True)
    inv = {e["session"] for e in all_events(daemons, "session_invalidated")}
    m.update(lost=stats["lost"], wrongly_invalidated=len(inv), stale_cookie_requests=stats["stale_cookie_requests"],
             refresh_ok_total=len(all_events(daemons, "refresh_ok")))
    def story(mb):
        out = []
        for i, dd in enumerate(daemons):
            for e in dd.events(session=mb):
                if e["event"] != "request":
                    out.append((i, e["ts"][14:23], e["event"], e.get("step", ""), e.get("http_status", ""),
                                e.get("error", "")[:40]))
        return out[-14:]
    sick = sorted(inv | {n[len("session-"):-len(".json")] for n in bad})
    check(stats["lost"] == 0 and not inv, f"{stats['lost']} sessions lost, {len(inv)} invalidated ({sorted(inv)[:10]}); "
          f"site states: {[(mb, stats['per_session'][mb]['state']) for mb in sick[:5]]}; kill times (daemon, "
          f"mm:ss.mmm of its last line): {[(i, dd.lines[-1][15:27]) for i, dd in enumerate(daemons[:-1]) if dd.lines]}; "
          f"timeline (daemon#, ts, event, step, status): {[(mb, story(mb)) for mb in sick[:2]]}")
    check(not os.path.exists(os.path.join(directory, "invalid")) or not os.listdir(os.path.join(directory, "invalid")),
          "files in invalid/")
    check(not bad, f"{len(bad)} saved files hold cookies the site rejects: {bad[:5]}")
    secrets = site.secrets()
    for dd in daemons[:-1]:
        dd.check_logs_killed(secrets)
    d.check_logs(secrets)
    site.stop()


@measured
def bot_rewrites(m):
    # No rotate grace: if sessiond ever wrote back state older than the bot's
    # new login, that file's cookie would be dead and the session quarantined.
    sessions, targets_n, rewrites = 20, 5, 15
    site = FakeSite(idle_timeout="4s")
    directory = temp_dir("sessions-bot-")
    mobiles = site.seed(directory, sessions, localstorage_bytes=5000)
    targets = mobiles[:targets_n]
    m.update(fault="bot rewrites files", injected=f"{rewrites} new logins written over {targets_n} files "
             "(atomic rename) while refreshing", sessions=sessions)
    d = start(site, directory, "--log-level", "debug")  # debug: request/response lines explain a failure
    wait_ready(d)
    wait_until(lambda: set(mobiles) <= {e["session"] for e in d.events("refresh_ok")}, 10, interval=0.1,
               what="every session refreshed once")
    rng = random.Random(11)
    done = []  # (session, wall time the new file was in place)
    for i in range(rewrites):
        time.sleep(rng.uniform(0.2, 0.6))
        target = targets[i % targets_n]
        done.append((target, wall_now()))  # before: the file is in place before the call returns
        site.seed(directory, 1, first_mobile=target, localstorage_bytes=5000)
    # Each rewrite is picked up (reloaded) and the new session refreshed next.
    def missing():
        out = []
        for target, t in done:
            reloads = [parse_ts(e["ts"]) for e in d.events(session=target)
                       if e["event"] in ("session_reloaded", "file_changed") and parse_ts(e["ts"]) >= t]
            oks = [e for e in d.events("refresh_ok", target) if reloads and parse_ts(e["ts"]) >= reloads[0]]
            if not reloads or not oks:
                out.append((target, round(t, 3), bool(reloads)))
        return out
    try:
        wait_until(lambda: not missing(), 8, interval=0.1, what="every rewrite reloaded and refreshed")
    except Failure:
        first, t, _ = missing()[0]
        evs = [(round(parse_ts(e["ts"]) - t, 3), e["event"], e.get("step", ""), e.get("http_status", ""),
                e.get("verdict", ""), e.get("error", "")) for e in d.events(session=first)
               if -1.5 <= parse_ts(e["ts"]) - t <= 3]
        raise Failure(f"rewrites not reloaded + refreshed (session, time, reloaded?): {missing()}; events of "
                      f"{first} around its rewrite (s from it): {evs}")
    time.sleep(2)  # a few more rounds: an old state written back would show now
    stale1 = site.stats()["stale_cookie_requests"]
    time.sleep(1.5)
    stats = site.stats(per_session=True)
    inv = sorted({e["session"] for e in d.events("session_invalidated")})
    m.update(lost=stats["lost"], wrongly_invalidated=len(inv), stale_cookie_requests=stats["stale_cookie_requests"],
             reloaded=len(d.events("session_reloaded")), file_changed=len(d.events("file_changed")),
             logged_out_verdicts=len(d.events("logged_out")))
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
    check(not inv, f"sessions invalidated: {inv}: {[e for e in d.events('session_invalidated')][:3]}")
    check(not os.path.exists(os.path.join(directory, "invalid")), "files in invalid/")
    # Old cookies are no longer used: the stale counter stopped growing.
    check(stats["stale_cookie_requests"] == stale1, "requests with a replaced session's cookie continue")
    check(stats["stale_cookie_requests"] <= 2 * rewrites,
          f"{stats['stale_cookie_requests']} requests with replaced cookies for {rewrites} rewrites")
    for mb in mobiles:
        check(stats["per_session"][mb]["state"] == "active", f"{mb}: site state {stats['per_session'][mb]['state']}")
    broken = stop_then_broken(d, site, directory, mobiles)
    check(not broken, f"the files' cookies do not work (the bot's login lost): {broken}")
    d.check_logs(site.secrets())
    site.stop()


def write_during_save(m, attempts, fallback):
    """The bot's new file lands while sessiond is saving the same session: the
    rewrite is timed to follow sessiond's refresh response for that session
    (read from its debug log), so the bot's rename falls between sessiond's
    "unchanged on disk?" check and its own rename. The bot's version must win.
    fallback: saves without RENAME_EXCHANGE, as on NFS (--save-without-exchange)."""
    sessions = 24
    site = FakeSite(idle_timeout="4s")
    directory = temp_dir("sessions-race-")
    mobiles = site.seed(directory, sessions, localstorage_bytes=100000)
    m.update(fault="bot write during save" + (" (NFS save path)" if fallback else ""),
             injected=f"{attempts} rewrites timed right after a refresh response", sessions=sessions)
    d = start(site, directory, "--log-level", "debug", *(["--save-without-exchange"] if fallback else []))
    wait_ready(d)
    # The save path in use is the one asked for, and says so.
    exchange = metric_sum(daemon_metrics(d), "sessiond_atomic_exchange_supported")
    m["atomic_exchange_supported"] = exchange
    check(exchange == (0 if fallback else 1), f"sessiond_atomic_exchange_supported is {exchange}")
    check(bool(d.events("save_without_exchange")) == fallback, "save_without_exchange line (or its absence)")
    check(not d.events("atomic_exchange_unsupported"), "the probe says this directory has no RENAME_EXCHANGE")
    wait_until(lambda: set(mobiles) <= {e["session"] for e in d.events("refresh_ok")}, 10, interval=0.1,
               what="every session refreshed once")
    timed, rewritten = 0, []
    for target in mobiles[:attempts]:
        with d.lock:
            idx = len(d.lines)
        marker = f'"session":"{target}"'
        deadline = time.monotonic() + 2.5
        hit = False
        while time.monotonic() < deadline:  # bounded: one refresh interval and a bit
            with d.lock:
                new = d.lines[idx:]
                idx = len(d.lines)
            if any('"event":"response"' in l and '"step":"refresh"' in l and marker in l for l in new):
                hit = True
                break
            time.sleep(0.001)
        timed += hit
        site.seed(directory, 1, first_mobile=target, localstorage_bytes=100000)
        rewritten.append(target)
    time.sleep(2.5)  # a couple of refresh rounds: a lost bot login shows as a 302 and a quarantine
    stats = site.stats(per_session=True)
    broken = stop_then_broken(d, site, directory, rewritten)
    inv = sorted({e["session"] for e in d.events("session_invalidated")})
    m.update(timed_hits=timed, bot_logins_lost=len(broken), lost=stats["lost"], wrongly_invalidated=len(inv),
             stale_cookie_requests=stats["stale_cookie_requests"])
    d.check_logs(site.secrets())
    site.stop()
    detail = []
    for mb in broken[:2]:
        detail.append((mb, [(e["ts"][11:23], e["event"], e.get("step", ""), e.get("http_status", ""))
                            for e in d.events(session=mb) if e["event"] != "request"][-12:]))
    check(not broken, f"{len(broken)}/{len(rewritten)} bot logins lost (the file holds the replaced session's "
          f"cookies, then it is quarantined): {broken}; invalidated: {inv}; timelines: {detail}")
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost")


@measured
def bot_write_during_save(m):
    write_during_save(m, attempts=12, fallback=False)


@measured
def bot_write_during_save_fallback(m):
    # Fewer attempts: the same race on the other save path, within CI's time.
    write_during_save(m, attempts=8, fallback=True)


def try_mount_tmpfs(path, size="256k"):
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                         capture_output=True, text=True, timeout=30)
    return out.returncode == 0, (out.stderr or out.stdout).strip()


@measured
def disk_full(m):
    m.update(fault="disk full", injected="sessions dir on a 256 KiB tmpfs, filled up for 3 s", sessions=3)
    mnt = temp_dir("sessions-tmpfs-")
    ok, why = try_mount_tmpfs(mnt)
    if not ok:
        print(f"SKIP disk_full: cannot mount a tmpfs here ({why or 'not permitted'})")
        m["result"] = "skipped: " + (why or "mount not permitted")
        return
    d = site = None
    try:
        site = FakeSite(idle_timeout="4s")
        directory = os.path.join(mnt, "sessions")
        os.mkdir(directory, 0o700)
        mobiles = site.seed(directory, 3, localstorage_bytes=20000)
        d = start(site, directory)
        wait_ready(d)
        wait_until(lambda: set(mobiles) <= {e["session"] for e in d.events("refresh_ok")}, 10, interval=0.1,
                   what="every session refreshed once")
        errors_before = metric_sum(daemon_metrics(d), "sessiond_session_file_errors_total", reason="write")
        # Fill the file system.
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            for _ in range(1024):  # bounded: at most 64 MiB
                try:
                    f.write(b"\0" * 65536)
                    f.flush()
                except OSError:
                    break
        # Smaller pieces until not one byte more fits.
        for i in range(64):
            try:
                with open(os.path.join(mnt, f"filler{i}"), "wb") as f:
                    f.write(b"\0" * 4096)
            except OSError:
                break
        t_full = wall_now()
        write_errors = lambda: [e for e in d.events("file_error") if e.get("reason") == "write" and
                                parse_ts(e["ts"]) >= t_full]
        wait_until(lambda: {e["session"] for e in write_errors()} >= set(mobiles), 8, interval=0.1,
                   what="a write file_error for every session")
        snapshot = {mb: open(os.path.join(directory, f"session-{mb}.json"), "rb").read() for mb in mobiles}
        time.sleep(3)  # full for a while: files must stay intact, the daemon up
        for mb in mobiles:
            now = open(os.path.join(directory, f"session-{mb}.json"), "rb").read()
            check(now == snapshot[mb], f"{mb}: the file changed while the disk was full")
            json.loads(now)
        check(d.proc.poll() is None, "sessiond died on a full disk")
        check(http("GET", d.url() + "/healthz")[0] == 200, "/healthz while the disk is full")
        errors_during = metric_sum(daemon_metrics(d), "sessiond_session_file_errors_total", reason="write")
        m["write_errors_logged"] = len(write_errors())
        m["write_error_metric_delta"] = errors_during - errors_before
        check(errors_during > errors_before, "sessiond_session_file_errors_total{reason=\"write\"} did not increase")
        e = write_errors()[0]
        check(e.get("error") and e.get("file"), f"file_error without error/file: {e}")
        m["write_error_example"] = e.get("error")
        check(not temp_files(directory), f"failed writes left temp files: {temp_files(directory)}")
        # Free the space: saves resume.
        for f in glob.glob(os.path.join(mnt, "filler*")):
            os.remove(f)
        t_free = wall_now()
        wait_until(lambda: all(open(os.path.join(directory, f"session-{mb}.json"), "rb").read() != snapshot[mb]
                               for mb in mobiles), 5, interval=0.1, what="saves to resume after freeing space")
        wait_until(lambda: {e["session"] for e in d.events("refresh_ok") if parse_ts(e["ts"]) >= t_free}
                   >= set(mobiles), 5, interval=0.1, what="refresh_ok after freeing space")
        time.sleep(1.2)
        m["resumed_s"] = round(time.time() - t_free, 1)
        stats = site.stats()
        inv = {e["session"] for e in d.events("session_invalidated")}
        m.update(lost=stats["lost"], wrongly_invalidated=len(inv))
        check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
        check(not inv, f"sessions invalidated: {inv}")
        broken = stop_then_broken(d, site, directory, mobiles)
        check(not broken, f"saved cookies rejected after the disk was freed: {broken}")
        d.check_logs(site.secrets())
    finally:
        if d is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=10)
        if site is not None:
            site.stop()
        subprocess.run(["umount", mnt], capture_output=True, timeout=30)


# refreshes/s, seconds, stale file names, how long before the kill the site
# rotated each stale file's cookie (ms, sorted; negative: after the kill, an
# answer the daemon never received), and how long the daemon's threads waited
# for a CPU once runnable (mean µs per time slice)
KillRound = namedtuple("KillRound", "rate lag_p50 lag_p99 stale stale_ages_ms run_wait_us")


def run_queue_totals(pid):
    """(ns waited runnable for a CPU, time slices) summed over a process's
    threads (/proc/<pid>/task/*/schedstat): how long its threads, once
    runnable, waited for a core."""
    waited = slices = 0
    for stat in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            _, w, n = (int(x) for x in open(stat).read().split())
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
        waited, slices = waited + w, slices + n
    return waited, slices


def kill9_no_grace_round(load, sessions, interval_ms, seed):
    """One kill -9 under load: a KillRound."""
    site = FakeSite(idle_timeout="4s", extra=["--rotate-grace", "0s"])
    directory = temp_dir("sessions-nograce-")
    mobiles = site.seed(directory, sessions, localstorage_bytes=2000)
    d = start(site, directory, *os.environ.get("KILL_NO_GRACE_FLAGS", "").split(), interval_ms=interval_ms)
    try:
        wait_ready(d)
        wait_until(lambda: set(mobiles) <= {e["session"] for e in d.events("refresh_ok")}, 15, interval=0.1,
                   what="every session refreshed once")
        t0 = wall_now()
        n0 = len(d.events("refresh_ok"))
        waited0, slices0 = run_queue_totals(d.proc.pid)
        time.sleep(3.0 + random.Random(seed).uniform(0.0, 1.0))
        lag = metric_histogram_quantiles(daemon_metrics(d), "sessiond_save_lag_seconds", (0.5, 0.99))
        n1, t1 = len(d.events("refresh_ok")), wall_now()
        waited1, slices1 = run_queue_totals(d.proc.pid)
        killed_at_ns = time.monotonic_ns()  # the fake site dates rotations on the same clock
        d.proc.kill()
        d.proc.wait(timeout=10)
        d.reader.join(timeout=5)
        d.err_reader.join(timeout=5)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    rate = (n1 - n0) / (t1 - t0)
    docs = check_files_whole(directory, [f"session-{mb}.json" for mb in mobiles])
    stale = sorted(name for name, doc in docs.items() if not cookies_work(site, doc))
    d.check_logs_killed(site.secrets())
    per_session = site.stats(per_session=True)["per_session"]
    rotated_at = {f"session-{mb}.json": s["rotated_at_monotonic_ns"] for mb, s in per_session.items()}
    ages = sorted(round((killed_at_ns - rotated_at[name]) / 1e6, 2) for name in stale)
    site.stop()
    run_wait_us = round((waited1 - waited0) / max(1, slices1 - slices0) / 1000, 1)
    return KillRound(rate, lag[0], lag[1], stale, ages, run_wait_us)


def older_than(ages_ms, ms):
    """The rotations a kill lost that the site had made more than `ms` before it."""
    return sum(1 for a in ages_ms if a > ms)


def stale_target(rate):
    """Issue 11: at most the rotations of the last 5 ms, refreshes/s x 5 ms (at least 1)."""
    return max(1, int(rate * 0.005))


def kill9_no_grace(m, load):
    """kill -9 under load against a site that stops accepting a rotated-away
    cookie at once (no grace): every file whose cookie the site no longer
    takes is a session the crash logged out. A save renames its file right
    after the site's response (durability comes later, in a group commit), so
    at most the responses of the last ~5 ms can be lost: stale files <=
    refreshes/s x 5 ms (issue 11), at 1x and at 4x overload.

    One kill samples how many answers were open at a random instant, a count
    that varies from kill to kill (0 to 13 at 4x on a quiet 2-core machine);
    $KILL_NO_GRACE_ROUNDS kills (default 3, each a fresh daemon and site) are
    checked on their median, so one unlucky instant does not decide. Each
    stale file's age (how long before the kill the site rotated it) is
    printed, not checked: milliseconds are not a promise a shared CI machine
    can keep."""
    sessions = int(os.environ.get("KILL_NO_GRACE_SESSIONS", "400"))
    rounds = max(1, int(os.environ.get("KILL_NO_GRACE_ROUNDS", "3")))
    interval_ms = 1000 if load == 1 else 250
    m.update(fault=f"kill -9 at {load}x load, no rotate grace",
             injected=f"{rounds} x ({sessions} sessions every {interval_ms} ms, SIGKILL after ~4 s of refreshes)",
             sessions=sessions, rounds=rounds)
    kills = [kill9_no_grace_round(load, sessions, interval_ms, load * 100 + i) for i in range(rounds)]
    for r in kills:
        print(f"{load}x: {r.rate:.0f} refreshes/s, save lag p50 {r.lag_p50 * 1000:.2f} ms p99 "
              f"{r.lag_p99 * 1000:.2f} ms, {len(r.stale)} of {sessions} files stale after kill -9 "
              f"(target {stale_target(r.rate)}); {older_than(r.stale_ages_ms, 5)} of them rotated more than "
              f"5 ms before the kill (ms before it: {r.stale_ages_ms}); threads waited {r.run_wait_us} µs "
              f"for a CPU per time slice")
    median = sorted(kills, key=lambda r: len(r.stale))[rounds // 2]
    rate, stale = median.rate, median.stale
    target = stale_target(rate)
    # Checked: three times the target, at least the window's floor (8). Lost by
    # any design: answers of the last milliseconds and responses still in the
    # socket buffers; bounded by the window: answers that wait (under overload
    # new requests wait instead). Without the window this scenario loses 15-77
    # files on a loaded machine. The 5 ms target itself is printed here and
    # measured by bench/run.py crash on a quiet machine (docs/PERFORMANCE.md):
    # a shared CI machine or a sanitized build cannot promise a process
    # milliseconds of CPU.
    allowed = max(3 * target, 8)
    m.update(refreshes_per_s=round(rate), save_lag_p50_ms=round(median.lag_p50 * 1000, 2),
             save_lag_p99_ms=round(median.lag_p99 * 1000, 2), stale_files=len(stale), stale_allowed=target,
             stale_files_per_round=[len(r.stale) for r in kills],
             stale_older_than_5ms_per_round=[older_than(r.stale_ages_ms, 5) for r in kills],
             stale_ages_ms_per_round=[r.stale_ages_ms for r in kills],
             run_wait_us_per_round=[r.run_wait_us for r in kills])
    print(f"{load}x median kill: {len(stale)} stale (target {target}, checked {allowed})")
    check(len(stale) <= allowed, f"{len(stale)} files hold cookies the site rotated away (at most {allowed} at "
          f"{rate:.0f} refreshes/s) in the median of {rounds} kills: {stale[:5]}")


@measured
def kill9_no_grace_1x(m):
    kill9_no_grace(m, 1)


@measured
def kill9_no_grace_4x(m):
    kill9_no_grace(m, 4)



if __name__ == "__main__":
    run_scenarios([kill9_loop, kill9_no_grace_1x, kill9_no_grace_4x, bot_rewrites, bot_write_during_save, bot_write_during_save_fallback, disk_full],
                  results_name="faults_process")
