"""Shared helpers for the integration tests: the real sessiond and fake-site
binaries over loopback, in a temp directory. Standard library only.

Every wait is bounded (wait_until raises after its timeout); every process is
stopped at exit."""

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

SESSIOND = os.environ.get("SESSIOND_BIN", "../../build/sessiond")
FAKESITE = os.environ.get("FAKESITE_BIN", "../../build/fakesite/sessiond-fakesite")
SOURCE_DIR = os.environ.get("SESSIOND_SOURCE_DIR", os.path.abspath("../.."))
DEMO_PROFILE = os.path.join(SOURCE_DIR, "profiles", "demo.json")

_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


atexit.register(_cleanup)


class Failure(AssertionError):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def wait_until(fn, timeout, interval=0.05, what="condition"):
    """Polls fn() until it returns a truthy value; raises after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http(method, url, body=None, headers=None, timeout=10):
    """Returns (status, body bytes, headers) without raising on HTTP errors."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read(), dict(res.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def temp_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


class FakeSite:
    def __init__(self, idle_timeout="3s", extra=()):
        self.dir = temp_dir("fakesite-")
        port_file = os.path.join(self.dir, "ports.json")
        self.proc = subprocess.Popen(
            [FAKESITE, "--idle-timeout", idle_timeout, "--port-file", port_file, *extra],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr"), "w"))
        _procs.append(self.proc)
        ports = wait_until(lambda: os.path.exists(port_file) and json.load(open(port_file)), 10,
                           what="fake site to listen")
        self.base_url = ports["base_url"]
        self.admin = f"http://127.0.0.1:{ports['admin_port']}"

    def stats(self, per_session=False):
        status, body, _ = http("GET", self.admin + "/stats" + ("?per_session=1" if per_session else ""))
        check(status == 200, f"fake site stats: HTTP {status}")
        return json.loads(body)

    def seed(self, directory, count, first_mobile="09120000000", localstorage_bytes=1000):
        status, body, _ = http("POST", self.admin + "/seed", {
            "dir": directory, "count": count, "first_mobile": first_mobile,
            "localstorage_bytes": localstorage_bytes})
        check(status == 200, f"seed: HTTP {status} {body[:200]!r}")
        return json.loads(body)["mobiles"]

    def logout(self, mobiles):
        status, _, _ = http("POST", self.admin + "/logout", {"mobiles": mobiles})
        check(status == 200, f"logout: HTTP {status}")

    def faults(self, **faults):
        status, body, _ = http("POST", self.admin + "/faults", faults)
        check(status == 200, f"faults: HTTP {status} {body[:200]!r}")

    def secrets(self):
        status, body, _ = http("GET", self.admin + "/secrets")
        check(status == 200, f"secrets: HTTP {status}")
        return json.loads(body)["values"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)


class Daemon:
    """`sessiond <command> ...` with stdout captured line by line."""

    def __init__(self, *args, command="run", env=None):
        self.lines = []
        self.lock = threading.Lock()
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen([SESSIOND, command, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env)
        _procs.append(self.proc)
        self.stderr = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.err_reader = threading.Thread(target=self._read_err, daemon=True)
        self.err_reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _read_err(self):
        self.stderr = self.proc.stderr.read()

    def events(self, event=None, session=None):
        out = []
        with self.lock:
            lines = list(self.lines)
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if event and doc.get("event") != event:
                continue
            if session and doc.get("session") != session:
                continue
            out.append(doc)
        return out

    def wait_event(self, event, timeout, session=None, count=1):
        return wait_until(lambda: len(self.events(event, session)) >= count and self.events(event, session),
                          timeout, what=f"{count}x event {event} {session or ''}")

    def port(self, timeout=10):
        ev = self.wait_event("startup", timeout)
        for e in self.events("startup"):
            if "HTTP port open" in e.get("msg", ""):
                return int(e["listen"].rsplit(":", 1)[1])
        ev = wait_until(lambda: [e for e in self.events("startup") if "HTTP port open" in e.get("msg", "")],
                        timeout, what="HTTP port")
        return int(ev[0]["listen"].rsplit(":", 1)[1])

    def url(self):
        return f"http://127.0.0.1:{self.port()}"

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        self.err_reader.join(timeout=5)
        return code

    def check_logs(self, secrets):
        """Every stdout line is one JSON object with ts/level/msg/event, and
        no secret the fake site issued appears anywhere in the output."""
        with self.lock:
            lines = list(self.lines)
        for line in lines:
            doc = json.loads(line)
            for key in ("ts", "level", "msg", "event"):
                check(key in doc, f"log line without {key}: {line[:200]}")
            check(doc["level"] in ("trace", "debug", "info", "warn", "error", "critical"),
                  f"log line with an unknown level: {line[:200]}")
        text = "\n".join(lines) + self.stderr.decode("utf-8", "replace")
        leaked = [s for s in secrets if s and s in text]
        check(not leaked, f"{len(leaked)} secrets appear in the logs, e.g. {leaked[:1]}")
        return len(lines)

    def check_logs_killed(self, secrets):
        """check_logs for a daemon that was SIGKILLed: its last line may be cut."""
        with self.lock:
            if self.lines:
                try:
                    json.loads(self.lines[-1])
                except ValueError:
                    self.lines.pop()
        return self.check_logs(secrets)


def processes_naming(text):
    """PIDs whose command line contains `text` (a test's own TMPDIR: its Chromium)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(pid)
        except OSError:
            continue
    return out


def session_files(directory):
    return sorted(f for f in os.listdir(directory) if f.startswith("session-") and f.endswith(".json"))


def load(path):
    with open(path) as f:
        return json.load(f)


def cookie(doc, name):
    for c in doc.get("cookies", []):
        if c.get("name") == name:
            return c.get("value")
    return None


def run(test):
    """Runs one test function, prints a ctest-friendly verdict."""
    started = time.monotonic()
    try:
        test()
    except Exception:
        import traceback
        traceback.print_exc()
        print(f"FAILED {test.__name__} after {time.monotonic() - started:.1f}s")
        raise SystemExit(1)
    print(f"PASSED {test.__name__} in {time.monotonic() - started:.1f}s")


# ---------------------------------------------------------------------------
# Helpers for the fault, process and bad-input tests (added; nothing above
# changed). Standard library only.

import re as _re

_SAMPLE_RE = _re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL_RE = _re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text exposition -> list of (name, {label: value}, float)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        labels = dict(_LABEL_RE.findall(m.group(2) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(3))))
        except ValueError:
            continue
    return out


def metric_sum(text, name, **labels):
    """Sum of every sample of `name` whose labels include `labels` (0 if none)."""
    return sum(v for n, ls, v in parse_metrics(text)
               if n == name and all(ls.get(k) == str(want) for k, want in labels.items()))


def metric_histogram_quantiles(text, name, quantiles):
    """Quantiles of histogram `name` (all label sets summed), as Prometheus's
    histogram_quantile estimates them: linear within the bucket."""
    buckets = {}
    for n, ls, v in parse_metrics(text):
        if n == name + "_bucket":
            le = float("inf") if ls["le"] == "+Inf" else float(ls["le"])
            buckets[le] = buckets.get(le, 0.0) + v
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    out = []
    for q in quantiles:
        if total == 0:
            out.append(float("nan"))
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for le in bounds:
            if buckets[le] >= rank:
                if le == float("inf"):
                    out.append(lower)
                else:
                    inside = buckets[le] - below
                    out.append(lower + (le - lower) * ((rank - below) / inside if inside else 1.0))
                break
            lower, below = le, buckets[le]
    return out


def daemon_metrics(d, timeout=5):
    status, body, _ = http("GET", d.url() + "/metrics", timeout=timeout)
    check(status == 200, f"/metrics: HTTP {status}")
    return body.decode()


def daemon_status(d, timeout=5):
    status, body, _ = http("GET", d.url() + "/status", timeout=timeout)
    check(status == 200, f"/status: HTTP {status}")
    return json.loads(body)


def wait_ready(d, timeout=15):
    """Waits for the `ready` log event and /readyz 200; returns time.monotonic() of readiness."""
    d.wait_event("ready", timeout)
    base = d.url()
    wait_until(lambda: http("GET", base + "/readyz", timeout=2)[0] == 200, timeout, what="/readyz 200")
    return time.monotonic()


def wall_now():
    """time.time() for comparing with log `ts` values, which are cut to whole
    milliseconds: an event logged after this call never compares as before it."""
    return time.time() - 0.001


def parse_ts(ts):
    """A log line's `ts` (RFC 3339 UTC, ms) -> Unix seconds (float)."""
    import calendar
    base = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    frac = 0.0
    if len(ts) > 20 and ts[19] == ".":
        digits = "".join(ch for ch in ts[20:] if ch.isdigit())
        frac = int(digits) / (10 ** len(digits)) if digits else 0.0
    return base + frac


class RateSampler:
    """Samples, about every `period` s on its own thread, the fake site's request
    counters and (optionally) sessiond's own sessiond_http_requests_total, so a
    test can report request rates toward the site per window. Bounded: stops
    by itself after `max_s` seconds."""

    def __init__(self, site, daemon=None, period=1.0, max_s=120):
        self.site, self.daemon, self.period, self.max_s = site, daemon, period, max_s
        self.samples = []  # (monotonic, site_ok, site_all, daemon_attempts or None)
        self.marks = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        t = time.monotonic()
        try:
            st = self.site.stats()
            r = st["requests"]
            ok = r["check"] + r["refresh"]
            every = ok + r["injected_errors"] + r["resets"]
        except Exception:
            return
        attempts = None
        if self.daemon is not None:
            try:
                attempts = metric_sum(daemon_metrics(self.daemon, timeout=2), "sessiond_http_requests_total")
            except Exception:
                attempts = None
        self.samples.append((t, ok, every, attempts))

    def _run(self):
        end = time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < end:
            self._sample()
            self._stop.wait(self.period)

    def start(self):
        self._thread.start()
        return self

    def mark(self, name):
        self.marks[name] = time.monotonic()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()

    def rates(self, start=None, end=None):
        """Per-window rates [(t, site_ok/s, site_all/s, daemon_attempts/s or None)]
        for windows that overlap [start, end]."""
        out = []
        for (t0, ok0, all0, a0), (t1, ok1, all1, a1) in zip(self.samples, self.samples[1:]):
            dt = t1 - t0
            if dt <= 0.05:
                continue
            if start is not None and t1 < start:
                continue
            if end is not None and t0 > end:
                continue
            da = (a1 - a0) / dt if a0 is not None and a1 is not None else None
            out.append((t1, (ok1 - ok0) / dt, (all1 - all0) / dt, da))
        return out

    def peak(self, start=None, end=None):
        """{'site_ok': peak/s, 'site_all': peak/s, 'daemon': peak/s} over [start, end]."""
        rs = self.rates(start, end)
        return {
            "site_ok": max((r[1] for r in rs), default=0.0),
            "site_all": max((r[2] for r in rs), default=0.0),
            "daemon": max((r[3] for r in rs if r[3] is not None), default=0.0),
        }

    def mean(self, start=None, end=None):
        rs = self.rates(start, end)
        n = len(rs) or 1
        return {"site_ok": sum(r[1] for r in rs) / n, "site_all": sum(r[2] for r in rs) / n,
                "daemon": sum(r[3] for r in rs if r[3] is not None) / n}


def measured(fn):
    """Scenario decorator: fn(m) fills the dict m with measurements, which are
    kept on the exception too when the scenario fails."""
    def wrapper():
        m = {}
        try:
            fn(m)
        except Exception as e:
            e.measured = m
            raise
        return m
    wrapper.__name__ = fn.__name__
    return wrapper


def run_scenarios(scenarios, results_name=None):
    """Runs several scenario functions (each returns a dict of measurements or
    raises), every one even if an earlier one failed; prints one verdict line
    each and a JSON summary line (`RESULTS {...}`); $SCENARIOS picks some by name; if $RELIABILITY_RESULTS_DIR
    is set, also writes <dir>/<results_name>.json. Exits 1 if any failed."""
    results, failed = [], []
    only = os.environ.get("SCENARIOS")  # a comma list: run just these (bench/run.py crash)
    if only:
        scenarios = [fn for fn in scenarios if fn.__name__ in only.split(",")]
    for fn in scenarios:
        started = time.monotonic()
        row = {"scenario": fn.__name__}
        try:
            measured = fn() or {}
            row.update(measured)
            row["result"] = row.get("result", "pass")
            print(f"PASSED {fn.__name__} in {time.monotonic() - started:.1f}s", flush=True)
        except Exception as e:
            import traceback
            traceback.print_exc()
            row.update(getattr(e, "measured", {}) or {})
            row["result"] = "FAIL"
            row["error"] = str(e)[:2000]
            failed.append(fn.__name__)
            print(f"FAILED {fn.__name__} after {time.monotonic() - started:.1f}s", flush=True)
        row["seconds"] = round(time.monotonic() - started, 1)
        results.append(row)
    print("RESULTS " + json.dumps(results), flush=True)
    out_dir = os.environ.get("RELIABILITY_RESULTS_DIR")
    if out_dir and results_name:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, results_name + ".json"), "w") as f:
            json.dump(results, f, indent=2)
    if failed:
        print("FAILED scenarios: " + ", ".join(failed), flush=True)
        raise SystemExit(1)


SCALED_CIRCUIT_BREAKER = {"failure_ratio": 0.5, "min_requests": 20, "window": "2s", "open_for": "200ms"}


def scaled_profile(retry_base="25ms", retry_max="400ms", circuit_breaker=SCALED_CIRCUIT_BREAKER, **overrides):
    """The demo profile with its retry policy, circuit breaker (and any other
    top-level field) replaced, written to a temp dir; returns its path. The
    defaults scale production's backoff (base 2 s, max 60 s) and breaker
    (open for 15 s) for a 10 min idle timeout down to the 3-4 s idle timeouts
    of the tests (the breaker's window cannot go below 1 s). circuit_breaker=None
    keeps the built-in breaker defaults."""
    with open(DEMO_PROFILE) as f:
        text = "\n".join(line for line in f if not line.lstrip().startswith("//"))
    doc = json.loads(text)
    doc["retry"] = {"base": retry_base, "max": retry_max}
    if circuit_breaker is not None:
        doc["circuit_breaker"] = dict(circuit_breaker)
    doc.update(overrides)
    path = os.path.join(temp_dir("profile-"), "profile.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return path
