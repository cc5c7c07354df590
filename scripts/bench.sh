#!/usr/bin/env bash
# `npm run bench:send|bench:inbound -- [args]`: builds what is missing, then runs bench/<name> (first argument).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
name="$1"
shift
bash scripts/ensure-deps.sh
bash scripts/provision.sh all
bash scripts/build.sh
npx tsc -p tsconfig.test.json
node .build-test/src/tools/bundle-workflows.js >/dev/null
exec node ".build-test/bench/$name.js" "$@"
