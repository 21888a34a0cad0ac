--
-- multi: one query across many connections — union views, async scans,
-- skipping an unreachable connection, status of every server
--
SELECT sim('reset');
CREATE SERVER plant_c FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_c OPTIONS (token 'tok_plant_c');
CREATE SERVER plant_slow FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_slow OPTIONS (token 'tok_slow');
SELECT makini_create_union_views('plants', ARRAY['plant_a', 'plant_b', 'plant_c', 'plant_slow']);

-- ground truth of every connection, with its name
CREATE TABLE truth_all_po (connection name, LIKE truth_po);
CREATE TABLE truth_one_po (LIKE truth_po);
CREATE TABLE truth_all_lines (connection name, LIKE truth_lines);
CREATE TABLE truth_one_lines (LIKE truth_lines);
CREATE FUNCTION load_truth(conn text, srv name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE truth_one_po, truth_one_lines;
  PERFORM sim_load(conn, 'purchase_orders', 'truth_one_po');
  PERFORM sim_load(conn, 'purchase_order_lines', 'truth_one_lines');
  INSERT INTO truth_all_po SELECT srv, * FROM truth_one_po;
  INSERT INTO truth_all_lines SELECT srv, * FROM truth_one_lines;
END $$;
SELECT load_truth('plant_a', 'plant_a'), load_truth('plant_b', 'plant_b'),
       load_truth('plant_c', 'plant_c'), load_truth('slow', 'plant_slow');

-- the scans run asynchronously under the Append
EXPLAIN (COSTS OFF) SELECT connection, count(*) FROM plants.purchase_orders GROUP BY 1;

-- the union is exactly the union of every server's rows
SELECT rows_differ('plants.purchase_orders', 'truth_all_po') AS union_diff;
SELECT connection, count(*) = (SELECT count(*) FROM truth_all_po t WHERE t.connection = p.connection) AS count_ok
FROM plants.purchase_orders p GROUP BY 1 ORDER BY 1;
-- every server was asked once per page of 100
SELECT sim('reset');
SELECT count(*) > 0 FROM plants.purchase_orders;
SELECT r.conn, r.requests = ceil(t.n / 100.0) AS one_request_per_page
FROM (SELECT conn, count(*) AS requests FROM sim_requests() GROUP BY 1) r
JOIN (SELECT CASE connection WHEN 'plant_slow' THEN 'slow' ELSE connection::text END AS conn,
             count(*) AS n FROM truth_all_po GROUP BY 1) t USING (conn)
ORDER BY 1;

-- filters reach every server
SELECT sim('reset');
SELECT connection, count(*) > 0 AS some_rows FROM plants.purchase_orders
WHERE order_date >= '2026-06-01' GROUP BY 1 ORDER BY 1;
SELECT conn, bool_and(params ? 'filter[orderDate:gteq]') AS filtered FROM sim_requests()
GROUP BY 1 ORDER BY 1;
SELECT count(*) AS wrong FROM (
  (SELECT connection, key FROM plants.purchase_orders WHERE order_date >= '2026-06-01'
   EXCEPT ALL SELECT connection, key FROM truth_all_po WHERE order_date >= '2026-06-01')
  UNION ALL
  (SELECT connection, key FROM truth_all_po WHERE order_date >= '2026-06-01'
   EXCEPT ALL SELECT connection, key FROM plants.purchase_orders WHERE order_date >= '2026-06-01')) d;

-- line items across servers
SELECT rows_differ('plants.purchase_order_lines', 'truth_all_lines') AS lines_diff;

-- one server offline: by default the query fails naming it
CREATE SCHEMA plants_plant_offline;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders) FROM SERVER plant_offline INTO plants_plant_offline;
CREATE VIEW dashboard AS
  SELECT 'plant_a'::name AS connection, * FROM erp.purchase_orders
  UNION ALL SELECT 'plant_offline'::name, * FROM plants_plant_offline.purchase_orders;
\set VERBOSITY terse
SELECT connection, count(*) = (SELECT count(*) FROM truth_po) AS all_rows FROM dashboard GROUP BY 1 ORDER BY 1;
-- with on_unreachable 'skip' the others' rows come back, with a WARNING
ALTER SERVER plant_offline OPTIONS (ADD on_unreachable 'skip');
SELECT connection, count(*) = (SELECT count(*) FROM truth_po) AS all_rows FROM dashboard GROUP BY 1 ORDER BY 1;
-- a table can decide for itself
ALTER SERVER plant_offline OPTIONS (DROP on_unreachable);
ALTER FOREIGN TABLE plants_plant_offline.purchase_orders OPTIONS (ADD on_unreachable 'skip');
SELECT connection, count(*) = (SELECT count(*) FROM truth_po) AS all_rows FROM dashboard GROUP BY 1 ORDER BY 1;
-- also when the planner asks the API first (use_remote_estimate), and
-- whichever table of the server was used first: each keeps its own choice
ALTER SERVER plant_offline OPTIONS (ADD use_remote_estimate 'true');
CREATE FOREIGN TABLE plants_plant_offline.po_strict (key text)
  SERVER plant_offline OPTIONS (resource 'purchase-orders');
