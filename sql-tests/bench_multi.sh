#!/usr/bin/env bash
# Many connections, one query: times a UNION ALL over four servers, each
# answering every request after 200 ms, against the slowest server alone.
# With async scans the union should cost about the time of the slowest
# server (goal: ratio <= 1.3), not the sum.  Expects the cluster and the
# simulator of lib.sh to be running (bench.sh calls it; it can also run
# after `KEEP=1 bash sql-tests/demo.sh`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LATENCY_MS=${LATENCY_MS:-200}
RUNS=${RUNS:-3}
DB=bench_multi

as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB
for c in plant_a plant_b plant_c slow; do
	curl -s "http://127.0.0.1:$SIM_PORT/_sim/latency?conn=$c&ms=$LATENCY_MS" >/dev/null
done
run_psql -q -d $DB -v runs="$RUNS" -v latency="$LATENCY_MS" <<SQL
CREATE EXTENSION makini_fdw;
CREATE SERVER plant_a FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:$SIM_PORT');
CREATE SERVER plant_b FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:$SIM_PORT');
CREATE SERVER plant_c FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:$SIM_PORT');
CREATE SERVER slow FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:$SIM_PORT');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_a OPTIONS (token 'tok_plant_a');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_b OPTIONS (token 'tok_plant_b');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_c OPTIONS (token 'tok_plant_c');
CREATE USER MAPPING FOR CURRENT_USER SERVER slow OPTIONS (token 'tok_slow');
SELECT makini_create_union_views('plants', ARRAY['plant_a', 'plant_b', 'plant_c', 'slow']);
$TIME_MS_SQL
CREATE FUNCTION median_ms(q text, runs int) RETURNS numeric LANGUAGE sql AS \$\$
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY time_ms(q)) FROM generate_series(1, runs)
\$\$;
CREATE TEMP TABLE single AS
SELECT s AS server, median_ms(format('SELECT count(*), sum(total_gross_value) FROM plants_%s.purchase_orders', s), :runs) AS ms
FROM unnest(ARRAY['plant_a', 'plant_b', 'plant_c', 'slow']) s;
\echo
\echo '== many connections: one query over 4 servers, each request answered after' :latency 'ms'
SELECT server, ms AS "single server ms" FROM single ORDER BY 1;
SELECT (SELECT max(ms) FROM single) AS slowest_ms, (SELECT sum(ms) FROM single) AS sum_ms,
       median_ms('SELECT connection, count(*), sum(total_gross_value) FROM plants.purchase_orders GROUP BY 1', :runs) AS union_ms \gset
SET enable_async_append = off;
SELECT median_ms('SELECT connection, count(*), sum(total_gross_value) FROM plants.purchase_orders GROUP BY 1', :runs) AS sync_ms \gset
RESET enable_async_append;
SELECT :slowest_ms AS "slowest single ms", :sum_ms AS "sum of singles ms",
       :union_ms AS "union ms (async)", :sync_ms AS "union ms (async off)",
       round(:union_ms / :slowest_ms, 2) AS "ratio union/slowest (goal <= 1.3)";
SQL
for c in plant_a plant_b plant_c slow; do
	curl -s "http://127.0.0.1:$SIM_PORT/_sim/latency?conn=$c&ms=0" >/dev/null
done
curl -s "http://127.0.0.1:$SIM_PORT/_sim/latency?conn=slow&ms=200" >/dev/null
