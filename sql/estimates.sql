--
-- estimates: without ANALYZE, the planner sizes a foreign table from what
-- the API said in this session (meta.total of the pages it served), and
-- when nothing is known and the table is joined, asks once (per_page=1).
-- A join of a few local rows then sends one small request per row
-- (parameterized path) instead of reading every page, and a join of many
-- rows reads every page once.  Request counts come from the simulator's
-- log; rows are compared with the ground truth (truth_po, from scan.sql).
-- Nothing here is analyzed: the local tables get their size from the
-- primary key built after their rows.
--
SELECT sim('reset');
-- est_server(name): a server of plant_a with pages of 20 (600 orders: 30
-- pages) and its purchase_orders as <name>.purchase_orders; each new server
-- is a table the backend knows nothing about yet
CREATE FUNCTION est_server(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER makini_fdw OPTIONS (url %L, page_size %L, max_retry_wait %L)',
                 name, 'http://127.0.0.1:18765', '20', '30');
  EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I OPTIONS (token %L)', name, 'tok_plant_a');
  EXECUTE format('CREATE SCHEMA %I', name);
  EXECUTE format('IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders) FROM SERVER %I INTO %I', name, name);
END $$;
-- est_plan(q): the plan of q without costs, one line a node
CREATE FUNCTION est_plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    RETURN NEXT line;
  END LOOP;
END $$;
-- est_join(side, srv): the join of local table side with srv's purchase_orders
CREATE FUNCTION est_join(side text, srv text) RETURNS text LANGUAGE sql AS $$
  SELECT format('SELECT p.* FROM %I w JOIN %I.purchase_orders p USING (order_no)', side, srv)
$$;
-- est_differ(side, srv): the rows that join and the same join with the
-- ground truth differ by
CREATE FUNCTION est_differ(side text, srv text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE 'CREATE TEMP TABLE est_got AS ' || est_join(side, srv);
  EXECUTE format('CREATE TEMP TABLE est_want AS SELECT t.* FROM %I w JOIN truth_po t USING (order_no)', side);
  n := rows_differ('est_got', 'est_want');
  DROP TABLE est_got, est_want;
  RETURN n;
END $$;
-- est_log(): the requests since the last sim('reset'): all, the size
-- probes among them (per_page=1, no filter), and list pages of the full
-- table (no filter)
CREATE FUNCTION est_log(OUT requests bigint, OUT probes bigint, OUT full_pages bigint)
LANGUAGE sql AS $$
  SELECT count(*),
         count(*) FILTER (WHERE params->>'per_page' = '1' AND query !~ 'filter'),
         count(*) FILTER (WHERE params->>'per_page' = '20' AND query !~ 'filter')
  FROM sim_requests()
$$;
-- the pages of the whole table, and local tables of order numbers: 25, and
-- more than the table has pages
CREATE TABLE est_pages AS SELECT ceil(count(*) / 20.0)::int AS pages FROM truth_po;
CREATE TABLE est_few AS SELECT order_no FROM truth_po ORDER BY key LIMIT 25;
ALTER TABLE est_few ADD PRIMARY KEY (order_no);
CREATE TABLE est_many AS
  SELECT order_no FROM truth_po ORDER BY key LIMIT (SELECT pages + 15 FROM est_pages);
ALTER TABLE est_many ADD PRIMARY KEY (order_no);
SELECT (SELECT count(*) FROM est_few) < pages AS few_fewer_than_pages,
       (SELECT count(*) FROM est_many) > pages AS many_more_than_pages
FROM est_pages;

--
-- 1. 25 local rows joined on order_no: the table's size is unknown, so the
-- planner asks once (one request, per_page=1) and chooses one request per
-- local row over the table's pages
--
SELECT est_server('est_a');
SELECT * FROM est_plan(est_join('est_few', 'est_a'));
SELECT * FROM est_log();
-- the join: exact rows, one request per local row, no new probe (the
-- count is reused), fewer requests than pages and at most 30
SELECT sim('reset');
SELECT est_differ('est_few', 'est_a') AS differences;
SELECT l.requests = (SELECT count(*) FROM est_few) AS one_request_per_row,
       l.probes AS probes, l.full_pages AS full_pages,
       l.requests < p.pages AS fewer_than_pages, l.requests <= 30 AS at_most_30
FROM est_log() l, est_pages p;

--
-- 2. more local rows than the table has pages: every page once, no probe
--
SELECT sim('reset');
SELECT * FROM est_plan(est_join('est_many', 'est_a'));
SELECT est_differ('est_many', 'est_a') AS differences;
SELECT l.probes AS probes, l.full_pages = p.pages AS every_page_once,
       l.requests = p.pages AS nothing_else
FROM est_log() l, est_pages p;

--
-- 3. a size learned from a scan: after a full scan of a new server's table
-- (meta.total of its pages), the join plans without asking
--
SELECT est_server('est_b');
SELECT count(*) = (SELECT count(*) FROM truth_po) AS scanned FROM est_b.purchase_orders;
SELECT sim('reset');
SELECT * FROM est_plan(est_join('est_many', 'est_b'));
SELECT * FROM est_plan(est_join('est_few', 'est_b'));
SELECT * FROM est_log();

--
-- 4. the issue's table: the API says 3,000 orders (meta.total of the probe,
-- set by a fault rule); with pages of 100 that is 30 pages, and 25 local
-- rows are still 25 requests (the default of 1,000 rows would have chosen
-- a full scan)
--
SELECT est_server('est_c');
ALTER SERVER est_c OPTIONS (SET page_size '100');
SELECT sim('fault?kind=meta&field=total&value=3000&conn=plant_a&count=1');
SELECT * FROM est_plan(est_join('est_few', 'est_c'));
SELECT * FROM est_log();

