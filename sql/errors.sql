--
-- errors: every way the Makini API fails becomes one SQL error (SQLSTATE,
-- a message naming the server, a detail with the reply and the request, a
-- hint); what is transient is retried and heals; waits stay interruptible;
-- and after each failure the session goes on working.
--
SELECT sim('reset');

-- try(query): counts the rows of the query, reading every column, and
-- returns its SQLSTATE (00000 on success), message, detail, hint, context
-- (makini_fdw's lines, without PL/pgSQL's), rows and elapsed milliseconds.
-- Request ids, durations and byte counts in the detail and context are
-- masked (they vary).  Every outcome, unmasked, is kept in tried: the end of
-- this suite checks that no token ever shows, and that the context names
-- the request.
CREATE TABLE tried (query text, state text, message text, detail text, hint text,
                    context text);
CREATE FUNCTION try(q text, OUT state text, OUT message text, OUT detail text,
                    OUT hint text, OUT rows bigint, OUT ms int, OUT context text)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  BEGIN
    EXECUTE format('SELECT count(q.*) FROM (%s) q', q) INTO rows;
    state := '00000';
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT,
                            context = PG_EXCEPTION_CONTEXT;
    context := nullif(array_to_string(ARRAY(
                 SELECT l FROM regexp_split_to_table(context, E'\n') l
                 WHERE l !~ '^(PL/pgSQL function|SQL statement)'), E'\n'), '');
  END;
  ms := round(extract(epoch FROM clock_timestamp() - t0) * 1000);
  INSERT INTO tried VALUES (q, state, message, detail, hint, context);
  context := regexp_replace(context, 'req_[0-9a-f]+', 'req_…', 'g');
  detail := regexp_replace(detail, 'req_[0-9a-f]+', 'req_…', 'g');
  detail := regexp_replace(detail, '\d+ (ms|milliseconds|bytes)', 'N \1', 'g');
  detail := regexp_replace(detail, 'out of \d+', 'out of N', 'g');
  -- libcurl's own words as bookworm's libcurl (7.88) puts them: later
  -- versions say the same in other words
  detail := regexp_replace(detail, 'end of response with N bytes missing',
                           'transfer closed with N bytes remaining to read');
  detail := regexp_replace(detail, 'Failed to connect to ([0-9.]+):(\d+) after',
                           'Failed to connect to \1 port \2 after');
  detail := regexp_replace(detail, 'Could not connect to server',
                           'Couldn''t connect to server');
END $$;

-- makini_stats(query): the foreign scan's EXPLAIN ANALYZE counters
CREATE FUNCTION makini_stats(q text, OUT requests int, OUT pages int, OUT retries int)
LANGUAGE plpgsql AS $$
DECLARE
  plan jsonb;
  node jsonb;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO plan;
  node := jsonb_path_query_first(plan, 'strict $.** ? (exists (@."Makini retries"))');
  requests := node->'Makini HTTP requests';
  pages := node->'Makini pages';
  retries := node->'Makini retries';
END $$;

-- after_fault(): in the simulator's log, the last request a fault hit, and
-- the first request that arrived after it: its path and how long after the
-- faulted one it arrived (arrival times relative to each other, on the
-- simulator's clock: not this session's)
CREATE FUNCTION after_fault(OUT faulted_path text, OUT next_path text, OUT next_ms numeric)
LANGUAGE sql AS $$
  WITH log AS MATERIALIZED (SELECT * FROM sim_requests()),
       f AS (SELECT * FROM log WHERE coalesce(fault, '') <> '' ORDER BY seq DESC LIMIT 1)
  SELECT f.path, n.path, n.arrived_ms - f.arrived_ms
  FROM f LEFT JOIN LATERAL (SELECT * FROM log WHERE log.arrived_ms > f.arrived_ms
                            ORDER BY arrived_ms LIMIT 1) n ON true
$$;

-- e_fast retries once, soon; e_po reads plant_a's orders through it (faults
-- on conn plant_a hit every server whose token is tok_plant_a)
CREATE SERVER e_fast FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', max_retries '1', max_retry_wait '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_fast OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE e_po (key text, order_no text, total_net_value numeric,
                           order_date timestamptz)
  SERVER e_fast OPTIONS (resource 'purchase-orders');

