#!/usr/bin/env bash
# Offline checks of the Dockerfile against the built binary (no Docker needed).
#
#   SESSIOND_BIN=build/sessiond bash tests/checks/dockerfile.sh
#
# SESSIOND_BIN defaults to build/sessiond; DOCKERFILE defaults to Dockerfile.
#
#  1. The runtime (last) stage runs as a numeric, non-root USER: Kubernetes'
#     runAsNonRoot can only verify a numeric uid, and it must be the uid the
#     manifests use (k8s/base/statefulset.yaml: 10001).
#  2. It installs ca-certificates (HTTPS to the site) and declares
#     VOLUME /sessions and EXPOSE 9464.
#  3. Every shared library the binary links is provided by a Debian package
#     that the runtime stage installs with apt-get.
#  4. Browser: when the runtime stage's ARG WITH_BROWSER defaults to 1 it
#     installs chromium-headless-shell (which holds the binary sessiond looks
#     for first, when this machine has it); the default must be 1 when the
#     shipped profile (profiles/baman24.json) has browser steps; a
#     `--browser PATH` in k8s/base/statefulset.yaml must be a path the
#     Dockerfile creates; every apt-get install uses --no-install-recommends;
#     the ENTRYPOINT starts with tini (it reaps the browser's orphaned
#     processes, which stay zombies under sessiond as PID 1).
#  5. Every FROM is pinned by digest (IMAGE:TAG@sha256:...; ARGs declared
#     before the first FROM are substituted), the runtime stage sets the OCI
#     labels org.opencontainers.image.{title,description,source,licenses,
#     version,revision,created}, and its ARG VERSION default is the version in
#     CMakeLists.txt.
#
# How 3 works, and why only the direct dependencies: the libraries are the
# binary's DT_NEEDED entries (readelf -d), i.e. what it was linked against;
# `ldd` is used only to resolve each of those names to the file the loader
# picks, and `dpkg -S` maps that file to its package. The libraries *those*
# libraries need (libssl3 under libcurl4, libfmt9 under libspdlog1.10, ...)
# are not checked: apt installs them through the packages' Depends, and
# listing them in the Dockerfile would only go stale. Checking full `ldd`
# output instead would demand every transitive package by name.
#
# Packages assumed present in debian:12-slim, so not required in the
# Dockerfile: libc6 (libc, libm, ld-linux, libpthread...), libgcc-s1 and
# libstdc++6 (apt itself needs them; they come from the same gcc-12 / glibc
# as the build stage, so the C/C++ runtime ABI matches). Every other package,
# even one the base image happens to contain (zlib1g, ...), must be listed:
# the base image's contents beyond these are not a contract.
#
# Ends with "N passed, M failed"; exit status 1 if any check failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

BASE_IMAGE_PACKAGES=(libc6 libgcc-s1 libstdc++6)
EXPECTED_UID=10001

bin=${SESSIOND_BIN:-build/sessiond}
dockerfile=${DOCKERFILE:-Dockerfile}

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
failc() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
  echo "dockerfile: $passed passed, $failed failed"
  ((failed == 0))
  exit
}

for tool in python3 readelf ldd dpkg; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    failc "$tool not found (Debian: python3, binutils, libc-bin, dpkg)"
    finish
  fi
done
if [[ ! -f $dockerfile ]]; then
  failc "$dockerfile not found"
  finish
fi

# ---- parse the Dockerfile's last stage ------------------------------------
# Prints: "PKG name" per package apt-get installs in the last stage,
# "USER value" (last USER of the last stage, or empty), "VOLUME path",
# "EXPOSE port", "ERR message".
parsed=$(python3 - "$dockerfile" <<'PY'
import re, shlex, sys

lines, cur = [], ""
for raw in open(sys.argv[1], encoding="utf-8"):
    line = raw.rstrip("\n")
    if not cur and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if cur and line.lstrip().startswith("#"):  # comment inside a continuation
        continue
    if line.rstrip().endswith("\\"):
        cur += line.rstrip()[:-1] + " "
        continue
    lines.append(cur + line)
    cur = ""
if cur:
    lines.append(cur)

stages = []
global_args = {}  # ARGs before the first FROM: the only ones FROM can use
stage_names = set()
for l in lines:
    parts = l.strip().split(None, 1)
    ins = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    if ins == "FROM":
        stages.append([])
        words = [w for w in rest.split() if not w.startswith("--platform")]
        image = words[0] if words else ""
        resolved = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                          lambda m: global_args.get(m.group(1), ""), image)
        if resolved not in stage_names:  # not FROM an earlier stage of this file
            print(f"FROM {image} {resolved or '(empty)'}")
        if len(words) >= 3 and words[1].upper() == "AS":
            stage_names.add(words[2])
    elif not stages and ins == "ARG":
        name, _, value = rest.strip().partition("=")
        global_args[name] = value.strip('"')
    elif stages:
        stages[-1].append((ins, rest))
