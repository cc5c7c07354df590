#!/usr/bin/env bash
# `npm run bench:bounces [-- --misses]`: the bounce corpus scored for Cartero, Sisimai alone and Cartero without
# Sisimai (bench/bounces.ts; docs/bounces.md "Corpus and scores"). No servers needed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/ensure-deps.sh
bash scripts/ensure-sisimai.sh --optional
npx tsc -p tsconfig.test.json
exec node .build-test/bench/bounces.js "$@"
