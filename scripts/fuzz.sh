#!/usr/bin/env bash
# `npm run fuzz [-- st-run options]`: Schemathesis (from PyPI, into .tools/venv-fuzz) against the running
# service on throw-away servers; fails on any 5xx. See docs/security.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
SCHEMATHESIS_VERSION=4.32.5
bash scripts/ensure-deps.sh
bash scripts/provision.sh all
bash scripts/build.sh
venv=.tools/venv-fuzz
if [ "$("$venv/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  echo "fuzz: installing schemathesis $SCHEMATHESIS_VERSION into $venv..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
rm -rf .build-test
npx tsc -p tsconfig.test.json
node .build-test/src/tools/bundle-workflows.js >/dev/null
exec node .build-test/test/support/fuzz-run.js "$@"
