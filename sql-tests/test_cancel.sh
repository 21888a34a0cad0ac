#!/usr/bin/env bash
# Interrupts: how soon a query on a foreign table stops when it is cancelled
# (pg_cancel_backend, psql's Ctrl-C, statement_timeout) or its backend is
# terminated, while a reply stalls mid-body and while a retry waits out its
# backoff; and that connect_timeout holds against a host that never answers
# the handshake.  Two sessions: A runs the query, B interrupts it and
# measures.  After every cancel, A's session answers its next query.
#
# Prints "measured: ..." lines (the design goal is 100 ms); fails if an
# interrupted wait ran its course -- the simulator's log shows no request
# arriving before the 10 s stall or Retry-After would have ended (the
# session's next query, or B's probe after a terminate), on the simulator's
# own clock, relative to the interrupted request -- if a backend never goes
# idle, or if a session does not go on.  No wall-clock window: a loaded
# machine only makes the figures bigger.  Runs in its own database with its
# own fault rules on the simulator's connection plant_c (the request log is
# read with since=, the simulator is never reset: other tests may be using
# it).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e
DB=makini_cancel_test
SIM="http://127.0.0.1:$SIM_PORT/_sim"
TMP=$(mktemp -d)
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
psql_b() { $PGBIN/psql -X -q -A -t -d $DB "$@"; }
fault() { curl -s -S --max-time 10 "$SIM/fault?conn=plant_c&$1" >/dev/null; }
last_seq() { curl -s -S --max-time 10 "$SIM/requests" | tail -n +2 | cut -d, -f1 | sort -n | tail -1; }

# waits until the simulator has logged, after request seq $1, a request with
# fault $2 (the reply has started: stalled mid-body, or answered 503)
wait_logged() {
	local since=$1 what=$2
	for _ in $(seq 1 500); do
		curl -s -S --max-time 10 "$SIM/requests?since=${since:-0}" | grep ",$what\$" >/dev/null && return 0
		sleep 0.01
	done
	return 1
}

# after_fault SEQ0: in the simulator's log after request SEQ0, the last
# request a fault hit (stalled or answered 503) and the first request that
# arrived after it; prints how long after the faulted one it arrived (ms,
# the simulator's clock), or nothing if none did
after_fault() {
	curl -s -S --max-time 10 "$SIM/requests?since=${1:-0}" | $PYTHON -c '
import csv, sys
rows = [r for r in csv.DictReader(sys.stdin) if r["arrived_ms"]]
hit = [float(r["arrived_ms"]) for r in rows if r["fault"]]
if hit:
    later = [float(r["arrived_ms"]) - max(hit) for r in rows if float(r["arrived_ms"]) > max(hit)]
    if later:
        print("%.1f" % min(later))'
}

# check_prompt WHAT SEQ0: the interrupted wait did not run its course: a
# request arrived less than the 10 s of the stall or of Retry-After after
# the interrupted one (a retry cannot come sooner, a stalled reply had not
# ended)
check_prompt() {
	local what=$1 gap
	gap=$(after_fault "$2")
	echo "measured: $what: the next request arrived ${gap:-never} ms after the interrupted one"
	if [ -z "$gap" ] || awk -v g="$gap" 'BEGIN { exit !(g >= 10000) }'; then
		fail "$what: no request came before the 10 s wait would have ended (${gap:-none})"
	fi
}

