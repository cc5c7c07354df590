#!/usr/bin/env bash
# `npm run lint` (and `npm test`, before the suites): ESLint, the architecture rules, unused code, formatting.
# Every tool runs even when an earlier one fails, so one run shows everything; the exit status is 1 if any failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

failed=()
step() {
  local name="$1"
  shift
  echo "== lint: $name ($*)"
  if ! "$@"; then failed+=("$name"); fi
}

# eslint.config.mjs ignores dist, .build-test, node_modules and .tools.
step eslint npm run -s lint:eslint
step dependency-cruiser npm run -s lint:deps
step knip npm run -s lint:unused
step prettier npm run -s format:check

if [ ${#failed[@]} -gt 0 ]; then
  echo "== lint: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== lint: all passed"
