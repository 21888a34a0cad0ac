--
-- sync: makini_sync keeps a local mirror of a foreign table — a full copy
-- first, then only what changed (by updatedAt); the mirror is compared with
-- the simulator's ground truth after every call, and every call's request
-- count with the simulator's request log
--
SELECT sim('reset');
-- the NOTICEs report timings
SET client_min_messages = warning;
\set SHOW_CONTEXT never
CREATE SCHEMA mirror;
-- purchase_order_lines as imported, plus a column for its order's updatedAt
-- (not needed, copied as any other column)
CREATE SCHEMA sync_src;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_order_lines) FROM SERVER plant_a INTO sync_src;
ALTER FOREIGN TABLE sync_src.purchase_order_lines
  ADD COLUMN order_updated_at timestamptz OPTIONS (field 'parent.updatedAt');

-- the ground truth, reloaded after every change
CREATE TABLE sync_truth_po (LIKE erp.purchase_orders);
CREATE TABLE sync_truth_lines (LIKE erp.purchase_order_lines);
CREATE FUNCTION sync_truth() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE sync_truth_po, sync_truth_lines;
  PERFORM sim_load('plant_a', 'purchase_orders', 'sync_truth_po');
  PERFORM sim_load('plant_a', 'purchase_order_lines', 'sync_truth_lines');
