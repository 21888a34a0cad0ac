#!/usr/bin/env bash
# Fuzzing: sqlsmith sends random queries at a database whose tables are
# makini_fdw foreign tables (the six imported tables of a healthy server,
# of a slow one, and of one whose connection is offline) and a few local
# tables, so foreign scans meet joins, lateral subqueries, rescans,
# sampling, window functions, random casts and sqlsmith's 1 s
# statement_timeout.  The run is bounded (SMITH_QUERIES queries, at most
# SMITH_SECONDS seconds).  Then the postmaster log must show no crash and
# the server must still answer.
#
# It runs last of the shell tests, so it also checks the server log of the
# whole suite for tokens: errors.sql ran queries with log_min_messages =
# debug1, so every request and retry is in it.  A token may appear only in
# the echo of a statement a test typed itself (STATEMENT: lines), never in a
# line makini_fdw wrote.
#
#   SMITH_QUERIES=20000 SMITH_SECONDS=900 bash sql-tests/test_sqlsmith.sh
#
# Prints "measured: sqlsmith N queries, E errors, C crashes".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e
DB=makini_sqlsmith_test
ROLE=makini_smith
SMITH_QUERIES=${SMITH_QUERIES:-3000}
SMITH_SECONDS=${SMITH_SECONDS:-50}
SMITH_SEED=${SMITH_SEED:-42}
LOG=$RUNDIR/postgres.log
TMP=$(mktemp -d)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

command -v sqlsmith >/dev/null || { echo "sqlsmith is not installed (lib.sh install_deps installs it)"; exit 1; }

cleanup_smith() {
	as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB >/dev/null 2>&1
	$PGBIN/psql -X -q -d postgres -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup_smith EXIT

as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB >/dev/null 2>&1
$PGBIN/psql -X -q -d postgres -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB || { echo "createdb failed"; exit 1; }
# sqlsmith calls random functions: it runs as a role that is not a superuser
# and owns nothing it could not lose
run_psql -q -d $DB <<SQL || { echo "setup failed"; exit 1; }
CREATE ROLE $ROLE LOGIN;
CREATE EXTENSION makini_fdw;
CREATE SERVER plant_a FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:$SIM_PORT', max_retries '1', max_retry_wait '1');
CREATE SERVER slow FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:$SIM_PORT', max_retries '1', max_retry_wait '1');
CREATE SERVER offline FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:$SIM_PORT', max_retries '1', max_retry_wait '1');
CREATE USER MAPPING FOR PUBLIC SERVER plant_a OPTIONS (token 'tok_plant_a');
CREATE USER MAPPING FOR PUBLIC SERVER slow OPTIONS (token 'tok_slow');
CREATE USER MAPPING FOR PUBLIC SERVER offline OPTIONS (token 'tok_offline');
CREATE SCHEMA erp;
CREATE SCHEMA erp_slow;
CREATE SCHEMA erp_offline;
IMPORT FOREIGN SCHEMA makini FROM SERVER plant_a INTO erp;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders, vendors) FROM SERVER slow INTO erp_slow;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders) FROM SERVER offline INTO erp_offline;
CREATE TABLE local_vendors AS SELECT key, name, code, created_at FROM erp.vendors;
CREATE TABLE local_orders AS
  SELECT key, order_no, vendor_key, status_key, total_gross_value, order_date
  FROM erp.purchase_orders LIMIT 50;
CREATE TABLE numbers AS SELECT g AS n, g::numeric / 7 AS x, md5(g::text) AS t FROM generate_series(1, 100) g;
ANALYZE local_vendors, local_orders, numbers;
GRANT USAGE ON SCHEMA erp, erp_slow, erp_offline TO $ROLE;
GRANT SELECT ON ALL TABLES IN SCHEMA erp, erp_slow, erp_offline, public TO $ROLE;
GRANT INSERT, UPDATE, DELETE ON local_vendors, local_orders, numbers TO $ROLE;
SQL

