"""The persistent pause: POST /sessions/{id}/pause keeps `"paused": true` in the
session file's keepalive block, so the session is not refreshed, not even after
a restart, until POST /sessions/{id}/resume; /status, /metrics and the manual
refresh (409) say so; a fresh login by the bot (a file without the block)
un-pauses it. Counted at the fake site and in the file, over several short
intervals of a second session that keeps being refreshed."""

import json
import os

from harness import (DEMO_PROFILE, Daemon, FakeSite, check, daemon_metrics, http, load, metric_sum, run,
                     temp_dir, wait_ready, wait_until)

TOKEN = "pause-admin-token"
INTERVAL_S = 1


def test_pause():
    site = FakeSite(idle_timeout="60s")
    sessions = temp_dir("sessions-pause-")
    paused, control = site.seed(sessions, 2)
    paused_file = os.path.join(sessions, f"session-{paused}.json")
    common = ["--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions,
              "--interval", f"{INTERVAL_S}s", "--idle-timeout", "60s", "--listen", "127.0.0.1:0",
              "--admin-token", TOKEN]
    auth = {"Authorization": "Bearer " + TOKEN}

    def site_refreshes(mobile):
        return site.stats(per_session=True)["per_session"][mobile]["refreshes"]

    def wait_control_refreshes(d, count):
        """Two or more intervals pass, measured by the other session's refreshes."""
        before = len(d.events("refresh_ok", control))
        d.wait_event("refresh_ok", 15 * count * INTERVAL_S, session=control, count=before + count)

    # -- first run: both refreshed, then one paused --------------------------------
    d = Daemon(*common)
    base = d.url()
    wait_ready(d)
    d.wait_event("refresh_ok", 15, session=paused)

    check(http("POST", f"{base}/sessions/{paused}/pause")[0] == 401, "pause without the token")
    check(http("POST", f"{base}/sessions/09000000000/pause", None, auth)[0] == 404, "pause of an unknown session")
    check(http("GET", f"{base}/sessions/{paused}/pause")[0] == 405, "GET on /pause")
    status, body, _ = http("POST", f"{base}/sessions/{paused}/pause?reason=bot%20migration", None, auth)
    check(status == 200 and json.loads(body) == {"session": paused, "paused": True, "state": "paused"},
          f"pause: {status} {body}")
    block = load(paused_file)["keepalive"]
    check(block.get("paused") is True and block.get("pauseReason") == "bot migration" and
          isinstance(block.get("pausedAt"), str), f"the file's keepalive block: {block}")

    status, body, _ = http("GET", f"{base}/sessions/{paused}")
    doc = json.loads(body)
    check(status == 200 and doc["state"] == "paused" and doc["isActive"] is False and
          doc["nextRefresh"] is None and doc["pauseReason"] == "bot migration", f"/sessions/{paused}: {doc}")
    status_doc = json.loads(http("GET", base + "/status")[1])
    check(status_doc["activeSessions"] == 1 and status_doc["sessionsByState"]["paused"] == 1 and
          status_doc["totalSessions"] == 2, f"/status counts: {status_doc}")
    check(http("GET", base + "/readyz")[0] == 200, "ready with a paused session")
    text = daemon_metrics(d)
    check(metric_sum(text, "sessiond_sessions", state="paused") == 1 and
          metric_sum(text, "sessiond_sessions", state="active") == 1, "sessiond_sessions gauges")

    status, body, _ = http("POST", f"{base}/sessions/{paused}/refresh", None, auth)
    check(status == 409 and "is paused" in json.loads(body)["error"], f"manual refresh: {status} {body}")

    mtime = os.stat(paused_file).st_mtime_ns
    count = load(paused_file)["keepalive"]["refreshCount"]
    at_site = site_refreshes(paused)
    ok_before = len(d.events("refresh_ok", paused))
    wait_control_refreshes(d, 3)
    check(os.stat(paused_file).st_mtime_ns == mtime, "the paused file was written")
    check(site_refreshes(paused) == at_site, "the paused session was refreshed at the site")
    check(len(d.events("refresh_ok", paused)) == ok_before, "refresh_ok logged for the paused session")
    check(d.stop() == 0, "first run's exit code")

    # -- restart: still paused, still not refreshed ------------------------------
    d = Daemon(*common)
    base = d.url()
    wait_ready(d)
    status, body, _ = http("GET", f"{base}/sessions/{paused}")
    check(status == 200 and json.loads(body)["state"] == "paused", f"after the restart: {status} {body}")
    wait_control_refreshes(d, 3)
    check(os.stat(paused_file).st_mtime_ns == mtime, "the paused file was written after the restart")
    check(load(paused_file)["keepalive"]["refreshCount"] == count, "refreshCount moved while paused")
    check(site_refreshes(paused) == at_site, "refreshed at the site after the restart")
    check(not d.events("refresh_ok", paused), "refresh_ok after the restart")
    text = daemon_metrics(d)
    check(metric_sum(text, "sessiond_sessions", state="paused") == 1, "paused gauge after the restart")

    # -- resume: refreshed again -------------------------------------------------
    status, body, _ = http("POST", f"{base}/sessions/{paused}/resume", None, auth)
    check(status == 200 and json.loads(body)["paused"] is False, f"resume: {status} {body}")
    check("paused" not in load(paused_file)["keepalive"], "the pause left in the file")
    d.wait_event("refresh_ok", 15, session=paused, count=2)
    check(site_refreshes(paused) >= at_site + 2, "not refreshed at the site after the resume")
    check(load(paused_file)["keepalive"]["refreshCount"] >= count + 2, "refreshCount after the resume")
    status, body, _ = http("POST", f"{base}/sessions/{paused}/resume", None, auth)
    check(status == 200, f"a second resume is answered alike: {status} {body}")

    # -- the bot's fresh login (a file without the block) un-pauses ---------------
    check(http("POST", f"{base}/sessions/{paused}/pause", None, auth)[0] == 200, "pause again")
    fresh = load(paused_file)
    del fresh["keepalive"]
    tmp = paused_file + ".bot"
    with open(tmp, "w") as f:
        json.dump(fresh, f)
    os.chmod(tmp, 0o600)
    ok_before = len(d.events("refresh_ok", paused))
    os.rename(tmp, paused_file)
    d.wait_event("refresh_ok", 15, session=paused, count=ok_before + 1)
    wait_until(lambda: json.loads(http("GET", f"{base}/sessions/{paused}")[1])["state"] == "active", 10,
               what="un-paused session active")

    check(d.stop() == 0, "second run's exit code")
    d.check_logs(site.secrets() + [TOKEN])
    site.stop()


if __name__ == "__main__":
    run(test_pause)
