#!/usr/bin/env bash
# Transport security: https with certificates always verified, and proxies.
# Makes a throwaway CA and a certificate for "localhost" with openssl, runs
# a second simulator with TLS and a tiny proxy (proxy.py), and shows:
#   - an untrusted certificate and a host name mismatch are refused with
#     SQLSTATE 08001 and a hint saying which;
#   - the token is never sent on a refused handshake: the TLS simulator's
#     request log has only the failed handshakes, no request;
#   - with ca_file naming the CA, scans return exactly the ground truth;
#   - the proxy option is used (CONNECT for https, forwarded GETs for http,
#     one per request the simulator logged), while the proxy variables of the
#     postmaster's environment (a dead port, see lib.sh) are ignored.
# Prints "measured: ..." and "result: ..." lines; exits non-zero on failure.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e
DB=makini_tls_test
TLS_PORT=$((SIM_PORT + 1))
PROXY_PORT=$((SIM_PORT + 2))
D=$RUNDIR/tls
SIM="http://127.0.0.1:$SIM_PORT/_sim"
TLS_SIM="https://localhost:$TLS_PORT/_sim"
failures=0
pids=""

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
psql_b() { $PGBIN/psql -X -q -A -t -d $DB "$@"; }
tls_log() { curl -s -S --noproxy '*' --max-time 10 --cacert "$D/ca.pem" "$TLS_SIM/requests?since=${1:-0}"; }
last_seq() { curl -s -S --noproxy '*' --max-time 10 "$SIM/requests" | tail -n +2 | cut -d, -f1 | sort -n | tail -1; }

cleanup_tls() {
	as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB >/dev/null 2>&1
	for p in $pids; do kill "$p" 2>/dev/null; done
}
trap cleanup_tls EXIT

# waits until the file $1 has a line matching $2
wait_for_line() {
	for _ in $(seq 1 300); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# a CA and a certificate for "localhost" signed by it
rm -rf "$D"
mkdir -p "$D"
(
	cd "$D" || exit 1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
		-subj "/CN=makini_fdw test CA" &&
	openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
		-subj "/CN=localhost" &&
	printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >server.ext &&
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out server.pem -days 2 -extfile server.ext
) >"$D/openssl.log" 2>&1 || { cat "$D/openssl.log"; echo "openssl failed"; exit 1; }
chmod 755 "$D"
chmod 644 "$D/ca.pem"
chown -R "$PG_OS_USER" "$D" 2>/dev/null

$PYTHON "$TOP/sql-tests/simulator.py" --port $TLS_PORT --tls-cert "$D/server.pem" \
	--tls-key "$D/server.key" >"$D/tls_sim.log" 2>&1 &
pids="$pids $!"
$PYTHON "$TOP/sql-tests/proxy.py" --port $PROXY_PORT --log "$D/proxy.log" >"$D/proxy.out" 2>&1 &
pids="$pids $!"
wait_for_line "$D/tls_sim.log" "simulator ready" || { cat "$D/tls_sim.log"; echo "TLS simulator did not start"; exit 1; }
wait_for_line "$D/proxy.out" "proxy ready" || { cat "$D/proxy.out"; echo "proxy did not start"; exit 1; }

as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB >/dev/null 2>&1
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB || { echo "createdb failed"; exit 1; }
run_psql -q -d $DB <<SQL || { echo "setup failed"; exit 1; }
CREATE EXTENSION makini_fdw;
CREATE SERVER tls_untrusted FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'https://localhost:$TLS_PORT');
CREATE SERVER tls_mismatch FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'https://127.0.0.1:$TLS_PORT', ca_file '$D/ca.pem');
CREATE SERVER tls_ok FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'https://localhost:$TLS_PORT', ca_file '$D/ca.pem');
CREATE SERVER tls_proxied FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'https://localhost:$TLS_PORT', ca_file '$D/ca.pem',
           proxy 'http://127.0.0.1:$PROXY_PORT');
CREATE SERVER plain_proxied FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:$SIM_PORT', proxy 'http://127.0.0.1:$PROXY_PORT');
CREATE SERVER plain FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:$SIM_PORT');
DO \$\$
DECLARE
  s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['tls_untrusted', 'tls_mismatch', 'tls_ok', 'tls_proxied',
                           'plain_proxied', 'plain'] LOOP
    EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I OPTIONS (token %L)',
                   s, 'tok_plant_a');
    EXECUTE format('CREATE FOREIGN TABLE %I (key text, name text, code text) SERVER %I
                    OPTIONS (resource %L, page_size %L)', 'v_' || s, s, 'vendors', '10');
  END LOOP;
END \$\$;
-- ground truth, from the TLS simulator itself
CREATE TABLE truth (key text, name text, code text, company_key text, organization_key text,
  created_at timestamptz, updated_at timestamptz, deleted_at timestamptz);
COPY truth FROM PROGRAM 'curl -s -S --max-time 60 --cacert $D/ca.pem https://localhost:$TLS_PORT/_sim/data/plant_a/vendors.csv' WITH (FORMAT csv, HEADER);
CREATE FUNCTION exact(tab regclass) RETURNS boolean LANGUAGE plpgsql AS \$f\$
DECLARE
  diff bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((SELECT * FROM %s EXCEPT ALL SELECT key, name, code FROM truth)
                  UNION ALL (SELECT key, name, code FROM truth EXCEPT ALL SELECT * FROM %s)) d',
                 tab, tab) INTO diff;
  RETURN diff = 0 AND (SELECT count(*) FROM truth) > 0;
