#!/usr/bin/env bash
# `npm test`: install what is missing, build, start throw-away servers, run every suite, stop them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/ensure-deps.sh
bash scripts/provision.sh all
# Postfix + Dovecot from Debian for the real-MTA end-to-end suite (needs root and apt on a fresh machine).
bash scripts/ensure-postfix.sh
# Sisimai (Debian libsisimai-perl), the second bounce engine: the bounce scorer test compares against it.
bash scripts/ensure-sisimai.sh
bash scripts/build.sh
echo "cartero: compiling tests..."
rm -rf .build-test
npx tsc -p tsconfig.test.json
node .build-test/src/tools/bundle-workflows.js >/dev/null
# Lint before the suites so a violation fails `npm test` quickly. CARTERO_TEST_LINT=0 skips it for a local
# re-run of one suite (.ci/run must not set it).
if [ "${CARTERO_TEST_LINT:-1}" != "0" ]; then bash scripts/lint.sh; fi
node .build-test/test/support/run-tests.js "$@"
# The whole run (no filter) ends with a second pass on the production-style Temporal server
# (go.temporal.io/server on PostgreSQL, docs/decisions.md "Embedded servers"): the send suite, the
# fault tests and the replay test, so what the dev server passes is shown on the server production
# runs too. CARTERO_TEST_POSTGRES=0 skips it; CARTERO_TEMPORAL=postgres runs everything there instead.
if [ "$#" -eq 0 ] && [ "${CARTERO_TEST_POSTGRES:-1}" != "0" ] && [ "${CARTERO_TEMPORAL:-dev}" != "postgres" ]; then
  echo "cartero: second pass on the PostgreSQL-backed Temporal server..."
  bash scripts/provision.sh postgres
  CARTERO_TEMPORAL=postgres node .build-test/test/support/run-tests.js integration/send.test integration/faults- integration/replay
fi
