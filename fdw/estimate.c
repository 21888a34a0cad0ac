/*-------------------------------------------------------------------------
 *
 * estimate.c
 *		  How many records a foreign table has, for the planner, without
 *		  ANALYZE: what the API already said.
 *
 * Every list page carries meta.total, the records its filters let through
 * (API.md §3).  Scans note it here (makini_estimate_note), in a cache
 * of the backend keyed by server, resource (and expand field) and the
 * filters sent; the planner reads it back (makini_estimate_size).  A count
 * is trusted for MAKINI_ESTIMATE_MAX_AGE_MS: long enough that a session's
 * queries share it, short enough that a table that grows is seen to grow.
 * When nothing is known and the plan depends on the size (the table is
 * joined), the planner asks once: one record (per_page=1), for meta.total.
 * A table with ANALYZE statistics is never asked about; with
 * use_remote_estimate the API is asked at every planning, as postgres_fdw
 * does.  Without a count from the API (meta.total absent or null), the size
 * stays unknown, and the planner's default applies.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/table.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "makini_fdw.h"

/* how long a count from the API is trusted */
#define MAKINI_ESTIMATE_MAX_AGE_MS	(5 * 60 * 1000)
/* counts kept at most (filtered ones are dropped first) */
#define MAKINI_ESTIMATE_MAX_ENTRIES 1024
/* key text: resource, expand field, filters; a longer one is not kept */
#define MAKINI_ESTIMATE_KEY_LEN		256
/* records of a never-analyzed table the API gave no count of */
#define MAKINI_DEFAULT_RECORDS		1000.0
/* rows per record of an expand table, unless measured */
#define MAKINI_DEFAULT_EXPANSION	5.0
/* records asked for by the size probe of an expand table (rows per record) */
#define MAKINI_EXPAND_PROBE_RECORDS 20

typedef struct MakiniEstimateKey
{
	Oid			serverid;
	char		what[MAKINI_ESTIMATE_KEY_LEN];	/* zero-padded */
} MakiniEstimateKey;

typedef struct MakiniEstimate
{
	MakiniEstimateKey key;
	bool		filtered;		/* the key names filters */
	double		records;		/* meta.total; -1: the API gave no count */
	double		expansion;		/* rows per record seen, or 0 */
	TimestampTz noted;
} MakiniEstimate;

static HTAB *Estimates = NULL;
static bool estimates_stale = false;

/*
 * A server was altered or dropped: its URL may now name another API.  The
 * cache is emptied at its next use (not here: a caller may hold an entry).
 */
static void
estimate_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	estimates_stale = true;
}

/* The cache, created on first use and emptied when stale. */
static HTAB *
estimate_cache(void)
{
	HASHCTL		ctl;

	if (Estimates != NULL && !estimates_stale)
		return Estimates;
	if (Estimates != NULL)
		hash_destroy(Estimates);
	else
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
									  estimate_inval_callback, (Datum) 0);
	ctl.keysize = sizeof(MakiniEstimateKey);
	ctl.entrysize = sizeof(MakiniEstimate);
	Estimates = hash_create("makini_fdw estimates", 64, &ctl,
							HASH_ELEM | HASH_BLOBS);
	estimates_stale = false;
	return Estimates;
}

/* list_sort comparator: filters by field, operator, value. */
static int
filter_cmp(const ListCell *a, const ListCell *b)
{
	const MakiniFilter *fa = lfirst(a);
	const MakiniFilter *fb = lfirst(b);
	int			cmp = strcmp(fa->field, fb->field);

	if (cmp == 0)
		cmp = strcmp(fa->op ? fa->op : "", fb->op ? fb->op : "");
	return cmp != 0 ? cmp : strcmp(fa->value, fb->value);
}

/*
 * The key of a table's records under filters, in whatever order they were
 * sent; false when its text does not fit (such a count is not kept).
 */
static bool
estimate_key(const MakiniTableOptions *topts, List *filters,
			 MakiniEstimateKey *key)
{
	List	   *sorted = list_copy(filters);
	char	   *path;

	list_sort(sorted, filter_cmp);
	path = makini_build_path(topts->resource, NULL, sorted, NIL, 0, 1, true);
	memset(key, 0, sizeof(MakiniEstimateKey));
	key->serverid = topts->server.serverid;
	if (snprintf(key->what, sizeof(key->what), "%s#%s", path,
				 topts->expand ? topts->expand : "") >= sizeof(key->what))
		return false;
	return true;
}

/*
 * Makes room for one more count: the expired ones go, then, if the cache
 * is still full, the filtered ones (a table's size is worth more).
 */