log_start=$(($(stat -c %s "$LOG" 2>/dev/null || echo 0) + 1))
t0=$(date +%s)
(cd "$TMP" && timeout -s INT "$SMITH_SECONDS" sqlsmith --verbose --exclude-catalog \
	--target="host=$PGHOST port=$PGPORT user=$ROLE dbname=$DB" \
	--seed="$SMITH_SEED" --max-queries="$SMITH_QUERIES" >"$TMP/smith.out" 2>&1)
rc=$?
t1=$(date +%s)

# sqlsmith --verbose prints a report now and then and at the end: "queries:
# N", then one line per error message with its count; the last one counts
awk '/^queries: [0-9]+/ { n = 0; delete r } { r[n++] = $0 } END { for (i = 0; i < n; i++) print r[i] }' \
	"$TMP/smith.out" >"$TMP/report"
queries=$(grep -E '^queries: [0-9]+' "$TMP/report" | awk '{ print $2 }')
errors=$(awk -F'\t' '/^[0-9]+\t/ { n += $1 } END { print n + 0 }' "$TMP/report")
fdw_errors=$(awk -F'\t' '/^[0-9]+\t.*Makini/ { n += $1 } END { print n + 0 }' "$TMP/report")
[ -n "$queries" ] || queries="~$(tr -cd '.e' <"$TMP/smith.out" | wc -c)"

# crashes: any backend that died of a signal, and the server still answering
tail -c +"$log_start" "$LOG" >"$TMP/run.log"
crashes=$(grep -cE 'terminated by signal|was terminated by exception|PANIC:|TRAP:' "$TMP/run.log")
echo "measured: sqlsmith $queries queries in $((t1 - t0)) s (seed $SMITH_SEED), $errors errors ($fdw_errors from makini_fdw), $crashes crashes"
if [ "$crashes" -gt 0 ]; then
	fail "the postmaster log shows crashes:"
	grep -E -B2 -A5 'terminated by signal|was terminated by exception|PANIC:|TRAP:' "$TMP/run.log" | head -60
fi
grep -q "^Generating indexes...done" "$TMP/smith.out" || fail "sqlsmith did not start: $(head -20 "$TMP/smith.out")"
# 124/130: stopped by the time bound; 0: max-queries reached; 1 with a
# broken connection is what sqlsmith does when the server crashed
if grep -qiE 'connection (to server )?(was )?(lost|closed)|server closed the connection|terminating connection because of crash' "$TMP/smith.out"; then
	fail "sqlsmith lost its connection (rc $rc): $(grep -iE 'connection|crash' "$TMP/smith.out" | head -5)"
fi
[ "$($PGBIN/psql -X -A -t -d $DB -c "SELECT count(*) > 0 FROM erp.vendors")" = t ] ||
	fail "the server no longer answers a query on a foreign table"
echo "sqlsmith's error report (top 15):"
grep -E '^[0-9]+	' "$TMP/report" | head -15

# tokens in the server log of the whole suite
if [ -f "$LOG" ]; then
	debug_lines=$(grep -c 'DEBUG:  makini_fdw: retrying GET' "$LOG")
	# a log entry starts with the log_line_prefix's time stamp; the lines of
	# a STATEMENT: entry (the echo of what a client sent) are left out
	awk '/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / { stmt = ($0 ~ /^[^ ]+ [^ ]+ [^ ]+ \[[0-9]+\] STATEMENT:  /) }
	     !stmt' "$LOG" >"$TMP/own.log"
	token_lines=$(grep -cE 'tok_[a-z]' "$TMP/own.log")
	echo "measured: server log: $debug_lines DEBUG1 retry lines of makini_fdw, $token_lines lines with a token outside echoed statements"
	[ "$debug_lines" -gt 0 ] || echo "note: no DEBUG1 lines of makini_fdw in the log (errors.sql did not run against this cluster?)"
	if [ "$token_lines" -gt 0 ]; then
		fail "a token appears in the server log:"
		grep -E 'tok_[a-z]' "$TMP/own.log" | head -5
	fi
else
	fail "no server log at $LOG"
fi

if [ $failures -gt 0 ]; then
	echo "result: test_sqlsmith: $failures failure(s)"
	exit 1
fi
echo "result: test_sqlsmith: no crash, the server answers, no token in the log"
