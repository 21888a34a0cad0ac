#!/usr/bin/env bash
# The benchmark (not part of the pass/fail tests): builds and installs
# makini_fdw, starts its own cluster and simulator (RUNDIR, PGPORT and
# SIM_PORT differ from the test run's, so both can run at once), and prints,
# each as the median of RUNS runs after one warm-up run:
#   1. the FDW's full scan of purchase_order_lines (page_size 500),
#   2. baselines over the same pages: curl alone (one keep-alive invocation
#      fetching every page), Python json.loads into row tuples, the jsonb
#      pipeline a user would write without us, and file_fdw over the same
#      rows as CSV (PostgreSQL's floor for a foreign scan),
#   3. the ratios FDW / baseline,
#   4. the scan with LATENCY_MS added to every request, against pages x
#      LATENCY_MS (prefetch overlaps the wait for a page with the work on
#      the one before),
#   5. the backend's peak memory growth (VmHWM) during a scan, and the TCP
#      connections a scan opens.
# Goals are reported, not asserted.  Then runs bench_multi.sh,
# bench_sync.sh and bench_concurrency.sh (concurrent requests and plans,
# issue 12: 100 ms a request, CONC_LATENCY_MS).  BENCH_ONLY=concurrency or
# BENCH_ONLY=sync runs only that part, in a few minutes.
#   BENCH_ORDERS=20000 RUNS=5 LATENCY_MS=50 bash sql-tests/bench.sh
export RUNDIR=${RUNDIR:-/tmp/makini_fdw_bench}
export PGPORT=${PGPORT:-54339}
export SIM_PORT=${SIM_PORT:-18775}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ORDERS=${BENCH_ORDERS:-20000}
RUNS=${RUNS:-5}
LATENCY_MS=${LATENCY_MS:-50}
PAGE_SIZE=500
DB=bench
TOKEN=tok_bench
BASE=http://127.0.0.1:$SIM_PORT
SCAN="SELECT count(*), sum(quantity * price) FROM bench.purchase_order_lines"

# Median of the numbers on stdin, one per line.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# a / b with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# psql on the bench database, unaligned, tuples only.
bsql() { run_psql -q -At -d $DB "$@"; }

install_deps
build_install
trap cleanup EXIT
start_simulator --bench-orders "$ORDERS" --prewarm
start_cluster
case "${BENCH_ONLY:-}" in
concurrency) RUNS=$RUNS bash "$TOP/sql-tests/bench_concurrency.sh"; exit 0 ;;
sync) bash "$TOP/sql-tests/bench_sync.sh"; exit 0 ;;
esac
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB

log "setting up: the FDW's tables, file_fdw over the ground-truth CSV, timing helpers"
curl -sS --fail "$BASE/_sim/data/bench/purchase_order_lines.csv" -o "$RUNDIR/lines.csv"
chmod 644 "$RUNDIR/lines.csv"
bsql -v csv="$RUNDIR/lines.csv" <<SQL
CREATE EXTENSION makini_fdw;
CREATE EXTENSION file_fdw;
CREATE SERVER bench FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url '$BASE', page_size '$PAGE_SIZE');
CREATE USER MAPPING FOR CURRENT_USER SERVER bench OPTIONS (token '$TOKEN');
CREATE SCHEMA bench;
IMPORT FOREIGN SCHEMA makini FROM SERVER bench INTO bench;

-- the same rows as CSV, with the same columns and types
CREATE SERVER csv FOREIGN DATA WRAPPER file_fdw;
SELECT format('CREATE FOREIGN TABLE lines_csv (%s) SERVER csv OPTIONS (filename %L, format ''csv'', header ''true'')',
              string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum),
              :'csv')
FROM pg_attribute WHERE attrelid = 'bench.purchase_order_lines'::regclass AND attnum > 0 AND NOT attisdropped
\gexec

-- the jsonb pipeline: one row per page, then jsonb_array_elements
CREATE TABLE pages (body jsonb);

-- cpu_ns(): nanoseconds this backend has run on a CPU
CREATE FUNCTION cpu_ns() RETURNS bigint LANGUAGE sql
  AS \$\$ SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint \$\$;
