--
-- status: makini_connection_status() and makini_fdw_version()
--
SELECT makini_fdw_version() ~ '^\d+\.\d+\.\d+$' AS version_ok;

SELECT sim('reset');
SELECT server, reachable, provider IS NOT NULL AS has_provider,
       company_name IS NOT NULL AS has_company, sync_status IS NOT NULL AS has_sync,
       sync_updated_at IS NOT NULL AS has_sync_time, api_version, error
FROM makini_connection_status('plant_a');
SELECT path, conn, authorized FROM sim_requests();

-- an offline connection and an expired token are reported, not raised
CREATE SERVER plant_offline FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_offline OPTIONS (token 'tok_offline');
CREATE SERVER plant_expired FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_expired OPTIONS (token 'tok_expired');
CREATE SERVER plant_nowhere FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:9', max_retries '0', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_nowhere OPTIONS (token 'tok_plant_a');
SELECT server, reachable, provider, error ~ '503' AND error ~ 'SYSTEM_UNAVAILABLE' AND error ~ 'req_' AS error_names_code
FROM makini_connection_status('plant_offline');
SELECT server, reachable, error ~ '401' AND error ~ 'TOKEN_EXPIRED' AS error_names_code
FROM makini_connection_status('plant_expired');
SELECT server, reachable, error IS NOT NULL AS has_error
FROM makini_connection_status('plant_nowhere');

-- without an argument: every makini_fdw server this user has a mapping for
SELECT server, reachable FROM makini_connection_status() ORDER BY server;

-- a server that does not exist is an error
SELECT * FROM makini_connection_status('no_such_server');

DROP SERVER plant_nowhere CASCADE;

-- sync_updated_at is read as scans read date-times, a rounding tie at the
-- seventh fractional digit as ::timestamptz reads the same text (plant_c)
CREATE SERVER status_c FOREIGN DATA WRAPPER makini_fdw OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER status_c OPTIONS (token 'tok_plant_c');
CREATE TEMP TABLE integration_c (doc jsonb);
COPY integration_c FROM PROGRAM 'curl -s -S --max-time 20 -H "Authorization: Bearer tok_plant_c" http://127.0.0.1:18765/api/integrations/current | tr -d ''\n''' WITH (FORMAT text);
SELECT doc->'data'->>'sync_updated_at' ~ '\.\d{6}5Z$' AS is_tie,
       s.sync_updated_at = (doc->'data'->>'sync_updated_at')::timestamptz AS same_instant
FROM integration_c, makini_connection_status('status_c') s;
-- the api_version column is the X-Api-Version header checked as UTF-8:
-- bytes that are not are written \xNN, never stored as they came
SELECT sim('fault?kind=bad_header&header=api_version&path=/api/integrations/current');
SELECT server, reachable, api_version, error FROM makini_connection_status('status_c');
SELECT sim('reset');

DROP SERVER status_c CASCADE;