if not stages:
    print("ERR no FROM instruction")
    sys.exit()

user = ""
for ins, rest in stages[-1]:
    if ins == "USER":
        user = rest.strip()
    elif ins == "VOLUME":
        for v in re.findall(r'[^\s\[\],"]+', rest):
            print("VOLUME", v)
    elif ins == "EXPOSE":
        for p in rest.split():
            print("EXPOSE", p.split("/")[0])
    elif ins == "ARG":
        for a in rest.split():
            print("ARG", a)
    elif ins == "ENTRYPOINT":
        print("ENTRYPOINT", rest.strip())
    elif ins == "LABEL":
        try:
            for kv in shlex.split(rest, posix=True):
                print("LABEL", kv)
        except ValueError as e:
            print(f"ERR cannot tokenize LABEL: {e}")
    elif ins == "RUN":
        if rest.lstrip().startswith("["):
            print("ERR exec-form RUN is not parsed for apt-get install: " + rest)
            continue
        try:
            tokens = shlex.split(rest, posix=True)
        except ValueError as e:
            print(f"ERR cannot tokenize RUN: {e}")
            continue
        # split into simple commands
        cmds, cmd = [], []
        for t in tokens:
            if t in ("&&", "||", ";", "|"):
                cmds.append(cmd); cmd = []
            elif t.endswith(";"):
                cmd.append(t[:-1]); cmds.append(cmd); cmd = []
            else:
                cmd.append(t)
        cmds.append(cmd)
        for c in cmds:
            while c and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", c[0]):  # VAR=value prefix
                c = c[1:]
            if len(c) < 2 or c[0] not in ("apt-get", "apt") or "install" not in c[1:]:
                continue
            args = c[c.index("install") + 1:]
            if "--no-install-recommends" not in args:
                print("ERR apt-get install without --no-install-recommends (recommended packages bloat the image)")
            i = 0
            while i < len(args):
                a = args[i]
                if a in ("-o", "-t", "-c", "--option", "--target-release", "--config-file"):
                    i += 2
                    continue
                if not a.startswith("-"):
                    if "$" in a:
                        print(f"ERR package list uses a variable ({a}): write packages literally")
                    else:
                        print("PKG", re.split(r"[=:]", a)[0])
                i += 1
print("USER", user)
PY
)

mapfile -t runtime_pkgs < <(sed -n 's/^PKG //p' <<<"$parsed" | sort -u)
user=$(sed -n 's/^USER //p' <<<"$parsed")
while IFS= read -r err; do failc "parsing $dockerfile: $err"; done < <(sed -n 's/^ERR //p' <<<"$parsed")

# ---- 1. non-root numeric USER ----------------------------------------------
uid=${user%%:*}
if [[ -z $user ]]; then
  failc "the runtime stage has no USER: the image would run as root"
elif [[ $uid == root || $uid == 0 ]]; then
  failc "the runtime stage runs as root (USER $user)"
elif [[ ! $uid =~ ^[0-9]+$ ]]; then
  failc "USER $user is not numeric: Kubernetes runAsNonRoot cannot verify a user name (use USER $EXPECTED_UID:$EXPECTED_UID)"
elif ((uid != EXPECTED_UID)); then
  failc "USER $user: the Kubernetes manifests run as uid $EXPECTED_UID (k8s/base/statefulset.yaml); change both together"
else
  pass "runtime stage runs as non-root USER $user"
fi

# ---- 2. runtime basics ------------------------------------------------------
if printf '%s\n' "${runtime_pkgs[@]}" | grep -qx ca-certificates; then
  pass "runtime stage installs ca-certificates"
else
  failc "runtime stage does not install ca-certificates (HTTPS to the site would fail)"
fi
if grep -qx 'VOLUME /sessions' <<<"$parsed"; then pass "VOLUME /sessions"; else failc "runtime stage lacks VOLUME /sessions"; fi
if grep -qx 'EXPOSE 9464' <<<"$parsed"; then pass "EXPOSE 9464"; else failc "runtime stage lacks EXPOSE 9464"; fi

