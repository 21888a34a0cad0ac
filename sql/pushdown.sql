--
-- pushdown: WHERE conditions, ORDER BY, LIMIT, key lookups and joins reach
-- the Makini API (fdw/API.md §3).  For each pushdown: the request EXPLAIN
-- VERBOSE shows, the request the simulator received (its log), and that
-- only the records the query needs were served.  Then a differential test:
-- many queries on the foreign tables and on local copies of the same data
-- (the simulator's ground truth) return exactly the same rows, under
-- several time zones.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SELECT sim('reset');

-- pd_explain(query): EXPLAIN (VERBOSE, COSTS OFF) without the Output lines
CREATE FUNCTION pd_explain(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    IF line !~ '^\s*Output: ' THEN
      RETURN NEXT line;
    END IF;
  END LOOP;
END $$;

-- pd_log: what the simulator received since the last sim('reset'), without
-- the parameters every request has
CREATE VIEW pd_log AS
  SELECT seq, path, params - 'per_page' AS params, params->>'per_page' AS per_page,
         status, records
  FROM sim_requests();

--
-- text equality: filter[F]=v, exact and case-sensitive on both sides
--
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_no = 'PO-2024-000007'$$);
SELECT sim('reset');
SELECT key, order_no FROM erp.purchase_orders WHERE order_no = 'PO-2024-000007';
SELECT path, params, records FROM pd_log;
-- another case is another value: nothing served
SELECT sim('reset');
SELECT key FROM erp.purchase_orders WHERE order_no = 'po-2024-000007';
SELECT path, params, records FROM pd_log;
-- '' is never matched by the API (it is null there), but is by PostgreSQL:
-- not sent (the request has no filter, every record is served), evaluated
-- locally
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE title = ''$$);
SELECT sim('reset');
SELECT (SELECT count(*) FROM truth_po WHERE title = '') > 0 AS truth_has_empty_titles,
       (SELECT count(*) FROM erp.purchase_orders WHERE title = '') =
       (SELECT count(*) FROM truth_po WHERE title = '') AS empty_titles_found;
SELECT bool_and(params::text NOT LIKE '%filter[%') AS no_filter_sent,
       sum(records) = (SELECT count(*) FROM truth_po) AS served_every_record
FROM pd_log;
-- a column mapped to a custom field (not a model field) is never filtered
-- on: the API would answer 400 INVALID_FILTER
CREATE FOREIGN TABLE po_custom (key text, priority text OPTIONS (field 'priority'),
  city text OPTIONS (field 'shipmentAddress.city'))
  SERVER plant_a OPTIONS (resource 'purchase-orders');
SELECT * FROM pd_explain($$SELECT key FROM po_custom WHERE priority = 'high' AND city = 'Berlin'$$);

--
-- key lookups: key = k is GET <resource>/k; a 404 is no row
--
SELECT * FROM pd_explain($$SELECT key, order_no FROM erp.purchase_orders WHERE key = '06000183724462'$$);
SELECT sim('reset');
SELECT key, order_no FROM erp.purchase_orders WHERE key = '06000183724462';
SELECT key, order_no FROM erp.purchase_orders WHERE key = '06000000000000';
SELECT path, params, status, records FROM pd_log ORDER BY seq;
-- other conditions are checked locally on the record
SELECT key FROM erp.purchase_orders WHERE key = '06000183724462' AND order_no = 'PO-2024-000001';
-- a key list: one item request per distinct value, NULL asks nothing
SELECT * FROM pd_explain($$SELECT key FROM erp.vendors WHERE key IN ('09000011443674', '09000398864163', '09000011443674', NULL, 'nope')$$);
SELECT sim('reset');
SELECT key, name FROM erp.vendors
WHERE key IN ('09000011443674', '09000398864163', '09000011443674', NULL, 'nope') ORDER BY key;
SELECT path, status, records FROM pd_log ORDER BY path;

--
-- IN lists: one request per distinct non-NULL value (the API has no IN)
--
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_no IN ('PO-2024-000001', 'PO-2025-000002', 'PO-2024-000001', NULL, 'PO-NONE')$$);
SELECT sim('reset');
SELECT order_no FROM erp.purchase_orders
WHERE order_no IN ('PO-2024-000001', 'PO-2025-000002', 'PO-2024-000001', NULL, 'PO-NONE')
ORDER BY 1;
SELECT params->>'filter[orderNo]' AS order_no, records FROM pd_log ORDER BY 1;
SELECT count(*) = 3 AS one_request_per_distinct_value,
       sum(records) = (SELECT count(*) FROM truth_po
                       WHERE order_no IN ('PO-2024-000001', 'PO-2025-000002')) AS served_only_matches
FROM pd_log;
-- = ANY(array) is the same; an empty list or only NULLs asks nothing
SELECT sim('reset');
SELECT count(*) FROM erp.purchase_orders WHERE order_no = ANY ('{}'::text[]);
SELECT count(*) FROM erp.purchase_orders WHERE order_no = ANY ('{NULL}'::text[]);
SELECT count(*) FROM erp.purchase_orders WHERE order_no = ANY (NULL::text[]);
SELECT count(*) AS requests FROM pd_log;
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_no = ANY ('{}'::text[])$$);
-- a list holding '' cannot be sent: evaluated locally
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_no IN ('', 'PO-2024-000001')$$);
-- one IN list per scan (a second one is checked locally: no cross product)
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_no IN ('a', 'b') AND status_key IN ('c', 'd')$$);

