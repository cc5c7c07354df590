#!/usr/bin/env bash
# `npm run bench:tracking -- [connections] [seconds] [rounds]`: builds what is missing, then runs bench/tracking.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/ensure-deps.sh
bash scripts/provision.sh all
npx tsc -p tsconfig.test.json
exec node .build-test/bench/tracking.js "$@"