# ---- 5. base image pinned by digest; OCI labels ------------------------------
# Every FROM (after substituting the ARGs declared before the first FROM) must
# name an image by digest: a tag (debian:12-slim) moves with each point
# release, so two builds of one commit could differ.
while IFS=' ' read -r written resolved; do
  if [[ $resolved =~ @sha256:[0-9a-f]{64}$ ]]; then
    digest=${resolved##*@sha256:}
    pass "FROM $written is pinned by digest (${resolved%%@*}@sha256:${digest:0:12}...)"
  else
    failc "FROM $written ($resolved) is not pinned by digest: write IMAGE:TAG@sha256:<64 hex> (docker buildx imagetools inspect IMAGE:TAG)"
  fi
done < <(sed -n 's/^FROM //p' <<<"$parsed")
grep -q '^FROM ' <<<"$parsed" || failc "no FROM with an image found"
for key in title description source licenses version revision created; do
  if grep -q "^LABEL org\.opencontainers\.image\.$key=." <<<"$parsed"; then
    pass "runtime stage sets OCI label org.opencontainers.image.$key"
  else
    failc "runtime stage lacks LABEL org.opencontainers.image.$key"
  fi
done
# The image's default VERSION is the project's version (CMakeLists.txt).
project_version=$(sed -n 's/^project(sessiond VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt 2>/dev/null | head -1)
image_version=$(sed -n 's/^ARG VERSION=//p' <<<"$parsed" | tail -1)
if [[ -z $project_version ]]; then
  echo "NOTE no project(sessiond VERSION ...) in CMakeLists.txt: ARG VERSION not compared"
elif [[ $image_version == "$project_version" ]]; then
  pass "ARG VERSION=$image_version matches CMakeLists.txt"
else
  failc "ARG VERSION=$image_version in the runtime stage, CMakeLists.txt says $project_version"
fi

# ---- 4. browser and init (before 3: that one may end the run early) ------------
with_browser=$(sed -n 's/^ARG WITH_BROWSER=//p' <<<"$parsed" | tail -1)
has_pkg() { printf '%s\n' "${runtime_pkgs[@]}" | grep -qx "$1"; }
# Does the shipped profile have a browser step? (JSON with // comments)
profile=profiles/baman24.json
profile_browser=$(python3 - "$profile" <<'PY' 2>/dev/null
import json, sys
try:
    text = open(sys.argv[1], encoding="utf-8").read()
except OSError:
    print("absent"); sys.exit()
out, i, in_str = [], 0, False
while i < len(text):  # drop // and /* */ comments outside strings
    c = text[i]
    if in_str:
        out.append(c)
        if c == "\\":
            out.append(text[i + 1]); i += 1
        elif c == '"':
            in_str = False
    elif c == '"':
        in_str = True; out.append(c)
    elif text.startswith("//", i):
        while i < len(text) and text[i] != "\n":
            i += 1
        continue
    elif text.startswith("/*", i):
        i = text.find("*/", i) + 2
        continue
    else:
        out.append(c)
    i += 1
doc = json.loads("".join(out))
steps = [doc.get(k) or {} for k in ("check", "refresh")]
print("yes" if any("browser" in s for s in steps) else "no")
PY
)
if [[ -z $with_browser ]]; then
  if [[ $profile_browser == yes ]]; then
    failc "$profile has browser steps but the runtime stage has no ARG WITH_BROWSER=1 (the image would have no browser)"
  else
    echo "NOTE no ARG WITH_BROWSER in the runtime stage: browser checks skipped"
  fi
elif [[ $with_browser == 1 ]]; then
  if has_pkg chromium-headless-shell; then
    pass "WITH_BROWSER=1 (default): the runtime stage installs chromium-headless-shell"
  else
    failc "WITH_BROWSER defaults to 1 but the runtime stage does not apt-get install chromium-headless-shell"
  fi
  # The binary sessiond tries first (its --help names it) must come from that package.
  default_browser=$("$bin" run --help 2>/dev/null | sed -n 's/.*--browser PATH.*default: \(\/[^ ,)]*\).*/\1/p' | head -1)
  if [[ -z $default_browser ]]; then
    echo "NOTE could not read the default --browser from '$bin run --help': package of the browser binary not checked"
  elif owner=$(dpkg -S "$default_browser" 2>/dev/null); then
    if [[ ${owner%%:*} == chromium-headless-shell ]]; then
      pass "sessiond's default browser $default_browser is in chromium-headless-shell"
    else
      failc "sessiond's default browser $default_browser belongs to ${owner%%:*}, not chromium-headless-shell"
    fi
  else
    echo "NOTE $default_browser is not installed on this machine: its package not checked"
  fi
  # A --browser PATH in the StatefulSet must exist in the image.
  sts=k8s/base/statefulset.yaml
  k8s_browser=$(awk '/^ *- --browser *$/ { getline; sub(/^ *- */, ""); gsub(/"/, ""); print; exit }' "$sts" 2>/dev/null)
  if [[ -n $k8s_browser ]]; then
    if grep -qF -- "$k8s_browser" "$dockerfile"; then
      pass "$sts runs --browser $k8s_browser, which $dockerfile creates"
    else
      failc "$sts runs --browser $k8s_browser, which $dockerfile does not create"
    fi
  fi
elif [[ $with_browser == 0 && $profile_browser == yes ]]; then
  failc "WITH_BROWSER defaults to 0 but $profile has browser steps: the default image could not run the shipped profile"
elif [[ $with_browser != 0 ]]; then
  failc "ARG WITH_BROWSER=$with_browser: expected 1 or 0"
else
  echo "NOTE WITH_BROWSER defaults to 0: no browser in the image"
fi
entrypoint=$(sed -n 's/^ENTRYPOINT //p' <<<"$parsed" | tail -1)
if [[ $entrypoint =~ ^\[[[:space:]]*\"(/usr/bin/)?tini\" ]] && has_pkg tini; then
  pass "ENTRYPOINT runs under tini (reaps orphaned browser processes, forwards SIGTERM)"
else
  failc "ENTRYPOINT ($entrypoint) does not start with tini (and apt-get install tini): Chromium's orphaned processes would stay zombies under sessiond as PID 1"
fi

# ---- 3. linked libraries -> packages ----------------------------------------
if [[ ! -f $bin ]]; then
  failc "binary $bin not found: build it (ninja -C build sessiond) or set SESSIOND_BIN"
  finish
fi
if ! readelf -h "$bin" >/dev/null 2>&1; then
  failc "$bin is not an ELF file"
  finish
fi

mapfile -t needed < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
if ((${#needed[@]} == 0)); then
  pass "$bin links no shared library (static)"
  finish
fi
ldd_out=$(ldd "$bin" 2>&1)

# Resolve each NEEDED name to the file the loader uses.
declare -A so_path=()
unresolved=0
for so in "${needed[@]}"; do
  path=$(awk -v so="$so" '$1 == so && $2 == "=>" { print $3; exit }' <<<"$ldd_out")
  if [[ -z $path || $path == "not" ]]; then
    failc "$so (NEEDED by $bin) is not found by the loader on this machine"
    unresolved=1
  else
    so_path[$so]=$path
  fi
done

# File -> package with dpkg -S, trying the usrmerge aliases (/lib <-> /usr/lib)
# and the symlink target too; one dpkg call for all (each call reads the whole
# dpkg database).
declare -A file_pkg=()
candidates=()
for so in "${!so_path[@]}"; do
  f=${so_path[$so]}
  candidates+=("$f" "$(readlink -f "$f")" "${f#/usr}" "/usr$f")
done
if ((${#candidates[@]})); then
  while IFS= read -r line; do
    [[ $line == "diversion by"* || $line != *": /"* ]] && continue
    pkgs=${line%%: /*}  # "pkg1:amd64, pkg2: /path" -> "pkg1:amd64, pkg2"
    pkg=${pkgs%%,*}
    file_pkg[${line#*: }]=${pkg%%:*}
  done < <(dpkg -S "${candidates[@]}" 2>/dev/null)
fi

declare -A pkg_libs=()
for so in "${needed[@]}"; do
  [[ -n ${so_path[$so]:-} ]] || continue
  f=${so_path[$so]}
  pkg=
  for cand in "$f" "$(readlink -f "$f")" "${f#/usr}" "/usr$f"; do
    pkg=${file_pkg[$cand]:-}
    [[ -n $pkg ]] && break
  done
  if [[ -z $pkg ]]; then
    failc "$so ($f) belongs to no Debian package: the image cannot install it with apt"
    unresolved=1
    continue
  fi
  pkg_libs[$pkg]+="${pkg_libs[$pkg]:+ }$so"
done

missing=()
for pkg in $(printf '%s\n' "${!pkg_libs[@]}" | sort); do
  if printf '%s\n' "${BASE_IMAGE_PACKAGES[@]}" | grep -qx "$pkg"; then
    echo "     $pkg (${pkg_libs[$pkg]}): in debian:12-slim"
  elif printf '%s\n' "${runtime_pkgs[@]}" | grep -qx "$pkg"; then
    echo "     $pkg (${pkg_libs[$pkg]}): installed by the runtime stage"
  else
    missing+=("$pkg (${pkg_libs[$pkg]})")
  fi
done
if ((${#missing[@]})); then
  failc "the runtime stage of $dockerfile does not install these packages, needed by $bin:"
  printf '       %s\n' "${missing[@]}"
elif ((unresolved == 0)); then
  pass "every library $bin links (${#needed[@]}) comes from debian:12-slim or the runtime stage"
fi

# Informational: runtime packages the binary does not link directly.
extra=()
for pkg in "${runtime_pkgs[@]}"; do
  [[ $pkg == ca-certificates || -n ${pkg_libs[$pkg]:-} ]] || extra+=("$pkg")
done
((${#extra[@]})) && echo "NOTE runtime stage installs packages $bin does not link directly: ${extra[*]}"

finish
