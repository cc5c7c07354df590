#!/usr/bin/env bash
# Compiles src/ to dist/ and bundles the workflows, skipping both when nothing changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamp=dist/.build-stamp
if [ -f "$stamp" ] && [ -z "$(find src package-lock.json tsconfig.json -newer "$stamp" -print -quit)" ]; then
  exit 0
fi
echo "cartero: building (tsc + workflow bundle)..."
npx tsc -p tsconfig.json
node dist/tools/bundle-workflows.js >/dev/null
touch "$stamp"
