#!/usr/bin/env bash
# Shared steps of the harness: install what the machine lacks, build and
# install the extension, start a throwaway cluster (as an unprivileged user:
# PostgreSQL refuses to run as root) and the Makini API simulator, and stop
# both on exit.  Sourced by run-tests.sh, demo.sh and bench.sh.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=/usr/bin/python3
export PGPORT=${PGPORT:-54329}
export SIM_PORT=${SIM_PORT:-18765}
RUNDIR=${RUNDIR:-/tmp/makini_fdw_run}
PGDATA_DIR=$RUNDIR/data
export PGHOST=$RUNDIR/sock
export PGUSER=makini
PG_OS_USER=postgres

log() { printf '==> %s\n' "$*" >&2; }

# Runs a command as the unprivileged cluster owner (or as is, if we are not root).
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$PG_OS_USER" -- "$@"
	else
		"$@"
	fi
}

# Runs apt-get, once more after a pause if the first try fails (a network
# hiccup on the mirror).
apt_retry() {
	apt-get "$@" || { log "apt-get $1 failed; retrying once"; sleep 5; apt-get "$@"; }
}

# The PostgreSQL major version to build and test against: PG_MAJOR if set,
# else the one PG_CONFIG names, else the newest server installed here, else
# the one this Debian release offers (its "postgresql" package depends on it).
pick_pg_major() {
	local n
	if [ -n "${PG_MAJOR:-}" ]; then
		echo "$PG_MAJOR"; return
	fi
	if [ -n "${PG_CONFIG:-}" ]; then
		[ -x "$PG_CONFIG" ] || { log "PG_CONFIG=$PG_CONFIG is not an executable pg_config"; exit 1; }
		"$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/'; return
	fi
	n=$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sed -E 's|.*/postgresql/([0-9]+)/.*|\1|' | sort -n | tail -1)
	if [ -z "$n" ]; then
		if ! apt-cache show postgresql >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
			apt_retry update -q >/dev/null
		fi
		n=$(apt-cache depends postgresql 2>/dev/null | sed -nE 's/^ *Depends: postgresql-([0-9]+)$/\1/p' | head -1)
	fi
	[ -n "$n" ] || { log "no PostgreSQL found here or in apt; set PG_MAJOR or PG_CONFIG"; exit 1; }
	echo "$n"
}

GIVEN_PG_CONFIG=${PG_CONFIG:-}
PG_MAJOR=$(pick_pg_major)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
export PG_MAJOR PG_CONFIG

# Where psql, initdb and pg_ctl are (known once PostgreSQL is installed).
pg_bindir() {
	if [ -x "$PG_CONFIG" ]; then "$PG_CONFIG" --bindir; else echo "/usr/lib/postgresql/$PG_MAJOR/bin"; fi
}
PGBIN=$(pg_bindir)

# Installs the Debian packages the build, the cluster and the tests need.
install_deps() {
	local pkgs="libcurl4-openssl-dev libdeflate-dev gcc make curl ca-certificates openssl python3 sqlsmith"
	# Debian's PostgreSQL packages (pg_cron for test_sync.sh), unless PG_CONFIG
	# names an installation
	[ -x "$GIVEN_PG_CONFIG" ] || pkgs="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-$PG_MAJOR-cron $pkgs"
	local missing=""
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		if [ "$(id -u)" != 0 ]; then
			log "missing packages:$missing (run as root to install them)"; exit 1
		fi
		log "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt_retry update -q >/dev/null
		apt_retry install -y -q --no-install-recommends $missing >/dev/null
	fi
	PGBIN=$(pg_bindir)
}

# Builds and installs the extension into the PostgreSQL that PG_CONFIG names.
build_install() {
	log "building makini_fdw"
	make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" >/dev/null
	make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# A port nothing listens on: the proxy the postmaster's environment names.
DEAD_PROXY=http://127.0.0.1:9

# Starts a fresh cluster owned by the unprivileged user, on a private socket.
# Its servers may use the simulator's hosts (makini_fdw.allowed_hosts, a
# placeholder until the library loads).  The postmaster's environment names
# a dead proxy for every scheme: makini_fdw must ignore it, so every suite
# shows it does; the curl command the suites' helpers run is told to ignore
# it by a .curlrc in CURL_HOME.  PG_EXTRA_ENV adds VAR=value words.
start_cluster() {
	stop_cluster
	rm -rf "$PGDATA_DIR" "$PGHOST" "$RUNDIR/curlhome"
	mkdir -p "$PGHOST" "$RUNDIR/curlhome"
	echo 'noproxy = "*"' >"$RUNDIR/curlhome/.curlrc"
	chown "$PG_OS_USER" "$RUNDIR" "$PGHOST" 2>/dev/null || true
	log "starting a throwaway cluster in $PGDATA_DIR (port $PGPORT)"
	as_pg $PGBIN/initdb -D "$PGDATA_DIR" -U makini -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
	as_pg env http_proxy=$DEAD_PROXY https_proxy=$DEAD_PROXY HTTPS_PROXY=$DEAD_PROXY \
		all_proxy=$DEAD_PROXY ALL_PROXY=$DEAD_PROXY CURL_HOME="$RUNDIR/curlhome" ${PG_EXTRA_ENV:-} \
		$PGBIN/pg_ctl -D "$PGDATA_DIR" -l "$RUNDIR/postgres.log" -w -s \
		-o "-p $PGPORT -k $PGHOST -c listen_addresses='' -c log_min_messages=warning -c makini_fdw.allowed_hosts=127.0.0.1,localhost ${PG_EXTRA_OPTS:-}" start
}

# Stops the cluster if it runs.
stop_cluster() {
	if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
		as_pg $PGBIN/pg_ctl -D "$PGDATA_DIR" -m immediate -s stop || true
	fi
}

# Starts the simulator on 127.0.0.1:$SIM_PORT and waits until it answers.
start_simulator() {
	stop_simulator
	mkdir -p "$RUNDIR"
	log "starting the Makini API simulator on 127.0.0.1:$SIM_PORT $*"
	$PYTHON "$TOP/sql-tests/simulator.py" --port $SIM_PORT --pidfile "$RUNDIR/sim.pid" "$@" \
		>"$RUNDIR/simulator.log" 2>&1 &
	for _ in $(seq 1 600); do
		grep -q "simulator ready" "$RUNDIR/simulator.log" 2>/dev/null && return 0
		sleep 0.1
	done
	log "the simulator did not start:"; cat "$RUNDIR/simulator.log" >&2; exit 1
}

# Stops the simulator if it runs.
stop_simulator() {
	if [ -f "$RUNDIR/sim.pid" ]; then
		kill "$(cat "$RUNDIR/sim.pid")" 2>/dev/null || true
		rm -f "$RUNDIR/sim.pid"
	fi
}

# Stops everything this harness started.
cleanup() {
	stop_simulator
	stop_cluster
}

# psql against the throwaway cluster.
# SQL of time_ms(q): runs q once, its wall-clock milliseconds (the bench
# scripts define it in their databases)
TIME_MS_SQL='CREATE FUNCTION time_ms(q text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  EXECUTE q;
  RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END $$;'

run_psql() {
	$PGBIN/psql -X -v ON_ERROR_STOP=1 "$@"
}
