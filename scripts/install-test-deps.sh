#!/usr/bin/env bash
# Installs the Debian packages the tests and the benchmark drive: gtlsclient (ngtcp2-client),
# Chromium, openssl, Prometheus (prometheus, promtool), systemd-analyze, and for `npm run bench`
# Caddy, h2load (nghttp2-client) and nghttpd (nghttp2-server, the workers leg's C backend), and
# libjemalloc2 (the data plane's allocator, e2e/allocator.test.ts).
# Skips apt entirely when they are already present. Uses sudo when not run as root.
set -euo pipefail
pkgs=(ngtcp2-client chromium openssl caddy nghttp2-client nghttp2-server prometheus systemd libjemalloc2)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
