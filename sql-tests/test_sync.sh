#!/usr/bin/env bash
# makini_sync around the database: the state of every mirror (the extension's
# configuration table makini_sync_state) survives pg_dump and a restore into
# a new database, where the next call goes on incrementally from it; and a
# pg_cron jobs calling makini_sync, as the README's recipe schedules them,
# keep mirrors of purchase_orders and purchase_order_lines (as imported)
# following a change made at the simulator (in a second cluster started with
# shared_preload_libraries=pg_cron; skipped, saying so, when pg_cron is not
# installed).  Uses the simulator's connection plant_b; the one change it
# makes (a new order) is deleted again at the end; the simulator is never
# reset (other tests read its log).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e
DB=makini_sync_test
DB2=makini_sync_restored
SIM="http://127.0.0.1:$SIM_PORT/_sim"
TMP=$(mktemp -d)
failures=0
CRON_PORT=$((PGPORT + 20))
CRON_RUNDIR=$RUNDIR-cron
NEW_ORDER=SYNC-CRON-1

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
psql_in() { local db=$1; shift; $PGBIN/psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"; }
sim() { curl -s -S --max-time 20 "$SIM/$1"; }

# the SQL that makes a database ready: the extension, plant_b as a server,
# its tables in schema erp, an empty schema mirror, and the ground truth of
# purchase orders and their lines in tables truth_po and truth_lines
# (reloaded by load_truth())
setup_sql() {
	cat <<SQL
CREATE EXTENSION makini_fdw;
CREATE SERVER plant_b FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:$SIM_PORT');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_b OPTIONS (token 'tok_plant_b');
CREATE SCHEMA erp;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders, purchase_order_lines, currencies) FROM SERVER plant_b INTO erp;
CREATE SCHEMA mirror;
CREATE TABLE truth_po (LIKE erp.purchase_orders);
CREATE TABLE truth_lines (LIKE erp.purchase_order_lines);
CREATE FUNCTION load_truth() RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
  TRUNCATE truth_po, truth_lines;
  COPY truth_po FROM PROGRAM 'curl -s -S --max-time 60 $SIM/data/plant_b/purchase_orders.csv' WITH (FORMAT csv, HEADER);
  COPY truth_lines FROM PROGRAM 'curl -s -S --max-time 60 $SIM/data/plant_b/purchase_order_lines.csv' WITH (FORMAT csv, HEADER);
END \$\$;
-- rows of a mirror and its truth that differ (purchase_orders by default)
CREATE FUNCTION mirror_diff(mirror text DEFAULT 'mirror.purchase_orders', truth text DEFAULT 'truth_po')
RETURNS bigint LANGUAGE plpgsql AS \$\$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((TABLE %1\$s EXCEPT ALL TABLE %2\$s) UNION ALL (TABLE %2\$s EXCEPT ALL TABLE %1\$s)) d',
                 mirror, truth) INTO n;
  RETURN n;
END \$\$;
SELECT load_truth();
SQL
}

cleanup_sync() {
	sim "mutate?conn=plant_b&op=delete&key=$NEW_ORDER" >/dev/null 2>&1
	for db in $DB $DB2; do
		as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $db >/dev/null 2>&1
	done
	if [ -f "$CRON_RUNDIR/data/postmaster.pid" ]; then
		as_pg $PGBIN/pg_ctl -D "$CRON_RUNDIR/data" -m immediate -s stop
	fi
	rm -rf "$TMP" "$CRON_RUNDIR"
}
trap cleanup_sync EXIT
for db in $DB $DB2; do
	as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $db >/dev/null 2>&1
done

# --- pg_dump and restore keep the state ------------------------------------
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB || { echo "createdb failed"; exit 1; }
setup_sql | psql_in $DB >/dev/null || { echo "setup failed"; exit 1; }
psql_in $DB -c "SELECT makini_sync('erp.purchase_orders', 'mirror.purchase_orders');
                SELECT makini_sync('erp.purchase_orders', 'mirror.purchase_orders');
                SELECT makini_sync('erp.currencies', 'mirror.currencies');" >/dev/null 2>&1 ||
	fail "makini_sync in $DB"
STATE_SQL="SELECT target, source, watermark, last_mode, last_sync_at, last_fetched FROM makini_sync_state ORDER BY target::text"
psql_in $DB -c "$STATE_SQL" >"$TMP/state1" || fail "reading the state"
[ "$(wc -l <"$TMP/state1")" = 2 ] || fail "expected two state rows, got: $(cat "$TMP/state1")"
$PGBIN/pg_dump -d $DB -f "$TMP/dump.sql" || fail "pg_dump"
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB2 || fail "createdb $DB2"
psql_in $DB2 -f "$TMP/dump.sql" >/dev/null 2>"$TMP/restore.err" || fail "restore: $(head -5 "$TMP/restore.err")"
psql_in $DB2 -c "$STATE_SQL" >"$TMP/state2" || fail "reading the restored state"
if cmp -s "$TMP/state1" "$TMP/state2"; then
	echo "result: the state rows survive pg_dump and restore ($(wc -l <"$TMP/state2") rows)"
