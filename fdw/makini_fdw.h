/*-------------------------------------------------------------------------
 *
 * makini_fdw.h
 *		  Shared declarations of makini_fdw: the interfaces between its files.
 *
 * Data flows one way: options.c resolves what the user configured,
 * pushdown.c/request.c turn a query into Makini requests, http.c sends them,
 * page.c parses the replies, convert.c turns values into Datums, and
 * errors.c is the one place where a failure becomes a SQL error.
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

#define MAKINI_FDW_VERSION "1.0.0"
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
											 * at once (CONTRACT §3: 8) */
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
 * http.c: libcurl transfers — a connection cache per user mapping, one
 * GET with retries and backoff, interruptible waits, non-blocking progress
 * for prefetch and async scans.
 * ------------------------------------------------------------------------
 */
typedef struct MakiniStats
{
	int64		requests;		/* HTTP requests sent, retries included */
	int64		retries;
	int64		pages;			/* successful list/item responses */
	int64		bytes;			/* body bytes received (decoded) */
} MakiniStats;

typedef struct MakiniResponse
{
	long		status;			/* HTTP status; 0 if no response arrived */
	char	   *body;			/* NUL-terminated decoded body */
	size_t		len;
	char	   *request_id;		/* X-Request-Id, or NULL */
	char	   *retry_after;	/* Retry-After as sent, or NULL */
	char	   *content_type;
	char	   *api_version;	/* X-Api-Version served, or NULL */
	char	   *sunset;			/* Sunset header, or NULL */
	bool		deprecated;		/* Deprecation header present */
	int			curl_code;		/* CURLcode; 0 when a response arrived */
	long		tls_verify_result;	/* X.509 verification result of the
									 * peer's certificate (0: trusted) */
	char	   *curl_error;		/* curl's error text, or NULL */
	int			attempts;		/* requests made for this result */
} MakiniResponse;

/* flags of makini_request_wait */
#define MAKINI_RAISE		0x00	/* ERROR (via errors.c) on failure */
#define MAKINI_NO_RAISE		0x01	/* return any final response */
#define MAKINI_ALLOW_404	0x02	/* return a 404 instead of raising */
#define MAKINI_SKIP_UNREACHABLE	0x04	/* warn, return NULL: server unreachable */

typedef struct MakiniConnection MakiniConnection;
typedef struct MakiniRequest MakiniRequest;

extern MakiniConnection *makini_get_connection(const MakiniServerOptions *opts,
											   UserMapping *um);
extern bool makini_connection_has_room(MakiniConnection *conn);
extern MakiniRequest *makini_request_start(MakiniConnection *conn,
										   const char *path,
										   MakiniStats *stats);
extern void makini_request_set_body_context(MakiniRequest *req,
											MemoryContext cxt);
extern bool makini_request_poll(MakiniRequest *req);
extern bool makini_request_wait_arrival(MakiniRequest *req);
extern MakiniResponse *makini_request_wait(MakiniRequest *req, int flags);
extern void makini_request_cancel(MakiniRequest *req);
extern long makini_request_timeout_ms(MakiniRequest *req);
extern bool makini_response_ok(const MakiniResponse *resp);

/* what makini_wait_sockets says a socket waits for */
#define MAKINI_WAIT_READ	0x01
#define MAKINI_WAIT_WRITE	0x02
extern int	makini_wait_sockets(int *fds, int *events, int max);
extern MakiniResponse *makini_http_get(MakiniConnection *conn, const char *path,
									   MakiniStats *stats, int flags);

/* ------------------------------------------------------------------------
 * errors.c: the only place a failure becomes a SQL error.
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
extern char *makini_remote_text(const char *s, size_t len);
extern bool makini_is_retryable(const MakiniResponse *resp);
extern bool makini_is_unreachable(const MakiniResponse *resp);
extern void makini_check_deprecation(const MakiniResponse *resp,
									 const MakiniReplyContext *ctx);
pg_noreturn extern void makini_bad_reply(const MakiniReplyContext *ctx,
										 const char *fmt,...) pg_attribute_printf(2, 3);
pg_noreturn extern void makini_report_bad_value(const MakiniReplyContext *ctx,
												const char *relname,
												const char *attname,
												const char *field,
												const char *record_key,
												const char *parent_key,
												const char *value,
												const char *reason);

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
extern bool makini_parse_iso_instant(const char *s, int len,
									 TimestampTz *result);
extern void makini_convert_row(MakiniColumnMap *map, MakiniValue *rowvals,
							   const char *parent_key, const char *record_key,
							   Datum *values, bool *nulls,
							   const MakiniReplyContext *ctx);

/* ------------------------------------------------------------------------
 * page.c: one streaming pass over a reply with PostgreSQL's JSON parser.
 * ------------------------------------------------------------------------
 */
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

extern bool makini_fast_json;
extern MakiniPage *makini_parse_page(MakiniColumnMap *map, char *body,
									 size_t len, bool single_record,
									 const MakiniReplyContext *ctx);
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
extern bool makini_has_item_endpoint(const char *resource);
extern bool makini_key_fits_path(const char *key);
extern List *makini_conds_to_private(List *conds);
extern List *makini_conds_from_private(List *private);
extern const char *makini_op_name(MakiniOp op);
extern int	makini_cond_slots(const MakiniCond *c);
extern char *makini_render_text(Datum value, Oid type);
extern bool makini_in_list_values(Datum array, List **values);
extern bool makini_cond_filters(const MakiniCond *c, Datum value, Oid type,
								List **filters);

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
	FdwScanPrivateLimit			/* rows the query needs at most, or -1 */
};

/* scan.c: the executor callbacks */
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
