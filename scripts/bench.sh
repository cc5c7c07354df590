#!/usr/bin/env bash
# `npm run bench:send -- [N] [concurrency]`: builds what is missing, then runs bench/send.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/ensure-deps.sh
bash scripts/provision.sh all
bash scripts/build.sh
npx tsc -p tsconfig.test.json
node .build-test/src/tools/bundle-workflows.js >/dev/null
exec node .build-test/bench/send.js "$@"