static void
estimate_make_room(HTAB *cache, TimestampTz now)
{
	HASH_SEQ_STATUS status;
	MakiniEstimate *e;

	for (int pass = 0; pass < 2; pass++)
	{
		if (hash_get_num_entries(cache) < MAKINI_ESTIMATE_MAX_ENTRIES)
			return;
		hash_seq_init(&status, cache);
		while ((e = hash_seq_search(&status)) != NULL)
			if (pass == 1 ? e->filtered :
				TimestampDifferenceExceeds(e->noted, now, MAKINI_ESTIMATE_MAX_AGE_MS))
				hash_search(cache, &e->key, HASH_REMOVE, NULL);
	}
}

/* Keeps a count (records -1: none given) and rows per record (0: unknown). */
static void
estimate_store(const MakiniTableOptions *topts, List *filters,
			   double records, double expansion)
{
	HTAB	   *cache = estimate_cache();
	MakiniEstimateKey key;
	MakiniEstimate *e;
	TimestampTz now = GetCurrentTimestamp();
	bool		found;

	if (!estimate_key(topts, filters, &key))
		return;
	estimate_make_room(cache, now);
	if (hash_get_num_entries(cache) >= MAKINI_ESTIMATE_MAX_ENTRIES)
		return;
	e = hash_search(cache, &key, HASH_ENTER, &found);
	e->filtered = (filters != NIL);
	e->records = records;
	if (expansion > 0 || !found)
		e->expansion = expansion;
	e->noted = now;
}

/* A count that is still fresh, or NULL. */
static MakiniEstimate *
estimate_lookup(const MakiniTableOptions *topts, List *filters)
{
	MakiniEstimateKey key;
	MakiniEstimate *e;

	if (!estimate_key(topts, filters, &key))
		return NULL;
	e = hash_search(estimate_cache(), &key, HASH_FIND, NULL);
	if (e == NULL ||
		TimestampDifferenceExceeds(e->noted, GetCurrentTimestamp(),
								   MAKINI_ESTIMATE_MAX_AGE_MS))
		return NULL;
	return e;
}

/*
 * The records a list page says its filters let through: meta.total; else,
 * from the first page, meta.last_page full pages, or the page alone when no
 * other follows.  -1 when the page does not tell.
 */
static double
page_records(int pageno, const MakiniPage *page)
{
	if (page->total >= 0)
		return (double) page->total;
	if (pageno != 1)
		return -1;
	if (!page->has_next)
		return page->nrecords;
	if (page->last_page > 0 && page->nrecords > 0)
		return (double) page->last_page * page->nrecords;
	return -1;
}

/*
 * A scan read page pageno of a list request with filters: notes what it
 * says about the number of records (and, in an expand table, rows per
 * record) for the planner.
 */
void
makini_estimate_note(const MakiniTableOptions *topts, List *filters,
					 int pageno, const MakiniPage *page)
{
	double		records = page_records(pageno, page);

	if (records < 0)
		return;
	estimate_store(topts, filters, records,
				   page->nrecords > 0 ? (double) page->nrows / page->nrecords : 0);
}

/*
 * Asks the API how many records match filters: one small page (one record,
 * or a few in an expand table, to see rows per record), noted as a scan's.
 * The count, or -1 if the API gave none or could not be asked (noted too:
 * not asked again until the count would expire); an error reply raises
 * only when raise_errors (use_remote_estimate), else the scan will report
 * it.
 */
static double
remote_count(const MakiniTableOptions *topts, Oid userid, List *filters,
			 bool raise_errors)
{
	ForeignServer *server = GetForeignServer(topts->server.serverid);
	UserMapping *um = GetUserMapping(userid, server->serverid);
	MakiniConnection *conn = makini_get_connection(&topts->server, um);
	MakiniStats stats = {0};
	char	   *path;
	MakiniResponse *resp;
	MakiniReplyContext ctx;
	MakiniPage *page;
	MakiniJsonFailure failure;
	Relation	rel;
	MakiniColumnMap *map;

	path = makini_build_path(topts->resource, NULL, filters, NIL,
							 topts->expand ? MAKINI_EXPAND_PROBE_RECORDS : 1,
							 1, false);
	resp = makini_http_get(conn, path, &stats, MAKINI_NO_RAISE);
	ctx.servername = topts->server.servername;
	ctx.path = path;
	ctx.request_id = resp->request_id;
	if (!makini_response_ok(resp))
	{
		/* a skipped server: no estimate, and the scan gives the WARNING */
		if (!raise_errors ||
			(topts->server.skip_unreachable && makini_is_unreachable(resp)))
		{
			estimate_store(topts, filters, -1, 0);
			return -1;
		}
		makini_report_failure(resp, &ctx, false);
	}
	rel = table_open(topts->relid, NoLock);
	/* no column needed: only records and rows are counted */
	map = makini_build_column_map(rel, topts,
								  bms_make_singleton(SelfItemPointerAttributeNumber -
													 FirstLowInvalidHeapAttributeNumber));
	table_close(rel, NoLock);
	page = makini_parse_page(map, resp->body, resp->len, false, &failure);
	if (page == NULL)
	{
		if (!raise_errors)
		{
			estimate_store(topts, filters, -1, 0);
			return -1;
		}
		makini_bad_reply(&ctx, "%s", failure.detail);
	}
	makini_estimate_note(topts, filters, 1, page);
	if (page_records(1, page) < 0)
		estimate_store(topts, filters, -1, 0);	/* asked: not again */
	return page->total;
}