\x on

--
-- 1. Transient failures are retried and heal: the query returns exactly the
-- simulator's rows (plant_a: max_retries 5, max_retry_wait 5 s)
--

-- 503 twice, then the API answers
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&count=2');
SELECT rows_differ('erp.purchase_orders', 'truth_po') AS po_diff;
SELECT count(*) FILTER (WHERE status = 503) AS answered_503,
       count(*) FILTER (WHERE status = 200) > 0 AS then_200
FROM sim_requests();

-- the retries count in EXPLAIN ANALYZE: one request per page plus two retries
SELECT sim('reset');
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&count=2');
SELECT retries, pages = ceil((SELECT count(*) FROM truth_po) / 100.0) AS one_page_per_100,
       requests = pages + retries AS requests_are_pages_plus_retries
FROM makini_stats('SELECT * FROM erp.purchase_orders');

-- 429 with Retry-After: 1, then success: the retry arrived at least the
-- second asked for after the 429, and the rows are right
SELECT sim('reset');
SELECT sim('fault?kind=status&status=429&retry_after=1&conn=plant_a');
SELECT state, rows = (SELECT count(*) FROM truth_po) AS right_count
FROM try('SELECT * FROM erp.purchase_orders');
SELECT next_path = faulted_path AS retried, next_ms >= 1000 AS waited_retry_after
FROM after_fault();
SELECT sim('fault?kind=status&status=429&retry_after=1&conn=plant_a');
SELECT rows_differ('erp.purchase_orders', 'truth_po') AS po_diff_after_429;

-- Retry-After as an HTTP-date (2 s ahead in whole seconds: more than 1 s
-- after the 429 arrived)
SELECT sim('fault?kind=status&status=429&retry_after_date=1&conn=plant_a');
SELECT state, rows = (SELECT count(*) FROM truth_po) AS right_count
FROM try('SELECT * FROM erp.purchase_orders');
SELECT next_path = faulted_path AS retried, next_ms >= 1000 AS waited_until_date
FROM after_fault();
SELECT status, fault FROM sim_requests() WHERE status <> 200;

-- each retry shows at DEBUG1 (Retry-After: 1 makes the wait exactly 1000 ms);
-- the server log gets the same lines (sql-tests/test_sqlsmith.sh checks that
-- the log never shows a token)
\x off
SELECT sim('reset');
SELECT sim('fault?kind=status&status=429&retry_after=1&conn=plant_a');
SET log_min_messages = debug1;
SET client_min_messages = debug1;
SELECT count(*) = (SELECT count(*) FROM truth_po) AS right_count FROM erp.purchase_orders;
RESET client_min_messages;
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&count=-1');
SELECT state FROM try('SELECT * FROM e_po');
SELECT sim('reset');
SELECT sim('fault?kind=status&status=401&code=TOKEN_EXPIRED&conn=plant_a');
SELECT state FROM try('SELECT * FROM e_po');
RESET log_min_messages;
\x on

-- a reset connection, a body cut short, an HTML 502 from a proxy: retried
SELECT sim('reset');
SELECT sim('fault?kind=reset&conn=plant_a&page=3');
SELECT sim('fault?kind=truncate&conn=plant_a&page=4');
SELECT sim('fault?kind=html&status=502&conn=plant_a&page=5');
SELECT rows_differ('erp.purchase_orders', 'truth_po') AS po_diff_after_network_faults;
-- (in page order: pages are asked for concurrently, see concurrency.sql)
SELECT coalesce(params->>'page', '1') AS page, status, fault
FROM sim_requests() WHERE fault <> '' ORDER BY coalesce(params->>'page', '1')::int, seq;

