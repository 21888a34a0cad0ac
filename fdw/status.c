/*-------------------------------------------------------------------------
 *
 * status.c
 *		  makini_connection_status() and makini_fdw_version().
 *
 * makini_connection_status() asks each Makini connection about itself
 * (GET /api/integrations/current) and reports the answer as a row.  It is
 * meant to drive dashboards, so a connection that cannot be reached, a bad
 * token or a garbled reply are reported in the row, never raised; only
 * asking about a server that is not a usable makini_fdw server raises.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "makini_fdw.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define STATUS_PATH "/api/integrations/current"

/* the columns of makini_connection_status() */
enum StatusColumn
{
	COL_SERVER,
	COL_REACHABLE,
	COL_PROVIDER,				/* COL_PROVIDER .. COL_SYNC_UPDATED_AT follow */
	COL_COMPANY_NAME,			/* the order of status_fields[] */
	COL_SYNC_STATUS,
	COL_SYNC_UPDATED_AT,
	COL_API_VERSION,
	COL_ERROR,
	NUM_STATUS_COLUMNS
};

/* the reply's fields, first inside "data", then at top level */
#define NUM_STATUS_FIELDS 4
static const char *const status_paths[2 * NUM_STATUS_FIELDS] = {
	"data.provider", "data.company_name", "data.sync_status",
	"data.sync_updated_at",
	"provider", "company_name", "sync_status", "sync_updated_at"
};

/* the handler of makini_fdw.c; identifies servers of a makini_fdw wrapper */
extern PGDLLEXPORT Datum makini_fdw_handler(PG_FUNCTION_ARGS);

/*
 * True if the wrapper fdwid is served by this library (a wrapper may have
 * any name, so its handler is what tells).
 */
bool
makini_is_wrapper(Oid fdwid)
{
	Oid			handler = GetForeignDataWrapper(fdwid)->fdwhandler;
	char	   *name;
	FmgrInfo	finfo;

	if (!OidIsValid(handler))
		return false;
	/* look at the name first, to load no other wrapper's library */
	name = get_func_name(handler);
	if (name == NULL || strcmp(name, "makini_fdw_handler") != 0)
		return false;
	fmgr_info(handler, &finfo);
	return finfo.fn_addr == makini_fdw_handler;
}

/* True if the current user has USAGE on the server and a user mapping. */
static bool
server_usable(Oid serverid)
{
	Oid			userid = GetUserId();

	if (makini_server_aclcheck(serverid, userid) != ACLCHECK_OK)
		return false;
	return SearchSysCacheExists2(USERMAPPINGUSERSERVER,
								 ObjectIdGetDatum(userid),
								 ObjectIdGetDatum(serverid)) ||
		SearchSysCacheExists2(USERMAPPINGUSERSERVER,
							  ObjectIdGetDatum(InvalidOid),
							  ObjectIdGetDatum(serverid));
}

/* list_sort comparator of C strings */
static int
compare_names(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/*
 * Names of the makini_fdw servers the current user may use, sorted; the
 * catalog scan is finished before any request is sent.
 */
static List *
usable_server_names(void)
{
	Relation	rel = table_open(ForeignServerRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tuple;
	List	   *names = NIL;

	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_foreign_server srv = (Form_pg_foreign_server) GETSTRUCT(tuple);

		if (makini_is_wrapper(srv->srvfdw) && server_usable(srv->oid))
			names = lappend(names, pstrdup(NameStr(srv->srvname)));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	list_sort(names, compare_names);
	return names;
}

/*
 * Looks up a server named by the caller: it must exist (PostgreSQL's own
 * error otherwise), use makini_fdw, and be usable by the current user.
 */
static ForeignServer *
named_server(const char *name)
{
	ForeignServer *server = GetForeignServerByName(name, false);
	AclResult	aclresult;

	if (!makini_is_wrapper(server->fdwid))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("server \"%s\" is not a makini_fdw server", name),
				 errdetail("It uses foreign-data wrapper \"%s\".",
						   GetForeignDataWrapper(server->fdwid)->fdwname)));
	aclresult = makini_server_aclcheck(server->serverid, GetUserId());
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, name);
	return server;
}

/* True if the body's first non-blank character opens a JSON object. */
static bool
body_is_object(const MakiniResponse *resp)
{
	size_t		i;

	for (i = 0; i < resp->len; i++)
	{
		if (!isspace((unsigned char) resp->body[i]))
			return resp->body[i] == '{';
	}
	return false;
}

