#!/usr/bin/env bash
# The test command: builds and installs makini_fdw, starts a throwaway
# cluster and the Makini API simulator, runs every suite (the simulator's
# self-test, the pg_regress suites, the shell tests) and ends with the line
# "N passed, N failed".  Exit status 0 only if nothing failed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The pg_regress suites name the simulator http://127.0.0.1:18765 (their
# expected output shows it), so the test command always runs it there; to
# keep that port apart from anything else, run the command in its own network
# namespace (sql-tests/matrix.sh does: unshare -n).
if [ "$SIM_PORT" != 18765 ]; then
	log "run-tests.sh runs the simulator on port 18765 (the pg_regress suites name it), not SIM_PORT=$SIM_PORT;"
	log "run it in its own network namespace instead, e.g.: unshare -n sh -c 'ip link set lo up; exec bash sql-tests/run-tests.sh'"
	exit 2
fi

install_deps
log "$("$PG_CONFIG" --version), $PG_CONFIG"
build_install
trap cleanup EXIT
start_simulator
start_cluster

passed=0
failed=0
count() { if [ "$1" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }

log "simulator self-test"
set +e
$PYTHON "$TOP/sql-tests/test_simulator.py" >"$RUNDIR/test_simulator.log" 2>&1
rc=$?
set -e
if [ $rc = 0 ]; then echo "test simulator-selftest ... ok"; else echo "test simulator-selftest ... FAILED"; tail -30 "$RUNDIR/test_simulator.log"; fi
count $rc

log "pg_regress suites"
rm -rf "$TOP/results" "$TOP/regression.diffs" "$TOP/regression.out"
set +e
make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" installcheck >"$RUNDIR/regress.log" 2>&1
set -e
# one line a suite: "test NAME ... ok" (15) or "ok N - NAME" / "not ok N - NAME" (16+)
grep -E '\.\.\. |^(not )?ok [0-9]+ ' "$RUNDIR/regress.log" || cat "$RUNDIR/regress.log"
ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ ' "$RUNDIR/regress.log" || true)
bad=$(grep -cE '\.\.\. (FAILED|failed)|^not ok [0-9]+ ' "$RUNDIR/regress.log" || true)
passed=$((passed + ok))
failed=$((failed + bad))
if [ "$ok" = 0 ] && [ "$bad" = 0 ]; then
	failed=$((failed + 1))	# pg_regress did not run at all
	cat "$RUNDIR/regress.log"
fi
if [ -f "$TOP/regression.diffs" ]; then
	log "differences (first 200 lines of regression.diffs):"
	head -200 "$TOP/regression.diffs"
fi

for t in "$TOP"/sql-tests/test_*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	log "$name"
	set +e
	bash "$t" >"$RUNDIR/$name.log" 2>&1
	rc=$?
	set -e
	if [ $rc = 0 ]; then echo "test $name ... ok"; else echo "test $name ... FAILED"; tail -40 "$RUNDIR/$name.log"; fi
	grep -E '^(measured|result):' "$RUNDIR/$name.log" || true
	count $rc
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
