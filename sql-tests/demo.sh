#!/usr/bin/env bash
# The demo command: builds and installs makini_fdw, starts a throwaway
# cluster and the Makini API simulator (three plants with realistic data),
# sets up servers, user mappings and imported schemas the way an analyst
# would, and runs a handful of real analyst queries, printing their results.
# KEEP=1 leaves the cluster and simulator running afterwards (psql -h
# /tmp/makini_fdw_run/sock -p 54329 -U makini demo).  PGPORT and SIM_PORT
# choose other ports.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_deps
build_install
if [ "${KEEP:-0}" != 1 ]; then trap cleanup EXIT; fi
start_simulator
start_cluster
as_pg $PGBIN/createdb -h "$PGHOST" -p "$PGPORT" -U makini demo

run_psql -d demo -e -v sim_url="http://127.0.0.1:$SIM_PORT" <<'SQL'
-- one server per Makini connection; the token lives in a user mapping
CREATE EXTENSION makini_fdw;
SELECT makini_fdw_version();
CREATE SERVER plant_a FOREIGN DATA WRAPPER makini_fdw OPTIONS (url :'sim_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_a OPTIONS (token 'tok_plant_a');
CREATE SCHEMA erp;
IMPORT FOREIGN SCHEMA makini FROM SERVER plant_a INTO erp;
\dE erp.*
SELECT server, reachable, provider, company_name, sync_status FROM makini_connection_status('plant_a');

-- a local warehouse table: goods received against some purchase order lines
CREATE SCHEMA warehouse;
CREATE TABLE warehouse.receipts (po_number text, line_no integer, received_qty numeric, received_at date);
INSERT INTO warehouse.receipts
SELECT l.order_no, l.line_no, round(l.quantity * 0.6), date '2026-11-01' + o.n
FROM erp.purchase_order_lines l
JOIN (SELECT order_no, row_number() OVER (ORDER BY order_date)::int AS n
      FROM erp.purchase_orders WHERE order_date >= '2026-06-01' ORDER BY order_date LIMIT 20) o
  ON o.order_no = l.order_no;
ANALYZE warehouse.receipts;

\echo '--- 1. Open quantities of this year''s orders from one vendor, with goods received locally'
SELECT po.vendor_key FROM erp.purchase_orders po WHERE po.order_date >= '2026-01-01'
GROUP BY 1 ORDER BY count(*) DESC LIMIT 1 \gset
SELECT po.order_no, l.line_no, l.code, l.quantity, coalesce(r.received_qty, 0) AS received,
       l.quantity - coalesce(r.received_qty, 0) AS open_qty
FROM erp.purchase_orders po
JOIN erp.purchase_order_lines l ON l.order_key = po.key
LEFT JOIN warehouse.receipts r ON r.po_number = po.order_no AND r.line_no = l.line_no
WHERE po.order_date >= '2026-01-01' AND po.vendor_key = :'vendor_key'
ORDER BY po.order_no, l.line_no LIMIT 15;

\echo '--- 2. Spend by vendor and currency this year'
SELECT v.name AS vendor, c.code AS currency, count(*) AS orders, sum(po.total_gross_value) AS gross
FROM erp.purchase_orders po
JOIN erp.vendors v ON v.key = po.vendor_key
LEFT JOIN erp.currencies c ON c.key = po.currency_key
WHERE po.order_date >= '2026-01-01'
GROUP BY 1, 2 ORDER BY gross DESC NULLS LAST LIMIT 10;

\echo '--- 3. Orders by status'
SELECT s.name AS status, count(*) AS orders, sum(po.total_net_value) AS net
FROM erp.purchase_orders po LEFT JOIN erp.purchase_order_statuses s ON s.key = po.status_key
GROUP BY 1 ORDER BY 2 DESC;

\echo '--- 4. The ten most recent orders, and what the FDW sent for them'
SELECT order_no, order_date, total_gross_value FROM erp.purchase_orders
WHERE order_date >= now() - interval '3 years' ORDER BY order_date DESC LIMIT 10;
EXPLAIN (VERBOSE, COSTS OFF) SELECT order_no, order_date FROM erp.purchase_orders
WHERE order_date >= now() - interval '3 years' ORDER BY order_date DESC LIMIT 10;

\echo '--- 5. This week''s receipts joined to their orders: one small request per received order, not a full scan'
SELECT r.received_at, r.po_number, po.vendor_key, count(*) AS lines_received
FROM warehouse.receipts r JOIN erp.purchase_orders po ON po.order_no = r.po_number
WHERE r.received_at > date '2026-11-18' GROUP BY 1, 2, 3 ORDER BY 1;
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT r.received_at, r.po_number, po.vendor_key
FROM warehouse.receipts r JOIN erp.purchase_orders po ON po.order_no = r.po_number
WHERE r.received_at > date '2026-11-18';

\echo '--- 6. Custom fields configured on the connection'
SELECT order_no, custom_fields FROM erp.purchase_orders WHERE custom_fields IS NOT NULL ORDER BY order_no LIMIT 5;
SQL
log "demo finished"
