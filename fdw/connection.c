/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  Where the SQL side meets the HTTP side: one HTTP endpoint per user
 *		  mapping, configured from the catalogs, and requests whose failures
 *		  become SQL errors.
 *
 * http.c gets everything from here as plain values (makini_http.h): the
 * server's options, the mapping's token.  Like postgres_fdw, a syscache
 * callback marks the entries of a changed server or user mapping; their
 * endpoint drops the token at once and is configured again on next use.
 * Before each request the host is checked again (makini_fdw.allowed_hosts
 * or the server's owner may have changed), and while a request is awaited
 * an error context names it: GET and the path, never the token.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "makini_fdw.h"

/* connection cache entry, one per user mapping; never removed */
struct MakiniConnection
{
	Oid			umid;			/* hash key: user mapping oid */
	bool		invalidated;	/* server or mapping changed */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
	Oid			userid;			/* the mapping's user (InvalidOid: PUBLIC) */
	Oid			serverid;
	char		servername[NAMEDATALEN];
	char	   *host;			/* in TopMemoryContext */
	Oid			owner;			/* the server's owner */
	MakiniEndpoint *endpoint;
};

static HTAB *ConnectionHash = NULL;


/*
 * Syscache callback: mark the entries of a changed server or user mapping
 * invalid (as postgres_fdw does); their endpoints drop the token now.
 */
static void
makini_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	MakiniConnection *conn;

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = (MakiniConnection *) hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID &&
			 conn->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID &&
			 conn->mapping_hashvalue == hashvalue))
		{
			conn->invalidated = true;
			if (conn->endpoint != NULL)
				makini_endpoint_forget(conn->endpoint);
		}
	}
}

/*
 * The token of a user mapping; an error if it has none.
 */
static const char *
mapping_token(UserMapping *um, const char *servername)
{
	const char *token = makini_get_token(um, servername);

	if (token == NULL || token[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("user mapping for Makini server \"%s\" has no token",
						servername),
				 errhint("Use ALTER USER MAPPING ... OPTIONS (ADD token '...').")));
	return token;
}

/*
 * (Re)build a cache entry: the endpoint gets the server's connection-level
 * options (url, api_version, timeouts, retries, rate budget) and the
 * mapping's token; a table's on_unreachable is its scan's business
 * (MAKINI_SKIP_UNREACHABLE).  Like postgres_fdw, clear invalidated first:
 * an invalidation arriving while we read the catalogs must not be lost.
 */
static void
connection_build(MakiniConnection *conn, const MakiniServerOptions *opts,
				 UserMapping *um)
{
	MakiniHttpConfig cfg;

	conn->invalidated = false;
	conn->userid = um->userid;
	conn->serverid = um->serverid;
	conn->server_hashvalue =
		GetSysCacheHashValue1(FOREIGNSERVEROID, ObjectIdGetDatum(um->serverid));
	conn->mapping_hashvalue =
		GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(um->umid));
	strlcpy(conn->servername, opts->servername, NAMEDATALEN);
	if (conn->host != NULL)
		pfree(conn->host);
	conn->host = MemoryContextStrdup(TopMemoryContext, opts->host);
	conn->owner = opts->owner;

	cfg.name = opts->servername;
	cfg.url = opts->url ? opts->url : MAKINI_DEFAULT_URL;
	cfg.proxy = opts->proxy;
	cfg.ca_file = opts->ca_file;
	cfg.api_version = opts->api_version;
	cfg.connect_timeout = opts->connect_timeout;
	cfg.request_timeout = opts->request_timeout;
	cfg.max_retries = opts->max_retries;
	cfg.max_retry_wait = opts->max_retry_wait;
	cfg.max_concurrent_requests = opts->max_concurrent_requests;

	if (conn->endpoint == NULL)
		conn->endpoint = makini_endpoint_create();
	makini_endpoint_configure(conn->endpoint, &cfg,
							  mapping_token(um, opts->servername));
}

/*
 * Return the cached connection of a user mapping, building it on first use
 * and after an invalidation.
 */
MakiniConnection *
makini_get_connection(const MakiniServerOptions *opts, UserMapping *um)
{
	MakiniConnection *conn;
	bool		found;

	if (ConnectionHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(MakiniConnection);
		ConnectionHash = hash_create("makini_fdw connections", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
									  makini_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID,
									  makini_inval_callback, (Datum) 0);
	}

	conn = hash_search(ConnectionHash, &um->umid, HASH_ENTER, &found);
	if (!found)
		memset((char *) conn + sizeof(Oid), 0,
			   sizeof(MakiniConnection) - sizeof(Oid));

	if (conn->endpoint == NULL || conn->invalidated ||
		!makini_endpoint_has_token(conn->endpoint))
		connection_build(conn, opts, um);
	return conn;
}

/*
 * May one more request of the connection go on the wire now, beyond the
 * one a scan cannot do without?  Scans ask before sending a page ahead.
 */
bool
makini_connection_has_room(MakiniConnection *conn)
{
	return makini_endpoint_has_room(conn->endpoint);
}

/*
 * Start a GET of the server's url + path (see makini_http_start).  A scan
 * that started before an invalidation goes on with the mapping's current
 * token; the host must still be allowed.
 */
MakiniRequest *
makini_request_start(MakiniConnection *conn, const char *path,
					 MakiniStats *stats)
{
	MakiniServerOptions opts = {0};

	if (!makini_endpoint_has_token(conn->endpoint))
		makini_endpoint_set_token(conn->endpoint,
								  mapping_token(GetUserMapping(conn->userid,
															   conn->serverid),
												conn->servername));
	opts.servername = conn->servername;
	opts.host = conn->host;
	opts.owner = conn->owner;
	makini_check_host_allowed(&opts);
	return makini_http_start(conn->endpoint, path, stats);
}

/* Error context callback: the request being awaited (never the token). */
static void
request_error_context(void *arg)
{
	errcontext("Makini request: GET %s",
			   makini_request_path((MakiniRequest *) arg));
}

/*
 * Wait for a request's final result, with an error context naming it.
 * Success: the response (a deprecated API version warns once).  Failure:
 * returned with MAKINI_NO_RAISE (or MAKINI_ALLOW_404 for a 404), else
 * reported by errors.c, which raises or, for an unreachable server with
 * MAKINI_SKIP_UNREACHABLE (the caller's table has on_unreachable 'skip'),
 * warns: then NULL.
 */
MakiniResponse *
makini_request_wait(MakiniRequest *req, int flags)
{
	ErrorContextCallback errcallback;
	MakiniResponse *resp;
	MakiniReplyContext ctx;

	errcallback.callback = request_error_context;
	errcallback.arg = req;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	resp = makini_http_finish(req);
	ctx.servername = makini_request_server_name(req);
	ctx.path = makini_request_path(req);
	ctx.request_id = resp->request_id;
	if (makini_response_ok(resp))
		makini_check_deprecation(resp, &ctx);
	else if (!(flags & MAKINI_NO_RAISE) &&
			 !((flags & MAKINI_ALLOW_404) &&
			   makini_classify(resp) == MAKINI_FAIL_NOT_FOUND))
	{
		makini_report_failure(resp, &ctx,
							  (flags & MAKINI_SKIP_UNREACHABLE) != 0);
		resp = NULL;
	}

	error_context_stack = errcallback.previous;
	return resp;
}

/*
 * One GET: start it and wait for its final result.
 */
MakiniResponse *
makini_http_get(MakiniConnection *conn, const char *path, MakiniStats *stats,
				int flags)
{
	return makini_request_wait(makini_request_start(conn, path, stats), flags);
}
