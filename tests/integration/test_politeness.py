"""Politeness toward the site: the profile's token bucket caps the request
rate while every session still gets refreshed, and waiting requests start
closest-to-logout first (catch-up after a restart or an outage runs
most-overdue first)."""

import datetime
import json
import os
import random
import time

from harness import (measured, Daemon, FakeSite, check, daemon_metrics, metric_sum, run_scenarios, scaled_profile,
                     temp_dir, wait_ready, wait_until)


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def set_last_refresh(directory, mobile, t):
    path = os.path.join(directory, f"session-{mobile}.json")
    with open(path) as f:
        doc = json.load(f)
    doc["keepalive"] = {"state": "active", "lastRefresh": iso(t), "refreshCount": 1, "lastError": None,
                        "invalidSince": None}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def site_requests(site):
    r = site.stats()["requests"]
    return r["check"] + r["refresh"]


def finish(m, d, site):
    """Every scenario ends the same way: nothing lost or invalidated, a clean
    exit, no secret in the logs."""
    lost, inv = site.stats()["lost"], len(d.events("session_invalidated"))
    m.update(lost=lost, wrongly_invalidated=inv)
    check(lost == 0, "sessions lost")
    check(inv == 0, "sessions invalidated")
    check(d.stop() == 0, "exit status")
    d.check_logs(site.secrets())
    site.stop()


@measured
def rate_limit_caps_requests(m):
    # 40 sessions at a 1 s interval want 80 requests/s; the profile allows 20/s.
    sessions, rate, burst, window = 40, 20, 5, 5.0
    site = FakeSite(idle_timeout="60s")
    directory = temp_dir("sessions-rate-")
    mobiles = site.seed(directory, sessions)
    profile = scaled_profile(rate_limit={"per_second": rate, "burst": burst})
    d = Daemon("--profile", profile, "--base-url", site.base_url, "--sessions-dir", directory, "--interval", "1s",
               "--idle-timeout", "60s", "--listen", "127.0.0.1:0")
    wait_ready(d)
    m.update(fault="demand over the rate limit", injected=f"{sessions} sessions at 1 s (80 requests/s wanted), "
             f"rate_limit {rate}/s burst {burst}", sessions=sessions)
    time.sleep(1.0)  # past the start-up burst
    n0, t0 = site_requests(site), time.monotonic()
    time.sleep(window)
    n1, t1 = site_requests(site), time.monotonic()
    got = (n1 - n0) / (t1 - t0)
    m["site_requests_per_s"] = round(got, 1)
    # At most rate * time + burst (+ one request in flight at each edge of the window).
    check(n1 - n0 <= rate * (t1 - t0) + burst + 2, f"{n1 - n0} requests in {t1 - t0:.2f}s with a {rate}/s limit")
    check(got >= rate * 0.6, f"only {got:.1f} requests/s: the limiter starves the sessions")
    text = daemon_metrics(d)
    check(metric_sum(text, "sessiond_rate_limit_per_second") == rate, "sessiond_rate_limit_per_second")
    limited = metric_sum(text, "sessiond_rate_limited_total")
    m["rate_limited_total"] = limited
    check(limited > 0, "sessiond_rate_limited_total stayed 0 while demand exceeded the limit")
    check(metric_sum(text, "sessiond_http_queued") > 0, "no request waiting although demand exceeds the limit")
    # Every session is still served (slower): each got refreshed.
    wait_until(lambda: set(mobiles) <= {e["session"] for e in d.events("refresh_ok")}, 10, interval=0.2,
               what="every session refreshed under the limit")
    finish(m, d, site)


@measured
def catchup_most_overdue_first(m):
    # 30 overdue sessions at start-up behind an 8/s limit: they queue, and the
    # queue starts the one closest to its idle deadline first.
    sessions = 30
    site = FakeSite(idle_timeout="120s")
    directory = temp_dir("sessions-catchup-")
    mobiles = site.seed(directory, sessions)
    rng = random.Random(5)
    now = time.time()
    overdue_rank = mobiles[:]
    rng.shuffle(overdue_rank)  # overdue_rank[0] is the most overdue
    for k, mb in enumerate(overdue_rank):
        set_last_refresh(directory, mb, now - 30 + k * 0.2)
    profile = scaled_profile(rate_limit={"per_second": 8, "burst": 1})
    m.update(fault="catch-up after a restart", injected=f"{sessions} overdue files, rate_limit 8/s burst 1",
             sessions=sessions)
    d = Daemon("--profile", profile, "--base-url", site.base_url, "--sessions-dir", directory, "--interval", "2s",
               "--idle-timeout", "60s", "--listen", "127.0.0.1:0")
    wait_ready(d)
    wait_until(lambda: set(mobiles) <= {e["session"] for e in d.events("refresh_ok")}, 20, interval=0.2,
               what="every overdue session refreshed")
    # The order the site saw each session's first check.
    per = site.stats(per_session=True)["per_session"]
    first_check = sorted(mobiles, key=lambda mb: per[mb]["first_check_seq"])
    check(all(per[mb]["first_check_seq"] > 0 for mb in mobiles), "a session was never checked")
    pos = {mb: i for i, mb in enumerate(first_check)}
    # Spearman rank correlation between "most overdue" and "checked first".
    n = sessions
    d2 = sum((pos[mb] - k) ** 2 for k, mb in enumerate(overdue_rank))
    rho = 1 - 6 * d2 / (n * (n * n - 1))
    m["spearman_rho"] = round(rho, 3)
    m["most_overdue_positions"] = [pos[mb] for mb in overdue_rank[:5]]
    # A random order gives rho around 0 (standard deviation ~0.19 for 30).
    check(rho >= 0.7, f"catch-up order is not most-overdue first: rho {rho:.2f}; positions of the 5 most "
          f"overdue: {m['most_overdue_positions']}")
    check(all(pos[mb] < 10 for mb in overdue_rank[:5]), f"a most-overdue session went late: {m['most_overdue_positions']}")
    finish(m, d, site)


if __name__ == "__main__":
    run_scenarios([rate_limit_caps_requests, catchup_most_overdue_first], results_name="politeness")
