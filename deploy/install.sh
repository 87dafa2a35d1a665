#!/usr/bin/env bash
# Installs Spooky's system files on a systemd host: the spooky user and group, the directories, the
# two units, the tmpfiles.d, sysctl.d and limits.d files, the /usr/local/bin links to the npm
# package's bins and, when there is none yet, /etc/spooky/config.yaml. Safe to run again (after an
# upgrade, or to repair modes): it never overwrites an existing config.yaml.
#
# Usage: deploy/install.sh [--dry-run] [--prefix DIR] [--from DIR]
#   --dry-run     print every action, change nothing
#   --prefix DIR  install the files under DIR instead of / (staging, packaging, tests); the host
#                 is left alone: no user, no chown, no systemd-tmpfiles, sysctl or daemon-reload
#   --from DIR    the installed spooky package (the directory holding dist/); default:
#                 "$(npm root -g)/spooky", where `npm install -g` puts it
#
# Run it as root (sudo) without --dry-run / --prefix. See deploy/README.md.
set -euo pipefail

readonly SELF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly USER_NAME=spooky
readonly GROUP_NAME=spooky

# The bins, as package.json declares them: name -> file inside the package.
readonly BINS=(
  "spooky:dist/cli/main.js"
  "spooky-control:dist/controlplane/main.js"
  "spooky-dataplane:dist/dataplane/main.js"
)

usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

