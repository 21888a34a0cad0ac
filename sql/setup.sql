--
-- setup: the extension, the simulator's connections as servers, and helpers
-- that let the suites talk to the simulator (fault injection, request log,
-- ground-truth data). The simulator listens on 127.0.0.1:18765 (the harness
-- starts it).
--
CREATE EXTENSION makini_fdw;
SELECT extname, extversion FROM pg_extension WHERE extname = 'makini_fdw';

CREATE SERVER plant_a FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', max_retry_wait '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER plant_a OPTIONS (token 'tok_plant_a');

-- sim(admin): calls http://127.0.0.1:18765/_sim/<admin> and returns the reply
CREATE FUNCTION sim(admin text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  reply text;
BEGIN
  IF admin !~ '^[A-Za-z0-9_/?&=.,:%+-]*$' THEN
    RAISE EXCEPTION 'sim(): unsafe admin string %', admin;
  END IF;
  IF to_regclass('pg_temp.sim_reply') IS NULL THEN
    CREATE TEMP TABLE sim_reply (line text);
  END IF;
  TRUNCATE sim_reply;
  EXECUTE format($c$COPY sim_reply FROM PROGRAM 'curl -s -S --max-time 20 "http://127.0.0.1:18765/_sim/%s"' WITH (FORMAT text)$c$, admin);
  SELECT string_agg(line, E'\n') INTO reply FROM sim_reply;
  RETURN reply;
END $$;

-- sim_requests(): the simulator's request log since the last sim('reset');
-- arrived_ms is when a request arrived on the simulator's monotonic clock,
-- so only the differences between requests mean something
CREATE FUNCTION sim_requests() RETURNS TABLE (
  seq int, conn text, method text, path text, query text, params jsonb,
  status int, records int, bytes bigint, duration_ms numeric, api_version text,
  accept_encoding text, user_agent text, authorized boolean, arrived_ms numeric,
  fault text)
LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('pg_temp.sim_log') IS NULL THEN
  CREATE TEMP TABLE sim_log (
    seq int, conn text, method text, path text, query text, params jsonb,
    status int, records int, bytes bigint, duration_ms numeric, api_version text,
    accept_encoding text, user_agent text, authorized boolean, arrived_ms numeric,
    fault text);
  END IF;
  TRUNCATE sim_log;
  COPY sim_log FROM PROGRAM 'curl -s -S --max-time 20 http://127.0.0.1:18765/_sim/requests' WITH (FORMAT csv, HEADER);
  RETURN QUERY SELECT * FROM sim_log ORDER BY 1;
END $$;

-- sim_load(conn, table, target): loads the simulator's ground truth for one
-- table of one connection into a local table of the same shape
CREATE FUNCTION sim_load(conn text, tab text, target regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF conn !~ '^[a-z_]+$' OR tab !~ '^[a-z_]+$' THEN
    RAISE EXCEPTION 'sim_load(): bad names';
  END IF;
  EXECUTE format($c$COPY %s FROM PROGRAM 'curl -s -S --max-time 60 http://127.0.0.1:18765/_sim/data/%s/%s.csv' WITH (FORMAT csv, HEADER)$c$, target, conn, tab);
  EXECUTE format('SELECT count(*) FROM %s', target) INTO n;
  RETURN n;
END $$;

SELECT sim('reset');
