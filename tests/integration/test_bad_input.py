"""Bad input: broken session files, files that are not session files, odd
modes and links, the sessions directory vanishing, and bad configuration.
Every bad session file gets one clear log line (`file_error` with its session
id and a reason) and one count in sessiond_session_file_errors_total{reason},
is left byte-for-byte untouched, and the good sessions keep being refreshed.
Bad configuration exits with status 2 naming the field. No secret the fake
site issued appears in any output (the daemon runs at debug level here).

Numbers are printed on a `RESULTS` line (and written to
$RELIABILITY_RESULTS_DIR/bad_input.json if set)."""

import json
import os
import shutil
import stat
import subprocess
import time

from harness import (measured, Daemon, Failure, FakeSite, SESSIOND, check, daemon_metrics, daemon_status, http,
                     metric_sum, parse_ts, run_scenarios, scaled_profile, temp_dir, wait_ready, wait_until,
                     wall_now)

GOOD = 10
MAX_BYTES = 8 << 20



def write(path, data, mode=0o600):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def refreshed_since(d, wall, sessions):
    return {e["session"] for e in d.events("refresh_ok") if parse_ts(e["ts"]) >= wall} >= set(sessions)


@measured
def bad_files(m):
    site = FakeSite(idle_timeout="4s")
    sessions = temp_dir("sessions-bad-")
    good = site.seed(sessions, GOOD, localstorage_bytes=2000)
    m.update(fault="bad session files", sessions=GOOD)
    d = Daemon("--profile", scaled_profile(), "--base-url", site.base_url, "--sessions-dir", sessions,
               "--interval", "1s", "--idle-timeout", "4s", "--listen", "127.0.0.1:0", "--rescan-interval", "2s",
               "--heartbeat-interval", "5s", "--log-level", "debug")
    wait_ready(d)
    wait_until(lambda: set(good) <= {e["session"] for e in d.events("refresh_ok")}, 10, interval=0.1,
               what="the good sessions refreshed once")
    errors_before = {r: metric_sum(daemon_metrics(d), "sessiond_session_file_errors_total", reason=r)
                     for r in ("parse", "schema", "too_large", "symlink", "permission", "io")}

    outside_dir = temp_dir("outside-")
    outside = os.path.join(outside_dir, "outside.json")
    write(outside, json.dumps({"cookies": [], "origins": []}).encode())
    big_pad = MAX_BYTES + 1 - len(b'{"cookies": [], "pad": ""}')
    # id -> (content or None for special cases, expected reason)
    cases = {
        "bad_json": (b'{"cookies": [ this is not json', "parse"),
        "bad_empty": (b"", "parse"),
        "bad_large": (b'{"cookies": [], "pad": "' + b"a" * big_pad + b'"}', "too_large"),
        "bad_binary": (bytes(range(256)) * 16 + os.urandom(4096), "parse"),
        "bad_cookies_object": (json.dumps({"cookies": {"sid": "x"}, "origins": []}).encode(), "schema"),
        "bad_no_cookies": (json.dumps({"origins": [], "headers": {}}).encode(), "schema"),
        "bad_symlink": (None, "symlink"),
    }
    check(len(cases["bad_large"][0]) == MAX_BYTES + 1, "the big file is 8 MiB + 1")
    t_bad = wall_now()
    for sid, (content, _) in cases.items():
        path = os.path.join(sessions, f"session-{sid}.json")
        if content is None:
            os.symlink(outside, path)
        else:
            write(path, content)
    # Names that are not session files: ignored without an error.
    ignored = ["session-.json", "session-bad id.json", "notes.txt", "session-09120000001.json.bak",
               "session-" + "a" * 65 + ".json", "Session-09120000002.json", "session-x.JSON", "session-x.json~"]
    for name in ignored:
        write(os.path.join(sessions, name), b'{"cookies": []}')
    snapshot = {name: open(os.path.join(sessions, name), "rb").read() for name in os.listdir(sessions)
                if name not in [f"session-{g}.json" for g in good]}
    outside_before = open(outside, "rb").read()

    # One file_error per bad file, with its id and the expected reason.
    def reported():
        got = {}
        for e in d.events("file_error"):
            if e.get("session") in cases:
                got.setdefault(e["session"], []).append(e)
        return got if set(got) == set(cases) else None
    got = wait_until(reported, 8, interval=0.1, what="a file_error for every bad file")
    for sid, (_, reason) in cases.items():
        e = got[sid][0]
        check(e.get("reason") == reason, f"{sid}: reason {e.get('reason')!r}, expected {reason!r}: {e}")
        check(e.get("error") and e.get("level") == "error", f"{sid}: no error text / level: {e}")
    m["reasons"] = {sid: got[sid][0]["reason"] for sid in cases}
    m["error_texts"] = {sid: got[sid][0]["error"] for sid in cases}

    # Time passes: rescans (every 2 s) and refreshes go on.
    t_mid = wall_now()
    time.sleep(4.5)
    check(d.proc.poll() is None, "sessiond exited")
    check(refreshed_since(d, t_mid + 1.5, good), "the good sessions stopped being refreshed")
    again = {sid: len([e for e in d.events("file_error") if e.get("session") == sid]) for sid in cases}
    check(all(n == 1 for n in again.values()), f"bad files reported more than once: {again}")
    text = daemon_metrics(d)
    for reason in set(r for _, r in cases.values()):
        want = sum(1 for _, r in cases.values() if r == reason)
        got_n = metric_sum(text, "sessiond_session_file_errors_total", reason=reason) - errors_before.get(reason, 0)
        check(got_n == want, f'sessiond_session_file_errors_total{{reason="{reason}"}} rose by {got_n}, expected {want}')
    st = daemon_status(d)
    check(st["sessionsByState"].get("file_error") == len(cases), f"/status sessionsByState: {st['sessionsByState']}")
    by_id = {s["mobile"]: s for s in st["sessions"]}
    for sid in cases:
        check(by_id.get(sid, {}).get("state") == "file_error", f"/status for {sid}: {by_id.get(sid)}")
    # Untouched, byte for byte; the symlink's target too, and the link is still a link.
    for name, before in snapshot.items():
        path = os.path.join(sessions, name)
        check(os.path.lexists(path), f"{name} was removed")
        if os.path.islink(path):
            continue
        check(open(path, "rb").read() == before, f"{name} was modified")
    check(os.path.islink(os.path.join(sessions, "session-bad_symlink.json")), "the symlink was replaced")
    check(open(outside, "rb").read() == outside_before, "the symlink's target outside the sessions dir was modified")
    check(not os.path.exists(os.path.join(sessions, "invalid")), "something was quarantined")
    # Ignored names: never registered, never an error, one debug line each.
    logged_names = json.dumps([e for e in d.events() if e.get("event") in ("file_error", "session_added")])
    for name in ignored:
        check(name not in logged_names, f"{name} produced an error or a session")
    ignored_lines = [e for e in d.events("file_ignored")]
    m["ignored_debug_lines"] = len(ignored_lines)
    for name in ignored:
        n = len([e for e in ignored_lines if e.get("file") == name])
        check(n <= 1, f"{name} logged {n} times as ignored (expected at most once)")
    strays = [e["session"] for e in d.events("session_added") if e["session"] not in good and e["session"] not in cases]
    check(not strays, f"non-session names registered: {strays}")

    # A repaired file is picked up ("retried when it changes"): the bot writes
    # a real session under the bad_json id (atomic rename over it).
    stage = temp_dir("staging-")
    site.seed(stage, 1, first_mobile="09160000000")
    t_fix = wall_now()
    os.rename(os.path.join(stage, "session-09160000000.json"), os.path.join(sessions, "session-bad_json.json"))
    wait_until(lambda: [e for e in d.events("refresh_ok", "bad_json") if parse_ts(e["ts"]) >= t_fix], 5,
               interval=0.1, what="the repaired file refreshed")

    code = d.stop()
    check(code == 0, f"exit status {code}")
    stats = site.stats()
    m.update(lost=stats["lost"], wrongly_invalidated=len(d.events("session_invalidated")))
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
    check(not d.events("session_invalidated"), "a session was invalidated")
    d.check_logs(site.secrets())
    site.stop()


