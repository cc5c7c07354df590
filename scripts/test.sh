#!/usr/bin/env bash
# `npm test`: install what is missing, build, start throw-away servers, run every suite, stop them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Each phase says when it ends (seconds since the start), so a CI log shows where its 90 minutes went.
phase() { echo "cartero: $1 done at ${SECONDS}s"; }
bash scripts/ensure-deps.sh
phase "npm dependencies"
bash scripts/provision.sh all
phase "Temporal CLI and FerretDB"
# Postfix + Dovecot from Debian for the real-MTA end-to-end suite (needs root and apt on a fresh machine).
bash scripts/ensure-postfix.sh
phase "Postfix and Dovecot"
# Sisimai (Debian libsisimai-perl), the second bounce engine: the bounce scorer test compares against it.
bash scripts/ensure-sisimai.sh
phase "Sisimai"
bash scripts/build.sh
echo "cartero: compiling tests..."
rm -rf .build-test
npx tsc -p tsconfig.test.json
node .build-test/src/tools/bundle-workflows.js >/dev/null
phase "build"
# Lint before the suites so a violation fails `npm test` quickly. CARTERO_TEST_LINT=0 skips it for a local
# re-run of one suite (.ci/run must not set it).
if [ "${CARTERO_TEST_LINT:-1}" != "0" ]; then bash scripts/lint.sh; phase "lint"; fi
rc=0
node .build-test/test/support/run-tests.js "$@" || rc=$?
echo "cartero: npm test took ${SECONDS}s (exit $rc)"
exit "$rc"