# waits until the backend of application $1 is active, and with wait event
# $2 if given (Extension: our backoff wait); prints its pid
wait_active() {
	local app=$1 event=${2:-} pid
	for _ in $(seq 1 500); do
		pid=$(psql_b -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$app' AND state = 'active' AND ('$event' = '' OR wait_event = '$event')")
		[ -n "$pid" ] && { echo "$pid"; return 0; }
		sleep 0.01
	done
	return 1
}

cleanup_cancel() {
	as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB >/dev/null 2>&1
	[ -n "${LISTENER:-}" ] && kill "$LISTENER" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup_cancel EXIT

as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB >/dev/null 2>&1
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB || { echo "createdb failed"; exit 1; }
run_psql -q -d $DB <<SQL || { echo "setup failed"; exit 1; }
CREATE EXTENSION makini_fdw;
-- slow retries on purpose: a backoff of 10 s (Retry-After) is waited out
CREATE SERVER plant_c FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:$SIM_PORT', max_retries '3', max_retry_wait '60');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_c OPTIONS (token 'tok_plant_c');
CREATE FOREIGN TABLE po (key text, total_gross_value numeric)
  SERVER plant_c OPTIONS (resource 'purchase-orders');
-- a second server on the same connection: a UNION ALL of both is an async
-- Append, whose waits are the Append's, not ours
CREATE SERVER plant_c2 FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:$SIM_PORT', max_retries '3', max_retry_wait '60');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_c2 OPTIONS (token 'tok_plant_c');
CREATE FOREIGN TABLE po2 (key text, total_gross_value numeric)
  SERVER plant_c2 OPTIONS (resource 'purchase-orders');
-- B's stopwatch: sends the cancel or terminate, then polls until the
-- backend is no longer active (cancel) or gone (terminate)
CREATE FUNCTION interrupt_ms(p int, how text) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  IF how = 'cancel' THEN
    PERFORM pg_cancel_backend(p);
  ELSE
    PERFORM pg_terminate_backend(p);
  END IF;
  LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity
                          WHERE pid = p AND (how = 'terminate' OR state = 'active'));
    IF clock_timestamp() - t0 > interval '20 s' THEN
      RETURN -1;
    END IF;
    PERFORM pg_sleep(0.001);
  END LOOP;
  RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END \$\$;
-- B's watch for Ctrl-C: when the backend of application app is no longer
-- active, in milliseconds since the epoch
CREATE FUNCTION idle_at(app text) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity
                          WHERE application_name = app AND state = 'active');
    EXIT WHEN clock_timestamp() - t0 > interval '20 s';
    PERFORM pg_sleep(0.001);
  END LOOP;
  RETURN round(extract(epoch FROM clock_timestamp()) * 1000, 1);
END \$\$;
SQL
ORDERS=$(psql_b -c "SELECT count(*) FROM po")
[ "${ORDERS:-0}" -gt 0 ] || { echo "no orders read from plant_c"; exit 1; }
QUERY="SELECT count(*), sum(total_gross_value) FROM po"
ALIVE="SELECT 'alive', count(*) FROM po"

# starts session A (application $1) running the query, then its alive check
start_a() {
	PGAPPNAME=$1 $PGBIN/psql -X -A -t -d $DB -c "$QUERY" -c "$ALIVE" >"$TMP/$1.out" 2>&1 &
	A_PID=$!
}

# checks A's output: the error $2, then the session answered
check_a() {
	local app=$1 error=$2
	wait "$A_PID"
	grep -q "$error" "$TMP/$app.out" || fail "$app: expected \"$error\", got: $(cat "$TMP/$app.out")"
	grep -q "^alive|$ORDERS\$" "$TMP/$app.out" || fail "$app: the session did not answer after the interrupt: $(cat "$TMP/$app.out")"
}

# prints how long an interrupt took; fails only if it never acted (the
# backend still active after 20 s: interrupt_ms gives -1)
check_ms() {
	local what=$1 ms=$2
	echo "measured: $what: $ms ms"
	if [ -z "$ms" ] || awk -v ms="$ms" 'BEGIN { exit !(ms < 0) }'; then
		fail "$what: the backend never went idle (${ms:-?})"
	fi
}

# 1. pg_cancel_backend while the reply stalls mid-body
seq0=$(last_seq)
fault "kind=stall&delay_ms=10000"
start_a cancel_stall
wait_logged "$seq0" stall || fail "the stalled request never came"
pid=$(wait_active cancel_stall)
sleep 0.3
check_ms "pg_cancel_backend during a stalled response" "$(psql_b -c "SELECT interrupt_ms($pid, 'cancel')")"
check_a cancel_stall "canceling statement due to user request"
check_prompt "pg_cancel_backend during a stalled response" "$seq0"

# 1b. the same under an async Append: both scans' replies stall
seq0=$(last_seq)
fault "kind=stall&delay_ms=10000&count=2"
PGAPPNAME=cancel_async $PGBIN/psql -X -A -t -d $DB \
	-c "SELECT count(*) FROM (SELECT key FROM po UNION ALL SELECT key FROM po2) s" \
	-c "$ALIVE" >"$TMP/cancel_async.out" 2>&1 &
A_PID=$!
wait_logged "$seq0" stall || fail "cancel_async: the stalled request never came"
pid=$(wait_active cancel_async)
sleep 0.3
psql_b -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM (SELECT key FROM po UNION ALL SELECT key FROM po2) s" |
	grep -q "Async Foreign Scan" || fail "cancel_async: the plan has no async scans"
check_ms "pg_cancel_backend during stalled responses under an async Append" "$(psql_b -c "SELECT interrupt_ms($pid, 'cancel')")"
check_a cancel_async "canceling statement due to user request"
check_prompt "pg_cancel_backend under an async Append" "$seq0"

