#!/usr/bin/env bash
# makini_fdw's JSON reader (fdw/json.c, fdw/page.c) against PostgreSQL's own
# JSON parser, the oracle.
#
# diff_bodies.py writes DIFF_BODIES bodies (real pages and item replies of
# the simulator, and seeded mutations of them, valid and invalid JSON); the
# simulator serves them through /_sim/bodies, gzip-compressed (even bodies)
# or not (odd), to a server whose url selects the body.  PostgreSQL reads
# every body first (convert_from, ::json, json_each and
# json_array_elements): one that is not UTF-8, or that its parser rejects,
# must make every query fail with HV00M (the reply is not valid UTF-8 / not
# valid JSON, or -- found first -- of the wrong shape); one it accepts it
# writes again (diff_bodies.py --canonical stores it as body cN): names
# and values in the same order, duplicates kept, strings de-escaped and
# escaped again by to_json() (a string whose escapes PostgreSQL does not
# turn into text stays as sent), numbers and keywords as sent, no
# whitespace; objects and arrays that are the values of a record's fields
# as sent (the FDW shows their raw text: json columns, text columns,
# messages).  Every query must then give the same outcome on the body and
# on PostgreSQL's writing of it: a reader that de-escaped, skipped or
# tokenized anything differently from PostgreSQL's parser would show it.
# Bodies PostgreSQL's functions cannot read through (nesting deeper than
# its stack allows, a name with \u0000) are counted, not compared.
#
# Pages are read by every table (purchase orders, their lines, vendors,
# units, and two tables of unusual mappings: json columns, nested paths,
# parent. paths, "*") with every column set (all columns, a few, count(*)
# only, the "*" jsonb column); item replies by key lookups (item requests,
# as the request log shows) on orders, lines and vendors; every tenth body
# by all of these.  json columns are compared as jsonb (PostgreSQL's writing
# changes their whitespace).  An outcome is the rows (count and md5 of
# their text, in order), or the error (SQLSTATE, message and detail; the
# request id and byte offsets left out).
#
# Prints "measured: ..." and "result: ..." lines; fails on any difference,
# printing the body and both outcomes (the bodies showing one are kept in
# DIFF_KEEP, default $RUNDIR/diff_failures).  DIFF_BODIES (default 800),
# DIFF_SEED (default 20261205): a longer run is e.g. DIFF_BODIES=50000;
# another seed gives other mutations, the same seed the same bodies.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e
DB=makini_diff_test
BODIES=${DIFF_BODIES:-800}
SEED=${DIFF_SEED:-20261205}
BATCH=100
KEEP=${DIFF_KEEP:-$RUNDIR/diff_failures}
SIM="http://127.0.0.1:$SIM_PORT/_sim"
TMP=$(mktemp -d)

cleanup_diff() {
	curl -s -S --max-time 10 "$SIM/bodies?dir=" >/dev/null
	as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup_diff EXIT

echo "seed: $SEED, bodies: $BODIES (DIFF_SEED, DIFF_BODIES)"
t0=$(date +%s)
$PYTHON "$TOP/sql-tests/diff_bodies.py" --port "$SIM_PORT" --dir "$TMP/bodies" \
	--seed "$SEED" --count "$BODIES" || { echo "diff_bodies.py failed"; exit 1; }
curl -s -S --max-time 10 "$SIM/bodies?dir=$TMP/bodies" | grep '^ok$' >/dev/null ||
	{ echo "the simulator does not serve the bodies"; exit 1; }

as_pg $PGBIN/dropdb -h "$PGHOST" -p "$PGPORT" -U makini --if-exists $DB >/dev/null 2>&1
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini $DB || { echo "createdb failed"; exit 1; }
run_psql -q -d $DB <<'SQL' || { echo "setup failed"; exit 1; }
CREATE EXTENSION makini_fdw;
-- the url is set to the body's before each body
CREATE SERVER diff FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1/_bodies/none/gzip', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER diff OPTIONS (token 'tok_plant_a');
CREATE SCHEMA d;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders, purchase_order_lines, vendors, units_of_measure)
  FROM SERVER diff INTO d;
