#!/usr/bin/env node
// Offline schema validation of rendered Kubernetes manifests.
//
//   node k8s/tools/validate-manifests.mjs [--json-out FILE] [--skip-kind API/KIND]... FILE|-
//
// Every document of FILE (multi-document YAML, e.g. `kubectl kustomize`
// output) is validated against the JSON schema of its apiVersion/kind:
//   - built-in kinds: kubernetes-models 4.5.1 (validators generated with ajv
//     from the Kubernetes OpenAPI spec; its API surface is that of 1.33: no
//     release matches 1.32 exactly, the previous one predates 1.29. A field
//     new in 1.33 would pass here and be refused by a 1.32 server; the
//     manifests use only fields GA since 1.27 or earlier),
//   - Prometheus Operator CRDs (ServiceMonitor, PrometheusRule, ...):
//     @kubernetes-models/prometheus-operator (generated from the CRD schemas).
// Both are pinned in k8s/tools/package.json and installed by
// k8s/tools/install-validator.sh; nothing is fetched at run time.
//
// On top of the schemas (type, enum, required, format), fields the schema
// does not know are errors, like kubeconform -strict or the API server's
// strict field validation: a typo such as `readinesProbe` would otherwise be
// dropped silently by the cluster. The generated validators do not check
// that themselves, so each document is validated through a Proxy that
// records which properties the validator looked up; an own property of an
// object the validator inspected but never looked up is unknown. Objects
// whose keys the validator enumerates are maps (labels, data, ...) and are
// not checked that way; objects it never inspects are free-form.
//
// A kind with no schema is an error, unless named with --skip-kind
// (e.g. --skip-kind example.com/v1/Widget): skips are explicit and printed.
//
// --json-out writes the parsed documents as a JSON array, for further
// checks by tools without a YAML parser (tests/checks/k8s.sh uses python3).

import { readFileSync, writeFileSync } from "node:fs";
import YAML from "yaml";

// API groups served by each models package (group "" = core).
const PROVIDERS = [
  {
    pkg: "@kubernetes-models/prometheus-operator",
    groups: new Set(["monitoring.coreos.com"]),
  },
  {
    pkg: "kubernetes-models",
    groups: new Set([
      "",
      "admissionregistration.k8s.io",
      "apiextensions.k8s.io",
      "apiregistration.k8s.io",
      "apps",
      "authentication.k8s.io",
      "authorization.k8s.io",
      "autoscaling",
      "batch",
      "certificates.k8s.io",
      "coordination.k8s.io",
      "discovery.k8s.io",
      "events.k8s.io",
      "flowcontrol.apiserver.k8s.io",
      "networking.k8s.io",
      "node.k8s.io",
      "policy",
      "rbac.authorization.k8s.io",
      "scheduling.k8s.io",
      "storage.k8s.io",
    ]),
  },
];

function usage(msg) {
  if (msg) console.error(`validate-manifests: ${msg}`);
  console.error("usage: validate-manifests.mjs [--json-out FILE] [--skip-kind API/KIND]... FILE|-");
  process.exit(2);
}

const args = process.argv.slice(2);
let jsonOut = null;
let input = null;
const skipKinds = new Set();
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--json-out") jsonOut = args[++i] ?? usage("--json-out needs a file");
  else if (a === "--skip-kind") skipKinds.add(args[++i] ?? usage("--skip-kind needs API/KIND"));
  else if (a.startsWith("-") && a !== "-") usage(`unknown option ${a}`);
  else if (input === null) input = a;
  else usage("one input file only");
}
if (input === null) usage("no input file");

const text = readFileSync(input === "-" ? 0 : input, "utf8");
const docs = YAML.parseAllDocuments(text, { prettyErrors: true });

let failures = 0;
const fail = (where, msg) => {
  failures++;
  console.error(`FAIL ${where}: ${msg}`);
};

// ---- proxy that records what the validator looks at --------------------

const ARRAY_PROTO_KEYS = new Set(["length"]);

function tracked(root) {
  // For every object/array reached through the proxy: the keys looked up,
  // and whether its keys were enumerated.
  const info = new Map(); // target -> { gets:Set, enumerated:bool }
  const proxies = new Map(); // target -> proxy
  const infoOf = (t) => {
    let i = info.get(t);
    if (!i) info.set(t, (i = { gets: new Set(), enumerated: false }));
    return i;
  };
  const wrap = (v) => {
    if (v === null || typeof v !== "object") return v;
    let p = proxies.get(v);
    if (p) return p;
    p = new Proxy(v, {
      get(t, k, r) {
        if (typeof k === "string") infoOf(t).gets.add(k);
        return wrap(Reflect.get(t, k, r));
      },
      has(t, k) {
        if (typeof k === "string") infoOf(t).gets.add(k);
        return Reflect.has(t, k);
      },
      getOwnPropertyDescriptor(t, k) {
        if (typeof k === "string") infoOf(t).gets.add(k);
        return Reflect.getOwnPropertyDescriptor(t, k);
      },
      ownKeys(t) {
        infoOf(t).enumerated = true;
        return Reflect.ownKeys(t);
      },
    });
    proxies.set(v, p);
    return p;
  };
  return { proxy: wrap(root), info };
}

