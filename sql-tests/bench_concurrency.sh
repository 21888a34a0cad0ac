#!/usr/bin/env bash
# Concurrent requests and plans that know a table's size (issue 12).  With
# CONC_LATENCY_MS (100) added to every request by the simulator and default
# options (max_concurrent_requests 4), prints, as medians of RUNS runs:
#   1. a full scan of the bench connection's orders (page_size 500: 40
#      pages for 20,000 orders) against pages x latency (goal <= 0.3),
#   2. an order_no IN list of 20 values against 20 x latency (goal <= 0.35);
#      on plant_a (600 orders): the simulator filters in Python, and over
#      20,000 orders each filtered request costs it more CPU than the
#      latency, which would time the simulator,
#   3. 25 local rows joined with the bench orders on order_no, nothing
#      analyzed, each run in a fresh session (the size is not known yet):
#      the plan, and the requests the query made (goal <= 30),
#   4. the most requests the simulator answered at once over 1-3, with its
#      limit of 8 requests a connection on, and the queries that failed,
#   5. load: SESSIONS (20) sessions scanning the bench orders at once (the
#      limit of 8 is per connection, shared by every backend): each result
#      against the single-session result, failures, 429s, and the total
#      time against one session's time x SESSIONS / 8.
# Every result (count and sum) is checked against the simulator's ground
# truth.  Reported, not asserted.  Expects lib.sh's cluster and a simulator
# started with --bench-orders (bench.sh runs it; BENCH_ONLY=concurrency
# runs only this part).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LAT=${CONC_LATENCY_MS:-100}
RUNS=${RUNS:-5}
SESSIONS=${SESSIONS:-20}
DB=bench_conc
BASE=http://127.0.0.1:$SIM_PORT
FULL="SELECT count(*) || '|' || sum(total_gross_value) FROM bench.purchase_orders"
JOIN="SELECT count(*) || '|' || sum(p.total_gross_value) FROM wanted w JOIN bench.purchase_orders p USING (order_no)"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mark() { awk -v v="$1" -v g="$2" 'BEGIN { print (v <= g) ? "met" : "NOT met" }'; }
csql() { run_psql -q -At -d $DB "$@"; }
sim() { curl -sS --fail "$BASE/_sim/$1"; }
latency() { sim "latency?conn=bench&ms=$1" >/dev/null; sim "latency?conn=plant_a&ms=$1" >/dev/null; }
# the simulator's last log sequence number
last_seq() { sim requests | $PYTHON -c 'import csv, sys; print(max([int(r["seq"]) for r in csv.DictReader(sys.stdin)] or [0]))'; }
# requests after sequence number $1: all of them and the 429s, "N M"
requests_since() {
	sim "requests?since=$1" | $PYTHON -c '
import csv, sys
rows = [r for r in csv.DictReader(sys.stdin) if r["conn"] in ("bench", "plant_a")]
print(len(rows), sum(r["status"] == "429" for r in rows))'
}

as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB
log "concurrency (issue 12): setting up"
csql <<SQL
CREATE EXTENSION makini_fdw;
CREATE SERVER bench FOREIGN DATA WRAPPER makini_fdw OPTIONS (url '$BASE', page_size '500');
CREATE USER MAPPING FOR CURRENT_USER SERVER bench OPTIONS (token 'tok_bench');
CREATE SCHEMA bench;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders) FROM SERVER bench INTO bench;
CREATE SERVER plant_a FOREIGN DATA WRAPPER makini_fdw OPTIONS (url '$BASE');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_a OPTIONS (token 'tok_plant_a');
CREATE SCHEMA plant_a;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders) FROM SERVER plant_a INTO plant_a;
-- ground truth (local copies, never queried with the foreign tables)
CREATE TABLE truth_bench (LIKE bench.purchase_orders);
CREATE TABLE truth_a (LIKE plant_a.purchase_orders);
COPY truth_bench FROM PROGRAM 'curl -sS --fail $BASE/_sim/data/bench/purchase_orders.csv' WITH (FORMAT csv, HEADER);
COPY truth_a FROM PROGRAM 'curl -sS --fail $BASE/_sim/data/plant_a/purchase_orders.csv' WITH (FORMAT csv, HEADER);
-- 25 local order numbers; no ANALYZE: the primary key, built after the
-- rows, gives the table its size (a never-analyzed table without one is
-- planned as 10 pages of rows)
CREATE TABLE wanted AS SELECT order_no FROM truth_bench ORDER BY key LIMIT 25;
ALTER TABLE wanted ADD PRIMARY KEY (order_no);
-- timed_runs(q, n): runs q (one text value) n times: wall ms, the value,
-- and whether it failed
CREATE FUNCTION timed_runs(q text, n int) RETURNS TABLE (ms numeric, result text, failed boolean)
LANGUAGE plpgsql AS \$\$
DECLARE
  t0 timestamptz;
