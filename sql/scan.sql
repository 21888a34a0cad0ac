--
-- scan: full scans of every imported table return exactly the simulator's
-- own data (its ground truth, loaded from /_sim/data/...), across many pages
--
SELECT sim('reset');

-- ground truth, in local tables of the same shape as the foreign tables
CREATE TABLE truth_po (LIKE erp.purchase_orders);
CREATE TABLE truth_vendors (LIKE erp.vendors);
CREATE TABLE truth_statuses (LIKE erp.purchase_order_statuses);
CREATE TABLE truth_currencies (LIKE erp.currencies);
CREATE TABLE truth_uom (LIKE erp.units_of_measure);
SELECT sim_load('plant_a', 'purchase_orders', 'truth_po') > 100 AS orders_loaded,
       sim_load('plant_a', 'vendors', 'truth_vendors') > 10 AS vendors_loaded,
       sim_load('plant_a', 'purchase_order_statuses', 'truth_statuses') > 0 AS statuses_loaded,
       sim_load('plant_a', 'currencies', 'truth_currencies') > 0 AS currencies_loaded,
       sim_load('plant_a', 'units_of_measure', 'truth_uom') > 0 AS uom_loaded;

-- the same rows, value for value (EXCEPT ALL both ways: also NULLs and duplicates)
CREATE FUNCTION rows_differ(a regclass, b regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL TABLE %s) UNION ALL (TABLE %s EXCEPT ALL TABLE %s)) d',
                 a, b, b, a) INTO n;
  RETURN n;
END $$;
SELECT rows_differ('erp.purchase_orders', 'truth_po') AS po_diff,
       rows_differ('erp.vendors', 'truth_vendors') AS vendor_diff,
       rows_differ('erp.purchase_order_statuses', 'truth_statuses') AS status_diff,
       rows_differ('erp.currencies', 'truth_currencies') AS currency_diff,
       rows_differ('erp.units_of_measure', 'truth_uom') AS uom_diff;

-- counts, sums of every numeric column and NULLs per column agree
SELECT f.n = t.n AS count_ok, f.net = t.net AS net_ok, f.tax = t.tax AS tax_ok,
       f.gross = t.gross AS gross_ok, f.nulls = t.nulls AS nulls_ok,
       t.nulls > 0 AS data_has_nulls
FROM (SELECT count(*) n, sum(total_net_value) net, sum(total_tax_value) tax,
             sum(total_gross_value) gross,
             sum(num_nulls(title, description, order_date, due_at, approved_at,
                           completed_at, shipment_date, total_net_value, total_tax_value,
                           total_gross_value, shipment_address, custom_fields)) nulls
      FROM erp.purchase_orders) f,
     (SELECT count(*) n, sum(total_net_value) net, sum(total_tax_value) tax,
             sum(total_gross_value) gross,
             sum(num_nulls(title, description, order_date, due_at, approved_at,
                           completed_at, shipment_date, total_net_value, total_tax_value,
                           total_gross_value, shipment_address, custom_fields)) nulls
      FROM truth_po) t;

-- every page was fetched: one request per page of per_page 100, each page
-- asked once, the last one answered with next = null
SELECT sim('reset');
SELECT count(*) > 0 FROM erp.purchase_orders;
SELECT count(*) = ceil((SELECT count(*) FROM truth_po) / 100.0) AS one_request_per_page,
       count(DISTINCT coalesce(params->>'page', '1')) = count(*) AS no_page_twice,
       bool_and(params->>'per_page' = '100') AS per_page_100,
       bool_and(api_version = 'v1') AS api_version_sent,
       bool_and(authorized) AS bearer_sent,
       bool_and(accept_encoding LIKE '%gzip%') AS gzip_accepted,
       bool_and(user_agent LIKE 'makini_fdw/%') AS user_agent_sent
FROM sim_requests() WHERE path = '/api/erp/purchase-orders';

-- a table's page_size wins over the server's; small pages, same rows
CREATE FOREIGN TABLE po_small_pages (key text, order_no text, total_gross_value numeric)
  SERVER plant_a OPTIONS (resource 'purchase-orders', page_size '7');
SELECT sim('reset');
SELECT count(*) = (SELECT count(*) FROM truth_po) AS same_count,
       sum(total_gross_value) = (SELECT sum(total_gross_value) FROM truth_po) AS same_sum
FROM po_small_pages;
SELECT count(*) = ceil((SELECT count(*) FROM truth_po) / 7.0) AS pages_of_7,
       bool_and(params->>'per_page' = '7') AS per_page_7
FROM sim_requests() WHERE path = '/api/erp/purchase-orders';

-- a server-level page_size, and the table's resource default (name, _ -> -)
CREATE SERVER plant_a_big FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', page_size '500');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_a_big OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE vendors (key text, name text) SERVER plant_a_big;
SELECT sim('reset');
SELECT count(*) AS vendor_diff FROM (
  (SELECT key, name FROM vendors EXCEPT ALL SELECT key, name FROM truth_vendors) UNION ALL
  (SELECT key, name FROM truth_vendors EXCEPT ALL SELECT key, name FROM vendors)) d;
SELECT DISTINCT path, params->>'per_page' AS per_page FROM sim_requests();

-- Unicode, quotes, backslashes and newlines come through unchanged
SELECT count(*) > 0 AS has_non_ascii FROM erp.vendors WHERE name !~ '^[ -~]*$';
SELECT count(*) AS unicode_diff FROM erp.vendors v JOIN truth_vendors t USING (key)
WHERE v.name IS DISTINCT FROM t.name OR octet_length(v.name) IS DISTINCT FROM octet_length(t.name);
