#!/usr/bin/env python3
"""sessiond benchmarks against the bundled fake site on loopback.

    python3 bench/run.py memory       RSS at 1k / 10k / 100k registered sessions
    python3 bench/run.py throughput   refreshes/s and CPU per 1,000 refreshes, interval sweep, vs the
                                      raw generator (sessiond-loadgen) and wrk
    python3 bench/run.py latency      new file -> first refresh, lateness at 100k, start-up, shutdown
    python3 bench/run.py startup      start-up with 100k existing files until ready, shutdown time
    python3 bench/run.py all          all of the above (shares the 100k fixture)

Each prints a table and writes bench/results/<name>.json. Python 3 standard
library only; needs build-bench/ (see bench/README.md) with its
bench/sessiond-loadgen (the raw generator) and, for the secondary comparison,
`wrk` (Debian package). Everything listens on 127.0.0.1 only.
Every child runs under `timeout`, every wait is bounded in time and count.
"""

import argparse
import concurrent.futures
import json
import os
import platform
import random
import resource
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Targets from the issue (the ratio printed is measured / target, or
# target / measured for "lower is better" figures: > 1 means the target is met).
TARGETS = {
    "kb_per_session_100k": 4.0,          # <= 4 KB per session beyond the idle baseline
    "cpu_s_per_1000": 0.4,               # <= 0.4 CPU-s per 1,000 refreshes
    "refreshes_per_s": 2000.0,           # >= 2,000 refreshes/s
    "vs_generator": 0.7,                 # >= 0.7 x the raw generator's refreshes/s (sessiond-loadgen)
    "new_file_p50_ms": 50.0,             # <= 50 ms with 100k registered
    "lateness_p99_s": 1.0,               # <= 1 s at 100k
    "lost": 0,
}

_children = []  # Popen objects we started; cleaned up at exit


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- helpers


def http(method, url, body=None, timeout=10.0, headers=None):
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def get_json(url, timeout=10.0):
    st, body, _ = http("GET", url, timeout=timeout)
    if st != 200:
        raise RuntimeError(f"GET {url}: HTTP {st}: {body[:200]!r}")
    return json.loads(body)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_pid(wrapper_pid, deadline_s=5.0):
    """The pid of the program `timeout` runs (its only child)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with open(f"/proc/{wrapper_pid}/task/{wrapper_pid}/children") as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            return None
        time.sleep(0.01)
    return None


def proc_stats(pid):
    """RSS / peak RSS (bytes), CPU seconds (user+system), threads."""
    out = {"rss": 0, "hwm": 0, "cpu_s": 0.0, "threads": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss"] = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    out["hwm"] = int(line.split()[1]) * 1024
                elif line.startswith("Threads:"):
                    out["threads"] = int(line.split()[1])
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        pass
    return out


def threads_by_name(pid):
    """{thread name: [CPU seconds, voluntary, involuntary context switches]}
    summed over pid's live threads of that name (sessiond names its threads by
    role: sd-http, sd-io, sd-actors, ...). A thread blocking to wait for work
    counts one voluntary switch, so switches per refresh measure hand-offs."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
            name = head.split("(", 1)[1]
            fields = tail.split()
            row = out.setdefault(name, [0.0, 0, 0])
            row[0] += (int(fields[11]) + int(fields[12])) / CLK_TCK
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        row[1] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        row[2] += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass  # the thread ended
    return out


def context_switches(threads):
    """(voluntary, involuntary) of a threads_by_name() reading."""
    return sum(r[1] for r in threads.values()), sum(r[2] for r in threads.values())


def per_thread_role(before, after, refreshes):
    """Per thread name over a window: CPU ms and context switches per refresh.
    Threads that started or ended inside the window count from 0 or not at all."""
    if not refreshes:
        return None
    roles = {}
    for name, (cpu, vol, invol) in after.items():
        cpu0, vol0, invol0 = before.get(name, (0.0, 0, 0))
        roles[name] = {"cpu_ms_per_refresh": round((cpu - cpu0) / refreshes * 1000, 4),
                       "voluntary_per_refresh": round((vol - vol0) / refreshes, 2),
                       "involuntary_per_refresh": round((invol - invol0) / refreshes, 2)}
    return dict(sorted(roles.items(), key=lambda kv: -kv[1]["cpu_ms_per_refresh"]))


def per_refresh(before, after, refreshes):
    """The (voluntary, involuntary) difference per refresh."""
    if not refreshes:
        return None
    return {"voluntary": round((after[0] - before[0]) / refreshes, 2),
            "involuntary": round((after[1] - before[1]) / refreshes, 2)}


