#!/usr/bin/env bash
# The test command: builds and installs makini_fdw, starts a throwaway
# cluster and the Makini API simulator, runs every suite (the simulator's
# self-test, the pg_regress suites, the shell tests) and ends with the line
# "N passed, N failed".  Exit status 0 only if nothing failed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_deps
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
make -C "$TOP" -s PG_CONFIG=$PG_CONFIG installcheck >"$RUNDIR/regress.log" 2>&1
set -e
grep -E '\.\.\. ' "$RUNDIR/regress.log" || cat "$RUNDIR/regress.log"
ok=$(grep -cE '\.\.\. ok' "$RUNDIR/regress.log" || true)
bad=$(grep -cE '\.\.\. (FAILED|failed)' "$RUNDIR/regress.log" || true)
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
