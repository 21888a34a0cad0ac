--
-- contract: wherever fdw/API.md lets the API behave in several ways, the
-- simulator can (its behaviour knobs, /_sim/behave), and every query is
-- exact under each way: pages shorter than per_page before the last, empty
-- pages with a next link, no meta.total / last_page / links.last, records
-- that change between pages (never returned twice), and the limit of 8
-- requests at once per connection (429, retried)
--
SELECT sim('reset');

-- q_differ(a, b): rows of query a missing from query b and the reverse (EXCEPT ALL)
CREATE FUNCTION q_differ(a text, b text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM (((%1$s) EXCEPT ALL (%2$s)) UNION ALL ((%2$s) EXCEPT ALL (%1$s))) d',
                 a, b) INTO n;
  RETURN n;
END $$;

-- the orders of three vendors, joined through a parameterized path to a
-- table read in pages of 5: each vendor's orders take several pages
CREATE TABLE ct_vendors AS
  SELECT vendor_key FROM truth_po GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3;
ANALYZE ct_vendors;
CREATE FOREIGN TABLE ct_po5 (key text, vendor_key text, order_no text, title text)
  SERVER plant_a OPTIONS (resource 'purchase-orders', page_size '5');
-- (the local recheck's Filter line left out: PostgreSQL 17 prints its operands the other way round)
SELECT * FROM pd_explain($$SELECT po.* FROM ct_vendors v JOIN ct_po5 po USING (vendor_key)$$) p
  WHERE p !~ '^\s*Filter: ';

-- ct_diffs(knobs): with the knobs set on plant_a, the differences from the
-- ground truth of full scans of orders and lines, a pushed filter, a LIMIT
-- with a pushed sort, and the parameterized join
CREATE FUNCTION ct_diffs(knobs text, OUT orders bigint, OUT lines bigint,
                         OUT filtered bigint, OUT limited bigint, OUT joined bigint)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM sim('reset');
  IF knobs <> '' THEN
    PERFORM sim('behave?conn=plant_a&' || knobs);
  END IF;
  orders := rows_differ('erp.purchase_orders', 'truth_po');
  lines := rows_differ('erp.purchase_order_lines', 'truth_lines');
  filtered := q_differ($q$SELECT * FROM erp.purchase_orders WHERE order_date >= '2025-06-01'$q$,
                       $q$SELECT * FROM truth_po WHERE order_date >= '2025-06-01'$q$);
  limited := q_differ('SELECT * FROM erp.purchase_orders ORDER BY key LIMIT 150',
                      'SELECT * FROM truth_po ORDER BY key LIMIT 150');
  joined := q_differ('SELECT po.* FROM ct_vendors v JOIN ct_po5 po USING (vendor_key)',
                     'SELECT t.key, t.vendor_key, t.order_no, t.title
                      FROM ct_vendors v JOIN truth_po t USING (vendor_key)');
END $$;

-- every way the contract allows: 0 differences each time
SELECT knobs, d.*
FROM unnest(ARRAY['',
                  'max_per_page=40',
                  'max_per_page=40&meta_per_page=asked',
                  'max_per_page=7',
                  'empty_pages=1',
                  'empty_pages=3&max_per_page=60',
                  'meta=null',
                  'meta=absent',
                  'meta=none',
                  'meta=none&empty_pages=2&max_per_page=45']) WITH ORDINALITY AS k(knobs, n),
     LATERAL ct_diffs(knobs) d
ORDER BY n;

-- the knobs were in effect: the last variant's requests got pages shorter
-- than asked before the last, and empty pages with a next link
SELECT bool_or(records > 0 AND records < (params->>'per_page')::int
               AND coalesce(params->>'page', '1')::int < max_page) AS short_pages_seen,
       bool_or(records = 0 AND coalesce(params->>'page', '1')::int < max_page) AS empty_pages_seen,
       bool_or(params ? 'filter[vendorKey]') AS join_parameterized
FROM (SELECT *, max(coalesce(params->>'page', '1')::int)
                  OVER (PARTITION BY params - 'page') AS max_page
      FROM sim_requests() WHERE status = 200) r;

-- planning with use_remote_estimate when replies carry no meta.total
SELECT sim('reset');
SELECT sim('behave?conn=plant_a&meta=none');
ALTER FOREIGN TABLE ct_po5 OPTIONS (ADD use_remote_estimate 'true');
SELECT q_differ($q$SELECT * FROM ct_po5 WHERE order_no LIKE 'PO-2025%'$q$,
                $q$SELECT key, vendor_key, order_no, title FROM truth_po WHERE order_no LIKE 'PO-2025%'$q$)
  AS estimated_without_meta_diff;
ALTER FOREIGN TABLE ct_po5 OPTIONS (DROP use_remote_estimate);

--
-- records that change between page 1 and page 2 of a scan: page-based
-- paging then repeats a record (insert before it) or skips one (delete).
-- No key comes twice; every row is the record before or after the change;
-- a record there before and after is missing only when one was deleted.
--
CREATE FUNCTION ct_mutated(op text, tab text, truth regclass, record_key text,
                           OUT keys_twice bigint, OUT rows_neither bigint,
                           OUT missing_allowed boolean, OUT data_changed boolean,
                           OUT mutated_between_pages boolean)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM sim('reset');
  PERFORM sim('behave?conn=plant_a&mutate_after_page=1&mutate_op=' || op);
  EXECUTE format('CREATE TEMP TABLE ct_got AS SELECT * FROM erp.%I', tab);
  CREATE TEMP TABLE ct_after (LIKE ct_got);
  PERFORM sim_load('plant_a', tab, 'ct_after');
  SELECT count(*) INTO keys_twice FROM (SELECT key FROM ct_got GROUP BY 1 HAVING count(*) > 1) d;
  EXECUTE format('SELECT count(*) FROM (TABLE ct_got EXCEPT ALL (TABLE %s UNION ALL TABLE ct_after)) d',
                 truth) INTO rows_neither;
  -- records (orders: a line's order_key) there before and after, not returned
  EXECUTE format('SELECT count(*) <= %s FROM ((SELECT %I FROM %s INTERSECT SELECT %I FROM ct_after)
                  EXCEPT SELECT %I FROM ct_got) d',
                 CASE op WHEN 'delete' THEN 1 ELSE 0 END, record_key, truth, record_key,
                 record_key) INTO missing_allowed;
  data_changed := rows_differ(truth, 'ct_after') > 0;
  SELECT count(*) = 1 INTO mutated_between_pages FROM sim_requests()
  WHERE fault = 'mutate_' || op AND coalesce(params->>'page', '1') = '1';
  DROP TABLE ct_got, ct_after;
  PERFORM sim('reset');
END $$;

SELECT op, tab, d.*
FROM (VALUES ('insert', 'purchase_orders', 'truth_po', 'key'),
             ('insert', 'purchase_order_lines', 'truth_lines', 'order_key'),
             ('delete', 'purchase_orders', 'truth_po', 'key'),
             ('delete', 'purchase_order_lines', 'truth_lines', 'order_key'),
             ('update', 'purchase_orders', 'truth_po', 'key'),
             ('update', 'purchase_order_lines', 'truth_lines', 'order_key'))
     AS v(op, tab, truth, record_key),
     LATERAL ct_mutated(op, tab, truth::regclass, record_key) d;
-- /_sim/reset restored the data
SELECT rows_differ('erp.purchase_orders', 'truth_po') AS po_diff_after_reset;

--
-- a connection serves 8 requests at once (fdw/API.md §3): ten scans of one
-- server under an async Append, each request held 1 s by the simulator,
-- put 10 requests on the wire; the ones over 8 are answered 429 with
-- Retry-After: 1 and retried, and every row comes once per scan
--
SELECT sim('reset');
SELECT sim('latency?conn=plant_a&ms=1000');
CREATE VIEW ct_ten AS
  SELECT * FROM erp.vendors UNION ALL SELECT * FROM erp.vendors UNION ALL
  SELECT * FROM erp.vendors UNION ALL SELECT * FROM erp.vendors UNION ALL
  SELECT * FROM erp.vendors UNION ALL SELECT * FROM erp.vendors UNION ALL
  SELECT * FROM erp.vendors UNION ALL SELECT * FROM erp.vendors UNION ALL
  SELECT * FROM erp.vendors UNION ALL SELECT * FROM erp.vendors;
EXPLAIN (COSTS OFF) SELECT * FROM ct_ten;
CREATE TEMP TABLE ct_ten_rows AS SELECT * FROM ct_ten;
SELECT q_differ('TABLE ct_ten_rows', 'SELECT t.* FROM truth_vendors t, generate_series(1, 10)')
  AS ten_scans_diff;
SELECT count(*) FILTER (WHERE status = 429) > 0 AS some_answered_429,
       count(*) FILTER (WHERE status = 200) = 10 AS ten_pages_served,
       count(*) FILTER (WHERE status NOT IN (200, 429)) AS other_statuses
FROM sim_requests() WHERE path = '/api/erp/vendors';
SELECT sim('reset');
