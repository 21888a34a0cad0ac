--
-- types: every column type and value form of README.md — exact
-- numerics from strings and JSON numbers, ISO 8601 date-times in all their
-- forms whatever the session time zone, booleans, "" as NULL, jsonb, nested
-- paths — compared with the simulator's ground truth
--
SELECT sim('reset');

-- the raw text of date-time and amount fields, next to their typed values
CREATE FOREIGN TABLE po_forms (
  key text,
  order_date timestamptz,
  order_date_raw text OPTIONS (field 'orderDate'),
  order_day date OPTIONS (field 'orderDate'),
  order_ts timestamp OPTIONS (field 'orderDate'),
  gross numeric OPTIONS (field 'totalGrossValue'),
  gross_raw text OPTIONS (field 'totalGrossValue'),
  gross_2 numeric(14,2) OPTIONS (field 'totalGrossValue'),
  city text OPTIONS (field 'shipmentAddress.city'),
  address json OPTIONS (field 'shipmentAddress'),
  order_no_json jsonb OPTIONS (field 'orderNo'),
  missing_field text OPTIONS (field 'noSuchField'),
  missing_nested integer OPTIONS (field 'shipmentAddress.noSuch.deeper'))
  SERVER plant_a OPTIONS (resource 'purchase-orders');

-- every form the API sends appears in the data
SELECT count(*) FILTER (WHERE order_date_raw ~ 'Z$') > 0 AS has_z,
       count(*) FILTER (WHERE order_date_raw ~ '\.\d+Z$') > 0 AS has_fraction,
       count(*) FILTER (WHERE order_date_raw ~ '[+-]\d\d:\d\d$') > 0 AS has_offset,
       count(*) FILTER (WHERE order_date_raw ~ '^\d{4}-\d\d-\d\d$') > 0 AS has_date_only,
       count(*) FILTER (WHERE order_date_raw = '') > 0 AS has_empty
FROM po_forms;

-- date-times: the same instants whatever the session time zone
SET TimeZone = 'Pacific/Kiritimati';
SELECT count(*) AS wrong_instants FROM po_forms f JOIN truth_po t USING (key)
WHERE f.order_date IS DISTINCT FROM t.order_date;
SET TimeZone = 'America/Los_Angeles';
SELECT count(*) AS wrong_instants FROM po_forms f JOIN truth_po t USING (key)
WHERE f.order_date IS DISTINCT FROM t.order_date;
-- date-only means 00:00 UTC of that day
SELECT count(*) > 0 AS some, bool_and(order_date = (order_date_raw || ' 00:00:00+00')::timestamptz) AS midnight_utc
FROM po_forms WHERE order_date_raw ~ '^\d{4}-\d\d-\d\d$';
-- offsets and fractions are honoured exactly
SELECT bool_and(order_date = order_date_raw::timestamptz) AS offsets_ok
FROM po_forms WHERE order_date_raw ~ '[+-]\d\d:\d\d$' OR order_date_raw ~ '\.\d+Z$';
RESET TimeZone;
-- date and timestamp columns take the UTC date / wall-clock time
SELECT count(*) AS wrong_days FROM po_forms
WHERE order_day IS DISTINCT FROM (order_date AT TIME ZONE 'UTC')::date
   OR order_ts IS DISTINCT FROM order_date AT TIME ZONE 'UTC';
-- "" is NULL for non-text types, stays "" for text
SELECT bool_and(order_date IS NULL AND order_day IS NULL) AS empty_is_null,
       bool_and(order_date_raw = '') AS text_keeps_empty
FROM po_forms WHERE order_date_raw = '';

-- numerics: exact decimal text (scale kept), typmod applied
SELECT count(*) AS inexact FROM po_forms WHERE gross_raw <> '' AND gross::text <> gross_raw;
SELECT count(*) AS wrong_rounding FROM po_forms WHERE gross_2 IS DISTINCT FROM round(gross, 2);

-- nested paths, json, jsonb of a string, missing fields
SELECT count(*) AS wrong_city FROM po_forms f JOIN truth_po t USING (key)
WHERE f.city IS DISTINCT FROM t.shipment_address->>'city';
SELECT count(*) AS wrong_json FROM po_forms f JOIN truth_po t USING (key)
WHERE f.address::jsonb IS DISTINCT FROM t.shipment_address;
SELECT count(*) AS wrong_jsonb_string FROM po_forms f JOIN truth_po t USING (key)
WHERE f.order_no_json IS DISTINCT FROM to_jsonb(t.order_no);
SELECT count(*) FILTER (WHERE missing_field IS NOT NULL OR missing_nested IS NOT NULL) AS not_null
FROM po_forms;

