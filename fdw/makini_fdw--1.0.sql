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
  tables CONSTANT text[] := ARRAY['purchase_orders', 'purchase_order_lines',
    'vendors', 'purchase_order_statuses', 'currencies', 'units_of_measure'];
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