END $$;
-- rows of mirror and truth that differ (EXCEPT ALL both ways), on truth's columns
CREATE FUNCTION mirror_diff(mirror regclass, truth regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE cols text; n bigint;
BEGIN
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = truth AND attnum > 0 AND NOT attisdropped;
  EXECUTE format('SELECT count(*) FROM ((SELECT %1$s FROM %2$s EXCEPT ALL SELECT %1$s FROM %3$s) '
                 'UNION ALL (SELECT %1$s FROM %3$s EXCEPT ALL SELECT %1$s FROM %2$s)) d',
                 cols, mirror, truth) INTO n;
  RETURN n;
END $$;
-- every call: what makini_sync returned, and what the simulator logged
CREATE TABLE sync_runs (id serial, target regclass, mode text, fetched bigint, upserted bigint,
  deleted bigint, requests bigint, watermark timestamptz, old_watermark timestamptz,
  logged bigint, filters text[]);
CREATE FUNCTION sync_call(src regclass, tgt text, full_copy boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE mark int; old timestamptz;
BEGIN
  SELECT coalesce(max(seq), 0) INTO mark FROM sim_requests();
  SELECT s.watermark INTO old FROM makini_sync_state s WHERE s.target = to_regclass(tgt);
  INSERT INTO sync_runs (target, mode, fetched, upserted, deleted, requests, watermark, old_watermark)
    SELECT r.target, r.mode, r.fetched, r.upserted, r.deleted, r.requests, r.watermark, old
      FROM makini_sync(src, tgt, full_copy) r;
  UPDATE sync_runs SET logged = l.n, filters = l.f
    FROM (SELECT count(*) AS n, array_agg(DISTINCT params->>'filter[updatedAt:gteq]') AS f
            FROM sim_requests() WHERE seq > mark) l
   WHERE id = currval('sync_runs_id_seq');
END $$;
CREATE VIEW last_run AS SELECT * FROM sync_runs ORDER BY id DESC LIMIT 1;
-- the plan of EXPLAIN ANALYZE q, as JSON
CREATE FUNCTION sync_explain(q text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE plan jsonb;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) ' || q INTO plan;
  RETURN plan;
END $$;
-- mutate(op, order key, extra, at): changes the simulator's data as an ERP
-- does, at time at; returns the key of the order changed
CREATE FUNCTION mutate(op text, order_key text, extra text, at timestamptz) RETURNS text
LANGUAGE sql AS $$
  SELECT sim(format('mutate?conn=plant_a&op=%s&key=%s%s&at=%s', op, order_key, extra,
                    to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))::jsonb->>'key'
$$;
SELECT sync_truth();

-- first call: a full copy, made in a new table with a primary key on key
SELECT sync_call('erp.purchase_orders', 'mirror.purchase_orders');
SELECT mode, fetched = (SELECT count(*) FROM sync_truth_po) AS fetched_all,
       upserted = fetched AS all_inserted, deleted,
       requests = logged AS requests_true, requests = ceil(fetched / 100.0) AS one_per_page,
       filters = '{NULL}' AS unfiltered,
       watermark = (SELECT max(updated_at) FROM sync_truth_po) AS watermark_latest_seen
  FROM last_run;
SELECT mirror_diff('mirror.purchase_orders', 'sync_truth_po') AS po_diff;
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'mirror.purchase_orders'::regclass AND contype <> 'n';  -- 18 lists NOT NULL too
SELECT target, source, watermark = (SELECT max(updated_at) FROM sync_truth_po) AS watermark_ok,
       last_mode, last_fetched = (SELECT count(*) FROM sync_truth_po) AS fetched_ok
  FROM makini_sync_state;

-- nothing changed: the records of the last 10 minutes before the watermark
-- (the overlap) are fetched again, in one request filtered by updatedAt
SELECT sync_call('erp.purchase_orders', 'mirror.purchase_orders');
SELECT mode, fetched = (SELECT count(*) FROM sync_truth_po
                         WHERE updated_at >= old_watermark - interval '10 minutes') AS fetched_overlap,
       upserted, deleted, requests = logged AS requests_true, requests,
       filters[1]::timestamptz - (old_watermark - interval '10 minutes') BETWEEN '-1 ms' AND '0' AS filter_ok,
       watermark = old_watermark AS watermark_kept
  FROM last_run;

-- an ERP changes three orders and adds one, an hour after the latest change
-- (whole seconds: mutate() sends no fractions)
SELECT date_trunc('second', max(updated_at)) + interval '1 hour' AS t1,
       date_trunc('second', max(updated_at)) + interval '2 hours' AS t2,
       date_trunc('second', max(updated_at)) + interval '3 hours' AS t3 FROM sync_truth_po \gset
SELECT key AS o1 FROM sync_truth_po ORDER BY key LIMIT 1 OFFSET 10 \gset
SELECT key AS o2 FROM sync_truth_po ORDER BY key LIMIT 1 OFFSET 20 \gset
SELECT key AS o3 FROM sync_truth_po ORDER BY key LIMIT 1 OFFSET 30 \gset
SELECT mutate('update', :'o1', '&f.title=Changed+title&f.terms=Net+90', :'t1') = :'o1' AS updated,
       mutate('soft_delete', :'o2', '', :'t1') = :'o2' AS soft_deleted,
       mutate('insert', 'SYNC-NEW-1', '&like=' || :'o3', :'t1') = 'SYNC-NEW-1' AS inserted;
SELECT sync_truth();
SELECT sync_call('erp.purchase_orders', 'mirror.purchase_orders');
SELECT mode, fetched = (SELECT count(*) FROM sync_truth_po
                         WHERE updated_at >= old_watermark - interval '10 minutes') AS fetched_changed,
       upserted, deleted, requests = logged AS requests_true, requests,
       watermark = :'t1'::timestamptz AS watermark_latest_seen
  FROM last_run;
SELECT mirror_diff('mirror.purchase_orders', 'sync_truth_po') AS po_diff;
-- the soft-deleted order stays, with its deletedAt
SELECT deleted_at = :'t1'::timestamptz AS soft_deleted FROM mirror.purchase_orders WHERE key = :'o2';

-- an order deleted outright stays until the next full call
SELECT mutate('delete', :'o3', '', :'t2') = :'o3' AS hard_deleted;
SELECT sync_truth();
SELECT sync_call('erp.purchase_orders', 'mirror.purchase_orders');
SELECT mode, upserted, deleted, requests = logged AS requests_true FROM last_run;
SELECT key = :'o3' AS hard_deleted_stays FROM mirror.purchase_orders EXCEPT SELECT key = :'o3' FROM sync_truth_po;
SELECT mirror_diff('mirror.purchase_orders', 'sync_truth_po') AS po_diff;
SELECT sync_call('erp.purchase_orders', 'mirror.purchase_orders', true);
SELECT mode, fetched = (SELECT count(*) FROM sync_truth_po) AS fetched_all, upserted, deleted,
       requests = logged AS requests_true, filters = '{NULL}' AS unfiltered
  FROM last_run;
SELECT mirror_diff('mirror.purchase_orders', 'sync_truth_po') AS po_diff;

-- line items, the table as imported (no column for the order's updatedAt:
-- the scan filters and tracks it without one): the lines of every changed
-- order replace that order's rows; the watermark is the latest updatedAt
-- of an order with lines
SELECT sync_call('erp.purchase_order_lines', 'mirror.purchase_order_lines');
SELECT mode, fetched = (SELECT count(*) FROM sync_truth_lines) AS fetched_all,
       upserted = fetched AS all_inserted, deleted, requests = logged AS requests_true,
       filters = '{NULL}' AS unfiltered,
       watermark = (SELECT max(updated_at) FROM sync_truth_po p
                     WHERE EXISTS (SELECT FROM sync_truth_lines l WHERE l.order_key = p.key)) AS watermark_latest_order
  FROM last_run;
SELECT mirror_diff('mirror.purchase_order_lines', 'sync_truth_lines') AS lines_diff;
-- the created target has an index on the parent key too: an incremental call
-- replaces a changed order's lines without reading the whole mirror
SELECT indexdef FROM pg_indexes WHERE schemaname = 'mirror' AND tablename = 'purchase_order_lines' ORDER BY 1;
SELECT order_key AS l1 FROM sync_truth_lines GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1 OFFSET 1 \gset
SELECT order_key AS l2 FROM sync_truth_lines GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1 OFFSET 2 \gset
SELECT order_key AS l3 FROM sync_truth_lines GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1 OFFSET 3 \gset
SELECT order_key AS l4 FROM sync_truth_lines GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1 OFFSET 4 \gset
SELECT mutate('line_update', :'l1', '&f.name=Renamed+line&f.quantity=7.5', :'t3') = :'l1' AS line_updated,
       mutate('line_delete', :'l2', '', :'t3') = :'l2' AS line_deleted,
       mutate('line_insert', :'l3', '&line=SYNC-LINE-1', :'t3') = :'l3' AS line_inserted,
       mutate('line_soft_delete', :'l4', '', :'t3') = :'l4' AS line_soft_deleted;
SELECT sync_truth();
CREATE TABLE lines_before AS TABLE mirror.purchase_order_lines;
SELECT sync_call('erp.purchase_order_lines', 'mirror.purchase_order_lines');
-- rows are written only where a line changed (not the changed orders'
-- other lines)
SELECT mode, fetched = (SELECT count(*) FROM sync_truth_lines l JOIN sync_truth_po p ON p.key = l.order_key
                         WHERE p.updated_at >= old_watermark - interval '10 minutes') AS fetched_changed_orders,
       upserted = (SELECT count(*) FROM (TABLE sync_truth_lines EXCEPT ALL TABLE lines_before) l) AS changed_lines_upserted,
       upserted,
       deleted, requests = logged AS requests_true, requests,
       filters[1]::timestamptz - (old_watermark - interval '10 minutes') BETWEEN '-1 ms' AND '0' AS filter_ok,
       watermark = :'t3'::timestamptz AS watermark_latest_seen
  FROM last_run;
SELECT mirror_diff('mirror.purchase_order_lines', 'sync_truth_lines') AS lines_diff;

-- a source with a column for the order's updatedAt: copied like any column,
-- and the calls are incremental alike
SELECT sync_call('sync_src.purchase_order_lines', 'mirror.lines_order_updated');
SELECT sync_call('sync_src.purchase_order_lines', 'mirror.lines_order_updated');
SELECT mode, deleted, requests = logged AS requests_true, requests,
       filters[1]::timestamptz - (old_watermark - interval '10 minutes') BETWEEN '-1 ms' AND '0' AS filter_ok
  FROM last_run;
SELECT mirror_diff('mirror.lines_order_updated', 'sync_truth_lines') AS lines_diff;
SELECT count(*) AS wrong_order_updated_at FROM mirror.lines_order_updated l
  LEFT JOIN sync_truth_po p ON p.key = l.order_key
 WHERE l.order_updated_at IS DISTINCT FROM p.updated_at;

-- a table that maps no updatedAt, only the custom fields ('*'): still
-- incremental, and updatedAt stays among the fields '*' gathers (the scan
-- reads it for makini_sync without taking it from them)
CREATE FOREIGN TABLE sync_src.po_star (key text, custom_fields jsonb OPTIONS (field '*'))
  SERVER plant_a OPTIONS (resource 'purchase-orders');
SELECT sync_call('sync_src.po_star', 'mirror.po_star');
SELECT sync_call('sync_src.po_star', 'mirror.po_star');
SELECT mode, requests = logged AS requests_true,
       watermark = (SELECT max(updated_at) FROM sync_truth_po) AS watermark_latest_seen FROM last_run;
SELECT count(*) AS star_diff FROM (
  (TABLE mirror.po_star EXCEPT ALL TABLE sync_src.po_star) UNION ALL
  (TABLE sync_src.po_star EXCEPT ALL TABLE mirror.po_star)) d;
SELECT count(*) FILTER (WHERE custom_fields ? 'updatedAt') > 0 AS updated_in_star FROM mirror.po_star;

-- what makini_sync asks of its scan (makini_fdw.sync_scan, internal): the
-- filter, in the request EXPLAIN shows, and the latest updatedAt read
SELECT format('%s %s', 'erp.purchase_order_lines'::regclass::oid,
              (extract(epoch FROM max(updated_at)) * 1000000)::bigint) AS sync_scan
  FROM sync_truth_po \gset
BEGIN;
SELECT set_config('makini_fdw.sync_scan', :'sync_scan', true) IS NOT NULL AS set;
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM erp.purchase_order_lines;
SELECT v #>> '{}' AS latest_shown,
       (v #>> '{}')::timestamptz = (SELECT max(updated_at) FROM sync_truth_po) AS latest_seen
  FROM jsonb_path_query(sync_explain('SELECT key FROM erp.purchase_order_lines'),
                        'strict $.**."Makini latest updatedAt"') v;
ROLLBACK;
SET makini_fdw.sync_scan = 'erp.purchase_orders';
SHOW makini_fdw.sync_scan;

-- a connection whose date-times may carry seven fractional digits
-- (plant_c; PostgreSQL rounds them to microseconds, as the scan does for
-- the watermark): the watermark is the truth's latest, and a second call
-- goes incremental and writes nothing
CREATE SERVER sync_c FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER sync_c OPTIONS (token 'tok_plant_c');
CREATE SCHEMA sync_c;
IMPORT FOREIGN SCHEMA makini LIMIT TO (purchase_orders, purchase_order_lines) FROM SERVER sync_c INTO sync_c;
CREATE TABLE sync_truth_c_po (LIKE sync_c.purchase_orders);
CREATE TABLE sync_truth_c_lines (LIKE sync_c.purchase_order_lines);
SELECT sim_load('plant_c', 'purchase_orders', 'sync_truth_c_po') > 0 AND
       sim_load('plant_c', 'purchase_order_lines', 'sync_truth_c_lines') > 0 AS loaded;
CREATE FOREIGN TABLE sync_c.po_raw (key text, updated_at text OPTIONS (field 'updatedAt'))
  SERVER sync_c OPTIONS (resource 'purchase-orders');
SELECT count(*) > 0 AS has_seven_digits FROM sync_c.po_raw WHERE updated_at ~ '\.[0-9]{7}';
SELECT sync_call('sync_c.purchase_orders', 'mirror.c_po');
SELECT sync_call('sync_c.purchase_orders', 'mirror.c_po');
SELECT mode, upserted, deleted, requests = logged AS requests_true,
       watermark = (SELECT max(updated_at) FROM sync_truth_c_po) AS watermark_latest_seen FROM last_run;
SELECT mirror_diff('mirror.c_po', 'sync_truth_c_po') AS po_diff;
SELECT sync_call('sync_c.purchase_order_lines', 'mirror.c_lines');
SELECT sync_call('sync_c.purchase_order_lines', 'mirror.c_lines');
SELECT mode, upserted, deleted, requests = logged AS requests_true,
       watermark = (SELECT max(updated_at) FROM sync_truth_c_po p
                     WHERE EXISTS (SELECT FROM sync_truth_c_lines l WHERE l.order_key = p.key)) AS watermark_latest_order
  FROM last_run;
SELECT mirror_diff('mirror.c_lines', 'sync_truth_c_lines') AS lines_diff;
-- (the server goes again: multi lists every server with a mapping)
DROP SERVER sync_c CASCADE;

-- resources without updatedAt: a full copy at every call
CREATE TABLE sync_truth_currencies (LIKE erp.currencies);
SELECT sim_load('plant_a', 'currencies', 'sync_truth_currencies') > 0 AS loaded;
SELECT sync_call('erp.currencies', 'mirror.currencies');
SELECT sync_call('erp.currencies', 'mirror.currencies');
SELECT mode, fetched = (SELECT count(*) FROM sync_truth_currencies) AS fetched_all, upserted, deleted,
       requests = logged AS requests_true, watermark IS NULL AS no_watermark FROM last_run;
SELECT mirror_diff('mirror.currencies', 'sync_truth_currencies') AS currencies_diff;

-- an error in the middle (page 2 answers 503 until the retries give up):
-- the scan's error, and the target and the state as they were
SELECT mutate('update', :'o1', '&f.title=Never+mirrored', :'t3') = :'o1' AS updated;
CREATE TABLE mirror_before AS TABLE mirror.purchase_orders;
CREATE TABLE state_before AS TABLE makini_sync_state;
SELECT sim('fault?kind=status&status=503&code=SYSTEM_UNAVAILABLE&conn=plant_a&page=2&count=-1');
-- (try() of the errors suite: the SQLSTATE, message, DETAIL and HINT)
\x on
SELECT state, message, detail, hint
  FROM try($$SELECT * FROM makini_sync('erp.purchase_orders', 'mirror.purchase_orders', true)$$);
\x off
SELECT rows_differ('mirror.purchase_orders', 'mirror_before') AS target_changed,
       rows_differ('makini_sync_state', 'state_before') AS state_changed;
SELECT sim('reset');
SELECT sync_truth();

-- a target whose columns do not match: an error naming the column, before
-- any request
CREATE TABLE mirror.bad_po (key text PRIMARY KEY, order_no text, title varchar(10));
CREATE TABLE mirror.bad_po2 (LIKE erp.purchase_orders);
SELECT coalesce(max(seq), 0) AS mark FROM sim_requests() \gset
-- (each with its SQLSTATE: try() of the errors suite)
CREATE FOREIGN TABLE sync_src.po_nokey (order_no text) SERVER plant_a
  OPTIONS (resource 'purchase-orders');
\x on
SELECT state, message, detail, hint
  FROM try($$SELECT * FROM makini_sync('erp.purchase_orders', 'mirror.bad_po')$$);
ALTER TABLE mirror.bad_po DROP COLUMN title;
ALTER TABLE mirror.bad_po ADD COLUMN title text;
SELECT v.n, t.state, t.message, t.detail, t.hint
  FROM (VALUES (1, $$SELECT * FROM makini_sync('erp.purchase_orders', 'mirror.bad_po')$$),
               (2, $$SELECT * FROM makini_sync('erp.purchase_orders', 'mirror.bad_po2')$$),
               (3, $$SELECT * FROM makini_sync('erp.vendors', 'sync_src.purchase_order_lines')$$),
               (4, $$SELECT * FROM makini_sync('sync_truth_po', 'mirror.x')$$),
               (5, $$SELECT * FROM makini_sync('sync_src.po_nokey', 'mirror.x')$$),
               (6, $$SELECT * FROM makini_sync('erp.purchase_orders', NULL)$$))
         AS v(n, q), try(v.q) t
 ORDER BY v.n;
\x off
DROP FOREIGN TABLE sync_src.po_nokey;
-- (its internal helper: whether changes can be found by updatedAt)
SELECT makini_sync_capable('erp.purchase_order_lines') AS lines, makini_sync_capable('erp.currencies') AS currencies;
SELECT makini_sync_capable('sync_truth_po');
SELECT count(*) AS requests_sent FROM sim_requests() WHERE seq > :mark;
SELECT count(*) AS state_rows FROM makini_sync_state WHERE target::text LIKE 'mirror.bad%';

-- two calls for one target never interleave: the second waits for the
-- first's transaction, then goes on from its state
CREATE EXTENSION dblink;
-- waits (up to 30 s) until a session waits for an advisory lock: the other
-- one, for ours (no timing window: it cannot go on before we commit)
CREATE FUNCTION other_waits() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted);
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted);
END $$;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user));
SELECT date_trunc('second', max(updated_at)) + interval '4 hours' AS t4 FROM sync_truth_po \gset
BEGIN;
SELECT mode FROM makini_sync('erp.purchase_orders', 'mirror.purchase_orders', true);
SELECT dblink_send_query('other', $q$SELECT mode, upserted, watermark FROM makini_sync('erp.purchase_orders', 'mirror.purchase_orders')$q$);
SELECT other_waits() AS waiting;
-- a change the second call (after ours) must fetch
SELECT mutate('update', :'o1', '&f.title=After+the+first', :'t4') = :'o1' AS updated;
COMMIT;
SELECT mode, upserted, watermark = :'t4'::timestamptz AS saw_change
  FROM dblink_get_result('other') AS r(mode text, upserted bigint, watermark timestamptz);