/*
 * Rows per record of an expand table: as measured under filters, else on
 * the whole table, else a guess.
 */
static double
expansion_of(const MakiniTableOptions *topts, List *filters)
{
	MakiniEstimate *e;

	if (topts->expand == NULL)
		return 1.0;
	e = estimate_lookup(topts, filters);
	if ((e == NULL || e->expansion <= 0) && filters != NIL)
		e = estimate_lookup(topts, NIL);
	return (e != NULL && e->expansion > 0) ? e->expansion : MAKINI_DEFAULT_EXPANSION;
}

/*
 * use_remote_estimate: the records the constant filters let through, from
 * the API, times the selectivity of the pushed conditions it was not asked
 * about (unsent); the table's size, if not analyzed, from an unfiltered
 * request.  False if the API gave no count.
 */
static bool
remote_estimate(PlannerInfo *root, RelOptInfo *baserel,
				const MakiniTableOptions *topts, Oid userid,
				List *filters, List *unsent, MakiniSizeEstimate *est)
{
	double		total = remote_count(topts, userid, filters, true);

	if (total < 0)
		return false;
	est->expansion = expansion_of(topts, filters);
	if (baserel->tuples <= 0)
	{
		double		all = (filters == NIL) ? total :
			remote_count(topts, userid, NIL, true);

		baserel->tuples = Max(all, total) * est->expansion;
	}
	est->records = total * clauselist_selectivity(root, unsent, baserel->relid,
												  JOIN_INNER, NULL);
	return true;
}

/*
 * Records of the whole table, from the cache; when nothing is known and
 * the plan depends on it (the query joins the table with another), asked
 * of the API once.  -1 when the API gives no count.
 */
static double
table_records(PlannerInfo *root, const MakiniTableOptions *topts, Oid userid)
{
	MakiniEstimate *e = estimate_lookup(topts, NIL);

	if (e != NULL)
		return e->records;
	if (bms_membership(root->all_baserels) != BMS_MULTIPLE)
		return -1;
	return remote_count(topts, userid, NIL, false);
}

/*
 * The planner's size of a foreign table: in est, the records the pushed
 * conditions let through and rows per record; baserel->tuples, unless
 * analyzed.  filters: those of the conditions with constant values, whose
 * count the API may have given; pushed: the clauses of every pushable
 * condition, unsent: those of the pushable conditions not among filters.
 * In order: use_remote_estimate, ANALYZE statistics, counts the API gave
 * (asking once if need be), a default.
 */
void
makini_estimate_size(PlannerInfo *root, RelOptInfo *baserel,
					 const MakiniTableOptions *topts, Oid userid,
					 List *filters, List *pushed, List *unsent,
					 MakiniSizeEstimate *est)
{
	Selectivity pushed_sel = clauselist_selectivity(root, pushed, baserel->relid,
													JOIN_INNER, NULL);
	MakiniEstimate *e;
	double		all;

	if (topts->server.use_remote_estimate &&
		remote_estimate(root, baserel, topts, userid, filters, unsent, est))
		return;
	if (baserel->tuples > 0)
	{
		est->expansion = expansion_of(topts, NIL);
		est->records = baserel->tuples / est->expansion * pushed_sel;
		return;
	}
	all = table_records(root, topts, userid);
	if (all < 0)
		all = MAKINI_DEFAULT_RECORDS;
	est->expansion = expansion_of(topts, filters);
	e = (filters != NIL) ? estimate_lookup(topts, filters) : NULL;
	if (e != NULL && e->records >= 0)
	{
		est->records = e->records *
			clauselist_selectivity(root, unsent, baserel->relid, JOIN_INNER, NULL);
		all = Max(all, e->records);
	}
	else
		est->records = all * pushed_sel;
	baserel->tuples = Max(all, 1.0) * est->expansion;
}