@measured
def unreadable_mode_000(m):
    """Mode 000. As root (these tests) the file can still be read: it is a good
    session, so it is refreshed and saved back as 0600. As an ordinary user it
    cannot be read: a `permission` file_error, the file untouched."""
    site = FakeSite(idle_timeout="4s")
    sessions = temp_dir("sessions-mode-")
    stage = temp_dir("stage-mode-")
    mobile = site.seed(stage, 1, first_mobile="09170000000")[0]
    name = f"session-{mobile}.json"
    os.chmod(os.path.join(stage, name), 0)
    os.rename(os.path.join(stage, name), os.path.join(sessions, name))
    m.update(fault="mode 000 file", sessions=1)
    d = Daemon("--profile", scaled_profile(), "--base-url", site.base_url, "--sessions-dir", sessions,
               "--interval", "1s", "--idle-timeout", "4s", "--listen", "127.0.0.1:0")
    wait_ready(d)
    if os.geteuid() == 0:
        wait_until(lambda: d.events("refresh_ok", mobile), 5, interval=0.1, what="the mode-000 file refreshed (root)")
        wait_until(lambda: stat.S_IMODE(os.stat(os.path.join(sessions, name)).st_mode) == 0o600, 5,
                   what="the saved file to be 0600")
        check(not d.events("file_error"), f"file_error as root: {d.events('file_error')}")
        m["as_root"] = "read, refreshed, saved back as 0600"
    code = d.stop()
    check(code == 0, f"exit status {code}")
    d.check_logs(site.secrets())

    # As nobody: `sessiond once` over a directory nobody owns, holding a mode-000 file.
    if os.geteuid() == 0 and shutil.which("setpriv"):
        base = temp_dir("nobody-")
        os.chmod(base, 0o755)
        bin_copy = os.path.join(base, "sessiond")
        shutil.copy(SESSIOND, bin_copy)
        os.chmod(bin_copy, 0o755)
        prof = os.path.join(base, "profile.json")
        shutil.copy(scaled_profile(), prof)
        os.chmod(prof, 0o644)
        nd = os.path.join(base, "sessions")
        os.mkdir(nd, 0o700)
        mobile2 = site.seed(stage, 1, first_mobile="09180000000")[0]
        name2 = f"session-{mobile2}.json"
        shutil.move(os.path.join(stage, name2), os.path.join(nd, name2))
        os.chown(nd, 65534, 65534)
        os.chown(os.path.join(nd, name2), 65534, 65534)
        os.chmod(os.path.join(nd, name2), 0)
        before = open(os.path.join(nd, name2), "rb").read()
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin_copy, "once",
                              "--profile", prof, "--base-url", site.base_url, "--sessions-dir", nd,
                              "--listen", "off", "--interval", "1s", "--idle-timeout", "4s"],
                             capture_output=True, text=True, timeout=60)
        lines = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
        errs = [e for e in lines if e.get("event") == "file_error" and e.get("session") == mobile2]
        m["as_nobody"] = f"exit {out.returncode}; file_error reason {errs[0].get('reason') if errs else None}"
        check(out.returncode == 1, f"once as nobody: exit {out.returncode}: {out.stderr[-500:]}")
        check(errs and errs[0].get("reason") == "permission", f"file_error as nobody: {errs or lines[-5:]}")
        check(open(os.path.join(nd, name2), "rb").read() == before, "the unreadable file was modified")
        check(stat.S_IMODE(os.stat(os.path.join(nd, name2)).st_mode) == 0, "its mode was changed")
        leaked = [s for s in site.secrets() if s in out.stdout or s in out.stderr]
        check(not leaked, "secrets in the output")
        site.logout([mobile2])
    else:
        m["as_nobody"] = "not run (needs root and setpriv)"
    stats = site.stats()
    m.update(lost=stats["lost"], wrongly_invalidated=0)
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
    site.stop()