DRY_RUN=0
PREFIX=/
FROM=
while (($# > 0)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --prefix)
      (($# > 1)) || { usage >&2; exit 2; }
      PREFIX="$2"
      shift
      ;;
    --prefix=*) PREFIX="${1#--prefix=}" ;;
    --from)
      (($# > 1)) || { usage >&2; exit 2; }
      FROM="$2"
      shift
      ;;
    --from=*) FROM="${1#--from=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      printf 'install.sh: unknown option %s\n\n' "$1" >&2
      usage >&2
      exit 2
      ;;
  esac
  shift
done

[[ -n "$PREFIX" && "$PREFIX" == /* ]] || die "--prefix needs an absolute path, got '${PREFIX}'"
# ROOT is prepended to every path written: empty for a real install.
ROOT="${PREFIX%/}"
while [[ "$ROOT" == */ ]]; do ROOT="${ROOT%/}"; done
STAGED=0
[[ -n "$ROOT" ]] && STAGED=1

if ((!DRY_RUN && !STAGED)) && [[ "$(id -u)" != 0 ]]; then
  die "run as root (sudo $0), or try --dry-run / --prefix DIR first"
fi

# Every change goes through run: printed, then done unless --dry-run.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  ((DRY_RUN)) || "$@"
}
say() { printf '  %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }

# install -o/-g arguments; none under --prefix (the staged tree is chowned by whoever deploys it).
owner() {
  ((STAGED)) || printf '%s\n' -o "$1" -g "$2"
}

# A directory with its mode and owner (install -d also repairs them on an existing one).
dir() {
  local mode="$1" user="$2" group="$3" path="$ROOT$4"
  local -a own
  mapfile -t own < <(owner "$user" "$group")
  run install -d -m "$mode" "${own[@]}" "$path"
}

# A system directory that normally exists already: created when missing, otherwise left as is.
sysdir() {
  local path="$ROOT$1"
  [[ -d "$path" ]] && return 0
  run install -d -m 0755 "$path"
}

# A file shipped in deploy/, replaced when it differs from the copy in place.
file() {
  local src="$SELF_DIR/$1" mode="$2" dst="$ROOT$3"
  [[ -f "$src" ]] || die "missing $src (run install.sh from a complete Spooky checkout or package)"
  if [[ -f "$dst" ]] && cmp -s "$src" "$dst"; then
    say "unchanged: $dst"
    return 0
  fi
  local -a own
  mapfile -t own < <(owner root root)
  run install -m "$mode" "${own[@]}" "$src" "$dst"
}

if ((DRY_RUN)); then
  echo "Dry run: printing the actions, changing nothing."
fi
if ((STAGED)); then
  echo "Installing under $ROOT (--prefix): the host's users, /run, sysctl and systemd are left alone."
fi

echo "== spooky user and group"
if ((STAGED)); then
  say "skipped under --prefix: create them on the target with"
  say "groupadd --system $GROUP_NAME; useradd --system --no-create-home --shell /usr/sbin/nologin --gid $GROUP_NAME $USER_NAME"
else
  if getent group "$GROUP_NAME" >/dev/null; then
    say "group $GROUP_NAME exists"
  else
    run groupadd --system "$GROUP_NAME"
  fi
  if getent passwd "$USER_NAME" >/dev/null; then
    say "user $USER_NAME exists"
  else
    run useradd --system --no-create-home --shell /usr/sbin/nologin --gid "$GROUP_NAME" \
      --home-dir /var/lib/spooky --comment 'Spooky HTTP/3 edge proxy' "$USER_NAME"
  fi
fi

echo "== directories"
# Config and certificates: root writes them, the daemons (group spooky) only read them.
dir 0750 root "$GROUP_NAME" /etc/spooky
dir 0750 root "$GROUP_NAME" /etc/spooky/certs
# control.state_dir (persisted configs, control.token, the data plane's snapshot cache) and logs.
dir 0750 "$USER_NAME" "$GROUP_NAME" /var/lib/spooky
dir 0750 "$USER_NAME" "$GROUP_NAME" /var/log/spooky
sysdir /etc/systemd/system
sysdir /etc/tmpfiles.d
sysdir /etc/sysctl.d
sysdir /etc/security/limits.d
sysdir /usr/local/bin

echo "== units and system settings"
file systemd/spooky-control.service 0644 /etc/systemd/system/spooky-control.service
file systemd/spooky-dataplane.service 0644 /etc/systemd/system/spooky-dataplane.service
file tmpfiles.d/spooky.conf 0644 /etc/tmpfiles.d/spooky.conf
file sysctl.d/99-spooky.conf 0644 /etc/sysctl.d/99-spooky.conf
file limits.d/spooky.conf 0644 /etc/security/limits.d/spooky.conf

echo "== commands in /usr/local/bin"
if [[ -z "$FROM" ]]; then
  if command -v npm >/dev/null; then
    FROM="$(timeout 60 npm root -g 2>/dev/null)/spooky" || FROM=
  fi
  [[ -n "$FROM" ]] || die "npm is not on PATH: pass --from DIR (the directory holding the spooky package's dist/)"
fi
FROM="${FROM%/}"
missing=0
for entry in "${BINS[@]}"; do
  name="${entry%%:*}"
  target="$FROM/${entry#*:}"
  link="$ROOT/usr/local/bin/$name"
  if [[ ! -f "$target" ]]; then
    missing=1
    if ((DRY_RUN)); then
      warn "$target does not exist: install the package first (npm install -g spooky) or pass --from DIR"
    else
      die "$target does not exist: install the package first (npm install -g spooky) or pass --from DIR"
    fi
  elif [[ ! -x "$target" ]]; then
    # The units run the bin directly (#!/usr/bin/env node): it must be executable. npm install -g
    # does that; a checkout built with tsc does not.
    if ((STAGED)); then
      warn "$target is not executable; chmod a+rx it on the target"
    else
      run chmod a+rx "$target"
    fi
  fi
  if [[ -L "$link" && "$(readlink "$link")" == "$target" ]]; then
    say "unchanged: $link -> $target"
  else
    run ln -sfn "$target" "$link"
  fi
done
node_path="$(command -v node || true)"
case "$node_path" in
  /usr/local/sbin/* | /usr/local/bin/* | /usr/sbin/* | /usr/bin/* | /sbin/* | /bin/*) ;;
  '') warn "node is not on PATH: the units need Node.js 24 LTS or later in /usr/bin or /usr/local/bin" ;;
  *) warn "node is $node_path, outside systemd's PATH (and maybe under ProtectHome=): install Node.js 24 LTS or later system-wide" ;;
esac
if [[ -n "$node_path" ]]; then
  node_major="$("$node_path" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if ((node_major < 24)); then
    warn "node is $("$node_path" --version 2>/dev/null || echo unknown): the daemons refuse to start below Node.js 24 LTS; install Node.js 24 or later system-wide"
  fi
fi

echo "== config"
config="$ROOT/etc/spooky/config.yaml"
if [[ -e "$config" ]]; then
  say "kept: $config exists and is never overwritten"
else
  [[ -f "$SELF_DIR/examples/production.yaml" ]] || die "missing $SELF_DIR/examples/production.yaml"
  mapfile -t own < <(owner root "$GROUP_NAME")
  run install -m 0640 "${own[@]}" "$SELF_DIR/examples/production.yaml" "$config"
fi

echo "== apply"
if ((STAGED)); then
  say "skipped under --prefix: systemd-tmpfiles --create, sysctl --system, systemctl daemon-reload"
else
  if command -v systemd-tmpfiles >/dev/null; then
    run systemd-tmpfiles --create /etc/tmpfiles.d/spooky.conf
  else
    say "skipped: no systemd-tmpfiles (create /run/spooky 0750 spooky:spooky at every boot)"
  fi
  # Not fatal: in a container /proc/sys is often read-only; the values then come from the host.
  if command -v sysctl >/dev/null; then
    run sysctl --system || warn "sysctl --system failed: check net.core.rmem_max / rmem_default (spooky doctor)"
  else
    say "skipped: no sysctl"
  fi
  if ! command -v systemctl >/dev/null; then
    say "skipped: no systemctl"
  elif ((DRY_RUN)); then
    run systemctl daemon-reload
  elif [[ ! -d /run/systemd/system ]]; then
    say "skipped: systemd is not running here (container?): systemctl daemon-reload"
  else
    run systemctl daemon-reload
  fi
fi

if ((missing)); then
  warn "the spooky package was not found under $FROM: the links above would point nowhere"
fi

cat <<EOF

Next steps:
  1. Put the certificate and key in /etc/spooky/certs/ (fullchain.pem, privkey.pem), then
       chown root:spooky /etc/spooky/certs/*.pem && chmod 0640 /etc/spooky/certs/*.pem
  2. Edit /etc/spooky/config.yaml (backends, certificate paths), then check it:
       sudo -u spooky spooky validate /etc/spooky/config.yaml
       spooky doctor --config /etc/spooky/config.yaml
  3. Start both daemons at boot and now:
       systemctl enable --now spooky-control.service spooky-dataplane.service
  4. Check them:
       systemctl status spooky-control spooky-dataplane
       journalctl -u spooky-control -u spooky-dataplane -n 50 --no-pager
       spooky status --config /etc/spooky/config.yaml
  5. After editing the config: systemctl reload spooky-control (re-reads and applies it)
See deploy/README.md.
EOF
