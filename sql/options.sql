--
-- options: validation of every makini_fdw option, at every level
--
-- try_option(level, option, value) sets one option on a throwaway object of
-- that level (wrapper, server, table, column, mapping), undoes it, and
-- returns 'ok' or the error's SQLSTATE and its detail (its message if it
-- has no detail).  visible(s) shows control characters as escapes.
CREATE SERVER opt_try FOREIGN DATA WRAPPER makini_fdw;
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_try OPTIONS (token 'tok_try');
CREATE FOREIGN TABLE opt_try_table (c text) SERVER opt_try;

CREATE FUNCTION try_option(level text, opt text, val text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  stmt text;
  state text;
  msg text;
  detail text;
BEGIN
  stmt := CASE level
    WHEN 'wrapper' THEN 'ALTER FOREIGN DATA WRAPPER makini_fdw OPTIONS (ADD %I %L)'
    WHEN 'server' THEN 'ALTER SERVER opt_try OPTIONS (ADD %I %L)'
    WHEN 'table' THEN 'ALTER FOREIGN TABLE opt_try_table OPTIONS (ADD %I %L)'
    WHEN 'column' THEN 'ALTER FOREIGN TABLE opt_try_table ALTER COLUMN c OPTIONS (ADD %I %L)'
    WHEN 'mapping' THEN 'ALTER USER MAPPING FOR CURRENT_USER SERVER opt_try OPTIONS ('
                        || CASE WHEN opt = 'token' THEN 'SET' ELSE 'ADD' END || ' %I %L)'
  END;
  BEGIN
    EXECUTE format(stmt, opt, val);
    RAISE EXCEPTION 'ok';       -- undo the change
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL;
  END;
  RETURN CASE WHEN state = 'P0001' AND msg = 'ok' THEN 'ok'
              ELSE state || ': ' || coalesce(nullif(detail, ''), msg) END;
END $$;

CREATE FUNCTION visible(s text) RETURNS text LANGUAGE sql AS
$$ SELECT replace(replace(replace(s, E'\t', '\t'), E'\n', '\n'), E'\r', '\r') $$;

-- every option is accepted where README.md puts it and rejected
-- (HV00D) everywhere else
SELECT o AS option,
       left(try_option('server', o, v), 5) AS server,
       left(try_option('table', o, v), 5) AS "table",
       left(try_option('column', o, v), 5) AS "column",
       left(try_option('mapping', o, v), 5) AS mapping,
       left(try_option('wrapper', o, v), 5) AS wrapper
FROM (VALUES ('url', 'https://api.makini.io'), ('allow_insecure', 'true'),
             ('api_version', 'v1'), ('page_size', '100'),
             ('connect_timeout', '10'), ('request_timeout', '60'),
             ('max_retries', '5'), ('max_retry_wait', '60'),
             ('async_capable', 'true'), ('max_concurrent_requests', '4'),
             ('on_unreachable', 'skip'),
             ('use_remote_estimate', 'true'), ('token', 'tok'),
             ('resource', 'vendors'), ('expand', 'lineItems'),
             ('field', 'code'), ('bogus', 'x')) AS t(o, v);

-- an unknown name lists the valid ones for that level
CREATE SERVER opt_bad FOREIGN DATA WRAPPER makini_fdw OPTIONS (token 'x');
ALTER FOREIGN TABLE opt_try_table OPTIONS (ADD url 'https://api.makini.io');
ALTER FOREIGN TABLE opt_try_table ALTER COLUMN c OPTIONS (ADD column_name 'x');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_try OPTIONS (ADD url 'https://api.makini.io');
ALTER FOREIGN DATA WRAPPER makini_fdw OPTIONS (ADD url 'https://api.makini.io');

-- one error of each kind in full: range, boolean, choice, string with detail
ALTER SERVER opt_try OPTIONS (ADD page_size '0');
ALTER SERVER opt_try OPTIONS (ADD async_capable 'maybe');
ALTER FOREIGN TABLE opt_try_table OPTIONS (ADD on_unreachable 'ignore');
ALTER FOREIGN TABLE opt_try_table OPTIONS (ADD resource '../admin');
ALTER FOREIGN TABLE opt_try_table ALTER COLUMN c OPTIONS (ADD field 'parent.');

-- values: range edges, number syntax, booleans, choices, strings
SELECT level, opt, visible(val) AS val,
       visible(try_option(level, opt, val)) AS result
FROM (VALUES
  ('server', 'page_size', '0'), ('server', 'page_size', '1'),
  ('server', 'page_size', '500'), ('server', 'page_size', '501'),
  ('table', 'page_size', '0'), ('table', 'page_size', '1'),
  ('table', 'page_size', '500'), ('table', 'page_size', '501'),
  ('server', 'connect_timeout', '0'), ('server', 'connect_timeout', '1'),
  ('server', 'connect_timeout', '3600'), ('server', 'connect_timeout', '3601'),
  ('server', 'request_timeout', '0'), ('server', 'request_timeout', '1'),
  ('server', 'request_timeout', '86400'), ('server', 'request_timeout', '86401'),
  ('server', 'max_retries', '-1'), ('server', 'max_retries', '0'),
  ('server', 'max_retries', '100'), ('server', 'max_retries', '101'),
  ('server', 'max_retry_wait', '-1'), ('server', 'max_retry_wait', '0'),
  ('server', 'max_retry_wait', '86400'), ('server', 'max_retry_wait', '86401'),
  ('server', 'max_concurrent_requests', '0'), ('server', 'max_concurrent_requests', '1'),
  ('server', 'max_concurrent_requests', '8'), ('server', 'max_concurrent_requests', '9'),
  ('server', 'page_size', ''), ('server', 'page_size', 'ten'),
  ('server', 'page_size', '1.5'), ('server', 'page_size', ' 5'),
  ('server', 'page_size', '+5'), ('server', 'page_size', '0x10'),
  ('server', 'page_size', '99999999999'), ('server', 'page_size', '007'),
  ('server', 'allow_insecure', 'false'), ('server', 'allow_insecure', 'maybe'),
  ('server', 'async_capable', 'off'), ('server', 'async_capable', ''),
  ('server', 'use_remote_estimate', 'yes'), ('table', 'use_remote_estimate', '2'),
  ('server', 'on_unreachable', 'error'), ('server', 'on_unreachable', 'skip'),
  ('server', 'on_unreachable', 'Skip'), ('table', 'on_unreachable', 'skip'),
  ('table', 'on_unreachable', ''),
  ('server', 'api_version', 'v1'), ('server', 'api_version', 'v1.2-beta_3'),
  ('server', 'api_version', ''), ('server', 'api_version', 'v 1'),
  ('server', 'api_version', 'v1/x'),
  ('table', 'resource', 'vendors'), ('table', 'resource', 'statuses/purchase-orders'),
  ('table', 'resource', 'purchase-orders.line-items'), ('table', 'resource', ''),
  ('table', 'resource', '/vendors'), ('table', 'resource', 'vendors/'),
  ('table', 'resource', 'statuses//purchase-orders'), ('table', 'resource', '..'),
  ('table', 'resource', 'vendors/../admin'), ('table', 'resource', './vendors'),
  ('table', 'resource', 'vendors?page=2'), ('table', 'resource', 'ven dors'),
  ('table', 'expand', 'lineItems'), ('table', 'expand', ''),
  ('table', 'expand', 'line.items'), ('table', 'expand', 'line items'),
  ('column', 'field', 'orderNo'), ('column', 'field', 'shipmentAddress.city'),
  ('column', 'field', 'parent.orderNo'), ('column', 'field', '*'),
  ('column', 'field', 'Cost Center'), ('column', 'field', ''),
  ('column', 'field', '.city'), ('column', 'field', 'shipmentAddress.'),
  ('column', 'field', 'a..b'), ('column', 'field', 'parent.*'),
  ('column', 'field', E'tab\there'),
  ('mapping', 'token', 'mk_live_0123456789abcdef'), ('mapping', 'token', ''),
  ('mapping', 'token', 'mk live'), ('mapping', 'token', E'mk\nX-Evil: 1')
) AS t(level, opt, val);

-- url: syntax
SELECT val, try_option('server', 'url', val) AS result
FROM (VALUES ('https://api.makini.io'), ('https://api.makini.io/'),
             ('HTTPS://API.MAKINI.IO:443/base/path'), ('https://10.1.2.3:8443'),
             ('https://[2001:db8::1]:8443/x'),
             ('ftp://api.makini.io'), ('api.makini.io'), ('https://'),
             ('https:///path'), ('https://user:secret@api.makini.io'),
             ('https://api.makini.io/?page=2'), ('https://api.makini.io/#top'),
             ('https://api.makini.io:0'), ('https://api.makini.io:65536'),
             ('https://api.makini.io:'), ('https://api.makini.io:44x'),
             ('https://api makini.io'), ('https://api_makini.io'),
             ('https://[::1'), ('https://api.makini.io\@evil.example')) AS t(val);

-- url: plain http only to loopback hosts
SELECT val, try_option('server', 'url', val) AS result
FROM (VALUES ('http://127.0.0.1:18765'), ('http://127.1.2.3'),
             ('http://localhost:8080/api'), ('http://LocalHost'),
             ('http://[::1]:18765'), ('http://api.makini.io'),
             ('http://10.0.0.1'), ('http://127.0.0.1.example.com'),
             ('http://127.1'), ('http://[::2]'),
             ('http://localhost.example.com')) AS t(val);
CREATE SERVER opt_http FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://erp-gateway.internal:8080');
-- allow_insecure in the same option list permits it
CREATE SERVER opt_http FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://erp-gateway.internal:8080', allow_insecure 'true');
-- ALTER is checked against the server's resulting options
ALTER SERVER opt_http OPTIONS (DROP allow_insecure);
ALTER SERVER opt_http OPTIONS (SET allow_insecure 'false');
ALTER SERVER opt_http OPTIONS (SET url 'http://other-gateway.internal');
ALTER SERVER opt_http OPTIONS (SET url 'https://erp-gateway.internal');
ALTER SERVER opt_http OPTIONS (DROP allow_insecure);
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'opt_http';
ALTER SERVER opt_http OPTIONS (SET url 'http://erp-gateway.internal');
ALTER SERVER opt_http OPTIONS (SET url 'http://127.0.0.1:8080');
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'opt_http';

-- all server options at once, then changed with SET / ADD / DROP
CREATE SERVER opt_srv FOREIGN DATA WRAPPER makini_fdw OPTIONS (
  url 'https://api.makini.io/', allow_insecure 'false', api_version 'v1',
  page_size '500', connect_timeout '1', request_timeout '86400',
  max_retries '0', max_retry_wait '0', async_capable 'false',
  on_unreachable 'skip', use_remote_estimate 'true');
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'opt_srv';
ALTER SERVER opt_srv OPTIONS (SET page_size '50', DROP async_capable,
  DROP use_remote_estimate, SET on_unreachable 'error');
ALTER SERVER opt_srv OPTIONS (SET page_size '501');
ALTER SERVER opt_srv OPTIONS (ADD page_size '20');
ALTER SERVER opt_srv OPTIONS (DROP bogus);
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'opt_srv';

-- a foreign table with all table options and column options
CREATE FOREIGN TABLE opt_lines (
  order_no text OPTIONS (field 'parent.orderNo'),
  city text OPTIONS (field 'shipmentAddress.city'),
  extra jsonb OPTIONS (field '*'),
  line_no integer
) SERVER opt_srv OPTIONS (resource 'purchase-orders', expand 'lineItems',
  page_size '7', on_unreachable 'skip', use_remote_estimate 'false');
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'opt_lines'::regclass;
SELECT attname, attfdwoptions FROM pg_attribute
 WHERE attrelid = 'opt_lines'::regclass AND attnum > 0 ORDER BY attnum;
ALTER FOREIGN TABLE opt_lines OPTIONS (SET page_size '0');
ALTER FOREIGN TABLE opt_lines OPTIONS (DROP expand, SET resource 'vendors');
ALTER FOREIGN TABLE opt_lines ALTER COLUMN city OPTIONS (SET field 'a..b');
ALTER FOREIGN TABLE opt_lines ALTER COLUMN city OPTIONS (DROP field);
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'opt_lines'::regclass;

-- user mappings: the token is required, well-formed and never echoed
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv;
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv OPTIONS (token '');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv OPTIONS (token 'mk secret');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv OPTIONS (token 'mk_secret_one');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv OPTIONS (DROP token);
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv OPTIONS (SET token E'mk_secret\r\n');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv OPTIONS (SET token 'mk_secret_two');
CREATE USER MAPPING FOR PUBLIC SERVER opt_srv;
CREATE USER MAPPING FOR PUBLIC SERVER opt_srv OPTIONS (token 'mk_public');

-- privacy: only the mapping's own user (with USAGE on the server) and
-- superusers see umoptions; pg_user_mapping itself is closed to others
CREATE ROLE regress_makini_other;
-- mapping_for(usename): the bootstrap superuser's name differs between
-- machines, so it is shown as 'superuser'
CREATE FUNCTION mapping_for(usename name) RETURNS text LANGUAGE sql AS
$$ SELECT CASE WHEN usename IN ('public', 'regress_makini_other') THEN usename::text
               ELSE 'superuser' END $$;
GRANT USAGE ON FOREIGN SERVER opt_srv TO regress_makini_other;
CREATE USER MAPPING FOR regress_makini_other SERVER opt_srv
  OPTIONS (token 'mk_other');
SELECT srvname, mapping_for(usename), umoptions
  FROM pg_user_mappings WHERE srvname = 'opt_srv' ORDER BY 1, 2;
SET ROLE regress_makini_other;
SELECT srvname, mapping_for(usename), umoptions
  FROM pg_user_mappings WHERE srvname IN ('opt_srv', 'plant_a') ORDER BY 1, 2;
SELECT umoptions FROM pg_user_mapping;
RESET ROLE;
REVOKE USAGE ON FOREIGN SERVER opt_srv FROM regress_makini_other;
SET ROLE regress_makini_other;
-- without USAGE on the server, not even its own
SELECT srvname, mapping_for(usename), umoptions
  FROM pg_user_mappings WHERE srvname = 'opt_srv' ORDER BY 1, 2;
RESET ROLE;

-- options as the FDW uses them: the table's page_size wins over the
-- server's, the resource defaults to the table name with '_' -> '-'
CREATE FUNCTION makini_request_of(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
    IF line ~ 'Makini request' THEN
      RETURN NEXT btrim(line);
    END IF;
  END LOOP;
END $$;
CREATE FOREIGN TABLE purchase_order_statuses (key text) SERVER opt_srv;
SELECT makini_request_of('SELECT * FROM purchase_order_statuses');
ALTER FOREIGN TABLE purchase_order_statuses OPTIONS (ADD page_size '7');
SELECT makini_request_of('SELECT * FROM purchase_order_statuses');
ALTER FOREIGN TABLE purchase_order_statuses
  OPTIONS (ADD resource 'statuses/purchase-orders');
SELECT makini_request_of('SELECT * FROM purchase_order_statuses');
-- a table name that makes no resource path needs the option
CREATE FOREIGN TABLE "open orders" (key text) SERVER opt_srv;
EXPLAIN (COSTS OFF) SELECT * FROM "open orders";
-- the http rule is checked again where the options are used: a server made
-- while the validator was off is refused at planning
ALTER FOREIGN DATA WRAPPER makini_fdw NO VALIDATOR;
ALTER SERVER opt_http OPTIONS (SET url 'http://erp-gateway.internal');
ALTER FOREIGN DATA WRAPPER makini_fdw VALIDATOR makini_fdw_validator;
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_http OPTIONS (token 'tok_http');
CREATE FOREIGN TABLE opt_http_vendors (key text) SERVER opt_http
  OPTIONS (resource 'vendors');
EXPLAIN (COSTS OFF) SELECT * FROM opt_http_vendors;

-- clean up (objects one by one: CASCADE would print the mappings' user)
DROP FOREIGN TABLE opt_http_vendors, "open orders", purchase_order_statuses,
  opt_lines, opt_try_table;
DROP USER MAPPING FOR CURRENT_USER SERVER opt_http;
DROP USER MAPPING FOR CURRENT_USER SERVER opt_srv;
DROP USER MAPPING FOR PUBLIC SERVER opt_srv;
DROP USER MAPPING FOR regress_makini_other SERVER opt_srv;
DROP USER MAPPING FOR CURRENT_USER SERVER opt_try;
DROP SERVER opt_http, opt_srv, opt_try;
DROP ROLE regress_makini_other;
DROP FUNCTION try_option(text, text, text), visible(text),
  makini_request_of(text), mapping_for(name);