# 2. pg_cancel_backend during a backoff wait (503 with Retry-After: 10)
seq0=$(last_seq)
fault "kind=status&status=503&code=SYSTEM_UNAVAILABLE&retry_after=10"
start_a cancel_backoff
wait_logged "$seq0" status || fail "the 503 was never sent"
pid=$(wait_active cancel_backoff Extension) || fail "no backoff wait seen"
sleep 0.2
check_ms "pg_cancel_backend during a backoff wait" "$(psql_b -c "SELECT interrupt_ms($pid, 'cancel')")"
check_a cancel_backoff "canceling statement due to user request"
check_prompt "pg_cancel_backend during a backoff wait" "$seq0"

# 3. Ctrl-C: SIGINT to an interactive psql (on a pseudo-terminal made by
# script(1)), which sends a cancel request and stays connected; then the
# same session runs the alive check
for wait in stall backoff; do
	app=sigint_$wait
	seq0=$(last_seq)
	if [ $wait = stall ]; then
		fault "kind=stall&delay_ms=10000"
	else
		fault "kind=status&status=503&code=SYSTEM_UNAVAILABLE&retry_after=10"
	fi
	mkfifo "$TMP/$app.in"
	# "exec": script(1) runs the command through $SHELL -c, and dash (the
	# /bin/sh of Debian, used when SHELL is unset) stays as psql's parent
	PGAPPNAME=$app TERM=dumb script -qfec "exec $PGBIN/psql -X -A -t -P pager=off -d $DB -v tag=$app" /dev/null \
		<"$TMP/$app.in" >"$TMP/$app.out" 2>&1 &
	S_PID=$!
	exec 7>"$TMP/$app.in"
	echo "$QUERY;" >&7
	wait_logged "$seq0" "$([ $wait = stall ] && echo stall || echo status)" || fail "$app: the request never came"
	wait_active $app "$([ $wait = backoff ] && echo Extension)" >/dev/null || fail "$app: not active"
	sleep 0.2
	# psql itself, never a shell around it: its command line starts with psql
	psql_pid=$(pgrep -f -- "^$PGBIN/psql .*-v tag=$app\$")
	[ "$(echo "$psql_pid" | wc -w)" = 1 ] || fail "$app: psql's pid not found exactly once: '$psql_pid'"
	# B watches for the backend going idle, on the same clock as date(1)
	psql_b -c "SELECT idle_at('$app')" >"$TMP/$app.idle" 2>&1 &
	B_PID=$!
	sleep 0.2
	t0=$(now_ms)
	kill -INT "$psql_pid"
	wait "$B_PID"
	t1=$(cat "$TMP/$app.idle")
	check_ms "SIGINT to psql (Ctrl-C) during a $([ $wait = stall ] && echo 'stalled response' || echo 'backoff wait'), to the backend idle again" \
		"$(awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.1f", t1 - t0 }')"
	echo "$ALIVE;" >&7
	echo '\q' >&7
	exec 7>&-
	wait "$S_PID"
	tr -d '\r' <"$TMP/$app.out" >"$TMP/$app.txt"
	grep -q "canceling statement due to user request" "$TMP/$app.txt" ||
		fail "$app: expected a cancel, got: $(cat "$TMP/$app.txt")"
	grep -q "alive|$ORDERS\$" "$TMP/$app.txt" ||
		fail "$app: the session did not answer after Ctrl-C: $(cat "$TMP/$app.txt")"
	check_prompt "SIGINT to psql during a $wait" "$seq0"
done

# 4. statement_timeout in both waits: psql's \timing of the statement,
# less the 500 ms of the timeout
for wait in stall backoff; do
	seq0=$(last_seq)
	if [ $wait = stall ]; then
		fault "kind=stall&delay_ms=10000"
	else
		fault "kind=status&status=503&code=SYSTEM_UNAVAILABLE&retry_after=10"
	fi
	out=$(PGAPPNAME=timeout_$wait $PGBIN/psql -X -A -t -d $DB -c "SET statement_timeout = '500ms'" \
		-c '\timing on' -c "$QUERY" -c '\timing off' -c "RESET statement_timeout" -c "$ALIVE" 2>&1)
	echo "$out" | grep "canceling statement due to statement timeout" >/dev/null || fail "timeout_$wait: $out"
	ran=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | head -1)
	check_ms "statement_timeout 500 ms during a $([ $wait = stall ] && echo 'stalled response' || echo 'backoff wait'): error this long after the timeout" \
		"$(awk -v ran="${ran:-99999}" 'BEGIN { printf "%.1f", ran - 500 }')"
	echo "$out" | grep "^alive|$ORDERS\$" >/dev/null || fail "timeout_$wait: the session did not answer after the timeout: $out"
	check_prompt "statement_timeout during a $wait" "$seq0"
