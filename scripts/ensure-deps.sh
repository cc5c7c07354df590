#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing or older than package-lock.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v node >/dev/null 2>&1 || { echo "cartero: Node.js >= 20.19 is required ('node' not on PATH)" >&2; exit 127; }
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "cartero: installing npm dependencies (npm ci)..."
  npm ci --no-audit --no-fund --loglevel=error
fi
