--
-- concurrency: once a page tells how many pages there are (meta.last_page),
-- a scan asks for the following pages together, up to the server option
-- max_concurrent_requests, and returns the rows in page order; the values
-- of an IN list and key lookups go out together too.  Every scan is
-- compared with the ground truth (truth_po, from scan.sql), and the
-- simulator reports the most requests it answered at once (/_sim/inflight).
--
SELECT sim('reset');
CREATE SERVER cc FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', max_retry_wait '30');
CREATE USER MAPPING FOR CURRENT_USER SERVER cc OPTIONS (token 'tok_plant_a');
CREATE SCHEMA cc;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders) FROM SERVER cc INTO cc;
ALTER FOREIGN TABLE cc.purchase_orders OPTIONS (ADD page_size '20');

-- cc_differ(f, t): rows of query f the rows of query t do not have, and the
-- other way round (EXCEPT ALL both ways)
CREATE FUNCTION cc_differ(f text, t text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE 'CREATE TEMP TABLE cc_got AS ' || f;
  EXECUTE 'CREATE TEMP TABLE cc_want AS ' || t;
  n := rows_differ('cc_got', 'cc_want');
  DROP TABLE cc_got, cc_want;
  RETURN n;
END $$;

-- cc_peak(): the most requests of plant_a the simulator answered at once
-- since the last sim('reset')
CREATE FUNCTION cc_peak() RETURNS int LANGUAGE sql AS $$
  SELECT (sim('inflight?conn=plant_a')::jsonb->>'plant_a')::int
$$;

-- cc_pages(): the requests of the log: all, those answered 200, the
-- distinct pages answered 200, the 429s
CREATE FUNCTION cc_pages(OUT requests bigint, OUT ok bigint, OUT ok_pages bigint,
                         OUT rate_limited bigint)
LANGUAGE sql AS $$
  SELECT count(*), count(*) FILTER (WHERE status = 200),
         count(DISTINCT coalesce(params->>'page', '1')) FILTER (WHERE status = 200),
         count(*) FILTER (WHERE status = 429)
  FROM sim_requests()
$$;

-- cc_connections(): the TCP connections plant_a's requests came on since
-- the last sim('reset')
CREATE FUNCTION cc_connections() RETURNS int LANGUAGE sql AS $$
  SELECT (sim('connections?conn=plant_a')::jsonb->>'plant_a')::int
$$;

-- cc_explain(q): the line of EXPLAIN ANALYZE with the most requests in flight
CREATE FUNCTION cc_explain(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
    IF line ~ 'in flight' THEN
      RETURN NEXT line;
    END IF;
  END LOOP;
END $$;

--
-- 1. full scans: rows exact, one request per page, each page once; with a
-- latency of 200 ms, the pages overlap at the simulator (one page after the
-- other, at most one would be answered at a time)
--
SELECT sim('latency?conn=plant_a&ms=200');
SELECT cc_differ('SELECT * FROM cc.purchase_orders', 'TABLE truth_po') AS differences;
SELECT p.requests = ceil((SELECT count(*) FROM truth_po) / 20.0) AS one_request_per_page,
       p.ok_pages = p.requests AS each_page_once,
       cc_peak() >= 3 AS pages_overlap
FROM cc_pages() p;
-- EXPLAIN ANALYZE: the scan had max_concurrent_requests (4) in flight
SELECT * FROM cc_explain('SELECT * FROM cc.purchase_orders');
-- the two scans came on at most 4 TCP connections: kept alive, one a
-- request in flight (HTTP/1.1: the simulator does not speak HTTP/2)
SELECT cc_connections() BETWEEN 1 AND 4 AS connections_bounded;
-- at most as many as allowed: 8 of them (the simulator without its limit
-- of 8: a reply is out before it stops counting its request)
SELECT sim('reset');
SELECT sim('latency?conn=plant_a&ms=100');
SELECT sim('behave?max_concurrent=0');
ALTER SERVER cc OPTIONS (ADD max_concurrent_requests '8');
SELECT cc_differ('SELECT * FROM cc.purchase_orders', 'TABLE truth_po') AS differences;
SELECT cc_peak() BETWEEN 3 AND 8 AS pages_overlap FROM cc_pages() p;
SELECT * FROM cc_explain('SELECT * FROM cc.purchase_orders');
-- one at a time
ALTER SERVER cc OPTIONS (SET max_concurrent_requests '1');
SELECT * FROM cc_explain('SELECT * FROM cc.purchase_orders');
-- ... yet the wait for a page overlaps the parsing of the one before: once
-- page 2 has arrived, the request for page 3 goes out, then page 2 is
-- parsed (here it does not parse: that error comes after the request for
-- page 3); the simulator never answers two at once
SELECT sim('reset');
SELECT cc_differ('SELECT * FROM cc.purchase_orders', 'TABLE truth_po') AS differences,
       cc_peak() AS most_at_once;
SELECT sim('reset');
SELECT sim('fault?kind=wrongshape&conn=plant_a&page=2');
SET client_min_messages = debug1;
SELECT state FROM try('SELECT * FROM cc.purchase_orders');
RESET client_min_messages;
ALTER SERVER cc OPTIONS (DROP max_concurrent_requests);

-- memory: a page sent ahead waits encoded, in a small context of its own;
-- decoded pages are in two contexts (the current page and the next),
-- however many pages are ahead
SELECT sim('reset');
CREATE FUNCTION cc_contexts(k text, OUT pages bigint, OUT requests bigint)
LANGUAGE sql VOLATILE AS $$
  SELECT count(*) FILTER (WHERE name = 'makini_fdw page'),
         count(*) FILTER (WHERE name = 'makini_fdw request')
  FROM pg_backend_memory_contexts WHERE k IS NOT NULL
$$;
SELECT max((cc_contexts(key)).pages) AS page_contexts,
       max((cc_contexts(key)).requests) <= 2 + 4 AS one_request_context_each
FROM cc.purchase_orders;
SELECT * FROM cc_explain('SELECT * FROM cc.purchase_orders');

-- pages shorter than per_page (max_per_page), at other latencies and page
-- sizes: meta.last_page counts the short pages
SELECT sim('reset');
SELECT sim('behave?max_per_page=7');
SELECT sim('latency?conn=plant_a&ms=20');
SELECT cc_differ('SELECT * FROM cc.purchase_orders', 'TABLE truth_po') AS differences;
SELECT p.ok_pages = ceil((SELECT count(*) FROM truth_po) / 7.0) AS every_short_page,
       p.ok_pages = p.requests AS each_page_once
FROM cc_pages() p;
SELECT sim('reset');
ALTER FOREIGN TABLE cc.purchase_orders OPTIONS (SET page_size '3');
SELECT cc_differ('SELECT * FROM cc.purchase_orders', 'TABLE truth_po') AS differences;
SELECT p.ok_pages = ceil((SELECT count(*) FROM truth_po) / 3.0) AS every_page,
       p.ok_pages = p.requests AS each_page_once
FROM cc_pages() p;
ALTER FOREIGN TABLE cc.purchase_orders OPTIONS (SET page_size '20');

-- without a page count (meta absent), links.next is followed one page at a
-- time: one request in flight
SELECT sim('reset');
SELECT sim('behave?meta=absent');
SELECT sim('latency?conn=plant_a&ms=50');
SELECT cc_differ('SELECT * FROM cc.purchase_orders', 'TABLE truth_po') AS differences;
SELECT p.ok_pages = ceil((SELECT count(*) FROM truth_po) / 20.0) AS every_page,
       p.ok_pages = p.requests AS each_page_once
FROM cc_pages() p;
SELECT * FROM cc_explain('SELECT * FROM cc.purchase_orders');

--
-- 2. IN lists and key lookups: the requests of the values go out together
--
SELECT sim('reset');
SELECT sim('latency?conn=plant_a&ms=200');
CREATE TEMP TABLE cc_keys AS
SELECT array_agg(order_no ORDER BY key) AS order_nos, array_agg(key ORDER BY key) AS keys
FROM (SELECT order_no, key FROM truth_po ORDER BY key LIMIT 12) s;
SELECT cc_differ(format('SELECT * FROM cc.purchase_orders WHERE order_no = ANY (%L)', order_nos),
                 format('SELECT * FROM truth_po WHERE order_no = ANY (%L)', order_nos)) AS in_list_differences,
       cc_peak() >= 3 AS values_overlap
FROM cc_keys;
SELECT * FROM cc_explain((SELECT format('SELECT * FROM cc.purchase_orders WHERE order_no = ANY (%L)', order_nos) FROM cc_keys));
SELECT sim('reset');
SELECT sim('latency?conn=plant_a&ms=200');
SELECT cc_differ(format('SELECT * FROM cc.purchase_orders WHERE key = ANY (%L)', keys),
                 format('SELECT * FROM truth_po WHERE key = ANY (%L)', keys)) AS key_differences,
       cc_peak() >= 3 AS keys_overlap
FROM cc_keys;
SELECT count(*) AS key_requests, count(*) FILTER (WHERE path ~ '^/api/erp/purchase-orders/.') AS item_requests
FROM sim_requests();

--
-- 3. a sorted scan (both phases: records without a value after the sorted
-- ones) stays in order under concurrency, and a LIMIT bigger than a page
--
SELECT sim('reset');
SELECT sim('latency?conn=plant_a&ms=200');
SET enable_sort = off;
SELECT (SELECT array_agg(approved_at) FROM (SELECT approved_at FROM cc.purchase_orders ORDER BY approved_at LIMIT 1000) s)
       IS NOT DISTINCT FROM
       (SELECT array_agg(approved_at) FROM (SELECT approved_at FROM truth_po ORDER BY approved_at LIMIT 1000) s)
       AS sorted_same,
       cc_peak() >= 3 AS pages_overlap;
SELECT (SELECT array_agg(approved_at) FROM (SELECT approved_at FROM cc.purchase_orders ORDER BY approved_at NULLS FIRST LIMIT 1000) s)
       IS NOT DISTINCT FROM
       (SELECT array_agg(approved_at) FROM (SELECT approved_at FROM truth_po ORDER BY approved_at NULLS FIRST LIMIT 1000) s)
       AS sorted_nulls_first_same;
RESET enable_sort;
-- LIMIT 50 of pages of 20: three pages asked for, not more
SELECT sim('reset');
SELECT count(*) FROM (SELECT * FROM cc.purchase_orders LIMIT 50) s;
SELECT count(*) AS requests FROM sim_requests();

--
-- 4. rate limit: the simulator serves 2 requests at once and answers 429
-- (Retry-After: 1) beyond; the FDW asks for 8.  It backs off: every row
-- exactly once, and fewer 429s than pages
--
SELECT sim('reset');
SELECT sim('behave?max_concurrent=2');
SELECT sim('latency?conn=plant_a&ms=100');
ALTER SERVER cc OPTIONS (ADD max_concurrent_requests '8');
SELECT cc_differ('SELECT * FROM cc.purchase_orders', 'TABLE truth_po') AS differences;
SELECT p.rate_limited > 0 AS limited, p.ok_pages = p.ok AS each_page_once,
       p.ok_pages = ceil((SELECT count(*) FROM truth_po) / 20.0) AS every_page,
       p.rate_limited < p.ok_pages AS backed_off
FROM cc_pages() p;
ALTER SERVER cc OPTIONS (DROP max_concurrent_requests);

--
-- 5. a page that fails after its retries fails the query: no partial rows
--
SELECT sim('reset');
SELECT sim('latency?conn=plant_a&ms=50');
ALTER SERVER cc OPTIONS (ADD max_retries '1');
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&page=3&count=-1');
SELECT state, rows FROM try('SELECT * FROM cc.purchase_orders');
SELECT count(*) FILTER (WHERE params->>'page' = '3') AS page_3_asked FROM sim_requests();
ALTER SERVER cc OPTIONS (DROP max_retries);

SELECT sim('reset');
DROP SCHEMA cc CASCADE;
DROP SERVER cc CASCADE;
DROP FUNCTION cc_differ(text, text), cc_peak(), cc_pages(), cc_explain(text),
  cc_contexts(text), cc_connections();
