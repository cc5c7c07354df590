#!/usr/bin/env bash
# `npm start`: install what is missing, build, then run the whole service (see src/dev.ts).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/ensure-deps.sh
bash scripts/ensure-sisimai.sh --optional
[ -n "${TEMPORAL_ADDRESS:-}" ] || bash scripts/provision.sh temporal
[ -n "${MONGODB_URI:-}" ] || bash scripts/provision.sh ferretdb
bash scripts/build.sh
exec node dist/dev.js
