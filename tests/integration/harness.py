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
        text = "\n".join(lines) + self.stderr.decode("utf-8", "replace")
        leaked = [s for s in secrets if s and s in text]
        check(not leaked, f"{len(leaked)} secrets appear in the logs, e.g. {leaked[:1]}")
        return len(lines)


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
