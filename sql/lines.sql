--
-- lines: purchase_order_lines (expand 'lineItems') gives one row per line
-- item, with parent columns from its order, and equals the simulator's data
--
SELECT sim('reset');
CREATE TABLE truth_lines (LIKE erp.purchase_order_lines);
SELECT sim_load('plant_a', 'purchase_order_lines', 'truth_lines') > 1000 AS lines_loaded;

SELECT rows_differ('erp.purchase_order_lines', 'truth_lines') AS line_diff;

-- counts, sums of every numeric column, NULLs
SELECT f.n = t.n AS count_ok, f.q = t.q AS quantity_ok, f.rq = t.rq AS received_ok,
       f.p = t.p AS price_ok, f.d = t.d AS discount_ok, f.tax = t.tax AS tax_ok,
       f.tot = t.tot AS total_ok, f.amount = t.amount AS amount_ok,
       f.nulls = t.nulls AS nulls_ok, f.lines = t.lines AS line_no_ok
FROM (SELECT count(*) n, sum(quantity) q, sum(received_quantity) rq, sum(price) p,
             sum(discount) d, sum(line_tax_value) tax, sum(line_total_value) tot,
             sum(quantity * price) amount, sum(line_no) lines,
             sum(num_nulls(quantity, received_quantity, price, discount, line_tax_value,
                           line_total_value, delivery_at, due_at, line_no, custom_fields)) nulls
      FROM erp.purchase_order_lines) f,
     (SELECT count(*) n, sum(quantity) q, sum(received_quantity) rq, sum(price) p,
             sum(discount) d, sum(line_tax_value) tax, sum(line_total_value) tot,
             sum(quantity * price) amount, sum(line_no) lines,
             sum(num_nulls(quantity, received_quantity, price, discount, line_tax_value,
                           line_total_value, delivery_at, due_at, line_no, custom_fields)) nulls
      FROM truth_lines) t;

-- parent columns: every line's order_key/order_no is its order's key/orderNo
SELECT count(*) AS orphan_lines FROM erp.purchase_order_lines l
LEFT JOIN truth_po po ON po.key = l.order_key AND po.order_no = l.order_no
WHERE po.key IS NULL;
-- the number of lines per order matches the embedded arrays
SELECT count(*) AS orders_with_wrong_line_count FROM (
  SELECT order_key, count(*) FROM erp.purchase_order_lines GROUP BY 1
  EXCEPT SELECT order_key, count(*) FROM truth_lines GROUP BY 1) d;

-- one scan of purchase-orders serves the lines (no line-items endpoint)
SELECT sim('reset');
SELECT count(*) > 0 FROM erp.purchase_order_lines;
SELECT DISTINCT path FROM sim_requests();

-- custom fields: every unmapped top-level field, nested values intact
SELECT count(*) > 0 AS lines_with_custom_fields FROM erp.purchase_order_lines
WHERE custom_fields IS NOT NULL;
SELECT count(*) > 0 AS orders_with_custom_fields FROM erp.purchase_orders
WHERE custom_fields IS NOT NULL;
SELECT count(*) AS custom_fields_holding_model_fields FROM erp.purchase_orders
WHERE custom_fields ?| array['key', 'orderNo', 'lineItems', 'shipmentAddress'];
SELECT count(*) > 0 AS deep_custom_values FROM erp.purchase_orders
WHERE jsonb_path_exists(custom_fields, 'strict $.**.d');

-- a narrower table of the same resource: only what it maps
CREATE FOREIGN TABLE line_codes (
  order_no text OPTIONS (field 'parent.orderNo'),
  city text OPTIONS (field 'parent.shipmentAddress.city'),
  line_no integer,
  code text,
  extra jsonb OPTIONS (field '*'))
  SERVER plant_a OPTIONS (resource 'purchase-orders', expand 'lineItems');
SELECT count(*) AS mismatched FROM line_codes l
JOIN truth_lines t ON t.order_no = l.order_no AND t.line_no = l.line_no
JOIN truth_po po ON po.order_no = l.order_no
WHERE l.code IS DISTINCT FROM t.code
   OR l.city IS DISTINCT FROM po.shipment_address->>'city';
SELECT count(*) = (SELECT count(*) FROM truth_lines) AS all_lines FROM line_codes;
-- '*' of this table gathers what it does not map: the model's other fields
SELECT count(*) = (SELECT count(*) FROM truth_lines) AS extra_has_key
FROM line_codes WHERE extra ? 'key';
