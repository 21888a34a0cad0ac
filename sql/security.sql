--
-- security: who may point a server where.  A server owned by a role that is
-- not a superuser may use only the hosts in makini_fdw.allowed_hosts,
-- checked at CREATE/ALTER SERVER and again before every request;
-- allow_insecure and proxy are for superusers only, ca_file also for members
-- of pg_read_server_files.  The url rules for proxies, and that the proxy
-- option is what a scan uses (the postmaster's environment names a dead
-- proxy for every scheme: the harness starts the cluster so).
--
-- the cluster's setting (lib.sh sets it before the library loads): kept
-- when the library loads
SHOW makini_fdw.allowed_hosts;
LOAD 'makini_fdw';
SHOW makini_fdw.allowed_hosts;

CREATE ROLE regress_makini_user;
CREATE ROLE regress_makini_reader IN ROLE pg_read_server_files;
GRANT USAGE ON FOREIGN DATA WRAPPER makini_fdw
  TO regress_makini_user, regress_makini_reader;
CREATE SCHEMA sec;
GRANT USAGE, CREATE ON SCHEMA sec TO regress_makini_user;
-- ground truth of the vendors of plant_a
CREATE TABLE sec.truth_vendors (key text, name text, code text,
  company_key text, organization_key text, created_at timestamptz,
  updated_at timestamptz, deleted_at timestamptz);
SELECT sim_load('plant_a', 'vendors', 'sec.truth_vendors') > 0 AS loaded;
GRANT SELECT ON sec.truth_vendors TO regress_makini_user;

-- a non-superuser: only the listed hosts
SET makini_fdw.allowed_hosts = '127.0.0.1';
SET ROLE regress_makini_user;
SHOW makini_fdw.allowed_hosts;
SET makini_fdw.allowed_hosts = '*';                 -- superusers only
CREATE SERVER sec_default FOREIGN DATA WRAPPER makini_fdw;   -- api.makini.io
CREATE SERVER sec_srv FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://localhost:18765');
CREATE SERVER sec_srv FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765');
CREATE USER MAPPING FOR CURRENT_USER SERVER sec_srv
  OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE sec.vendors (key text, name text, code text,
  company_key text, organization_key text, created_at timestamptz,
  updated_at timestamptz, deleted_at timestamptz)
  SERVER sec_srv OPTIONS (resource 'vendors');
-- exactly the ground truth
SELECT count(*) > 0 AS some,
       NOT EXISTS (SELECT * FROM sec.vendors EXCEPT ALL SELECT * FROM sec.truth_vendors)
   AND NOT EXISTS (SELECT * FROM sec.truth_vendors EXCEPT ALL SELECT * FROM sec.vendors) AS exact
  FROM sec.vendors;
-- altering to another host, or setting what only superusers may
ALTER SERVER sec_srv OPTIONS (SET url 'http://localhost:18765');
ALTER SERVER sec_srv OPTIONS (ADD allow_insecure 'true');
ALTER SERVER sec_srv OPTIONS (ADD allow_insecure 'false');
ALTER SERVER sec_srv OPTIONS (ADD proxy 'http://127.0.0.1:9');
ALTER SERVER sec_srv OPTIONS (ADD ca_file '/etc/ssl/certs/ca-certificates.crt');
ALTER SERVER sec_srv OPTIONS (ADD page_size '50');   -- anything else is fine
RESET ROLE;