-- pages shorter than per_page before the last, an empty page with a next
-- link, a next link to another origin: the scan goes on to the last page
SELECT sim('reset');
SELECT sim('fault?kind=short&conn=plant_a&page=2');
SELECT count(*) = (SELECT count(*) - 50 FROM truth_po) AS short_page_half_missing
FROM erp.purchase_orders;
SELECT sim('fault?kind=empty_next&conn=plant_a&page=2');
SELECT count(*) = (SELECT count(*) - 100 FROM truth_po) AS empty_page_skipped
FROM erp.purchase_orders;
SELECT sim('reset');
SELECT sim('fault?kind=cross_origin_next&conn=plant_a&count=-1');
SELECT rows_differ('erp.purchase_orders', 'truth_po') AS po_diff_cross_origin;
-- every page was asked of the configured origin (127.0.0.1), each once
SELECT sim('reset');
SELECT sim('fault?kind=cross_origin_next&conn=plant_a&count=-1');
SELECT count(*) = (SELECT count(*) FROM truth_po) AS right_count FROM erp.purchase_orders;
SELECT count(*) = ceil((SELECT count(*) FROM truth_po) / 100.0) AS one_request_per_page,
       count(DISTINCT coalesce(params->>'page', '1')) = count(*) AS no_page_twice
FROM sim_requests();

--
-- 2. Transient failures that do not heal: the error after the retries
-- (e_fast: 1 retry)
--
-- (count=2: the request and its retry; a third attempt would succeed)
SELECT sim('reset');
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&count=2');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_po');
SELECT sim('fault?kind=html&status=502&conn=plant_a&count=2');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_po');
SELECT sim('fault?kind=status&status=504&code=SYSTEM_TIMEOUT&conn=plant_a&count=2');
SELECT state, message, detail FROM try('SELECT * FROM e_po');
SELECT sim('fault?kind=empty&status=500&conn=plant_a&count=2');
SELECT state, message, detail FROM try('SELECT * FROM e_po');
SELECT sim('fault?kind=status&status=429&retry_after=0&conn=plant_a&count=2');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_po');
SELECT sim('fault?kind=truncate&conn=plant_a&count=2');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_po');
-- each of them was sent twice, and nothing else was sent
SELECT fault, status, count(*) AS requests FROM sim_requests() GROUP BY fault, status ORDER BY min(seq);
-- a connection reset before any reply (libcurl itself sends the request
-- again once on a fresh connection when a reused one turns out dead, so
-- this fault fires more often than the attempts the detail counts)
SELECT sim('fault?kind=reset&conn=plant_a&count=-1');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_po');

-- Retry-After beyond max_retry_wait: no retry at all, the error at once
SELECT sim('reset');
SELECT sim('fault?kind=status&status=429&retry_after=30&conn=plant_a');
SELECT state, message, detail FROM try('SELECT * FROM e_po');
SELECT count(*) AS requests FROM sim_requests();

-- request_timeout: a reply that stalls mid-body (5 s) fails after the
-- timeout (1 s), not before and not at the end of the stall
CREATE SERVER e_stall FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', request_timeout '1', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_stall OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE e_stall_po (key text) SERVER e_stall OPTIONS (resource 'purchase-orders');
SELECT sim('reset');
SELECT sim('fault?kind=stall&delay_ms=5000&conn=plant_a');
SELECT state, message, detail, hint, ms >= 1000 AS after_request_timeout
FROM try('SELECT * FROM e_stall_po');

-- connection refused, retried once; with on_unreachable 'skip' a WARNING
-- and no rows
CREATE SERVER e_refused FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:1', max_retries '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_refused OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE e_refused_po (key text) SERVER e_refused OPTIONS (resource 'purchase-orders');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_refused_po');
ALTER SERVER e_refused OPTIONS (ADD on_unreachable 'skip');
\set VERBOSITY terse
SELECT count(*) AS skipped_rows FROM e_refused_po;
\set VERBOSITY default

-- a host name that does not resolve (not retried: DNS rarely heals in seconds)
CREATE SERVER e_nodns FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://makini-fdw-test.invalid', allow_insecure 'true',
           connect_timeout '2', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_nodns OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE e_nodns_po (key text) SERVER e_nodns OPTIONS (resource 'purchase-orders');
SELECT state, message, hint FROM try('SELECT * FROM e_nodns_po');

