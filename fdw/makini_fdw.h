/*-------------------------------------------------------------------------
 *
 * makini_fdw.h
 *		  Shared declarations of makini_fdw: the interfaces between its files.
 *
 * The files, in the order a query meets them:
 *	 makini_fdw.c  module settings (_PG_init), the FDW handler, the planner:
 *				   paths, costs, estimates, the ForeignScan's fdw_private
 *	 options.c	   validation and lookup of server, table, column and user
 *				   mapping options; makini_fdw.allowed_hosts
 *	 model.c	   the API model: entities, fields, kinds, item endpoints and
 *				   the tables IMPORT FOREIGN SCHEMA makes (model.h)
 *	 pushdown.c	   which conditions and sort keys the API can evaluate, and
 *				   their values written as filters
 *	 request.c	   the path and query string of a request
 *	 scan.c		   the executor: page loop with pages ahead, async scans,
 *				   ANALYZE sampling, EXPLAIN
 *	 connection.c  an HTTP endpoint per user mapping, configured from the
 *				   catalogs; the error context naming the request
 *	 http.c		   the HTTP side (makini_http.h), which knows nothing of SQL:
 *				   libcurl requests, retries, rate budget, gzip (libdeflate),
 *				   waits on a WaitEventSet; failure.c classifies its failures,
 *				   remote.c makes remote text fit for messages
 *	 json.c		   the JSON tokenizer (its reader inline in json.h): checks
 *				   what PostgreSQL's parser checks; returns failures
 *	 page.c		   reads a reply with it: each record's values for the
 *				   column map, links.next and meta; returns failures
 *	 convert.c	   the column map, and JSON values into Datums
 *	 errors.c	   failures into SQL errors (SQLSTATE, DETAIL with the
 *				   request and its id, HINT)
 *	 import.c, status.c  IMPORT FOREIGN SCHEMA; makini_connection_status()
 *				   and makini_fdw_version()
 *	 sync.c		   what makini_sync asks of its scan: changed records
 *				   only, and the latest updatedAt (makini_fdw.sync_scan)
 *	 sync_run.c	   makini_sync itself: checks, one scan, upsert, state
 *	 compat.h	   the differences between PostgreSQL 15, 16, 17 and 18
 *
 * Data flow of a scan: the planner (makini_fdw.c, with pushdown.c) decides
 * what the API evaluates; scan.c builds each request (request.c), sends it
 * through connection.c to the HTTP side and waits for the reply, has page.c
 * read the reply into values and convert.c turn those into the tuple's
 * Datums.  A failed request or a reply unlike API.md becomes a SQL error in
 * errors.c; a value that does not fit its column, in convert.c (HV024).  The
 * facts of the Makini API the code relies on are in API.md (cited as
 * "API.md §N"); what users see is in README.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MAKINI_FDW_H
#define MAKINI_FDW_H

#include "postgres.h"

#include "commands/explain.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/bitmapset.h"
#include "nodes/parsenodes.h"
#include "nodes/pathnodes.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

#include "compat.h"
#include "makini_http.h"

#define MAKINI_DEFAULT_URL "https://api.makini.io"
#define MAKINI_API_PREFIX "/api/erp/"

/* ------------------------------------------------------------------------
 * options.c: validation and lookup of server, table, column and mapping
 * options.
 * ------------------------------------------------------------------------
 */
typedef struct MakiniServerOptions
{
	Oid			serverid;
	char	   *servername;
	Oid			owner;			/* the server's owner */
	char	   *url;			/* base URL, no trailing slash */
	char	   *host;			/* host of url, without brackets */
	bool		allow_insecure;
	char	   *proxy;			/* proxy URL, or NULL: no proxy */
	char	   *ca_file;		/* PEM file of trusted CAs, or NULL: system */
	char	   *api_version;	/* sent as X-Api-Version */
	int			page_size;		/* per_page (a table's option wins) */
	int			connect_timeout;	/* seconds */
	int			request_timeout;	/* seconds, one HTTP request */
	int			max_retries;	/* retries of one request */
	int			max_retry_wait; /* seconds waited in total for retries */
	bool		async_capable;
	int			max_concurrent_requests;	/* requests of the server in flight
											 * at once (API.md §3: 8) */
	bool		skip_unreachable;	/* on_unreachable 'skip' */
	bool		use_remote_estimate;
} MakiniServerOptions;

typedef struct MakiniTableOptions
{
	Oid			relid;
	MakiniServerOptions server; /* with the table's overrides applied */
	char	   *resource;		/* path under /api/erp/, e.g. "purchase-orders" */
	char	   *expand;			/* array field giving one row per element, or
								 * NULL */
} MakiniTableOptions;

