"""`sessiond status --all` over three sharded replicas on one sessions
directory: one table with every session and the right totals; after one
replica is stopped, the table still lists every session of the two live ones,
names the dead one and exits 1. Also the DNS form of --peers and -o json."""

import json
import re
import subprocess

from harness import (DEMO_PROFILE, SESSIOND, Daemon, FakeSite, check, daemon_status, run, temp_dir,
                     wait_ready, wait_until)

SESSIONS = 30
REPLICAS = 3
TOKEN = "fleet-test-token"


def status_all(*args):
    p = subprocess.run([SESSIOND, "status", "--all", *args], capture_output=True, text=True, timeout=30,
                       env={"SESSIOND_ADMIN_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    check(TOKEN not in p.stdout + p.stderr, "the admin token is printed")
    return p.returncode, p.stdout, p.stderr


def table_rows(out):
    """{id: (replica/shard, state)} from the table's rows."""
    rows = {}
    lines = out.splitlines()
    check(lines and lines[0].split()[:3] == ["REPLICA/SHARD", "ID", "STATE"], f"table header: {lines[:1]}")
    for line in lines[1:]:
        if not line.strip():
            break
        cols = line.split()
        rows[cols[1]] = (cols[0], cols[2])
    return rows


def all_active(d):
    s = daemon_status(d)
    return (s["ready"] and s["totalSessions"] > 0 and s["sessionsByState"]["active"] == s["totalSessions"]
            and s)


def test_status_all():
    site = FakeSite(idle_timeout="5m")
    sessions = temp_dir("sessions-all-")
    mobiles = site.seed(sessions, SESSIONS)
    # A long interval: states stay put while the test compares tables.
    daemons = [Daemon("--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions,
                      "--interval", "4m", "--idle-timeout", "5m", "--listen", "127.0.0.1:0",
                      "--shard-count", str(REPLICAS), "--shard-index", str(i),
                      env={"SESSIOND_ADMIN_TOKEN": TOKEN}) for i in range(REPLICAS)]
    urls = [d.url() for d in daemons]
    for d in daemons:
        wait_ready(d)
    own = {}
    for i, d in enumerate(daemons):
        s = wait_until(lambda: all_active(d), 20, what=f"replica {i}: every session active")
        own[i] = {x["mobile"] for x in s["sessions"]}
        check(s["shard"] == {"index": i, "count": REPLICAS}, f"replica {i} shard {s['shard']}")
    check(sorted(set().union(*own.values())) == sorted(mobiles), "the replicas split every session")
    check(all(own[i] for i in own), f"a replica owns nothing: {[len(own[i]) for i in own]}")
    peers = ",".join(urls)

    # Every replica answers: one table of all sessions, exit 0.
    code, out, err = status_all("--peers", peers)
    check(code == 0, f"all answered: exit {code}: {err}")
    rows = table_rows(out)
    check(sorted(rows) == sorted(mobiles), f"table lists {len(rows)} of {SESSIONS} sessions")
    for i in own:
        for m in own[i]:
            check(rows[m] == (f"{urls[i].split('//')[1]}/{i}", "active"), f"{m}: row {rows[m]}")
    check(f"{SESSIONS} active of {SESSIONS} sessions on {REPLICAS} of {REPLICAS} replicas; active {SESSIONS}"
          in out, f"totals line:\n{out[-400:]}")
    check("did not answer" not in out, "a replica reported as failed")

    # The DNS form: a name (here a numeric one) and the port.
    port0 = urls[0].rsplit(":", 1)[1]
    code, out, err = status_all("--peers", f"127.0.0.1:{port0}", "-o", "json")
    check(code == 0, f"DNS form: exit {code}: {err}")
    doc = json.loads(out)
    check(sorted(x["mobile"] for x in doc["sessions"]) == sorted(own[0]), "DNS form: replica 0's sessions")
    check(doc["shardsWithoutAnswer"] == [1, 2], f"shardsWithoutAnswer {doc['shardsWithoutAnswer']}")

    # One replica stops: the others' sessions are all there, the dead one is named, exit 1.
    dead = 2
    check(daemons[dead].stop() == 0, "replica exit status")
    code, out, err = status_all("--peers", peers)
    check(code == 1, f"one replica down: exit {code} (expected 1)")
    rows = table_rows(out)
    live = own[0] | own[1]
    check(sorted(rows) == sorted(live), f"table lists {sorted(set(rows) ^ live)[:5]} wrongly")
    n = len(live)
    check(f"{n} active of {n} sessions on 2 of 3 replicas; active {n}" in out, f"totals line:\n{out[-400:]}")
    dead_name = urls[dead].split("//")[1]
    check(re.search(rf"did not answer: {re.escape(dead_name)} \(.+\)", out), f"dead replica named:\n{out[-400:]}")
    check("shards of 3 without an answering replica: 2" in out, f"missing shard:\n{out[-400:]}")

    code, out, err = status_all("--peers", peers, "-o", "json")
    check(code == 1, f"json, one replica down: exit {code}")
    doc = json.loads(out)
    check(sorted(x["mobile"] for x in doc["sessions"]) == sorted(live), "json lists the live sessions")
    check(all(x["replica"] == urls[x["shard"]].split("//")[1] for x in doc["sessions"]), "json replica/shard")
    check(doc["totalSessions"] == n and doc["sessionsByState"].get("active") == n, f"json totals {doc['totalSessions']}")
    check([f["replica"] for f in doc["failedReplicas"]] == [dead_name], f"failedReplicas {doc['failedReplicas']}")
    check(doc["shardsWithoutAnswer"] == [dead], f"shardsWithoutAnswer {doc['shardsWithoutAnswer']}")

    # Without --peers: a usage error.
    code, _, err = status_all()
    check(code == 2 and "--peers" in err, f"no --peers: exit {code} {err}")

    for i, d in enumerate(daemons):
        if i != dead:
            check(d.stop() == 0, "replica exit status")
    site.stop()


if __name__ == "__main__":
    run(test_status_all)