--
-- LIKE and ILIKE: the API's startsWith / contains are case-insensitive, so
-- they narrow the transfer and PostgreSQL rechecks.  The longest literal
-- run of the pattern is sent ('_' and '%' split runs, '\' escapes).
--
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE title LIKE 'Compressor%'$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE title LIKE '%calibration%'$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE title LIKE 'R_paration pompe%'$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.vendors WHERE name LIKE 'Back\\slash%'$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.vendors WHERE name LIKE '%'$$);
SELECT sim('reset');
SELECT count(*) FROM erp.purchase_orders WHERE title LIKE 'Compressor%';
SELECT params, records = (SELECT count(*) FROM truth_po WHERE title ILIKE 'Compressor%') AS served_case_insensitive_matches
FROM pd_log;
-- ILIKE: the API lower-cases U+0130 (İ) to "i" + U+0307, PostgreSQL to
-- "i": the literal is cut after an "i", and 'İstanbul' is still found
SELECT * FROM pd_explain($$SELECT key FROM erp.vendors WHERE name ILIKE '%istanbul%'$$);
SELECT name FROM erp.vendors WHERE name ILIKE '%istanbul%';
-- sigmas lower-case by context (final sigma): the literal is cut there
SELECT * FROM pd_explain($$SELECT key FROM erp.vendors WHERE name ILIKE '%ΑΣ%'$$);
-- NOT LIKE and a pattern that is not a constant stay local
SELECT * FROM pd_explain($$SELECT key FROM erp.vendors WHERE name NOT LIKE 'A%' AND name LIKE code || '%'$$);

--
-- date-time comparisons: instants on both sides.  Bounds are sent on half
-- microseconds: PostgreSQL rounds values with more digits (plant_c sends 7)
-- to microseconds, so ">= X" holds for every value from X - 0.5us on.
--
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date >= '2026-06-01' AND order_date < '2026-07-01'$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date > '2026-06-01' AND order_date <= '2026-07-01'$$);
-- equality of instants is a range: equality on the API compares the text
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date = '2025-03-01 00:00:00+00'$$);
SELECT sim('reset');
SELECT key, order_no FROM erp.purchase_orders WHERE order_date = '2025-03-01 00:00:00+00' ORDER BY key;
SELECT params, records FROM pd_log;
-- a date or timestamp constant is an instant of the session's time zone
SET TimeZone = 'Asia/Tokyo';
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date >= '2026-06-01'::date AND order_date < '2026-07-01'::timestamp$$);
-- col::date = D: the day D of the session's time zone, [D 00:00, D+1 00:00)
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date::date = '2025-03-01'$$);
SET TimeZone = 'America/Los_Angeles';
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date::date = '2025-03-01'$$);
-- the day the clocks go forward has 23 hours
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date::date = '2026-03-08'$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date::date > '2026-03-08' AND order_date::date <= '2026-03-31'$$);
SELECT sim('reset');
SELECT count(*) = (SELECT count(*) FROM truth_po WHERE order_date::date = '2025-03-01') AS same_rows
FROM erp.purchase_orders WHERE order_date::date = '2025-03-01';
SELECT records = (SELECT count(*) FROM truth_po WHERE order_date::date = '2025-03-01') AS served_only_matches
FROM pd_log;
SET TimeZone = 'UTC';
-- an infinite bound cannot be sent: evaluated locally
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date < 'infinity'$$);
-- two bounds on one side: the API keeps the last of a repeated filter, so
-- one is sent and the other checked locally
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date > '2025-01-01' AND order_date >= '2024-01-01'$$);

--
-- parameters and stable expressions: evaluated when the scan starts
--
SET plan_cache_mode = force_generic_plan;
PREPARE po_by(text, timestamptz, date, text[]) AS
  SELECT count(*) FROM erp.purchase_orders
  WHERE order_no LIKE $1 AND order_date >= $2 AND order_date::date <= $3 AND status_key = ANY ($4);
SELECT * FROM pd_explain($$EXECUTE po_by('PO-2026%', '2026-03-01', '2026-05-31', '{07000561133549,07000786292571}')$$);
SELECT sim('reset');
EXECUTE po_by('PO-2026%', '2026-03-01', '2026-05-31', '{07000561133549,07000786292571,07000561133549}');
SELECT count(*) FROM truth_po
WHERE order_no LIKE 'PO-2026%' AND order_date >= '2026-03-01' AND order_date::date <= '2026-05-31'
  AND status_key IN ('07000561133549', '07000786292571');
-- the pattern is a parameter, not a constant: checked locally
SELECT params, records FROM pd_log ORDER BY params->>'filter[statusKey]';
RESET plan_cache_mode;
-- now() - interval: the filter holds the value of the expression at the start
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date >= now() - interval '7 days'$$);
BEGIN;
SELECT sim('reset');
SELECT count(*) = (SELECT count(*) FROM truth_po WHERE order_date >= now() - interval '7 days') AS same_rows
FROM erp.purchase_orders WHERE order_date >= now() - interval '7 days';
SELECT params->>'filter[orderDate:gteq]' =
         to_char((now() - interval '7 days' - interval '1 microsecond') AT TIME ZONE 'UTC',
                 'YYYY-MM-DD"T"HH24:MI:SS.US') || '5Z' AS bound_is_now_minus_7_days_minus_half_us
