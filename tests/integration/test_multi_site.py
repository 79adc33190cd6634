"""Several sites in one sessiond (issue 14): three fake sites, one per site,
with different file patterns, intervals and step kinds (HTTP check+refresh,
and a browser check in the pooled Chromium), plus a fourth site whose
sessions directory is missing. Every session is kept alive with 0 lost; one
site's outage opens only that site's breaker while the others keep
refreshing; the missing directory is that site's error until it appears."""

import json
import os
import signal
import subprocess
import time

from harness import (processes_naming, DEMO_PROFILE, SESSIOND, SOURCE_DIR, Daemon, FakeSite, check, daemon_metrics, daemon_status,
                     http, load, metric_sum, parse_ts, run, scaled_profile, temp_dir, wait_ready, wait_until, wall_now)

# Per site: the fake site, its pattern, interval and idle timeout.
ALPHA = {"pattern": "session-{id}.json", "interval": "1s", "idle": "6s", "count": 5}
BETA = {"pattern": "{id}_session.json", "interval": "2s", "idle": "8s", "count": 5}
GAMMA = {"pattern": "acct-{id}.json", "interval": "3s", "idle": "10s", "count": 2}
BROWSER_TMP = temp_dir("multi-browser-tmp-")


def browser_profile():
    """profiles/baman24.json (a browser check) with a short settle and timeout."""
    with open(os.path.join(SOURCE_DIR, "profiles", "baman24.json")) as f:
        doc = json.loads("\n".join(line for line in f if not line.lstrip().startswith("//")))
    doc["check"]["browser"].update(settle="100ms", timeout="3s")
    doc["retry"] = {"base": "500ms", "max": "2s"}
    path = os.path.join(temp_dir("profile-"), "browser.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return path


def seed_as(site, directory, count, first, pattern):
    """The fake site's logins, renamed to the site's file pattern."""
    mobiles = site.seed(directory, count, first_mobile=first)
    for m in mobiles:
        os.rename(os.path.join(directory, f"session-{m}.json"),
                  os.path.join(directory, pattern.replace("{id}", m)))
    return mobiles


def site_circuit(d, name):
    return metric_sum(daemon_metrics(d), "sessiond_circuit_open", site=name)


def refreshes(d, name):
    return metric_sum(daemon_metrics(d), "sessiond_refresh_total", site=name, result="success")


def test_multi_site():
    a = FakeSite(idle_timeout=ALPHA["idle"])
    b = FakeSite(idle_timeout=BETA["idle"])
    c = FakeSite(idle_timeout=GAMMA["idle"], extra=["--client-rendered", "--bundle-bytes", "20000"])
    dirs = {name: temp_dir(f"sessions-{name}-") for name in ("alpha", "beta", "gamma")}
    missing = os.path.join(temp_dir("sessions-delta-parent-"), "delta")
    seed_as(a, dirs["alpha"], ALPHA["count"], "09120000000", ALPHA["pattern"])
    seed_as(b, dirs["beta"], BETA["count"], "09120000000", BETA["pattern"])  # same ids as alpha
    seed_as(c, dirs["gamma"], GAMMA["count"], "09140000000", GAMMA["pattern"])
    # alpha's breaker scaled down so an outage of a few seconds opens it.
    alpha_profile = scaled_profile()
    config = {
        "listen": "127.0.0.1:0",
        "rescan-interval": "1s",
        "sites": [
            {"name": "alpha", "profile": alpha_profile, "sessions_dir": dirs["alpha"], "base_url": a.base_url,
             "interval": ALPHA["interval"], "idle_timeout": ALPHA["idle"]},
            {"name": "beta", "profile": DEMO_PROFILE, "sessions_dir": dirs["beta"], "base_url": b.base_url,
             "file_pattern": BETA["pattern"], "interval": BETA["interval"], "idle_timeout": BETA["idle"],
             "on_logged_out": "mark"},
            {"name": "gamma", "profile": browser_profile(), "sessions_dir": dirs["gamma"],
             "base_url": c.base_url, "file_pattern": GAMMA["pattern"], "interval": GAMMA["interval"],
             "idle_timeout": GAMMA["idle"]},
            {"name": "delta", "profile": DEMO_PROFILE, "sessions_dir": missing, "base_url": a.base_url},
        ],
    }
    cfg_path = os.path.join(temp_dir("multi-config-"), "sites.json")
    with open(cfg_path, "w") as f:
        json.dump(config, f)

    check_out = subprocess.run([SESSIOND, "check-config", "--config", cfg_path], capture_output=True, timeout=60)
    check(check_out.returncode == 0, f"check-config: {check_out.stderr[:300]!r}")
    printed = json.loads(check_out.stdout.decode().split("\nconfiguration OK")[0])
    check([s["name"] for s in printed["sites"]] == ["alpha", "beta", "gamma", "delta"], f"check-config: {printed}")
    check(printed["sites"][1]["file_pattern"] == BETA["pattern"], "check-config prints the pattern")

    d = Daemon("--config", cfg_path, env={"TMPDIR": BROWSER_TMP})
    try:
        wait_ready(d, timeout=40)
        url = d.url()
        # Same ids in alpha and beta: keyed by (site, id).
        st = wait_until(lambda: (lambda s: s["totalSessions"] == 12 and s)(daemon_status(d)), 10,
                        what="12 sessions registered")
        # Every configured site, also delta whose directory is missing (0 sessions).
        check(set(st["sites"]) == {"alpha", "beta", "gamma", "delta"}, f"/status sites: {list(st['sites'])}")
        check(st["sites"]["delta"]["totalSessions"] == 0, f"/status delta: {st['sites']['delta']}")
        check(st["sites"]["alpha"]["totalSessions"] == 5 and st["sites"]["gamma"]["totalSessions"] == 2,
              f"per-site totals: {st['sites']}")
        check(all("site" in s for s in st["sessions"]), "every status names its site")
        status, body, _ = http("GET", url + "/sessions/09120000001")
        check(status == 409, f"an id in two sites is ambiguous: {status}")
        status, body, _ = http("GET", url + "/s/09120000001")
        check(status == 300 and b'href="/s/09120000001?site=beta"' in body, f"the page's /s/ID of two sites: {status}")
        status, body, _ = http("GET", url + "/s/09120000001?site=beta")
        check(status == 200 and b"/sites/beta/sessions/09120000001" in body, f"/s/ID?site=beta: {status}")
        status, body, _ = http("GET", url + "/sites/beta/sessions/09120000001")
        check(status == 200 and json.loads(body)["site"] == "beta", f"/sites/beta/sessions/ID: {status} {body[:200]!r}")
        status, body, _ = http("GET", url + "/sessions/09140000000")
        check(status == 200 and json.loads(body)["site"] == "gamma", f"/sessions/ID of one site: {status}")

        # The missing directory is delta's error, not the daemon's.
        sites = {s["name"]: s for s in json.loads(http("GET", url + "/sites")[1])["sites"]}
        check(sites["delta"]["error"], f"/sites delta: {sites['delta']}")
        check(sites["beta"]["pattern"] == BETA["pattern"] and sites["beta"]["error"] is None, f"/sites beta: {sites['beta']}")
        check(metric_sum(daemon_metrics(d), "sessiond_session_file_errors_total", site="delta", reason="io") >= 1,
              "file error metric with site=delta")
        # The status page: a line per site (delta's with its error), rows grouped by site.
        status, page, _ = http("GET", url + "/")
        page = page.decode()
        check(status == 200 and all(f'<li data-site="{n}"' in page for n in ("alpha", "beta", "gamma", "delta")),
              f"GET / names every site: {status}")
        check('<li data-site="delta" class="bad">' in page, "GET /: delta's line shows its error")
        check('<tr class="site-group" data-site="alpha">' in page, "GET /: rows grouped by site")

        # Everyone refreshes, each at its own pace.
        wait_until(lambda: all(refreshes(d, n) >= 2 * k for n, k in (("alpha", 5), ("beta", 5), ("gamma", 2))),
                   20, interval=0.5, what="every site refreshed its sessions twice")

        # The status CLI: one site, and a SITE column for several.
        port = url.rsplit(":", 1)[1]
        only = subprocess.run([SESSIOND, "status", "--url", url, "--site", "gamma"], capture_output=True, timeout=30)
        check(only.returncode == 0 and b"09140000000" in only.stdout and b"09120000000" not in only.stdout,
              f"status --site gamma: {only.stdout[:400]!r}")
        every = subprocess.run([SESSIOND, "status", "--url", f"http://127.0.0.1:{port}"], capture_output=True,
                               timeout=30)
        check(every.stdout.startswith(b"SITE"), f"status with several sites: {every.stdout[:200]!r}")

        # alpha's site goes down: only alpha's breaker opens; beta keeps refreshing.
        a.faults(down=True)
        t_down = wall_now()
        wait_until(lambda: site_circuit(d, "alpha") == 1, 10, interval=0.2, what="alpha's breaker open")
        check(site_circuit(d, "beta") == 0 and site_circuit(d, "gamma") == 0, "only alpha's breaker opened")
        beta_before = refreshes(d, "beta")
        wait_until(lambda: refreshes(d, "beta") >= beta_before + 5, 10, interval=0.2,
                   what="beta refreshing during alpha's outage")
        check(site_circuit(d, "beta") == 0, "beta's breaker stayed closed")
        a.faults()  # back
        wait_until(lambda: site_circuit(d, "alpha") == 0, 10, interval=0.2, what="alpha's breaker closed again")
        alpha_back = refreshes(d, "alpha")
        wait_until(lambda: refreshes(d, "alpha") >= alpha_back + 5, 10, interval=0.2, what="alpha refreshing again")
        opened = [e for e in d.events("circuit_open") if parse_ts(e["ts"]) >= t_down]
        check(opened and all(e.get("site") == "alpha" for e in opened), f"circuit_open lines: {opened[:2]}")

        # delta's directory appears: its watcher takes it up, the error clears.
        os.mkdir(missing, 0o700)
        seed_as(a, missing, 2, "09150000000", "session-{id}.json")
        wait_until(lambda: daemon_status(d)["sites"].get("delta", {}).get("totalSessions") == 2, 10,
                   what="delta's sessions registered")
        sites = {s["name"]: s for s in json.loads(http("GET", url + "/sites")[1])["sites"]}
        check(sites["delta"]["error"] is None, f"delta's error cleared: {sites['delta']}")

        # Session log lines name their site.
        ok = d.events("refresh_ok")
        check(ok and all(e.get("site") in ("alpha", "beta", "gamma", "delta") for e in ok),
              "refresh_ok lines carry the site")
        check({e["site"] for e in ok} >= {"alpha", "beta", "gamma"}, "every site logged refreshes")

        # SIGHUP that adds a site and removes one: only those two are touched.
        epsilon = temp_dir("sessions-epsilon-")
        seed_as(b, epsilon, 3, "09160000000", "e-{id}.json")
        config["sites"] = [s for s in config["sites"] if s["name"] != "delta"] + [
            {"name": "epsilon", "profile": DEMO_PROFILE, "sessions_dir": epsilon, "base_url": b.base_url,
             "file_pattern": "e-{id}.json", "interval": "1s", "idle_timeout": BETA["idle"]}]
        with open(cfg_path, "w") as f:
            json.dump(config, f)
        added_before = len(d.events("session_added"))
        alpha_before = refreshes(d, "alpha")
        d.proc.send_signal(signal.SIGHUP)
        reload = d.wait_event("reload", 30)[-1]
        check(reload["added"] == ["epsilon"] and reload["removed"] == ["delta"] and reload["changed"] == []
              and sorted(reload["unchanged"]) == ["alpha", "beta", "gamma"], f"reload: {reload}")
        wait_until(lambda: daemon_status(d)["sites"].get("epsilon", {}).get("activeSessions") == 3, 15,
                   what="epsilon's sessions refreshed")
        st = daemon_status(d)
        check("delta" not in st["sites"], f"delta's sessions are gone: {list(st['sites'])}")
        check('site="delta"' not in daemon_metrics(d), "delta's metric series are gone")
        sites = [s["name"] for s in json.loads(http("GET", url + "/sites")[1])["sites"]]
        check(sites == ["alpha", "beta", "gamma", "epsilon"], f"/sites after the reload: {sites}")
        status, _, _ = http("GET", url + "/sites/epsilon/sessions/09160000000")
        check(status == 200, f"/sites/epsilon/sessions/ID: {status}")
        check(d.proc.poll() is None and not d.events("shutdown"), "no restart")
        # The others' sessions were not registered again, their counters not reset.
        again = [e for e in d.events("session_added")[added_before:] if e.get("site") != "epsilon"]
        check(not again, f"sessions of unchanged sites registered again: {again[:2]}")
        check(refreshes(d, "alpha") >= alpha_before, "alpha's counters kept")
        wait_until(lambda: refreshes(d, "epsilon") >= 6, 10, interval=0.3, what="epsilon refreshing")
    finally:
        code = d.stop()
    check(code == 0, f"exit status {code}")
    wait_until(lambda: not processes_naming(BROWSER_TMP), 5, what="no Chromium left")
    for name, site in (("alpha", a), ("beta", b), ("gamma", c)):
        stats = site.stats()
        print(f"{name}: lost {stats['lost']}, requests {stats['requests']}")
        check(stats["lost"] == 0, f"{name}: lost {stats['lost']}")
    secrets = a.secrets() + b.secrets() + c.secrets()
    print(f"log lines checked: {d.check_logs(secrets)}")
    for site in (a, b, c):
        site.stop()


def nest(directory, pattern="session-{id}.json"):
    """The seeded files in nics24's layout: the storage state under
    "storageState", beside fields of the bot's own. Returns what was nested."""
    out = {}
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        flat = load(path)
        doc = {"storageState": {"cookies": flat.pop("cookies"), "origins": flat.pop("origins")},
               "createdAt": "2026-01-02T03:04:05Z", "user": name, "provider": "fake"}
        doc.update(flat)  # nothing else today; kept at the top if the seed grows
        with open(path, "w") as f:
            json.dump(doc, f)
        out[name] = doc
    return out


def site_sessions(d, name):
    return {s["mobile"]: s for s in daemon_status(d)["sessions"] if s.get("site") == name}


def gap(s):
    """Seconds from a session's last refresh to its next one (None before the first)."""
    if not s["lastRefresh"] or not s["nextRefresh"]:
        return None
    return parse_ts(s["nextRefresh"]) - parse_ts(s["lastRefresh"])


def test_reload_changed_site():
    """A SIGHUP that changes one site (its interval) restarts only that site's
    sessions, which then refresh at the new interval; an identical site keeps
    its sessions, timers and counts. 0 sessions lost."""
    site = FakeSite(idle_timeout="10s")
    dirs = {name: temp_dir(f"sessions-{name}-") for name in ("changing", "steady")}
    seed_as(site, dirs["changing"], 3, "09170000000", "session-{id}.json")
    seed_as(site, dirs["steady"], 3, "09180000000", "session-{id}.json")
    # No jitter where the interval is measured; the steady site keeps the
    # demo's jitter, so a restart would show as moved timers.
    changing_profile = scaled_profile(jitter=0)
    steady_profile = scaled_profile()
    config = {
        "listen": "127.0.0.1:0",
        "rescan-interval": "1s",
        "sites": [
            {"name": "changing", "profile": changing_profile, "sessions_dir": dirs["changing"],
             "base_url": site.base_url, "interval": "1s", "idle_timeout": "10s"},
            {"name": "steady", "profile": steady_profile, "sessions_dir": dirs["steady"],
             "base_url": site.base_url, "interval": "3s", "idle_timeout": "10s"},
        ],
    }
    cfg_path = os.path.join(temp_dir("multi-reload-config-"), "sites.json")
    with open(cfg_path, "w") as f:
        json.dump(config, f)

    d = Daemon("--config", cfg_path)
    try:
        wait_ready(d, timeout=20)
        # Both refreshed; the changing site at its 1 s interval.
        wait_until(lambda: refreshes(d, "changing") >= 6 and refreshes(d, "steady") >= 3, 15, interval=0.2,
                   what="both sites refreshing")
        before = wait_until(lambda: (lambda s: len(s) == 3 and all(gap(x) is not None for x in s.values()) and s)(
            site_sessions(d, "changing")), 10, interval=0.2, what="the changing site's timers")
        check(all(gap(s) < 1.5 for s in before.values()), f"1 s interval before: {[gap(s) for s in before.values()]}")

        # SIGHUP: only the changing site's interval differs.
        steady_before = site_sessions(d, "steady")
        config["sites"][0]["interval"] = "3s"
        with open(cfg_path, "w") as f:
            json.dump(config, f)
        lines_before = len(d.lines)
        t_reload = wall_now()
        d.proc.send_signal(signal.SIGHUP)
        reload = d.wait_event("reload", 30)[-1]
        steady_after = site_sessions(d, "steady")
        check(reload["changed"] == ["changing"] and reload["added"] == [] and reload["removed"] == []
              and reload["unchanged"] == ["steady"], f"reload: {reload}")

        # The steady site was not touched: same sessions, counts never went
        # back, and a timer moved only where that session refreshed meanwhile.
        check(set(steady_after) == set(steady_before), f"steady sessions: {sorted(steady_after)}")
        untouched = 0
        for m, s in steady_after.items():
            b = steady_before[m]
            check(s["refreshCount"] >= b["refreshCount"], f"{m}: refreshCount {b['refreshCount']} -> {s['refreshCount']}")
            if s["lastRefresh"] == b["lastRefresh"] and not (s["refreshing"] or b["refreshing"]):
                check(s["nextRefresh"] == b["nextRefresh"], f"{m}: timer moved {b['nextRefresh']} -> {s['nextRefresh']}")
                untouched += 1
        check(untouched >= 1, "a steady session's timer observed across the reload")

        # The changing site restarted (its sessions registered again) and
        # refreshes at the new interval.
        def new_interval():
            now = site_sessions(d, "changing")
            return (len(now) == 3 and all(s["lastRefresh"] and parse_ts(s["lastRefresh"]) >= t_reload
                                          and gap(s) is not None and 2.5 <= gap(s) <= 3.6 for s in now.values())
                    and now)
        after = wait_until(new_interval, 12, interval=0.2, what="the changing site at its new 3 s interval")
        check(all(after[m]["refreshCount"] >= before[m]["refreshCount"] for m in before),
              "the changing site's counts continue from its files")
        with d.lock:
            since = [json.loads(line) for line in d.lines[lines_before:] if line.startswith("{")]
        added = sorted(e["session"] for e in since if e.get("event") == "session_added" and e.get("site") == "changing")
        check(added == sorted(before), f"the changing site's sessions registered again: {added}")
        others = [e for e in since if e.get("event") in ("session_added", "session_removed")
                  and e.get("site") != "changing"]
        check(not others, f"sessions of the unchanged site registered or removed: {others[:2]}")
        # The steady site keeps refreshing after the reload.
        steady_refreshes = refreshes(d, "steady")
        wait_until(lambda: refreshes(d, "steady") >= steady_refreshes + 3, 10, interval=0.2,
                   what="the steady site refreshing after the reload")
        st = daemon_status(d)
        check(st["totalSessions"] == 6 and st["activeSessions"] == 6, f"sessions after the reload: {st['sites']}")
    finally:
        code = d.stop()
    check(code == 0, f"exit status {code}")
    stats = site.stats()
    print(f"reload: lost {stats['lost']}, requests {stats['requests']}")
    check(stats["lost"] == 0, f"lost {stats['lost']}")
    print(f"log lines checked: {d.check_logs(site.secrets())}")
    site.stop()

def test_state_pointer_site():
    """A site whose files nest the storage state under "storageState" (the
    nics24 bot's layout; profile state_pointer "/storageState") beside a site
    with the flat layout: both kept alive with 0 lost, the nested files
    written back nested with the bot's other fields, the flat ones flat."""
    site = FakeSite(idle_timeout="3s")
    dirs = {name: temp_dir(f"sessions-{name}-") for name in ("nested", "flat")}
    seed_as(site, dirs["nested"], 2, "09190000000", "session-{id}.json")
    seed_as(site, dirs["flat"], 2, "09200000000", "session-{id}.json")
    seeded = nest(dirs["nested"])
    config = {
        "listen": "127.0.0.1:0",
        "sites": [
            {"name": "nested", "profile": scaled_profile(state_pointer="/storageState"),
             "sessions_dir": dirs["nested"], "base_url": site.base_url, "interval": "1s", "idle_timeout": "3s"},
            {"name": "flat", "profile": scaled_profile(), "sessions_dir": dirs["flat"], "base_url": site.base_url,
             "interval": "1s", "idle_timeout": "3s"},
        ],
    }
    cfg_path = os.path.join(temp_dir("multi-pointer-config-"), "sites.json")
    with open(cfg_path, "w") as f:
        json.dump(config, f)

    d = Daemon("--config", cfg_path)
    try:
        wait_ready(d, timeout=20)

        # Past the fake site's 3 s idle timeout: kept alive, not just refreshed once.
        def written(directory, times=5):
            # Session files only: a save's displaced version waits under a dot name for the group sync.
            docs = {n: load(os.path.join(directory, n)) for n in os.listdir(directory) if not n.startswith(".")}
            return all(doc.get("keepalive", {}).get("refreshCount", 0) >= times for doc in docs.values()) and docs
        docs = wait_until(lambda: written(dirs["nested"]), 15, interval=0.2,
                          what="the nested files refreshed and written back 5 times")
        for name, doc in docs.items():
            check(set(doc["storageState"]) >= {"cookies", "origins"} and "cookies" not in doc and "origins" not in doc,
                  f"{name}: storage state still nested: {sorted(doc)}")
            check({k: doc[k] for k in ("createdAt", "user", "provider")}
                  == {k: seeded[name][k] for k in ("createdAt", "user", "provider")}, f"{name}: the bot's fields kept")
            check(doc["storageState"]["cookies"] != seeded[name]["storageState"]["cookies"],
                  f"{name}: rotated cookies written under storageState")
        flat = wait_until(lambda: written(dirs["flat"]), 10, interval=0.2, what="the flat files written 5 times")
        check(all("storageState" not in doc and "cookies" in doc for doc in flat.values()), "flat files stay flat")
        sessions = {(s["site"], s["mobile"]): s for s in daemon_status(d)["sessions"]}
        check(len(sessions) == 4 and all(s["state"] == "active" and not s["lastError"] for s in sessions.values()),
              f"every session active: {sessions}")
        check(not d.events("file_error"), f"file errors: {d.events('file_error')[:2]}")
    finally:
        code = d.stop()
    check(code == 0, f"exit status {code}")
    stats = site.stats()
    print(f"state_pointer: lost {stats['lost']}, requests {stats['requests']}")
    check(stats["lost"] == 0, f"lost {stats['lost']}")
    print(f"log lines checked: {d.check_logs(site.secrets())}")
    site.stop()


if __name__ == "__main__":
    run(test_multi_site)
    run(test_reload_changed_site)
    run(test_state_pointer_site)
