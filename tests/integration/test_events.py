"""GET /events (Server-Sent Events) against the real daemon and fake site.

A forced logout (the fake site logs a session out, a manual refresh finds it)
reaches an SSE subscriber in under 1 s as logged_out, invalidated
(quarantined) and removed; a subscriber with ?types=logged_out gets that one
only; a new session file is registered; the heartbeat comment comes every
--events-heartbeat; a reconnection with Last-Event-ID (header or
?last_event_id=) gets what it missed from the ring, an id older than the
ring gets a reset; many subscribers at once all get the event and do not
starve /status; bad parameters are a 400; the metrics count it all; the
daemon stops promptly with streams open."""

import http.client as httpclient
import json
import socket
import threading
import time
import urllib.parse

from harness import (DEMO_PROFILE, Daemon, FakeSite, check, daemon_metrics, http, metric_sum, run,
                     temp_dir, wait_until)


class Sse:
    """One GET /events stream, read on a thread into frames with receive times."""

    def __init__(self, base, query="", headers=None):
        u = urllib.parse.urlparse(base)
        self.conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=10)
        self.conn.request("GET", "/events" + query, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.content_type = self.resp.getheader("Content-Type", "")
        self.frames = []
        self.lock = threading.Lock()
        self.ended = False
        self.thread = None
        if self.status == 200:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        else:
            self.body = self.resp.read()

    def _read(self):
        cur = {}
        try:
            while True:
                raw = self.resp.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\n")
                if line == "":
                    if cur:
                        cur["t"] = time.monotonic()
                        with self.lock:
                            self.frames.append(cur)
                    cur = {}
                elif line.startswith(":"):
                    cur.setdefault("comments", []).append(line[1:].strip())
                else:
                    field, _, value = line.partition(":")
                    cur[field] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError, AttributeError, httpclient.HTTPException):
            pass  # closed: by close() (http.client is not made for that) or by the daemon
        finally:
            self.ended = True

    def events(self, type=None, session=None):
        with self.lock:
            frames = list(self.frames)
        out = []
        for f in frames:
            if "data" not in f:
                continue
            e = json.loads(f["data"])
            check(f.get("event") == e["type"] and f.get("id") == str(e["id"]),
                  f"frame fields disagree with its data: {f}")
            e["received"] = f["t"]
            if (type is None or e["type"] == type) and (session is None or e["session"] == session):
                out.append(e)
        return out

    def heartbeats(self):
        with self.lock:
            return [f["t"] for f in self.frames if "heartbeat" in f.get("comments", [])]

    def wait_for(self, type, session=None, timeout=5):
        return wait_until(lambda: self.events(type, session), timeout,
                          what=f"SSE event {type} {session or ''}")[0]

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()
        if self.thread:
            self.thread.join(timeout=5)