END \$f\$;
SQL

# 1. refused certificates: 08001, and a hint saying which check failed
check_refused() {
	local table=$1 want_hint=$2 what=$3 out
	out=$($PGBIN/psql -X -d $DB -v VERBOSITY=verbose -c "SELECT count(*) FROM $table" 2>&1)
	if ! grep -q "^ERROR:  08001:" <<<"$out"; then
		fail "$what: no 08001 error: $out"
	elif ! grep -q "^HINT: .*$want_hint" <<<"$out"; then
		fail "$what: the hint does not say \"$want_hint\": $out"
	else
		echo "measured: $what: $(grep -E '^(ERROR|HINT)' <<<"$out" | tr '\n' ' ')"
	fi
}
check_refused v_tls_untrusted "ca_file" "untrusted certificate"
check_refused v_tls_mismatch "host does not match the certificate" "host name mismatch (certificate for localhost, url https://127.0.0.1)"

# 2. the TLS simulator saw both connections and no request on either, so no
# token.  How the client breaks a refused connection off depends on the TLS
# library: inside the handshake (an alert: logged tls_handshake_failed) or
# right after it (tls_no_request); either counts, a request never does.
# (Wait until both are logged: the server side learns of the client's close
# asynchronously.)
for _ in $(seq 1 100); do
	[ "$(tls_log | grep -c ',tls_')" -ge 2 ] && break
	sleep 0.1
done
handshakes=$(tls_log | grep -c ',tls_handshake_failed')
closed=$(tls_log | grep -c ',tls_no_request$')
requests=$(tls_log | tail -n +2 | grep -vc ',tls_')
echo "measured: TLS simulator log after the refused scans: $handshakes failed handshakes, $closed connections closed without a request, $requests requests"
[ $((handshakes + closed)) -ge 2 ] || fail "the two refused connections are not both in the TLS simulator's log"
[ "$requests" = 0 ] || fail "a request reached the TLS simulator on a refused connection"
tls_seq=$(tls_log | tail -n +2 | cut -d, -f1 | sort -n | tail -1)

# 3. ca_file trusts the private CA: exact rows, every request authorized
[ "$(psql_b -c "SELECT exact('v_tls_ok')")" = t ] || fail "scan over https with ca_file does not return the ground truth"
ok_requests=$(tls_log "$tls_seq" | tail -n +2 | grep -c ',/api/erp/vendors,')
echo "measured: scan over https with ca_file: $ok_requests requests, rows equal the ground truth"
[ "$ok_requests" -ge 2 ] || fail "expected several pages over https, saw $ok_requests requests"

# 4. the proxy option: https is tunnelled (CONNECT), http forwarded (one GET
# per request the simulator saw); a server without it does not use it
: >"$D/proxy.log"
[ "$(psql_b -c "SELECT exact('v_tls_proxied')")" = t ] || fail "https scan through the proxy does not return the ground truth"
connects=$(grep -c "^CONNECT localhost:$TLS_PORT\$" "$D/proxy.log")
echo "measured: https scan through the proxy: $connects CONNECT tunnels, $(grep -vc '^CONNECT' "$D/proxy.log") other proxy requests"
[ "$connects" -ge 1 ] || fail "the https scan did not tunnel through the proxy"
[ "$(grep -vc '^CONNECT' "$D/proxy.log")" = 0 ] || fail "an https request crossed the proxy outside a tunnel"

: >"$D/proxy.log"
seq0=$(last_seq)
[ "$(psql_b -c "SELECT exact('v_plain_proxied')")" = t ] || fail "http scan through the proxy does not return the ground truth"
forwarded=$(grep -c "^GET http://127.0.0.1:$SIM_PORT/api/erp/vendors" "$D/proxy.log")
simulated=$(curl -s -S --noproxy '*' --max-time 10 "$SIM/requests?since=$seq0" | tail -n +2 | grep -c ',/api/erp/vendors,')
echo "measured: http scan through the proxy: $forwarded requests forwarded by the proxy, $simulated logged by the simulator"
[ "$forwarded" -ge 2 ] && [ "$forwarded" = "$simulated" ] || fail "the proxy forwarded $forwarded requests, the simulator saw $simulated"

: >"$D/proxy.log"
[ "$(psql_b -c "SELECT exact('v_plain')")" = t ] || fail "scan without proxy does not return the ground truth"
[ -s "$D/proxy.log" ] && fail "a server without the proxy option used the proxy"

# 5. the postmaster's environment names a dead proxy, and was ignored
pm=$(head -1 "$PGDATA_DIR/postmaster.pid")
envs=$(tr '\0' '\n' </proc/"$pm"/environ | grep -E '^(http_proxy|https_proxy|ALL_PROXY)=' | sort | tr '\n' ' ')
echo "measured: postmaster environment: $envs"
grep -q "http_proxy=$DEAD_PROXY" <<<"$envs" || fail "the postmaster's environment has no dead http_proxy: this test proves nothing"

if [ $failures = 0 ]; then
	echo "result: test_tls: untrusted and mismatched certificates refused (08001, hint says which) before any request; ca_file and the proxy option work; the environment's proxy is ignored"
	exit 0
fi
echo "result: test_tls: $failures failures"
exit 1
