#!/usr/bin/env bash
# The fdw-cutover benchmark (docs/performance.md, "fdw-cutover"): two PostgreSQL servers on this
# machine, OLD with tests/data/cutover/old.sql at ROWS users and 2×ROWS orders, PgBouncer in front
# of OLD, and a steady pgbench write load through PgBouncer (RATE transactions/s: 3 in 4 add 1 to
# a user's balance, 1 in 4 inserts an order) during the whole run. Then:
#   - pg_dump | psql of OLD into a fresh database (no load): the baseline;
#   - confiture migrate schema-to-schema --strategy fdw into NEW (tests/data/cutover/new.sql,
#     mapping.kdl: a renamed column, a computed column, a split table), PgBouncer switched.
# Reported: total time of each, the write freeze (confiture's, and the longest transaction the
# load saw), the catch-up rate, the load's throughput before, during and after; and checked:
# every committed update and insert is on NEW (sum of balances, count of orders), verify passed.
#
#   benches/cutover.sh [ROWS]              default 1000000
#   RATE=1000 CLIENTS=4 JOBS=2 benches/cutover.sh 1000000
# Needs a release build (it builds one if missing), PostgreSQL's binaries, pgbench
# (postgresql-client) and pgbouncer. Run as root, the servers and PgBouncer run as `postgres`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
RATE=${RATE:-1000}
CLIENTS=${CLIENTS:-4}
JOBS=${JOBS:-$(nproc)}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release/confiture"
[ -x "$BIN" ] || cargo build --release --bin confiture
BIN=$(realpath "$BIN")
BINDIR=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGBENCH=$(command -v pgbench || echo "$BINDIR/pgbench")
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
WORK=$(mktemp -d /tmp/confiture-cutover-bench.XXXX)
chmod 755 "$WORK"
RUNAS=()
if [ "$(id -u)" = 0 ]; then chown postgres "$WORK"; RUNAS=(runuser -u postgres --); fi
cleanup() {
  [ -f "$WORK/pgbouncer.pid" ] && kill "$(cat "$WORK/pgbouncer.pid")" 2>/dev/null || true
  for s in old new; do "${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$WORK/$s" -m immediate stop >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
start() { # name port
  "${RUNAS[@]}" "$BINDIR/initdb" -D "$WORK/$1" -U postgres --auth=trust >/dev/null
  "${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$WORK/$1" -l "$WORK/$1.log" -w \
    -o "-p $2 -k $WORK -c fsync=off -c full_page_writes=off -c shared_buffers=512MB -c max_wal_size=4GB -c maintenance_work_mem=256MB" start >/dev/null
}
start old 56201
start new 56202
psql_old() { "$BINDIR/psql" -h "$WORK" -p 56201 -U postgres -qAt -v ON_ERROR_STOP=1 "$@"; }
psql_new() { "$BINDIR/psql" -h "$WORK" -p 56202 -U postgres -qAt -v ON_ERROR_STOP=1 "$@"; }
psql_old -d postgres -c "CREATE DATABASE app"
psql_new -d postgres -c "CREATE DATABASE app_v2" -c "CREATE DATABASE dumped"
echo "== generating $ROWS users, $((2 * ROWS)) orders on OLD"
sed "s/__ROWS__/$ROWS/g" tests/data/cutover/old.sql | psql_old -d app >/dev/null
psql_old -d app -c "VACUUM (FREEZE, ANALYZE)"
echo "OLD: $(psql_old -d app -c "SELECT pg_size_pretty(pg_database_size('app'))")"

# PgBouncer in front of OLD.
cat > "$WORK/pgbouncer.ini" <<INI
[databases]
app = host=$WORK port=56201 dbname=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 56203
unix_socket_dir =
auth_type = trust
auth_file = $WORK/users.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
INI
echo '"postgres" ""' > "$WORK/users.txt"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pgbouncer.ini" "$WORK/users.txt"
"${RUNAS[@]}" "$PGBOUNCER" -d "$WORK/pgbouncer.ini"
sleep 1

# The baseline: a plain dump and restore of the same data (no load).
T0=$(date +%s.%N)
"$BINDIR/pg_dump" -h "$WORK" -p 56201 -U postgres app | "$BINDIR/psql" -h "$WORK" -p 56202 -U postgres -q -d dumped >/dev/null
DUMP=$(awk "BEGIN{print $(date +%s.%N) - $T0}")
psql_new -d postgres -c "DROP DATABASE dumped"

# The project: NEW's schema and the mapping.
P="$WORK/project"
mkdir -p "$P/db/schema"
cp tests/data/cutover/new.sql "$P/db/schema/01_tables.sql"
cp tests/data/cutover/mapping.kdl "$P/db/cutover.kdl"
OLD_URL="postgresql://postgres@localhost:56201/app?host=$WORK"
NEW_URL="postgresql://postgres@localhost:56202/app_v2?host=$WORK"

# The load, through PgBouncer, for the whole run (LOAD_SECONDS, long enough to outlast it).
cat > "$WORK/update.sql" <<'SQL'
\set id random(1, :rows)
UPDATE users SET balance = balance + 1 WHERE id = :id;
SQL
cat > "$WORK/insert.sql" <<'SQL'
\set id random(1, :rows)
INSERT INTO orders (user_id, amount) VALUES (:id, 1.00);
SQL
LOAD_SECONDS=${LOAD_SECONDS:-$((60 + ROWS / 5000))}
(cd "$WORK" && "$PGBENCH" -h 127.0.0.1 -p 56203 -U postgres -n -c "$CLIENTS" -j 2 -R "$RATE" -T "$LOAD_SECONDS" \
  -D rows="$ROWS" -f update.sql@3 -f insert.sql@1 -P 1 -l --log-prefix="$WORK/tx" app \
  > "$WORK/pgbench.out" 2> "$WORK/pgbench.progress") &
LOAD=$!
sleep 10
START=$(date +%s.%N)
(cd "$P" && /usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" migrate schema-to-schema --strategy fdw \
  --from "$OLD_URL" --to "$NEW_URL" --mapping db/cutover.kdl --keep --jobs "$JOBS" \
  --pgbouncer-admin "postgresql://postgres@127.0.0.1:56203/pgbouncer?sslmode=disable" \
  --pgbouncer-database app --pgbouncer-config "$WORK/pgbouncer.ini" --format json > "$WORK/report.json")
END=$(date +%s.%N)
echo "== waiting for the load to end ($LOAD_SECONDS s in all)"
wait "$LOAD"
read -r SECS KB < "$WORK/time"
python3 - "$WORK" "$START" "$END" "$DUMP" "$SECS" "$KB" "$ROWS" <<'PY'
import glob, json, sys, re
work, start, end, dump, secs, kb, rows = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
r = json.load(open(f"{work}/report.json"))["stages"][0]["outputs"]
# pgbench -l: client, tx, latency_us, script, epoch, epoch_us (-R adds the schedule lag)
tx = []
for f in glob.glob(f"{work}/tx*"):
    for line in open(f):
        c, n, lat, script, e, us = line.split()[:6]
        tx.append((int(e) + int(us) / 1e6, int(lat) / 1000.0, int(script)))
freeze_at = end  # the switch is the run's last step
phases = {p["phase"]: p for p in r["phases"]}
def window(a, b):
    sel = [t for t in tx if a <= t[0] < b]
    return len(sel) / max(b - a, 1e-9), max((t[1] for t in sel), default=0)
before = window(start - 9, start)
during = window(start, end)
after = window(end, end + 20)
cut = r["cutover"]
around = max((t[1] for t in tx if end - 5 <= t[0] <= end + 1), default=0)
print(f"pg_dump | psql (no load)                {dump:8.2f} s")
print(f"confiture schema-to-schema (under load) {secs:8.2f} s  ({secs / dump:.2f}x)  {kb / 1024:.0f} MB peak")
for p in r["phases"]:
    print(f"  {p['phase']:<9} {p['duration_ms'] / 1000:7.2f} s  {p['summary']}")
cu = r.get("catch_up") or {}
print(f"catch-up: {cu.get('changes', 0)} changes at {cu.get('rate', 0):.0f}/s")
print(f"write freeze: {cut['freeze_ms']} ms (confiture: PAUSE to RESUME); longest transaction the load saw around the switch: {around:.0f} ms")
print(f"load throughput: before {before[0]:.0f} tx/s (max {before[1]:.0f} ms), during {during[0]:.0f} tx/s (max {during[1]:.0f} ms), after {after[0]:.0f} tx/s (max {after[1]:.0f} ms)")
updates = sum(1 for t in tx if t[2] == 0)
inserts = sum(1 for t in tx if t[2] == 1)
open(f"{work}/expected", "w").write(f"{updates} {inserts}\n")
PY
read -r UPDATES INSERTS < "$WORK/expected"
GOT_U=$(psql_new -d app_v2 -c "SELECT sum(balance) FROM users")
GOT_I=$(psql_new -d app_v2 -c "SELECT count(*) - $((2 * ROWS)) FROM orders")
echo "committed by the load: $UPDATES updates, $INSERTS inserts; on NEW: $GOT_U, $GOT_I"
[ "$GOT_U" = "$UPDATES" ] && [ "$GOT_I" = "$INSERTS" ] || { echo "LOST OR DOUBLED WRITES"; exit 1; }
grep -q "aborted" "$WORK/pgbench.out" && { grep aborted "$WORK/pgbench.out"; echo "the load saw errors"; exit 1; }
echo "0 writes lost, none applied twice"