ALTER FOREIGN TABLE d.vendors ADD COLUMN custom_fields jsonb OPTIONS (field '*');
-- unusual mappings: json and jsonb of scalars and objects, nested paths
-- (also below a scalar), a field of several resources, booleans
CREATE FOREIGN TABLE d.odd (
  key json OPTIONS (field 'key'),
  order_no text,
  addr json OPTIONS (field 'shipmentAddress'),
  city text OPTIONS (field 'shipmentAddress.city'),
  street jsonb OPTIONS (field 'billingAddress.street'),
  below_scalar text OPTIONS (field 'orderNo.x'),
  lines jsonb OPTIONS (field 'lineItems'),
  total text OPTIONS (field 'totalGrossValue'),
  total_json json OPTIONS (field 'totalGrossValue'),
  name text,
  is_active boolean,
  rate text,
  everything_else json OPTIONS (field '*')
) SERVER diff OPTIONS (resource 'purchase-orders');
CREATE FOREIGN TABLE d.odd_lines (
  parent_key json OPTIONS (field 'parent.key'),
  parent_addr jsonb OPTIONS (field 'parent.shipmentAddress'),
  parent_city text OPTIONS (field 'parent.shipmentAddress.city'),
  key text,
  line_no text OPTIONS (field 'lineNo'),
  price json OPTIONS (field 'price'),
  rest jsonb OPTIONS (field '*')
) SERVER diff OPTIONS (resource 'purchase-orders', expand 'lineItems');

-- the queries: one text per outcome (row count and md5 of the rows' text);
-- those with a lookup ask for the key of the body's first record (an item
-- request where the API has one)
CREATE TABLE diff_query (n serial, tbl text, cols text, q text, lookup text);
INSERT INTO diff_query (tbl, cols, q, lookup)
SELECT tbl, cols || coalesce(' where ' || lookup, ''), CASE WHEN cols = 'count(*)'
    THEN format('SELECT count(*)::text FROM d.%I t', tbl)
    ELSE format($q$SELECT count(*) || ' ' || coalesce(md5(string_agg(coalesce(%s, 'NULL'), E'\n')), '-') FROM d.%I t$q$, expr, tbl)
  END, lookup
FROM (VALUES
  ('purchase_orders', 'all', 't::text', NULL),
  ('purchase_orders', 'few', 'row(t.key, t.total_gross_value, t.order_date, t.shipment_address->>''city'')::text', NULL),
  ('purchase_orders', 'count(*)', NULL, NULL),
  ('purchase_orders', 'custom_fields', 't.custom_fields::text', NULL),
  ('purchase_order_lines', 'all', 't::text', NULL),
  ('purchase_order_lines', 'few', 'row(t.order_key, t.key, t.line_no, t.price)::text', NULL),
  ('purchase_order_lines', 'count(*)', NULL, NULL),
  ('purchase_order_lines', 'custom_fields', 't.custom_fields::text', NULL),
  ('vendors', 'all', 't::text', NULL),
  ('vendors', 'few', 'row(t.key, t.name)::text', NULL),
  ('vendors', 'count(*)', NULL, NULL),
  ('vendors', 'custom_fields', 't.custom_fields::text', NULL),
  ('units_of_measure', 'all', 't::text', NULL),
  ('odd', 'all', 'row(t.key::jsonb, t.order_no, t.addr::jsonb, t.city, t.street, t.below_scalar, t.lines, t.total, t.total_json::jsonb, t.name, t.is_active, t.rate, t.everything_else::jsonb)::text', NULL),
  ('odd_lines', 'all', 'row(t.parent_key::jsonb, t.parent_addr, t.parent_city, t.key, t.line_no, t.price::jsonb, t.rest)::text', NULL),
  ('purchase_orders', 'all', 't::text', 't.key = %L'),
  ('purchase_order_lines', 'all', 't::text', 't.order_key = %L'),
  ('vendors', 'all', 't::text', 't.key = %L')
) AS v(tbl, cols, expr, lookup);
CREATE TABLE diff_key (body int PRIMARY KEY, key text, item boolean);