-- the same when the first call creates the target: the second waits for
-- it, then finds the table and its state (a snapshot taken after the
-- wait), so it goes on incrementally
SELECT dblink_disconnect('other');
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user));
BEGIN;
SELECT mode FROM makini_sync('erp.purchase_orders', 'mirror.po_race');
SELECT dblink_send_query('other', $q$SELECT mode FROM makini_sync('erp.purchase_orders', 'mirror.po_race')$q$);
SELECT other_waits() AS waiting;
COMMIT;
SELECT mode FROM dblink_get_result('other') AS r(mode text);
DELETE FROM makini_sync_state WHERE target = 'mirror.po_race'::regclass;
DROP TABLE mirror.po_race;
SELECT dblink_disconnect('other');
SELECT sync_truth();
SELECT mirror_diff('mirror.purchase_orders', 'sync_truth_po') AS po_diff;

-- privileges: a role with SELECT on the source and SELECT, INSERT, UPDATE,
-- DELETE on the target needs nothing more; it keeps the state of its
-- targets only; a target it may not delete from: an error before any request
CREATE ROLE regress_makini_sync;
CREATE USER MAPPING FOR regress_makini_sync SERVER plant_a OPTIONS (token 'tok_plant_a');
GRANT USAGE ON SCHEMA erp, mirror TO regress_makini_sync;
GRANT SELECT ON erp.vendors TO regress_makini_sync;
CREATE TABLE mirror.vendors (LIKE erp.vendors, PRIMARY KEY (key));
GRANT SELECT, INSERT, UPDATE, DELETE ON mirror.vendors TO regress_makini_sync;
CREATE TABLE mirror.vendors_ro (LIKE erp.vendors, PRIMARY KEY (key));
GRANT SELECT, INSERT, UPDATE ON mirror.vendors_ro TO regress_makini_sync;
CREATE TABLE sync_truth_vendors (LIKE erp.vendors);
SELECT sim_load('plant_a', 'vendors', 'sync_truth_vendors') > 0 AS loaded;
SELECT count(*) AS truth_vendors FROM sync_truth_vendors \gset
SELECT coalesce(max(seq), 0) AS mark FROM sim_requests() \gset
SET ROLE regress_makini_sync;
SELECT * FROM makini_sync('erp.vendors', 'mirror.vendors_ro');
RESET ROLE;
SELECT count(*) AS requests_sent FROM sim_requests() WHERE seq > :mark;
SET ROLE regress_makini_sync;
-- (an existing, empty target: filled straight from the scan)
SELECT mode, fetched = :truth_vendors AS fetched_all,
       upserted = fetched AS all_inserted, deleted, requests > 0 AS requested
  FROM makini_sync('erp.vendors', 'mirror.vendors');