SELECT count(*) FROM plants_plant_offline.po_strict;
SELECT connection, count(*) = (SELECT count(*) FROM truth_po) AS all_rows FROM dashboard GROUP BY 1 ORDER BY 1;
ALTER SERVER plant_offline OPTIONS (SET use_remote_estimate 'true');
SELECT connection, count(*) = (SELECT count(*) FROM truth_po) AS all_rows FROM dashboard GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM plants_plant_offline.po_strict;
DROP FOREIGN TABLE plants_plant_offline.po_strict;
ALTER SERVER plant_offline OPTIONS (DROP use_remote_estimate);
\set VERBOSITY default

-- async_capable 'false' gives plain foreign scans
ALTER SERVER plant_c OPTIONS (ADD async_capable 'false');
EXPLAIN (COSTS OFF) SELECT count(*) FROM plants.purchase_orders;
ALTER SERVER plant_c OPTIONS (DROP async_capable);

-- a LIMIT over the union stops early and leaves no request behind
SELECT count(*) FROM (SELECT * FROM plants.purchase_orders LIMIT 5) s;
SELECT count(DISTINCT connection) AS connections FROM plants.vendors;

-- status of every server
SELECT server, reachable FROM makini_connection_status() ORDER BY server;

-- estimates: ANALYZE samples through the API; use_remote_estimate asks
-- meta.total.  Either way the planner's row counts for typical filters are
-- within 2x of the real counts.
CREATE FUNCTION estimate_ratio(q text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  plan json;
  actual numeric;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
  EXECUTE 'SELECT count(*) FROM (' || q || ') s' INTO actual;
  RETURN round((plan->0->'Plan'->>'Plan Rows')::numeric / greatest(actual, 1), 2);
END $$;
CREATE TEMP TABLE typical (q text);
INSERT INTO typical VALUES
  (format($q$SELECT * FROM %%s.purchase_orders WHERE vendor_key = %L$q$,
          (SELECT vendor_key FROM truth_po GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1))),
  ($q$SELECT * FROM %s.purchase_orders WHERE order_date >= '2026-01-01'$q$),
  ($q$SELECT * FROM %s.purchase_orders WHERE order_date >= '2025-01-01' AND order_date < '2025-07-01'$q$),
  (format($q$SELECT * FROM %%s.purchase_orders WHERE status_key = %L$q$,
          (SELECT status_key FROM truth_po GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1))),
  ($q$SELECT * FROM %s.purchase_orders$q$),
  ($q$SELECT * FROM %s.purchase_order_lines$q$),
  (format($q$SELECT * FROM %%s.purchase_order_lines WHERE vendor_key = %L$q$,
          (SELECT vendor_key FROM truth_lines WHERE vendor_key IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)));
-- after ANALYZE:
ANALYZE erp.purchase_orders, erp.purchase_order_lines;
SELECT regexp_replace(regexp_replace(q, '^SELECT \* FROM %s\.', ''), '''\d+''', '''...''') AS query,
       estimate_ratio(format(q, 'erp')) BETWEEN 0.5 AND 2 AS within_2x
FROM typical;
-- with use_remote_estimate on tables that were never analyzed
CREATE SCHEMA est;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders, purchase_order_lines)
  FROM SERVER plant_a INTO est;
ALTER FOREIGN TABLE est.purchase_orders OPTIONS (ADD use_remote_estimate 'true');
ALTER FOREIGN TABLE est.purchase_order_lines OPTIONS (ADD use_remote_estimate 'true');
SELECT regexp_replace(regexp_replace(q, '^SELECT \* FROM %s\.', ''), '''\d+''', '''...''') AS query,
       estimate_ratio(format(q, 'est')) BETWEEN 0.5 AND 2 AS within_2x
FROM typical
WHERE q NOT LIKE '%purchase_order_lines WHERE%';  -- not pushable: needs ANALYZE's statistics

-- an error after async scans were rescanned leaves no descriptor behind:
-- the LATERAL subquery rescans a union of two servers (async Append) for
-- every outer row, and row 5 fails; plant_b answers after 20 ms, so the
-- Append waits on the scans' descriptors (an epoll set and a timer each)
SELECT makini_create_union_views('pair', ARRAY['plant_a', 'plant_b']);
CREATE FUNCTION backend_wait_fds() RETURNS int LANGUAGE sql AS $$
  SELECT count(*)::int
  FROM pg_ls_dir('/proc/' || pg_backend_pid() || '/fd') fd,
       pg_read_file('/proc/' || pg_backend_pid() || '/fdinfo/' || fd, 0, 4096, true) info
  WHERE info ~ '(clockid|tfd):'   -- timerfds, and epoll sets holding one
$$;
CREATE FUNCTION failing_lateral() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM count(*) FROM generate_series(1, 10) g,
    LATERAL (SELECT * FROM pair.currencies c WHERE c.key <> g::text OFFSET 0) u
  WHERE 1 / (5 - g) >= 0;
EXCEPTION WHEN division_by_zero THEN
  NULL;
END $$;
SELECT sim('latency?conn=plant_b&ms=20');
EXPLAIN (COSTS OFF) SELECT count(*) FROM generate_series(1, 10) g,
  LATERAL (SELECT * FROM pair.currencies c WHERE c.key <> g::text OFFSET 0) u
WHERE 1 / (5 - g) >= 0;
SELECT failing_lateral();
CREATE TEMP TABLE fds_before AS SELECT backend_wait_fds() AS n;
SELECT failing_lateral() FROM generate_series(1, 10);
SELECT backend_wait_fds() - n AS descriptors_leaked FROM fds_before;
SELECT sim('reset');
