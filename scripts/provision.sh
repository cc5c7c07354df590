#!/usr/bin/env bash
# Makes sure the embedded servers exist, building each only when missing (or at another version).
# Binaries are cached in .tools/bin (git-ignored); Go's module and build caches stay the user's.
# Usage: scripts/provision.sh [all|temporal|ferretdb]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

TEMPORAL_CLI_VERSION="v1.5.1"
# v1.24.1 is refused by the Go module proxy reachable here (403 "not available"); v1.24.0 is the
# previous patch release of the same last v1 line (SQLite backend) and is served.
FERRETDB_VERSION="v1.24.0"
# Bumped whenever the local patch below changes, so cached binaries are rebuilt.
FERRETDB_BUILD="$FERRETDB_VERSION+cartero.1"

# Runs a build command unless the cached binary is already at that version, printing progress.
provide() { # name version command...
  local name="$1" version="$2" stamp="$bin/.$1.version"
  shift 2
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "provision: the Go toolchain ('go') is not on PATH; it is needed to build $name $version." >&2
    echo "provision: install Go >= 1.23 (https://go.dev/doc/install), or set TEMPORAL_ADDRESS / MONGODB_URI to external servers." >&2
    exit 127
  fi
  echo "provision: building $name $version with $(go version | awk '{print $3}') (first time only; takes a few minutes)..."
  local start=$SECONDS log="$root/.tools/$name.build.log"
  # A line every 20 s so nobody thinks it hung.
  ( while sleep 20; do echo "provision: still building $name ($((SECONDS - start))s)..."; done ) &
  local ticker=$! ok=0
  "$@" >"$log" 2>&1 || ok=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  if [ "$ok" -ne 0 ]; then
    echo "provision: building $name failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  echo "$version" >"$stamp"
  echo "provision: $name ready in $((SECONDS - start))s -> $bin/$name"
}

build_temporal() {
  GOBIN="$bin" GOFLAGS="-buildvcs=false" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
}

# FerretDB cannot be `go install`ed here: the proxy refuses its version list (needed for the
# deprecation check) and the module zip lacks the generated build/version/*.txt files that its
# binary panics without. So: download the exact module (checksum-verified), copy it out of the
# read-only module cache, write the version files, and build it with its own go.mod/go.sum.
build_ferretdb() {
  local src="$root/.tools/src/ferretdb-$FERRETDB_VERSION" dir
  dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "module download gave no directory"; return 1; }
  rm -rf "$src"
  mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  echo "unknown" >"$src/build/version/commit.txt"
  echo "$FERRETDB_VERSION" >"$src/build/version/branch.txt"
  # Performance fix (docs/decisions.md): FerretDB v1's SQLite backend looks documents up by
  # `json->'$._id'` but indexes `json->"_id"`; SQLite matches index expressions textually, so every
  # `_id` lookup, update and delete scanned the whole table. Same JSON path, now the indexed text.
  local meta="$src/internal/backends/sqlite/metadata/metadata.go"
  grep -q "IDColumn = DefaultColumn + \"->'\$._id'\"" "$meta" || { echo "FerretDB source changed: _id patch does not apply"; return 1; }
  sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \`->\"_id\"\`|" "$meta"
  grep -q 'IDColumn = DefaultColumn + `->"_id"`' "$meta" || { echo "FerretDB _id patch failed"; return 1; }
  (cd "$src" && GOFLAGS=-buildvcs=false go build -o "$bin/ferretdb" ./cmd/ferretdb)
  rm -rf "$src"
}

want="${1:-all}"
case "$want" in
  all|temporal|ferretdb) ;;
  *) echo "usage: $0 [all|temporal|ferretdb]" >&2; exit 2 ;;
esac
if [ "$want" = all ] || [ "$want" = temporal ]; then provide temporal "$TEMPORAL_CLI_VERSION" build_temporal; fi
if [ "$want" = all ] || [ "$want" = ferretdb ]; then provide ferretdb "$FERRETDB_BUILD" build_ferretdb; fi