else
	fail "state differs after restore: $(diff "$TMP/state1" "$TMP/state2")"
fi
# the restored mirror goes on incrementally from the restored watermark
mode=$(psql_in $DB2 -c "SELECT mode FROM makini_sync('erp.purchase_orders', 'mirror.purchase_orders')" 2>/dev/null)
[ "$mode" = incremental ] || fail "the first call after restore was '$mode', not incremental"
diff=$(psql_in $DB2 -c "SELECT mirror_diff()")
[ "$diff" = 0 ] || fail "restored mirror differs from the ground truth in $diff rows"

# --- progress NOTICEs: with makini.sync_notice_interval = 0, one a page -----
# makini_sync sets makini_fdw.progress_interval from it for its scan, which
# says after every page 'scan of "T": N records so far (P pages), R records/s'
# (N: records of the API, for an expand table its parent records); with
# page_size 100, N = 100 x P up to the ground truth's record count; the rate
# is checked only for its form
# check_progress TABLE TRUTH WORD SET SQL: runs SQL after SET (the interval 0)
# and checks every progress NOTICE of the scan of erp.TABLE against the
# records of TRUTH (WORD: "records", or "parent records" for an expand table)
check_progress() {
	local tab=$1 truth=$2 word=$3 n want got
	n=$(psql_in $DB -c "SELECT count(*) FROM $truth")
	psql_in $DB -c "SET $4 = 0" -c "$5" >/dev/null 2>"$TMP/notices_$tab" ||
		{ fail "makini_sync of $tab with progress NOTICEs: $(head -3 "$TMP/notices_$tab")"; return; }
	want=$(for ((p = 1; (p - 1) * 100 < n; p++)); do
		echo "scan of \"$tab\": $((p * 100 < n ? p * 100 : n)) $word so far ($p pages), R records/s"
	done)
	got=$(sed -n 's/^NOTICE:  makini_fdw: \(scan of .* so far.*, \)[0-9][0-9]* records\/s$/\1R records\/s/p' "$TMP/notices_$tab")
	if [ -n "$want" ] && [ "$got" = "$want" ]; then
		echo "result: $tab ($5): $(echo "$got" | wc -l) progress NOTICEs for $n $word, one a page of 100"
	else
		fail "progress NOTICEs of $tab (n=$n): want <$want>, got <$got>; all: $(cat "$TMP/notices_$tab")"
	fi
}
for tab in purchase_orders purchase_order_lines; do
	word=records
	[ $tab = purchase_order_lines ] && word="parent records"
	check_progress $tab truth_po "$word" makini.sync_notice_interval \
		"SELECT makini_sync('erp.$tab', 'mirror.progress_$tab')"
done
# the setting on a plain scan, and makini_sync restores it after its scan
check_progress purchase_orders truth_po records makini_fdw.progress_interval \
	"SELECT count(*) FROM erp.purchase_orders"
after=$(psql_in $DB -c "SET makini.sync_notice_interval = 0" -c BEGIN \
	-c "SELECT makini_sync('erp.purchase_orders', 'mirror.progress_purchase_orders') IS NULL" \
	-c "SHOW makini_fdw.progress_interval" -c COMMIT 2>/dev/null | tail -1)
[ "$after" = -1 ] || fail "makini_fdw.progress_interval after makini_sync in its transaction: '$after', not -1"
# the default interval (10 s) and a long one: no progress NOTICE in a short call
psql_in $DB -c "SET makini.sync_notice_interval = '1 hour'" \
	-c "SELECT makini_sync('erp.purchase_orders', 'mirror.progress_purchase_orders', true)" >/dev/null 2>"$TMP/notices_long"
if grep -q "records so far" "$TMP/notices_long"; then
	fail "a progress NOTICE before makini.sync_notice_interval ('1 hour') passed: $(cat "$TMP/notices_long")"
else
	echo "result: no progress NOTICE before makini.sync_notice_interval passed"
fi

# --- a pg_cron job keeps the mirror following the source -------------------
if [ ! -f "$($PG_CONFIG --sharedir)/extension/pg_cron.control" ]; then
	echo "result: pg_cron test skipped: pg_cron is not installed (package postgresql-$PG_MAJOR-cron)"
	[ $failures = 0 ] && echo "all passed"
	exit $((failures > 0))
