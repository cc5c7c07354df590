#!/usr/bin/env bash
# Installs Debian's postfix, dovecot-core and dovecot-imapd for the Postfix end-to-end tests
# (test/integration/postfix.test.ts) and the IMAP bounce-mailbox tests
# (test/integration/bounce-mailbox.test.ts), when /usr/sbin/postfix, /usr/sbin/dovecot or
# /usr/lib/dovecot/imap is missing.
#
# The test runs private instances of both (own config, queue and data directories under a temp dir,
# loopback only, started and stopped by test/support/postfix.ts). This script only installs the
# binaries: it does not configure or start the system-wide postfix or dovecot, and if a package's
# maintainer script started one anyway it is stopped again, so nothing is left listening on port 25.
# Idempotent: does nothing but check when the binaries are present.
set -euo pipefail

log() { echo "ensure-postfix: $*"; }
die() { echo "ensure-postfix: error: $*" >&2; exit 1; }

# True when something listens on TCP port 25 (IPv4 or IPv6). /proc/net/tcp* column 2 is
# local address:port in hex, column 4 the state (0A = LISTEN).
port25_listening() {
  local f
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    if awk 'NR > 1 { split($2, a, ":"); if (a[length(a)] == "0019" && $4 == "0A") found = 1 } END { exit !found }' "$f"; then
      return 0
    fi
  done
  return 1
}

# Stops a system-wide postfix or dovecot that a package script may have started (not a private
# instance: those use their own config directories and never port 25).
stop_system_daemons() {
  if [ -x /usr/sbin/postfix ] && [ -f /etc/postfix/main.cf ] && /usr/sbin/postfix status >/dev/null 2>&1; then
    log "the package started the system-wide postfix; stopping it"
    /usr/sbin/postfix stop >/dev/null 2>&1 || /usr/sbin/postfix abort >/dev/null 2>&1 || true
  fi
  if [ -s /run/dovecot/master.pid ]; then
    local pid
    pid="$(cat /run/dovecot/master.pid 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      log "the package started the system-wide dovecot (pid $pid); stopping it"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
}

if [ -x /usr/sbin/postfix ] && [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ]; then
  log "postfix ($(/usr/sbin/postconf -d -h mail_version 2>/dev/null || echo '?')) and dovecot ($(/usr/sbin/dovecot --version 2>/dev/null || echo '?')) already installed"
  stop_system_daemons
  if port25_listening; then
    log "warning: something other than this script's install is listening on port 25 (not touched)"
  fi
  exit 0
fi

missing=()
[ -x /usr/sbin/postfix ] || missing+=(postfix)
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
log "missing: ${missing[*]}"

[ "$EUID" -eq 0 ] || die "installing ${missing[*]} needs root (running as uid $EUID); run this script as root or install Debian's 'postfix', 'dovecot-core' and 'dovecot-imapd' yourself"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script installs Debian packages 'postfix', 'dovecot-core' and 'dovecot-imapd'; install them with your system's package manager"
command -v debconf-set-selections >/dev/null 2>&1 || die "debconf-set-selections not found (package 'debconf'); cannot preseed postfix's configuration question"

log "installing Debian's postfix, dovecot-core and dovecot-imapd (non-interactive)"
export DEBIAN_FRONTEND=noninteractive
started=$(date +%s)

# Answer postfix's install question with "No configuration": no /etc/postfix/main.cf is written,
# so the system-wide instance cannot be started by anything.
log "preseeding debconf: postfix/main_mailer_type = No configuration"
debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string localhost.localdomain
EOF

# Keep maintainer scripts from starting services during the install (invoke-rc.d honours
# policy-rc.d exit 101). Only if there is no policy already; ours is removed again on exit.
policy=/usr/sbin/policy-rc.d
ours_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, from cartero scripts/ensure-postfix.sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  ours_policy=1
  log "installed a temporary $policy so the packages do not start daemons"
fi
cleanup() { if [ "$ours_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt_install() {
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    postfix dovecot-core dovecot-imapd
}

log "apt-get install postfix dovecot-core dovecot-imapd..."
if ! apt_install; then
  log "install failed; running apt-get update and retrying"
  apt-get update -q || die "apt-get update failed (no package repository reachable?)"
  apt_install || die "apt-get install postfix dovecot-core dovecot-imapd failed"
fi

[ -x /usr/sbin/postfix ] || die "/usr/sbin/postfix still missing after installing 'postfix'"
[ -x /usr/sbin/dovecot ] || die "/usr/sbin/dovecot still missing after installing 'dovecot-core'"
[ -x /usr/lib/dovecot/imap ] || die "/usr/lib/dovecot/imap still missing after installing 'dovecot-imapd'"
getent passwd postfix >/dev/null || die "the 'postfix' user does not exist after the install"

stop_system_daemons
if port25_listening; then
  die "something is still listening on port 25 after the install; stop it (the test's private instance never uses port 25)"
fi

log "installed postfix $(/usr/sbin/postconf -d -h mail_version 2>/dev/null || echo '?') and dovecot $(/usr/sbin/dovecot --version 2>/dev/null || echo '?') in $(( $(date +%s) - started )) s; nothing listens on port 25"