FROM pd_log;
COMMIT;
-- a value from a subquery (an init plan): "rows newer than my copy"
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE updated_at > (SELECT max(updated_at) - interval '30 days' FROM truth_po)$$);

--
-- what is not pushed: OR, IS NULL, functions of a column, column against
-- column, numeric and jsonb columns; pushable conditions beside them are
--
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE status_key = '07000011451593' OR vendor_key = '09000822751009'$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date IS NULL AND lower(title) = 'mro consumables' AND approved_at > completed_at$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE total_gross_value > 5000 AND shipment_address->>'city' = 'Berlin' AND status_key = '07000011451593'$$);
SELECT sim('reset');
SELECT count(*) = (SELECT count(*) FROM truth_po WHERE total_gross_value > 5000 AND status_key = '07000011451593') AS same_rows
FROM erp.purchase_orders WHERE total_gross_value > 5000 AND status_key = '07000011451593';
SELECT sum(records) = (SELECT count(*) FROM truth_po WHERE status_key = '07000011451593') AS served_status_matches
FROM pd_log;

--
-- ORDER BY and LIMIT: sort[F] on date-time columns; per_page shrinks to
-- the limit and no page past it is fetched.  Where the API puts records
-- without a value is unspecified: the sorted request filters them out, and
-- another request reads them (sorting.sql tests every placement).
--
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders ORDER BY order_date LIMIT 5$$);
SELECT sim('reset');
SELECT key, order_date FROM erp.purchase_orders ORDER BY order_date LIMIT 5;
SELECT params, per_page, records FROM pd_log;
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders ORDER BY order_date DESC NULLS LAST LIMIT 5$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders ORDER BY order_date DESC LIMIT 5$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE order_date >= '2026-01-01' ORDER BY order_date DESC LIMIT 5 OFFSET 3$$);
SELECT sim('reset');
SELECT key, order_date FROM erp.purchase_orders WHERE order_date >= '2026-01-01'
ORDER BY order_date DESC LIMIT 5 OFFSET 3;
SELECT count(*) AS requests, sum(records) AS records FROM pd_log;
-- a limit bigger than a page: pages of 100 until it is reached
SELECT sim('reset');
SELECT count(*) FROM (SELECT key FROM erp.purchase_orders ORDER BY order_date LIMIT 250) s;
SELECT count(*) = 3 AS three_pages, sum(records) = 300 AS records_of_three_pages FROM pd_log;
-- LIMIT without ORDER BY, every condition pushed exactly
SELECT sim('reset');
SELECT count(*) FROM (SELECT key FROM erp.purchase_orders WHERE status_key = '07000561133549' LIMIT 3) s;
SELECT params, per_page, records FROM pd_log;
-- a condition left local (or inexact, as LIKE) keeps the page size: the
-- API's records may fail it
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE status_key = '07000561133549' AND total_gross_value > 100 LIMIT 3$$);
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders WHERE title LIKE 'MRO%' ORDER BY order_date LIMIT 3$$);
-- a sort on a text column stays local (the API puts "" with the NULLs)
SELECT * FROM pd_explain($$SELECT key FROM erp.purchase_orders ORDER BY order_no LIMIT 3$$);

--
-- line items: conditions on parent. columns become filters (or the item
-- request) of purchase-orders; conditions on the lines stay local
--
SELECT * FROM pd_explain($$SELECT line_no, code FROM erp.purchase_order_lines WHERE order_no = 'PO-2024-000001' AND quantity > 1$$);
SELECT sim('reset');
SELECT count(*) = (SELECT count(*) FROM truth_lines WHERE order_no = 'PO-2024-000001') AS same_lines
FROM erp.purchase_order_lines WHERE order_no = 'PO-2024-000001';
SELECT path, params, records FROM pd_log;
SELECT * FROM pd_explain($$SELECT line_no, code FROM erp.purchase_order_lines WHERE order_key IN ('06000372417127', '06000183724462')$$);
SELECT sim('reset');
SELECT order_no, count(*) FROM erp.purchase_order_lines
WHERE order_key IN ('06000372417127', '06000183724462') GROUP BY 1 ORDER BY 1;
SELECT order_no, count(*) FROM truth_lines
WHERE order_key IN ('06000372417127', '06000183724462') GROUP BY 1 ORDER BY 1;
SELECT path, records FROM pd_log ORDER BY path;
SELECT * FROM pd_explain($$SELECT line_no FROM erp.purchase_order_lines WHERE code LIKE 'M%' AND key = 'x'$$);

--
-- joins with a local table: a parameterized path sends each outer row's
-- value, when that is cheaper than one full scan.  25 receipts, a table read
-- in pages of 7 (86 requests for a full scan): 25 small requests win.
--
CREATE TABLE local_receipts AS
  SELECT 'R' || i AS receipt_no,
         (SELECT order_no FROM truth_po ORDER BY key OFFSET i * 20 LIMIT 1) AS po_number
  FROM generate_series(0, 24) i;