extern void makini_get_server_options(ForeignServer *server,
									  MakiniServerOptions *opts);
extern MakiniTableOptions *makini_get_table_options(Oid relid);
extern char *makini_get_column_field(Oid relid, AttrNumber attnum,
									 const char *attname);
extern char *makini_camel_case(const char *name);
extern const char *makini_get_token(UserMapping *um, const char *servername);
extern char *makini_allowed_hosts;
extern void makini_check_host_allowed(const MakiniServerOptions *opts);
extern bool makini_host_allowed(const MakiniServerOptions *opts);

/* ------------------------------------------------------------------------
 * connection.c: an HTTP endpoint per user mapping, configured from the
 * catalogs; requests whose failures become SQL errors (errors.c).
 * ------------------------------------------------------------------------
 */

/* flags of makini_request_wait */
#define MAKINI_RAISE		0x00	/* ERROR (via errors.c) on failure */
#define MAKINI_NO_RAISE		0x01	/* return any final response */
#define MAKINI_ALLOW_404	0x02	/* return a 404 instead of raising */
#define MAKINI_SKIP_UNREACHABLE	0x04	/* warn, return NULL: server unreachable */

typedef struct MakiniConnection MakiniConnection;

extern MakiniConnection *makini_get_connection(const MakiniServerOptions *opts,
											   UserMapping *um);
extern bool makini_connection_has_room(MakiniConnection *conn);
extern MakiniRequest *makini_request_start(MakiniConnection *conn,
										   const char *path,
										   MakiniStats *stats);
extern MakiniResponse *makini_request_wait(MakiniRequest *req, int flags);
extern MakiniResponse *makini_http_get(MakiniConnection *conn, const char *path,
									   MakiniStats *stats, int flags);

/* ------------------------------------------------------------------------
 * errors.c: failures of requests and replies as SQL errors (SQLSTATE, DETAIL
 * with the request and its id, HINT).
 * ------------------------------------------------------------------------
 */

/* what a reply was an answer to, for error messages */
typedef struct MakiniReplyContext
{
	const char *servername;
	const char *path;			/* path and query, never the token */
	const char *request_id;		/* X-Request-Id of the reply, or NULL */
} MakiniReplyContext;

extern bool makini_report_failure(const MakiniResponse *resp,
								  const MakiniReplyContext *ctx,
								  bool skip_unreachable);
extern char *makini_describe_failure(const MakiniResponse *resp);
extern void makini_check_deprecation(const MakiniResponse *resp,
									 const MakiniReplyContext *ctx);
pg_noreturn extern void makini_bad_reply(const MakiniReplyContext *ctx,
										 const char *fmt,...) pg_attribute_printf(2, 3);

/* ------------------------------------------------------------------------
 * convert.c: the column map (column → field path, type input) and
 * JSON value → Datum conversion.
 * ------------------------------------------------------------------------
 */
typedef enum MakiniConvKind
{
	MAKINI_CONV_TEXT,			/* text */
	MAKINI_CONV_STRING,			/* other string types: "" stays "" */
	MAKINI_CONV_NUMERIC,
	MAKINI_CONV_TIMESTAMPTZ,
	MAKINI_CONV_TIMESTAMP,
	MAKINI_CONV_DATE,
	MAKINI_CONV_BOOL,
	MAKINI_CONV_JSONB,
	MAKINI_CONV_JSON,
	MAKINI_CONV_OTHER			/* any other type, through its input function */
} MakiniConvKind;

typedef struct MakiniColumn
{
	AttrNumber	attnum;			/* 1-based attribute number */
	char	   *attname;
	Oid			typid;
	int32		typmod;
	char	   *field;			/* the field option as given */
	List	   *path;			/* field path as String nodes, "parent."
								 * removed */
	bool		parent;			/* path starts at the parent record */
	bool		star;			/* field '*': unmapped top-level fields */
	bool		needed;			/* the query uses this column */
	int			slot;			/* index of its value in a parsed row, -1 if
								 * not needed */
	bool		dropped;
	MakiniConvKind conv;
	FmgrInfo	infunc;
	Oid			ioparam;
} MakiniColumn;

typedef struct MakiniColumnMap
{
	char	   *relname;		/* for error messages */
	int			ncols;			/* = tuple descriptor's natts */
	MakiniColumn *cols;			/* indexed by attnum - 1 */
	int			nslots;			/* values in a parsed row: one per needed
								 * column */
	int		   *slot_cols;		/* the column (attnum - 1) of each slot */
	char	   *expand;			/* array field, or NULL */
	int			track_slot;		/* slot of the record's (parent's) updatedAt
								 * read for makini_sync without a column,
								 * cols[ncols]; -1 if none */
	void	   *parser;			/* page.c's lookup structure, built lazily */
} MakiniColumnMap;