-- vmhwm_kb(): this backend's peak resident memory
CREATE FUNCTION vmhwm_kb() RETURNS bigint LANGUAGE sql
  AS \$\$ SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint \$\$;
-- timed_runs(q, n): runs q n times; wall and CPU milliseconds of each run
CREATE FUNCTION timed_runs(q text, n int) RETURNS TABLE (ms numeric, cpu_ms numeric)
LANGUAGE plpgsql AS \$\$
DECLARE
  t0 timestamptz;
  c0 bigint;
BEGIN
  FOR i IN 1 .. n LOOP
    c0 := cpu_ns();
    t0 := clock_timestamp();
    EXECUTE q;
    ms := round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
    cpu_ms := round((cpu_ns() - c0) / 1e6, 1);
    RETURN NEXT;
  END LOOP;
END \$\$;
SQL

log "warming up: one FDW scan renders and caches every page in the simulator"
fdw_result=$(bsql -c "$SCAN")
# the pages exactly as the FDW asked for them (same URLs: the same cached replies)
curl -sS "$BASE/_sim/requests" | $PYTHON -c '
import csv, sys
seen = []
for r in csv.DictReader(sys.stdin):
    if r["conn"] == "bench" and r["path"] == "/api/erp/purchase-orders":
        u = r["path"] + ("?" + r["query"] if r["query"] else "")
        if u not in seen:
            seen.append(u)
print("\n".join(seen))' >"$RUNDIR/pages.txt"
PAGES=$(wc -l <"$RUNDIR/pages.txt")
urls=()
while read -r p; do urls+=("$BASE$p"); done <"$RUNDIR/pages.txt"
ROWS=${fdw_result%%|*}
log "$ORDERS orders, $ROWS line items, $PAGES pages of $PAGE_SIZE orders"

# ---------------------------------------------------------------------------
log "1. FDW scan: $SCAN"
# a warm-up run in the same session: the library, the catalogs, the connection
bsql -c "SELECT count(*) FROM timed_runs('$SCAN', 1)" \
	-c "SELECT ms || ' ' || cpu_ms FROM timed_runs('$SCAN', $RUNS)" | tail -n "$RUNS" >"$RUNDIR/fdw.txt"
fdw_ms=$(awk '{ print $1 }' "$RUNDIR/fdw.txt" | median)
fdw_cpu=$(awk '{ print $2 }' "$RUNDIR/fdw.txt" | median)
explain=$(bsql -c "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM bench.purchase_order_lines" | grep -iE "requests|bytes" | sed 's/^ *//' | head -2 | paste -sd ' ' || true)

# ---------------------------------------------------------------------------
log "2a. curl: one invocation, keep-alive, every page"
curl_args=()
for u in "${urls[@]}"; do curl_args+=(-o /dev/null "$u"); done
curl_once() { # $@: extra options; prints ms and connections made
	local t0 t1 conns
	t0=$(now_ms)
	conns=$(curl -sS --fail -H "Authorization: Bearer $TOKEN" -w '%{num_connects}\n' "$@" "${curl_args[@]}" | awk '{ s += $1 } END { print s }')
	t1=$(now_ms)
	echo "$((t1 - t0)) $conns"
}
curl_once -H 'Accept-Encoding: gzip' >/dev/null
for _ in $(seq "$RUNS"); do curl_once -H 'Accept-Encoding: gzip'; done >"$RUNDIR/curl_raw.txt"
for _ in $(seq "$RUNS"); do curl_once --compressed; done >"$RUNDIR/curl_dec.txt"
curl_raw_ms=$(awk '{ print $1 }' "$RUNDIR/curl_raw.txt" | median)
curl_dec_ms=$(awk '{ print $1 }' "$RUNDIR/curl_dec.txt" | median)
curl_conns=$(awk 'NR == 1 { print $2 }' "$RUNDIR/curl_raw.txt")

# ---------------------------------------------------------------------------
log "2b. Python: http.client keep-alive + gzip + json.loads + (quantity, price) tuples"
cat >"$RUNDIR/pyrows.py" <<'PY'
"""Python baseline: the same pages, fetched on one keep-alive connection,
gunzipped, parsed with json.loads and turned into (quantity, price) tuples
of Decimal; count and sum(quantity * price) as the SQL computes them.
Prints, per run, the whole time and the time of the parse part alone (ms)."""
import gzip, http.client, json, sys, time
from decimal import Decimal

