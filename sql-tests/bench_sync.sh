#!/usr/bin/env bash
# makini_sync: times, as medians of RUNS runs, a first full sync against
# CREATE TABLE AS SELECT * of the same foreign table (goal: <= 1.3x), and an
# incremental sync after 1% of the orders changed (goals: requests <=
# ceil(changed / page_size) + 2, time <= 5% of the full sync), for
# purchase_orders and for purchase_order_lines, both as IMPORT FOREIGN
# SCHEMA makes them.  Changes are made through /_sim/mutate on the simulator's
# connection "bench" (started with --bench-orders).  Expects the cluster and
# the simulator of lib.sh to be running (bench.sh calls it last).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNS=${RUNS:-3}
PAGE_SIZE=500
DB=bench_sync
BASE=http://127.0.0.1:$SIM_PORT

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mark() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN { ok = (op == "<=") ? v <= g : v >= g; print ok ? "met" : "NOT met" }'; }
bsql() { run_psql -q -At -d $DB "$@"; }

as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB
bsql <<SQL
CREATE EXTENSION makini_fdw;
CREATE SERVER bench FOREIGN DATA WRAPPER makini_fdw OPTIONS (url '$BASE', page_size '$PAGE_SIZE');
CREATE USER MAPPING FOR CURRENT_USER SERVER bench OPTIONS (token 'tok_bench');
CREATE SCHEMA bench;
CREATE SCHEMA mirror;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders, purchase_order_lines) FROM SERVER bench INTO bench;
$TIME_MS_SQL
CREATE TABLE runs (tab text, mode text, ms numeric, fetched bigint, requests bigint);
SQL
# every 100th order changes (1%); this scan is the warm-up too
bsql -c "SELECT key FROM (SELECT key, row_number() OVER (ORDER BY key) AS n FROM bench.purchase_orders) o
         WHERE n % 100 = 0" >"$RUNDIR/sync_keys"
changed=$(wc -l <"$RUNDIR/sync_keys")

hour=0
for tab in purchase_orders purchase_order_lines; do
	for _ in $(seq "$RUNS"); do
		bsql -c "DROP TABLE IF EXISTS ctas" \
			-c "INSERT INTO runs (tab, mode, ms) SELECT '$tab', 'ctas', time_ms('CREATE TABLE ctas AS SELECT * FROM bench.$tab')"
		bsql -c "DROP TABLE IF EXISTS mirror.$tab" -c "DELETE FROM makini_sync_state" \
			-c "SET client_min_messages = warning" \
			-c "INSERT INTO runs (tab, mode, ms) SELECT '$tab', 'full', time_ms('SELECT makini_sync(''bench.$tab'', ''mirror.$tab'')')"
		# where a first copy's time goes: the same steps by hand (CREATE
		# TABLE AS, then the indexes makini_sync gives a target it creates)
		bsql -c "DROP TABLE IF EXISTS steps" \
			-c "INSERT INTO runs (tab, mode, ms) SELECT '$tab', 'copy', time_ms('CREATE TABLE steps AS SELECT * FROM bench.$tab')" \
			-c "INSERT INTO runs (tab, mode, ms) SELECT '$tab', 'pkey', time_ms('ALTER TABLE steps ADD PRIMARY KEY (key)')" \
			-c "INSERT INTO runs (tab, mode, ms) SELECT '$tab', 'parent_index', time_ms('CREATE INDEX ON steps (order_key)') WHERE '$tab' = 'purchase_order_lines'"
	done
	for _ in $(seq "$RUNS"); do
		hour=$((hour + 1))
		at=$(bsql -c "SELECT to_char(date_trunc('second', max(watermark)) + interval '$hour hours', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM makini_sync_state")
		while read -r key; do
			curl -sS "$BASE/_sim/mutate?conn=bench&op=update&key=$key&f.title=Changed+$hour&at=$at" >/dev/null
		done <"$RUNDIR/sync_keys"
		bsql <<SQL
SET client_min_messages = warning;
-- the scan an incremental call makes, alone (makini_fdw.sync_scan: see fdw/sync.c)
BEGIN;
SELECT set_config('makini_fdw.sync_scan', format('%s %s', 'bench.$tab'::regclass::oid,
  (SELECT (extract(epoch FROM watermark - interval '10 minutes') * 1000000)::bigint
     FROM makini_sync_state WHERE target = 'mirror.$tab'::regclass)), true) IS NULL;
INSERT INTO runs (tab, mode, ms) SELECT '$tab', 'scan', time_ms('SELECT count(*) FROM bench.$tab');
COMMIT;
CREATE TEMP TABLE r (fetched bigint, requests bigint);
SELECT time_ms('INSERT INTO r SELECT fetched, requests FROM makini_sync(''bench.$tab'', ''mirror.$tab'')') AS ms \gset
INSERT INTO runs SELECT '$tab', 'incremental', :ms, fetched, requests FROM r;
SQL
	done
done

echo
echo "== makini_sync: $changed of $(bsql -c "SELECT count(*) FROM mirror.purchase_orders") orders changed between incremental calls; page_size $PAGE_SIZE; medians of $RUNS runs"
for tab in purchase_orders purchase_order_lines; do
	ctas=$(bsql -c "SELECT ms FROM runs WHERE tab = '$tab' AND mode = 'ctas'" | median)
	full=$(bsql -c "SELECT ms FROM runs WHERE tab = '$tab' AND mode = 'full'" | median)
	inc=$(bsql -c "SELECT ms FROM runs WHERE tab = '$tab' AND mode = 'incremental'" | median)
	scan=$(bsql -c "SELECT ms FROM runs WHERE tab = '$tab' AND mode = 'scan'" | median)
	copy=$(bsql -c "SELECT ms FROM runs WHERE tab = '$tab' AND mode = 'copy'" | median)
	pkey=$(bsql -c "SELECT ms FROM runs WHERE tab = '$tab' AND mode = 'pkey'" | median)
	pidx=$(bsql -c "SELECT ms FROM runs WHERE tab = '$tab' AND mode = 'parent_index'")
	[ -z "$pidx" ] || pidx=$(echo "$pidx" | median)
	req=$(bsql -c "SELECT max(requests) FROM runs WHERE tab = '$tab' AND mode = 'incremental'")
	fetched=$(bsql -c "SELECT max(fetched) FROM runs WHERE tab = '$tab' AND mode = 'incremental'")
	limit=$(( (changed + PAGE_SIZE - 1) / PAGE_SIZE + 2 ))
	cat <<EOT
$tab: CREATE TABLE AS $ctas ms, full sync $full ms, incremental $inc ms ($fetched rows, $req requests)
  (the same steps by hand: CREATE TABLE AS $copy ms, then primary key $pkey ms${pidx:+, index on order_key $pidx ms})
  (the incremental call's scan alone, SELECT count(*) with its filter, updatedAt >= watermark - 10 min: $scan ms)
  full sync <= 1.3x CREATE TABLE AS ........ $(ratio "$full" "$ctas"): $(mark "$(ratio "$full" "$ctas")" 1.3 "<=")
  incremental requests <= $limit ............... $req: $(mark "$req" "$limit" "<=")
  incremental <= 5% of the full sync ....... $(ratio "$inc" "$full"): $(mark "$(ratio "$inc" "$full")" 0.05 "<=")
EOT
done