/* one JSON value found in a reply */
typedef enum MakiniValueKind
{
	MAKINI_VALUE_NULL = 0,		/* absent or JSON null */
	MAKINI_VALUE_STRING,		/* de-escaped string */
	MAKINI_VALUE_NUMBER,		/* number text as sent */
	MAKINI_VALUE_TRUE,
	MAKINI_VALUE_FALSE,
	MAKINI_VALUE_JSON			/* raw JSON text (objects, arrays; any value
								 * of a json/jsonb column) */
} MakiniValueKind;

typedef struct MakiniValue
{
	char	   *str;			/* len bytes, often inside the reply: not
								 * NUL-terminated */
	int			len;
	MakiniValueKind kind;
} MakiniValue;

extern MakiniColumnMap *makini_build_column_map(Relation rel,
												const MakiniTableOptions *topts,
												Bitmapset *attrs_used);
extern void makini_column_map_add_updated(MakiniColumnMap *map);
extern bool makini_parse_iso_instant(const char *s, int len,
									 TimestampTz *result);
extern void makini_convert_row(MakiniColumnMap *map, MakiniValue *rowvals,
							   const char *parent_key, const char *record_key,
							   Datum *values, bool *nulls,
							   const MakiniReplyContext *ctx);

/* ------------------------------------------------------------------------
 * json.c: the JSON tokenizer (its reader is in json.h, for page.c), and
 * page.c: one streaming pass over a reply with it.  Neither raises: a
 * reply that is not JSON, or not of the expected shape, comes back as a
 * failure, which the caller raises (makini_bad_reply).
 * ------------------------------------------------------------------------
 */
typedef struct MakiniJsonFailure
{
	int64		offset;			/* byte of the reply where it was found, or
								 * -1 */
	char	   *detail;			/* what was found there, a sentence for the
								 * error's detail */
} MakiniJsonFailure;

typedef struct MakiniPage
{
	int			nrows;
	int			ncols;			/* values per row: the map's nslots */
	MakiniValue *values;		/* nrows * ncols, row-major, by slot */
	char	  **row_keys;		/* record key per row, for error messages */
	char	  **row_parent_keys;	/* expand tables: the parent record's key */
	int			nrecords;		/* records in "data" */
	bool		has_next;		/* links.next is a string */
	char	   *next_link;
	int64		total;			/* meta.total, or -1 */
	int			current_page;	/* meta.current_page, or 0 */
	int			last_page;		/* meta.last_page, or 0 */
} MakiniPage;

extern MakiniPage *makini_parse_page(MakiniColumnMap *map, char *body,
									 size_t len, bool single_record,
									 MakiniJsonFailure *failure);
extern bool makini_json_extract(const char *body, size_t len, int npaths,
								const char *const *paths, char **values);

/* ------------------------------------------------------------------------
 * request.c: Makini request paths (filters, sort, paging).
 * ------------------------------------------------------------------------
 */
typedef struct MakiniFilter
{
	char	   *field;
	const char *op;				/* NULL for equality, else "contains",
								 * "startsWith", "gt", "gteq", "lt", "lteq" */
	char	   *value;
} MakiniFilter;

typedef struct MakiniSort
{
	char	   *field;
	bool		descending;
	bool		nulls_first;	/* the query's NULL placement (not the API's) */
	AttrNumber	attnum;			/* the sorted column */
} MakiniSort;

extern char *makini_build_path(const char *resource, const char *item_key,
							   List *filters, List *sorts, int per_page,
							   int page, bool display);

/* ------------------------------------------------------------------------
 * pushdown.c: which conditions the API can evaluate (planner), and their
 * values rendered as filters (executor).
 * ------------------------------------------------------------------------
 */
typedef enum MakiniOp
{
	MAKINI_OP_EQ,
	MAKINI_OP_CONTAINS,
	MAKINI_OP_STARTSWITH,
	MAKINI_OP_GT,
	MAKINI_OP_GTEQ,
	MAKINI_OP_LT,
	MAKINI_OP_LTEQ
} MakiniOp;

/* how a condition's value is written into the request */
typedef enum MakiniValueForm
{
	MAKINI_FORM_TEXT,			/* the value's text */
	MAKINI_FORM_INSTANT,		/* timestamptz/timestamp/date: bounds in UTC
								 * ISO 8601 */
	MAKINI_FORM_DAY				/* a date compared with the column's day in
								 * the session's TimeZone: a range */
} MakiniValueForm;

