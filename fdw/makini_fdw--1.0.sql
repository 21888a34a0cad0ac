/* makini_fdw--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION makini_fdw" to load this file. \quit

CREATE FUNCTION makini_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION makini_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER makini_fdw
  HANDLER makini_fdw_handler
  VALIDATOR makini_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER makini_fdw IS
  'foreign data wrapper for the Makini unified ERP API';

CREATE FUNCTION makini_connection_status(server name)
RETURNS TABLE (server name, reachable boolean, provider text,
               company_name text, sync_status text,
               sync_updated_at timestamptz, api_version text, error text)
AS 'MODULE_PATHNAME', 'makini_connection_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION makini_connection_status(name) IS
  'asks one makini_fdw server''s connection about itself (GET /api/integrations/current); an unreachable API or a bad token is reported in reachable/error, not raised';

CREATE FUNCTION makini_connection_status()
RETURNS TABLE (server name, reachable boolean, provider text,
               company_name text, sync_status text,
               sync_updated_at timestamptz, api_version text, error text)
AS 'MODULE_PATHNAME', 'makini_connection_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION makini_connection_status() IS
  'makini_connection_status(server) for every makini_fdw server the current user has USAGE on and a user mapping for, by server name';

CREATE FUNCTION makini_fdw_version()
RETURNS text
AS 'MODULE_PATHNAME', 'makini_fdw_version'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION makini_fdw_version() IS
  'version of the loaded makini_fdw library';

-- Internal, not part of the SQL interface: the API model the wrapper is
-- built on (fdw/model.c) -- its entities with their fields, and the tables
-- IMPORT FOREIGN SCHEMA makini makes.  The functions below read the table
-- list here; the tests compare it with the simulator's model.
CREATE FUNCTION makini_model()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'makini_model'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION makini_model() IS
  'internal: the API model of the loaded makini_fdw library (entities, fields, imported tables)';

-- One view per imported table over many connections: for each server s,
-- IMPORT FOREIGN SCHEMA makini into schema <target_schema>_<s> (made if
-- missing; tables already there are kept), then in target_schema a view per
-- table: the UNION ALL over the servers, with the server's name in column
-- "connection".
CREATE FUNCTION makini_create_union_views(target_schema name, servers name[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  tables CONSTANT text[] := ARRAY(SELECT t.value->>'table' FROM jsonb_array_elements(
    makini_model()->'tables') WITH ORDINALITY AS t ORDER BY t.ordinality);
  nsp text;
  srv name;
  missing text[];
  tab text;
  view_sql text;
BEGIN
  IF target_schema IS NULL OR coalesce(cardinality(servers), 0) = 0 OR
     cardinality(servers) <> (SELECT count(DISTINCT s) FROM unnest(servers) AS s
                              WHERE s IS NOT NULL) THEN
    RAISE EXCEPTION 'makini_create_union_views needs a schema name and a non-empty array of distinct server names';
  END IF;

  -- the target schema and one schema per server, made if missing
  FOREACH nsp IN ARRAY ARRAY[target_schema::text] ||
      ARRAY(SELECT target_schema || '_' || s FROM unnest(servers) AS s) LOOP
    IF octet_length(nsp) >= 64 THEN
      RAISE EXCEPTION 'schema name "%" is too long', nsp
        USING HINT = 'Use a shorter target schema name.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = nsp) THEN
      EXECUTE format('CREATE SCHEMA %I', nsp);
    END IF;
  END LOOP;

  -- each server's tables, imported unless already there
  FOREACH srv IN ARRAY servers LOOP
    nsp := target_schema || '_' || srv;
    SELECT array_agg(quote_ident(t)) INTO missing
      FROM unnest(tables) AS t
     WHERE to_regclass(format('%I.%I', nsp, t)) IS NULL;
    IF missing IS NOT NULL THEN
      EXECUTE format('IMPORT FOREIGN SCHEMA makini LIMIT TO (%s) FROM SERVER %I INTO %I',
                     array_to_string(missing, ', '), srv, nsp);
    END IF;
  END LOOP;

  -- one view per table over all the servers
  FOREACH tab IN ARRAY tables LOOP
    SELECT string_agg(format('SELECT %L::name AS connection, * FROM %I.%I',
                             u.s, target_schema || '_' || u.s, tab),
                      E'\nUNION ALL ' ORDER BY u.ord)
      INTO view_sql
      FROM unnest(servers) WITH ORDINALITY AS u(s, ord);
    EXECUTE format('CREATE OR REPLACE VIEW %I.%I AS %s', target_schema, tab, view_sql);
  END LOOP;
END
$$;

COMMENT ON FUNCTION makini_create_union_views(name, name[]) IS
  'for each server s: IMPORT FOREIGN SCHEMA makini into schema <target_schema>_<s> (created if missing); then in target_schema one view per imported table, the UNION ALL over the servers with the server name in column "connection"';

-- Incremental mirror (makini_sync).  The state of every mirror: one row per
-- target table.  Kept by pg_dump (a configuration table of the extension).
-- Any role may keep the state of a mirror it may fill and only of those:
-- the rows are open to everyone, row-level security limits them to targets
-- on which the current role holds INSERT, UPDATE and DELETE (and SELECT to
-- read them), so makini_sync needs no SECURITY DEFINER code.
CREATE TABLE makini_sync_state (
  target regclass PRIMARY KEY,
  source regclass NOT NULL,
  watermark timestamptz,
  last_mode text NOT NULL,
  last_sync_at timestamptz NOT NULL,
  last_fetched bigint NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('makini_sync_state', '');
COMMENT ON TABLE makini_sync_state IS
  'one row per makini_sync target: its source, the latest updatedAt seen (watermark) and the last call';
ALTER TABLE makini_sync_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_own ON makini_sync_state FOR SELECT
  USING (pg_catalog.has_table_privilege(target::oid, 'SELECT'));
CREATE POLICY add_own ON makini_sync_state FOR INSERT
  WITH CHECK (pg_catalog.has_table_privilege(target::oid, 'INSERT') AND
              pg_catalog.has_table_privilege(target::oid, 'UPDATE') AND
              pg_catalog.has_table_privilege(target::oid, 'DELETE'));
CREATE POLICY change_own ON makini_sync_state FOR UPDATE
  USING (pg_catalog.has_table_privilege(target::oid, 'INSERT') AND
         pg_catalog.has_table_privilege(target::oid, 'UPDATE') AND
         pg_catalog.has_table_privilege(target::oid, 'DELETE'));
CREATE POLICY drop_own ON makini_sync_state FOR DELETE
  USING (pg_catalog.has_table_privilege(target::oid, 'DELETE'));
GRANT SELECT, INSERT, UPDATE, DELETE ON makini_sync_state TO PUBLIC;

-- makini_sync(source, target, full): brings the local table target up to
-- date with the makini_fdw foreign table source, fetching only the records
-- changed since the last call (see README, "Incremental mirror").
--
-- makini_sync_run does the work (PL/pgSQL refuses an argument and an output
-- column of one name, "target").  One scan of the source, under EXPLAIN
-- ANALYZE (whose output gives the true number of HTTP requests and the
-- latest updatedAt read), fills an empty target directly or else feeds one
-- statement that upserts and deletes (no temporary table), all in the
-- caller's transaction.  The setting makini_fdw.sync_scan has that scan
-- send filter[updatedAt:gteq] and track updatedAt (fdw/sync.c): it needs no
-- column for it, so the imported purchase_order_lines is incremental as it
-- is.  The extension is relocatable, so the state table and
-- makini_sync_capable are found through pg_extension at each call.
CREATE FUNCTION makini_sync_capable(source regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'makini_sync_capable'
LANGUAGE C STRICT STABLE;

COMMENT ON FUNCTION makini_sync_capable(regclass) IS
  'internal (makini_sync): can the changed records of this makini_fdw foreign table be found by updatedAt (its records'', or in an expand table their parents'')';

CREATE FUNCTION makini_sync_run(source regclass, target_name text, full_copy boolean)
RETURNS TABLE (sync_target regclass, sync_mode text, sync_fetched bigint,
               sync_upserted bigint, sync_deleted bigint, sync_requests bigint,
               sync_watermark timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  -- records changed up to this long before the latest updatedAt seen are
  -- fetched again: ERP clocks differ, and a record may reach the API with an
  -- updatedAt earlier than one already seen (set when its change began, not
  -- when it was committed or synced into Makini)
  overlap CONSTANT interval := '10 minutes';
  src regclass := $1;
  tgt_name text := $2;
  tgt regclass;
  tgt_sql text;
  state_tab text;
  is_expand boolean;
  capable boolean;              -- changes can be found by updatedAt
  ver_col name;                 -- maps the row's own updatedAt: of two versions, the latest
  parent_col name;              -- maps parent.key (expand tables)
  cols text;                    -- the source's columns, quoted, in order
  set_list text;
  not_null text;                -- ALTER COLUMN ... SET NOT NULL, ... (a created target)
  old_row text;                 -- o.col, ... and c.col, ...: a row unchanged?
  new_row text;
  old_rows text;                -- where the target's rows to compare are
  gone text;                    -- which target rows are deleted
  sync_scan text;               -- makini_fdw.sync_scan for the scan
  old_sync_scan text;
  old_source regclass;
  old_wm timestamptz;
  new_wm timestamptz;
  run_mode text;
  ext_schema text;
  scan text;                    -- the scan of the source
  notice_ms text;               -- makini.sync_notice_interval in ms
  old_progress text;            -- makini_fdw.progress_interval before the scan
  plan jsonb;
  n_requests bigint;
  n_pages bigint;
  n_fetched bigint;
  n_upserted bigint;
  n_deleted bigint := 0;
  empty_target boolean := false;
  created boolean := false;     -- the target was made by this call
  started timestamptz := clock_timestamp();
  bad record;
BEGIN
  IF src IS NULL OR tgt_name IS NULL THEN
    RAISE EXCEPTION 'makini_sync needs a source table and a target table name';
  END IF;

  -- the source: a makini_fdw foreign table with a column "key"
  SELECT EXISTS (SELECT FROM unnest(ft.ftoptions) o WHERE o LIKE 'expand=%')
    INTO is_expand
    FROM pg_catalog.pg_foreign_table ft
    JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
    JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
   WHERE ft.ftrelid = src AND w.fdwname = 'makini_fdw';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'source % is not a makini_fdw foreign table', src;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute
                  WHERE attrelid = src AND attname = 'key' AND NOT attisdropped) THEN
    RAISE EXCEPTION 'source % has no column "key"', src
      USING HINT = 'makini_sync matches rows by the record''s key.';
  END IF;
  SELECT min(a.attname) FILTER (WHERE f.field = 'updatedAt' AND a.atttypid = 'timestamptz'::regtype),
         min(a.attname) FILTER (WHERE f.field = 'parent.key'),
         string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
         string_agg(format('%I = EXCLUDED.%I', a.attname, a.attname), ', ' ORDER BY a.attnum)
           FILTER (WHERE a.attname <> 'key'),
         string_agg(format('o.%I', a.attname), ', ' ORDER BY a.attnum),
         string_agg(format('c.%I', a.attname), ', ' ORDER BY a.attnum)
    INTO ver_col, parent_col, cols, set_list, old_row, new_row
    FROM pg_catalog.pg_attribute a
    CROSS JOIN LATERAL (SELECT coalesce(
             (SELECT substr(o, 7) FROM unnest(a.attfdwoptions) o WHERE o LIKE 'field=%'),
             CASE WHEN a.attname = 'updated_at' THEN 'updatedAt' END) AS field) f
   WHERE a.attrelid = src AND a.attnum > 0 AND NOT a.attisdropped;

  -- the target: made when missing; two calls for one target never interleave
  tgt := pg_catalog.to_regclass(tgt_name);
  IF tgt IS NULL THEN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('makini_sync ' || tgt_name, 0));
    tgt := pg_catalog.to_regclass(tgt_name);
  END IF;
  IF tgt IS NULL THEN
    -- made below by CREATE TABLE AS (bulk-loaded), its keys indexed after
    SELECT string_agg(quote_ident(p), '.') INTO tgt_sql FROM unnest(parse_ident(tgt_name)) p;
    created := true;
  END IF;

  -- an existing target: locked, and checked before any request is sent:
  -- a table, the caller's privileges, the source's columns with their
  -- types, a unique index on key
  IF NOT created THEN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('makini_sync ' || tgt::oid, 0));
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = tgt) NOT IN ('r', 'p') THEN
      RAISE EXCEPTION 'target % is not a table', tgt;
    END IF;
    IF NOT (pg_catalog.has_table_privilege(tgt, 'SELECT') AND pg_catalog.has_table_privilege(tgt, 'INSERT') AND
            pg_catalog.has_table_privilege(tgt, 'UPDATE') AND pg_catalog.has_table_privilege(tgt, 'DELETE')) THEN
      RAISE EXCEPTION 'permission denied for table %', tgt
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'makini_sync needs SELECT, INSERT, UPDATE and DELETE on the target.';
    END IF;

    -- the target has the source's columns, with their types, and a unique
    -- index on key: checked before any request is sent
    FOR bad IN
      SELECT s.attname, pg_catalog.format_type(s.atttypid, s.atttypmod) AS want,
             pg_catalog.format_type(t.atttypid, t.atttypmod) AS have
        FROM pg_catalog.pg_attribute s
        LEFT JOIN pg_catalog.pg_attribute t
          ON t.attrelid = tgt AND t.attname = s.attname AND NOT t.attisdropped
       WHERE s.attrelid = src AND s.attnum > 0 AND NOT s.attisdropped
         AND (t.attname IS NULL OR (t.atttypid, t.atttypmod) <> (s.atttypid, s.atttypmod))
       ORDER BY s.attnum LIMIT 1
    LOOP
      IF bad.have IS NULL THEN
        RAISE EXCEPTION 'target % has no column "%"', tgt, bad.attname
          USING DETAIL = format('The source %s has column "%s" of type %s.', src, bad.attname, bad.want),
                HINT = 'Add the column to the target, or give a new target name: makini_sync creates it.';
      END IF;
      RAISE EXCEPTION 'column "%" of target % has type %, not %', bad.attname, tgt, bad.have, bad.want
        USING DETAIL = format('The source %s has column "%s" of type %s.', src, bad.attname, bad.want);
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = tgt AND a.attname = 'key'
                   WHERE i.indrelid = tgt AND i.indisunique AND i.indnkeyatts = 1
                     AND i.indkey[0] = a.attnum AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
      RAISE EXCEPTION 'target % has no unique index on column "key"', tgt
        USING HINT = 'Add a PRIMARY KEY (key) to the target.';
    END IF;
  END IF;

  -- the last call's state; incremental if there is one for this source,
  -- its changes can be found (by updatedAt; in an expand table, replacing a
  -- changed parent's rows needs a parent.key column) and the caller did not
  -- ask for full
  SELECT pg_catalog.quote_ident(n.nspname) INTO ext_schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'makini_fdw';
  state_tab := ext_schema || '.makini_sync_state';
  EXECUTE format('SELECT source, watermark FROM %s WHERE target = $1', state_tab)
    INTO old_source, old_wm USING tgt;
  EXECUTE format('SELECT %s.makini_sync_capable($1)', ext_schema) INTO capable USING src;
  capable := capable AND (NOT is_expand OR parent_col IS NOT NULL);
  IF coalesce($3, false) OR old_source IS DISTINCT FROM src OR old_wm IS NULL OR NOT capable THEN
    run_mode := 'full';
  ELSE
    run_mode := 'incremental';
  END IF;
  -- the scan's filter and tracking: "<oid>" (full) or "<oid> <since in
  -- microseconds since 1970 UTC>" (exact, whatever the session's DateStyle)
  IF capable THEN
    sync_scan := src::oid::text ||
      CASE WHEN run_mode = 'incremental'
           THEN ' ' || (extract(epoch FROM old_wm - overlap) * 1000000)::bigint ELSE '' END;
  END IF;

  scan := format('SELECT %s FROM %s WHERE key IS NOT NULL', cols, src);

  -- one scan of the source; while it runs, makini_fdw.progress_interval,
  -- from makini.sync_notice_interval, has the foreign scan raise a progress
  -- NOTICE after a page once the interval passed (restored after the block
  -- below, whose other statements read no foreign table)
  RAISE NOTICE 'makini_sync: % sync of % %', run_mode, src,
    CASE WHEN run_mode = 'full' THEN '(every record)'
         ELSE format('(updated since %s)', old_wm - overlap) END;
  notice_ms := greatest(least(extract(epoch FROM coalesce(nullif(pg_catalog.current_setting('makini.sync_notice_interval', true), ''),
                                                          '10 s')::interval) * 1000, 2147483647), 0)::bigint::text;
  old_progress := pg_catalog.current_setting('makini_fdw.progress_interval', true);
  old_sync_scan := pg_catalog.current_setting('makini_fdw.sync_scan', true);
  PERFORM pg_catalog.set_config('makini_fdw.progress_interval', notice_ms, true);
  PERFORM pg_catalog.set_config('makini_fdw.sync_scan', coalesce(sync_scan, ''), true);
  IF created THEN
    -- a new target: made by CREATE TABLE AS, the fastest way in (bulk
    -- insertion); then what (LIKE source) would have given it (the NOT NULL
    -- columns), its primary key, and for an expand table an index on the
    -- parent key, by which incremental calls replace a changed parent's rows
    EXECUTE format('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) CREATE TABLE %s AS %s',
                   tgt_sql, scan)
      INTO plan;
    tgt := pg_catalog.to_regclass(tgt_name);
    SELECT string_agg(format('ALTER COLUMN %I SET NOT NULL, ', attname), '' ORDER BY attnum) INTO not_null
      FROM pg_catalog.pg_attribute WHERE attrelid = src AND attnum > 0 AND attnotnull AND NOT attisdropped;
    EXECUTE format('ALTER TABLE %s %sADD PRIMARY KEY (key)', tgt, coalesce(not_null, ''));
    IF is_expand AND capable THEN
      EXECUTE format('CREATE INDEX ON %s (%I)', tgt, parent_col);
    END IF;
  ELSIF run_mode = 'full' THEN
    EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s)', tgt) INTO empty_target;
  END IF;
  IF empty_target THEN
    -- an empty target: the scan straight into it, counted as they go in
    EXECUTE format('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) '
                   'WITH i AS (INSERT INTO %s (%s) %s ON CONFLICT (key) DO NOTHING RETURNING 1) '
                   'SELECT pg_catalog.set_config(''makini.sync_result'', count(*)::text, true) FROM i',
                   tgt, cols, scan)
      INTO plan;
    n_upserted := pg_catalog.current_setting('makini.sync_result')::bigint;
  ELSIF NOT created THEN
    -- else one statement: the scan's rows (s, a key sent twice counting in
    -- its latest version: c) replace the target's rows of their keys, and
    -- rows are deleted: those the source no longer returns (full), or the
    -- lines gone from a changed parent (incremental, expand).  An
    -- incremental call reads the target's rows concerned once (m: by key,
    -- or in an expand table by the changed parents' keys, which the index
    -- on the parent column serves), a full one the whole target.  A row
    -- equal to the target's, byte for byte (record_image_eq: 1.0 and 1.00
    -- differ), is left alone (not even locked).
    IF run_mode = 'full' THEN
      old_rows := tgt::text;
      gone := 'NOT EXISTS (SELECT FROM s WHERE s.key = t.key)';
    ELSE
      old_rows := 'm';
      gone := CASE WHEN is_expand THEN 't.key = ANY (ARRAY(SELECT m.key FROM m WHERE NOT EXISTS (SELECT FROM s WHERE s.key = m.key)))'
                   ELSE 'false' END;
    END IF;
    EXECUTE format('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) '
                   'WITH s AS MATERIALIZED (%s), '
                   'c AS (SELECT DISTINCT ON (key) %s FROM s ORDER BY key%s), '
                   'm AS MATERIALIZED (SELECT %s FROM %s t WHERE t.%I = ANY (ARRAY(SELECT DISTINCT s.%I FROM s))), '
                   'd AS (DELETE FROM %s t WHERE %s RETURNING 1), '
                   'u AS (INSERT INTO %s AS t (%s) SELECT %s FROM c '
                   'WHERE NOT EXISTS (SELECT FROM %s o WHERE o.key = c.key AND pg_catalog.record_image_eq(ROW(%s), ROW(%s))) '
                   'ON CONFLICT (key) DO UPDATE SET %s RETURNING 1) '
                   'SELECT pg_catalog.set_config(''makini.sync_result'', (SELECT count(*) FROM u) || ''|'' || '
                   '(SELECT count(*) FROM d), true)',
                   scan,
                   cols, CASE WHEN ver_col IS NOT NULL THEN format(', %I DESC NULLS LAST', ver_col) ELSE '' END,
                   cols, tgt, coalesce(parent_col, 'key'), coalesce(parent_col, 'key'),
                   tgt, gone,
                   tgt, cols, new_row,
                   old_rows, old_row, new_row,
                   coalesce(set_list, 'key = EXCLUDED.key'))
      INTO plan;
    n_upserted := split_part(pg_catalog.current_setting('makini.sync_result'), '|', 1)::bigint;
    n_deleted := split_part(pg_catalog.current_setting('makini.sync_result'), '|', 2)::bigint;
  END IF;
  PERFORM pg_catalog.set_config('makini_fdw.progress_interval', old_progress, true);
  PERFORM pg_catalog.set_config('makini_fdw.sync_scan', coalesce(old_sync_scan, ''), true);

  -- the scan's counters, read from its node at once (its rows: the records
  -- fetched), and the new state; the watermark is the latest updatedAt the
  -- scan read (never the local clock), and an incremental call that read
  -- none keeps the last one
  SELECT coalesce(sum((n->'Actual Rows')::numeric), 0)::bigint,   -- 18 writes "600.00"
         coalesce(sum((n->'Makini HTTP requests')::numeric), 0)::bigint,
         coalesce(sum((n->'Makini pages')::numeric), 0)::bigint,
         max(nullif(n->>'Makini latest updatedAt', 'none')::timestamptz)
    INTO n_fetched, n_requests, n_pages, new_wm
    FROM jsonb_path_query(plan, 'strict $.**?(@."Node Type" == "Foreign Scan")') n;
  n_upserted := coalesce(n_upserted, n_fetched);   -- a created target: every record
  IF run_mode = 'incremental' THEN
    new_wm := greatest(new_wm, old_wm);
  END IF;
  EXECUTE format('INSERT INTO %s AS s VALUES ($1, $2, $3, $4, now(), $5) ON CONFLICT (target) DO UPDATE '
                 'SET source = EXCLUDED.source, watermark = EXCLUDED.watermark, last_mode = EXCLUDED.last_mode, '
                 'last_sync_at = EXCLUDED.last_sync_at, last_fetched = EXCLUDED.last_fetched', state_tab)
    USING tgt, src, new_wm, run_mode, n_fetched;

  RAISE NOTICE 'makini_sync: % records in % pages (% HTTP requests) in % s, % records/s; % rows upserted, % deleted',
    n_fetched, n_pages, n_requests,
    round(extract(epoch FROM clock_timestamp() - started)::numeric, 1),
    round(n_fetched / greatest(extract(epoch FROM clock_timestamp() - started), 0.001)::numeric),
    n_upserted, n_deleted;
  RETURN QUERY SELECT tgt, run_mode, n_fetched, n_upserted, n_deleted, n_requests, new_wm;
END
$$;

COMMENT ON FUNCTION makini_sync_run(regclass, text, boolean) IS
  'the work of makini_sync (call makini_sync instead)';

-- a SQL-standard body binds makini_sync_run when created: relocation-safe
CREATE FUNCTION makini_sync(source regclass, target text, full boolean DEFAULT false)
RETURNS TABLE (target regclass, mode text, fetched bigint, upserted bigint,
               deleted bigint, requests bigint, watermark timestamptz)
LANGUAGE sql VOLATILE
BEGIN ATOMIC
  SELECT * FROM makini_sync_run($1, $2, $3);
END;

COMMENT ON FUNCTION makini_sync(regclass, text, boolean) IS
  'brings the local table target up to date with the makini_fdw foreign table source: every record on the first call or with full => true, else only those changed since the last call (by updatedAt); see makini_sync_state';
