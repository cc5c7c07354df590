#!/usr/bin/env bash
# `npm run capture-histories [-- [--prefix <p>] <scenario filter>…]`: records the workflow histories the
# replay test replays (test/fixtures/histories/README.md), on throw-away Temporal + FerretDB servers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/ensure-deps.sh
bash scripts/provision.sh all
rm -rf .build-test
npx tsc -p tsconfig.test.json
node .build-test/src/tools/bundle-workflows.js >/dev/null
exec node .build-test/test/support/capture-histories.js "$@"