def system_cpu():
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class CpuWindow:
    """Machine-wide busy cores over a window, and the share of it that was ours."""

    def __init__(self, pids):
        self.pids = [p for p in pids if p]
        self.t0 = time.monotonic()
        self.sys0 = system_cpu()
        self.ours0 = {p: proc_stats(p)["cpu_s"] for p in self.pids}

    def close(self):
        dt = time.monotonic() - self.t0
        b1, t1 = system_cpu()
        busy = (b1 - self.sys0[0]) / CLK_TCK
        ours = sum(proc_stats(p)["cpu_s"] - c for p, c in self.ours0.items())
        ncpu = os.cpu_count() or 1
        return {
            "seconds": round(dt, 2),
            "machine_busy_cores": round(busy / dt, 2) if dt > 0 else None,
            "bench_processes_cores": round(ours / dt, 2) if dt > 0 else None,
            "other_processes_cores": round(max(0.0, busy - ours) / dt, 2) if dt > 0 else None,
            "cores": ncpu,
            "loadavg": os.getloadavg()[0],
        }


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def parse_iso(ts):
    if ts is None:
        return None
    return datetime.strptime(ts.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"


def fmt(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    fs = subprocess.run(["findmnt", "-no", "FSTYPE,SOURCE", "-T", "/tmp"], capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return {
        "git": rev + (" (+ uncommitted changes)" if dirty else ""),
        "cpu_model": model,
        "cores": os.cpu_count(),
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "tmp_fs": fs,
        "python": platform.python_version(),
    }


RESULT_TAG = ""


def write_results(name, data):
    os.makedirs(RESULTS_DIR, exist_ok=True)
    data = dict(data)
    data["command"] = "python3 bench/run.py " + " ".join(sys.argv[1:])
    data["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path = os.path.join(RESULTS_DIR, f"{name}{RESULT_TAG}.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    log(f"wrote {os.path.relpath(path, ROOT)}")


def table(title, headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    sys.stdout.flush()


# ---------------------------------------------------------------- processes


class FakeSite:
    def __init__(self, ctx, idle_timeout, threads, life_s, extra_args=()):
        self.ctx = ctx
        self.dir = tempfile.mkdtemp(prefix="site-", dir=ctx.work)
        pf = os.path.join(self.dir, "port.json")
        self.logf = open(os.path.join(self.dir, "fakesite.log"), "wb")
        cmd = ["timeout", "-k", "5", str(int(life_s)), ctx.fakesite_bin, "--idle-timeout", idle_timeout,
               "--threads", str(threads), "--port-file", pf, *extra_args]
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        _children.append(self.proc)
        end = time.monotonic() + 20
        while not os.path.exists(pf):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError("fake site did not start: " + open(self.logf.name).read()[-500:])
            time.sleep(0.05)
        info = json.load(open(pf))
        self.base_url = info["base_url"]
        self.port = info["port"]
        self.admin = f"http://127.0.0.1:{info['admin_port']}"
        self.pid = child_pid(self.proc.pid)
        self.idle_timeout = idle_timeout
        self.threads = threads
        self._mobile = 9120000000
        log(f"fake site {self.base_url} (admin {self.admin}), idle-timeout {idle_timeout}, {threads} threads")

    def seed(self, directory, count, ls_bytes):
        """Writes `count` session files (new accounts) into directory; returns (seconds, mobiles)."""
        t0 = time.monotonic()
        mobiles = []
        done = 0
        while done < count:
            n = min(10000, count - done)
            first = f"0{self._mobile:010d}"
            self._mobile += n
            st, body, _ = http("POST", self.admin + "/seed",
                               {"dir": directory, "count": n, "first_mobile": first, "localstorage_bytes": ls_bytes},
                               timeout=300)
            if st != 200:
                raise RuntimeError(f"seed failed: HTTP {st} {body[:200]!r}")
            mobiles += json.loads(body)["mobiles"]
            done += n
        return time.monotonic() - t0, mobiles

    def stats(self):
        return get_json(self.admin + "/stats", timeout=30)

    def login(self):
        """A fresh account for the load generator; returns (mobile, sid)."""
        mobile = f"0{self._mobile:010d}"
        self._mobile += 1
        st, body, hdrs = http("POST", self.base_url + "/api/login", {"mobile": mobile})
        if st != 200:
            raise RuntimeError(f"login failed: HTTP {st}")
        for v in hdrs.get_all("Set-Cookie") or []:
            m = re.match(r"sid=([0-9a-f]+)", v)
            if m:
                return mobile, m.group(1)
        raise RuntimeError("login: no sid cookie")

    def logout(self, mobile):
        """Forced logout (counted as forced_logout, not as lost, when it later idles out)."""
        http("POST", self.admin + "/logout", {"mobiles": [mobile]})

    def logout_many(self, mobiles):
        """Forced logout of many accounts (not lost when they idle out afterwards)."""
        for i in range(0, len(mobiles), 1000):
            http("POST", self.admin + "/logout", {"mobiles": mobiles[i:i + 1000]}, timeout=30)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    def __init__(self, ctx, site, sessions_dir, interval, idle_timeout, log_level="warn", life_s=600,
                 io_threads=None, name="sessiond", profile=None, extra_args=(), env=None):
        self.ctx = ctx
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logpath = os.path.join(ctx.work, f"{name}-{self.port}.log")
        self.logf = open(self.logpath, "wb")
        cmd = ["timeout", "-k", "10", str(int(life_s)), ctx.sessiond_bin, "run", "--profile", profile or ctx.profile,
               "--base-url", site.base_url, "--sessions-dir", sessions_dir, "--interval", interval,
               "--idle-timeout", idle_timeout, "--listen", f"127.0.0.1:{self.port}", "--log-level", log_level]
        if io_threads:
            cmd += ["--io-threads", str(io_threads)]
        cmd += list(extra_args) + list(ctx.args.daemon_args)
        self.cmd = cmd
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **env) if env else None)
        _children.append(self.proc)
        self.pid = child_pid(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, timeout_s):
        """Seconds from spawn until GET /readyz answers 200 (polled every 10 ms)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError("sessiond exited: " + self.tail())
            try:
                st, _, _ = http("GET", self.url + "/readyz", timeout=2)
                if st == 200:
                    return time.monotonic() - self.t_spawn
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"sessiond not ready after {timeout_s}s")

    def metrics(self, timeout=20):
        st, body, _ = http("GET", self.url + "/metrics", timeout=timeout)
        out = {}
        for line in body.decode().splitlines():
            if not line or line[0] == "#":
                continue
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
        return out

    def success(self, m=None):
        m = m if m is not None else self.metrics()
        return int(m.get('sessiond_refresh_total{result="success"}', 0))

    def stats(self):
        return proc_stats(self.pid)

    def stop(self, timeout_s=60):
        """SIGTERM; returns (seconds until the process is gone, exit status)."""
        t0 = time.monotonic()
        if self.alive():
            os.kill(self.pid or self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self.logf.close()
                return None, None
        took = time.monotonic() - t0
        self.logf.close()
        return took, self.proc.returncode

    def tail(self, n=1500):
        try:
            with open(self.logpath, "rb") as f:
                f.seek(max(0, os.path.getsize(self.logpath) - n))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def events(self, names):
        """Parsed log lines whose event is in names."""
        out = []
        with open(self.logpath, "rb") as f:
            for raw in f:
                if b'"event"' not in raw:
                    continue
                try:
                    j = json.loads(raw)
                except ValueError:
                    continue
                if j.get("event") in names:
                    out.append(j)
        return out


def cleanup_children():
    for p in _children:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)
            except Exception:
                try:
                    p.kill()
                except Exception:
                    pass


# ---------------------------------------------------------------- context


class Ctx:
    def __init__(self, args):
        self.args = args
        build = args.build_dir if os.path.isabs(args.build_dir) else os.path.join(ROOT, args.build_dir)
        self.build = build
        self.node_path = ""
        self.sessiond_bin = args.sessiond_bin or os.path.join(build, "sessiond")
        self.fakesite_bin = args.fakesite_bin or os.path.join(build, "fakesite", "sessiond-fakesite")
        self.loadgen_bin = args.loadgen_bin or os.path.join(build, "bench", "sessiond-loadgen")
        for b in (self.sessiond_bin, self.fakesite_bin):
            if not os.access(b, os.X_OK):
                sys.exit(f"missing {b}; build it first (see bench/README.md)")
        os.makedirs(args.work_root, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="sdbench-", dir=args.work_root)
        self.profile = os.path.join(self.work, "profile.json")
        write_profile(self.profile, args.max_in_flight)
        self.machine = machine()
        st = os.stat(self.sessiond_bin)
        self.machine["sessiond_binary"] = self.sessiond_bin
        self.machine["sessiond_binary_built"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime))
        if args.source_rev:
            self.machine["git"] = args.source_rev
        self.site = None          # shared fake site for memory / startup / latency
        self.fixtures = {}        # count -> (dir, mobiles)
        log(f"work dir {self.work}")

    def shared_site(self):
        if self.site is None:
            self.site = FakeSite(self, "30m", self.args.max_in_flight + 32, life_s=3600)
        return self.site

    def fixture(self, count, steady=True):
        """A directory of `count` seeded session files, shared by the runs of one
        invocation. steady: each file gets a keepalive block whose lastRefresh is
        spread over the last interval (a long-running deployment's files);
        otherwise the files are as the login bot writes them (no keepalive)."""
        key = (count, steady)
        if key not in self.fixtures:
            d = os.path.join(self.work, f"sessions-{count}{'' if steady else '-new'}")
            os.makedirs(d)
            secs, mobiles = self.shared_site().seed(d, count, self.args.localstorage_bytes)
            log(f"seeded {count} files in {secs:.1f}s ({count / secs:.0f}/s)")
            spread = None
            if steady:
                cnt, spread = spread_keepalive(d, parse_dur(self.args.interval))
                log(f"gave {cnt} files a keepalive block, lastRefresh spread over the last {self.args.interval}, "
                    f"in {spread:.1f}s")
            sizes = [os.path.getsize(os.path.join(d, n)) for n in os.listdir(d)[:200]]
            self.fixtures[key] = {"dir": d, "mobiles": mobiles, "seed_s": secs, "spread_s": spread,
                                  "spread_at": time.monotonic(), "file_bytes": statistics.mean(sizes)}
        return self.fixtures[key]

    def close(self):
        cleanup_children()
        if self.site:
            self.site.stop()
        if not self.args.keep:
            t0 = time.monotonic()
            remove_tree(self.work)
            log(f"removed the work dir in {time.monotonic() - t0:.0f}s")


def remove_tree(path):
    """rm -rf with parallel unlinks: on a filesystem mounted with `discard` every
    unlink waits for a TRIM, and they overlap."""
    files = []
    for root, _, names in os.walk(path):
        files += [os.path.join(root, n) for n in names]

    def rm(f):
        try:
            os.unlink(f)
        except OSError:
            pass
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(rm, files, chunksize=256))
    shutil.rmtree(path, ignore_errors=True)


def write_profile(path, max_in_flight, headers=None):
    """profiles/demo.json (same check and refresh steps) with max_in_flight raised
    and, optionally, extra default request headers."""
    with open(os.path.join(ROOT, "profiles", "demo.json")) as f:
        text = "\n".join(line for line in f if not line.lstrip().startswith("//"))
    prof = json.loads(text)
    prof["max_in_flight"] = max_in_flight
    prof["description"] = "bench copy of profiles/demo.json"
    if headers:
        prof.setdefault("headers", {}).update(headers)
    with open(path, "w") as f:
        json.dump(prof, f, indent=2)


def wait_until(pred, timeout_s, step=0.5):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def spread_keepalive(directory, interval_s):
    """Gives every file a keepalive block whose lastRefresh is spread over the last
    interval, as a long-running deployment leaves them (sessiond then starts in
    its steady state). Rewritten in place, not replaced: sessiond is not running,
    and a new inode per file costs a TRIM per old file on a `discard` mount."""
    t0 = time.monotonic()
    now = time.time()
    rng = random.Random(42)
    n = 0
    for name in os.listdir(directory):
        if not (name.startswith("session-") and name.endswith(".json")):
            continue
        p = os.path.join(directory, name)
        with open(p, "r+b") as f:
            doc = json.loads(f.read())
            k = doc.get("keepalive") or {}
            k.update({"state": "active", "lastRefresh": iso(now - rng.uniform(0.02, 0.98) * interval_s),
                      "refreshCount": max(1, int(k.get("refreshCount", 0) or 0)), "lastError": None,
                      "invalidSince": None})
            doc["keepalive"] = k
            data = json.dumps(doc, indent=2).encode()
            f.seek(0)
            f.write(data)
            f.truncate(len(data))
        n += 1
    return n, time.monotonic() - t0


def parse_dur(s):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", s)
    n, u = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u]


# ---------------------------------------------------------------- memory


def bench_memory(ctx):
    """steady (default): files with a keepalive block spread over the last
    interval, so sessiond starts in its steady state (N/(0.9 x interval)
    refreshes/s); RSS once every session is scheduled and after --memory-settle
    more seconds. catchup: files without keepalive (as the login bot writes
    them), so every session is refreshed within the catch-up window; RSS once
    all have been refreshed once and nothing is in flight."""
    a = ctx.args
    mode = a.memory_mode
    site = ctx.shared_site()
    res = {"machine": ctx.machine, "mode": mode, "interval": a.interval, "max_in_flight": a.max_in_flight,
           "localstorage_bytes": a.localstorage_bytes, "runs": []}

    # Idle baseline: no sessions at all.
    empty = os.path.join(ctx.work, "sessions-empty")
    os.makedirs(empty, exist_ok=True)
    d = Daemon(ctx, site, empty, a.interval, "30m", life_s=120, name="mem-base")
    ready = d.wait_ready(30)
    time.sleep(3)
    samples = []
    for _ in range(3):
        samples.append(d.stats()["rss"])
        time.sleep(0.5)
    base = statistics.median(samples)
    stop_s, rc = d.stop()
    res["baseline"] = {"rss_bytes": base, "ready_s": round(ready, 3), "shutdown_s": stop_s, "exit": rc}
    log(f"idle baseline RSS {base / 2**20:.1f} MiB")

    for n in a.sizes:
        fx = ctx.fixture(n, steady=(mode == "steady"))
        lost0 = site.stats()["lost"]
        d = Daemon(ctx, site, fx["dir"], a.interval, "30m", life_s=300 + a.memory_refresh_wait + n / 1000,
                   name=f"mem-{n}")
        ready = d.wait_ready(180)
        rss_ready = d.stats()["rss"]
        cpu_w = CpuWindow([d.pid, site.pid])

        def scheduled():
            m = d.metrics()
            return m.get('sessiond_sessions{state="pending"}', 1) == 0 and m
        if mode == "steady":
            ok = wait_until(scheduled, 180, 0.25)
            t_sched = time.monotonic() - d.t_spawn
            p0, r0, t0 = d.stats(), d.success(), time.monotonic()
            time.sleep(a.memory_settle)
        else:
            t0 = time.monotonic()
            p0, r0 = d.stats(), 0
            ok = wait_until(lambda: d.success() >= n, a.memory_refresh_wait, 0.5)
            t_sched = time.monotonic() - d.t_spawn
            # Quiet: nothing in flight or queued any more.
            wait_until(lambda: (lambda m: m.get("sessiond_http_in_flight", 1) == 0 and
                                m.get("sessiond_http_queued", 1) == 0)(d.metrics()), 20, 0.25)
            time.sleep(2)
        rs = []
        for _ in range(3):
            rs.append(d.stats()["rss"])
            time.sleep(0.5)
        s = d.stats()
        r1, t1 = d.success(), time.monotonic()
        cpu = cpu_w.close()
        m = d.metrics()
        stop_s, rc = d.stop(120)
        lost = site.stats()["lost"] - lost0
        rss = statistics.median(rs)
        refreshed = r1 - r0
        run = {
            "sessions": n,
            "file_bytes_mean": round(fx["file_bytes"]),
            "ready_s": round(ready, 2),
            "rss_at_ready_bytes": rss_ready,
            "scheduled_s" if mode == "steady" else "all_refreshed_s": round(t_sched, 2),
            "complete": bool(ok),
            "window_s": round(t1 - t0, 1),
            "refreshes_in_window": refreshed,
            "refreshes_per_s": round(refreshed / (t1 - t0), 1),
            "rss_bytes": rss,
            "peak_rss_bytes": s["hwm"],
            "kb_per_session": round((rss - base) / n / 1024, 2),
            "kb_per_session_peak": round((s["hwm"] - base) / n / 1024, 2),
            "threads": s["threads"],
            "cpu_s_per_1000": round((s["cpu_s"] - p0["cpu_s"]) / refreshed * 1000, 3) if refreshed > 100 else None,
            "transient_errors": int(m.get('sessiond_refresh_total{result="transient_error"}', 0)),
            "shutdown_s": round(stop_s, 3) if stop_s is not None else None,
            "exit": rc,
            "lost": lost,
            "load": cpu,
        }
        res["runs"].append(run)
        log(f"{n}: RSS {rss / 2**20:.1f} MiB ({run['kb_per_session']} KB/session), peak {s['hwm'] / 2**20:.1f} MiB, "
            f"{refreshed} refreshes in {t1 - t0:.0f}s, lost {lost}, shutdown {stop_s:.1f}s")
    rows = []
    for r in res["runs"]:
        ratio = TARGETS["kb_per_session_100k"] / r["kb_per_session"] if r["kb_per_session"] > 0 else None
        rows.append([r["sessions"], r["file_bytes_mean"], f"{r['rss_at_ready_bytes'] / 2**20:.1f}",
                     f"{r['rss_bytes'] / 2**20:.1f}", f"{r['peak_rss_bytes'] / 2**20:.1f}",
                     r["kb_per_session"], fmt(ratio), r["kb_per_session_peak"],
                     f"{r['refreshes_in_window']} in {r['window_s']}s", fmt(r["cpu_s_per_1000"], 3),
                     fmt(r["shutdown_s"], 2), r["lost"]])
    table(f"memory, {mode} (idle baseline {base / 2**20:.1f} MiB; interval {a.interval})",
          ["sessions", "file B", "RSS at ready MiB", "RSS MiB", "peak MiB", "KB/session",
           "target 4 KB / measured", "KB/session at peak", "refreshes", "CPU-s/1000", "shutdown s", "lost"], rows)
    write_results("memory" if mode == "steady" else "memory-catchup", res)
    return res


CURL_ACCEPT_ENCODING = "deflate, gzip, br, zstd"  # what libcurl 7.88 sends for CURLOPT_ACCEPT_ENCODING ""


def run_beside_site(site, cmd):
    """Runs a load command against the fake site: (its completed process, the
    site's CPU seconds meanwhile, the machine's CpuWindow over the site)."""
    f0 = proc_stats(site.pid)["cpu_s"]
    w = CpuWindow([site.pid])
    out = subprocess.run(cmd, capture_output=True, text=True)
    load = w.close()
    return out, proc_stats(site.pid)["cpu_s"] - f0, load


def run_wrk(site, connections, duration_s, accept_encoding=None):
    mobile, sid = site.login()
    cmd = ["timeout", str(duration_s + 20), "wrk", "-t", "2", "-c", str(connections), "-d", f"{duration_s}s",
           "--latency", "-H", f"Cookie: sid={sid}"]
    if accept_encoding:
        cmd += ["-H", f"Accept-Encoding: {accept_encoding}"]
    cmd.append(f"{site.base_url}/pwa")
    done, site_cpu, load = run_beside_site(site, cmd)
    out = done.stdout
    site.logout(mobile)  # else its session idles out later and counts as lost
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    lat = re.search(r"Latency\s+([\d.]+\w+)", out)
    rate = float(m.group(1)) if m else None
    return {"accept_encoding": accept_encoding, "requests_per_s": rate, "connections": connections,
            "duration_s": duration_s, "requests": int(total.group(1)) if total else None,
            "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0, "latency_avg": lat.group(1) if lat else None,
            "fakesite_cores": round(site_cpu / load["seconds"], 2),
            "fakesite_cpu_ms_per_request": round(site_cpu / (rate * load["seconds"]) * 1000, 4) if rate else None,
            "load": load, "command": " ".join(cmd[3:]).replace(sid, "<sid>")}


def run_generator(ctx, site, accept_encoding, label, save=False):
    """The raw generator (bench/loadgen.cpp): per session the profile's two
    requests (GET /pwa, POST /api/refresh with the rotation followed), C lanes,
    on its own freshly seeded accounts (never sessiond's files); they are
    force-logged-out afterwards so that they do not idle out and count as lost.
    accept_encoding: "identity" (the identity mode's header) or "all" (libcurl's
    list, what the shipped profile sends). save: each refresh also writes its
    file (temp file, RENAME_EXCHANGE, unlink, on the generator's one thread):
    the floor of one event loop per core with a file per refresh."""
    a = ctx.args
    d = os.path.join(ctx.work, f"loadgen-{label}")
    os.makedirs(d)
    _, mobiles = site.seed(d, a.generator_sessions, a.localstorage_bytes)
    cmd = ["timeout", "-k", "5", str(int(a.generator_seconds) + 40), ctx.loadgen_bin, "--base-url", site.base_url,
           "--dir", d, "--concurrency", str(a.max_in_flight), "--seconds", str(a.generator_seconds),
           "--accept-encoding", accept_encoding] + (["--save"] if save else [])
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, site_cpu, load = run_beside_site(site, cmd)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    site.logout_many(mobiles)  # else they idle out later and count as lost
    remove_tree(d)
    try:
        g = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log(f"generator failed (exit {out.returncode}): {out.stderr[-300:]}")
        return {"accept_encoding": accept_encoding, "save": save, "refreshes_per_s": None, "exit": out.returncode,
                "load": load}
    refreshes = g["refreshes"]
    # The window tracked the site only: the generator's own CPU (getrusage)
    # moves from "other" to "bench processes".
    gen_cores = g["cpu_s"] / g["seconds"] if g["seconds"] else 0.0
    load["bench_processes_cores"] = round(load["bench_processes_cores"] + gen_cores, 2)
    load["other_processes_cores"] = round(max(0.0, load["other_processes_cores"] - gen_cores), 2)
    g.update({
        "generator_cores": round(gen_cores, 2),
        "accept_encoding": accept_encoding, "sessions": a.generator_sessions, "exit": out.returncode,
        "cpu_s_per_1000": round(g["cpu_s"] / refreshes * 1000, 3) if refreshes else None,
        "context_switches_per_refresh": per_refresh((r0.ru_nvcsw, r0.ru_nivcsw), (r1.ru_nvcsw, r1.ru_nivcsw),
                                                    refreshes),
        "fakesite_cores": round(site_cpu / load["seconds"], 2),
        "fakesite_cpu_ms_per_request": round(site_cpu / g["requests"] * 1000, 4) if g["requests"] else None,
        "load": load, "command": " ".join(cmd[4:]).replace(d, "<dir>")})
    if g["errors"] or g["logged_out"] or g.get("save_errors"):
        log(f"generator: {g['errors']} errors, {g['logged_out']} logged out, {g.get('save_errors', 0)} failed saves")
    return g


def throughput_step(ctx, site, directory, interval, profile, n):
    a = ctx.args
    lost0 = site.stats()
    d = Daemon(ctx, site, directory, interval, a.throughput_site_idle, life_s=a.warmup + a.window + 120,
               name=f"tp-{interval}", profile=profile)
    d.wait_ready(60)
    time.sleep(a.warmup)
    m0, p0, s0 = d.metrics(), d.stats(), site.stats()
    fs0 = proc_stats(site.pid)["cpu_s"]
    th0 = threads_by_name(d.pid)
    t0 = time.monotonic()
    w = CpuWindow([d.pid, site.pid])
    queued, window, unsaved = [], [], []
    end = t0 + a.window
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        try:
            m = d.metrics()
            queued.append(m.get("sessiond_http_queued", 0))
            window.append(m.get("sessiond_http_answer_window", 0))
            unsaved.append(m.get("sessiond_http_answers_unsaved", 0))
        except OSError:
            pass
    m1, p1, s1 = d.metrics(), d.stats(), site.stats()
    fs1 = proc_stats(site.pid)["cpu_s"]
    th1 = threads_by_name(d.pid)
    dt = time.monotonic() - t0
    load = w.close()
    stop_s, rc = d.stop()
    s2 = site.stats()
    refreshes = d.success(m1) - d.success(m0)
    site_req = (s1["requests"]["check"] + s1["requests"]["refresh"]) - (s0["requests"]["check"] + s0["requests"]["refresh"])
    cpu = p1["cpu_s"] - p0["cpu_s"]
    return {
        "interval": interval,
        "offered_per_s": round(n / (parse_dur(interval) * (1 - 0.1)), 0),  # jitter 0.2: mean 0.9 x interval
        "window_s": round(dt, 1),
        "refreshes": refreshes,
        "refreshes_per_s": round(refreshes / dt, 1),
        "site_requests_per_s": round(site_req / dt, 1),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_1000": round(cpu / refreshes * 1000, 3) if refreshes else None,
        "context_switches_per_refresh": per_refresh(context_switches(th0), context_switches(th1), refreshes),
        # Group commit: saves per syncfs (SyncBatcher's gather window).
        "saves_per_sync": round((m1.get("sessiond_saves_synced_total", 0) - m0.get("sessiond_saves_synced_total", 0))
                                / max(1.0, m1.get("sessiond_save_sync_seconds_count", 0)
                                      - m0.get("sessiond_save_sync_seconds_count", 0)), 1),
        # Where the CPU and the hand-offs are, by thread role (thread_name.hpp).
        "per_thread_role": per_thread_role(th0, th1, refreshes),
        "sessiond_cores": round(cpu / dt, 2),
        "fakesite_cores": round((fs1 - fs0) / dt, 2),
        "fakesite_cpu_ms_per_request": round((fs1 - fs0) / site_req * 1000, 4) if site_req else None,
        "queued_median": statistics.median(queued) if queued else None,
        # --save-lag-target's window (0 when off) and the answers waiting for their save.
        "answer_window_median": statistics.median(window) if window else None,
        "answers_unsaved_median": statistics.median(unsaved) if unsaved else None,
        # Saturated: sessiond does not keep up with what the interval asks for.
        "saturated": refreshes / dt < 0.9 * n / (parse_dur(interval) * 0.9),
        "transient_errors": int(m1.get('sessiond_refresh_total{result="transient_error"}', 0)),
        "logged_out": int(m1.get('sessiond_refresh_total{result="logged_out"}', 0)),
        "lost": s2["lost"] - lost0["lost"],
        "stale_cookie_requests": s2["stale_cookie_requests"] - lost0["stale_cookie_requests"],
        "rss_bytes": p1["rss"],
        "shutdown_s": round(stop_s, 3) if stop_s is not None else None,
        "exit": rc,
        "load": load,
    }


def bench_throughput(ctx):
    """Two modes. "shipped": the profile as it is; sessiond offers every encoding
    libcurl knows and the fake site answers with brotli. "identity": the same
    profile plus the header Accept-Encoding: identity (what plain wrk gets)."""
    a = ctx.args
    n = a.throughput_sessions
    site = FakeSite(ctx, a.throughput_site_idle, a.max_in_flight + 32, life_s=1800)
    res = {"machine": ctx.machine, "sessions": n, "max_in_flight": a.max_in_flight,
           "fakesite_threads": site.threads, "site_idle_timeout": a.throughput_site_idle,
           "window_s": a.window, "warmup_s": a.warmup, "modes": {}, "wrk": [], "generator": []}
    have_wrk = shutil.which("wrk") is not None
    if not have_wrk:
        log("wrk not found (apt-get install -y wrk): no wrk comparison")
    have_gen = not a.skip_generator and os.access(ctx.loadgen_bin, os.X_OK)
    if not have_gen:
        log(f"raw generator skipped ({'--skip-generator' if a.skip_generator else 'no ' + ctx.loadgen_bin}): "
            "no like-for-like comparison")
    modes = [m for m in [("identity", "identity", a.intervals), ("shipped", None, a.shipped_intervals)]
             if m[0] in a.modes]
    # The generator asks for what the mode's profile asks for.
    gen_ae = {"identity": "identity", "shipped": "all"}

    def generator_runs(when):
        for mode, _, _ in modes:
            for save in (False, True):
                what = "raw generator" + (" --save" if save else "")
                log(f"{what} -c{a.max_in_flight} {a.generator_seconds}s, {a.generator_sessions} sessions, "
                    f"Accept-Encoding {gen_ae[mode]} ({when})")
                g = run_generator(ctx, site, gen_ae[mode], f"{mode}-{when}{'-save' if save else ''}", save)
                log(f"{what}: {g.get('refreshes_per_s')} refreshes/s, {g.get('cpu_s_per_1000')} CPU-s/1000, switches/refresh {g.get('context_switches_per_refresh')}")
                res["generator"].append(g)
    profiles = {"identity": os.path.join(ctx.work, "profile-identity.json"), "shipped": ctx.profile}
    write_profile(profiles["identity"], a.max_in_flight, {"Accept-Encoding": "identity"})
    try:
        if have_gen:
            generator_runs("before")
        if have_wrk:
            for ae in (None, CURL_ACCEPT_ENCODING):
                log(f"wrk -c{a.max_in_flight} {a.wrk_seconds}s GET /pwa, Accept-Encoding {ae or '(none)'}")
                res["wrk"].append(run_wrk(site, a.max_in_flight, a.wrk_seconds, ae))
        directory = os.path.join(ctx.work, "sessions-throughput")
        os.makedirs(directory)
        secs, _ = site.seed(directory, n, a.localstorage_bytes)
        log(f"seeded {n} files in {secs:.1f}s")
        for mode, _, intervals in modes:
            steps = []
            for interval in intervals:
                # Steady state from the start: lastRefresh spread over the last interval.
                spread_keepalive(directory, parse_dur(interval))
                step = throughput_step(ctx, site, directory, interval, profiles[mode], n)
                steps.append(step)
                log(f"{mode} interval {interval}: {step['refreshes_per_s']:.0f} refreshes/s, "
                    f"{step['cpu_s_per_1000']} CPU-s/1000, queued {step['queued_median']}, window {step['answer_window_median']} (unsaved {step['answers_unsaved_median']}), switches/refresh {step['context_switches_per_refresh']}, saves/sync {step['saves_per_sync']}, lost {step['lost']}")
                roles = step["per_thread_role"] or {}
                log("  CPU ms per refresh by thread: " + ", ".join(
                    f"{name} {r['cpu_ms_per_refresh']}" for name, r in list(roles.items())[:6]))
            res["modes"][mode] = {"steps": steps}
        if have_gen:
            generator_runs("after")
        if have_wrk:
            for ae in (None, CURL_ACCEPT_ENCODING):
                log(f"wrk again, Accept-Encoding {ae or '(none)'}")
                res["wrk"].append(run_wrk(site, a.max_in_flight, a.wrk_seconds, ae))
    finally:
        site.stop()

    def wrk_rate(ae):
        r = [w["requests_per_s"] for w in res["wrk"] if w["accept_encoding"] == ae and w["requests_per_s"]]
        return (statistics.mean(r) if r else None), r
    plain, plain_all = wrk_rate(None)
    comp, comp_all = wrk_rate(CURL_ACCEPT_ENCODING)

    def gen_figures(mode, save=False):
        # A --save run whose saves failed (no RENAME_EXCHANGE here) did less than a save: left out.
        runs = [g for g in res["generator"] if g["accept_encoding"] == gen_ae[mode] and g.get("refreshes_per_s")
                and bool(g.get("save")) == save and not g.get("save_errors")]
        rate = statistics.mean(g["refreshes_per_s"] for g in runs) if runs else None
        cpu = [g["cpu_s_per_1000"] for g in runs if g["cpu_s_per_1000"]]
        return rate, (round(statistics.mean(cpu), 3) if cpu else None), runs
    for mode, ae, _ in modes:
        steps = res["modes"][mode]["steps"]
        best = max(steps, key=lambda s: s["refreshes_per_s"]) if steps else None
        unsat = [s for s in steps if not s["saturated"]]
        same = comp if ae is None else plain
        gen, gen_cpu, gen_runs = gen_figures(mode)
        gen_save, gen_save_cpu, gen_save_runs = gen_figures(mode, save=True)
        res["modes"][mode]["summary"] = {
            "max_refreshes_per_s": best["refreshes_per_s"] if best else None,
            "at_interval": best["interval"] if best else None,
            # The headline ratio (issue 11: >= 0.7): the raw generator doing the
            # same two requests per refresh on the same site in the same run.
            "generator_refreshes_per_s": round(gen, 1) if gen else None,
            "generator_refreshes_per_s_runs": [g["refreshes_per_s"] for g in gen_runs],
            "generator_cpu_s_per_1000": gen_cpu,
            "vs_generator": round(best["refreshes_per_s"] / gen, 3) if best and gen else None,
            # Secondary: the generator also writing each refreshed file (--save).
            "generator_save_refreshes_per_s": round(gen_save, 1) if gen_save else None,
            "generator_save_refreshes_per_s_runs": [g["refreshes_per_s"] for g in gen_save_runs],
            "generator_save_cpu_s_per_1000": gen_save_cpu,
            "vs_generator_save": round(best["refreshes_per_s"] / gen_save, 3) if best and gen_save else None,
            "sessiond_requests_per_s_at_max": round(2 * best["refreshes_per_s"], 1) if best else None,
            "vs_plain_wrk": round(2 * best["refreshes_per_s"] / plain, 3) if best and plain else None,
            "vs_wrk_same_accept_encoding": round(2 * best["refreshes_per_s"] / same, 3) if best and same else None,
            "cpu_s_per_1000_unsaturated": unsat[0]["cpu_s_per_1000"] if unsat else None,
            "cpu_s_per_1000_at_max": best["cpu_s_per_1000"] if best else None,
            "lost": sum(s["lost"] for s in steps),
        }
    res["wrk_summary"] = {"plain": plain, "plain_runs": plain_all, "accept_encoding_like_sessiond": comp,
                          "accept_encoding_runs": comp_all}
    for mode, _, _ in modes:
        steps = res["modes"][mode]["steps"]
        rows = [[s["interval"], f"{s['offered_per_s']:.0f}", s["refreshes_per_s"], s["site_requests_per_s"],
                 "yes" if s["saturated"] else "no", s["cpu_s_per_1000"],
                 fmt(TARGETS["cpu_s_per_1000"] / s["cpu_s_per_1000"]) if s["cpu_s_per_1000"] else "-",
                 s["sessiond_cores"], s["fakesite_cores"], s["fakesite_cpu_ms_per_request"],
                 s["load"]["other_processes_cores"], s["lost"]] for s in steps]
        table(f"throughput, {mode} ({n} sessions, max_in_flight {a.max_in_flight}, fake site {site.threads} threads)",
              ["interval", "offered/s", "refreshes/s", "site req/s", "saturated", "CPU-s/1000",
               "target 0.4 / measured", "sessiond cores", "fakesite cores", "fakesite ms/req", "other cores", "lost"],
              rows)
    rows = []
    for mode, _, _ in modes:
        sm = res["modes"][mode]["summary"]
        rows.append([f"raw generator ({gen_ae[mode]}), -c{a.max_in_flight}, {a.generator_sessions} sessions",
                     fmt(sm["generator_refreshes_per_s"], 0),
                     ", ".join(fmt(r, 0) for r in sm["generator_refreshes_per_s_runs"]),
                     fmt(sm["generator_cpu_s_per_1000"], 3),
                     ", ".join(fmt(g["load"]["other_processes_cores"]) for g in gen_figures(mode)[2]), "-"])
        rows.append([f"raw generator --save ({gen_ae[mode]}): also writes each refreshed file",
                     fmt(sm["generator_save_refreshes_per_s"], 0),
                     ", ".join(fmt(r, 0) for r in sm["generator_save_refreshes_per_s_runs"]),
                     fmt(sm["generator_save_cpu_s_per_1000"], 3),
                     ", ".join(fmt(g["load"]["other_processes_cores"]) for g in gen_figures(mode, True)[2]),
                     f"{fmt(sm['vs_generator_save'], 3)} (secondary)"])
        best = max(res["modes"][mode]["steps"], key=lambda st: st["refreshes_per_s"], default=None)
        rows.append([f"sessiond {mode}, at {sm['at_interval']}", fmt(sm["max_refreshes_per_s"], 0), "-",
                     fmt(sm["cpu_s_per_1000_at_max"], 3), fmt(best["load"]["other_processes_cores"]) if best else "-",
                     f"{fmt(sm['vs_generator'], 3)} (target {TARGETS['vs_generator']})"])
    table("raw generator comparison (same two requests per refresh, same fake site, same run)",
          ["what", "refreshes/s", "runs", "CPU-s/1000", "other cores", "sessiond / generator"], rows)
    rows = [[f"wrk -t2 -c{a.max_in_flight} GET /pwa (no Accept-Encoding)", fmt(plain, 0),
             ", ".join(fmt(r, 0) for r in plain_all)],
            [f"wrk -t2 -c{a.max_in_flight} GET /pwa, Accept-Encoding: {CURL_ACCEPT_ENCODING}", fmt(comp, 0),
             ", ".join(fmt(r, 0) for r in comp_all)]]
    for mode, _, _ in modes:
        sm = res["modes"][mode]["summary"]
        rows.append([f"sessiond {mode}: 2 x {fmt(sm['max_refreshes_per_s'], 0)} refreshes/s at {sm['at_interval']}",
                     fmt(sm["sessiond_requests_per_s_at_max"], 0),
                     f"vs plain wrk {fmt(sm['vs_plain_wrk'], 3)}, vs wrk with the same Accept-Encoding "
                     f"{fmt(sm['vs_wrk_same_accept_encoding'], 3)} (secondary); refreshes/s / 2000 = "
                     f"{fmt(sm['max_refreshes_per_s'] / 2000 if sm['max_refreshes_per_s'] else None, 3)}"])
    table("wrk comparison, one static request (secondary; same fake site, same run)",
          ["what", "requests/s", "detail"], rows)
    write_results("throughput", res)
    return res


# ---------------------------------------------------------------- start-up, latency, lateness (100k)


def bench_scale(ctx, with_latency):
    """Start-up with N existing (recently refreshed) files, new-file latency and
    refresh lateness while N are registered, then shutdown."""
    a = ctx.args
    n = a.scale_sessions
    site = ctx.shared_site()
    fx = ctx.fixture(n, steady=True)
    if time.monotonic() - fx.get("spread_at", 0) > 10:
        # Spread again: since the last spread (e.g. the memory run), time went on
        # and some files would start overdue (a catch-up burst, not the steady state).
        cnt, secs = spread_keepalive(fx["dir"], parse_dur(a.interval))
        log(f"spread lastRefresh of {cnt} files over the last {a.interval} again in {secs:.1f}s")
    lost0 = site.stats()["lost"]
    res = {"machine": ctx.machine, "sessions": n, "interval": a.interval, "log_level": "info",
           "file_bytes_mean": round(fx["file_bytes"])}

    d = Daemon(ctx, site, fx["dir"], a.interval, "30m", log_level="info", life_s=900, name=f"scale-{n}")
    w = CpuWindow([d.pid, site.pid])
    ready = d.wait_ready(180)
    rss_ready = d.stats()["rss"]

    def all_scheduled():
        m = d.metrics()
        return m.get('sessiond_sessions{state="pending"}', 1) == 0 and m
    sched = wait_until(all_scheduled, 180, 0.1)
    scheduled_s = time.monotonic() - d.t_spawn
    res["startup"] = {"ready_s": round(ready, 3), "all_scheduled_s": round(scheduled_s, 2) if sched else None,
                      "rss_at_ready_bytes": rss_ready, "load": w.close()}
    log(f"ready after {ready:.2f}s, every session scheduled after {scheduled_s:.2f}s")

    if with_latency:
        # Let the start-up work (every file read once on the io pool) settle first.
        time.sleep(a.scale_settle)
        p0, r0, t0 = d.stats(), d.success(), time.monotonic()
        res["latency"] = measure_latency(ctx, d, site, fx["mobiles"])
        p1, r1, t1 = d.stats(), d.success(), time.monotonic()
        res["steady"] = {"seconds": round(t1 - t0, 1), "refreshes": r1 - r0,
                         "refreshes_per_s": round((r1 - r0) / (t1 - t0), 1),
                         "offered_per_s": round(n / (0.9 * parse_dur(a.interval)), 1),
                         "cpu_s_per_1000": round((p1["cpu_s"] - p0["cpu_s"]) / (r1 - r0) * 1000, 3) if r1 > r0 else None,
                         "rss_bytes": p1["rss"]}

    time.sleep(1)
    s = d.stats()
    m = d.metrics()
    stop_s, rc = d.stop(180)
    lost = site.stats()["lost"] - lost0
    shut = [e for e in d.events({"shutdown"}) if "duration_ms" in e]
    res["shutdown"] = {"seconds": round(stop_s, 3) if stop_s is not None else None, "exit": rc,
                       "drain_log_ms": shut[-1].get("duration_ms") if shut else None,
                       "drained": shut[-1].get("drained") if shut else None}
    res["rss_bytes_end"] = s["rss"]
    res["peak_rss_bytes"] = s["hwm"]
    res["refreshes"] = d.success(m)
    res["lost"] = lost
    log(f"shutdown {fmt(stop_s)}s exit {rc}, lost {lost}")
    return res


def fetch_sessions(d, ids, threads=8):
    """GET /sessions/{id} for each id -> {id: (fetch time, json or None)}."""
    def one(i):
        t = time.time()
        try:
            st, body, _ = http("GET", f"{d.url}/sessions/{i}", timeout=10)
            return i, (t, json.loads(body) if st == 200 else None)
        except (OSError, ValueError):
            return i, (t, None)
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return dict(ex.map(one, ids))


def measure_latency(ctx, d, site, fixture_mobiles):
    a = ctx.args
    k = a.latency_files
    stage = os.path.join(ctx.work, "stage")
    os.makedirs(stage, exist_ok=True)
    _, mobiles = site.seed(stage, k, a.localstorage_bytes)
    directory = d.cmd[d.cmd.index("--sessions-dir") + 1]

    # GET /status at this size (the whole table; the admin API gives up after 5 s).
    t = time.monotonic()
    try:
        st, body, _ = http("GET", d.url + "/status", timeout=60)
        status_probe = {"http_status": st, "seconds": round(time.monotonic() - t, 2), "bytes": len(body)}
    except OSError as e:
        status_probe = {"http_status": None, "seconds": round(time.monotonic() - t, 2), "error": str(e)}
    log(f"GET /status with {len(fixture_mobiles)} sessions: {status_probe}")

    # Lateness: a random sample of sessions, their nextRefresh now and lastRefresh later.
    rng = random.Random(7)
    sample = rng.sample(fixture_mobiles, min(a.lateness_sample, len(fixture_mobiles)))
    t_snap0 = time.time()
    snap0 = fetch_sessions(d, sample)
    snap_s = time.time() - t_snap0
    window_end = t_snap0 + a.lateness_window
    due = {}
    for mob, (tf, j) in snap0.items():
        nr = parse_iso(j.get("nextRefresh")) if j else None
        if nr is not None and tf + 0.2 < nr < window_end - 2:
            due[mob] = (nr, j.get("refreshCount", 0))
    log(f"sampled {len(sample)} sessions in {snap_s:.1f}s; {len(due)} refreshes due before the window ends")

    # New files, one every gap, renamed into place as the login bot does.
    writes, planned = {}, {}
    cpu_w = CpuWindow([d.pid, site.pid])
    for mob in mobiles:
        name = f"session-{mob}.json"
        os.utime(os.path.join(stage, name))  # written just now, as the bot's file would be
        os.replace(os.path.join(stage, name), os.path.join(directory, name))
        writes[mob] = time.time()
        time.sleep(a.latency_gap)
        # The delay sessiond planned for it (nextRefresh), while it is still waiting.
        try:
            st, body, _ = http("GET", f"{d.url}/sessions/{mob}", timeout=5)
            if st == 200:
                j = json.loads(body)
                if j.get("lastRefresh") is None and j.get("nextRefresh"):
                    planned[mob] = parse_iso(j["nextRefresh"])
        except (OSError, ValueError):
            pass
    # Every new file's first refresh (bounded wait).
    deadline = time.monotonic() + a.latency_wait
    got = {}
    while time.monotonic() < deadline:
        snap = fetch_sessions(d, [m for m in mobiles if m not in got])
        for mob, (_, j) in snap.items():
            lr = parse_iso(j.get("lastRefresh")) if j else None
            if lr:
                got[mob] = lr
        if len(got) == len(mobiles):
            break
        time.sleep(1)
    rest = window_end - time.time()
    if rest > 0:
        time.sleep(rest)
    load = cpu_w.close()
    t_snap1 = time.time()
    snap1 = fetch_sessions(d, list(due))
    late, missing = [], 0
    for mob, (nr, cnt0) in due.items():
        _, j = snap1.get(mob, (None, None))
        lr = parse_iso(j.get("lastRefresh")) if j else None
        if j and j.get("refreshCount", 0) > cnt0 and lr is not None:
            late.append(lr - nr)
        else:
            missing += 1
            late.append(t_snap1 - nr)  # not refreshed yet: at least this late
    # Log events of the new files: detection (session_added) and refresh_ok.
    added, ok = {}, {}
    for e in d.events({"session_added", "refresh_ok"}):
        sid = e.get("session")
        if sid in writes:
            t = parse_iso(e["ts"])
            if e["event"] == "session_added":
                added.setdefault(sid, t)
            else:
                ok.setdefault(sid, t)
    t_end = time.time()
    # A new file not refreshed by the end counts as at least (end - write).
    lat = [((got[m] if m in got else t_end) - writes[m]) * 1000 for m in mobiles]
    lat_ok = [(ok[m] - writes[m]) * 1000 for m in mobiles if m in ok]
    detect = [(added[m] - writes[m]) * 1000 for m in mobiles if m in added]
    spread = [(planned[m] - added[m]) * 1000 for m in mobiles if m in planned and m in added]
    engine = [((added[m] - writes[m]) + (got[m] - planned[m])) * 1000
              for m in mobiles if m in planned and m in added and m in got]

    def dist(v):
        return {"p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99), "max": max(v) if v else None,
                "samples": len(v)}
    return {
        "new_files": k,
        "gap_s": a.latency_gap,
        "first_refreshed": len(got),
        "not_refreshed_by_end": len(mobiles) - len(got),
        "new_file_to_refresh_ms": dist(lat),
        "new_file_to_refresh_ok_log_ms": dist(lat_ok),
        "detect_ms": dist(detect),
        "planned_delay_ms": dist(spread),
        "engine_ms_without_planned_delay": dist(engine),
        "lateness_window_s": a.lateness_window,
        "lateness_sample": len(sample),
        "lateness_not_refreshed_at_end": missing,
        "lateness_s": dist(late),
        "sample_fetch_s": round(snap_s, 2),
        "status_endpoint": status_probe,
        "load": load,
    }


def report_scale(res, with_latency):
    st = res["startup"]
    rows = [["start-up until ready (GET /readyz 200)", fmt(st["ready_s"], 2) + " s", "-"],
            ["start-up until every session scheduled", fmt(st["all_scheduled_s"], 2) + " s", "-"],
            ["shutdown (SIGTERM until exit)", fmt(res["shutdown"]["seconds"], 2) + " s", f"exit {res['shutdown']['exit']}"],
            ["RSS at ready", f"{st['rss_at_ready_bytes'] / 2**20:.1f} MiB", "-"],
            ["lost sessions", res["lost"], "target 0"]]
    if with_latency:
        L = res["latency"]
        p50 = L["new_file_to_refresh_ms"]["p50"]
        rows += [
            ["new file -> first refresh p50", fmt(p50, 0) + " ms", "target 50 ms / measured = " + fmt(50 / p50 if p50 else None, 3)],
            ["new file -> first refresh p99", fmt(L["new_file_to_refresh_ms"]["p99"], 0) + " ms",
             f"{L['not_refreshed_by_end']} of {L['new_files']} not refreshed by the end (counted as end - write)"],
            ["  of which: detection (inotify -> session_added) p50/p99", f"{fmt(L['detect_ms']['p50'], 0)} / {fmt(L['detect_ms']['p99'], 0)} ms", "-"],
            ["  of which: planned first delay p50/max", f"{fmt(L['planned_delay_ms']['p50'], 0)} / {fmt(L['planned_delay_ms']['max'], 0)} ms",
             f"{L['planned_delay_ms']['samples']} files seen waiting with a planned delay"],
            ["  without the planned delay p50/p99", f"{fmt(L['engine_ms_without_planned_delay']['p50'], 0)} / {fmt(L['engine_ms_without_planned_delay']['p99'], 0)} ms", "-"],
            ["  log: new file -> refresh_ok p50/p99", f"{fmt(L['new_file_to_refresh_ok_log_ms']['p50'], 0)} / {fmt(L['new_file_to_refresh_ok_log_ms']['p99'], 0)} ms", "-"],
            ["lateness against schedule p50", fmt(L["lateness_s"]["p50"], 3) + " s",
             f"{L['lateness_s']['samples']} refreshes (sample of {L['lateness_sample']} sessions)"],
            ["lateness against schedule p99", fmt(L["lateness_s"]["p99"], 3) + " s",
             "target 1 s / measured = " + fmt(1 / L["lateness_s"]["p99"] if L["lateness_s"]["p99"] and L["lateness_s"]["p99"] > 0 else None, 3)],
            ["lateness max", fmt(L["lateness_s"]["max"], 3) + " s", f"{L['lateness_not_refreshed_at_end']} not refreshed by the end"],
            ["steady refreshes/s (offered)", f"{res['steady']['refreshes_per_s']} ({res['steady']['offered_per_s']})", "-"],
            ["CPU-s per 1,000 refreshes at this size", fmt(res["steady"]["cpu_s_per_1000"], 3),
             "target 0.4 / measured = " + fmt(0.4 / res["steady"]["cpu_s_per_1000"] if res["steady"]["cpu_s_per_1000"] else None, 3)],
            ["GET /status (all sessions)", f"HTTP {L['status_endpoint'].get('http_status')} after {L['status_endpoint']['seconds']} s", "-"],
        ]
    table(f"{res['sessions']} sessions (interval {res['interval']}, log level {res['log_level']})",
          ["figure", "measured", "ratio / note"], rows)


def bench_startup(ctx):
    res = bench_scale(ctx, with_latency=False)
    report_scale(res, False)
    write_results("startup", res)
    return res


def bench_latency(ctx):
    res = bench_scale(ctx, with_latency=True)
    report_scale(res, True)
    write_results("latency", res)
    # The same run measured start-up and shutdown with N files.
    write_results("startup", {k: v for k, v in res.items() if k != "latency"})
    return res


# ---------------------------------------------------------------- browser steps (issue 10)

SHELL_BIN = "/usr/lib/chromium/chromium-headless-shell"
CHROMIUM_BIN = "/usr/lib/chromium/chromium"
BROWSER_TARGETS = {
    "cpu_s_per_step": 0.2,            # <= 0.2 CPU-s per check+refresh (browser tree + sessiond)
    "sessions_per_5min": 2500,        # >= 2,500 sessions per 5-minute interval on 2 cores, 0 lost
    "static_share": 0.05,             # static bytes per step after warm-up <= 5% of the bundle
    "pss_bytes": 300 * 2**20,         # PSS of all Chromium processes <= 300 MB at the default concurrency
}


def proc_table():
    """{pid: (ppid, pgrp, cpu_s incl. reaped children)} of every process, from /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime stime cutime cstime: a reaped child's time is in its reaper's cutime/cstime.
        out[int(name)] = (int(fields[1]), int(fields[2]),
                          sum(int(x) for x in fields[11:15]) / CLK_TCK)
    return out


def descendants(root, table):
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def tree_cpu(root):
    """CPU-s of root and every descendant, live or exited: each process's own
    time plus its reaped children's (cutime/cstime). Counts the pooled browser
    with its renderers, restarts included (a reaped browser's tree is in
    sessiond's cutime), and the exec steps' node + Chromium."""
    t = proc_table()
    if root not in t:
        return None
    return sum(t[p][2] for p in descendants(root, t) if p in t)


def become_subreaper():
    """Orphans below us (a renderer whose browser exited before reaping it, a
    detached crashpad handler) are reparented to us instead of init, so their
    CPU is counted (adopted_cpu) and none is left unseen."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def adopted_cpu():
    """CPU-s of the processes orphaned below us: the reaped ones from our
    children's times, the live ones (with their subtrees) from /proc."""
    me = os.getpid()
    ours = {p.pid for p in _children}
    t = proc_table()
    for pid, (ppid, _, _) in t.items():
        if ppid == me and pid not in ours:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    tm = os.times()
    total = tm.children_user + tm.children_system
    t = proc_table()
    for pid, (ppid, _, _) in t.items():
        if ppid == me and pid not in ours:
            total += sum(t[p][2] for p in descendants(pid, t) if p in t)
    return total


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pooled_browser_pid(daemon_pid):
    """The pool's browser: a child of sessiond with --remote-debugging-pipe (its pid is its group id)."""
    for pid, (ppid, _, _) in proc_table().items():
        if ppid == daemon_pid and "--remote-debugging-pipe" in cmdline(pid):
            return pid
    return None


def group_memory(pgid):
    """(processes, sum of Pss, sum of Rss) in bytes over the process group, from smaps_rollup."""
    n = pss = rss = 0
    for pid, (_, pgrp, _) in proc_table().items():
        if pgrp != pgid:
            continue
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
            n += 1
        except OSError:
            pass
    return n, pss, rss


def chromium_left(marker, groups=()):
    """Chromium processes of this run: their command line names this run's temp
    dir, or they are in a process group of a pooled browser seen in the run."""
    return [pid for pid, (_, pgrp, _) in proc_table().items()
            if "chrom" in cmdline(pid) and (marker in cmdline(pid) or pgrp in groups)]


def hist(m, name):
    """{le: cumulative count}, sum, count of a Prometheus histogram from parsed metrics."""
    buckets = {}
    for k, v in m.items():
        mm = re.fullmatch(re.escape(name) + r'_bucket\{le="([^"]+)"\}', k)
        if mm:
            buckets[float(mm.group(1))] = v
    return buckets, m.get(name + "_sum", 0.0), m.get(name + "_count", 0.0)


def hist_delta_quantile(m0, m1, name, q):
    """The upper bound of the bucket holding quantile q over the window, and the mean."""
    b0, s0, c0 = hist(m0, name)
    b1, s1, c1 = hist(m1, name)
    n = c1 - c0
    if n <= 0:
        return None, None
    for le in sorted(b1):
        if b1[le] - b0.get(le, 0) >= q * n:
            return le, (s1 - s0) / n
    return None, (s1 - s0) / n


def metric_sum(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def status_entries(d):
    st, body, _ = http("GET", d.url + "/status", timeout=20)
    if st != 200:
        return {}
    j = json.loads(body)
    items = j if isinstance(j, list) else next((v for v in j.values() if isinstance(v, list)), [])
    return {e["mobile"]: e for e in items if isinstance(e, dict) and "mobile" in e}


def write_browser_profile(path, settle=None, exec_cmd=None, no_rate_limit=False):
    """profiles/baman24.json (the browser profile as shipped: max_concurrent 2,
    settle 100 ms, rate limit 10/s, timeout 30 s), optionally with another
    settle; or its check replaced by an exec step (launch per step)."""
    with open(os.path.join(ROOT, "profiles", "baman24.json")) as f:
        prof = json.loads("\n".join(line for line in f if not line.lstrip().startswith("//")))
    prof["description"] = "bench copy of profiles/baman24.json"
    if settle is not None:
        prof["check"]["browser"]["settle"] = settle
    if no_rate_limit:
        # Politeness toward the real site, not a limit of the engine.
        prof.pop("rate_limit", None)
    if exec_cmd:
        # Commands get a clean environment: pass the two the script reads.
        prof["check"] = {"exec": exec_cmd, "timeout": "60s", "env": ["NODE_PATH", "CHROMIUM_PATH"]}
        prof.pop("browser", None)
        prof["exec_max_concurrent"] = 2
    with open(path, "w") as f:
        json.dump(prof, f, indent=2)
    return prof


def browser_case(ctx, spec):
    """One daemon on its own client-rendered fake site: N sessions at interval I
    in their steady state, warm-up, then a measured window."""
    a = ctx.args
    name, n, interval = spec["name"], spec["sessions"], spec["interval"]
    ival = parse_dur(interval)
    idle = f"{int(2 * ival)}s"
    tmp = os.path.join(ctx.work, f"tmp-{name}")  # TMPDIR: this run's Chromium profiles, to find them
    os.makedirs(tmp)
    site = FakeSite(ctx, idle, 32, life_s=a.browser_warmup + spec["window"] + 600,
                    extra_args=["--client-rendered", "--bundle-bytes", str(spec["bundle"])])
    res = {"name": name, "what": spec["what"], "browser": spec.get("browser"), "bundle_bytes": spec["bundle"],
           "sessions": n, "interval": interval, "site_idle_timeout": idle, "settle": spec.get("settle"),
           "offered_steps_per_s": round(n / (ival * 0.95), 2)}  # jitter 0.1: the mean delay is 0.95 x interval
    d = None
    groups = set()  # process groups of the pooled browsers seen
    try:
        directory = os.path.join(ctx.work, f"sessions-{name}")
        os.makedirs(directory, mode=0o700)
        _, mobiles = site.seed(directory, n, a.localstorage_bytes)
        spread_keepalive(directory, ival)
        profile = os.path.join(ctx.work, f"profile-{name}.json")
        write_browser_profile(profile, settle=spec.get("settle"), exec_cmd=spec.get("exec"),
                              no_rate_limit=spec.get("no_rate_limit", False))
        extra = ["--browser", spec["browser"]] if spec.get("browser") and not spec.get("exec") else []
        env = {"TMPDIR": tmp, "NODE_PATH": ctx.node_path, "CHROMIUM_PATH": spec.get("browser") or SHELL_BIN}
        d = Daemon(ctx, site, directory, interval, idle, log_level="info", name=f"browser-{name}",
                   life_s=a.browser_warmup + spec["window"] + 300, profile=profile, extra_args=extra, env=env)
        d.wait_ready(60)
        time.sleep(a.browser_warmup)
        m0, s0, c0, o0 = d.metrics(), site.stats(), tree_cpu(d.pid), adopted_cpu()
        own0, site0 = proc_stats(d.pid)["cpu_s"], proc_stats(site.pid)["cpu_s"]
        w = CpuWindow([d.pid, site.pid])
        t0 = time.monotonic()
        wall0 = time.time()
        # Samples: the pool's gauges every 2 s, /status every 5 s (lateness), group PSS every 10 s.
        pss_metric, pss_own, queued = [], [], []
        pending = {}      # mobile -> (nextRefresh, refreshCount) while it waits
        late = []
        last_status = 0.0
        last_pss = 0.0
        end = t0 + spec["window"]
        while time.monotonic() < end:
            now = time.monotonic()
            m = d.metrics()
            if m.get("sessiond_browser_proportional_memory_bytes"):
                pss_metric.append(m["sessiond_browser_proportional_memory_bytes"])
            queued.append(m.get("sessiond_browser_queued", 0) if not spec.get("exec") else 0)
            if now - last_pss >= 10 and not spec.get("exec"):
                bp = pooled_browser_pid(d.pid)
                if bp:
                    groups.add(bp)
                    pss_own.append(group_memory(bp)[1])
                last_pss = now
            if now - last_status >= 5:
                for mob, e in status_entries(d).items():
                    cnt, nr = e.get("refreshCount", 0), parse_iso(e.get("nextRefresh"))
                    if mob in pending and cnt > pending[mob][1] and e.get("lastRefresh"):
                        late.append(parse_iso(e["lastRefresh"]) - pending[mob][0])
                    if nr is not None and not e.get("refreshing"):
                        pending[mob] = (nr, cnt)
                last_status = now
            time.sleep(min(2.0, max(0.0, end - time.monotonic())))
        m1, s1, c1, o1 = d.metrics(), site.stats(), tree_cpu(d.pid), adopted_cpu()
        own1, site1 = proc_stats(d.pid)["cpu_s"], proc_stats(site.pid)["cpu_s"]
        dt = time.monotonic() - t0
        wall1 = time.time()
        load = w.close()
        # Steps in the window: every finished check (one browser step, or one exec of the script).
        if spec.get("exec"):
            steps = metric_sum(m1, "sessiond_refresh_total") - metric_sum(m0, "sessiond_refresh_total")
        else:
            steps = metric_sum(m1, "sessiond_browser_steps_total") - metric_sum(m0, "sessiond_browser_steps_total")
        ok = d.success(m1) - d.success(m0)
        # sessiond's tree plus what was orphaned out of it (and adopted by us) in the window.
        orphans = o1 - o0
        tree = (c1 - c0 + orphans) if c0 is not None and c1 is not None else None
        busy_minus_site = load["machine_busy_cores"] * dt - (site1 - site0)
        durs = [e["duration_ms"] / 1000 for e in d.events({"refresh_ok"})
                if "duration_ms" in e and wall0 <= parse_iso(e["ts"]) <= wall1]
        hq, hmean = hist_delta_quantile(m0, m1, "sessiond_browser_step_duration_seconds", 0.99)
        app0, app1 = s0.get("app", {}), s1.get("app", {})
        static = app1.get("bundle_bytes_served", 0) - app0.get("bundle_bytes_served", 0)
        cpu_step = tree / steps if tree is not None and steps else None
        res.update({
            "window_s": round(dt, 1),
            "steps": int(steps),
            "refresh_ok": int(ok),
            "steps_per_s": round(steps / dt, 2),
            "transient_errors": int(m1.get('sessiond_refresh_total{result="transient_error"}', 0)),
            "logged_out": int(m1.get('sessiond_refresh_total{result="logged_out"}', 0)),
            "browser_restarts": int(metric_sum(m1, "sessiond_browser_restarts_total")),
            "cpu_s_tree": round(tree, 2) if tree is not None else None,
            "cpu_s_sessiond_own": round(own1 - own0, 2),
            "cpu_s_orphaned_processes": round(orphans, 2),
            "cpu_s_per_step": round(cpu_step, 4) if cpu_step else None,
            "cpu_s_per_step_sessiond_own": round((own1 - own0) / steps, 4) if steps else None,
            "cpu_s_per_step_machine_minus_site": round(busy_minus_site / steps, 4) if steps else None,
            "tree_cores": round(tree / dt, 2) if tree is not None else None,
            "fakesite_cores": round((site1 - site0) / dt, 2),
            # CPU-bound capacity: 2 cores' worth of CPU-s in 5 minutes / CPU-s per step.
            "sessions_per_5min_2_cores": int(2 * 300 / cpu_step) if cpu_step else None,
            "bundle_fetches": app1.get("bundle_fetches", 0) - app0.get("bundle_fetches", 0),
            "bundle_not_modified": app1.get("bundle_not_modified", 0) - app0.get("bundle_not_modified", 0),
            "api_calls": app1.get("api_calls", 0) - app0.get("api_calls", 0),
            "static_bytes_per_step": round(static / steps) if steps else None,
            "static_share_of_bundle": round(static / steps / spec["bundle"], 4) if steps else None,
            "step_hist_p99_le_s": hq,
            "step_mean_s": round(hmean, 3) if hmean else None,
            "refresh_ok_duration_s": {"p50": pct(durs, 50), "p99": pct(durs, 99), "max": max(durs) if durs else None,
                                      "samples": len(durs)},
            "lateness_s": {"p50": pct(late, 50), "p99": pct(late, 99), "max": max(late) if late else None,
                           "samples": len(late)},
            "queued_max": max(queued) if queued else None,
            "pss_metric_bytes_max": max(pss_metric) if pss_metric else None,
            "pss_metric_bytes_median": statistics.median(pss_metric) if pss_metric else None,
            "pss_smaps_bytes_max": max(pss_own) if pss_own else None,
            "load": load,
        })
        # CpuWindow's "other" counts the browser tree as other; without it, the rest of the machine.
        load["other_than_bench_cores"] = round(max(0.0, load["machine_busy_cores"] - res["tree_cores"] -
                                                   res["fakesite_cores"]), 2) if tree is not None else None
        if hmean and not spec.get("exec"):
            # Wall-bound capacity of the pool: its slots, each busy for the mean step (settle included).
            slots = 2
            res["slot_bound_sessions_per_5min"] = int(slots * 300 / hmean)
        log(f"{name}: {steps:.0f} steps in {dt:.0f}s ({steps / dt:.2f}/s), {fmt(cpu_step, 3)} CPU-s/step "
            f"(machine busy - site: {fmt(res['cpu_s_per_step_machine_minus_site'], 3)}), static "
            f"{res['static_bytes_per_step']} B/step, orphans {orphans:.1f} CPU-s, p99 refresh {fmt(pct(durs, 99), 2)} s, lateness p99 "
            f"{fmt(pct(late, 99), 2)} s, machine busy {load['machine_busy_cores']} cores")
        if not spec.get("exec") and spec.get("idle_pss"):
            # Idle pool: the sessions go away (files removed, then logged out at the site: not lost).
            for f in os.listdir(directory):
                os.unlink(os.path.join(directory, f))
            wait_until(lambda: (lambda m: metric_sum(m, "sessiond_sessions") == 0 and
                                m.get("sessiond_browser_in_flight", 1) == 0)(d.metrics()), 30, 0.25)
            site.logout_many(mobiles)
            time.sleep(3)
            samples = []
            for _ in range(3):
                bp = pooled_browser_pid(d.pid)
                samples.append((d.metrics().get("sessiond_browser_proportional_memory_bytes"),
                                group_memory(bp) if bp else (0, 0, 0)))
                time.sleep(1)
            res["idle_pss_metric_bytes"] = statistics.median(s[0] or 0 for s in samples)
            res["idle_pss_smaps_bytes"] = statistics.median(s[1][1] for s in samples)
            res["idle_rss_smaps_bytes"] = statistics.median(s[1][2] for s in samples)
            res["idle_processes"] = samples[-1][1][0]
        else:
            site.logout_many(mobiles)
        stop_s, rc = d.stop(60)
        d = None
        res["shutdown_s"] = round(stop_s, 2) if stop_s is not None else None
        res["exit"] = rc
        left = wait_until(lambda: not chromium_left(tmp, groups), 10, 0.2)
        res["chromium_left_after_stop"] = 0 if left else len(chromium_left(tmp, groups))
        res["lost"] = site.stats()["lost"]
        res["stale_cookie_requests"] = site.stats()["stale_cookie_requests"]
    finally:
        if d is not None:
            d.stop(30)
        site.stop()
        for pid in chromium_left(tmp, groups):  # ours only: their command line names this run's temp dir
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return res


def http_contrast():
    """The plain HTTP profile's CPU per refresh, from the last throughput run (another run)."""
    try:
        with open(os.path.join(RESULTS_DIR, "throughput.json")) as f:
            tp = json.load(f)
        sm = tp["modes"]["identity"]["summary"]
        return {"cpu_s_per_refresh": sm["cpu_s_per_1000_unsaturated"] / 1000,
                "source": "bench/results/throughput.json, finished " + tp.get("finished_at", "?")}
    except (OSError, KeyError, TypeError, ValueError):
        return None


def bench_browser(ctx):
    a = ctx.args
    subreaper = become_subreaper()
    if not subreaper:
        log("PR_SET_CHILD_SUBREAPER failed: the CPU of orphaned Chromium processes is not counted")
    node_dir = os.path.join(ctx.build, "node", "node_modules")
    ctx.node_path = node_dir
    have_pw = os.path.isdir(os.path.join(node_dir, "playwright-core")) and shutil.which("node")
    script = os.path.join(ROOT, "bench", "playwright_check.js")
    big = a.bundle_bytes
    cap_n = a.browser_sessions
    cap_i = a.browser_interval
    specs = [
        {"name": "pool-shell-1mb-capacity",
         "what": "pool, headless shell, 1 MB bundle, profile as shipped, at the target rate",
         "browser": SHELL_BIN, "bundle": big, "sessions": cap_n, "interval": cap_i,
         "window": a.browser_window},
        {"name": "pool-shell-1mb", "what": "pool, headless shell, 1 MB bundle, profile as shipped, lower rate",
         "browser": SHELL_BIN, "bundle": big, "sessions": a.variant_sessions, "interval": a.variant_interval,
         "window": a.variant_window, "idle_pss": True},
        {"name": "pool-chromium-1mb", "what": "pool, full Chromium, 1 MB bundle, profile as shipped",
         "browser": CHROMIUM_BIN, "bundle": big, "sessions": a.variant_sessions, "interval": a.variant_interval,
         "window": a.variant_window, "idle_pss": True},
        {"name": "pool-shell-tiny", "what": "pool, headless shell, tiny page (default 8 KB bundle), as shipped",
         "browser": SHELL_BIN, "bundle": 8192, "sessions": a.variant_sessions, "interval": a.variant_interval,
         "window": a.variant_window},
    ]
    if have_pw:
        specs.append({"name": "launch-per-step-shell",
                      "what": "exec step: playwright-core launches the headless shell per step, 1 MB bundle",
                      "browser": SHELL_BIN, "bundle": big, "sessions": a.launch_sessions,
                      "interval": a.launch_interval, "window": a.launch_window,
                      "exec": ["node", script, "{file}", "{base_url}"]})
    else:
        log(f"no playwright-core in {node_dir} (see bench/README.md): no launch-per-step comparison")
    only = set(a.browser_cases) if a.browser_cases else None
    res = {"machine": ctx.machine, "chromium": subprocess.run([SHELL_BIN, "--version"], capture_output=True,
                                                              text=True).stdout.strip(),
           "playwright_core": None, "warmup_s": a.browser_warmup, "subreaper": subreaper, "cases": []}
    if have_pw:
        try:
            with open(os.path.join(node_dir, "playwright-core", "package.json")) as f:
                res["playwright_core"] = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            pass
    for spec in specs:
        if only and spec["name"] not in only:
            continue
        log(f"case {spec['name']}: {spec['what']}, {spec['sessions']} sessions at {spec['interval']}")
        try:
            res["cases"].append(browser_case(ctx, spec))
        except Exception as e:  # one case failing must not lose the others' figures
            log(f"case {spec['name']} failed: {e}")
            res.setdefault("failed_cases", []).append({"name": spec["name"], "error": str(e)[:500]})
    res["http_contrast"] = http_contrast()
    report_browser(res)
    write_results("browser", res)
    return res


def report_browser(res):
    cases = {c["name"]: c for c in res["cases"]}
    launch = cases.get("launch-per-step-shell")
    lcpu = launch["cpu_s_per_step"] if launch else None

    def vs_launch(c):
        return fmt(lcpu / c["cpu_s_per_step"], 1) + "x less" if lcpu and c.get("cpu_s_per_step") else "-"
    rows = []
    for c in res["cases"]:
        rows.append([c["name"], c["sessions"], c["interval"], c["offered_steps_per_s"], c["steps_per_s"],
                     fmt(c["cpu_s_per_step"], 3), fmt(c["cpu_s_per_step_sessiond_own"], 3),
                     fmt(c["cpu_s_per_step_machine_minus_site"], 3),
                     fmt(BROWSER_TARGETS["cpu_s_per_step"] / c["cpu_s_per_step"], 2) if c.get("cpu_s_per_step") else "-",
                     vs_launch(c), c["sessions_per_5min_2_cores"], c.get("slot_bound_sessions_per_5min", "-"),
                     fmt(c["static_share_of_bundle"] * 100, 2) + " %" if c["static_share_of_bundle"] is not None else "-",
                     fmt(c["refresh_ok_duration_s"]["p99"], 2), fmt(c["lateness_s"]["p99"], 2),
                     fmt((c["pss_metric_bytes_max"] or 0) / 2**20, 0) if c.get("pss_metric_bytes_max") else "-",
                     c["browser_restarts"], c["lost"], c["load"]["machine_busy_cores"],
                     c["load"].get("other_than_bench_cores")])
    table("browser steps: every case (same run)",
          ["case", "sessions", "interval", "offered/s", "steps/s", "CPU-s/step (tree)", "of it sessiond",
           "machine busy - site", "target 0.2 / measured", "vs launch per step", "sessions/5 min on 2 cores (CPU)",
           "slot-bound sessions/5 min", "static/step", "p99 refresh s", "p99 lateness s", "max PSS MB",
           "browser restarts", "lost", "machine busy cores", "other processes' cores"], rows)

    cap = cases.get("pool-shell-1mb-capacity")
    shipped = cases.get("pool-shell-1mb")
    rows = []
    if cap:
        c = cap
        rows.append(["CPU per check+refresh, headless shell, 1 MB bundle (browser tree + sessiond)",
                     fmt(c["cpu_s_per_step"], 3) + " CPU-s", "<= 0.2",
                     fmt(0.2 / c["cpu_s_per_step"], 2) if c["cpu_s_per_step"] else "-", vs_launch(c)])
    for key, label in (("pool-shell-1mb", "the same, lower rate"),
                       ("pool-chromium-1mb", "full Chromium, 1 MB bundle, as shipped"),
                       ("pool-shell-tiny", "headless shell, tiny page, as shipped")):
        c = cases.get(key)
        if c:
            rows.append([label, fmt(c["cpu_s_per_step"], 3) + " CPU-s", "<= 0.2",
                         fmt(0.2 / c["cpu_s_per_step"], 2) if c["cpu_s_per_step"] else "-", vs_launch(c)])
    if cap:
        c = cap
        rows.append([f"sessions per 5 min on 2 cores: {c['sessions']} sessions at {c['interval']} "
                     f"({c['offered_steps_per_s']}/s offered), {c['lost']} lost",
                     f"{c['steps_per_s']} steps/s achieved; {c['sessions_per_5min_2_cores']} implied by the CPU",
                     ">= 2,500, 0 lost",
                     fmt(c["sessions_per_5min_2_cores"] / 2500, 2) if c["sessions_per_5min_2_cores"] else "-",
                     fmt(c["sessions_per_5min_2_cores"] / launch["sessions_per_5min_2_cores"], 1) + "x"
                     if launch and launch.get("sessions_per_5min_2_cores") and c["sessions_per_5min_2_cores"] else "-"])
        rows.append(["static bytes per step after warm-up (share of the bundle)",
                     f"{c['static_bytes_per_step']} B ({fmt(c['static_share_of_bundle'] * 100, 2)} %), "
                     f"bundle fetched {c['bundle_fetches']}x in {c['steps']} steps",
                     "<= 5 %", fmt(0.05 / c["static_share_of_bundle"], 1) if c["static_share_of_bundle"] else "inf",
                     f"launch per step: {fmt(launch['static_share_of_bundle'] * 100, 0)} %" if launch and launch["static_share_of_bundle"] is not None else "-"])
    if shipped:
        c = shipped
        pss = c.get("pss_metric_bytes_max") or c.get("pss_smaps_bytes_max")
        rows.append(["browser PSS at the default concurrency (2), under load / idle pool",
                     f"{fmt((pss or 0) / 2**20, 0)} MB / {fmt((c.get('idle_pss_metric_bytes') or 0) / 2**20, 0)} MB "
                     f"(smaps: {fmt((c.get('pss_smaps_bytes_max') or 0) / 2**20, 0)} / "
                     f"{fmt((c.get('idle_pss_smaps_bytes') or 0) / 2**20, 0)} MB)",
                     "<= 300 MB", fmt(BROWSER_TARGETS["pss_bytes"] / pss, 2) if pss else "-", "-"])
    if cap:
        c = cap
        pss = c.get("pss_metric_bytes_max")
        rows.append(["browser PSS at the target rate (capacity run)", f"{fmt((pss or 0) / 2**20, 0)} MB", "<= 300 MB",
                     fmt(BROWSER_TARGETS["pss_bytes"] / pss, 2) if pss else "-", "-"])
        rows.append(["p99 refresh duration (refresh_ok, step + queue + file) / step histogram p99 bucket / mean step",
                     f"{fmt(c['refresh_ok_duration_s']['p99'], 2)} s / <= {fmt(c['step_hist_p99_le_s'])} s / "
                     f"{fmt(c['step_mean_s'], 3)} s", "-", "-",
                     f"launch per step: {fmt(launch['refresh_ok_duration_s']['p99'], 2)} s" if launch else "-"])
        rows.append(["lateness against schedule p50 / p99 / max (lastRefresh - planned nextRefresh)",
                     f"{fmt(c['lateness_s']['p50'], 2)} / {fmt(c['lateness_s']['p99'], 2)} / {fmt(c['lateness_s']['max'], 2)} s "
                     f"({c['lateness_s']['samples']} refreshes)", "-", "-", "-"])
    if launch:
        c = launch
        rows.append([f"launch per step (playwright-core {res.get('playwright_core')}, exec): CPU per step",
                     fmt(c["cpu_s_per_step"], 3) + " CPU-s", "<= 0.2",
                     fmt(0.2 / c["cpu_s_per_step"], 2) if c["cpu_s_per_step"] else "-", "1x"])
        rows.append(["launch per step: sessions per 5 min on 2 cores (CPU)", c["sessions_per_5min_2_cores"],
                     ">= 2,500", fmt(c["sessions_per_5min_2_cores"] / 2500, 2) if c["sessions_per_5min_2_cores"] else "-",
                     "1x"])
    hc = res.get("http_contrast")
    if hc:
        rows.append(["plain HTTP profile (GET + POST), CPU per refresh (" + hc["source"] + ")",
                     fmt(hc["cpu_s_per_refresh"], 5) + " CPU-s", "-", "-",
                     fmt(lcpu / hc["cpu_s_per_refresh"], 0) + "x less" if lcpu else "-"])
    table("browser steps against the targets (issue 10)",
          ["figure", "measured", "target", "ratio to target (> 1 = met)", "vs launch per step"], rows)


# ---------------------------------------------------------------- main


def bench_crash(ctx):
    """kill -9 under load against a site that retires a rotated cookie at once
    (issue 11): the fault suite's kill9_no_grace scenarios (400 sessions, 1 s
    interval = 1x, 250 ms = 4x overloaded), run --crash-runs times per
    --save-lag-target setting, interleaved. A stale file is a session the crash
    logged out; the target is <= refreshes/s x 5 ms."""
    a = ctx.args
    script = os.path.join(ROOT, "tests", "integration", "test_faults_process.py")
    runs = []
    for i in range(a.crash_runs):
        for setting in a.crash_settings:
            env = dict(os.environ, SESSIOND_BIN=ctx.sessiond_bin, FAKESITE_BIN=ctx.fakesite_bin,
                       SESSIOND_SOURCE_DIR=ROOT, SCENARIOS="kill9_no_grace_1x,kill9_no_grace_4x",
                       KILL_NO_GRACE_ROUNDS="1", KILL_NO_GRACE_FLAGS=f"--save-lag-target {setting}")
            out = subprocess.run([sys.executable, "-u", script], env=env, capture_output=True, text=True,
                                 timeout=300, cwd=os.path.dirname(script)).stdout
            line = next((ln for ln in out.splitlines() if ln.startswith("RESULTS ")), None)
            if line is None:
                log(f"crash run {i + 1} ({setting}): no RESULTS line")
                continue
            for r in json.loads(line[len("RESULTS "):]):
                r.update(setting=setting, run=i + 1)
                for key in ("stale_older_than_5ms", "stale_ages_ms", "run_wait_us"):  # one round per run here
                    if r.get(key + "_per_round"):
                        r[key] = r[key + "_per_round"][0]
                runs.append(r)
                log(f"{setting:>4} {r['scenario']}: {r.get('refreshes_per_s')} refreshes/s, lag p50 "
                    f"{r.get('save_lag_p50_ms')} ms p99 {r.get('save_lag_p99_ms')} ms, stale "
                    f"{r.get('stale_files')} (allowed {r.get('stale_allowed')}), rotated more than 5 ms "
                    f"before the kill {r.get('stale_older_than_5ms')} (ms before it: {r.get('stale_ages_ms')}), "
                    f"waited for a CPU {r.get('run_wait_us')} µs per time slice")
    rows = []
    for setting in a.crash_settings:
        for scen in ("kill9_no_grace_1x", "kill9_no_grace_4x"):
            rs = [r for r in runs if r["setting"] == setting and r["scenario"] == scen and "stale_files" in r]
            if not rs:
                continue
            rows.append([setting, scen.rsplit("_", 1)[1], len(rs),
                         " / ".join(str(r["refreshes_per_s"]) for r in rs),
                         " / ".join(str(r["save_lag_p50_ms"]) for r in rs),
                         " / ".join(str(r["save_lag_p99_ms"]) for r in rs),
                         " / ".join(f"{r['stale_files']} ({r['stale_allowed']})" for r in rs),
                         " / ".join(str(r.get("stale_older_than_5ms", "-")) for r in rs),
                         " / ".join(str(r.get("run_wait_us", "-")) for r in rs)])
    table("kill -9 under load, no rotate grace (400 sessions; stale files after the kill, allowed in brackets; "
          "of them, rotations the site made more than 5 ms before the kill)",
          ["--save-lag-target", "load", "runs", "refreshes/s", "save lag p50 ms", "save lag p99 ms", "stale (allowed)",
           "stale rotated > 5 ms before the kill", "waited for a CPU, µs per time slice"],
          rows)
    write_results("crash", {"machine": ctx.machine, "runs": runs})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["memory", "throughput", "cpu", "latency", "startup", "all", "browser", "crash"])
    ap.add_argument("--daemon-args", type=lambda s: s.split(), default=[],
                    help="more sessiond flags for every daemon started, e.g. \"--save-lag-target 0\"")
    ap.add_argument("--crash-runs", type=int, default=3, help="crash: runs of each scenario per setting")
    ap.add_argument("--crash-settings", type=lambda s: s.split(","), default=["3ms", "0"],
                    help="crash: --save-lag-target values compared (default 3ms,0)")
    ap.add_argument("--build-dir", default="build-bench")
    ap.add_argument("--sessiond-bin", default=os.environ.get("BENCH_DAEMON_BIN", ""),
                    help="sessiond binary (default <build-dir>/sessiond; env BENCH_DAEMON_BIN)")
    ap.add_argument("--fakesite-bin", default=os.environ.get("BENCH_SITE_BIN", ""),
                    help="fake site binary (default <build-dir>/fakesite/sessiond-fakesite; env BENCH_SITE_BIN)")
    ap.add_argument("--source-rev", default="", help="the commit the build dir was built from (recorded in the results)")
    ap.add_argument("--work-root", default="/tmp", help="where session files go (deleted afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, files)")
    ap.add_argument("--tag", default="", help="results go to bench/results/<name>-<tag>.json")
    ap.add_argument("--max-in-flight", type=int, default=64, help="profile max_in_flight (default 64)")
    ap.add_argument("--localstorage-bytes", type=int, default=300)
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000, 100000])
    ap.add_argument("--interval", default="5m",
                    help="refresh interval of the memory, latency and startup runs (default 5m)")
    ap.add_argument("--memory-mode", choices=["steady", "catchup"], default="steady")
    ap.add_argument("--memory-settle", type=float, default=15, help="steady mode: seconds after all are scheduled")
    ap.add_argument("--memory-refresh-wait", type=float, default=300, help="catchup mode: cap on the wait (s)")
    ap.add_argument("--throughput-sessions", type=int, default=10000)
    ap.add_argument("--throughput-site-idle", default="60s")
    ap.add_argument("--intervals", type=lambda s: s.split(","), default=["30s", "10s", "4s", "1s"],
                    help="interval sweep of the identity mode")
    ap.add_argument("--shipped-intervals", type=lambda s: s.split(","), default=["2s"],
                    help="interval sweep of the shipped (brotli) mode")
    ap.add_argument("--modes", type=lambda s: s.split(","), default=["identity", "shipped"],
                    help="throughput modes: identity (Accept-Encoding: identity), shipped (profile as is)")
    ap.add_argument("--warmup", type=float, default=8)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--loadgen-bin", default=os.environ.get("BENCH_LOADGEN_BIN", ""),
                    help="raw generator (default <build-dir>/bench/sessiond-loadgen; env BENCH_LOADGEN_BIN)")
    ap.add_argument("--skip-generator", action="store_true",
                    help="throughput: no raw generator runs (also skipped when its binary is missing)")
    ap.add_argument("--generator-seconds", type=int, default=10, help="throughput: each raw generator run (s)")
    ap.add_argument("--generator-sessions", type=int, default=1000,
                    help="throughput: accounts seeded for each raw generator run (its own, not sessiond's)")
    ap.add_argument("--scale-sessions", type=int, default=100000)
    ap.add_argument("--scale-settle", type=float, default=30, help="seconds between start-up and the latency phase")
    ap.add_argument("--latency-files", type=int, default=100)
    ap.add_argument("--latency-gap", type=float, default=0.1)
    ap.add_argument("--latency-wait", type=float, default=40)
    ap.add_argument("--lateness-window", type=float, default=60)
    ap.add_argument("--lateness-sample", type=int, default=8000, help="sessions sampled for lateness")
    ap.add_argument("--bundle-bytes", type=int, default=1000000, help="browser: the app bundle (default 1 MB)")
    ap.add_argument("--browser-sessions", type=int, default=500, help="browser capacity run: sessions")
    ap.add_argument("--browser-interval", default="60s",
                    help="browser capacity run: interval (500 at 60s = 2,500 per 5 min, scaled)")
    ap.add_argument("--browser-warmup", type=float, default=25, help="browser: seconds before each window")
    ap.add_argument("--browser-window", type=float, default=120, help="browser capacity run: window (s)")
    ap.add_argument("--variant-sessions", type=int, default=60, help="browser variants: sessions")
    ap.add_argument("--variant-interval", default="30s", help="browser variants: interval")
    ap.add_argument("--variant-window", type=float, default=50, help="browser variants: window (s)")
    ap.add_argument("--launch-sessions", type=int, default=10, help="launch per step: sessions")
    ap.add_argument("--launch-interval", default="30s", help="launch per step: interval")
    ap.add_argument("--launch-window", type=float, default=60, help="launch per step: window (s)")
    ap.add_argument("--browser-cases", type=lambda s: s.split(","), default=None,
                    help="browser: only these cases (names as in the results)")
    args = ap.parse_args()
    global RESULT_TAG
    RESULT_TAG = f"-{args.tag}" if args.tag else ""

    ctx = Ctx(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = time.monotonic()
    try:
        print(f"# sessiond benchmarks ({args.what}), {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
        mi = ctx.machine
        print(f"machine: {mi['cores']} x {mi['cpu_model']}, {mi['mem_gb']} GB, kernel {mi['kernel']}, "
              f"/tmp on {mi['tmp_fs']}, load average at start {mi['loadavg_at_start'][0]:.2f}")
        if args.what in ("memory", "all"):
            bench_memory(ctx)
        if args.what in ("latency", "all"):
            bench_latency(ctx)
        elif args.what == "startup":
            bench_startup(ctx)
        if args.what in ("throughput", "cpu", "all"):
            bench_throughput(ctx)
        if args.what == "browser":
            bench_browser(ctx)
        if args.what == "crash":
            bench_crash(ctx)
    finally:
        ctx.close()
        print(f"\ntotal {time.monotonic() - started:.0f}s, load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
