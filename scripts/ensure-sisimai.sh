#!/usr/bin/env bash
# Installs Sisimai 4.25 (Debian's libsisimai-perl), the second bounce engine behind Cartero's verdicts
# (docs/bounces.md "Sisimai"), when `perl -MSisimai` fails. Idempotent: only checks when it is there.
# Usage: scripts/ensure-sisimai.sh [--optional]
#   --optional  (npm start) a machine where it cannot be installed only gets a warning: Cartero then answers with
#               its own parser alone. Without it (npm test, the bench) a failed install is an error.
set -euo pipefail
optional=0
[ "${1:-}" = "--optional" ] && optional=1

log() { echo "ensure-sisimai: $*"; }
fail() {
  if [ "$optional" = 1 ]; then
    log "warning: $* — bounce verdicts use Cartero's own parser only"
    exit 0
  fi
  echo "ensure-sisimai: error: $*" >&2
  exit 1
}
have() { perl -MSisimai -e 'exit(Sisimai->version =~ /^4\./ ? 0 : 1)' >/dev/null 2>&1; }

command -v perl >/dev/null 2>&1 || fail "perl is not on PATH"
if have; then exit 0; fi

[ "$EUID" -eq 0 ] || fail "Sisimai 4 is missing and installing Debian's 'libsisimai-perl' needs root (running as uid $EUID)"
command -v apt-get >/dev/null 2>&1 || fail "Sisimai 4 is missing and apt-get is not available; install Sisimai 4.25 (Debian 'libsisimai-perl' or CPAN 'Sisimai' 4.x) yourself"

log "installing Debian's libsisimai-perl..."
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends libsisimai-perl >/dev/null; }
if ! install; then
  log "install failed; running apt-get update and retrying"
  apt-get update -q >/dev/null || fail "apt-get update failed (no package repository reachable?)"
  install || fail "apt-get install libsisimai-perl failed"
fi
have || fail "perl -MSisimai still fails after installing libsisimai-perl"
log "Sisimai $(perl -MSisimai -e 'print Sisimai->version') installed"
