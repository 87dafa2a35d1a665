# Source me from the repository root: `. scripts/use-node.sh`
# Spooky needs Node.js 24 LTS or newer. A `node` of 24 or newer on PATH is kept as it is; an older
# one (or none) is shadowed by the pinned Node.js 24 that scripts/provision-node.sh installs from
# the npm registry into .node/, put first on PATH in this shell. npm then runs on it too.
# POSIX sh, and no `set -e`/`exit`: it runs inside the caller's shell.
spooky_node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$spooky_node_major" -lt 24 ] 2>/dev/null; then
  if spooky_node_bin="$(./scripts/provision-node.sh 24)"; then
    PATH="$spooky_node_bin:$PATH"
    export PATH
    hash -r 2>/dev/null || true
  else
    echo "use-node: could not provision Node.js 24; install Node.js 24 LTS or newer" >&2
  fi
fi
unset spooky_node_major spooky_node_bin
# The last command's status is the script's: `. scripts/use-node.sh && npm ci` stops on failure.
[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 24 ] &&
  echo "use-node: $(command -v node) $(node --version)" >&2