--
-- 3. What retrying cannot fix is never retried: one request each
--
SELECT sim('reset');
CREATE SERVER e_expired FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_expired OPTIONS (token 'tok_expired');
CREATE FOREIGN TABLE e_expired_po (key text) SERVER e_expired OPTIONS (resource 'purchase-orders');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_expired_po');
SELECT sim('fault?kind=status&status=401&code=REAUTHORIZATION_REQUIRED&conn=plant_a');
SELECT state, message, detail, hint FROM try('SELECT * FROM erp.purchase_orders');
SELECT sim('fault?kind=status&status=403&code=PERMISSION_DENIED&conn=plant_a');
SELECT state, message, detail, hint FROM try('SELECT * FROM erp.purchase_orders');
CREATE FOREIGN TABLE e_nope (key text) SERVER plant_a OPTIONS (resource 'nope');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_nope');
SELECT sim('fault?kind=status&status=400&code=INVALID_FILTER&conn=plant_a');
SELECT state, message, detail, hint FROM try('SELECT * FROM erp.purchase_orders');
SELECT sim('fault?kind=status&status=400&code=INVALID_REQUEST&conn=plant_a');
SELECT state, message, detail, hint FROM try('SELECT * FROM erp.purchase_orders');
CREATE SERVER e_v9 FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', api_version 'v9');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_v9 OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE e_v9_po (key text) SERVER e_v9 OPTIONS (resource 'purchase-orders');
SELECT state, message, detail, hint FROM try('SELECT * FROM e_v9_po');
SELECT status, count(*) AS requests FROM sim_requests() GROUP BY status ORDER BY status;
-- a key that does not exist is no row, not an error
SELECT state, rows FROM try($q$SELECT * FROM erp.purchase_orders WHERE key = 'no-such-key'$q$);

--
-- 4. Replies that are not what the contract says: HV00M; values that do not
-- fit their column: HV024, the type's own reason, and a CONTEXT naming the
-- column, the field, the record, the value and the request
--
SELECT sim('reset');
SELECT sim('fault?kind=notjson&conn=plant_a');
SELECT state, message, detail, hint FROM try('SELECT * FROM erp.purchase_orders');
SELECT sim('fault?kind=wrongshape&conn=plant_a');
SELECT state, message, detail FROM try('SELECT * FROM erp.purchase_orders');
SELECT sim('fault?kind=next_loop&conn=plant_a&page=2');
SELECT state, message, detail FROM try('SELECT * FROM erp.purchase_orders');
SELECT sim('reset');
SELECT sim('fault?kind=bad_value&field=totalNetValue&value=12,50&conn=plant_a');
SELECT state, message, hint, context FROM try('SELECT * FROM erp.purchase_orders');
SELECT substring(context FROM ' of record "([^"]+)"') IN (SELECT key FROM truth_po) AS names_record_key,
       context LIKE 'column "total_net_value" of foreign table "purchase_orders", field "totalNetValue"%' AS names_field,
       message LIKE 'invalid input syntax for type numeric%' AS says_why
FROM tried ORDER BY ctid DESC LIMIT 1;
SELECT sim('fault?kind=bad_value&field=lineItems.0.quantity&value=abc&conn=plant_a');
SELECT state, message, context FROM try('SELECT * FROM erp.purchase_order_lines');
SELECT substring(context FROM ' of record "([^"]+)"') IN (SELECT key FROM truth_lines) AS names_line_key,
       substring(context FROM ' of record "[^"]+" of record "([^"]+)"') IN (SELECT key FROM truth_po) AS names_order_key
FROM tried ORDER BY ctid DESC LIMIT 1;
SELECT sim('fault?kind=bad_value&field=lineItems.0.lineNo&value=1.5&conn=plant_a');
SELECT state, message, context ~ '^column "line_no" ' AS names_column
FROM try('SELECT * FROM erp.purchase_order_lines');
-- date-times are ISO 8601: the input function's special words are not dates
SELECT sim('fault?kind=bad_value&field=orderDate&value=now&conn=plant_a');
SELECT state, message, context ~ '^column "order_date" .*, value "now"' AS names_column_and_value
FROM try('SELECT * FROM erp.purchase_orders');
SELECT sim('fault?kind=bad_value&field=orderDate&value=infinity&conn=plant_a');
SELECT state, message, context ~ '^column "order_date" .*, value "infinity"' AS names_column_and_value
FROM try('SELECT * FROM erp.purchase_orders');
-- a column the query does not read is not converted, and count(*) reads none
SELECT sim('fault?kind=bad_value&field=totalNetValue&value=12,50&conn=plant_a');
SELECT state, rows = (SELECT count(*) FROM truth_po) AS right_count
FROM try('SELECT key FROM erp.purchase_orders');
SELECT sim('fault?kind=bad_value&field=totalNetValue&value=12,50&conn=plant_a');
SELECT count(*) = (SELECT count(*) FROM truth_po) AS right_count FROM erp.purchase_orders;
-- a string text cannot hold (\u0000) is an error where a column reads it,
-- and no matter where none does
SELECT sim('fault?kind=bad_value&field=title&value=a%00b&conn=plant_a&count=2');
SELECT state, message, detail FROM try('SELECT title FROM erp.purchase_orders');
SELECT state, rows = (SELECT count(*) FROM truth_po) AS right_count
FROM try('SELECT key, order_no FROM erp.purchase_orders');

