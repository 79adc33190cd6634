# sessiond container image: built from Debian 12 packages only.
#
#   docker build -t sessiond:0.1.0 .
#   docker run --rm -e SESSIOND_ADMIN_TOKEN=... -v "$PWD/sessions:/sessions" \
#     -v "$PWD/profiles/baman24.json:/etc/sessiond/profile.json:ro" -p 9464:9464 sessiond:0.1.0
#
# Kubernetes: k8s/ and docs/DEPLOY.md. tests/checks/dockerfile.sh checks that
# the runtime stage installs the Debian package of every shared library the
# binary links, and that it runs as a non-root user.

ARG DEBIAN_IMAGE=debian:12-slim

# ---- build ------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libcaf-dev libcurl4-openssl-dev nlohmann-json3-dev prometheus-cpp-dev \
      libspdlog-dev catch2 libcpp-httplib-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Each CAF translation unit takes ~500 MB in g++: BUILD_JOBS bounds the build's
# memory (default: all cores).
ARG BUILD_JOBS=
RUN cmake -S . -B /build -G Ninja -DSESSIOND_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
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
 && rm -rf /var/lib/apt/lists/*

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

USER 10001:10001
VOLUME /sessions
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/sessiond"]
# Listening on 0.0.0.0 needs an admin token (SESSIOND_ADMIN_TOKEN). A single
# container serves every session; Kubernetes replaces these args with the
# sharded ones (k8s/base/statefulset.yaml).
CMD ["run", "--sessions-dir", "/sessions", "--profile", "/etc/sessiond/profile.json", "--listen", "0.0.0.0:9464", "--drain-timeout", "20s"]
