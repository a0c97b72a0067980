#!/usr/bin/env bash
# The sync benchmark (docs/performance.md, "sync"): two PostgreSQL servers on this machine, the
# generator of tests/data/sync/prod.sql at ROWS users (2×ROWS orders, ~3×ROWS order items,
# ROWS events), and side by side, each into a fresh empty database:
#   pg_dump | psql,  pg_dump -Fd -j N | pg_restore -j N,  confiture sync (raw),
#   confiture sync --anonymize (email, name, phone and a jsonb path masked).
# Wall time and peak memory (GNU time) of each; the target is checked after each confiture run.
#
#   benches/sync.sh [ROWS...]          default 1000000; e.g. benches/sync.sh 1000000 5000000
#   JOBS=2 RUNS=1 benches/sync.sh
# Needs a release build (cargo build --release; it builds one if missing) and PostgreSQL's
# binaries (pg_config --bindir or /usr/lib/postgresql/*/bin). Run as root, the servers run as
# `postgres`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS_LIST=("${@:-1000000}")
JOBS=${JOBS:-$(nproc)}
RUNS=${RUNS:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release/confiture"
[ -x "$BIN" ] || cargo build --release --bin confiture
BIN=$(realpath "$BIN")
BINDIR=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
WORK=$(mktemp -d /tmp/confiture-sync-bench.XXXX)
RUNAS=()
if [ "$(id -u)" = 0 ]; then chown postgres "$WORK"; RUNAS=(runuser -u postgres --); fi
cleanup() {
  for s in src dst; do "${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$WORK/$s" -m immediate stop >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
start() { # name port
  "${RUNAS[@]}" "$BINDIR/initdb" -D "$WORK/$1" -U postgres --auth=trust >/dev/null
  "${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$WORK/$1" -l "$WORK/$1.log" -w \
    -o "-p $2 -k $WORK -c fsync=off -c full_page_writes=off -c shared_buffers=512MB -c max_wal_size=4GB -c maintenance_work_mem=256MB" start >/dev/null
}
start src 56101
start dst 56102
SRC="postgresql://postgres@localhost:56101/app?host=$WORK"
psql_src() { "$BINDIR/psql" -h "$WORK" -p 56101 -U postgres -qAt -v ON_ERROR_STOP=1 "$@"; }
psql_dst() { "$BINDIR/psql" -h "$WORK" -p 56102 -U postgres -qAt -v ON_ERROR_STOP=1 "$@"; }
PROJECT="$WORK/project"
mkdir -p "$PROJECT"
cat > "$PROJECT/confiture.kdl" <<'KDL'
anonymize "bench" {
    key env="CONFITURE_ANON_KEY"
    table "users" {
        column "email" "email"
        column "name" "person-name"
        column "phone" "phone"
        column "profile" "json" { path "$.contact.email" "email"; }
    }
}
KDL
export CONFITURE_ANON_KEY="a benchmark key, long enough to be a key"
fresh() { psql_dst -d postgres -c "DROP DATABASE IF EXISTS copy" -c "CREATE DATABASE copy"; rm -rf "$WORK/dump"; }
measure() { # label command...
  local best="" mem=""
  for _ in $(seq "$RUNS"); do
    fresh
    /usr/bin/time -f "%e %M" -o "$WORK/time" bash -c "$2" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
    read -r secs kb < "$WORK/time"
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; mem=$kb; fi
  done
  printf '%-44s %8.2f s  %7.1f MB peak\n' "$1" "$best" "$(awk "BEGIN{print $mem/1024}")"
}
DST="postgresql://postgres@localhost:56102/copy?host=$WORK"
for ROWS in "${ROWS_LIST[@]}"; do
  psql_src -d postgres -c "DROP DATABASE IF EXISTS app" -c "CREATE DATABASE app"
  sed "s/__ROWS__/$ROWS/g" tests/data/sync/prod.sql | psql_src -d app >/dev/null
  # As a production database is: vacuumed, so no method pays for setting the new rows' hint bits.
  psql_src -d app -c "VACUUM (FREEZE, ANALYZE)"
  SIZE=$(psql_src -d app -c "SELECT pg_size_pretty(pg_database_size('app'))")
  echo "== $ROWS users, $((2 * ROWS)) orders; source $SIZE; jobs $JOBS; best of $RUNS"
  D="$BINDIR/pg_dump -h $WORK -p 56101 -U postgres app"
  measure "pg_dump | psql" "$D | $BINDIR/psql -h $WORK -p 56102 -U postgres -q -d copy"
  measure "pg_dump -Fd -j $JOBS | pg_restore -j $JOBS" \
    "$D -Fd -j $JOBS -f $WORK/dump && $BINDIR/pg_restore -h $WORK -p 56102 -U postgres -j $JOBS -d copy $WORK/dump"
  measure "confiture sync (raw)" "cd $PROJECT && $BIN sync --from '$SRC' --to '$DST' --jobs $JOBS -q"
  measure "confiture sync --anonymize (4 columns)" \
    "cd $PROJECT && $BIN sync --from '$SRC' --to '$DST' --jobs $JOBS --anonymize bench -q"
  # The last copy is the anonymized one: it holds every row, and no original e-mail.
  [ "$(psql_dst -d copy -c "SELECT count(*) FROM orders")" = "$((2 * ROWS))" ] || { echo "orders missing"; exit 1; }
  [ "$(psql_dst -d copy -c "SELECT count(*) FROM users WHERE email ~ '^user[0-9]+[.][0-9a-f]{6}@'")" = 0 ] || { echo "unmasked e-mails"; exit 1; }
done
