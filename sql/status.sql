--
-- status: makini_connection_status() and makini_fdw_version()
--
SELECT makini_fdw_version() ~ '^\d+\.\d+\.\d+$' AS version_ok;

-- status_truth(token): the "data" of GET /api/integrations/current as the
-- simulator serves it to that token, read with curl and jsonb (not by
-- makini_fdw): what makini_connection_status() must report
CREATE FUNCTION status_truth(token text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  doc jsonb;
BEGIN
  IF token !~ '^tok_[a-z_]+$' THEN
    RAISE EXCEPTION 'status_truth(): bad token';
  END IF;
  IF to_regclass('pg_temp.status_reply') IS NULL THEN
    CREATE TEMP TABLE status_reply (doc jsonb);
  END IF;
  TRUNCATE status_reply;
  EXECUTE format($c$COPY status_reply FROM PROGRAM 'curl -s -S --max-time 20 -H "Authorization: Bearer %s" http://127.0.0.1:18765/api/integrations/current | tr -d ''\n''' WITH (FORMAT text)$c$, token);
  SELECT r.doc->'data' INTO doc FROM status_reply r;
  RETURN doc;
END $$;

CREATE TEMP TABLE truth_a AS SELECT status_truth('tok_plant_a') AS t;
SELECT sim('reset');
SELECT s.server, s.reachable,
       s.provider = t->>'provider' AS right_provider,
       s.company_name = t->>'company_name' AS right_company,
       s.sync_status = t->>'sync_status' AS right_sync_status,
       s.sync_updated_at = (t->>'sync_updated_at')::timestamptz AS right_sync_time,
       s.api_version, s.error
FROM makini_connection_status('plant_a') s, truth_a;
SELECT path, conn, authorized, api_version FROM sim_requests();

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
SELECT server, reachable, error ~* 'connect' AS error_says_connect
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
SELECT t->>'sync_updated_at' ~ '\.\d{6}5Z$' AS is_tie,
       s.sync_updated_at = (t->>'sync_updated_at')::timestamptz AS same_instant
FROM status_truth('tok_plant_c') t, makini_connection_status('status_c') s;
-- the api_version column is the X-Api-Version header checked as UTF-8:
-- bytes that are not are written \xNN, never stored as they came
SELECT sim('fault?kind=bad_header&header=api_version&path=/api/integrations/current');
SELECT server, reachable, api_version, error FROM makini_connection_status('status_c');
SELECT sim('reset');

DROP SERVER status_c CASCADE;
