"""`sessiond status --all` over three sharded replicas on one sessions
directory: one table with every session and the right totals; after one
replica is stopped, the table still lists every session of the two live ones,
names the dead one and exits 1. Also the DNS form of --peers and -o json.
And the page's replica view: two replicas with --peers naming both and a dead
URL; GET /replicas on one lists both with the right totals and names the dead
one."""

import json
import re
import socket
import subprocess

from harness import (DEMO_PROFILE, SESSIOND, Daemon, FakeSite, check, daemon_status, http, run, temp_dir,
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


def free_port():
    """A loopback port nothing listens on now (the daemon binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def numbers(row_html):
    """The numeric cells of one table row, in order."""
    return [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', row_html)]


def test_replicas_page():
    site = FakeSite(idle_timeout="5m")
    sessions = temp_dir("sessions-replicas-")
    mobiles = site.seed(sessions, SESSIONS)
    # A port bound but not listening: connections to it are refused.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_name = f"127.0.0.1:{dead.getsockname()[1]}"
    ports = [free_port(), free_port()]
    names = [f"127.0.0.1:{p}" for p in ports]
    peers = ",".join(f"http://{n}" for n in names + [dead_name])
    daemons = [Daemon("--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions,
                      "--interval", "4m", "--idle-timeout", "5m", "--listen", names[i],
                      "--shard-count", "2", "--shard-index", str(i), "--peers", peers,
                      env={"SESSIOND_ADMIN_TOKEN": TOKEN}) for i in range(2)]
    for d in daemons:
        wait_ready(d)
    own = [len(wait_until(lambda: all_active(d), 20, what="every session active")["sessions"]) for d in daemons]
    check(sum(own) == len(mobiles) and all(own), f"the replicas split the sessions: {own}")

    status, body, headers = http("GET", daemons[1].url() + "/replicas")
    html = body.decode()
    check(status == 200, f"/replicas: HTTP {status}: {html[:300]}")
    check(headers.get("Content-Type", "").startswith("text/html"), f"content type {headers.get('Content-Type')}")
    check("default-src 'self'" in headers.get("Content-Security-Policy", ""), "CSP header")
    check('data-answered="2" data-asked="3"' in html, f"summary: {re.search(r'<p id=.replicas-summary.*?</p>', html)}")
    check(TOKEN not in html, "the admin token is on the page")
    for i, name in enumerate(names):
        row = re.search(rf'<tr data-replica="{re.escape(name)}">(.*?)</tr>', html)
        check(row, f"row of {name}")
        check(f"<td>{i} of 2</td>" in row.group(1), f"{name}: shard: {row.group(1)}")
        check('<td class="ok">yes</td>' in row.group(1), f"{name}: ready: {row.group(1)}")
        # Sessions, live, then one column per state in use (only active here).
        check(numbers(row.group(1)) == [own[i], own[i], own[i]], f"{name}: counts {numbers(row.group(1))}")
    totals = re.search(r'<tr id="replica-totals">(.*?)</tr>', html)
    check(totals and numbers(totals.group(1)) == [SESSIONS] * 3, f"totals row: {totals and totals.group(1)}")
    check(re.search(rf'<tr class="failed" data-replica="{re.escape(dead_name)}">.*?did not answer: [^<]+</td>',
                    html), f"the dead replica is named: {html[html.find('<tbody>'):][:1500]}")
    check("shards-missing" not in html, "both shards answered")

    # The overview links to it.
    status, body, _ = http("GET", daemons[0].url() + "/")
    check(status == 200 and '<a href="/replicas">replicas</a>' in body.decode(), "/ links to /replicas")

    for d in daemons:
        check(d.stop() == 0, "replica exit status")
    dead.close()
    site.stop()


if __name__ == "__main__":
    run(test_status_all)
    run(test_replicas_page)