SELECT target, last_mode FROM makini_sync_state ORDER BY 1;
INSERT INTO makini_sync_state VALUES ('mirror.vendors_ro', 'erp.vendors', now(), 'full', now(), 0);
UPDATE makini_sync_state SET watermark = NULL WHERE target = 'mirror.purchase_orders'::regclass;
SELECT * FROM makini_sync('erp.purchase_orders', 'mirror.vendors');
RESET ROLE;
SELECT mirror_diff('mirror.vendors', 'sync_truth_vendors') AS vendors_diff;
SELECT target, last_mode FROM makini_sync_state WHERE target = 'mirror.purchase_orders'::regclass;

DROP USER MAPPING FOR regress_makini_sync SERVER plant_a;
DROP OWNED BY regress_makini_sync;
DROP ROLE regress_makini_sync;

-- records that change between pages of a sync's scan (CONTRACT.md §7:
-- page-based paging may then repeat or skip a record): the copy still
-- succeeds (a repeated record would break the primary key), every row is a
-- version the API had before or after the change, a record there before
-- and after is missing only where one was deleted, and the next full call
-- copies exactly the data as it is now
CREATE FUNCTION sync_mutated(op text, tab text, record_key text,
                             OUT rows_neither bigint, OUT missing_allowed boolean,
                             OUT mutated_between_pages boolean, OUT full_again_exact boolean)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM sim('reset');
  EXECUTE format('CREATE TEMP TABLE sm_before (LIKE erp.%I)', tab);
  PERFORM sim_load('plant_a', tab, 'sm_before');
  PERFORM sim('behave?conn=plant_a&mutate_after_page=1&mutate_op=' || op);
  PERFORM makini_sync(format('erp.%I', tab)::regclass, 'mirror.sm_target');
  CREATE TEMP TABLE sm_after (LIKE sm_before);
  PERFORM sim_load('plant_a', tab, 'sm_after');
  SELECT count(*) INTO rows_neither
    FROM (TABLE mirror.sm_target EXCEPT ALL (TABLE sm_before UNION ALL TABLE sm_after)) d;
  EXECUTE format('SELECT count(*) <= %s FROM ((SELECT %I FROM sm_before INTERSECT SELECT %I FROM sm_after)
                  EXCEPT SELECT %I FROM mirror.sm_target) d',
                 CASE op WHEN 'delete' THEN 1 ELSE 0 END, record_key, record_key, record_key)
    INTO missing_allowed;
  SELECT count(*) = 1 INTO mutated_between_pages FROM sim_requests()
   WHERE fault = 'mutate_' || op AND coalesce(params->>'page', '1') = '1';
  PERFORM makini_sync(format('erp.%I', tab)::regclass, 'mirror.sm_target', true);
  full_again_exact := mirror_diff('mirror.sm_target', 'sm_after') = 0;
  DELETE FROM makini_sync_state WHERE target = 'mirror.sm_target'::regclass;
  DROP TABLE mirror.sm_target, sm_before, sm_after;
  PERFORM sim('reset');
END $$;
SELECT op, tab, d.*
  FROM (VALUES ('insert', 'purchase_orders', 'key'), ('insert', 'purchase_order_lines', 'order_key'),
               ('delete', 'purchase_orders', 'key'), ('delete', 'purchase_order_lines', 'order_key'),
               ('update', 'purchase_orders', 'key'), ('update', 'purchase_order_lines', 'order_key'))
       AS v(op, tab, record_key),
       LATERAL sync_mutated(op, tab, record_key) d;
RESET client_min_messages;