-- a second connection whose ERP sends amounts as JSON numbers and booleans
-- as strings "true"/"false"
CREATE SERVER plant_b FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_b OPTIONS (token 'tok_plant_b');
CREATE SCHEMA erp_b;
IMPORT FOREIGN SCHEMA makini FROM SERVER plant_b INTO erp_b;
CREATE TABLE truth_b_po (LIKE erp_b.purchase_orders);
CREATE TABLE truth_b_lines (LIKE erp_b.purchase_order_lines);
CREATE TABLE truth_b_currencies (LIKE erp_b.currencies);
CREATE TABLE truth_b_statuses (LIKE erp_b.purchase_order_statuses);
SELECT sim_load('plant_b', 'purchase_orders', 'truth_b_po') > 0 AS loaded,
       sim_load('plant_b', 'purchase_order_lines', 'truth_b_lines') > 0 AS lines_loaded,
       sim_load('plant_b', 'currencies', 'truth_b_currencies') > 0 AS cur_loaded,
       sim_load('plant_b', 'purchase_order_statuses', 'truth_b_statuses') > 0 AS st_loaded;
CREATE FOREIGN TABLE b_raw (key text, gross jsonb OPTIONS (field 'totalGrossValue'))
  SERVER plant_b OPTIONS (resource 'purchase-orders');
SELECT count(*) FILTER (WHERE jsonb_typeof(gross) = 'number') > 0 AS sends_numbers FROM b_raw;
SELECT rows_differ('erp_b.purchase_orders', 'truth_b_po') AS po_diff,
       rows_differ('erp_b.purchase_order_lines', 'truth_b_lines') AS line_diff,
       rows_differ('erp_b.currencies', 'truth_b_currencies') AS currency_diff,
       rows_differ('erp_b.purchase_order_statuses', 'truth_b_statuses') AS status_diff;
SELECT (SELECT sum(quantity * price) FROM erp_b.purchase_order_lines)
     = (SELECT sum(quantity * price) FROM truth_b_lines) AS amounts_exact;
-- numbers with many digits are not rounded through a double
SELECT count(*) AS float_artifacts FROM erp_b.purchase_orders
WHERE total_gross_value::text ~ '\d{6,}\.\d{5,}|0000000\d|9999999\d';

-- one field read by a jsonb column and by typed columns at once
CREATE FOREIGN TABLE po_twice (
  key text,
  order_no text OPTIONS (field 'orderNo'),
  order_no_json jsonb OPTIONS (field 'orderNo'),
  gross numeric OPTIONS (field 'totalGrossValue'),
  gross_json jsonb OPTIONS (field 'totalGrossValue'))
  SERVER plant_a OPTIONS (resource 'purchase-orders');
SELECT count(*) AS wrong FROM po_twice f JOIN truth_po t USING (key)
WHERE f.order_no IS DISTINCT FROM t.order_no
   OR f.order_no_json IS DISTINCT FROM to_jsonb(t.order_no)
   OR f.gross IS DISTINCT FROM t.total_gross_value;

-- fractions past the sixth digit round exactly as ::timestamptz rounds the
-- same text, ties included (the ground truth is that text, read by COPY)
CREATE FOREIGN TABLE po_ties (
  key text,
  order_date timestamptz, order_raw text OPTIONS (field 'orderDate'),
  created_at timestamptz, created_raw text OPTIONS (field 'createdAt'),
  due_at timestamptz, due_raw text OPTIONS (field 'dueAt'),
  approved_at timestamptz, approved_raw text OPTIONS (field 'approvedAt'))
  SERVER plant_a OPTIONS (resource 'purchase-orders');
CREATE TEMP VIEW tie_values AS
  SELECT key, v.*
  FROM po_ties, LATERAL (VALUES (order_date, order_raw), (created_at, created_raw),
                                (due_at, due_raw), (approved_at, approved_raw)) v(typed, raw)
  WHERE raw ~ '\.\d{7,}';
SELECT count(*) FILTER (WHERE raw ~ '\.\d{6}5(Z|[+-]|$)') >= 4 AS has_ties,
       count(*) FILTER (WHERE typed IS DISTINCT FROM raw::timestamptz) AS wrong_rounding
FROM tie_values;
SELECT count(*) AS wrong FROM po_ties f JOIN truth_po t USING (key)
WHERE (f.order_date, f.created_at, f.due_at, f.approved_at)
      IS DISTINCT FROM (t.order_date, t.created_at, t.due_at, t.approved_at);

-- every string type keeps "" as text does; other types read it as NULL
CREATE FOREIGN TABLE po_strings (
  key text,
  raw text OPTIONS (field 'orderDate'),
  vc varchar(40) OPTIONS (field 'orderDate'),
  bp char(40) OPTIONS (field 'orderDate'),
  nm name OPTIONS (field 'orderDate'),
  ts timestamptz OPTIONS (field 'orderDate'))
  SERVER plant_a OPTIONS (resource 'purchase-orders');
SELECT count(*) > 0 AS some,
       count(*) FILTER (WHERE vc IS DISTINCT FROM '' OR bp IS DISTINCT FROM ''
                          OR nm IS DISTINCT FROM '') AS not_kept,
       count(*) FILTER (WHERE ts IS NOT NULL) AS not_null
FROM po_strings WHERE raw = '';
SELECT count(*) AS wrong FROM po_strings
WHERE raw IS NOT NULL
  AND (vc IS DISTINCT FROM raw::varchar(40) OR bp IS DISTINCT FROM raw::char(40)
       OR nm IS DISTINCT FROM raw::name);
