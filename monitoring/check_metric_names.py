#!/usr/bin/env python3
"""Check that every metric the alerts and the dashboard use is actually exported.

Usage:
    check_metric_names.py EXPOSITION [--rules FILE]... [--dashboard FILE]... [-v]
    check_metric_names.py --self-test

EXPOSITION is a Prometheus text exposition (what GET /metrics returns), or "-"
for standard input, e.g.

    curl -s http://127.0.0.1:9464/metrics | monitoring/check_metric_names.py -

The rule file(s) default to alerts.yml and the dashboard(s) to
grafana-dashboard.json, both next to this script. Every `expr:` of the rule
files and every `expr` (plus template variable queries) of the dashboard is
scanned for metric names; label names, PromQL functions, aggregations,
keywords, strings, durations, numbers and Grafana variables are ignored, as are
series Prometheus makes itself (`up`, `ALERTS`, `scrape_*`).

A referenced name is found when the exposition has a sample with that name or
a family of that name (# TYPE). `X_bucket` is only accepted for a histogram X,
and `X_sum` / `X_count` only for a histogram or summary X, so a counter that
happens to end in `_count` is not mistaken for part of a histogram.

Exit status: 0 when everything is found, 1 when a name is missing (each one is
listed with where it is used), 2 on usage or input errors. Python 3 standard
library only.
"""

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Series Prometheus synthesises itself; never in an application's exposition.
SYNTHETIC = {
    "up",
    "ALERTS",
    "ALERTS_FOR_STATE",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
}

# Binary operators, modifiers and literals that look like identifiers.
KEYWORDS = {
    "and", "or", "unless", "atan2",
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan",
}
# Keywords followed by a parenthesised list of label names.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Aggregation operators: `sum by (x) (...)` has the name not directly before "(".
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}

