--
-- sorting: ORDER BY ... LIMIT pushed as sort[F] stays exact wherever the API
-- puts the records without a value for F (missing, null or ""): first or
-- last, per connection and direction (fdw/API.md §3).  The simulator's
-- knobs nulls_asc / nulls_desc set the placement; every query is compared
-- with the same query on the local copy of the ground truth (truth_po).
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SELECT sim('reset');

-- the sorted fields have records without a value, "" among them (a text
-- column of the field reads "" as such), and with a value
CREATE FOREIGN TABLE so_raw (key text,
  approved_raw text OPTIONS (field 'approvedAt'),
  order_raw text OPTIONS (field 'orderDate'),
  completed_raw text OPTIONS (field 'completedAt'))
  SERVER plant_a OPTIONS (resource 'purchase-orders');
SELECT f, count(*) FILTER (WHERE v IS NULL) > 0 AS has_null,
       count(*) FILTER (WHERE v = '') > 0 AS has_empty,
       count(*) FILTER (WHERE v <> '') > 0 AS has_value
FROM so_raw, LATERAL (VALUES ('approvedAt', approved_raw), ('orderDate', order_raw),
                             ('completedAt', completed_raw)) x(f, v)
GROUP BY f ORDER BY f;

-- so_check(q): q (columns: the sort key, then key) on the foreign table and
-- on truth_po; differences = 1 if the sort keys in order differ, plus the
-- rows returned that the truth does not have (among equal keys the rows
-- may legitimately differ)
CREATE FUNCTION so_check(q text, OUT rows bigint, OUT differences bigint)
LANGUAGE plpgsql AS $$
DECLARE
  got timestamptz[];
  got_keys text[];
  want timestamptz[];
  strays bigint;
BEGIN
  EXECUTE format('SELECT array_agg(v), array_agg(k) FROM (%s) s(v, k)',
                 replace(q, '{po}', 'erp.purchase_orders')) INTO got, got_keys;
  EXECUTE format('SELECT array_agg(v) FROM (%s) s(v, k)', replace(q, '{po}', 'truth_po')) INTO want;
  EXECUTE format('SELECT count(*) FROM unnest($1, $2) s(v, k) WHERE NOT EXISTS (SELECT FROM truth_po t WHERE t.key = s.k AND t.%I IS NOT DISTINCT FROM s.v)',
                 substring(q FROM '^SELECT (\w+)')) INTO strays USING got, got_keys;
  rows := coalesce(cardinality(want), 0);
  differences := (got IS DISTINCT FROM want)::int + strays;
END $$;

-- the queries: three fields, both directions, both NULL placements, LIMIT 1,
-- 5 and more than the records with a value (the rows without one are
-- needed), with no WHERE, a condition on another field (LIKE: inexact,
-- rechecked locally) and a pushed date-time condition
CREATE TABLE so_queries AS
SELECT format('SELECT %s, key FROM {po}%s ORDER BY %s %s LIMIT %s', col, w, col, o, l) AS q
FROM unnest(ARRAY['approved_at', 'order_date', 'completed_at']) col,
     unnest(ARRAY['', ' DESC', ' NULLS FIRST', ' DESC NULLS LAST']) o,
     unnest(ARRAY['', $$ WHERE order_no LIKE 'PO-2025%'$$, $$ WHERE order_date >= '2025-06-01'$$]) w,
     LATERAL (SELECT unnest(ARRAY[1, 5, count(*) FILTER (WHERE CASE col
                WHEN 'approved_at' THEN approved_at WHEN 'order_date' THEN order_date
                ELSE completed_at END IS NOT NULL)::int + 5]) FROM truth_po) lim(l);
SELECT count(*) AS queries FROM so_queries;

