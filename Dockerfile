# sessiond container image: built from Debian 12 packages only.
#
#   docker build -t sessiond:0.1.0 .
#   docker run --rm -e SESSIOND_ADMIN_TOKEN=... -v "$PWD/sessions:/sessions" \
#     -v "$PWD/profiles/baman24.json:/etc/sessiond/profile.json:ro" -p 9464:9464 sessiond:0.1.0
#
# Without the browser (profiles with HTTP and exec steps only; ~95 MB instead
# of ~630 MB uncompressed):
#
#   docker build --build-arg WITH_BROWSER=0 -t sessiond:0.1.0-nobrowser .
#
# Kubernetes: k8s/ and docs/DEPLOY.md. tests/checks/dockerfile.sh checks that
# the runtime stage installs the Debian package of every shared library the
# binary links, that it runs as a non-root user, and the browser and init
# below.

# Base image pinned by digest (a tag moves with every Debian point release; a
# digest makes the build reproducible and reviewable). The digest is that of
# the multi-arch index of debian:12-slim (== bookworm-slim) as used by other
# public Dockerfiles; it was NOT resolved from a registry where this was
# written (no registry access). Verify and refresh it with
#   docker buildx imagetools inspect debian:12-slim     (line "Digest:")
# (or `crane digest debian:12-slim`, `skopeo inspect docker://debian:12-slim`)
# and replace the sha256 below; both stages use it. tests/checks/dockerfile.sh
# fails when a FROM is not pinned by digest.
ARG DEBIAN_IMAGE=debian:12-slim@sha256:60eac759739651111db372c07be67863818726f754804b8707c90979bda511df

# ---- build ------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libcaf-dev libcurl4-openssl-dev nlohmann-json3-dev prometheus-cpp-dev \
      libspdlog-dev catch2 libcpp-httplib-dev \
      libre2-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Each CAF translation unit takes ~500 MB in g++: BUILD_JOBS bounds the build's
# memory (default: all cores).
ARG BUILD_JOBS=
# The sources come without .git: the revision that --version, /status and
# sessiond_build_info report is passed in (the same build arg as the label).
ARG REVISION=unknown
RUN cmake -S . -B /build -G Ninja -DSESSIOND_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DSESSIOND_REVISION="${REVISION}" \
 && ninja -C /build ${BUILD_JOBS:+-j${BUILD_JOBS}} sessiond \
 && strip --strip-debug /build/sessiond

# ---- runtime ----------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime
# Only the shared libraries sessiond links directly (their own dependencies,
# e.g. libfmt9 under libspdlog1.10 or libssl3 under libcurl4, come with them
# from apt) and CA certificates for HTTPS. libc6, libstdc++6 and
# libgcc-s1 are part of debian:12-slim. Keep this list in sync with the binary:
# tests/checks/dockerfile.sh fails when a linked library's package is missing.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libcaf-core0.17 \
      libcurl4 \
      libprometheus-cpp-core1.0 \
      libspdlog1.10 \
      libcpp-httplib0.11 \
      libre2-9 \
      libssl3 \
      tini \
 && rm -rf /var/lib/apt/lists/*

# Browser steps (profiles/baman24.json: the shipped profile needs it, so on by
# default): the headless shell, the binary sessiond looks for first
# (/usr/lib/chromium/chromium-headless-shell). ~530 MB installed (the shell
# itself 220 MB; chromium-common and Mesa/LLVM, which its hard dependencies
# pull in, most of the rest). --no-install-recommends keeps out upower, udev,
# notification-daemon and friends. fonts-dejavu-core is what fontconfig picks
# anyway (Latin and Arabic script); named so that the page always has a font.
# Pods that cannot create user namespaces (Kubernetes RuntimeDefault seccomp)
# run it with sessiond's --browser-no-sandbox: docs/DEPLOY.md, "Browser steps".
ARG WITH_BROWSER=1
RUN if [ "$WITH_BROWSER" = 1 ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
           chromium-headless-shell \
           fonts-dejavu-core \
      && rm -rf /var/lib/apt/lists/* \
      && /usr/lib/chromium/chromium-headless-shell --version; \
    elif [ "$WITH_BROWSER" != 0 ]; then \
      echo "WITH_BROWSER must be 1 or 0, not '$WITH_BROWSER'" >&2; exit 1; \
    fi

# Non-root, numeric uid/gid 10001 (the Kubernetes manifests run as 10001 with
# fsGroup 10001; a numeric USER lets runAsNonRoot verify it).
RUN groupadd --gid 10001 sessiond \
 && useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin sessiond \
 && mkdir -p /sessions /etc/sessiond \
 && chown 10001:10001 /sessions

COPY --from=build /build/sessiond /usr/local/bin/sessiond
# Fails the build if a shared library is missing from the list above.
RUN /usr/local/bin/sessiond --help >/dev/null

# OCI image annotations (https://github.com/opencontainers/image-spec,
# annotations.md). Set per build, e.g.
#   docker build --build-arg VERSION=0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#     --build-arg SOURCE_URL=https://github.com/OWNER/sessiond -t sessiond:0.1.0 .
# VERSION must match project(sessiond VERSION ...) in CMakeLists.txt
# (tests/checks/dockerfile.sh). LICENSES is an SPDX expression: the
# repository carries no licence file yet, hence NOASSERTION. Last in the
# stage: REVISION and CREATED change every build and would otherwise
# invalidate the cached apt layers.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE_URL=https://github.com/OWNER/sessiond
ARG LICENSES=NOASSERTION
# The global ARG above, re-declared so that this stage can read it.
ARG DEBIAN_IMAGE
LABEL org.opencontainers.image.title="sessiond" \
      org.opencontainers.image.description="Keeps web sessions alive: refreshes the cookies a login bot saved, before the site's idle timeout" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${DEBIAN_IMAGE}"

USER 10001:10001
VOLUME /sessions
EXPOSE 9464
# tini as PID 1: it forwards SIGTERM to sessiond (drain) and reaps orphans.
# Chromium's zygote and renderer processes outlive their parent when the pool
# kills the browser's process group (recycle, crash); under sessiond as PID 1
# they stayed zombies (2 to 5 per browser start, never reaped).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/sessiond"]
# Listening on 0.0.0.0 needs an admin token (SESSIOND_ADMIN_TOKEN). A single
# container serves every session; Kubernetes replaces these args with the
# ones of k8s/ (k8s/base/deployment.yaml). --browser: Docker's default seccomp
# profile, like Kubernetes' RuntimeDefault, forbids the user namespaces
# Chromium's sandbox needs (docs/DEPLOY.md, "Browser steps"); sessiond ignores
# it for profiles without browser steps.
CMD ["run", "--sessions-dir", "/sessions", "--profile", "/etc/sessiond/profile.json", "--listen", "0.0.0.0:9464", "--drain-timeout", "20s", "--browser-no-sandbox"]