IDENT_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
DURATION_RE = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
NUMBER_RE = re.compile(
    r"0[xX][0-9a-fA-F]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
NAME_MATCHER_RE = re.compile(r"""__name__\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
GRAFANA_VAR_RE = re.compile(r"\$(?:\{[^}]*\}|[A-Za-z0-9_]+)|\[\[[^\]]*\]\]")


class PromQLError(ValueError):
    pass


def _skip_string(s, i):
    """s[i] is a quote; return the index just past the closing quote."""
    q = s[i]
    i += 1
    while i < len(s):
        c = s[i]
        if c == "\\" and q != "`":
            i += 2
            continue
        if c == q:
            return i + 1
        i += 1
    raise PromQLError("unterminated string")


def _skip_group(s, i, open_ch, close_ch):
    """s[i] == open_ch; return (content, index past the matching close_ch)."""
    depth = 0
    start = i
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = _skip_string(s, i)
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return s[start + 1 : i], i + 1
        i += 1
    raise PromQLError("unbalanced %s%s" % (open_ch, close_ch))


def _skip_space(s, i):
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def metric_names(expr):
    """Metric names referenced by one PromQL expression (a set)."""
    # Grafana variables ($instance, ${DS}, $__rate_interval, [[x]]) are not PromQL;
    # inside [...] and {...} they vanish with the group anyway.
    s = GRAFANA_VAR_RE.sub(" ", expr)
    names = set()
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
        elif c == "#":  # comment to the end of the line
            while i < n and s[i] != "\n":
                i += 1
        elif c in "\"'`":
            i = _skip_string(s, i)
        elif c == "{":  # label matchers; only __name__="x" names a metric
            content, i = _skip_group(s, i, "{", "}")
            for m in NAME_MATCHER_RE.finditer(content):
                names.add(m.group(1) if m.group(1) is not None else m.group(2))
        elif c == "[":  # range or subquery duration
            _, i = _skip_group(s, i, "[", "]")
        elif c.isdigit() or (c == "." and i + 1 < n and s[i + 1].isdigit()):
            m = DURATION_RE.match(s, i) or NUMBER_RE.match(s, i)
            i = m.end()
        elif IDENT_RE.match(s, i):
            m = IDENT_RE.match(s, i)
            word = m.group(0)
            i = m.end()
            j = _skip_space(s, i)
            nxt = s[j] if j < n else ""
            lower = word.lower()
            if lower in LABEL_LIST_KEYWORDS:
                if nxt == "(":  # label list, not an expression
                    _, i = _skip_group(s, j, "(", ")")
            elif lower in KEYWORDS:
                pass
            elif nxt == "(":
                pass  # function or aggregation call
            elif word in AGGREGATIONS and IDENT_RE.match(s, j) and \
                    IDENT_RE.match(s, j).group(0).lower() in ("by", "without"):
                pass  # sum by (x) (...)
            else:
                names.add(word)
        else:  # operators, parentheses, commas, @
            i += 1
    return names


# ----------------------------------------------------------------- rule files


def _yaml_scalar_after_key(lines, idx, key_col, rest):
    """Value of a YAML scalar that starts as `rest` on lines[idx] (after `key:`).

    Handles plain (possibly continued on more-indented lines), single- and
    double-quoted (possibly multi-line) and block (| / >) scalars: enough for
    rule files. Returns (value, index of the next unread line).
    """
    rest = rest.strip()
    if rest[:1] in ("|", ">"):
        block = []
        k = idx + 1
        indent = None
        while k < len(lines):
            line = lines[k]
            if line.strip() == "":
                block.append("")
                k += 1
                continue
            col = len(line) - len(line.lstrip(" "))
            if col <= key_col or (indent is not None and col < indent):
                break
            if indent is None:
                indent = col
            block.append(line[indent:])
            k += 1
        return "\n".join(block).strip(), k
    if rest[:1] in ("'", '"'):
        q = rest[0]
        text = rest
        k = idx + 1
        while True:
            body = text[1:]
            end = _find_closing_quote(body, q)
            if end is not None:
                body = body[:end]
                break
            if k >= len(lines):
                raise ValueError("unterminated quoted scalar at line %d" % (idx + 1))
            text += "\n" + lines[k].strip()
            k += 1
        if q == "'":
            value = body.replace("''", "'")
        else:
            value = json.loads('"' + body.replace("\n", " ") + '"')
        return " ".join(value.split("\n")), k
    # plain scalar: strip a trailing comment, then take more-indented continuation lines
    value = re.sub(r"\s+#.*$", "", rest)
    k = idx + 1
    while k < len(lines):
        line = lines[k]
        stripped = line.strip()
        col = len(line) - len(line.lstrip(" "))
        if stripped == "" or stripped.startswith("#") or col <= key_col:
            break
        value += " " + re.sub(r"\s+#.*$", "", stripped)
        k += 1
    return value, k


def _find_closing_quote(body, q):
    i = 0
    while i < len(body):
        if q == "'" and body.startswith("''", i):
            i += 2
            continue
        if q == '"' and body[i] == "\\":
            i += 2
            continue
        if body[i] == q:
            return i
        i += 1
    return None


KEY_RE = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z_][A-Za-z0-9_.-]*)\s*:(?:\s(.*))?$")


def rule_exprs(path):
    """[(where, expr)] for every rule of a Prometheus rule file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out = []
    name = None
    i = 0
    while i < len(lines):
        m = KEY_RE.match(lines[i])
        rest = (m.group(3) or "") if m else ""
        if not m or rest.strip() == "" or rest.lstrip().startswith("#"):
            i += 1  # not a key, or a key holding a nested mapping / list
            continue
        # Every scalar is read whole (so that a description's text is never
        # taken for keys); only alert / record / expr values are kept.
        key_col = len(m.group(1))
        value, nxt = _yaml_scalar_after_key(lines, i, key_col, rest)
        if m.group(2) in ("alert", "record"):
            name = value.strip()
        elif m.group(2) == "expr":
            out.append(("%s: %s" % (os.path.basename(path), name or "line %d" % (i + 1)), value))
        i = nxt
    return out


# ------------------------------------------------------------------ dashboards


def dashboard_exprs(path):
    """[(where, expr)] for every panel target and templating query."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    out = []
    base = os.path.basename(path)

    def walk(node, title):
        if isinstance(node, dict):
            if isinstance(node.get("title"), str) and ("targets" in node or "panels" in node):
                title = node["title"]
            expr = node.get("expr")
            if isinstance(expr, str) and expr.strip():
                out.append(("%s: panel %r" % (base, title), expr))
            for k, v in node.items():
                if k != "templating":
                    walk(v, title)
        elif isinstance(node, list):
            for v in node:
                walk(v, title)

    walk(doc.get("panels", []), None)
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if not isinstance(q, str) or not q.strip():
            continue
        m = re.match(r"\s*(?:label_values|query_result)\s*\((.*)\)\s*$", q, re.S)
        if m:
            arg = m.group(1)
            if q.lstrip().startswith("label_values"):
                # label_values(selector, label) or label_values(label)
                parts = arg.rsplit(",", 1)
                if len(parts) == 1:
                    continue
                arg = parts[0]
            q = arg
        out.append(("%s: variable %r" % (base, var.get("name")), q))
    return out


# ----------------------------------------------------------------- exposition


SAMPLE_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{|\s)")
TYPE_RE = re.compile(r"^#\s*TYPE\s+([A-Za-z_:][A-Za-z0-9_:]*)\s+(\w+)")


def read_exposition(text):
    """(sample names, {family: type})."""
    samples = set()
    types = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = TYPE_RE.match(line)
            if m:
                types[m.group(1)] = m.group(2).lower()
            continue
        m = SAMPLE_RE.match(line + " ")
        if m:
            samples.add(m.group(1))
    return samples, types


def exported(name, samples, types):
    if name in samples or name in types:
        return True
    for suffix, kinds in (("_bucket", ("histogram",)),
                          ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base) in kinds:
                return True
    return False


SELF_TESTS = {
    'histogram_quantile(0.99, sum by (le) (rate(x_bucket{job="a", le=~".*"}[$__rate_interval])))':
        {"x_bucket"},
    'sum(rate(a_total[5m])) by (instance) / on(instance) group_left(version) b_info':
        {"a_total", "b_info"},
    'max without (pod) (c offset 5m) > bool 1e3 * 0x1F + .5 - Inf and d @ start()': {"c", "d"},
    '{__name__="e", job="x"} or label_replace(f, "dst", "$1", "src", "(.*)")': {"e", "f"},
    'topk(5, g{instance=~"$instance"}[1h:5m]) # h_in_a_comment\n unless count_values("v", i)':
        {"g", "i"},
    'sum by(le)(j) / ignoring(le) group_right k:recorded:rate5m': {"j", "k:recorded:rate5m"},
    'count by (state) (s{state="a}"}) > 0 and sum without(x) (y)': {"s", "y"},
    'rate(z[1h30m]) * 2 ^ 3 % 4 atan2 w unless ${v} + up': {"z", "w", "up"},
}


def self_test():
    bad = 0
    for expr, want in SELF_TESTS.items():
        got = metric_names(expr)
        if got != want:
            bad += 1
            print("self-test FAILED: %r -> %s, want %s" % (expr, sorted(got), sorted(want)))
    samples, types = read_exposition(
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"
        "# TYPE q summary\nq_sum 1\nq_count 1\n# TYPE c_count counter\nc_count 1\n")
    for name, want in (("h", True), ("h_bucket", True), ("h_sum", True), ("q_count", True),
                       ("q_bucket", False), ("c_count", True), ("c", False), ("c_bucket", False)):
        if exported(name, samples, types) != want:
            bad += 1
            print("self-test FAILED: exported(%r) != %s" % (name, want))
    if not bad:
        print("self-test OK: %d expressions, histogram/summary suffixes" % len(SELF_TESTS))
    return 1 if bad else 0


# Values that make Grafana's variables valid PromQL for a syntax check.
GRAFANA_SUBSTITUTES = [
    (re.compile(r"\$(?:\{__rate_interval\}|__rate_interval\b)"), "5m"),
    (re.compile(r"\$(?:\{__interval\}|__interval\b)"), "1m"),
    (re.compile(r"\$(?:\{__range\}|__range\b)"), "1h"),
    (re.compile(r"\$(?:\{[A-Za-z0-9_]+(?::[a-z]+)?\}|[A-Za-z0-9_]+)|\[\[[^\]]*\]\]"), ".*"),
]


def emit_dashboard_rules(dashboards, out_path):
    """Write every dashboard expression as a recording rule (for promtool)."""
    exprs = []
    for path in dashboards:
        exprs += dashboard_exprs(path)
    if not exprs:
        print("error: no expressions in %s" % ", ".join(dashboards), file=sys.stderr)
        return 2
    lines = ["groups:", "  - name: dashboard_expressions", "    rules:"]
    for i, (where, expr) in enumerate(exprs):
        for pattern, value in GRAFANA_SUBSTITUTES:
            expr = pattern.sub(value, expr)
        lines.append("      # %s" % where.replace("\n", " "))
        lines.append("      - record: dashboard:expr_%d" % i)
        lines.append("        expr: %s" % json.dumps(expr))  # a JSON string is a YAML string
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("exposition", nargs="?", help='Prometheus text exposition file, or "-" for stdin')
    ap.add_argument("--self-test", action="store_true", help="check the PromQL scanner itself and exit")
    ap.add_argument("--rules", action="append", help="rule file (default: alerts.yml next to this script)")
    ap.add_argument("--dashboard", action="append",
                    help="Grafana dashboard JSON (default: grafana-dashboard.json next to this script)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every referenced metric")
    ap.add_argument("--emit-dashboard-rules", metavar="FILE",
                    help="write the dashboard expressions (Grafana variables replaced) as a "
                         "recording-rule file, so that `promtool check rules FILE` parses them, and exit")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if args.emit_dashboard_rules:
        return emit_dashboard_rules(args.dashboard or [os.path.join(HERE, "grafana-dashboard.json")],
                                    args.emit_dashboard_rules)
    if args.exposition is None:
        ap.error("the exposition file is required")

    rules = args.rules or [os.path.join(HERE, "alerts.yml")]
    dashboards = args.dashboard or [os.path.join(HERE, "grafana-dashboard.json")]

    try:
        if args.exposition == "-":
            text = sys.stdin.read()
        else:
            with open(args.exposition, encoding="utf-8") as f:
                text = f.read()
        samples, types = read_exposition(text)
        if not samples:
            print("error: %s holds no samples" % args.exposition, file=sys.stderr)
            return 2

        used = {}  # name -> [where]
        exprs = []
        for path in rules:
            exprs += rule_exprs(path)
        for path in dashboards:
            exprs += dashboard_exprs(path)
        for where, expr in exprs:
            try:
                found = metric_names(expr)
            except PromQLError as e:
                print("error: %s: cannot scan expression (%s): %s" % (where, e, expr), file=sys.stderr)
                return 2
            for name in found:
                if name not in SYNTHETIC:
                    used.setdefault(name, []).append(where)
    except (OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2

    if not exprs or not used:
        print("error: no expressions or metric names found in %s" % ", ".join(rules + dashboards),
              file=sys.stderr)
        return 2

    missing = sorted(n for n in used if not exported(n, samples, types))
    if args.verbose:
        for name in sorted(used):
            print("  %-8s %s" % ("ok" if name not in missing else "MISSING", name))
    if missing:
        print("%d metric name(s) used by rules/dashboards are missing from %s:"
              % (len(missing), args.exposition))
        for name in missing:
            wheres = sorted(set(used[name]))
            print("  %s  (used in: %s)" % (name, "; ".join(wheres)))
        return 1
    print("OK: %d expressions reference %d metric names, all present in %s"
          % (len(exprs), len(used), args.exposition))
    return 0


if __name__ == "__main__":
    sys.exit(main())
