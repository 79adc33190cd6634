#!/usr/bin/env python3
"""Consistency checks of monitoring/ that promtool cannot do by itself.

Usage: check_consistency.py [MONITORING_DIR]   (default: this script's directory)

1. runbook:   every alert's runbook_url is RUNBOOK_BASE_URL#<anchor> (absolute:
              Alertmanager and chat messages cannot open a relative link; one
              base, which k8s/tools/gen-prometheusrule.sh swaps for a
              deployment's own), the anchor is the GitHub anchor of a
              RUNBOOK.md heading that is the alert name, and RUNBOOK.md's own
              #links resolve.
2. tests:     alerts_test.yml has, for every alert name, a case where it must
              not fire (exp_alerts: []), and for every (alert name, severity)
              of alerts.yml a case where it fires with that severity (promtool
              compares the full label and annotation sets of firing cases).
3. dashboard: grafana-dashboard.json has the ${DS_PROMETHEUS} datasource
              variable and the namespace and instance variables, every panel
              and target uses the variable datasource, every selector of
              job="sessiond" filters on $namespace and $instance,
              panel ids are unique, and the required metrics are all shown.

Exit 1 listing the problems, 0 when all pass. Python 3 standard library only.
"""

import json
import os
import re
import sys

# The one base of every runbook_url (DEFAULT_RUNBOOK_BASE_URL in
# k8s/tools/gen-prometheusrule.sh, which replaces it per deployment).
RUNBOOK_BASE_URL = "https://github.com/OWNER/sessiond/blob/main/monitoring/RUNBOOK.md"

DASHBOARD_MUST_SHOW = [
    "sessiond_sessions",
    "sessiond_refresh_total",
    "sessiond_refresh_duration_seconds_bucket",
    "sessiond_oldest_refresh_age_seconds",
    "sessiond_idle_timeout_seconds",
    "sessiond_http_requests_total",
    "sessiond_actor_restarts_total",
    "sessiond_circuit_open",
    "sessiond_http_in_flight",
    "sessiond_http_queued",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "sessiond_session_file_errors_total",
    "sessiond_browser_steps_total",
    "sessiond_browser_step_duration_seconds_bucket",
    "sessiond_browser_restarts_total",
    "sessiond_browser_in_flight",
    "sessiond_browser_queued",
    "sessiond_browser_proportional_memory_bytes",
]