-- so_pushed(q): does q's plan leave the sort to the API (no Sort node)?
CREATE FUNCTION so_pushed(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || replace(q, '{po}', 'erp.purchase_orders') LOOP
    IF line ~ 'Sort' THEN
      RETURN false;
    END IF;
  END LOOP;
  RETURN true;
END $$;

-- the four placements: every query exact under each.  A few rows are
-- cheaper sorted here (one request) than by the API: enable_sort = off
-- makes the planner leave every sort it can to the API (and jit = off: the
-- penalty of a Sort it cannot avoid would make every plan worth compiling).
CREATE FUNCTION so_run(placement text, OUT queries bigint, OUT pushed bigint,
                       OUT rows bigint, OUT differing bigint)
LANGUAGE plpgsql SET enable_sort = off SET jit = off AS $$
BEGIN
  PERFORM sim('behave?' || placement);
  SELECT count(*), count(*) FILTER (WHERE so_pushed(q)), sum(c.rows),
         count(*) FILTER (WHERE c.differences <> 0)
  INTO queries, pushed, rows, differing
  FROM so_queries, LATERAL so_check(q) c;
  PERFORM sim('reset');
END $$;
SELECT p AS placement, r.queries, r.pushed, r.rows > 0 AS has_rows, r.differing
FROM unnest(ARRAY['nulls_asc=last&nulls_desc=last', 'nulls_asc=first&nulls_desc=first',
                  'nulls_asc=first&nulls_desc=last', 'nulls_asc=last&nulls_desc=first']) p,
     LATERAL so_run(p) r;
-- and with a reply that has no meta.total (the scan cannot count)
SELECT r.queries, r.pushed, r.differing
FROM so_run('meta=absent&nulls_asc=first&nulls_desc=first') r;

-- the queries of the bug report, and the rows PostgreSQL's sort gives
SELECT sim('behave?nulls_asc=first&conn=plant_a');
SELECT order_no, approved_at FROM erp.purchase_orders ORDER BY approved_at LIMIT 5;
SELECT order_no, approved_at FROM truth_po ORDER BY approved_at LIMIT 5;

--
-- EXPLAIN VERBOSE shows both requests: the sorted one, which a filter keeps
-- to the records with a value, and the one for the records without
--
SELECT sim('reset');
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM erp.purchase_orders ORDER BY approved_at LIMIT 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM erp.purchase_orders ORDER BY order_date DESC LIMIT 5;
-- a pushed condition on the field: every record has a value, one request
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM erp.purchase_orders
WHERE order_date >= '2026-01-01' ORDER BY order_date DESC LIMIT 5;
-- no LIMIT: the pass for records without a value would read them all
-- again, a local sort is cheaper; unless a condition on the field keeps
-- them out
EXPLAIN (COSTS OFF) SELECT key FROM erp.purchase_orders ORDER BY approved_at;
EXPLAIN (COSTS OFF) SELECT key FROM erp.purchase_orders
WHERE approved_at >= '2025-01-01' ORDER BY approved_at;
-- a second sort key: the first is pushed, an incremental sort does the rest
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM erp.purchase_orders ORDER BY approved_at, key LIMIT 5;
SELECT (SELECT array_agg(key) FROM (SELECT key FROM erp.purchase_orders ORDER BY approved_at DESC, key LIMIT 100) s) =
       (SELECT array_agg(key) FROM (SELECT key FROM truth_po ORDER BY approved_at DESC, key LIMIT 100) s) AS two_keys_exact;

--
-- what a sorted LIMIT costs, from the request log: kind of request (sorted =
-- sort[F] and the filter for a value, nulls = the one without; per_page=1:
-- the count probe), records served
--
CREATE VIEW so_log AS
  SELECT CASE WHEN params::text ~ '"sort\[' THEN 'sorted' ELSE 'nulls' END AS kind,
         (params->>'per_page')::int AS per_page, coalesce(params->>'page', '1') AS page,
         records
  FROM sim_requests();
-- a vendor whose orders all have an order date, five at least
SELECT vendor_key AS full_vendor FROM truth_po GROUP BY 1
HAVING count(*) >= 5 AND count(order_date) = count(*) ORDER BY count(*) DESC, 1 LIMIT 1 \gset
-- NULLS FIRST without records lacking a value: the first sorted page and the
-- probe, both sent at once (in either order: listed by kind), nothing more.
-- (The planner would sort so few rows here: enable_sort = off.)
SET enable_sort = off;
SET jit = off;
SELECT sim('reset');
SELECT count(*) FROM (SELECT key FROM erp.purchase_orders WHERE vendor_key = :'full_vendor'
                      ORDER BY order_date DESC LIMIT 5) s;
SELECT kind, per_page, page, records FROM so_log ORDER BY 1, 2, 3;
-- with records lacking a value: the probe counts more; those records come
-- first, from the request without the filter
SELECT sim('reset');
SELECT count(*) FROM (SELECT key FROM erp.purchase_orders ORDER BY order_date DESC LIMIT 5) s;
SELECT kind, per_page, page, records FROM so_log ORDER BY 1, 2, 3;
-- NULLS LAST: the sorted request alone when the LIMIT is reached
SELECT sim('reset');
SELECT count(*) FROM (SELECT key FROM erp.purchase_orders ORDER BY approved_at LIMIT 5) s;
SELECT kind, per_page, page, records FROM so_log ORDER BY 1, 2, 3;
-- ... and the request for the records without a value only when rows are
-- still wanted after the sorted ones
SELECT count(completed_at) + 5 AS past_values FROM truth_po \gset
SELECT sim('reset');
SELECT count(*) = :past_values AS all_rows
FROM (SELECT key FROM erp.purchase_orders ORDER BY completed_at LIMIT :past_values) s;
SELECT kind, count(*) AS requests, sum(records) AS records FROM so_log GROUP BY 1 ORDER BY 1;
-- no meta.total: the probe cannot prove anything, the records without a
-- value are read first (until the LIMIT is reached), then the sorted ones
SELECT sim('reset');
SELECT sim('behave?meta=absent');
SELECT count(*) FROM (SELECT key FROM erp.purchase_orders WHERE vendor_key = :'full_vendor'
                      ORDER BY order_date DESC LIMIT 5) s;
SELECT kind, per_page, page, records FROM so_log ORDER BY 1, 2, 3;
SELECT sim('reset');
RESET enable_sort;
RESET jit;

-- EXPLAIN ANALYZE counts every request, the probe included
CREATE FUNCTION so_analyze(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
    IF line ~ 'Makini (HTTP requests|pages)' THEN
      RETURN NEXT line;
    END IF;
  END LOOP;
END $$;
SELECT sim('reset');
SELECT * FROM so_analyze($$SELECT key FROM erp.purchase_orders ORDER BY order_date DESC LIMIT 5$$);
SELECT count(*) AS requests_logged FROM so_log;

-- an expand table sorted by a parent date-time: the phases work on records,
-- the NULL test on the rows' parent column
CREATE FOREIGN TABLE so_lines (order_no text OPTIONS (field 'parent.orderNo'),
  approved timestamptz OPTIONS (field 'parent.approvedAt'), line_no integer)
  SERVER plant_a OPTIONS (resource 'purchase-orders', expand 'lineItems');
CREATE TABLE so_lines_truth AS
  SELECT po.approved_at AS approved, l.order_no, l.line_no
  FROM truth_lines l JOIN truth_po po ON po.key = l.order_key;
SELECT count(approved) + 10 AS valued_lines FROM so_lines_truth \gset
CREATE FUNCTION so_lines_check(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  got timestamptz[];
  got_rows text[];
  want timestamptz[];
BEGIN
  EXECUTE format('SELECT array_agg(approved), array_agg(row(approved, order_no, line_no)::text) FROM (%s) s',
                 replace(q, '{t}', 'so_lines')) INTO got, got_rows;
  EXECUTE format('SELECT array_agg(approved) FROM (%s) s', replace(q, '{t}', 'so_lines_truth')) INTO want;
  RETURN got IS NOT DISTINCT FROM want AND NOT EXISTS (
    SELECT FROM unnest(got_rows) g(r)
    WHERE r NOT IN (SELECT row(approved, order_no, line_no)::text FROM so_lines_truth));
END $$;
SET enable_sort = off;
SET jit = off;
SELECT sim('behave?nulls_asc=first&nulls_desc=first');
SELECT o AS direction, l = 7 AS limit_7, so_pushed(replace(format('SELECT approved, order_no, line_no FROM {t} ORDER BY approved%s LIMIT %s', o, l), '{t}', 'so_lines')) AS pushed,
       so_lines_check(format('SELECT approved, order_no, line_no FROM {t} ORDER BY approved%s LIMIT %s', o, l)) AS exact
FROM unnest(ARRAY['', ' DESC']) o, unnest(ARRAY[7, :valued_lines]) l ORDER BY 1, 2 DESC;
SELECT sim('reset');
RESET enable_sort;
RESET jit;

-- rescans (a LATERAL join: one sorted scan per outer row) restart the phases
SET enable_sort = off;
SET jit = off;
SELECT sim('behave?nulls_asc=first&nulls_desc=first');
CREATE TABLE so_outer AS SELECT * FROM (VALUES ('PO-2024%'), ('PO-2025%'), ('PO-2026%')) v(p);
EXPLAIN (COSTS OFF) SELECT x FROM so_outer, LATERAL (SELECT approved_at FROM erp.purchase_orders po
  WHERE po.order_no LIKE so_outer.p ORDER BY approved_at DESC LIMIT 30) s(x);
SELECT (SELECT array_agg(x ORDER BY p, n) FROM so_outer, LATERAL (
          SELECT approved_at, row_number() OVER () FROM (SELECT approved_at FROM erp.purchase_orders po
          WHERE po.order_no LIKE so_outer.p ORDER BY approved_at DESC LIMIT 30) s) f(x, n)) =
       (SELECT array_agg(x ORDER BY p, n) FROM so_outer, LATERAL (
          SELECT approved_at, row_number() OVER () FROM (SELECT approved_at FROM truth_po po
          WHERE po.order_no LIKE so_outer.p ORDER BY approved_at DESC LIMIT 30) s) f(x, n)) AS lateral_exact;
SELECT sim('reset');
RESET enable_sort;
RESET jit;

DROP TABLE so_queries, so_outer, so_lines_truth;
DROP FOREIGN TABLE so_lines;
DROP VIEW so_log;
DROP FOREIGN TABLE so_raw;
RESET TimeZone;
RESET DateStyle;