--
-- 5. Deprecation: one WARNING per session and server, naming the sunset date
--
SELECT sim('reset');
SELECT sim('fault?kind=deprecate&conn=plant_a&count=-1');
SELECT count(*) > 0 AS orders FROM erp.purchase_orders;
SELECT count(*) > 0 AS orders_again FROM erp.purchase_orders;
SELECT count(*) > 0 AS vendors FROM erp.vendors;
SELECT count(*) > 0 AS orders_other_server FROM e_po;

--
-- 6. Cancel: statement_timeout stops a stalled transfer and a backoff wait
-- at once (sql-tests/test_cancel.sh measures pg_cancel_backend, SIGINT and
-- pg_terminate_backend too)
--
SELECT sim('reset');
SELECT sim('fault?kind=stall&delay_ms=5000&conn=plant_a');
SET statement_timeout = '300ms';
SELECT state, message FROM try('SELECT * FROM erp.purchase_orders');
RESET statement_timeout;
-- the stalled transfer was dropped: the next request (vendors) arrived
-- before the stall (5 s) was over
SELECT count(*) > 0 AS vendors FROM erp.vendors;
SELECT next_path, next_ms < 5000 AS before_the_stall_ended FROM after_fault();
SELECT sim('reset');
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&retry_after=4&conn=plant_a');
SET statement_timeout = '300ms';
SELECT state, message FROM try('SELECT * FROM erp.purchase_orders');
RESET statement_timeout;
-- the wait was cut short: the next request is the session's next query
-- (vendors), not the retry, and it arrived before the wait (4 s) was over
SELECT count(*) > 0 AS vendors FROM erp.vendors;
SELECT next_path, next_ms < 4000 AS before_the_wait_ended FROM after_fault();
-- the session goes on: same rows as ever
SELECT sim('reset');
SELECT rows_differ('erp.purchase_orders', 'truth_po') AS po_diff_after_cancel;

-- the same at top level, outside any subtransaction
\x off
\set VERBOSITY terse
SELECT sim('fault?kind=stall&delay_ms=5000&conn=plant_a');
SET statement_timeout = '300ms';
SELECT count(*) FROM erp.purchase_orders;
RESET statement_timeout;
SELECT sim('reset');
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&count=-1');
SELECT count(*) FROM e_po;
SELECT sim('reset');
SELECT sim('fault?kind=reset&conn=plant_a&count=-1');
SELECT count(*) FROM e_po;
SELECT sim('reset');
SELECT sim('fault?kind=notjson&conn=plant_a&page=3');
SELECT count(*) FROM erp.purchase_orders;
SELECT sim('reset');
\set VERBOSITY default
SELECT rows_differ('erp.purchase_orders', 'truth_po') AS po_diff_after_errors;

--
-- 7. Memory: failed queries give back what they took (80 failures, each
-- in a different place, cost the session no memory that stays)
--
CREATE SERVER e_once FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_once OPTIONS (token 'tok_plant_a');
CREATE SCHEMA e_once;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders, purchase_order_lines)
  FROM SERVER e_once INTO e_once;
