#!/usr/bin/env python3
"""Deployment rules for sessiond's rendered manifests (python3 stdlib only).

    python3 k8s/tools/check-policy.py RENDERED.json [--image-uid UID] [--require-monitoring]

RENDERED.json is the JSON array written by validate-manifests.mjs --json-out
(the output of `kubectl kustomize k8s/base`). The schema validator checks that
every object is well-formed; this checks that the objects say what sessiond
needs (docs/DEPLOY.md, DESIGN.md "Deployment"):

  - layout, told apart by who mounts the sessions volume:
      sidecar (k8s/base, the default): another container of the pod (the
        login bot) mounts it too; the volume is ReadWriteOnce (or an
        emptyDir); replicas 1, no sharding;
      shared storage (k8s/overlays/shared-storage): only sessiond mounts it;
        a ReadWriteMany PVC; replicas == --shard-count, --shard-index auto fed
        by SESSIOND_POD_NAME;
  - StatefulSet (container `sessiond`): admin token from an existing Secret key, grace period
    longer than --drain-timeout, probes /healthz /readyz + a startupProbe,
    resources, no service-link env (sessiond reads every SESSIOND_* variable);
  - pod and container securityContext: non-root (uid == the image's USER),
    fsGroup, read-only root fs, no privilege escalation, all capabilities
    dropped, RuntimeDefault seccomp;
  - volumes: sessions at --sessions-dir (see layout), the profile
    ConfigMap at --profile, an emptyDir at /tmp;
  - Kubernetes' recommended labels app.kubernetes.io/{name,instance,version,
    component,part-of,managed-by} on every object; app.kubernetes.io/version
    equals the sessiond image's tag and appears in no selector (it changes
    every release; a StatefulSet's selector is immutable);
  - Services, ServiceMonitor (job label "sessiond", as monitoring/alerts.yml
    expects), PrometheusRule, PDB (maxUnavailable 1), NetworkPolicy
    (ingress on the HTTP port only), all selecting the sessiond pods; the
    ServiceMonitor relabels `instance` to the pod name.
"""

import json
import posixpath
import re
import sys

EXPECTED_UID = 10001
HTTP_PORT = 9464
ALERT_JOB = "sessiond"
RECOMMENDED_LABELS = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
]
VERSION_LABEL = "app.kubernetes.io/version"

problems = []


def fail(msg):
    problems.append(msg)


def need(cond, msg):
    if not cond:
        fail(msg)
    return bool(cond)


