"""Three replicas on one sessions directory split the sessions by rendezvous
hashing: every session is refreshed by exactly one replica, none lost; after a
restart with four replicas, still exactly one each."""

import time

from harness import DEMO_PROFILE, Daemon, FakeSite, check, run, temp_dir

SESSIONS = 60


def replicas_per_session(site):
    return {m: dict(s["replicas"]) for m, s in site.stats(per_session=True)["per_session"].items()}


def run_replicas(site, sessions, count, seconds):
    before = replicas_per_session(site)
    daemons = [Daemon("--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions,
                      "--interval", "1s", "--idle-timeout", "6s", "--listen", "off",
                      "--shard-count", str(count), "--shard-index", str(i)) for i in range(count)]
    for d in daemons:
        d.wait_event("ready", 10)
    time.sleep(seconds)
    for d in daemons:
        check(d.stop() == 0, "replica exit status")
    after = replicas_per_session(site)
    owners = {}
    for m, counts in after.items():
        grew = [r for r, n in counts.items() if n > before.get(m, {}).get(r, 0)]
        check(len(grew) == 1, f"{m}: refreshed by replicas {grew} with {count} replicas")
        owners[m] = grew[0]
    per = {r: sum(1 for o in owners.values() if o == r) for r in map(str, range(count))}
    print(f"{count} replicas: sessions per replica {per}")
    check(all(n > 0 for n in per.values()), f"a replica owns nothing: {per}")
    return owners


def test_sharding():
    # Idle 6 s: the test is about ownership; restarting four (sanitized) replicas
    # between the phases must not eat the whole idle budget.
    site = FakeSite(idle_timeout="6s")
    sessions = temp_dir("sessions-shard-")
    site.seed(sessions, SESSIONS)
    three = run_replicas(site, sessions, 3, 7)
    four = run_replicas(site, sessions, 4, 5)
    moved = sum(1 for m in three if three[m] != four[m])
    print(f"moved from 3 to 4 replicas: {moved}/{SESSIONS}")
    check(all(four[m] == "3" for m in three if three[m] != four[m]), "ids moved between old replicas")
    stats = site.stats()
    check(stats["lost"] == 0, f"lost {stats['lost']}")
    site.stop()


if __name__ == "__main__":
    run(test_sharding)