-- the oracle: PostgreSQL's reading of each body
CREATE TABLE diff_body (body int PRIMARY KEY, data bytea);
CREATE TABLE diff_oracle (body int PRIMARY KEY, verdict text, detail text, canon text);

-- a JSON value at depth (the body's top is 0) as PostgreSQL reads it,
-- written again: order and duplicates kept, strings de-escaped and escaped
-- again (one PostgreSQL does not turn into text stays as sent), numbers
-- and keywords as sent, no whitespace; objects and arrays from depth lim on
-- (the values of a record's fields) as sent, since the FDW keeps their raw
-- text (json columns, text columns, messages)
CREATE FUNCTION canon(j json, depth int, lim int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t text := json_typeof(j);
BEGIN
  IF t IN ('object', 'array') AND depth >= lim THEN
    RETURN j::text;
  ELSIF t = 'object' THEN
    RETURN '{' || coalesce((SELECT string_agg(to_json(e.k)::text || ':' || canon(e.v, depth + 1, lim), ',' ORDER BY e.n)
                            FROM json_each(j) WITH ORDINALITY e(k, v, n)), '') || '}';
  ELSIF t = 'array' THEN
    RETURN '[' || coalesce((SELECT string_agg(canon(e.v, depth + 1, lim), ',' ORDER BY e.n)
                            FROM json_array_elements(j) WITH ORDINALITY e(v, n)), '') || ']';
  ELSIF t = 'string' AND strpos(j::text, '\u') = 0 THEN
    RETURN to_json(j #>> '{}')::text;
  ELSIF t = 'string' THEN
    BEGIN
      RETURN to_json(j #>> '{}')::text;
    EXCEPTION WHEN OTHERS THEN
      RETURN j::text;
    END;
  END IF;
  RETURN j::text;
END $$;

-- PostgreSQL's verdict on a body: 'not UTF-8', 'not JSON' (and its
-- parser's detail), 'unread' (its functions cannot read it through) or
-- 'JSON' with the body written again
CREATE FUNCTION diff_read(b bytea, OUT verdict text, OUT detail text, OUT canon text)
LANGUAGE plpgsql AS $$
DECLARE
  t text;
  j json;
BEGIN
  BEGIN
    t := convert_from(b, 'UTF8');
  EXCEPTION WHEN OTHERS THEN
    verdict := 'not UTF-8';
    RETURN;
  END;
  BEGIN
    j := t::json;
    -- records are at depth 2 in a page, 1 in an item reply
    canon := canon(j, 0, CASE WHEN json_typeof(j -> 'data') = 'array' THEN 3 ELSE 2 END);
    verdict := 'JSON';
  EXCEPTION WHEN invalid_text_representation THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    verdict := CASE WHEN j IS NULL THEN 'not JSON' ELSE 'unread' END;
  WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = MESSAGE_TEXT;
    verdict := 'unread';
  END;
END $$;

-- one query's outcome: rows, or the error without request id and offsets
CREATE FUNCTION diff_outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text;
  s text;
  m text;
  d text;
BEGIN
  EXECUTE q INTO r;
  RETURN 'rows ' || r;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
  RETURN 'error ' || s || ' ' || m || ' | ' ||
    regexp_replace(regexp_replace(d, 'request id req_[0-9a-f]+', 'request id ?', 'g'),
                   'at byte [0-9]+', 'at byte ?', 'g');
END $$;

-- every query of body i (its url set to the body named name)
CREATE FUNCTION diff_outcomes(i int, name text, port int) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  q record;
  body_key text;
  item boolean;
  result text[] := '{}';
BEGIN
  EXECUTE format('ALTER SERVER diff OPTIONS (SET url %L)',
                 format('http://127.0.0.1:%s/_bodies/%s/%s', port, name,
                        CASE WHEN i % 2 = 0 THEN 'gzip' ELSE 'identity' END));
  SELECT k.key, k.item INTO body_key, item FROM diff_key k WHERE k.body = i;
  -- lookups on item replies, the others on pages; both on every tenth
  FOR q IN SELECT * FROM diff_query
           WHERE (lookup IS NOT NULL) = item OR i % 10 = 0 ORDER BY n LOOP
    result := result || diff_outcome(q.q || coalesce(' WHERE ' || format(q.lookup, body_key), ''));
  END LOOP;
  RETURN result;
END $$;

CREATE TABLE diff_tally (outcome text, n bigint);

-- bodies first .. last-1: the outcomes that differ from the oracle's, with
-- newlines and tabs escaped (expected: the outcome on PostgreSQL's writing
-- of the body, or the kind of error its verdict calls for)
CREATE FUNCTION diff_run(first int, last int, port int)
RETURNS TABLE (body int, tbl text, cols text, made text, expected text)
LANGUAGE plpgsql AS $$
DECLARE
  o record;
  a text[];
  b text[];
  q record;
  k int;
  ok boolean;
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS outcomes (outcome text);
  FOR i IN first .. last - 1 LOOP
    SELECT * INTO o FROM diff_oracle d WHERE d.body = i;
    a := diff_outcomes(i, i::text, port);
    IF o.verdict = 'JSON' THEN
      b := diff_outcomes(i, 'c' || i, port);
    END IF;
    k := 0;
    FOR q IN SELECT * FROM diff_query, diff_key dk
             WHERE dk.body = i AND ((lookup IS NOT NULL) = dk.item OR i % 10 = 0) ORDER BY n LOOP
      k := k + 1;
      INSERT INTO outcomes VALUES (o.verdict || ': ' || CASE WHEN a[k] LIKE 'rows%' THEN 'rows' ELSE left(a[k], 11) END ||
        CASE WHEN strpos(a[k], 'not valid JSON at byte ?: ' || o.detail) > 0 THEN ' in PostgreSQL''s words' ELSE '' END);
      ok := CASE o.verdict
        WHEN 'JSON' THEN a[k] IS NOT DISTINCT FROM b[k]
        WHEN 'not UTF-8' THEN a[k] LIKE 'error HV00M % | The reply is not valid UTF-8 at byte ?.%'
        WHEN 'not JSON' THEN a[k] LIKE 'error HV00M %'
        ELSE true END;
      IF NOT ok THEN
        body := i;
        tbl := q.tbl;
        cols := replace(q.cols, '%L', quote_literal(q.key));
        made := translate(a[k], E'\n\t', '  ');
        expected := translate(coalesce(b[k], o.verdict), E'\n\t', '  ');
        RETURN NEXT;
      END IF;
    END LOOP;
  END LOOP;
  INSERT INTO diff_tally SELECT outcome, count(*) FROM outcomes GROUP BY 1;
  TRUNCATE outcomes;
END $$;
SQL

run_psql -q -d $DB -c "\\copy diff_key FROM '$TMP/bodies/keys.tsv'" || { echo "keys not loaded"; exit 1; }
run_psql -q -d $DB -c "\\copy diff_body FROM '$TMP/bodies/bodies.tsv'" || { echo "bodies not loaded"; exit 1; }
# PostgreSQL reads every body; the ones it accepts, written again, are served as cN
run_psql -q -d $DB -c "SET max_stack_depth = '6MB'" -c "INSERT INTO diff_oracle
	SELECT b.body, r.* FROM diff_body b, diff_read(b.data) r" || { echo "the oracle failed"; exit 1; }
run_psql -q -d $DB -c "COPY (SELECT body, encode(convert_to(canon, 'UTF8'), 'hex')
	FROM diff_oracle WHERE verdict = 'JSON') TO STDOUT" |
	$PYTHON "$TOP/sql-tests/diff_bodies.py" --dir "$TMP/bodies" --canonical ||
	{ echo "the canonical bodies were not written"; exit 1; }

# one session per part of the run, one transaction per batch of bodies;
# the requests of the first batch are logged (to check the lookups), the
# others not (a long run makes millions)
run_bodies() {
	local from=$1 to=$2
	for ((first = from; first < to; first += BATCH)); do
		echo "SELECT * FROM diff_run($first, $((first + BATCH > to ? to : first + BATCH)), $SIM_PORT);"
	done >"$TMP/run.sql"
	$PGBIN/psql -X -q -A -t -F $'\t' -d $DB -v ON_ERROR_STOP=1 -f "$TMP/run.sql" \
		>>"$TMP/diffs.tsv" 2>>"$TMP/run.err"
}
seq0=$(curl -s -S --max-time 10 "$SIM/requests" | tail -n +2 | cut -d, -f1 | sort -n | tail -1)
first_batch=$((BATCH < BODIES ? BATCH : BODIES))
run_bodies 0 $first_batch
rc=$?
# the lookups were item requests
items=$(curl -s -S --max-time 60 "$SIM/requests?since=$seq0" | grep -cE '/_bodies/[0-9]+/[a-z]+/api/erp/(purchase-orders|vendors)/[0-9]+,')
curl -s -S --max-time 10 "$SIM/bodies?dir=$TMP/bodies&log=0" | grep '^ok$' >/dev/null || rc=1
[ $rc = 0 ] && { run_bodies $first_batch $BODIES; rc=$?; }
t1=$(date +%s)
if [ $rc != 0 ]; then
	echo "FAIL: the run stopped (psql exit $rc):"
	tail -20 "$TMP/run.err"
	exit 1
fi

queries=$(run_psql -A -t -d $DB -c "SELECT count(*) FROM diff_query")
comparisons=$(run_psql -A -t -d $DB -c "SELECT coalesce(sum(n), 0) FROM diff_tally")
tally=$(run_psql -A -t -d $DB -c "SELECT string_agg(outcome || ' ' || total, ', ' ORDER BY total DESC)
	FROM (SELECT outcome, sum(n) AS total FROM diff_tally GROUP BY 1) s")
verdicts=$(run_psql -A -t -d $DB -c "SELECT string_agg(verdict || ' ' || n, ', ' ORDER BY n DESC)
	FROM (SELECT verdict, count(*) AS n FROM diff_oracle GROUP BY 1) s")
differences=$(grep -c . "$TMP/diffs.tsv")
kinds=$(cut -f2 "$TMP/bodies/index.tsv" | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
echo "measured: $BODIES bodies ($kinds), $comparisons comparisons of $queries queries in $((t1 - t0)) s"
echo "measured: PostgreSQL's verdicts on the bodies: $verdicts"
echo "measured: outcomes by verdict: $tally"

echo "measured: item requests (key lookups) for the first $first_batch bodies: $items"
lookups=$(run_psql -A -t -d $DB -c "SELECT count(*) FROM diff_key k
	WHERE (k.item OR k.body % 10 = 0) AND k.body < $first_batch")
if [ "$items" != $((lookups * 3)) ]; then
	echo "FAIL: $items item requests for key lookups, $((lookups * 3)) expected"
	exit 1
fi
expected=$(run_psql -A -t -d $DB -c "SELECT count(*) FROM diff_key k, diff_query q
	WHERE (q.lookup IS NOT NULL) = k.item OR k.body % 10 = 0")
if [ "$comparisons" != "$expected" ]; then
	echo "FAIL: $comparisons comparisons made, $expected expected"
	exit 1
fi
if [ "$differences" -gt 0 ]; then
	mkdir -p "$KEEP"
	echo "FAIL: $differences difference(s); the first 20:"
	head -20 "$TMP/diffs.tsv" | while IFS=$'\t' read -r body tbl cols made expected; do
		cp "$TMP/bodies/$body.json" "$KEEP/$SEED-$body.json"
		echo "--- body $body (seed $SEED, kept as $KEEP/$SEED-$body.json), table $tbl, columns $cols"
		awk -F'\t' -v b="$body" '$1 == b { print "    made: " $2 " of " $4 ": " $5 }' "$TMP/bodies/index.tsv"
		echo "    the body:        $made"
		echo "    expected:        $expected"
		$PYTHON -c 'import sys; d = open(sys.argv[1], "rb").read(); print("    body (%d bytes): %r" % (len(d), d[:1500]))' \
			"$TMP/bodies/$body.json"
	done
	echo "result: test_differential: $differences difference(s) in $comparisons comparisons (seed $SEED)"
	exit 1
fi
echo "result: test_differential: no difference in $comparisons comparisons of $BODIES bodies (seed $SEED)"