ANALYZE local_receipts;
CREATE FOREIGN TABLE po_small (key text, order_no text, order_date timestamptz, title text,
  status_key text) SERVER plant_a OPTIONS (resource 'purchase-orders', page_size '7');
SELECT * FROM pd_explain($$SELECT r.receipt_no, po.key FROM local_receipts r JOIN po_small po ON po.order_no = r.po_number$$);
SELECT sim('reset');
SELECT count(*) AS joined FROM local_receipts r JOIN po_small po ON po.order_no = r.po_number;
SELECT count(*) = (SELECT count(DISTINCT po_number) FROM local_receipts) AS one_request_per_receipt,
       bool_and(params->>'filter[orderNo]' IN (SELECT po_number FROM local_receipts)) AS asked_only_receipts,
       sum(records) = (SELECT count(*) FROM truth_po JOIN local_receipts ON po_number = order_no) AS served_only_matches
FROM pd_log;
-- the same join on the table read in pages of 100 (6 requests for all 600
-- records): one scan is cheaper, and chosen
SELECT * FROM pd_explain($$SELECT r.receipt_no, po.key FROM local_receipts r JOIN erp.purchase_orders po ON po.order_no = r.po_number$$);
-- three receipts: three requests beat six pages
SELECT * FROM pd_explain($$SELECT r.receipt_no, po.key FROM local_receipts r JOIN erp.purchase_orders po ON po.order_no = r.po_number WHERE r.receipt_no IN ('R1', 'R2', 'R3')$$);
-- by key: one item request per outer row; lines by their order
SELECT * FROM pd_explain($$SELECT t.order_no, po.title FROM truth_po t JOIN po_small po ON po.key = t.key WHERE t.order_no LIKE 'PO-2026-00000%'$$);
SELECT * FROM pd_explain($$SELECT r.receipt_no, l.line_no FROM local_receipts r JOIN erp.purchase_order_lines l ON l.order_no = r.po_number WHERE r.receipt_no IN ('R1', 'R2')$$);
SELECT sim('reset');
SELECT count(*) = (SELECT count(*) FROM truth_lines l JOIN local_receipts r ON l.order_no = r.po_number
                   WHERE r.receipt_no IN ('R1', 'R2')) AS same_lines
FROM local_receipts r JOIN erp.purchase_order_lines l ON l.order_no = r.po_number
WHERE r.receipt_no IN ('R1', 'R2');
SELECT count(*) AS requests,
       array_agg(params->>'filter[orderNo]' ORDER BY params->>'filter[orderNo]') =
         (SELECT array_agg(po_number ORDER BY po_number) FROM local_receipts
          WHERE receipt_no IN ('R1', 'R2')) AS asked_for_the_receipts,
       sum(records) = (SELECT count(*) FROM truth_po JOIN local_receipts ON po_number = order_no
                       WHERE receipt_no IN ('R1', 'R2')) AS served_only_matches
FROM pd_log;