@measured
def sessions_dir_recreated(m):
    site = FakeSite(idle_timeout="4s")
    parent = temp_dir("sessions-parent-")
    sessions = os.path.join(parent, "sessions")
    os.mkdir(sessions, 0o700)
    good = site.seed(sessions, GOOD, localstorage_bytes=2000)
    m.update(fault="sessions dir deleted + recreated", sessions=GOOD)
    d = Daemon("--profile", scaled_profile(), "--base-url", site.base_url, "--sessions-dir", sessions,
               "--interval", "1s", "--idle-timeout", "4s", "--listen", "127.0.0.1:0", "--rescan-interval", "2s")
    wait_ready(d)
    wait_until(lambda: set(good) <= {e["session"] for e in d.events("refresh_ok")}, 10, interval=0.1,
               what="every session refreshed once")
    t_del = wall_now()
    for _ in range(20):  # `rm -rf` of a live directory: sessiond's temp files come and go meanwhile
        shutil.rmtree(sessions, ignore_errors=True)
        if not os.path.exists(sessions):
            break
        time.sleep(0.05)
    check(not os.path.exists(sessions), "could not delete the sessions directory")
    removed = lambda: {e["session"] for e in d.events("session_removed") if parse_ts(e["ts"]) >= t_del}
    try:
        wait_until(lambda: removed() >= set(good), 5, interval=0.1,
                   what="every session unregistered once the directory is gone")
    except Failure:
        missing = sorted(set(good) - removed())
        raise Failure(f"{len(missing)} sessions still registered 5 s after the sessions directory was deleted: "
                      f"{missing}; directory exists again: {os.path.exists(sessions)} "
                      f"({os.listdir(sessions) if os.path.exists(sessions) else ''}); their last events: "
                      f"{[(e['event'], round(parse_ts(e['ts']) - t_del, 3), e.get('error', '')) for e in d.events(session=missing[0])[-6:]]}; "
                      f"directory events: {[e for e in d.events() if 'dir' in e and parse_ts(e['ts']) >= t_del][:3]}")
    # Reported like any other file error: a file_error line with a reason, and
    # a count in sessiond_session_file_errors_total (what the alert watches).
    wait_until(lambda: [e for e in d.events("file_error") if parse_ts(e["ts"]) >= t_del], 5, interval=0.1,
               what="a file_error about the missing directory")
    dir_errors = [e for e in d.events("file_error") if not e.get("session") and parse_ts(e["ts"]) >= t_del]
    m["dir_missing_logged"] = dir_errors[0] if dir_errors else None
    errors_total = metric_sum(daemon_metrics(d), "sessiond_session_file_errors_total")
    m["file_error_metric_after_delete"] = errors_total
    check(d.proc.poll() is None, "sessiond exited when its directory vanished")
    check(http("GET", d.url() + "/healthz")[0] == 200, "/healthz with the directory gone")
    time.sleep(0.5)
    os.mkdir(sessions, 0o700)
    # The bot logs the accounts in again and writes the files.
    site.seed(sessions, GOOD)
    t_back = wall_now()
    wait_until(lambda: refreshed_since(d, t_back, good), 8, interval=0.1,
               what="sessions in the recreated directory refreshed")
    m["resumed_s"] = round(max(parse_ts(e["ts"]) for e in d.events("refresh_ok") if parse_ts(e["ts"]) >= t_back)
                           - t_back, 2)
    # And new files keep being noticed (the directory is watched again).
    added = site.seed(sessions, 1, first_mobile="09190000000")[0]
    t_add = wall_now()
    wait_until(lambda: [e for e in d.events("refresh_ok", added) if parse_ts(e["ts"]) >= t_add], 4, interval=0.1,
               what="a file added to the recreated directory refreshed")
    time.sleep(1.5)
    code = d.stop()
    check(code == 0, f"exit status {code}")
    stats = site.stats()
    m.update(lost=stats["lost"], wrongly_invalidated=len(d.events("session_invalidated")))
    check(stats["lost"] == 0, f"{stats['lost']} sessions lost")
    check(not d.events("session_invalidated"), f"invalidated: {d.events('session_invalidated')[:3]}")
    d.check_logs(site.secrets())
    site.stop()
    # Checked last so that the recovery above is exercised even when these fail.
    check(dir_errors and dir_errors[0].get("reason"), f"the missing-directory file_error has no reason: {dir_errors[:1]}")
    check(errors_total >= 1, "sessiond_session_file_errors_total did not count the missing sessions directory")