/* one condition the API evaluates: field op value */
typedef struct MakiniCond
{
	char	   *field;			/* top-level field of the (parent) record */
	MakiniOp	op;
	MakiniValueForm form;
	bool		in_list;		/* = ANY(array): one request per element */
	bool		key_lookup;		/* GET <resource>/<key> instead of a filter */
	bool		exact;			/* the API's semantics equal the SQL ones */
	Expr	   *expr;			/* the value (planner side) */
} MakiniCond;

extern bool makini_pushable_cond(PlannerInfo *root, RelOptInfo *baserel,
								 const MakiniTableOptions *topts,
								 Expr *clause, MakiniCond *cond);
extern char *makini_sortable_field(RelOptInfo *baserel,
								   const MakiniTableOptions *topts, Expr *expr);
extern bool makini_key_fits_path(const char *key);
extern List *makini_conds_to_private(List *conds);
extern List *makini_conds_from_private(List *private);
extern const char *makini_op_name(MakiniOp op);
extern int	makini_cond_slots(const MakiniCond *c);
extern char *makini_render_text(Datum value, Oid type);
extern bool makini_in_list_values(Datum array, List **values);
extern bool makini_cond_filters(const MakiniCond *c, Datum value, Oid type,
								List **filters);
extern MakiniCond *makini_changed_since_cond(TimestampTz since);
extern char *makini_render_instant(TimestampTz ts);

/* status.c: is a foreign-data wrapper served by this library? */
extern bool makini_is_wrapper(Oid fdwid);

/* sync.c: what makini_sync asks of its scan */
extern void makini_sync_define_setting(void);
extern bool makini_sync_tracks_changes(Oid relid);
extern bool makini_sync_scan_of(const MakiniTableOptions *topts, bool *track,
								TimestampTz *since);

/* what makini_sync's scan read: rows returned, requests, latest updatedAt */
typedef struct MakiniSyncCounts
{
	int64		rows;
	int64		requests;
	int64		pages;
	TimestampTz latest;			/* DT_NOBEGIN: none read, or not tracked */
} MakiniSyncCounts;

extern void makini_sync_counts_reset(void);
extern void makini_sync_note_scan(int64 rows, const MakiniStats *stats,
								  TimestampTz latest);
extern const MakiniSyncCounts *makini_sync_counts(void);

/* ------------------------------------------------------------------------
 * estimate.c: the size of a foreign table without ANALYZE, from the counts
 * (meta.total) the API gave in this backend.
 * ------------------------------------------------------------------------
 */
typedef struct MakiniSizeEstimate
{
	double		records;		/* records the pushed conditions let through */
	double		expansion;		/* rows per record */
} MakiniSizeEstimate;

extern void makini_estimate_note(const MakiniTableOptions *topts, List *filters,
								 int pageno, const MakiniPage *page);
extern void makini_estimate_size(PlannerInfo *root, RelOptInfo *baserel,
								 const MakiniTableOptions *topts, Oid userid,
								 List *filters, List *pushed, List *unsent,
								 MakiniSizeEstimate *est);

/* ------------------------------------------------------------------------
 * makini_fdw.c (planner) → scan.c (executor): fdw_private of a ForeignScan;
 * fdw_exprs holds the conditions' values.
 * ------------------------------------------------------------------------
 */
enum FdwScanPrivateIndex
{
	FdwScanPrivateConds,		/* serialized MakiniCond list */
	FdwScanPrivateSorts,		/* list of (field, descending, nulls_first,
								 * attnum) */
	FdwScanPrivateAttrs,		/* attnums the query uses (0 = whole row) */
	FdwScanPrivatePerPage,
	FdwScanPrivateLimit,		/* rows the query needs at most, or -1 */
	FdwScanPrivateSync,			/* makini_sync's scan: counts go to it */
	FdwScanPrivateTrack			/* ... and it tracks the latest updatedAt
								 * (sync.c) */
};

/* scan.c: the executor callbacks */
extern int	makini_progress_interval;
extern void makiniBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *makiniIterateForeignScan(ForeignScanState *node);
extern void makiniReScanForeignScan(ForeignScanState *node);
extern void makiniEndForeignScan(ForeignScanState *node);
extern void makiniExplainForeignScan(ForeignScanState *node, ExplainState *es);
extern bool makiniAnalyzeForeignTable(Relation relation,
									  AcquireSampleRowsFunc *func,
									  BlockNumber *totalpages);
extern void makiniForeignAsyncRequest(AsyncRequest *areq);
extern void makiniForeignAsyncConfigureWait(AsyncRequest *areq);
extern void makiniForeignAsyncNotify(AsyncRequest *areq);

/* ------------------------------------------------------------------------
 * import.c / status.c
 * ------------------------------------------------------------------------
 */
extern List *makini_import_foreign_schema(ImportForeignSchemaStmt *stmt,
										  Oid serverOid);

#endif							/* MAKINI_FDW_H */