host, port, token, pagefile, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
paths = [line.strip() for line in open(pagefile) if line.strip()]
headers = {"Authorization": "Bearer " + token, "Accept": "application/json",
           "Accept-Encoding": "gzip"}

def fetch():
    conn = http.client.HTTPConnection(host, port)
    bodies = []
    for p in paths:
        conn.request("GET", p, headers=headers)
        r = conn.getresponse()
        b = r.read()
        if r.getheader("Content-Encoding") == "gzip":
            b = gzip.decompress(b)
        bodies.append(b)
    conn.close()
    return bodies

def num(v):
    return None if v is None or v == "" else Decimal(v)

def rows(bodies):
    n, total = 0, Decimal(0)
    for b in bodies:
        for order in json.loads(b)["data"]:
            for line in order["lineItems"]:
                row = (num(line.get("quantity")), num(line.get("price")))
                n += 1
                if row[0] is not None and row[1] is not None:
                    total += row[0] * row[1]
    return n, total

rows(fetch())                                   # warm-up
for _ in range(runs):
    t0 = time.perf_counter()
    bodies = fetch()
    t1 = time.perf_counter()
    n, total = rows(bodies)
    t2 = time.perf_counter()
    print(f"{(t2 - t0) * 1000:.1f} {(t2 - t1) * 1000:.1f} {n}|{total}")
PY
$PYTHON "$RUNDIR/pyrows.py" 127.0.0.1 "$SIM_PORT" "$TOKEN" "$RUNDIR/pages.txt" "$RUNS" >"$RUNDIR/python.txt"
py_ms=$(awk '{ print $1 }' "$RUNDIR/python.txt" | median)
py_parse_ms=$(awk '{ print $2 }' "$RUNDIR/python.txt" | median)
py_result=$(awk 'NR == 1 { print $3 }' "$RUNDIR/python.txt")

# ---------------------------------------------------------------------------
log "2c. jsonb pipeline: COPY FROM PROGRAM curl into a table of jsonb, then jsonb_array_elements"
curl_cmd="curl -sS --fail --compressed -H \"Authorization: Bearer $TOKEN\" -w \"\\n\""
for u in "${urls[@]}"; do curl_cmd+=" \"$u\""; done
LOAD="COPY pages FROM PROGRAM \$p\$$curl_cmd\$p\$ WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
JSONB="SELECT count(*), sum(nullif(l->>'quantity', '')::numeric * nullif(l->>'price', '')::numeric) FROM pages, jsonb_array_elements(body->'data') o, jsonb_array_elements(o->'lineItems') l"
bsql -c "TRUNCATE pages" -c "SELECT ms FROM timed_runs(\$q\$$LOAD\$q\$, 1)" -c "SELECT ms FROM timed_runs(\$q\$$JSONB\$q\$, 1)" >/dev/null
for _ in $(seq "$RUNS"); do
	bsql -c "TRUNCATE pages" -c "SELECT ms FROM timed_runs(\$q\$$LOAD\$q\$, 1)" -c "SELECT ms FROM timed_runs(\$q\$$JSONB\$q\$, 1)" | paste -sd ' '
done >"$RUNDIR/jsonb.txt"
jsonb_load_ms=$(awk '{ print $1 }' "$RUNDIR/jsonb.txt" | median)
jsonb_sql_ms=$(awk '{ print $2 }' "$RUNDIR/jsonb.txt" | median)
jsonb_ms=$(awk '{ print $1 + $2 }' "$RUNDIR/jsonb.txt" | median)
jsonb_result=$(bsql -c "$JSONB")
jsonb_size=$(bsql -c "SELECT pg_size_pretty(pg_total_relation_size('pages'))")