BEGIN
  FOR i IN 1 .. n LOOP
    t0 := clock_timestamp();
    failed := false;
    result := NULL;
    BEGIN
      EXECUTE q INTO result;
    EXCEPTION WHEN OTHERS THEN
      failed := true;
      RAISE WARNING 'failed: %', SQLERRM;
    END;
    ms := round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
    RETURN NEXT;
  END LOOP;
END \$\$;
SQL
IN_VALUES=$(csql -c "SELECT string_agg(quote_literal(order_no), ', ') FROM (SELECT order_no FROM truth_a ORDER BY key LIMIT 20) s")
IN="SELECT count(*) || '|' || sum(total_gross_value) FROM plant_a.purchase_orders WHERE order_no IN ($IN_VALUES)"
want_full=$(csql -c "${FULL//bench.purchase_orders/truth_bench}")
want_in=$(csql -c "${IN//plant_a.purchase_orders/truth_a}")
want_join=$(csql -c "${JOIN//bench.purchase_orders/truth_bench}")

sim reset >/dev/null
latency "$LAT"
failed=0
# $1: a file of "ms|count|sum|failed" lines, $2: the wanted "count|sum";
# prints how many runs failed or were wrong
wrong() { awk -F'|' -v w="$2" '$4 == "t" || ($2 "|" $3) != w { n++ } END { print n + 0 }' "$1"; }
# the median ms of such a file
median_ms() { awk -F'|' '{ print $1 }' "$1" | median; }
# the SQL running query $1 $2 times: one such line a run
timed() { echo "SELECT ms || '|' || coalesce(result, '') || '|' || failed FROM timed_runs(\$q\$$1\$q\$, $2)"; }
# runs query $1 RUNS times in one session after a warm-up run: the lines into file $2
measure() { csql -c "$(timed "$1" 1)" -c "$(timed "$1" "$RUNS")" | tail -n "$RUNS" >"$2"; }

log "1. full scan with $LAT ms a request"
s0=$(last_seq)
csql -c "$(timed "$FULL" 1)" >/dev/null
read -r pages _ < <(requests_since "$s0")
measure "$FULL" "$RUNDIR/conc_full.txt"
full_ms=$(median_ms "$RUNDIR/conc_full.txt")
failed=$((failed + $(wrong "$RUNDIR/conc_full.txt" "$want_full")))

log "2. order_no IN 20 values with $LAT ms a request"
measure "$IN" "$RUNDIR/conc_in.txt"
in_ms=$(median_ms "$RUNDIR/conc_in.txt")
failed=$((failed + $(wrong "$RUNDIR/conc_in.txt" "$want_in")))

log "3. 25 local rows joined on order_no, nothing analyzed, a fresh session a run"
plan=$(csql -c "EXPLAIN (COSTS OFF) $JOIN" | sed 's/^ *//; s/^->  //' | paste -sd '/' | sed 's|/| / |g')
: >"$RUNDIR/conc_join.txt"
: >"$RUNDIR/conc_join_req.txt"
for _ in $(seq "$RUNS"); do
	s0=$(last_seq)
	csql -c "$(timed "$JOIN" 1)" >>"$RUNDIR/conc_join.txt"
	requests_since "$s0" | awk '{ print $1 }' >>"$RUNDIR/conc_join_req.txt"