CREATE FUNCTION fail_many(n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    PERFORM sim('fault?kind=reset&conn=plant_a&page=' || (i % 5 + 1));
    PERFORM try('SELECT * FROM e_once.purchase_orders');
    PERFORM sim('fault?kind=notjson&conn=plant_a&page=' || (i % 5 + 1));
    PERFORM try('SELECT * FROM e_once.purchase_order_lines');
    PERFORM sim('fault?kind=bad_value&field=totalNetValue&value=x&conn=plant_a&page=' || (i % 5 + 1));
    PERFORM try('SELECT * FROM e_once.purchase_orders');
    PERFORM sim('fault?kind=status&status=401&code=TOKEN_EXPIRED&conn=plant_a');
    PERFORM try('SELECT * FROM e_once.purchase_orders');
  END LOOP;
END $$;
-- the session's memory but for caches that grow by design (temp table
-- buffers of sim(), catalog and plan caches, the last message).  A context's
-- parent: its column "parent" before PostgreSQL 18, from 18 on the context
-- whose id is the next-to-last of its "path" (the ids from the top to it)
CREATE VIEW e_mem AS
  WITH c AS (SELECT m.*, to_jsonb(m) AS j FROM pg_backend_memory_contexts m),
       p AS (SELECT c.*, coalesce(j->>'parent',
                                  (SELECT q.name FROM c q
                                   WHERE q.j->'path'->-1 = c.j->'path'->-2)) AS parent_name
             FROM c)
  SELECT sum(total_bytes) FILTER (
           WHERE name NOT IN ('LocalBufferContext', 'MessageContext', 'CacheMemoryContext')
             AND parent_name IS DISTINCT FROM 'CacheMemoryContext') AS bytes,
         count(*) FILTER (WHERE name LIKE 'makini%') AS makini_contexts
  FROM p;
SELECT fail_many(3);
CREATE TEMP TABLE mem AS SELECT * FROM e_mem;
SELECT fail_many(20);
SELECT e_mem.bytes - mem.bytes < 64 * 1024 AS no_memory_kept,
       e_mem.makini_contexts - mem.makini_contexts AS makini_contexts_kept
FROM e_mem, mem;
SELECT sim('reset');

--
-- 8. Secrets: no token in any message, detail, hint or context seen
-- above, nor in EXPLAIN
--
SELECT count(*) > 100 AS outcomes_seen,
       count(*) FILTER (WHERE concat_ws(' ', message, detail, hint, context) LIKE '%tok\_%') AS with_token
FROM tried;
-- a failed request names itself in the error's context, as postgres_fdw
-- names the remote SQL: GET and the path the detail quotes
SELECT count(*) > 30 AS request_failures,
       count(*) FILTER (WHERE context || E'\n' NOT LIKE
         '%Makini request: GET ' || substring(detail FROM 'Request: GET (\S+)') || E'\n%')
         AS without_request_context
FROM tried WHERE detail ~ '^(HTTP \d+|could not connect|connection lost|timed out|invalid reply:)';
SELECT sim('fault?kind=status&status=401&code=TOKEN_EXPIRED&conn=plant_a');
SELECT state FROM try('SELECT * FROM e_po WHERE order_no = ''PO-1''');
SELECT split_part(context, E'\n', 1) AS context FROM tried ORDER BY ctid DESC LIMIT 1;
SELECT sim('reset');
CREATE FUNCTION explain_text(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  result text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE) ' || q LOOP
    result := result || line || E'\n';
  END LOOP;
  RETURN result;
END $$;
SELECT position('tok_' IN explain_text('SELECT * FROM e_po')) AS token_in_explain,
       explain_text('SELECT * FROM e_po') LIKE '%Makini request: GET /api/erp/purchase-orders%' AS shows_request;

\x off
SET client_min_messages = warning;
DROP SERVER e_fast, e_stall, e_refused, e_nodns, e_expired, e_v9, e_once CASCADE;
DROP SCHEMA e_once;
DROP FOREIGN TABLE e_nope;
DROP VIEW e_mem;
DROP FUNCTION fail_many(int), explain_text(text), makini_stats(text);
RESET client_min_messages;
SELECT sim('reset');

--
-- 9. on_unreachable 'skip' skips a server that gave no row; once rows came,
-- a failure is an error, never a silently short result
--
-- (one request at a time: no page is asked for ahead of a failing one)
CREATE SERVER e_skip FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', max_retries '0', on_unreachable 'skip',
           max_concurrent_requests '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_skip OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE e_skip_po (key text) SERVER e_skip OPTIONS (resource 'purchase-orders');