# ---------------------------------------------------------------------------
log "2d. file_fdw over the same rows as CSV ($(du -h "$RUNDIR/lines.csv" | cut -f1))"
CSVSCAN="SELECT count(*), sum(quantity * price) FROM lines_csv"
bsql -c "SELECT count(*) FROM timed_runs('$CSVSCAN', 1)" \
	-c "SELECT ms FROM timed_runs('$CSVSCAN', $RUNS)" | tail -n "$RUNS" >"$RUNDIR/file_fdw.txt"
file_ms=$(median <"$RUNDIR/file_fdw.txt")
file_result=$(bsql -c "$CSVSCAN")

# ---------------------------------------------------------------------------
log "4. the FDW scan with $LATENCY_MS ms added to every request"
curl -sS "$BASE/_sim/latency?conn=bench&ms=$LATENCY_MS" >/dev/null
LRUNS=$(( RUNS < 3 ? RUNS : 3 ))
bsql -c "SELECT count(*) FROM bench.currencies" -c "SELECT ms FROM timed_runs('$SCAN', $LRUNS)" >"$RUNDIR/latency.txt"
curl -sS "$BASE/_sim/latency?conn=bench&ms=0" >/dev/null
sed -i '1d' "$RUNDIR/latency.txt"
lat_ms=$(median <"$RUNDIR/latency.txt")
lat_floor=$((PAGES * LATENCY_MS))

# ---------------------------------------------------------------------------
log "5. memory (VmHWM of the backend before and after a scan, fresh sessions) and TCP connections"
# a fresh session: load the extension and connect (one small query), then scan
hwm() { # $1: the scan; prints the VmHWM growth in kB
	bsql -c "SELECT count(*) FROM bench.currencies" -c "SELECT vmhwm_kb()" -c "$1" -c "SELECT vmhwm_kb()" |
		awk 'NR == 2 { a = $1 } NR == 4 { b = $1 } END { print b - a }'
}
hwm_full=$(hwm "$SCAN")
hwm_part=$(hwm "SELECT count(*), sum(quantity * price) FROM (SELECT * FROM bench.purchase_order_lines LIMIT $((ROWS / 10))) s")
hwm_base=$(bsql -c "SELECT count(*) FROM bench.currencies" -c "SELECT vmhwm_kb()" | tail -1)
# connections: TcpActiveOpens around the first scan of a fresh session and
# around a second scan in it (other processes may open connections too:
# the least of three tries); then the sockets the backend holds
conns_first=""
conns_second=""
for _ in 1 2 3; do
	bsql <<SQL >/dev/null
\! awk '/^Tcp:/ { getline; print \$6; exit }' /proc/net/snmp >$RUNDIR/opens.0
$SCAN;
\! awk '/^Tcp:/ { getline; print \$6; exit }' /proc/net/snmp >$RUNDIR/opens.1
$SCAN;
\! awk '/^Tcp:/ { getline; print \$6; exit }' /proc/net/snmp >$RUNDIR/opens.2
SELECT pg_backend_pid() \g $RUNDIR/backend.pid
\! ss -Htnp state established "( dport = :$SIM_PORT )" | grep -c "pid=\$(cat $RUNDIR/backend.pid)," >$RUNDIR/held || true
SQL
	a=$(( $(cat "$RUNDIR/opens.1") - $(cat "$RUNDIR/opens.0") ))
	b=$(( $(cat "$RUNDIR/opens.2") - $(cat "$RUNDIR/opens.1") ))
	if [ -z "$conns_first" ] || [ "$a" -lt "$conns_first" ]; then conns_first=$a; fi
	if [ -z "$conns_second" ] || [ "$b" -lt "$conns_second" ]; then conns_second=$b; fi
done
conns_held=$(cat "$RUNDIR/held")
command -v ss >/dev/null || conns_held="n/a (no ss)"

# ---------------------------------------------------------------------------
fdw_s=$(awk -v m="$fdw_ms" 'BEGIN { printf "%.3f", m / 1000 }')
rows_s=$(awk -v r="$ROWS" -v m="$fdw_ms" 'BEGIN { printf "%.0f", r / (m / 1000) }')
rows_cpu_s=$(awk -v r="$ROWS" -v m="$fdw_cpu" 'BEGIN { printf "%.0f", r / (m / 1000) }')
agree=yes
for r in "$py_result" "$jsonb_result" "$file_result"; do [ "$r" = "$fdw_result" ] || agree="NO ($r)"; done
mark() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN { ok = (op == "<=") ? v <= g : v >= g; print ok ? "met" : "NOT met" }'; }