@measured
def bad_config(m):
    """Each bad setting: exit status 2 and a message naming it, for `run` and
    `check-config`, from flags, the environment, a --config file or the profile."""
    work = temp_dir("badconfig-")
    sessions = os.path.join(work, "sessions")
    profile = scaled_profile()

    def profile_with(**fields):
        return scaled_profile(**fields)

    cfg = os.path.join(work, "config.json")
    with open(cfg, "w") as f:
        json.dump({"interval": "1s", "no_such_key": 1}, f)
    base = ["--sessions-dir", sessions, "--listen", "127.0.0.1:0"]
    cases = [
        ("--interval", ["--profile", profile, "--interval", "banana"], {}),
        ("--interval", ["--profile", profile, "--interval", "5s", "--idle-timeout", "3s"], {}),
        ("--idle-timeout", ["--profile", profile, "--idle-timeout", "-1s"], {}),
        ("--on-logged-out", ["--profile", profile, "--on-logged-out", "burn"], {}),
        ("--log-level", ["--profile", profile, "--log-level", "loud"], {}),
        ("--admin-token", ["--profile", profile, "--listen", "0.0.0.0:0"], {}),
        ("--shard-index", ["--profile", profile, "--shard-index", "3", "--shard-count", "2"], {}),
        ("--max-in-flight", ["--profile", profile, "--max-in-flight", "lots"], {}),
        ("--bogus", ["--profile", profile, "--bogus", "1"], {}),
        ("SESSIOND_INTERVAL", ["--profile", profile], {"SESSIOND_INTERVAL": "soon"}),
        ("no_such_key", ["--profile", profile, "--config", cfg], {}),
        ("--profile", [], {}),
        ("profile", ["--profile", os.path.join(work, "missing.json")], {}),
        ("retry", ["--profile", profile_with(retry={"base": "fast", "max": "1s"})], {}),
        ("base_url", ["--profile", profile_with(base_url="ftp://example")], {}),
        ("circuit_breaker", ["--profile", profile_with(circuit_breaker={"failure_ratio": 7})], {}),
        ("check", ["--profile", profile_with(check=None, refresh=None)], {}),
    ]
    results = []
    for field, args, env in cases:
        for command in ("run", "check-config"):
            full_env = dict(os.environ)
            full_env.update(env)
            started = time.monotonic()
            out = subprocess.run([SESSIOND, command, *base, *args], capture_output=True, text=True, timeout=20,
                                 env=full_env)
            took = time.monotonic() - started
            said = out.stderr + out.stdout
            results.append((field, command, out.returncode, round(took, 2)))
            check(out.returncode == 2, f"{command} with bad {field}: exit {out.returncode} (expected 2): {said[-400:]}")
            check(field in said, f"{command} with bad {field}: the message does not name it: {said[-400:]}")
    check(not os.path.exists(os.path.join(sessions, "invalid")), "bad config touched the sessions dir")
    m["cases"] = len(results)
    m["fault"] = "bad configuration"
    m["examples"] = [subprocess.run([SESSIOND, "check-config", *base, *a], capture_output=True, text=True,
                                    timeout=20, env={**os.environ, **e}).stderr.strip()[:200]
                     for f, a, e in cases[:1] + cases[9:11] + cases[13:14]]


if __name__ == "__main__":
    run_scenarios([bad_files, unreadable_mode_000, sessions_dir_recreated, bad_config], results_name="bad_input")