--
-- estimates: with use_remote_estimate the API's meta.total sizes the scan
--
CREATE FUNCTION pd_plan_rows(q text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  plan json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
  RETURN (plan->0->'Plan'->>'Plan Rows')::numeric;
END $$;
ALTER FOREIGN TABLE po_small OPTIONS (ADD use_remote_estimate 'true');
SELECT pd_plan_rows($$SELECT * FROM po_small$$) = (SELECT count(*) FROM truth_po) AS total_rows,
       pd_plan_rows($$SELECT * FROM po_small WHERE status_key = '07000561133549'$$) =
         (SELECT count(*) FROM truth_po WHERE status_key = '07000561133549') AS filtered_rows,
       pd_plan_rows($$SELECT * FROM po_small WHERE order_date >= '2026-01-01'$$) =
         (SELECT count(*) FROM truth_po WHERE order_date >= '2026-01-01') AS range_rows;
ALTER FOREIGN TABLE po_small OPTIONS (DROP use_remote_estimate);

--
-- EXPLAIN ANALYZE: requests, pages, bytes; never the token
--
CREATE FUNCTION pd_explain_analyze(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
    IF line ~ 'Makini' THEN
      RETURN NEXT regexp_replace(line, 'bytes received: \d+', 'bytes received: N');
    END IF;
  END LOOP;
END $$;
SELECT * FROM pd_explain_analyze($$SELECT key FROM po_small WHERE order_no IN ('PO-2024-000001', 'PO-2025-000002')$$);
SELECT count(*) AS lines_naming_the_token
FROM pd_explain_analyze($$SELECT key FROM po_small WHERE order_no = 'PO-2024-000001'$$) l
WHERE l LIKE '%tok_%';

--
-- sub-microsecond values (plant_c sends 7 fractional digits): for every
-- value of the data as PostgreSQL sees it, each comparison finds exactly the
-- rows of the local copy
--
CREATE SERVER pd_plant_c FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER pd_plant_c OPTIONS (token 'tok_plant_c');
CREATE FOREIGN TABLE pd_c_po (key text, order_date timestamptz, due_at timestamptz,
  created_at timestamptz, updated_at timestamptz, updated_raw text OPTIONS (field 'updatedAt'))
  SERVER pd_plant_c OPTIONS (resource 'purchase-orders');
CREATE TABLE pd_c_truth (LIKE erp.purchase_orders);
SELECT sim_load('plant_c', 'purchase_orders', 'pd_c_truth') > 0 AS loaded;
SELECT count(*) FILTER (WHERE updated_raw ~ '\.\d{7}Z$') > 0 AS has_seven_digits FROM pd_c_po;
-- pd_sub_us(col): for each distinct value v of col, the rows of col >= v,
-- > v, <= v, < v, = v on both sides
CREATE FUNCTION pd_sub_us(col text, OUT values_checked bigint, OUT wrong bigint)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format($q$
    SELECT count(*), count(*) FILTER (WHERE f <> t) FROM (
      SELECT ARRAY[(SELECT count(*) FROM pd_c_po WHERE %1$I >= v), (SELECT count(*) FROM pd_c_po WHERE %1$I > v),
                   (SELECT count(*) FROM pd_c_po WHERE %1$I <= v), (SELECT count(*) FROM pd_c_po WHERE %1$I < v),
                   (SELECT count(*) FROM pd_c_po WHERE %1$I = v)] AS f,
             ARRAY[(SELECT count(*) FROM pd_c_truth WHERE %1$I >= v), (SELECT count(*) FROM pd_c_truth WHERE %1$I > v),
                   (SELECT count(*) FROM pd_c_truth WHERE %1$I <= v), (SELECT count(*) FROM pd_c_truth WHERE %1$I < v),
                   (SELECT count(*) FROM pd_c_truth WHERE %1$I = v)] AS t
      FROM (SELECT DISTINCT %1$I AS v FROM pd_c_truth WHERE %1$I IS NOT NULL) vals) c $q$, col)
  INTO values_checked, wrong;
END $$;
SELECT col, (pd_sub_us(col)).*
FROM unnest(ARRAY['order_date', 'due_at', 'created_at', 'updated_at']) col;

--
-- DIFFERENTIAL: each query runs on the foreign tables and on the local
-- copies ({po}, {lines}, {vendors}, {po7} name the tables); differences =
-- rows one side has and the other lacks (EXCEPT ALL both ways).
--
CREATE TABLE pd_queries (id int PRIMARY KEY, q text NOT NULL);
INSERT INTO pd_queries VALUES
  -- text equality, IN lists, keys
  (1, $$SELECT * FROM {po} WHERE order_no = 'PO-2024-000007'$$),
  (2, $$SELECT key FROM {po} WHERE order_no = 'po-2024-000007'$$),
  (3, $$SELECT key, title FROM {po} WHERE order_no IN ('PO-2024-000001', 'PO-2025-000002', 'PO-2024-000001', NULL, 'PO-NONE')$$),
  (4, $$SELECT key FROM {po} WHERE order_no = ANY ('{}'::text[])$$),
  (5, $$SELECT key FROM {po} WHERE order_no IN (NULL, NULL)$$),
  (6, $$SELECT key FROM {po} WHERE title IN ('', 'MRO consumables')$$),
  (7, $$SELECT key, order_no FROM {po} WHERE key = '06000372417127'$$),
  (8, $$SELECT key FROM {po} WHERE key IN ('06000372417127', 'nope', '06000372417127', NULL, '06000183724462')$$),
  (9, $$SELECT key FROM {po} WHERE key = 'no/such/key'$$),
  (10, $$SELECT key FROM {po} WHERE status_key = '07000011451593' AND vendor_key IN (SELECT vendor_key FROM {po} WHERE order_no LIKE 'PO-2026-00001%')$$),
  -- LIKE, ILIKE
  (11, $$SELECT key, title FROM {po} WHERE title LIKE 'Compressor%'$$),
  (12, $$SELECT key FROM {po} WHERE title LIKE '%calibration%'$$),
  (13, $$SELECT key FROM {po} WHERE title LIKE 'R_paration%n° 1_'$$),
  (14, $$SELECT key FROM {po} WHERE title ILIKE '%RÉPARATION%'$$),
  (15, $$SELECT key FROM {po} WHERE title ILIKE 'annual%' AND title NOT LIKE '%services'$$),
  (16, $$SELECT key FROM {po} WHERE title LIKE '%"DN50"%'$$),
  (17, $$SELECT key FROM {vendors} WHERE name ILIKE '%istanbul%'$$),
  (18, $$SELECT key FROM {vendors} WHERE name LIKE 'Back\\slash%'$$),
  -- date-time comparisons, date casts (time zone sensitive)
  (19, $$SELECT key FROM {po} WHERE order_date >= '2026-06-01' AND order_date < '2026-07-01'$$),
  (20, $$SELECT key FROM {po} WHERE order_date::date = '2025-03-01'$$),
  (21, $$SELECT key FROM {po} WHERE order_date::date BETWEEN '2024-12-31' AND '2025-01-01'$$),
  (22, $$SELECT key FROM {po} WHERE order_date::date > '2026-11-20' OR order_date::date < '2024-01-05'$$),
  (23, $$SELECT key FROM {po} WHERE order_date = '2025-03-01 00:00:00+00'$$),
  (24, $$SELECT key FROM {po} WHERE order_date > '2025-03-01'::date AND order_date <= '2025-04-01 12:00'::timestamp$$),
  (25, $$SELECT key FROM {po} WHERE order_date < 'infinity' AND order_date > '-infinity' AND order_date > '2026-11-01'$$),
  (26, $$SELECT key FROM {po} WHERE order_date >= now() - interval '10 years' AND order_date <= make_timestamptz(2024, 3, 1, 0, 0, 0)$$),
  (27, $$SELECT key FROM {po} WHERE updated_at > (SELECT max(updated_at) - interval '60 days' FROM truth_po)$$),
  (28, $$SELECT key FROM {po} WHERE due_at::date = order_date::date + 30$$),
  -- unpushable columns, OR, NULLs
  (29, $$SELECT key FROM {po} WHERE status_key = '07000011451593' AND total_gross_value > 5000$$),
  (30, $$SELECT key FROM {po} WHERE status_key = '07000011451593' OR vendor_key = '09000822751009'$$),
  (31, $$SELECT key FROM {po} WHERE order_date IS NULL AND status_key = '07000561133549'$$),
  (32, $$SELECT key FROM {po} WHERE approved_at IS NOT NULL AND completed_at < approved_at$$),
  (33, $$SELECT key FROM {po} WHERE order_no = NULL OR title IS NULL$$),
  (34, $$SELECT key FROM {po} WHERE title = ''$$),
  -- ORDER BY ... LIMIT (NULL dates), OFFSET
  (35, $$SELECT key, order_date FROM {po} ORDER BY order_date LIMIT 10$$),
  (36, $$SELECT order_date FROM {po} ORDER BY order_date DESC LIMIT 60$$),
  (37, $$SELECT key, order_date FROM {po} ORDER BY order_date DESC NULLS LAST LIMIT 10$$),
  (38, $$SELECT key FROM {po} WHERE order_date >= '2026-01-01' ORDER BY order_date DESC LIMIT 5 OFFSET 3$$),
  (39, $$SELECT key FROM {po} WHERE status_key = '07000398872082' ORDER BY approved_at NULLS FIRST, key LIMIT 20$$),
  (40, $$SELECT count(*) FROM (SELECT key FROM {po} WHERE status_key = '07000561133549' ORDER BY key LIMIT 7) s$$),
  -- line items
  (41, $$SELECT * FROM {lines} WHERE order_no = 'PO-2024-000001'$$),
  (42, $$SELECT order_key, line_no, quantity FROM {lines} WHERE order_key IN ('06000372417127', '06000183724462') AND quantity > 1$$),
  (43, $$SELECT order_no, line_no FROM {lines} WHERE order_no LIKE 'PO-2026-00001%' AND code LIKE '9%'$$),
  (44, $$SELECT order_no, line_no FROM {lines} WHERE key = (SELECT min(key) FROM truth_lines)$$),
  -- joins with a local table
  (45, $$SELECT r.receipt_no, po.key, po.title FROM local_receipts r JOIN {po7} po ON po.order_no = r.po_number$$),
  (46, $$SELECT r.receipt_no, l.line_no FROM local_receipts r JOIN {lines} l ON l.order_no = r.po_number WHERE r.receipt_no IN ('R1', 'R2', 'R20')$$),
  (47, $$SELECT t.order_no, po.title FROM truth_po t JOIN {po7} po ON po.key = t.key WHERE t.order_no LIKE 'PO-2026-00000%'$$),
  (48, $$SELECT r.receipt_no, po.key FROM local_receipts r LEFT JOIN {po7} po ON po.order_no = r.po_number AND po.order_date >= '2025-06-01'$$),
  (49, $$SELECT v.name, count(*) FROM {vendors} v JOIN {po} po ON po.vendor_key = v.key WHERE v.name LIKE 'S%' GROUP BY 1$$),
  -- more LIKE / ILIKE, vendors
  (50, $$SELECT key FROM {po} WHERE title LIKE '保守%'$$),
  (51, $$SELECT key FROM {vendors} WHERE name ILIKE '%ŁÓDŹ%'$$),
  (52, $$SELECT key FROM {vendors} WHERE name LIKE '%\%%' OR name LIKE '%Ε.'$$),
  (53, $$SELECT key FROM {vendors} WHERE name ILIKE '%ΑΣ%' OR name ILIKE '%ελλην%'$$),
  (54, $$SELECT key FROM {vendors} WHERE name LIKE 'O''Brien & Sons "Quoted"'$$),
  (55, $$SELECT key, name FROM {vendors} WHERE name = 'Nord' || chr(10) || 'Süd Handels KG'$$),
  (56, $$SELECT key FROM {vendors} WHERE created_at::date <= '2019-08-01' AND name ILIKE '%s%'$$),
  (57, $$SELECT key FROM {po} WHERE title ILIKE '%i%' AND title LIKE '%_ _%'$$),
  (58, $$SELECT order_no, line_no FROM {lines} WHERE order_key = (SELECT key FROM truth_po WHERE order_no = 'PO-2025-000002')$$);

-- pd_diff(q, with_log): q's rows on the local copies, the rows the two
-- sides differ by (the foreign side is read once), and with_log, what the
-- foreign side asked the API (the simulator's log after entry pd.seq):
-- item requests (key), list requests with filter / sort / a per_page
-- shrunk to a LIMIT, full scans, or nothing
CREATE FUNCTION pd_diff(q text, with_log boolean, OUT rows bigint, OUT differences bigint,
                        OUT requests text)
LANGUAGE plpgsql AS $$
DECLARE
  f text := replace(replace(replace(replace(q,
              '{po}', 'erp.purchase_orders'), '{lines}', 'erp.purchase_order_lines'),
              '{vendors}', 'erp.vendors'), '{po7}', 'po_small');
  t text := replace(replace(replace(replace(q,
              '{po}', 'truth_po'), '{lines}', 'truth_lines'),
              '{vendors}', 'truth_vendors'), '{po7}', 'truth_po');
  since int := current_setting('pd.seq')::int;
BEGIN
  EXECUTE 'CREATE TEMP TABLE pd_got AS ' || f;
  EXECUTE 'CREATE TEMP TABLE pd_want AS ' || t;
  SELECT count(*) INTO rows FROM pd_want;
  differences := rows_differ('pd_got', 'pd_want');
  DROP TABLE pd_got, pd_want;
  IF with_log THEN
    TRUNCATE pd_req;
    EXECUTE format($c$COPY pd_req FROM PROGRAM 'curl -s -S --max-time 20 "http://127.0.0.1:18765/_sim/requests?since=%s"' WITH (FORMAT csv, HEADER)$c$, since);
    PERFORM set_config('pd.seq', coalesce(max(seq), since)::text, false) FROM pd_req;
    SELECT coalesce(string_agg(DISTINCT kind, ', '), 'none') INTO requests
    FROM (SELECT coalesce(nullif(concat_ws('+',
                   CASE WHEN path ~ '^/api/erp/(purchase-orders|vendors)/' THEN 'key' END,
                   CASE WHEN params::text ~ '"filter\[' THEN 'filter' END,
                   CASE WHEN params::text ~ '"sort\[' THEN 'sort' END,
                   CASE WHEN params->>'per_page' NOT IN ('100', '7') THEN 'limit' END), ''),
                   'full scan') AS kind
          FROM pd_req) k;
  END IF;
END $$;

-- every query, in UTC: most return rows, none differs
CREATE TEMP TABLE pd_req (LIKE sim_log);
SELECT sim('reset'), set_config('pd.seq', '0', false);
SELECT id, rows, differences, requests FROM pd_queries, LATERAL pd_diff(q, true) ORDER BY id;
-- and, for the queries on date-times, in other time zones (date casts and
-- date constants move)
SET TimeZone = 'Asia/Tokyo';
SELECT current_setting('TimeZone') AS tz, count(*) AS queries, sum(rows) AS rows,
       count(*) FILTER (WHERE differences <> 0) AS queries_differing
FROM pd_queries, LATERAL pd_diff(q, false) WHERE q ~ '_(date|at)\M';
SET TimeZone = 'America/Los_Angeles';
SELECT current_setting('TimeZone') AS tz, count(*) AS queries, sum(rows) AS rows,
       count(*) FILTER (WHERE differences <> 0) AS queries_differing
FROM pd_queries, LATERAL pd_diff(q, false) WHERE q ~ '_(date|at)\M';
SET TimeZone = 'Pacific/Chatham';
SELECT current_setting('TimeZone') AS tz, count(*) AS queries, sum(rows) AS rows,
       count(*) FILTER (WHERE differences <> 0) AS queries_differing
FROM pd_queries, LATERAL pd_diff(q, false) WHERE q ~ '_(date|at)\M';
SET TimeZone = 'Asia/Kathmandu';
SELECT current_setting('TimeZone') AS tz, count(*) AS queries, sum(rows) AS rows,
       count(*) FILTER (WHERE differences <> 0) AS queries_differing
FROM pd_queries, LATERAL pd_diff(q, false) WHERE q ~ '_(date|at)\M';
SET TimeZone = 'UTC';

-- parameters ($n of a generic plan): the same statement on both sides
SET plan_cache_mode = force_generic_plan;
PREPARE f_po(text, timestamptz, date, text[]) AS
  SELECT key FROM erp.purchase_orders
  WHERE (order_no LIKE $1 OR $1 IS NULL) AND order_date >= $2 AND order_date::date <= $3
    AND status_key = ANY ($4);
PREPARE t_po(text, timestamptz, date, text[]) AS
  SELECT key FROM truth_po
  WHERE (order_no LIKE $1 OR $1 IS NULL) AND order_date >= $2 AND order_date::date <= $3
    AND status_key = ANY ($4);
PREPARE f_key(text) AS SELECT key, title FROM erp.purchase_orders WHERE key = $1;
PREPARE t_key(text) AS SELECT key, title FROM truth_po WHERE key = $1;
-- pd_diff_tables(): rows of pd_want, and the rows pd_got and pd_want differ by
CREATE FUNCTION pd_diff_tables(OUT rows bigint, OUT differences bigint) LANGUAGE plpgsql AS $$
BEGIN
  SELECT count(*) INTO rows FROM pd_want;
  differences := rows_differ('pd_got', 'pd_want');
END $$;
CREATE TABLE pd_got AS EXECUTE f_po('PO-2026%', '2026-03-01', '2026-05-31', '{07000561133549,07000786292571,NULL,07000561133549}');
CREATE TABLE pd_want AS EXECUTE t_po('PO-2026%', '2026-03-01', '2026-05-31', '{07000561133549,07000786292571,NULL,07000561133549}');
SELECT * FROM pd_diff_tables();
DROP TABLE pd_got, pd_want;
SET TimeZone = 'Pacific/Kiritimati';
CREATE TABLE pd_got AS EXECUTE f_po(NULL, '2025-01-01 00:00:00.5', '2025-06-30', '{07000561133549,07000173713060}');
CREATE TABLE pd_want AS EXECUTE t_po(NULL, '2025-01-01 00:00:00.5', '2025-06-30', '{07000561133549,07000173713060}');
SELECT * FROM pd_diff_tables();
DROP TABLE pd_got, pd_want;
SET TimeZone = 'UTC';
CREATE TABLE pd_got AS EXECUTE f_key('06000183724462');
CREATE TABLE pd_want AS EXECUTE t_key('06000183724462');
SELECT * FROM pd_diff_tables();
DROP TABLE pd_got, pd_want;
CREATE TABLE pd_got AS EXECUTE f_key('');
CREATE TABLE pd_want AS EXECUTE t_key('');
SELECT * FROM pd_diff_tables();
DROP TABLE pd_got, pd_want;
RESET plan_cache_mode;
DEALLOCATE ALL;

-- leave what later suites expect: no extra servers
DROP SERVER pd_plant_c CASCADE;
DROP TABLE pd_c_truth;
RESET TimeZone;
RESET DateStyle;

-- item paths exist only for purchase orders and vendors (fdw/API.md §2);
-- other keys, and keys that are not one path segment, go as filter[key]
EXPLAIN (VERBOSE, COSTS OFF) SELECT code FROM erp.currencies WHERE key = 'c1';
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM erp.purchase_orders WHERE key = '..';
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM erp.vendors WHERE key = '.';
SELECT count(*) AS none FROM erp.purchase_orders WHERE key IN ('.', '..');

-- filter values and keys reach the API as UTF-8 whatever the database
-- encoding: in a LATIN1 database the pushed filters find the rows that local
-- filters (which cannot be pushed) find in this UTF-8 one
SELECT count(*) AS utf8_eq FROM erp.purchase_orders
WHERE title || '' = 'Ersatzteile für Presse P-01' \gset
SELECT count(*) AS utf8_like FROM erp.purchase_orders
WHERE left(title, 15) = 'Ersatzteile für' \gset
CREATE TEMP TABLE truth_c_vendors (LIKE erp.vendors);
SELECT sim_load('plant_c', 'vendors', 'truth_c_vendors') > 0 AS c_vendors_loaded;
SELECT count(*) AS c_mueller FROM truth_c_vendors WHERE name = 'Müller GmbH' \gset
CREATE DATABASE makini_latin1 ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0;
\c makini_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION makini_fdw;
CREATE SERVER plant_a FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_a OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE po (key text) SERVER plant_a OPTIONS (resource 'purchase-orders');
ALTER FOREIGN TABLE po ADD COLUMN title text;
COPY (SELECT) TO PROGRAM 'curl -s -S --max-time 20 "http://127.0.0.1:18765/_sim/reset" >/dev/null';
SELECT :utf8_eq > 0 AS has_rows,
       (SELECT count(*) FROM po WHERE title = 'Ersatzteile für Presse P-01') = :utf8_eq AS pushed_eq,
       (SELECT count(*) FROM po WHERE title LIKE 'Ersatzteile für%') = :utf8_like AS pushed_like;
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM po WHERE title = 'Ersatzteile für Presse P-01';
-- strings with \u escapes (plant_c escapes every non-ASCII character) are
-- read as UTF-8 and converted
CREATE SERVER plant_c FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_c OPTIONS (token 'tok_plant_c');
CREATE FOREIGN TABLE vendors_c (key text, name text) SERVER plant_c OPTIONS (resource 'vendors');
SELECT :c_mueller > 0 AS has_rows,
       count(*) = :c_mueller AND bool_and(name = 'Müller GmbH') AS read_back
FROM vendors_c WHERE name = 'Müller GmbH';
-- remote text in messages is converted to the database's encoding: "é"
-- exists in LATIN1, "✓" does not (written \xNN)
CREATE SERVER plant_a_once FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_a_once OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE po_once (key text) SERVER plant_a_once OPTIONS (resource 'purchase-orders');
COPY (SELECT) TO PROGRAM 'curl -s -S --max-time 20 "http://127.0.0.1:18765/_sim/fault?kind=status&status=503&conn=plant_a&message=caf%C3%A9%20%E2%9C%93%20end" >/dev/null';
DO $$
DECLARE
  d text;
BEGIN
  PERFORM count(*) FROM po_once;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'reply: %', split_part(d, E'\n', 1);
END $$;

\c contrib_regression
DROP DATABASE makini_latin1;
-- what the LATIN1 database sent: the values in UTF-8, and the API served
-- only their matches (rows the local recheck finds do not show that)
SELECT params, records = CASE
         WHEN params ? 'filter[title]' THEN :utf8_eq
         WHEN params ? 'filter[title:startsWith]' THEN
           (SELECT count(*) FROM truth_po WHERE title ILIKE 'Ersatzteile für%')
         WHEN params ? 'filter[name]' THEN :c_mueller END AS served_only_matches
FROM pd_log WHERE params <> '{}' ORDER BY seq;
