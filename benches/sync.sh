#!/usr/bin/env bash
# The sync benchmark (docs/performance.md, "sync"): two PostgreSQL servers on this machine, the
# generator of tests/data/sync/prod.sql at ROWS users (2×ROWS orders, ~3×ROWS order items,
# ROWS events), and side by side, each into a fresh empty database:
#   pg_dump | psql,  pg_dump -Fd -j N | pg_restore -j N,  confiture sync (raw),
#   confiture sync --anonymize (email, name, phone and a jsonb path masked).
# Wall time and peak memory (GNU time) of each; the target is checked after each confiture run.
# With PYTHON_CONFITURE=/path/to/confiture (the Python Confiture, `pip install fraiseql-confiture`),
# also its sync of the same database (it stops on the jsonb column: reported as it fails), and a
# head-to-head on a table it can copy: `people` (ROWS rows of id, email, name, phone) in a
# database of its own, raw and with the three columns masked, against confiture on the same.
# (`people.email` is not UNIQUE: the Python Confiture's 32-bit e-mail pseudonyms collide at a
# million rows, and its run stops on the duplicate key.)
#
#   benches/sync.sh [ROWS...]          default 1000000; e.g. benches/sync.sh 1000000 5000000
#   JOBS=2 RUNS=1 MAX_WAL_SIZE=1GB benches/sync.sh
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
    -o "-p $2 -k $WORK -c fsync=off -c full_page_writes=off -c shared_buffers=512MB -c max_wal_size=${MAX_WAL_SIZE:-4GB} -c maintenance_work_mem=256MB" start >/dev/null
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
anonymize "people" {
    key env="CONFITURE_ANON_KEY"
    table "people" {
        column "email" "email"
        column "name" "person-name"
        column "phone" "phone"
    }
}
KDL
export CONFITURE_ANON_KEY="a benchmark key, long enough to be a key"
fresh() { psql_dst -d postgres -c "DROP DATABASE IF EXISTS copy" -c "CREATE DATABASE copy"; rm -rf "$WORK/dump"; }
measure() { # label command...
  local best="" mem=""
  for _ in $(seq "$RUNS"); do
    fresh
    if ! /usr/bin/time -f "%e %M" -o "$WORK/time" bash -c "$2" >"$WORK/out" 2>"$WORK/err"; then
      # The Python Confiture's failures are results; ours stop the benchmark.
      case "$1" in Python*) printf '%-44s fails: %s\n' "$1" "$(grep -h -A1 -E 'Error|❌' "$WORK/out" "$WORK/err" | grep -v '^\s*$' | head -2 | tr '\n' ' ')"; return;; esac
      cat "$WORK/out" "$WORK/err"; exit 1
    fi
    read -r secs kb < "$WORK/time"
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; mem=$kb; fi
  done
  printf '%-44s %8.2f s  %7.1f MB peak\n' "$1" "$best" "$(awk "BEGIN{print $mem/1024}")"
}
DST="postgresql://postgres@localhost:56102/copy?host=$WORK"
# The Python Confiture: it needs the target's schema made beforehand (not timed) and a URL with
# a password (trust ignores it); its masking rules are YAML, its key ANONYMIZATION_SECRET.
python_reference() { # rows
  local PY="$WORK/python" FROM="postgresql://postgres:x@localhost:56101" TO="postgresql://postgres:x@localhost:56102/copy"
  local SCHEMA="$BINDIR/pg_dump -h $WORK -p 56101 -U postgres -s" INTO="$BINDIR/psql -h $WORK -p 56102 -U postgres -q -d copy"
  rules() { mkdir -p "$PY/db/sync"; printf '%s\n' "$1:" "  - {column: email, strategy: email}" \
    "  - {column: name, strategy: name}" "  - {column: phone, strategy: phone}" > "$PY/db/sync/anonymization.yaml"; }
  export ANONYMIZATION_SECRET="$CONFITURE_ANON_KEY"
  rules users
  fresh
  $SCHEMA app | $INTO >/dev/null
  if (cd "$PY" && /usr/bin/time -f "%e %M" -o "$WORK/time" "$PYTHON_CONFITURE" sync --from "$FROM/app" --to "$TO" \
      --anonymize >"$WORK/py.out" 2>&1); then
    read -r secs kb < "$WORK/time"
    printf '%-44s %8.2f s  %7.1f MB peak\n' "Python Confiture sync --anonymize" "$secs" "$(awk "BEGIN{print $kb/1024}")"
  else
    printf '%-44s fails after %s s: %s\n' "Python Confiture sync --anonymize" "$(tail -1 "$WORK/time" | cut -d' ' -f1)" \
      "$(grep -A1 'Error' "$WORK/py.out" | tail -1)"
  fi
  psql_src -d postgres -c "DROP DATABASE IF EXISTS people" -c "CREATE DATABASE people"
  psql_src -d people -c "CREATE TABLE people (id bigint PRIMARY KEY, email text NOT NULL, name text NOT NULL,
    phone text)" -c "INSERT INTO people SELECT i, 'user' || i || '@example.org', 'Person ' || md5(i::text),
    '+33 6 ' || lpad((i % 100000000)::text, 8, '0') FROM generate_series(1, $1) i" -c "VACUUM (FREEZE, ANALYZE) people"
  rules people
  echo "-- people: $1 rows (id, email, name, phone); the Python runs include making the schema first"
  local P="postgresql://postgres@localhost:56101/people?host=$WORK"
  measure "Python Confiture sync (raw)" "$SCHEMA people | $INTO && cd $PY && $PYTHON_CONFITURE sync --from $FROM/people --to $TO"
  measure "Python Confiture sync --anonymize (3 columns)" \
    "$SCHEMA people | $INTO && cd $PY && $PYTHON_CONFITURE sync --from $FROM/people --to $TO --anonymize"
  measure "confiture sync (raw)" "cd $PROJECT && $BIN sync --from '$P' --to '$DST' --jobs $JOBS -q"
  measure "confiture sync --anonymize (3 columns)" "cd $PROJECT && $BIN sync --from '$P' --to '$DST' --jobs $JOBS --anonymize people -q"
  [ "$(psql_dst -d copy -c "SELECT count(*) FROM people WHERE email ~ '^user[0-9]+@example[.]org$'")" = 0 ] || { echo "unmasked e-mails"; exit 1; }
}
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
  [ -n "${PYTHON_CONFITURE:-}" ] && python_reference "$ROWS"
done