function unknownFields(root, info) {
  const found = [];
  const walk = (v, path) => {
    if (v === null || typeof v !== "object") return;
    if (Array.isArray(v)) {
      v.forEach((e, i) => walk(e, `${path}[${i}]`));
      return;
    }
    const i = info.get(v);
    for (const k of Object.keys(v)) {
      const p = path ? `${path}.${k}` : k;
      if (i && !i.enumerated && !i.gets.has(k)) found.push(p);
      else walk(v[k], p);
    }
  };
  walk(root, "");
  return found;
}

// ---- schema lookup -----------------------------------------------------

async function modelFor(apiVersion, kind) {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const provider = PROVIDERS.find((p) => p.groups.has(group));
  if (!provider) return null;
  const spec = group === "" ? `${provider.pkg}/${version}` : `${provider.pkg}/${group}/${version}`;
  let mod;
  try {
    mod = await import(spec);
  } catch (e) {
    if (e && (e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED" || e.code === "ERR_MODULE_NOT_FOUND")) return null;
    throw e;
  }
  const cls = mod[kind];
  return typeof cls === "function" && typeof cls.prototype.validate === "function" ? cls : null;
}

// What the API server decodes: base64 fields ([]byte in Go) may be wrapped
// over several lines (kustomize wraps long Secret values; Go's base64 decoder
// skips \r and \n), which the schemas' "byte" format does not allow.
function apiServerView(obj) {
  const unwrap = (m) =>
    m && typeof m === "object"
      ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === "string" ? v.replace(/[\r\n]/g, "") : v]))
      : m;
  if (obj.apiVersion === "v1" && obj.kind === "Secret" && obj.data) return { ...obj, data: unwrap(obj.data) };
  if (obj.apiVersion === "v1" && obj.kind === "ConfigMap" && obj.binaryData)
    return { ...obj, binaryData: unwrap(obj.binaryData) };
  return obj;
}

function describeErrors(err) {
  const list = Array.isArray(err?.errors) ? err.errors : null;
  if (!list) return [String(err?.message ?? err)];
  return list.map((e) => {
    const at = e.instancePath
      ? e.instancePath
          .slice(1)
          .split("/")
          .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
          .map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i ? `.${s}` : s))
          .join("")
      : "(root)";
    const params = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "";
    return `${at}: ${e.message ?? e.keyword}${params}`;
  });
}

// ---- main ----------------------------------------------------------------

const objects = [];
let n = 0;
for (const doc of docs) {
  n++;
  if (doc.errors.length) {
    for (const e of doc.errors) fail(`document ${n}`, `YAML: ${e.message}`);
    continue;
  }
  const obj = doc.toJS({ maxAliasCount: 100 });
  if (obj === null || obj === undefined) continue; // empty document
  const where0 = `document ${n}`;
  if (typeof obj !== "object" || Array.isArray(obj)) {
    fail(where0, "not a YAML mapping");
    continue;
  }
  const { apiVersion, kind } = obj;
  const name = obj.metadata?.name;
  const where = `${kind ?? "?"}/${name ?? "?"} (${apiVersion ?? "?"})`;
  if (typeof apiVersion !== "string" || typeof kind !== "string" || typeof name !== "string") {
    fail(where0, "apiVersion, kind and metadata.name are required strings");
    continue;
  }
  objects.push(obj);
  const key = `${apiVersion}/${kind}`;
  if (skipKinds.has(key)) {
    console.log(`SKIP ${where}: no schema check (--skip-kind ${key})`);
    continue;
  }
  const cls = await modelFor(apiVersion, kind);
  if (!cls) {
    fail(where, `no schema for ${key}; add a models package to k8s/tools/package.json or pass --skip-kind ${key}`);
    continue;
  }
  const view = apiServerView(obj);
  const { proxy, info } = tracked(view);
  let errors = [];
  try {
    cls.prototype.validate.call(proxy);
  } catch (e) {
    errors = describeErrors(e);
  }
  for (const f of unknownFields(view, info)) errors.push(`${f}: unknown field (not in the ${key} schema)`);
  if (errors.length) for (const e of errors) fail(where, e);
  else console.log(`ok   ${where}`);
}

if (jsonOut) writeFileSync(jsonOut, JSON.stringify(objects, null, 1));
if (objects.length === 0) fail("input", "no Kubernetes objects found");
console.log(`validate-manifests: ${objects.length} object(s), ${failures} problem(s)`);
process.exit(failures ? 1 : 0);
