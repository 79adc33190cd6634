"""A real Prometheus server (Debian's package) scrapes a running sessiond:
the target is up and sessiond_refresh_total > 0 through its query API."""

import json
import os
import shutil
import socket
import subprocess
import urllib.parse

from harness import DEMO_PROFILE, Daemon, FakeSite, _procs, check, http, run, temp_dir, wait_until


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prometheus_scrape():
    prometheus = shutil.which("prometheus")
    check(prometheus, "the prometheus binary is missing (scripts/setup.sh installs it)")
    site = FakeSite(idle_timeout="10s")
    sessions = temp_dir("sessions-prom-")
    site.seed(sessions, 5)
    d = Daemon("--profile", DEMO_PROFILE, "--base-url", site.base_url, "--sessions-dir", sessions,
               "--interval", "1s", "--idle-timeout", "10s", "--listen", "127.0.0.1:0")
    target = f"127.0.0.1:{d.port()}"
    work = temp_dir("prometheus-")
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                "scrape_configs:\n"
                f"  - job_name: sessiond\n    static_configs: [{{targets: ['{target}']}}]\n")
    port = free_port()
    prom = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={work}/data",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"))
    _procs.append(prom)
    api = f"http://127.0.0.1:{port}/api/v1/query?query="

    def query(q):
        status, body, _ = http("GET", api + urllib.parse.quote(q), timeout=5)
        if status != 200:
            return None
        result = json.loads(body)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def ready():
        try:
            return query('up{job="sessiond"}') == 1 and (query('sum(sessiond_refresh_total{result="success"})') or 0) > 0
        except OSError:
            return False

    wait_until(ready, 45, interval=0.5, what="Prometheus to scrape sessiond")
    print("up=1, refreshes seen by Prometheus:", query('sum(sessiond_refresh_total{result="success"})'))
    prom.terminate()
    prom.wait(timeout=20)
    check(d.stop() == 0, "sessiond exit status")
    site.stop()


if __name__ == "__main__":
    run(test_prometheus_scrape)
