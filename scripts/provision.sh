#!/usr/bin/env bash
# Makes sure the embedded servers exist, building each only when missing (or at another version).
# Binaries are cached in .tools/bin (git-ignored); Go's module and build caches stay the user's.
# Usage: scripts/provision.sh [all|temporal|ferretdb|postgres]
# `postgres` (also done by `all` when CARTERO_TEMPORAL=postgres): the production-style Temporal server
# (go.temporal.io/server, its SQL tool and schemas) and Debian's PostgreSQL.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

TEMPORAL_CLI_VERSION="v1.5.1"
# The server the CLI above embeds; v1.29.x has no `replace` directive, so it can be go-installed.
TEMPORAL_SERVER_VERSION="v1.29.1"
# v1.24.1 is refused by the Go module proxy reachable here (403 "not available"); v1.24.0 is the
# previous patch release of the same last v1 line (SQLite backend) and is served.
FERRETDB_VERSION="v1.24.0"
# Bumped whenever the local patch below changes, so cached binaries are rebuilt.
FERRETDB_BUILD="$FERRETDB_VERSION+cartero.3"

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

build_temporal_server() {
  local tmp="$root/.tools/temporal-server-build" dir
  rm -rf "$tmp" && mkdir -p "$tmp"
  GOBIN="$tmp" GOFLAGS="-buildvcs=false" go install \
    "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" || return 1
  dir=$(GOFLAGS=-mod=mod go mod download -json "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir/schema/postgresql" ] || { echo "module download gave no schema directory"; return 1; }
  rm -rf "$bin/temporal-schema" && mkdir -p "$bin/temporal-schema"
  cp -r "$dir/schema/postgresql" "$bin/temporal-schema/"
  chmod -R u+w "$bin/temporal-schema"
  mv "$tmp/sql" "$bin/temporal-sql-tool"
  mv "$tmp/server" "$bin/temporal-server"
  rm -rf "$tmp"
}

# PostgreSQL from Debian, for the production-style Temporal server only.
ensure_postgresql() {
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "provision: installing PostgreSQL (apt-get install postgresql)..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
    # Debian's package starts a system cluster; Cartero runs its own and needs none.
    command -v pg_ctlcluster >/dev/null 2>&1 && for c in /etc/postgresql/*/main; do
      [ -d "$c" ] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop >/dev/null 2>&1 || true
    done
  else
    echo "provision: PostgreSQL is missing; install Debian's postgresql package (as root)" >&2
    exit 1
  fi
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
  # Performance fix (docs/decisions.md): the `_id` lookup was only used when the filter was `{_id}`
  # alone; `{_id, state: …}` (a compare-and-set) scanned the whole collection. Every caller filters
  # the documents again in Go, so narrowing by `_id` first is always safe.
  local coll="$src/internal/backends/sqlite/collection.go"
  [ "$(grep -c '^	if params.Filter.Len() == 1 {$' "$coll")" = 2 ] || { echo "FerretDB source changed: _id pushdown patch does not apply"; return 1; }
  sed -i '0,/^	if params.Filter.Len() == 1 {$/s//	if params.Filter != nil {/' "$coll"
  [ "$(grep -c '^	if params.Filter != nil {$' "$coll")" = 1 ] || { echo "FerretDB _id pushdown patch failed"; return 1; }
  # Correctness fix (docs/decisions.md): v1's update and findAndModify read the matching documents,
  # change them in Go and write them back, with nothing stopping two commands from interleaving:
  # 50 concurrent `$inc`s of one field added 19, and a compare-and-set let two writers win the same
  # version. MongoDB makes each single-document update atomic; one lock per collection around the
  # read-modify-write does the same here (SQLite serialises the writes anyway).
  local h="$src/internal/handler"
  cat >"$h/cartero_collection_lock.go" <<'GO'
package handler

import "sync"

var carteroCollectionLocks sync.Map

// carteroLockCollection serialises read-modify-write commands on one collection; returns the unlock.
func carteroLockCollection(db, collection string) func() {
	m, _ := carteroCollectionLocks.LoadOrStore(db+"."+collection, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}
GO
  for f in msg_update.go:updateDocument msg_findandmodify.go:findAndModifyDocument; do
    local file="$h/${f%%:*}" fn="${f##*:}"
    grep -q "^func (h \*Handler) $fn(ctx context.Context, params \*common\." "$file" || { echo "FerretDB source changed: lock patch does not apply to $fn"; return 1; }
    sed -i "/^func (h \*Handler) $fn(/a\\\\tdefer carteroLockCollection(params.DB, params.Collection)()" "$file"
    grep -q "defer carteroLockCollection(params.DB, params.Collection)()" "$file" || { echo "FerretDB lock patch failed in $fn"; return 1; }
  done
  (cd "$src" && GOFLAGS=-buildvcs=false go build -o "$bin/ferretdb" ./cmd/ferretdb) || return 1
  rm -rf "$src"
}

want="${1:-all}"
case "$want" in
  all|temporal|ferretdb|postgres) ;;
  *) echo "usage: $0 [all|temporal|ferretdb|postgres]" >&2; exit 2 ;;
esac
if [ "$want" = all ] || [ "$want" = temporal ]; then provide temporal "$TEMPORAL_CLI_VERSION" build_temporal; fi
if [ "$want" = all ] || [ "$want" = ferretdb ]; then provide ferretdb "$FERRETDB_BUILD" build_ferretdb; fi
if [ "$want" = postgres ] || { [ "$want" = all ] && [ "${CARTERO_TEMPORAL:-dev}" = postgres ]; }; then
  ensure_postgresql
  provide temporal-server "$TEMPORAL_SERVER_VERSION" build_temporal_server
fi