-- and the same data without skip or retries
CREATE SERVER e_more FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_more OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE e_more_po (key text, order_date timestamptz)
  SERVER e_more OPTIONS (resource 'purchase-orders');
\x on
-- page 1 fails: no row from this server, a WARNING
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&page=1&count=-1');
\set VERBOSITY terse
SELECT state, message, rows FROM try('SELECT * FROM e_skip_po');
\set VERBOSITY default
SELECT sim('reset');
-- page 3 fails after the rows of pages 1 and 2: the error, no rows
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&page=3&count=-1');
SELECT state, message, detail, rows FROM try('SELECT * FROM e_skip_po');
SELECT count(*) FILTER (WHERE params->>'page' = '3') AS page_3_asked,
       count(*) FILTER (WHERE params->>'page' = '4') AS page_4_asked
FROM sim_requests();
SELECT sim('reset');

--
-- 10. Paging numbers out of range are a bad reply (HV00M), never cut down
-- to an int: last_page 4294967297 would be 1 and end the scan after page 1
--
SELECT sim('fault?kind=meta&field=last_page&value=4294967297&conn=plant_a');
SELECT state, message, detail, rows FROM try('SELECT * FROM e_more_po');
SELECT sim('fault?kind=meta&field=current_page&value=-1&conn=plant_a');
SELECT state, detail FROM try('SELECT * FROM e_more_po');
SELECT sim('fault?kind=meta&field=total&value=99999999999999999999&conn=plant_a');
SELECT state, detail FROM try('SELECT * FROM e_more_po');
SELECT sim('fault?kind=meta&field=last_page&value=7.5&conn=plant_a');
SELECT state, detail FROM try('SELECT * FROM e_more_po');
SELECT sim('fault?kind=meta&field=next_page&value=4294967298&conn=plant_a');
SELECT state, detail FROM try('SELECT * FROM e_more_po');
SELECT sim('reset');
-- in range, the same query reads every row
SELECT state, rows = (SELECT count(*) FROM truth_po) AS all_rows FROM try('SELECT * FROM e_more_po');
\x off

--
-- 11. Date-times are ISO 8601 or HV024, whatever the session's DateStyle:
-- "03/04/2026 10:00" is neither March nor April
--
\x on
SET datestyle = 'SQL, DMY';
SELECT sim('fault?kind=bad_value&field=orderDate&value=03/04/2026%2010:00&conn=plant_a');
SELECT state, message, context FROM try('SELECT * FROM e_more_po');
SET datestyle = 'SQL, MDY';
SELECT sim('fault?kind=bad_value&field=orderDate&value=03/04/2026%2010:00&conn=plant_a');
SELECT state, message, context FROM try('SELECT * FROM e_more_po');
RESET datestyle;
SELECT sim('reset');
\x off
--
-- 12. Remote text reaches messages checked and converted: the API speaks
-- UTF-8; header bytes that are not UTF-8 are written \xNN, the error
-- body's message is kept (a body that is not UTF-8 is no JSON at all)
--
SELECT sim('fault?kind=bad_header&header=request_id&conn=plant_a');
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&message=caf%C3%A9%20%E2%9C%93%20end');
SELECT state, message, detail FROM try('SELECT * FROM e_more_po');
SELECT sim('reset');

--
-- 13. A changed user mapping's request headers (the token among them) are
-- dropped as soon as the change is seen (DEBUG1 says so), not kept until
-- the next query; the next request sends the new token
--
CREATE SERVER e_map FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER e_map OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE e_map_cur (key text) SERVER e_map OPTIONS (resource 'currencies');
SELECT count(*) > 0 AS some FROM e_map_cur;
SET client_min_messages = debug1;
ALTER USER MAPPING FOR CURRENT_USER SERVER e_map OPTIONS (SET token 'tok_plant_b');
RESET client_min_messages;
SELECT sim('reset');
SELECT count(*) = (SELECT count(*) FROM truth_b_currencies) AS plant_b_rows FROM e_map_cur;
SELECT conn, count(*) AS requests FROM sim_requests() GROUP BY 1;

SET client_min_messages = warning;
DROP SERVER e_skip, e_more, e_map CASCADE;
RESET client_min_messages;
