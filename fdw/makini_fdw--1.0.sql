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
-- makini_sync is C (fdw/sync_run.c): a scheduled call runs in a new backend,
-- where PL/pgSQL's compilation and the planning of its catalog queries cost
-- more than an incremental call's own work.  One scan of the source fills
-- an empty target directly or else feeds one statement that upserts (and
-- deletes), with no temporary table, all in the caller's transaction.  The
-- setting makini_fdw.sync_scan has that scan send filter[updatedAt:gteq],
-- track updatedAt and hand its counts to makini_sync (fdw/sync.c): it needs
-- no column for it, so the imported purchase_order_lines is incremental as
-- it is.  The extension is relocatable: makini_sync finds the state table
-- in its own schema.
CREATE FUNCTION makini_sync_capable(source regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'makini_sync_capable'
LANGUAGE C STRICT STABLE;

COMMENT ON FUNCTION makini_sync_capable(regclass) IS
  'internal (makini_sync): can the changed records of this makini_fdw foreign table be found by updatedAt (its records'', or in an expand table their parents'')';

CREATE FUNCTION makini_sync(source regclass, target text, full boolean DEFAULT false)
RETURNS TABLE (target regclass, mode text, fetched bigint, upserted bigint,
               deleted bigint, requests bigint, watermark timestamptz)
AS 'MODULE_PATHNAME', 'makini_sync'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION makini_sync(regclass, text, boolean) IS
  'brings the local table target up to date with the makini_fdw foreign table source: every record on the first call or with full => true, else only those changed since the last call (by updatedAt); see makini_sync_state';