fi
mkdir -p "$CRON_RUNDIR/sock" && chown "$PG_OS_USER" "$CRON_RUNDIR" "$CRON_RUNDIR/sock" 2>/dev/null
as_pg $PGBIN/initdb -D "$CRON_RUNDIR/data" -U makini -A trust -E UTF8 --locale=C.UTF-8 >/dev/null ||
	{ fail "initdb for pg_cron"; exit 1; }
as_pg $PGBIN/pg_ctl -D "$CRON_RUNDIR/data" -l "$CRON_RUNDIR/postgres.log" -w -s \
	-o "-p $CRON_PORT -k $CRON_RUNDIR/sock -c listen_addresses='' -c makini_fdw.allowed_hosts=127.0.0.1 -c shared_preload_libraries=pg_cron -c cron.database_name=postgres -c cron.use_background_workers=on -c max_worker_processes=16" start ||
	{ fail "starting a cluster with pg_cron: $(tail -5 "$CRON_RUNDIR/postgres.log")"; exit 1; }
cron_psql() { PGHOST=$CRON_RUNDIR/sock PGPORT=$CRON_PORT psql_in postgres "$@"; }
{ echo "CREATE EXTENSION pg_cron;"; setup_sql; } | cron_psql >/dev/null || { fail "pg_cron setup"; exit 1; }
cron_psql -c "SELECT makini_sync('erp.purchase_orders', 'mirror.purchase_orders');
               SELECT makini_sync('erp.purchase_order_lines', 'mirror.purchase_order_lines')" >/dev/null 2>&1 ||
	fail "first makini_sync under pg_cron's cluster"
# pg_cron 1.5 and later run a job every few seconds; older ones every minute
schedule=$(cron_psql -c "SELECT CASE WHEN (regexp_match(extversion, '^(\d+)\.(\d+)'))::int[] >= '{1,5}' THEN '2 seconds' ELSE '* * * * *' END FROM pg_extension WHERE extname = 'pg_cron'")
cron_psql -c "SELECT cron.schedule('mirror-po', '$schedule', \$\$SELECT makini_sync('erp.purchase_orders', 'mirror.purchase_orders')\$\$);
               SELECT cron.schedule('mirror-lines', '$schedule', \$\$SELECT makini_sync('erp.purchase_order_lines', 'mirror.purchase_order_lines')\$\$)" >/dev/null ||
	fail "cron.schedule"
at=$(cron_psql -c "SELECT to_char(date_trunc('second', max(updated_at)) + interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM truth_po")
first=$(cron_psql -c "SELECT key FROM truth_po ORDER BY key LIMIT 1")
sim "mutate?conn=plant_b&op=insert&key=$NEW_ORDER&like=$first&at=$at" >/dev/null || fail "mutate"
cron_psql -c "SELECT load_truth()" >/dev/null
# wait (up to 3 minutes) until the jobs have brought the new order and its
# lines (as many as the truth gives it, at least one)
want=$(cron_psql -c "SELECT count(*) FROM truth_lines WHERE order_key = '$NEW_ORDER'")
[ "$want" -gt 0 ] || fail "the new order has no line items in the ground truth"
for _ in $(seq 1 180); do
	n=$(cron_psql -c "SELECT count(*) FROM mirror.purchase_orders WHERE key = '$NEW_ORDER'")
	nl=$(cron_psql -c "SELECT count(*) FROM mirror.purchase_order_lines WHERE order_key = '$NEW_ORDER'")
	[ "$n" = 1 ] && [ "$nl" = "$want" ] && break
	sleep 1
done
if [ "$n" = 1 ] && [ "$nl" = "$want" ]; then
	diff=$(cron_psql -c "SELECT mirror_diff()")
	[ "$diff" = 0 ] || fail "the orders mirror kept by pg_cron differs from the ground truth in $diff rows"
	diff=$(cron_psql -c "SELECT mirror_diff('mirror.purchase_order_lines', 'truth_lines')")
	[ "$diff" = 0 ] || fail "the lines mirror kept by pg_cron differs from the ground truth in $diff rows"
	modes=$(cron_psql -c "SELECT string_agg(target || ' ' || last_mode, ', ' ORDER BY target::text) FROM makini_sync_state")
	[ "$modes" = "mirror.purchase_order_lines incremental, mirror.purchase_orders incremental" ] ||
		fail "pg_cron's calls were not incremental: $modes"
	echo "result: pg_cron jobs ('$schedule') brought the new order and its $want lines into the mirrors, incrementally"
else
	fail "the pg_cron jobs did not bring the new order ($n) and its $want lines ($nl): $(cron_psql -c "SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 3")"
fi
cron_psql -c "SELECT cron.unschedule('mirror-po'); SELECT cron.unschedule('mirror-lines')" >/dev/null

[ $failures = 0 ] && echo "all passed"
exit $((failures > 0))
