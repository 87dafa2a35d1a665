# syntax=docker/dockerfile:1
#
# Spooky's container image: the spooky, spooky-control and spooky-dataplane commands on Node.js 24,
# as uid 10001. Build from the repository root:
#
#   docker build -t registry.example.com/spooky:0.1.0 .        (or podman / buildah bud)
#   docker run --rm IMAGE spooky --version
#   docker run --rm IMAGE spooky-control --config /etc/spooky/config/control.yaml
#   docker run --rm --cap-drop ALL --cap-add NET_BIND_SERVICE IMAGE spooky-dataplane --config ...
#
# linux/amd64 only: @matrixai/quic ships no native build for linux-arm64. deploy/kubernetes/README.md
# says how the image is used there; deploy/container/README.md how CI builds and checks it without
# a registry (deploy/container/build-local.sh).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------- build: dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first, so that a change to the sources reuses this layer. --ignore-scripts:
# package.json's "prepare" would run the build before the sources are copied, and no dependency
# needs its install script for the build (TypeScript 7's compiler and @matrixai/quic's native
# binding come as prebuilt platform packages, which npm installs as optional dependencies).
COPY package.json package-lock.json .npmrc ./
# Behind a TLS-intercepting proxy the npm registry needs its CA: pass it as the optional build
# secret npm_ca (`--secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt`); it is used for
# npm only and stays out of every layer.
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --ignore-scripts
# Every directory that tsconfig.json compiles (the runtime imports from bench/ and e2e/support/).
COPY tsconfig.json ./
COPY bench/ bench/
COPY cli/ cli/
COPY controlplane/ controlplane/
COPY dataplane/ dataplane/
COPY e2e/ e2e/
COPY fuzz/ fuzz/
COPY integration/ integration/
COPY lib/ lib/
COPY model/ model/
COPY proto/ proto/
COPY scripts/ scripts/
RUN npm run build \
 && find dist -name '*.test.js' -delete \
 && find dist -name '*.test.js.map' -delete

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /opt/spooky
# Production dependencies only. --ignore-scripts: "prepare" (npm run build) must not run here;
# @matrixai/quic's native binding is the optional package @matrixai/quic-linux-x64, installed
# with or without scripts.
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist/ dist/

# - the spooky user and group, uid and gid 10001 (the Kubernetes manifests' runAsUser/runAsGroup);
# - a copy of node with the file capability cap_net_bind_service=+ep, for spooky-dataplane only:
#   a non-root process keeps CAP_NET_BIND_SERVICE across exec only through a file capability
#   (Kubernetes and Docker add it to the permitted and bounding sets, not the ambient set). It is
#   a copy because a binary with a file capability cannot even start where that capability was
#   dropped (exec fails with EPERM): spooky-control and the CLI, which need none, keep the plain
#   node. Set here rather than in the build stage: COPY does not reliably keep xattrs;
# - openssl: `spooky demo` (and `spooky certs`) make their self-signed certificate with it;
# - jemalloc, preloaded for every process through /etc/ld.so.preload, with the data plane's
#   settings in /etc/malloc.conf (jemalloc reads the link's target): the data plane's node has a
#   file capability, so it starts in secure-execution mode, where the loader ignores LD_PRELOAD
#   and jemalloc ignores MALLOC_CONF (docs/operations.md, "Allocator");
# - the bins, as package.json's "bin" names them: links to dist/*/main.js. The data plane's #!
#   line names that node directly instead of `/usr/bin/env -S node` (same flag): with
#   allowPrivilegeEscalation: false (no_new_privs), an exec through env or a shell script drops
#   the capability on the way, since the intermediate program has no file capability.
RUN set -eux; \
    groupadd --system --gid 10001 spooky; \
    useradd --system --uid 10001 --gid spooky --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin spooky; \
    apt-get update; \
    apt-get install -y --no-install-recommends libcap2-bin openssl libjemalloc2; \
    jemalloc="$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')"; \
    echo "$jemalloc" > /etc/ld.so.preload; \
    ln -s narenas:2,dirty_decay_ms:1000 /etc/malloc.conf; \
    install -d -m 0755 /usr/local/libexec/spooky; \
    cp /usr/local/bin/node /usr/local/libexec/spooky/node; \
    setcap cap_net_bind_service=+ep /usr/local/libexec/spooky/node; \
    getcap /usr/local/libexec/spooky/node | grep -q cap_net_bind_service; \
    apt-get purge -y --auto-remove libcap2-bin; \
    rm -rf /var/lib/apt/lists/*; \
    sed -i '1s|^#!/usr/bin/env -S node |#!/usr/local/libexec/spooky/node |' /opt/spooky/dist/dataplane/main.js; \
    head -n 1 /opt/spooky/dist/dataplane/main.js | grep -q '^#!/usr/local/libexec/spooky/node '; \
    ln -s /opt/spooky/dist/cli/main.js /usr/local/bin/spooky; \
    ln -s /opt/spooky/dist/controlplane/main.js /usr/local/bin/spooky-control; \
    ln -s /opt/spooky/dist/dataplane/main.js /usr/local/bin/spooky-dataplane; \
    install -d -o spooky -g spooky -m 0750 /var/lib/spooky /run/spooky; \
    install -d -m 0755 /etc/spooky; \
    spooky --version; \
    spooky-dataplane --version

USER 10001:10001
# 443: QUIC (UDP) and HTTP/1.1 + HTTP/2 (TCP); 9902 control API, 9903 data planes' control
# stream, 9090 metrics (spooky-control).
EXPOSE 443/udp 443/tcp 9902/tcp 9903/tcp 9090/tcp
# No wrapper in front: the command is the first argument (`IMAGE spooky-dataplane --config F`),
# and node is PID 1, which receives SIGTERM and drains.
ENTRYPOINT []
CMD ["spooky", "--help"]
LABEL org.opencontainers.image.title="spooky" \
      org.opencontainers.image.description="Spooky: an HTTP/3 edge proxy in front of HTTP/2 backends" \
      org.opencontainers.image.licenses="MIT"