def github_anchor(heading):
    """The id GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def rule_chunks(text):
    """[(alert name, chunk text)] for each alerting rule of a rule file."""
    out = []
    for chunk in re.split(r"(?m)^\s*-\s+(?=alert:|record:)", text)[1:]:
        m = re.match(r"alert:\s*['\"]?([A-Za-z_:][A-Za-z0-9_:]*)", chunk)
        if m:
            out.append((m.group(1), chunk))
    return out


def severity_of(chunk):
    m = re.search(r"(?m)^\s*severity:\s*['\"]?([A-Za-z0-9_-]+)", chunk)
    return m.group(1) if m else None


def check_runbook(rules, runbook):
    problems = []
    headings = {}
    in_code = False
    for line in runbook.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if m:
            headings[github_anchor(m.group(1))] = m.group(1)
    for name, chunk in rules:
        urls = re.findall(r"(?m)^\s*runbook_url:\s*['\"]?([^'\"\s]+)", chunk)
        if len(urls) != 1:
            problems.append("%s: expected one runbook_url annotation, found %d" % (name, len(urls)))
            continue
        file_part, _, anchor = urls[0].partition("#")
        if file_part != RUNBOOK_BASE_URL or not anchor:
            problems.append("%s: runbook_url %r is not %s#<anchor>" % (name, urls[0], RUNBOOK_BASE_URL))
        elif anchor not in headings:
            problems.append("%s: RUNBOOK.md has no heading with anchor #%s" % (name, anchor))
        elif headings[anchor] != name:
            problems.append("%s: #%s is the heading %r, not the alert name" % (name, anchor, headings[anchor]))
        for key in ("summary", "description"):
            if not re.search(r"(?m)^\s*%s:\s*\S" % key, chunk):
                problems.append("%s: no %s annotation" % (name, key))
        if not re.search(r"(?m)^\s*for:\s*\S", chunk):
            problems.append("%s: no `for`" % name)
        if not severity_of(chunk):
            problems.append("%s: no severity label" % name)
    for anchor in sorted(set(re.findall(r"\]\(#([^)\s]+)\)", runbook))):
        if anchor not in headings:
            problems.append("RUNBOOK.md links to #%s, which is no heading" % anchor)
    return problems


def check_tests(rules, tests_text):
    problems = []
    firing = set()      # (alertname, severity)
    not_firing = set()  # alertname
    for case in re.split(r"(?m)^\s*-\s+(?=alertname:)", tests_text)[1:]:
        # The case ends where the next test group starts.
        case = re.split(r"(?m)^\s*-\s+name:", case)[0]
        name = re.match(r"alertname:\s*['\"]?([A-Za-z_:][A-Za-z0-9_:]*)", case).group(1)
        m = re.search(r"(?m)^\s*exp_alerts:[ \t]*(.*)$", case)
        if not m:
            problems.append("alerts_test.yml: a case of %s has no exp_alerts" % name)
            continue
        value = re.sub(r"\s+#.*$", "", m.group(1)).strip()
        if value == "[]":
            not_firing.add(name)
        elif value == "":
            for sev in re.findall(r"(?m)^\s*severity:\s*['\"]?([A-Za-z0-9_-]+)", case):
                firing.add((name, sev))
            if "exp_annotations:" not in case:
                problems.append("alerts_test.yml: a firing case of %s does not check annotations" % name)
        else:
            problems.append("alerts_test.yml: cannot read exp_alerts of a case of %s" % name)
    for name, chunk in rules:
        sev = severity_of(chunk)
        if (name, sev) not in firing:
            problems.append("alerts_test.yml: no case where %s fires with severity %s" % (name, sev))
        if name not in not_firing:
            problems.append("alerts_test.yml: no case where %s must not fire" % name)
    return problems


def check_dashboard(doc):
    problems = []
    if not isinstance(doc.get("schemaVersion"), int) or doc["schemaVersion"] < 36:
        problems.append("dashboard: schemaVersion %r (want >= 36)" % doc.get("schemaVersion"))
    variables = {v.get("name"): v for v in doc.get("templating", {}).get("list", [])}
    ds = variables.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("dashboard: no datasource variable DS_PROMETHEUS (type datasource, query prometheus)")
    for var in ("namespace", "instance"):
        v = variables.get(var)
        if not v or v.get("type") != "query":
            problems.append("dashboard: no query variable `%s`" % var)
        elif v.get("allValue") != ".*":
            # ".*" also matches series without the label (Prometheus outside
            # Kubernetes has no namespace label).
            problems.append("dashboard: variable `%s` needs allValue \".*\"" % var)
    want_ds = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    ids = []
    exprs = []

    def walk(panels):
        for p in panels:
            ids.append(p.get("id"))
            title = p.get("title")
            if p.get("type") == "row":
                walk(p.get("panels", []))
                continue
            if p.get("datasource") != want_ds:
                problems.append("dashboard: panel %r datasource is not ${DS_PROMETHEUS}" % title)
            if not p.get("targets"):
                problems.append("dashboard: panel %r has no targets" % title)
            for t in p.get("targets", []):
                if t.get("datasource", want_ds) != want_ds:
                    problems.append("dashboard: a target of %r has another datasource" % title)
                expr = t.get("expr", "")
                exprs.append(expr)
                for sel in re.findall(r"\{[^{}]*\}", expr):
                    if 'job="sessiond"' not in sel:
                        continue
                    for var in ("$namespace", "$instance"):
                        if var not in sel:
                            problems.append("dashboard: panel %r target %s: selector %s ignores %s"
                                            % (title, t.get("refId"), sel, var))
                if "$instance" not in expr:
                    problems.append("dashboard: panel %r target %s ignores $instance" % (title, t.get("refId")))

    walk(doc.get("panels", []))
    if len(ids) != len(set(ids)):
        problems.append("dashboard: duplicate panel ids")
    text = "\n".join(exprs)
    for metric in DASHBOARD_MUST_SHOW:
        if not re.search(r"(?<![\w:])%s(?![\w:])" % re.escape(metric), text):
            problems.append("dashboard: no panel shows %s" % metric)
    if "histogram_quantile(0.5" not in text or "histogram_quantile(0.99" not in text:
        problems.append("dashboard: no p50 / p99 histogram_quantile of the refresh duration")
    return problems


def main(argv):
    d = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))

    def read(name):
        with open(os.path.join(d, name), encoding="utf-8") as f:
            return f.read()

    rules = rule_chunks(read("alerts.yml"))
    if not rules:
        print("consistency: no alerts in alerts.yml")
        return 1
    results = [
        ("runbook", check_runbook(rules, read("RUNBOOK.md"))),
        ("tests", check_tests(rules, read("alerts_test.yml"))),
        ("dashboard", check_dashboard(json.loads(read("grafana-dashboard.json")))),
    ]
    bad = 0
    for what, problems in results:
        for p in problems:
            print("consistency (%s): %s" % (what, p))
        bad += len(problems)
    if bad:
        return 1
    print("OK: %d alert rules (%d names): runbook sections, firing and non-firing tests; "
          "dashboard variables, datasources and panels" % (len(rules), len({n for n, _ in rules})))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