def test_events():
    site = FakeSite(idle_timeout="60s")
    sessions = temp_dir("sessions-events-")
    mobiles = site.seed(sessions, 3, first_mobile="09150000000")
    victim = mobiles[0]
    # A long interval: the manual refresh below finds the logout, not a timer.
    d = Daemon("--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions,
               "--interval", "20s", "--idle-timeout", "60s", "--listen", "127.0.0.1:0",
               "--events-heartbeat", "200ms", "--event-buffer", "100")
    streams = []
    try:
        d.wait_event("ready", 10)
        d.wait_event("refresh_ok", 10, session=victim)  # active before its logout
        base = d.url()

        # Bad parameters: a 400 naming the problem, before any stream starts.
        bad = Sse(base, "?types=logged_out,bogus")
        check(bad.status == 400 and b"bogus" in bad.body, f"bad types: {bad.status} {bad.body!r}")
        bad = Sse(base, "", {"Last-Event-ID": "abc"})
        check(bad.status == 400, f"bad Last-Event-ID: {bad.status}")

        everything = Sse(base)
        only_logouts = Sse(base, "?types=logged_out")
        streams += [everything, only_logouts]
        check(everything.status == 200, f"/events: HTTP {everything.status}")
        check(everything.content_type.startswith("text/event-stream"),
              f"Content-Type {everything.content_type}")

        # Heartbeat comments every 200 ms while nothing happens.
        wait_until(lambda: len(everything.heartbeats()) >= 3, 3, what="3 heartbeats")
        beats = everything.heartbeats()
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        check(all(g < 1.0 for g in gaps), f"heartbeat gaps {gaps}")

        # A new session file: registered.
        newcomer = site.seed(sessions, 1, first_mobile="09150000100")[0]
        reg = everything.wait_for("registered", newcomer, timeout=10)
        check(reg["previousState"] == "" and reg["state"] in ("pending", "active"), f"registered: {reg}")

        # Many subscribers at once: /status still answers at once.
        crowd = [Sse(base, "?types=logged_out,invalidated,removed") for _ in range(20)]
        streams += crowd
        check(all(s.status == 200 for s in crowd), "a subscriber of the crowd was refused")
        started = time.monotonic()
        status, _, _ = http("GET", base + "/status", timeout=5)
        check(status == 200 and time.monotonic() - started < 1.0,
              f"/status with 22 streams open: HTTP {status} in {time.monotonic() - started:.2f}s")
        m = daemon_metrics(d)
        check(metric_sum(m, "sessiond_event_subscribers") == 22,
              f"sessiond_event_subscribers {metric_sum(m, 'sessiond_event_subscribers')}")

        # The forced logout: the site logs the victim out, a manual refresh finds it.
        site.logout([victim])
        t0 = time.monotonic()
        status, body, _ = http("POST", f"{base}/sessions/{victim}/refresh", b"", timeout=30)
        check(status == 502 and json.loads(body).get("outcome", "").startswith("logged_out"),
              f"manual refresh of the logged-out session: {status} {body[:200]!r}")
        out = everything.wait_for("logged_out", victim, timeout=2)
        took = out["received"] - t0
        check(took < 1.0, f"logged_out reached the subscriber after {took:.2f}s")
        print(f"logged_out reached the SSE subscriber {took * 1000:.0f} ms after the refresh request")
        check(out["previousState"] == "active" and out["state"] == "invalid"
              and "logged out" in out["reason"], f"logged_out: {out}")
        check(out["time"].endswith("Z") and "T" in out["time"], f"time {out['time']}")
        inv = everything.wait_for("invalidated", victim, timeout=2)
        check(inv["reason"] == "quarantined" and inv["id"] > out["id"], f"invalidated: {inv}")
        removed = everything.wait_for("removed", victim, timeout=5)  # the watcher sees it go
        check(removed["previousState"] == "invalid" and removed["state"] == "", f"removed: {removed}")
        ids = [e["id"] for e in everything.events()]
        check(ids == sorted(ids) and len(set(ids)) == len(ids), f"ids not increasing: {ids}")

        # The filtered stream got the logout and nothing else.
        only_logouts.wait_for("logged_out", victim, timeout=2)
        time.sleep(0.3)  # anything else published by now would have arrived
        kinds = {e["type"] for e in only_logouts.events()}
        check(kinds == {"logged_out"}, f"?types=logged_out got {kinds}")
        for s in crowd:
            s.wait_for("removed", victim, timeout=5)
            check([e["type"] for e in s.events(session=victim)] == ["logged_out", "invalidated", "removed"],
                  f"crowd subscriber got {[e['type'] for e in s.events()]}")
        for s in crowd:
            s.close()
        wait_until(lambda: metric_sum(daemon_metrics(d), "sessiond_event_subscribers") <= 2, 5,
                   what="closed streams to unsubscribe")

        # Reconnection: what came after the last id seen, from the ring.
        everything.close()
        resumed = Sse(base, "", {"Last-Event-ID": str(out["id"])})
        streams.append(resumed)
        wait_until(lambda: len(resumed.events(session=victim)) >= 2, 2, what="resumed events")
        got = [(e["type"], e["id"]) for e in resumed.events(session=victim)]
        check(got == [("invalidated", inv["id"]), ("removed", removed["id"])], f"resumed: {got}")
        check(not resumed.events("reset"), "a reset on a resumption within the ring")
        by_param = Sse(base, f"?last_event_id={out['id']}&types=removed")
        streams.append(by_param)
        check(by_param.wait_for("removed", victim, timeout=2)["id"] == removed["id"],
              "?last_event_id= resumption")
        # An id older than the ring (or from an earlier process): reset first.
        stale = Sse(base, "", {"Last-Event-ID": "1"})
        streams.append(stale)
        wait_until(lambda: stale.frames and [f for f in stale.frames if "event" in f], 2, what="reset")
        first = [f for f in stale.frames if "event" in f][0]
        check(first["event"] == "reset", f"stale Last-Event-ID: first frame {first}")

        m = daemon_metrics(d)
        for t in ("logged_out", "invalidated", "removed"):
            check(metric_sum(m, "sessiond_events_total", type=t) == 1,
                  f"sessiond_events_total{{type={t}}} {metric_sum(m, 'sessiond_events_total', type=t)}")
        check(metric_sum(m, "sessiond_events_total", type="registered") == 4, "registered count")
        check(metric_sum(m, "sessiond_event_subscribers_dropped_total") == 0, "a subscriber dropped")

        # Streams open: the daemon still stops promptly.
        started = time.monotonic()
        code = d.stop()
        check(code == 0, f"sessiond exit status {code}")
        check(time.monotonic() - started < 10, f"stop took {time.monotonic() - started:.1f}s")
        wait_until(lambda: all(s.ended for s in streams if s.thread), 5, what="streams to end")
        site.logout(mobiles + [newcomer])  # no longer kept alive
        n = d.check_logs(site.secrets())
        print(f"{n} log lines, no secrets")
    finally:
        for s in streams:
            s.close()
        d.stop()
        site.stop()


if __name__ == "__main__":
    run(test_events)