def dig(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


def parse_duration(text):
    """'20s', '1m30s', '500ms' -> seconds (float); None if unparsable."""
    if not isinstance(text, str):
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def flag(args, env, name):
    """Value of --name from args (--name V or --name=V), else env SESSIOND_NAME."""
    for i, a in enumerate(args):
        if a == "--" + name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--" + name + "="):
            return a.split("=", 1)[1]
    var = "SESSIOND_" + name.upper().replace("-", "_")
    for e in env:
        if e.get("name") == var and "value" in e:
            return e["value"]
    return None


def selects(selector, labels):
    """matchLabels-only selector (what these manifests use) against labels."""
    if not isinstance(selector, dict) or not selector:
        return False
    if "matchExpressions" in selector:
        fail("selectors must use matchLabels only (matchExpressions are not evaluated here)")
        return False
    ml = selector.get("matchLabels", selector)
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


def check_monitoring(one, services, metrics):
    sm = one("ServiceMonitor")
    sm_sel = dig(sm, "spec", "selector", default={})
    scraped = [s for s in services if selects(sm_sel, s["metadata"].get("labels", {}))]
    need([s["metadata"]["name"] for s in scraped] == [s["metadata"]["name"] for s in metrics[:1]],
         "the ServiceMonitor selects exactly the metrics Service (not the headless one too)")
    need([e.get("port") for e in dig(sm, "spec", "endpoints", default=[])] == ["metrics"],
         "ServiceMonitor scrapes port `metrics`")
    job_label = dig(sm, "spec", "jobLabel")
    job = scraped[0]["metadata"].get("labels", {}).get(job_label) if scraped and job_label else (
        scraped[0]["metadata"]["name"] if scraped else None)
    need(job == ALERT_JOB, f"scrape job label is {ALERT_JOB!r} as monitoring/alerts.yml expects (got {job!r})")
    need(dig(one("PrometheusRule"), "spec", "groups"), "PrometheusRule has rule groups")
    # instance = pod name, not the pod's IP:port (meaningless in an alert).
    relabel = [r for e in dig(sm, "spec", "endpoints", default=[]) for r in e.get("relabelings", [])]
    need(any(r.get("sourceLabels") == ["__meta_kubernetes_pod_name"] and r.get("targetLabel") == "instance"
             and r.get("action", "replace") == "replace" for r in relabel),
         "ServiceMonitor relabels instance from __meta_kubernetes_pod_name")


def check_labels(objects, sessiond_image):
    """Recommended labels everywhere; version = image tag; version in no selector."""
    for o in objects:
        name = "%s/%s" % (o.get("kind"), dig(o, "metadata", "name"))
        labels = dig(o, "metadata", "labels", default={}) or {}
        missing = [k for k in RECOMMENDED_LABELS if not labels.get(k)]
        need(not missing, f"{name}: missing recommended label(s) {', '.join(missing)}")
        selectors = [
            dig(o, "spec", "selector"),
            dig(o, "spec", "podSelector"),
            dig(o, "spec", "template", "spec", "affinity"),
            dig(o, "spec", "template", "spec", "topologySpreadConstraints"),
            dig(o, "spec", "ingress"),
            dig(o, "spec", "egress"),
        ]
        need(VERSION_LABEL not in json.dumps(selectors),
             f"{name}: a selector uses {VERSION_LABEL} (it changes every release)")
        tmpl = dig(o, "spec", "template", "metadata", "labels")
        if tmpl is not None:
            missing = [k for k in RECOMMENDED_LABELS if not tmpl.get(k)]
            need(not missing, f"{name}: pod template lacks recommended label(s) {', '.join(missing)}")
    # image "repo/sessiond:0.1.0" or "...@sha256:..." (no tag to compare)
    tag = None
    ref = (sessiond_image or "").split("@")[0]
    if ":" in ref.rsplit("/", 1)[-1]:
        tag = ref.rsplit(":", 1)[1]
    versions = {dig(o, "metadata", "labels", VERSION_LABEL) for o in objects}
    if tag:
        need(versions == {tag}, f"{VERSION_LABEL} {sorted(map(str, versions))} must equal the sessiond image tag {tag!r}")
    else:
        need(len(versions) == 1, f"one {VERSION_LABEL} on all objects (got {sorted(map(str, versions))})")


def main():
    argv = sys.argv[1:]
    uid = EXPECTED_UID
    require_monitoring = "--require-monitoring" in argv
    argv = [a for a in argv if a != "--require-monitoring"]
    if "--image-uid" in argv:
        i = argv.index("--image-uid")
        uid = int(argv[i + 1])
        del argv[i : i + 2]
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        objects = json.load(f)

    by_kind = {}
    for o in objects:
        by_kind.setdefault(o.get("kind"), []).append(o)

    def one(kind):
        items = by_kind.get(kind, [])
        need(len(items) == 1, f"expected exactly one {kind}, found {len(items)}")
        return items[0] if items else {}

    sts = one("StatefulSet")
    spec = sts.get("spec", {})
    pod = dig(spec, "template", "spec", default={})
    pod_labels = dig(spec, "template", "metadata", "labels", default={})
    containers = pod.get("containers", [])
    mine = [x for x in containers if x.get("name") == "sessiond"]
    need(len(mine) == 1, "the pod has exactly one container named sessiond")
    c = mine[0] if mine else {}
    others = [x for x in containers if x is not c]
    args = c.get("args", [])
    env = c.get("env", [])
    sessions_dir = flag(args, env, "sessions-dir")
    sessions_vol = next((m.get("name") for m in c.get("volumeMounts", []) if m.get("mountPath") == sessions_dir), None)
    sharers = [x.get("name") for x in others
               if any(m.get("name") == sessions_vol for m in x.get("volumeMounts", []))]
    sidecar = bool(sharers)
    print("NOTE layout: " + (f"sidecar (container(s) {', '.join(sharers)} share the sessions volume)" if sidecar
                             else "shared storage (sessiond shards on a ReadWriteMany volume)"))
    need(sidecar or not others,
         f"containers {[x.get('name') for x in others]} do not share the sessions volume: "
         "the only extra container the policy knows is a login bot sharing it")

    # --- StatefulSet / sharding ---
    need(dig(spec, "selector") and selects(spec["selector"], pod_labels),
         "StatefulSet selector must match its pod template labels")
    need(pod_labels.get("app.kubernetes.io/name") == "sessiond",
         "pod label app.kubernetes.io/name=sessiond")
    need(spec.get("podManagementPolicy") == "Parallel", "podManagementPolicy: Parallel")
    replicas = spec.get("replicas")
    shard_count = flag(args, env, "shard-count")
    if sidecar:
        # One bot + sessiond unit on a RWO volume: a second replica would not
        # attach it (or, as an emptyDir, see other files), and sharding needs
        # one directory seen by all shards.
        need(replicas == 1, f"sidecar layout: replicas 1 (got {replicas})")
        need(shard_count in (None, "1"), f"sidecar layout: no --shard-count (got {shard_count})")
    else:
        need(shard_count is not None and str(replicas) == str(shard_count),
             f"--shard-count ({shard_count}) must equal spec.replicas ({replicas})")
        need(flag(args, env, "shard-index") == "auto", "--shard-index auto")
        pod_name_env = [e for e in env if e.get("name") == "SESSIOND_POD_NAME"]
        need(pod_name_env and dig(pod_name_env[0], "valueFrom", "fieldRef", "fieldPath") == "metadata.name",
             "env SESSIOND_POD_NAME from fieldRef metadata.name")
    need(args[:1] == ["run"], "container args start with the `run` subcommand")
    listen = flag(args, env, "listen") or ""
    need(listen.endswith(f":{HTTP_PORT}"), f"--listen on port {HTTP_PORT} (got {listen!r})")

    # The admin token comes from a Secret, as a file (SESSIOND_ADMIN_TOKEN_FILE
    # on a mounted secret volume: not in `ps` or the pod's env) or, accepted
    # too, as an env secretKeyRef; never as a literal value.
    token_file = next((e.get("value") for e in env if e.get("name") == "SESSIOND_ADMIN_TOKEN_FILE"), None)
    token_env = [e for e in env if e.get("name") == "SESSIOND_ADMIN_TOKEN"]
    need(not (token_file and token_env), "only one of SESSIOND_ADMIN_TOKEN_FILE and SESSIOND_ADMIN_TOKEN")
    need(not any("value" in e for e in token_env), "SESSIOND_ADMIN_TOKEN is not a literal value")
    secret_name, secret_key = None, None
    if token_file:
        mount = next((m for m in c.get("volumeMounts", [])
                      if token_file.startswith(m.get("mountPath", "").rstrip("/") + "/")), None)
        vol = next((v for v in pod.get("volumes", []) if mount and v.get("name") == mount.get("name")), None)
        if need(vol and "secret" in vol and mount.get("readOnly") is True and "subPath" not in mount,
                f"SESSIOND_ADMIN_TOKEN_FILE ({token_file}) lies on a read-only secret volume mounted without subPath"):
            secret_name = vol["secret"].get("secretName")
            secret_key = token_file[len(mount["mountPath"].rstrip("/")) + 1:]
    else:
        ref = dig(token_env, 0, "valueFrom", "secretKeyRef", default={})
        if need(ref.get("name") and ref.get("key"),
                "SESSIOND_ADMIN_TOKEN_FILE on a secret volume, or env SESSIOND_ADMIN_TOKEN from a secretKeyRef"):
            secret_name, secret_key = ref["name"], ref["key"]
    if secret_name:
        secrets = [s for s in by_kind.get("Secret", []) if s["metadata"]["name"] == secret_name]
        need(secrets and secret_key in {**secrets[0].get("data", {}), **secrets[0].get("stringData", {})},
             f"Secret {secret_name} with key {secret_key} is part of the manifests")

    drain = parse_duration(flag(args, env, "drain-timeout"))
    grace = pod.get("terminationGracePeriodSeconds")
    need(drain is not None, "--drain-timeout is set (e.g. 20s)")
    need(isinstance(grace, int) and drain is not None and grace >= drain + 5,
         f"terminationGracePeriodSeconds ({grace}) >= drain timeout ({drain}s) + 5s margin")
    need(pod.get("enableServiceLinks") is False,
         "enableServiceLinks: false (service env vars like SESSIOND_METRICS_PORT would be read as flags)")
    need(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken: false")

    # --- probes ---
    port_names = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    need(HTTP_PORT in port_names.values(), f"containerPort {HTTP_PORT}")

    def probe(kind, path):
        pr = c.get(kind)
        if not need(pr, f"{kind} is set"):
            return
        hg = pr.get("httpGet", {})
        need(hg.get("path") == path, f"{kind} on {path} (got {hg.get('path')})")
        port = hg.get("port")
        need(port == HTTP_PORT or port_names.get(port) == HTTP_PORT, f"{kind} on port {HTTP_PORT}")

    probe("livenessProbe", "/healthz")
    probe("readinessProbe", "/readyz")
    probe("startupProbe", "/healthz")

    res = c.get("resources", {})
    for path in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
        need(dig(res, *path), f"resources.{'.'.join(path)} is set")

    # --- security ---
    psc = pod.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot: true")
    need(psc.get("runAsUser") == uid, f"pod securityContext.runAsUser: {uid} (the image's USER)")
    need(psc.get("fsGroup") == uid, f"pod securityContext.fsGroup: {uid}")
    need(dig(psc, "seccompProfile", "type") == "RuntimeDefault", "pod seccompProfile RuntimeDefault")
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        need(not pod.get(k), f"pod {k} is not set")
    for ctr in pod.get("initContainers", []) + containers:
        n = ctr.get("name")
        sc = ctr.get("securityContext", {})

        def eff(key):  # container value wins over the pod's
            return sc[key] if key in sc else psc.get(key)

        need(sc.get("allowPrivilegeEscalation") is False, f"{n}: allowPrivilegeEscalation: false")
        need(sc.get("readOnlyRootFilesystem") is True, f"{n}: readOnlyRootFilesystem: true")
        need(not sc.get("privileged"), f"{n}: not privileged")
        need("ALL" in dig(sc, "capabilities", "drop", default=[]), f"{n}: capabilities.drop [ALL]")
        need(not dig(sc, "capabilities", "add"), f"{n}: no capabilities added")
        need(eff("runAsNonRoot") is True, f"{n}: runAsNonRoot: true")
        need(eff("runAsUser") == uid, f"{n}: runAsUser {uid}")
        need(dig(eff("seccompProfile") or {}, "type") == "RuntimeDefault", f"{n}: seccompProfile RuntimeDefault")

    # --- volumes ---
    vols = {v.get("name"): v for v in pod.get("volumes", [])}
    mounts = {m.get("mountPath"): m for m in c.get("volumeMounts", [])}
    m = mounts.get(sessions_dir)
    if need(m, f"--sessions-dir ({sessions_dir}) is a volume mount"):
        need(not m.get("readOnly"), "sessions volume is writable")
        claim = dig(vols.get(m["name"]), "persistentVolumeClaim", "claimName")
        pvcs = [p for p in by_kind.get("PersistentVolumeClaim", []) if p["metadata"]["name"] == claim]
        modes = set(dig(pvcs[0], "spec", "accessModes", default=[])) if pvcs else set()
        if sidecar:
            need(claim or "emptyDir" in vols.get(m["name"], {}),
                 "sidecar layout: the sessions volume is a persistentVolumeClaim or an emptyDir")
            if pvcs:
                need(modes and modes <= {"ReadWriteOnce", "ReadWriteOncePod"},
                     f"sidecar layout: PVC {claim} is ReadWriteOnce (one node writes; got {sorted(modes)})")
        else:
            need(claim, "the sessions volume is a persistentVolumeClaim")
            if pvcs:
                need("ReadWriteMany" in modes, f"PVC {claim} is ReadWriteMany (all replicas and the bots share it)")
        if claim and not pvcs:
            print(f"NOTE sessions PVC {claim} is not part of these manifests")
    profile = flag(args, env, "profile") or ""
    m = mounts.get(posixpath.dirname(profile))
    if need(m, f"--profile ({profile}) lies in a mounted directory"):
        need(m.get("readOnly") is True, "profile volume is read-only")
        cm_name = dig(vols.get(m["name"]), "configMap", "name")
        cms = [x for x in by_kind.get("ConfigMap", []) if x["metadata"]["name"] == cm_name]
        need(cms and posixpath.basename(profile) in cms[0].get("data", {}),
             f"ConfigMap {cm_name} holds {posixpath.basename(profile)}")
    m = mounts.get("/tmp")
    need(m and "emptyDir" in vols.get(m["name"], {}), "/tmp is an emptyDir (read-only root fs)")

    # --- services and monitoring ---
    services = by_kind.get("Service", [])
    headless = [s for s in services if s["metadata"]["name"] == spec.get("serviceName")]
    if need(headless, f"governing Service {spec.get('serviceName')} exists"):
        need(dig(headless[0], "spec", "clusterIP") == "None", "governing Service is headless")
    for s in services:
        need(selects(dig(s, "spec", "selector", default={}), pod_labels),
             f"Service {s['metadata']['name']} selects the sessiond pods")
    metrics = [s for s in services
               if any(p.get("name") == "metrics" and p.get("port") == HTTP_PORT
                      for p in dig(s, "spec", "ports", default=[]))]
    need(metrics, f"a Service with port `metrics` {HTTP_PORT}")

    have_monitoring = by_kind.get("ServiceMonitor") or by_kind.get("PrometheusRule")
    if require_monitoring or have_monitoring:
        check_monitoring(one, services, metrics)
    else:
        print("NOTE no ServiceMonitor / PrometheusRule: scraping and alerting are configured elsewhere")

    check_labels(objects, c.get("image"))

    pdb = one("PodDisruptionBudget")
    need(dig(pdb, "spec", "maxUnavailable") == 1, "PDB maxUnavailable: 1")
    need(selects(dig(pdb, "spec", "selector", default={}), pod_labels), "PDB selects the sessiond pods")

    np = one("NetworkPolicy")
    need(selects(dig(np, "spec", "podSelector", default={}), pod_labels), "NetworkPolicy selects the sessiond pods")
    need(set(dig(np, "spec", "policyTypes", default=[])) == {"Ingress", "Egress"},
         "NetworkPolicy covers Ingress and Egress")
    ingress = dig(np, "spec", "ingress", default=[])
    in_ports = [p.get("port") for rule in ingress for p in rule.get("ports", [])]
    need(ingress and all(rule.get("ports") for rule in ingress) and set(in_ports) <= {HTTP_PORT, "http"},
         f"NetworkPolicy ingress only on port {HTTP_PORT} (got {in_ports})")
    out_ports = {p.get("port") for rule in dig(np, "spec", "egress", default=[]) for p in rule.get("ports", [])}
    need({53, 443} <= out_ports, f"NetworkPolicy egress allows DNS and HTTPS (got {sorted(map(str, out_ports))})")

    for p in problems:
        print(f"FAIL policy: {p}")
    print(f"check-policy: {len(objects)} object(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