cat <<EOF

== makini_fdw benchmark: $ORDERS orders, $ROWS line items, $PAGES pages of $PAGE_SIZE orders (gzip), $(nproc) CPUs, median of $RUNS runs
   query: $SCAN
   result: $fdw_result (Python, jsonb and file_fdw agree: $agree)
   $explain

| measurement | ms | FDW / it |
| --- | ---: | ---: |
| FDW full scan (wall; backend CPU $fdw_cpu ms) | $fdw_ms | 1.00 |
| curl, gzip bytes only, $curl_conns connection(s): the simulator's share | $curl_raw_ms | $(ratio "$fdw_ms" "$curl_raw_ms") |
| curl --compressed (transfer + inflate) | $curl_dec_ms | $(ratio "$fdw_ms" "$curl_dec_ms") |
| Python: fetch + gunzip + json.loads + row tuples (whole) | $py_ms | $(ratio "$fdw_ms" "$py_ms") |
| Python: json.loads + row tuples only (pages in memory) | $py_parse_ms | $(ratio "$fdw_ms" "$py_parse_ms") |
| jsonb pipeline, whole: COPY FROM PROGRAM curl + SQL | $jsonb_ms | $(ratio "$fdw_ms" "$jsonb_ms") |
| jsonb pipeline, SQL part only (pages already in a $jsonb_size table) | $jsonb_sql_ms | $(ratio "$fdw_ms" "$jsonb_sql_ms") |
| file_fdw over the same rows as CSV | $file_ms | $(ratio "$fdw_ms" "$file_ms") |

FDW: $fdw_s s, $rows_s line items/s (on CPU time: $rows_cpu_s/s)
with $LATENCY_MS ms per request: $lat_ms ms for $PAGES pages; FDW / (pages x $LATENCY_MS ms) = $(ratio "$lat_ms" "$lat_floor")
memory: backend VmHWM growth during the full scan $((hwm_full / 1024)) MB ($hwm_full kB; a scan of a tenth of the rows: $hwm_part kB; backend at start $((hwm_base / 1024)) MB)
connections: TCP connections opened by the first scan of a session $conns_first, by a second scan $conns_second; held by the backend after: $conns_held

goals (reported, not asserted):
  >= 300000 line items/s on loopback ............ $rows_s/s: $(mark "$rows_s" 300000 ">=")
  >= 3x faster than the jsonb pipeline (whole) .... FDW / jsonb = $(ratio "$fdw_ms" "$jsonb_ms") (<= 0.33): $(mark "$(ratio "$fdw_ms" "$jsonb_ms")" 0.33 "<=")
  >= 1.75x faster than Python rows (whole) ........ FDW / Python = $(ratio "$fdw_ms" "$py_ms") (<= 0.57): $(mark "$(ratio "$fdw_ms" "$py_ms")" 0.57 "<=")
  within 2.5x of file_fdw ......................... FDW / file_fdw = $(ratio "$fdw_ms" "$file_ms"): $(mark "$(ratio "$fdw_ms" "$file_ms")" 2.5 "<=")
  latency hidden by prefetch ...................... $(ratio "$lat_ms" "$lat_floor") (<= 1.1): $(mark "$(ratio "$lat_ms" "$lat_floor")" 1.1 "<=")
  peak memory growth <= 32 MB ..................... $((hwm_full / 1024)) MB: $(mark "$hwm_full" 32768 "<=")
  connections <= max_concurrent_requests (4) ...... $conns_first: $(mark "$conns_first" 4 "<=")
  a second scan reuses them (keep-alive) .......... $conns_second: $(mark "$conns_second" 0 "<=")
EOF

log "many connections (bench_multi.sh)"
bash "$TOP/sql-tests/bench_multi.sh"

log "makini_sync (bench_sync.sh)"
bash "$TOP/sql-tests/bench_sync.sh"

log "concurrent requests and plans (bench_concurrency.sh)"
RUNS=$RUNS bash "$TOP/sql-tests/bench_concurrency.sh"