-- the setting changes later: checked again before every request, so no
-- request reaches the simulator (its request log)
SELECT max(seq) AS seq_before FROM sim_requests() \gset
SET makini_fdw.allowed_hosts = 'api.makini.io, localhost';
SET ROLE regress_makini_user;
SELECT count(*) FROM sec.vendors;
-- the status function reports it in the row (a dashboard's other servers stay listed)
SELECT server, reachable, error FROM makini_connection_status('sec_srv');
SELECT server, reachable, error IS NULL AS no_error FROM makini_connection_status() ORDER BY server;
RESET ROLE;
SELECT count(*) AS requests FROM sim_requests() WHERE seq > :seq_before;
SET makini_fdw.allowed_hosts = 'api.makini.io, [::1],127.0.0.1 ';
SET ROLE regress_makini_user;
SELECT count(*) = (SELECT count(*) FROM sec.truth_vendors) AS all_rows
  FROM sec.vendors;
RESET ROLE;
SET makini_fdw.allowed_hosts = '*';
SET ROLE regress_makini_user;
SELECT count(*) = (SELECT count(*) FROM sec.truth_vendors) AS all_rows
  FROM sec.vendors;
RESET ROLE;

-- a superuser may use any host and set every option; a superuser's server
-- given to a non-superuser is checked at its next request
SET makini_fdw.allowed_hosts = '127.0.0.1';
CREATE SERVER sec_given FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://localhost:18765');
GRANT USAGE ON FOREIGN SERVER sec_given TO regress_makini_user;
CREATE USER MAPPING FOR regress_makini_user SERVER sec_given
  OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE sec.vendors_given (key text)
  SERVER sec_given OPTIONS (resource 'vendors');
GRANT SELECT ON sec.vendors_given TO regress_makini_user;
SET ROLE regress_makini_user;
SELECT count(*) = (SELECT count(*) FROM sec.truth_vendors) AS all_rows
  FROM sec.vendors_given;
RESET ROLE;
ALTER SERVER sec_given OWNER TO regress_makini_user;
SELECT max(seq) AS seq_before FROM sim_requests() \gset
SET ROLE regress_makini_user;
SELECT count(*) FROM sec.vendors_given;
RESET ROLE;
SELECT count(*) AS requests FROM sim_requests() WHERE seq > :seq_before;
ALTER SERVER sec_given OWNER TO CURRENT_USER;
SET ROLE regress_makini_user;
SELECT count(*) = (SELECT count(*) FROM sec.truth_vendors) AS all_rows
  FROM sec.vendors_given;
RESET ROLE;
ALTER SERVER sec_given OPTIONS (ADD allow_insecure 'true', ADD ca_file '/etc/ssl/certs/ca-certificates.crt');

-- a member of pg_read_server_files may set ca_file, not proxy
SET ROLE regress_makini_reader;
CREATE SERVER sec_ca FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'https://127.0.0.1:18766', ca_file '/etc/ssl/certs/ca-certificates.crt');
ALTER SERVER sec_ca OPTIONS (ADD proxy 'https://127.0.0.1:9');
ALTER SERVER sec_ca OPTIONS (SET ca_file 'certs/ca.pem');
RESET ROLE;

-- proxies: the token never crosses a plain http:// proxy in clear text
-- unless allow_insecure: an http url through one needs a loopback proxy
CREATE SERVER sec_proxy FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', proxy 'http://proxy.example.com:3128');
CREATE SERVER sec_proxy FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', proxy 'socks5://127.0.0.1:1080');
CREATE SERVER sec_proxy FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', proxy 'http://user:secret@127.0.0.1:3128');
CREATE SERVER sec_proxy FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765', proxy 'http://proxy.example.com:3128',
           allow_insecure 'true');
ALTER SERVER sec_proxy OPTIONS (DROP allow_insecure);
-- an https url is tunnelled: the proxy sees only TLS
ALTER SERVER sec_proxy OPTIONS (SET url 'https://api.makini.io', DROP allow_insecure);
ALTER SERVER sec_proxy OPTIONS (SET proxy 'https://proxy.example.com:3128');
ALTER SERVER sec_proxy OPTIONS (SET url 'http://127.0.0.1:18765');
-- a scan goes through the proxy option, not the environment: this one is
-- dead (the environment's is too: every other suite's scans still work)
ALTER SERVER sec_proxy OPTIONS (SET proxy 'http://127.0.0.1:9', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER sec_proxy OPTIONS (token 'tok_plant_a');
CREATE FOREIGN TABLE sec.vendors_proxied (key text)
  SERVER sec_proxy OPTIONS (resource 'vendors');
\set VERBOSITY sqlstate
SELECT count(*) FROM sec.vendors_proxied;
\set VERBOSITY default
ALTER SERVER sec_proxy OPTIONS (DROP proxy);
SELECT count(*) = (SELECT count(*) FROM sec.truth_vendors) AS all_rows
  FROM sec.vendors_proxied;

-- ca_file is an absolute path
CREATE SERVER sec_bad FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (ca_file 'ca.pem');

RESET makini_fdw.allowed_hosts;
DROP SCHEMA sec CASCADE;
DROP SERVER sec_srv, sec_given, sec_ca, sec_proxy CASCADE;
DROP OWNED BY regress_makini_user, regress_makini_reader;
DROP ROLE regress_makini_user, regress_makini_reader;