--
-- 5. an API without meta.total (nor last_page, links.last): the probe is
-- made once all the same, the plan uses the default size, rows are exact
--
SELECT sim('reset');
SELECT sim('behave?meta=absent');
SELECT est_server('est_d');
SELECT * FROM est_plan(est_join('est_few', 'est_d'));
SELECT * FROM est_plan(est_join('est_many', 'est_d'));
SELECT * FROM est_log();
SELECT est_differ('est_few', 'est_d') AS differences;
SELECT l.probes AS probes FROM est_log() l;

--
-- 6. no probe: a query that joins nothing, and a table with ANALYZE
-- statistics (ALTER SERVER empties the backend's counts)
--
SELECT sim('reset');
SELECT est_server('est_e');
SELECT * FROM est_plan('SELECT * FROM est_e.purchase_orders WHERE order_no = ''x''');
SELECT * FROM est_log();
ANALYZE est_e.purchase_orders;
ALTER SERVER est_e OPTIONS (SET max_retry_wait '31');
SELECT sim('reset');
SELECT * FROM est_plan(est_join('est_few', 'est_e'));
SELECT * FROM est_log();

--
-- 7. a probe that fails (503, no retries) gives the default size, and is
-- not sent again by the next planning; the scan then works as usual
--
SELECT sim('reset');
SELECT est_server('est_f');
ALTER SERVER est_f OPTIONS (ADD max_retries '0');
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&count=1');
SELECT * FROM est_plan(est_join('est_few', 'est_f'));
SELECT * FROM est_plan(est_join('est_few', 'est_f'));
SELECT l.requests, l.probes, count(*) FILTER (WHERE r.status = 503) AS failed
FROM est_log() l, sim_requests() r GROUP BY 1, 2;
SELECT est_differ('est_few', 'est_f') AS differences;

SELECT sim('reset');
DROP SCHEMA est_a, est_b, est_c, est_d, est_e, est_f CASCADE;
DROP SERVER est_a, est_b, est_c, est_d, est_e, est_f CASCADE;
DROP TABLE est_pages, est_few, est_many;
DROP FUNCTION est_server(text), est_plan(text), est_join(text, text), est_differ(text, text),
  est_log();