done

# 5. pg_terminate_backend during a backoff wait: the backend is gone promptly
seq0=$(last_seq)
fault "kind=status&status=503&code=SYSTEM_UNAVAILABLE&retry_after=10"
PGAPPNAME=terminate $PGBIN/psql -X -A -t -d $DB -c "$QUERY" >"$TMP/terminate.out" 2>&1 &
A_PID=$!
wait_logged "$seq0" status || fail "terminate: the 503 was never sent"
pid=$(wait_active terminate Extension) || fail "terminate: no backoff wait seen"
sleep 0.2
check_ms "pg_terminate_backend during a backoff wait (backend gone)" "$(psql_b -c "SELECT interrupt_ms($pid, 'terminate')")"
wait "$A_PID"
grep -q "terminating connection due to administrator command" "$TMP/terminate.out" ||
	fail "terminate: $(cat "$TMP/terminate.out")"
# B's probe: the retry must not come first
psql_b -c "$ALIVE" >/dev/null
check_prompt "pg_terminate_backend during a backoff wait" "$seq0"
# and during a stalled response
seq0=$(last_seq)
fault "kind=stall&delay_ms=10000"
PGAPPNAME=terminate2 $PGBIN/psql -X -A -t -d $DB -c "$QUERY" >"$TMP/terminate2.out" 2>&1 &
A_PID=$!
wait_logged "$seq0" stall || fail "terminate2: the stalled request never came"
pid=$(wait_active terminate2) || fail "terminate2: not active"
sleep 0.3
check_ms "pg_terminate_backend during a stalled response (backend gone)" "$(psql_b -c "SELECT interrupt_ms($pid, 'terminate')")"
wait "$A_PID"
psql_b -c "$ALIVE" >/dev/null
check_prompt "pg_terminate_backend during a stalled response" "$seq0"

# 6. connect_timeout: a listener whose accept queue is full drops the
# handshake, so connecting hangs until connect_timeout (1 s) ends it: 08001
$PYTHON - "$TMP/port" <<'PY' &
import socket, sys, time
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(0)
fill = []
for _ in range(3):                 # fill the accept queue (backlog 0 holds 1)
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(srv.getsockname())
    fill.append(c)
time.sleep(0.2)
open(sys.argv[1], "w").write(str(srv.getsockname()[1]))
time.sleep(60)
PY
LISTENER=$!
for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
port=$(cat "$TMP/port" 2>/dev/null)
out=$($PGBIN/psql -X -A -t -d $DB -v ON_ERROR_STOP=0 2>&1 <<SQL
CREATE SERVER blackhole FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:$port', connect_timeout '1', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER blackhole OPTIONS (token 'tok_plant_c');
CREATE FOREIGN TABLE bh (key text) SERVER blackhole OPTIONS (resource 'purchase-orders');
\set VERBOSITY verbose
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM bh;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000) AS connect_ms;
$ALIVE;
SQL
)
kill "$LISTENER" 2>/dev/null
LISTENER=
echo "$out" | grep "ERROR:  08001: Makini server \"blackhole\" is unreachable" >/dev/null ||
	fail "connect_timeout: expected 08001 unreachable, got: $out"
# the listener never answers and lives 60 s: only the timeout can end the
# attempt, and not before its second
echo "$out" | grep -iE "timed out|timeout was reached" >/dev/null ||
	fail "connect_timeout: the error is not a timeout: $out"
ms=$(echo "$out" | grep -E '^[0-9]+$' | tail -1)
echo "measured: connect_timeout 1 s against a host that never answers: error after ${ms:-?} ms"
if [ -z "$ms" ] || [ "$ms" -lt 1000 ]; then
	fail "connect_timeout: the error came after ${ms:-?} ms, before the timeout"
fi
echo "$out" | grep "^alive|$ORDERS\$" >/dev/null || fail "connect_timeout: the session did not answer afterwards"

# the postmaster survived all of it
[ "$(psql_b -c "SELECT 1")" = 1 ] || fail "the server stopped answering"

if [ $failures -gt 0 ]; then
	echo "result: test_cancel: $failures failure(s)"
	exit 1
fi
echo "result: test_cancel: every interrupted wait was cut short and every session went on"