done
join_ms=$(median_ms "$RUNDIR/conc_join.txt")
failed=$((failed + $(wrong "$RUNDIR/conc_join.txt" "$want_join")))
join_req=$(median <"$RUNDIR/conc_join_req.txt")
peak=$(sim inflight | $PYTHON -c 'import json, sys; print(max(json.load(sys.stdin).values()))')

log "5. load: $SESSIONS sessions scanning the same server at once"
sim reset >/dev/null
latency "$LAT"
rm -rf "$RUNDIR/conc_go" "$RUNDIR/conc_ready" "$RUNDIR"/conc_load.[0-9]* "$RUNDIR"/conc_load_err.*
mkdir "$RUNDIR/conc_ready"
for i in $(seq "$SESSIONS"); do
	# connect, load the library and reach the API (one key lookup), say so,
	# then wait for the others
	csql -c "SELECT count(*) FROM bench.purchase_orders WHERE key = 'none'" \
		-c "\\! touch $RUNDIR/conc_ready/$i; while [ ! -e $RUNDIR/conc_go ]; do sleep 0.02; done" \
		-c "$(timed "$FULL" 1)" \
		>"$RUNDIR/conc_load.$i" 2>"$RUNDIR/conc_load_err.$i" &
done
for _ in $(seq 600); do
	[ "$(ls "$RUNDIR/conc_ready" | wc -l)" -ge "$SESSIONS" ] && break
	sleep 0.1
done
s0=$(last_seq)
t0=$(now_ms)
touch "$RUNDIR/conc_go"
wait
load_ms=$(($(now_ms) - t0))
cat "$RUNDIR"/conc_load.[0-9]* | grep '|' >"$RUNDIR/conc_load.txt" || true
load_done=$(wc -l <"$RUNDIR/conc_load.txt")
load_bad=$(wrong "$RUNDIR/conc_load.txt" "$want_full")
load_bad=$((load_bad + SESSIONS - load_done))
load_max=$(awk -F'|' '{ print $1 }' "$RUNDIR/conc_load.txt" | sort -n | tail -1)
read -r load_req load_429 < <(requests_since "$s0")
load_peak=$(sim inflight | $PYTHON -c 'import json, sys; print(json.load(sys.stdin).get("bench", 0))')
load_ideal=$(awk -v m="$full_ms" -v s="$SESSIONS" 'BEGIN { printf "%.0f", m * s / 8 }')
# the simulator's floor: the pages answered, 8 at a time, latency each
load_floor=$(((load_req - load_429) * LAT / 8))
latency 0

cat <<EOF

== concurrency and plans (issue 12): $LAT ms added to every request, default options (max_concurrent_requests 4), median of $RUNS runs, $(nproc) CPUs
| measurement | ms | ÷ floor | goal |
| --- | ---: | ---: | --- |
| full scan, $pages pages of 500 orders | $full_ms | ÷ ($pages × $LAT ms) = $(ratio "$full_ms" $((pages * LAT))) | <= 0.30: $(mark "$(ratio "$full_ms" $((pages * LAT)))" 0.30) |
| order_no IN, 20 values | $in_ms | ÷ (20 × $LAT ms) = $(ratio "$in_ms" $((20 * LAT))) | <= 0.35: $(mark "$(ratio "$in_ms" $((20 * LAT)))" 0.35) |
| 25 local rows joined on order_no, nothing analyzed, fresh session | $join_ms | $join_req requests | <= 30 requests: $(mark "$join_req" 30) |
plan of the join: $plan
most requests in flight at the simulator (its limit of 8 on): $peak; failed or wrong queries: $failed
load: $SESSIONS sessions × the full scan at once: $load_ms ms in all (slowest session $load_max ms), against one session's $full_ms ms × $SESSIONS ÷ 8 = $load_ideal ms: $(ratio "$load_ms" "$load_ideal") (the simulator's floor, $((load_req - load_429)) pages 8 at a time: $load_floor ms: $(ratio "$load_ms" "$load_floor")); wrong or failed: $load_bad of $SESSIONS; $load_req requests, $load_429 answered 429; most in flight at the simulator: $load_peak
EOF
