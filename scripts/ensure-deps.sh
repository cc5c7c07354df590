#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing or was installed from another lockfile.
# `npm install` rather than `npm ci`: the registry reachable here does not serve the non-Linux
# optional builds of @swc/core, so the lockfile cannot list them and `npm ci`'s strict check fails.
# With the lockfile present, `npm install` still installs exactly the locked versions.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v node >/dev/null 2>&1 || { echo "cartero: Node.js >= 20.19 is required ('node' not on PATH)" >&2; exit 127; }
want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
stamp=node_modules/.cartero-deps
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "cartero: installing npm dependencies..."
  npm install --no-audit --no-fund --loglevel=error
  # npm may normalise the lockfile; stamp what is there now.
  cat package.json package-lock.json | sha256sum | cut -d' ' -f1 >"$stamp"
fi