/*
 * Fills the connection columns from a 2xx reply; false if the body is not
 * a JSON object.  Fields are taken from "data" or, failing that, from the
 * top level; text arrives in UTF-8 and is converted to the database's
 * encoding.
 */
static bool
fill_from_reply(const MakiniResponse *resp, Datum *values, bool *nulls)
{
	char	   *found[2 * NUM_STATUS_FIELDS] = {0};
	int			i;

	if (resp->body == NULL || !body_is_object(resp) ||
		!makini_json_extract(resp->body, resp->len, 2 * NUM_STATUS_FIELDS,
							 status_paths, found))
		return false;

	for (i = 0; i < NUM_STATUS_FIELDS; i++)
	{
		char	   *v = found[i] ? found[i] : found[i + NUM_STATUS_FIELDS];
		int			col = COL_PROVIDER + i;
		TimestampTz ts;

		if (v == NULL)
			continue;
		if (col != COL_SYNC_UPDATED_AT)
			values[col] = CStringGetTextDatum(pg_any_to_server(v, strlen(v),
															   PG_UTF8));
		else if (makini_parse_iso_instant(v, strlen(v), &ts))
			values[col] = TimestampTzGetDatum(ts);
		else
			continue;
		nulls[col] = false;
	}
	if (resp->api_version)
	{
		values[COL_API_VERSION] = CStringGetTextDatum(resp->api_version);
		nulls[COL_API_VERSION] = false;
	}
	return true;
}

/* The error column for a 2xx reply that is not a JSON object. */
static char *
describe_bad_reply(const MakiniResponse *resp)
{
	return psprintf("invalid reply to GET %s: HTTP %ld with a body that is not a JSON object%s%s%s",
					STATUS_PATH, resp->status,
					resp->request_id ? " (request id " : "",
					resp->request_id ? resp->request_id : "",
					resp->request_id ? ")" : "");
}

/*
 * Asks one server's connection about itself and adds its row to the
 * result; failures of the connection go into the row, and so does a host
 * the server may not use (nothing is sent then): one such server must not
 * hide the others' rows from a dashboard.
 */
static void
add_status_row(ReturnSetInfo *rsinfo, ForeignServer *server, UserMapping *um)
{
	MakiniServerOptions opts;
	MakiniStats stats = {0};
	MakiniResponse *resp;
	Datum		values[NUM_STATUS_COLUMNS] = {0};
	bool		nulls[NUM_STATUS_COLUMNS];
	NameData   *srvname = palloc(sizeof(NameData));
	char	   *error = NULL;

	memset(nulls, true, sizeof(nulls));
	namestrcpy(srvname, server->servername);
	values[COL_SERVER] = NameGetDatum(srvname);
	nulls[COL_SERVER] = false;

	makini_get_server_options(server, &opts);
	if (!makini_host_allowed(&opts))
		error = psprintf("permission denied to use host \"%s\": the server's owner is not a superuser and the host is not in makini_fdw.allowed_hosts",
						 opts.host);
	else
	{
		resp = makini_http_get(makini_get_connection(&opts, um), STATUS_PATH,
							   &stats, MAKINI_NO_RAISE);
		if (!makini_response_ok(resp))
			error = makini_describe_failure(resp);
		else if (!fill_from_reply(resp, values, nulls))
			error = describe_bad_reply(resp);
	}

	values[COL_REACHABLE] = BoolGetDatum(error == NULL);
	nulls[COL_REACHABLE] = false;
	if (error)
	{
		values[COL_ERROR] = CStringGetTextDatum(error);
		nulls[COL_ERROR] = false;
	}

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * makini_connection_status(server name) and makini_connection_status():
 * one row for the named server, or for every makini_fdw server the current
 * user has USAGE on and a user mapping for.
 */
PG_FUNCTION_INFO_V1(makini_connection_status);

Datum
makini_connection_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ForeignServer *server;
	List	   *names;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);

	if (PG_NARGS() > 0)
		names = list_make1(NameStr(*PG_GETARG_NAME(0)));
	else
		names = usable_server_names();

	foreach(lc, names)
	{
		server = named_server((const char *) lfirst(lc));
		add_status_row(rsinfo, server,
					   GetUserMapping(GetUserId(), server->serverid));
	}
	return (Datum) 0;
}

/* makini_fdw_version(): the version of the loaded library. */
PG_FUNCTION_INFO_V1(makini_fdw_version);

Datum
makini_fdw_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(MAKINI_FDW_VERSION));
}
