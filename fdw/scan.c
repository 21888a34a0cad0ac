/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  The executor side of makini_fdw: a scan's page loop with prefetch,
 *		  async scans under an Append, ANALYZE's sample, EXPLAIN.
 *
 * A scan is a list of "variants" (one per value of a pushed IN list or
 * key list, else one), each a sequence of pages; a sorted scan's variants
 * are its phases (phase_variants).  While the rows of one page are returned, the next request (the next page, or the first page
 * of the next variant) is already on the wire.  Two memory contexts hold
 * the current page and the next one (their decoded replies and rows); each
 * request has a small context of its own for what arrives (the encoded
 * reply); another, reset per tuple, holds converted values.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "common/hashfn.h"
#include "executor/execAsync.h"
#include "executor/executor.h"
#include "executor/nodeAppend.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/sampling.h"
#include "utils/timestamp.h"

#include "makini_fdw.h"

/* makini_fdw.progress_interval (ms): -1 = off, 0 = a NOTICE after every page */
int			makini_progress_interval = -1;

/* empty pages in a row (with a next link) before we call it a loop */
#define MAKINI_MAX_EMPTY_PAGES	100
/* rows returned between two non-blocking polls of the request in flight */
#define MAKINI_POLL_EVERY		256

/* memory kept for a page: this much a record, between 1 and 8 MB */
#define MAKINI_PAGE_BYTES_PER_RECORD	(16 * 1024)

/* requests a scan sends ahead of the one it waits for, at most */
#define MAKINI_MAX_AHEAD		8

/* bytes of a block of the scan's copies of record keys */
#define MAKINI_KEY_BLOCK		(64 * 1024)

/*
 * The set of record keys a scan returned (simplehash): one entry and one
 * copy of the key per record.
 */
typedef struct MakiniKeyEntry
{
	const char *key;
	uint32		hash;
	char		status;
} MakiniKeyEntry;

#define SH_PREFIX keyset
#define SH_ELEMENT_TYPE MakiniKeyEntry
#define SH_KEY_TYPE const char *
#define SH_KEY key
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k), strlen(k))
#define SH_EQUAL(tb, a, b) (strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* one request sequence of a scan: filters, or one key */
typedef struct MakiniVariant
{
	List	   *filters;		/* MakiniFilter */
	char	   *item_key;		/* item request, or NULL */
	List	   *sorts;			/* MakiniSort sent */
	int			per_page;		/* 0: the scan's */
	bool		nulls_only;		/* returns only rows whose sorted column is
								 * NULL (the others came sorted) */
	bool		lazy;			/* started only once a row is wanted after
								 * the variant before it ended */
} MakiniVariant;

/*
 * A request sent ahead (send_ahead): a page the scan will want after the
 * one it waits for, in a small memory context of its own, which holds its
 * reply as it arrives (encoded: decoded only once it is the next page).
 */
typedef struct MakiniAhead
{
	MakiniRequest *req;
	int			variant;
	int			pageno;
	char	   *path;
	MemoryContext cxt;			/* created on first use, kept */
} MakiniAhead;

/* the variants of a NULLS FIRST scan in two phases (phase_variants) */
#define MAKINI_PHASE_NULLS		0
#define MAKINI_PHASE_SORTED		1

/* executor state of a foreign scan */
typedef struct MakiniScanState
{
	MakiniTableOptions *topts;
	MakiniConnection *conn;
	MakiniColumnMap *map;
	List	   *conds;			/* MakiniCond */
	List	   *cond_exprs;		/* ExprState per condition */
	List	   *sorts;			/* MakiniSort */
	int			per_page;
	int64		limit;			/* this scan's: -1 once a value was not sent */
	int64		plan_limit;		/* the plan's, restored at each (re)start */

	MemoryContext scan_cxt;		/* variants, lasting the scan */
	MemoryContext page_cxt;		/* the page whose rows are returned */
	MemoryContext next_cxt;		/* the next page, decoded and parsed */
	MemoryContext page_req_cxt; /* the request of the current page */
	MemoryContext next_req_cxt; /* the request in flight (next_req) */
	MemoryContext tuple_cxt;	/* converted values of one row */

	bool		started;
	bool		finished;
	List	   *variants;		/* MakiniVariant */
	int			cur_variant;	/* variant of the current page */
	int			cur_pageno;
	MakiniPage *page;
	MakiniReplyContext page_ctx;
	int			row;
	int			empty_pages;

	/*
	 * NULLS FIRST: the unsorted request for records without a value, sent
	 * with per_page=1 next to the first sorted page; equal meta.totals
	 * prove there is none (decide_nulls_first)
	 */
	MakiniRequest *probe_req;	/* in flight, or NULL */
	char	   *probe_path;
	AttrNumber	sort_attnum;	/* of nulls_only variants */

	MakiniRequest *next_req;	/* in flight, or NULL */
	int			next_variant;
	int			next_pageno;
	char	   *next_path;

	/*
	 * Requests sent ahead of next_req (send_ahead), in the order they are
	 * wanted; up to max_concurrent_requests - 1, and only while the
	 * connection's budget has room.  Rows still come in page order.
	 */
	bool		speculate;		/* this scan may (not ANALYZE) */
	MakiniAhead ahead[MAKINI_MAX_AHEAD];
	int			nahead;
	int			max_in_flight;	/* most requests of the scan at once */

	int64		rows_returned;

	/*
	 * Records returned, by key (the parent's key for an expand table): a
	 * record that moved between pages comes back on a later page, and is
	 * skipped there.  Only returned rows count: a row a phase filters out
	 * (NULLS pass) or a dropped page must not hide the record later.
	 */
	bool		dedupe;			/* this scan skips repeated records */
	keyset_hash *seen;			/* NULL until the first row is returned */
	const char *decided_key;	/* key of the record last decided on this
								 * page (an expand record spans rows) */
	bool		skip_record;	/* that record is a repeat */
	char	   *key_block;		/* where the next key copy goes */
	Size		key_free;		/* bytes left there */

	bool		had_rows;		/* a page with rows arrived (kept across
								 * rescans): on_unreachable 'skip' is over */
	bool		followed;		/* the request after the current page was
								 * considered (the LIMIT may hold it back) */
	MakiniStats stats;

	/* progress NOTICEs (note_progress): what was read since start_scan */
	int64		progress_records;	/* records of the API (parents, expand) */
	int64		progress_pages;
	TimestampTz progress_start;
	TimestampTz progress_last;	/* the last NOTICE, or progress_start */

	/* makini_sync's scan (sync.c): the latest updatedAt of what was read */
	bool		sync_counted;	/* its counts go to makini_sync at the end */
	bool		track;
	TimestampTz latest_updated; /* DT_NOBEGIN until one is seen */

	/* async scans under an Append */
	bool		in_async;		/* rows asked for by the Append: never block */
	bool		starved;		/* ... and the next page has not arrived */
	int			wait_fd;		/* async: epoll set the Append waits on, or -1 */
	int			timer_fd;		/* ... in it: the deadline of the next poll */
	MemoryContextCallback wait_cb;
} MakiniScanState;

static void close_wait_fds(void *arg);
static void note_in_flight(MakiniScanState *st);
static void send_ahead(MakiniScanState *st, bool next_on_wire);

/* ------------------------------------------------------------------------
 * Executor
 * ------------------------------------------------------------------------
 */

/*
 * The memory of one page: its reply, encoded and decoded, and its parsed
 * rows, reset for every page.  A generation context whose keeper block
 * holds a whole page keeps that memory across resets, where an aset.c
 * context hands its multi-megabyte chunks back to malloc, and malloc back
 * to the kernel: every page then paid for page faults on fresh memory (a
 * quarter of a scan's time on a VM).  The keeper is sized for st->per_page
 * records; a bigger page still fits, with fresh memory for the excess.
 */
static MemoryContext
create_page_context(MakiniScanState *st, MemoryContext parent)
{
	Size		keeper = (Size) Max(st->per_page, 1) * MAKINI_PAGE_BYTES_PER_RECORD;

	keeper = Min(Max(keeper, 1024 * 1024), 8 * 1024 * 1024);
	return GenerationContextCreate(parent, "makini_fdw page", keeper,
								   1024 * 1024, 64 * 1024 * 1024);
}

/*
 * The memory of one request: the request, its reply as it arrives (encoded,
 * a fraction of the decoded size) and the response.  Small: only the two
 * page contexts hold decoded pages, however many requests go ahead.
 */
static MemoryContext
create_request_context(MemoryContext parent)
{
	return AllocSetContextCreate(parent, "makini_fdw request",
								 ALLOCSET_DEFAULT_SIZES);
}

/*
 * The scan's memory: variants, two pages (current, next) and their
 * requests, one row.
 */
static void
create_scan_contexts(MakiniScanState *st, MemoryContext parent)
{
	st->scan_cxt = AllocSetContextCreate(parent, "makini_fdw scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->page_cxt = create_page_context(st, parent);
	st->next_cxt = create_page_context(st, parent);
	st->page_req_cxt = create_request_context(parent);
	st->next_req_cxt = create_request_context(parent);
	st->tuple_cxt = AllocSetContextCreate(parent, "makini_fdw tuple",
										  ALLOCSET_SMALL_SIZES);
	st->wait_fd = st->timer_fd = -1;
}

/* BeginForeignScan: options, connection, column map, condition values. */
void
makiniBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	MakiniScanState *st = palloc0(sizeof(MakiniScanState));
	Relation	rel = node->ss.ss_currentRelation;
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	Oid			userid;
	UserMapping *um;

	node->fdw_state = st;
	st->wait_fd = st->timer_fd = -1;
	st->topts = makini_get_table_options(RelationGetRelid(rel));
	st->conds = makini_conds_from_private(list_nth(fsplan->fdw_private, FdwScanPrivateConds));
	foreach(lc, (List *) list_nth(fsplan->fdw_private, FdwScanPrivateSorts))
	{
		MakiniSort *s = palloc0(sizeof(MakiniSort));

		s->field = strVal(linitial((List *) lfirst(lc)));
		s->descending = boolVal(lsecond((List *) lfirst(lc)));
		s->nulls_first = boolVal(lthird((List *) lfirst(lc)));
		s->attnum = intVal(lfourth((List *) lfirst(lc)));
		st->sorts = lappend(st->sorts, s);
	}
	foreach(lc, (List *) list_nth(fsplan->fdw_private, FdwScanPrivateAttrs))
		attrs = bms_add_member(attrs, lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	/* no column at all (count(*)): a set naming none, as NULL means all */
	if (attrs == NULL)
		attrs = bms_make_singleton(SelfItemPointerAttributeNumber -
								   FirstLowInvalidHeapAttributeNumber);
	st->per_page = intVal(list_nth(fsplan->fdw_private, FdwScanPrivatePerPage));
	st->plan_limit = intVal(list_nth(fsplan->fdw_private, FdwScanPrivateLimit));
	st->sync_counted = boolVal(list_nth(fsplan->fdw_private, FdwScanPrivateSync));
	st->track = boolVal(list_nth(fsplan->fdw_private, FdwScanPrivateTrack));
	st->latest_updated = DT_NOBEGIN;
	st->limit = st->plan_limit;
	st->dedupe = true;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	userid = makini_scan_user(fsplan, estate);
	um = GetUserMapping(userid, GetForeignTable(RelationGetRelid(rel))->serverid);
	st->conn = makini_get_connection(&st->topts->server, um);
	st->map = makini_build_column_map(rel, st->topts, attrs);
	if (st->track)
		makini_column_map_add_updated(st->map);
	st->cond_exprs = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);

	create_scan_contexts(st, estate->es_query_cxt);
}

/*
 * Multiplies the variants by the values of an evaluated IN list or key
 * condition: one request sequence per value.  A key with a "/" cannot be a
 * path segment: it is sent as filter[key].  Returns the variants unchanged,
 * clearing *sent, if a value cannot be sent (the local qual decides alone).
 */
static List *
expand_variants(List *variants, MakiniCond *c, Datum value, Oid type,
				bool *sent)
{
	List	   *result = NIL;
	List	   *values;
	ListCell   *lc;

	if (c->in_list)
	{
		if (!makini_in_list_values(value, &values))
		{
			*sent = false;
			return variants;
		}
	}
	else
	{
		values = list_make1(makeString(makini_render_text(value, type)));
		if (strVal(linitial(values))[0] == '\0')
		{
			*sent = false;
			return variants;
		}
	}

	foreach(lc, variants)
	{
		MakiniVariant *v = (MakiniVariant *) lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, values)
		{
			MakiniVariant *nv = palloc0(sizeof(MakiniVariant));
			char	   *text = strVal(lfirst(lc2));

			nv->filters = list_copy(v->filters);
			if (c->key_lookup && makini_key_fits_path(text))
				nv->item_key = text;
			else
			{
				MakiniFilter *f = palloc0(sizeof(MakiniFilter));

				f->field = c->field;
				f->op = makini_op_name(c->op);
				f->value = text;
				nv->filters = lappend(nv->filters, f);
			}
			result = lappend(result, nv);
		}
	}
	return result;
}

/* Adds one filter to every variant. */
static void
add_filter(List *variants, MakiniFilter *f)
{
	ListCell   *lc;

	foreach(lc, variants)
	{
		MakiniVariant *v = (MakiniVariant *) lfirst(lc);

		v->filters = lappend(v->filters, f);
	}
}

/*
 * Evaluates the conditions' values for this scan (or this outer row) and
 * builds the request variants.  A NULL value means no row can match: no
 * variant at all, no request.  A value that cannot be sent leaves its
 * condition to the local qual alone: the API's rows may then fail it, so
 * the query's LIMIT no longer bounds the pages to fetch.
 */
static List *
build_variants(ForeignScanState *node, MakiniScanState *st)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	List	   *variants = list_make1(palloc0(sizeof(MakiniVariant)));
	bool		all_sent = true;
	ListCell   *lc1,
			   *lc2;

	forboth(lc1, st->conds, lc2, st->cond_exprs)
	{
		MakiniCond *c = (MakiniCond *) lfirst(lc1);
		ExprState  *es = (ExprState *) lfirst(lc2);
		bool		isnull;
		Datum		value = ExecEvalExpr(es, econtext, &isnull);
		Oid			type = exprType((Node *) es->expr);
		List	   *filters = NIL;
		ListCell   *lc;

		if (isnull)
			return NIL;
		if (c->in_list || c->key_lookup)
			variants = expand_variants(variants, c, value, type, &all_sent);
		else if (makini_cond_filters(c, value, type, &filters))
		{
			foreach(lc, filters)
				add_filter(variants, (MakiniFilter *) lfirst(lc));
		}
		else
			all_sent = false;
	}
	if (!all_sent)
		st->limit = -1;
	return variants;
}

/* Does one of filters name field?  (Then it excludes records without one.) */
static bool
filters_name_field(List *filters, const char *field)
{
	ListCell   *lc;

	foreach(lc, filters)
		if (strcmp(((MakiniFilter *) lfirst(lc))->field, field) == 0)
			return true;
	return false;
}

/*
 * filters, plus one that only records with a value for the sort field
 * match (API.md §3: a record without one never matches a filter on
 * it) unless one of them already names the field.  The API writes instants
 * with four-digit years: every value is from year 1 on.
 */
static List *
valued_filters(List *filters, MakiniSort *sort)
{
	MakiniFilter *f;

	if (filters_name_field(filters, sort->field))
		return filters;
	f = palloc0(sizeof(MakiniFilter));
	f->field = sort->field;
	f->op = makini_op_name(MAKINI_OP_GTEQ);
	f->value = "0001-01-01T00:00:00Z";
	return lappend(list_copy(filters), f);
}

/*
 * The phases of a sorted scan.  Where the API puts records without a value
 * for the sort field is unspecified (API.md §3), so they are never
 * read from the sorted request: (a) the records with a value, sorted (a
 * filter keeps the others out), and (b) the records without one, from the
 * same request unsorted and without that filter, of which only the rows
 * whose sorted column is NULL are returned.  NULLS LAST: (a), then (b) if
 * rows are still wanted.  NULLS FIRST: (b), then (a); (b) is skipped when
 * its meta.total equals that of (a) (decide_nulls_first).  When a pushed
 * condition already filters on the field, no record lacks it: (a) alone.
 * Other variants (no sort, a key lookup) get the scan's sort and page size.
 */
static List *
phase_variants(MakiniScanState *st, List *variants)
{
	MakiniSort *sort;
	MakiniVariant *a,
			   *b;

	if (list_length(variants) != 1 || st->sorts == NIL ||
		((MakiniVariant *) linitial(variants))->item_key != NULL)
		return variants;
	sort = linitial(st->sorts);
	a = linitial(variants);
	a->sorts = st->sorts;
	if (filters_name_field(a->filters, sort->field))
		return variants;
	b = palloc0(sizeof(MakiniVariant));
	b->filters = a->filters;
	b->per_page = st->topts->server.page_size;	/* reads through, not to a LIMIT */
	b->nulls_only = true;
	a->filters = valued_filters(a->filters, sort);
	st->sort_attnum = sort->attnum;
	if (!sort->nulls_first)
	{
		b->lazy = true;
		return list_make2(a, b);
	}
	st->probe_path = makini_build_path(st->topts->resource, NULL, b->filters,
									   NIL, 1, 1, false);
	return list_make2(b, a);	/* MAKINI_PHASE_NULLS, MAKINI_PHASE_SORTED */
}

/* The path of the request for page pageno of variant v. */
static char *
variant_path(MakiniScanState *st, MakiniVariant *v, int pageno)
{
	return makini_build_path(st->topts->resource, v->item_key, v->filters,
							 v->sorts, v->per_page > 0 ? v->per_page : st->per_page,
							 pageno, false);
}

/*
 * Removes the request sent ahead at index i, cancelling it unless adopted
 * (then its context becomes next_req_cxt, and the slot gets that one's,
 * empty).  The slot moves behind the others, its context kept for reuse.
 */
static void
remove_ahead(MakiniScanState *st, int i, bool adopted)
{
	MakiniAhead gone = st->ahead[i];

	if (adopted)
	{
		MemoryContext swap = st->next_req_cxt;

		st->next_req_cxt = gone.cxt;
		gone.cxt = swap;
	}
	else
	{
		makini_request_cancel(gone.req);
		MemoryContextReset(gone.cxt);
	}
	gone.req = NULL;
	memmove(&st->ahead[i], &st->ahead[i + 1],
			sizeof(MakiniAhead) * (st->nahead - i - 1));
	st->ahead[--st->nahead] = gone;
}

/* Drops every request sent ahead (not needed after all: rescan, end). */
static void
cancel_speculation(MakiniScanState *st)
{
	while (st->nahead > 0)
		remove_ahead(st, st->nahead - 1, false);
}

/* Orders (variant, page) pairs as the scan reads them. */
static inline int
ahead_cmp(int variant1, int page1, int variant2, int page2)
{
	if (variant1 != variant2)
		return variant1 < variant2 ? -1 : 1;
	return page1 < page2 ? -1 : (page1 > page2 ? 1 : 0);
}

/*
 * The scan now wants (variant, pageno): requests ahead for pages before it
 * will not be wanted (the scan only moves forward, but for the NULLS FIRST
 * restart, which goes back to the start of the phase before); returns the
 * index of the one for it, or -1.
 */
static int
take_ahead(MakiniScanState *st, int variant, int pageno)
{
	while (st->nahead > 0 &&
		   ahead_cmp(st->ahead[0].variant, st->ahead[0].pageno,
					 variant, pageno) < 0)
		remove_ahead(st, 0, false);
	if (st->nahead > 0 && st->ahead[0].variant == variant &&
		st->ahead[0].pageno == pageno)
		return 0;
	return -1;
}

/* Drops the NULLS FIRST probe, if in flight (rescan, end). */
static void
cancel_probe(MakiniScanState *st)
{
	if (st->probe_req == NULL)
		return;
	makini_request_cancel(st->probe_req);
	st->probe_req = NULL;
}

/*
 * Builds the path of (variant, pageno) and puts its request on the wire,
 * both allocated in cxt (the request context its reply arrives in).
 */
static MakiniRequest *
send_page_request(MakiniScanState *st, MemoryContext cxt, int variant,
				  int pageno, char **path)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	MakiniRequest *req;

	*path = variant_path(st, list_nth(st->variants, variant), pageno);
	req = makini_request_start(st->conn, *path, &st->stats);
	MemoryContextSwitchTo(old);
	return req;
}

/*
 * Puts the request for (variant, pageno) on the wire in next_req_cxt, or
 * adopts the request sent ahead for just that; either way its reply is
 * decoded into next_cxt.
 */
static void
start_request(MakiniScanState *st, int variant, int pageno)
{
	st->next_variant = variant;
	st->next_pageno = pageno;
	if (take_ahead(st, variant, pageno) == 0)
	{
		st->next_req = st->ahead[0].req;
		st->next_path = st->ahead[0].path;
		remove_ahead(st, 0, true);
	}
	else
	{
		st->next_req = send_page_request(st, st->next_req_cxt, variant,
										 pageno, &st->next_path);
		note_in_flight(st);
	}
	makini_request_set_body_context(st->next_req, st->next_cxt);
}

/*
 * Page number the links.next URL asks for, or 0 if it names none; HV00M if
 * its page is not a page number (1 to INT_MAX).
 */
static int
next_link_page(MakiniScanState *st, const char *link)
{
	const char *q = link ? strchr(link, '?') : NULL;

	while (q != NULL)
	{
		q++;
		if (strncmp(q, "page=", 5) == 0)
		{
			const char *v = q + 5;
			size_t		n = strcspn(v, "&#");
			int64		page = 0;

			for (size_t i = 0; i < n && page <= PG_INT32_MAX; i++)
				page = (v[i] >= '0' && v[i] <= '9') ?
					page * 10 + (v[i] - '0') : PG_INT64_MAX;
			if (page < 1 || page > PG_INT32_MAX)
				makini_bad_reply(&st->page_ctx,
								 "The links.next of page %d asks for page \"%s\", not a page number between 1 and %d.",
								 st->cur_pageno, pnstrdup(v, Min(n, 40)),
								 PG_INT32_MAX);
			return (int) page;
		}
		q = strchr(q, '&');
	}
	return 0;
}

/*
 * After page cur_pageno of cur_variant: is there a following page of the
 * same variant?  Raises HV00M for paging that would loop.
 */
static bool
has_following_page(MakiniScanState *st)
{
	MakiniPage *page = st->page;
	MakiniVariant *v = list_nth(st->variants, st->cur_variant);
	int			linked;

	if (v->item_key != NULL || !page->has_next)
		return false;
	linked = next_link_page(st, page->next_link);
	if (linked != 0 && linked <= st->cur_pageno)
		makini_bad_reply(&st->page_ctx,
						 "The links.next of page %d asks for page %d again.",
						 st->cur_pageno, linked);
	if (page->last_page > 0 && st->cur_pageno >= page->last_page)
		return false;
	st->empty_pages = page->nrecords == 0 ? st->empty_pages + 1 : 0;
	if (st->empty_pages > MAKINI_MAX_EMPTY_PAGES)
		makini_bad_reply(&st->page_ctx,
						 "%d empty pages in a row, each with a links.next.",
						 st->empty_pages);
	return true;
}

/*
 * Starts the request after the current page: next page, or next variant --
 * a lazy one only when wanted (a row is asked for after this page's).
 */
static void
prefetch(MakiniScanState *st, bool wanted)
{
	if (has_following_page(st))
		start_request(st, st->cur_variant, st->cur_pageno + 1);
	else if (st->cur_variant + 1 < list_length(st->variants))
	{
		if (!wanted && ((MakiniVariant *) list_nth(st->variants,
												   st->cur_variant + 1))->lazy)
			return;				/* advance_page starts it if rows are wanted */
		start_request(st, st->cur_variant + 1, 1);
	}
	st->followed = true;
	if (st->next_req != NULL)
		send_ahead(st, true);
}

/* Counts the scan's requests in flight for EXPLAIN ANALYZE: keeps the most. */
static void
note_in_flight(MakiniScanState *st)
{
	int			n = st->nahead;

	if (st->next_req != NULL)
		n++;
	if (st->probe_req != NULL)
		n++;
	st->max_in_flight = Max(st->max_in_flight, n);
}

/*
 * Sends the request for (variant, pageno) ahead, in order among the others;
 * false when no more may go: the scan's depth is reached or the
 * connection's budget (shared by every scan of the server) is spent.
 */
static bool
ahead_one(MakiniScanState *st, int depth, int variant, int pageno)
{
	MakiniAhead *slot;
	int			at = st->nahead;

	for (int i = 0; i < st->nahead; i++)
	{
		int			cmp = ahead_cmp(st->ahead[i].variant, st->ahead[i].pageno,
									variant, pageno);

		if (cmp == 0)
			return true;
		if (cmp > 0 && at == st->nahead)
			at = i;
	}
	if (st->nahead >= depth || !makini_connection_has_room(st->conn))
		return false;
	slot = &st->ahead[st->nahead];
	if (slot->cxt == NULL)
		slot->cxt = create_request_context(MemoryContextGetParent(st->page_cxt));
	slot->variant = variant;
	slot->pageno = pageno;
	slot->req = send_page_request(st, slot->cxt, variant, pageno, &slot->path);
	if (at < st->nahead)
	{
		MakiniAhead added = *slot;

		memmove(&st->ahead[at + 1], &st->ahead[at],
				sizeof(MakiniAhead) * (st->nahead - at));
		st->ahead[at] = added;
	}
	st->nahead++;
	return true;
}

/*
 * Concurrent requests.  A real API takes 100-500 ms a request: one page
 * after the other, a scan's time is its pages times that.  So a scan sends
 * requests ahead of the next page, for pages it knows it will read, as many
 * as keep max_concurrent_requests on the wire: that many - 1 while the next
 * page is on its way (next_on_wire), that many once it has arrived, while
 * it is parsed -- so even with 1 (one request at a time) the wait for a
 * page overlaps the parsing of the one before.  Only encoded replies wait
 * ahead, each in its own small context (ahead_one).  Sent ahead are the
 * following pages of the variant being read once a page of it told
 * their number (meta.last_page; without one, links.next is followed one
 * page at a time), and the first page of each variant after it (the values
 * of an IN list, the keys of a key lookup).  Rows are still returned in
 * page order, each page once the ones before it are done: a sorted scan's
 * order, the repeated-record guard and on_unreachable (only before a row)
 * work as one page at a time.  Under a LIMIT, no more pages go ahead than
 * the rows it still wants fill if every page is full; no lazy variant
 * (read only if rows are still wanted) is sent ahead.
 */
static void
send_ahead(MakiniScanState *st, bool next_on_wire)
{
	int			depth = Min(st->topts->server.max_concurrent_requests -
							(next_on_wire ? 1 : 0), MAKINI_MAX_AHEAD);
	MakiniPage *page = st->page;
	int			last = 0;

	if (!st->speculate)
		return;
	if (st->limit >= 0)
	{
		/*
		 * rows still wanted once the next page and the current one (unless
		 * its rows were all returned: the next page has arrived) are read
		 */
		int64		left = st->limit - st->rows_returned - st->per_page -
			(page != NULL && next_on_wire ? page->nrows : 0);

		if (left <= 0)
			return;
		depth = (int) Min((int64) depth, (left + st->per_page - 1) / st->per_page);
	}
	if (page != NULL && st->next_variant == st->cur_variant &&
		page->nrecords > 0 && page->has_next)
		last = page->last_page;
	for (int p = st->next_pageno + 1; p <= last; p++)
		if (!ahead_one(st, depth, st->next_variant, p))
			break;
	for (int v = st->next_variant + 1; v < list_length(st->variants); v++)
		if (((MakiniVariant *) list_nth(st->variants, v))->lazy ||
			!ahead_one(st, depth, v, 1))
			break;
	note_in_flight(st);
}

/*
 * Waits for the request in flight: a key lookup's 404 is no row, a failure
 * is reported with the table's on_unreachable (the connection, shared by
 * every table of the server, does not know it); NULL when it is skipped.
 * Skipping is only for a server that gave no row yet: once rows arrived, a
 * failure is an error, never a silently short result.
 */
static MakiniResponse *
wait_reply(MakiniScanState *st, bool item)
{
	int			flags = MAKINI_RAISE;

	if (item)
		flags |= MAKINI_ALLOW_404;
	if (st->topts->server.skip_unreachable && !st->had_rows)
		flags |= MAKINI_SKIP_UNREACHABLE;
	return makini_request_wait(st->next_req, flags);
}

/* The key that identifies the record of each row of a page. */
static inline char **
page_record_keys(MakiniScanState *st)
{
	return st->map->expand ? st->page->row_parent_keys : st->page->row_keys;
}

/*
 * Adds a record key to the scan's set, copying it into the scan's memory
 * (a page's keys go with the page); returns true if it was there already.
 */
static bool
remember_key(MakiniScanState *st, const char *key)
{
	MakiniKeyEntry *entry;
	bool		found;
	Size		len;

	entry = keyset_insert(st->seen, key, &found);
	if (found)
		return true;
	len = strlen(key) + 1;
	if (len > st->key_free)
	{
		st->key_free = Max(len, MAKINI_KEY_BLOCK);
		st->key_block = MemoryContextAlloc(st->scan_cxt, st->key_free);
	}
	memcpy(st->key_block, key, len);
	entry->key = st->key_block;
	st->key_block += len;
	st->key_free -= len;
	return false;
}

/*
 * Is the current row's record one the scan returned already?  Page-based
 * paging repeats a record when records were inserted or moved before it
 * between two pages (API.md §7).  The rows of one record (an expand
 * table's) share one key pointer and are decided at the first.  The set is
 * sized for meta.total when the API sends it (up to a million: no growing
 * on the way), else for four pages.
 */
static bool
repeated_row(MakiniScanState *st)
{
	const char *key = page_record_keys(st)[st->row];

	if (key == NULL)
		return false;
	if (key == st->decided_key)
		return st->skip_record;
	if (st->seen == NULL)
	{
		int64		size = Max(st->page->nrecords * 4, 256);

		if (st->page->total > size)
			size = Min(st->page->total, 1024 * 1024);
		st->seen = keyset_create(st->scan_cxt, (uint32) size, NULL);
		st->key_free = 0;
	}
	st->decided_key = key;
	st->skip_record = remember_key(st, key);
	return st->skip_record;
}

/*
 * Parses a reply into a page of the scan's columns; raises a reply that is
 * not JSON or not of the expected shape.
 */
static MakiniPage *
parse_reply(MakiniScanState *st, MakiniResponse *resp, bool item,
			const MakiniReplyContext *ctx)
{
	MakiniJsonFailure failure;
	MakiniPage *page = makini_parse_page(st->map, resp->body, resp->len,
										 item, &failure);

	if (page == NULL)
		makini_bad_reply(ctx, "%s", failure.detail);
	return page;
}

/*
 * NULLS FIRST, the first sorted page has arrived: may it be returned now?
 * Yes if the probe (the unsorted request for records without a value, one
 * record a page) counts as many records as the sorted one: there are none
 * without.  Else -- more, or a count missing -- the page is dropped and the
 * records without a value are read first; the sorted pages follow from page
 * 1 again.  Returns true when the page stands.
 */
static bool
decide_nulls_first(MakiniScanState *st)
{
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);
	MakiniResponse *resp;
	MakiniReplyContext ctx;
	int64		all = -1;

	resp = makini_request_wait(st->probe_req,
							   st->topts->server.skip_unreachable ?
							   MAKINI_SKIP_UNREACHABLE : MAKINI_RAISE);
	st->probe_req = NULL;
	if (resp != NULL)
	{
		ctx.servername = st->topts->server.servername;
		ctx.path = st->probe_path;
		ctx.request_id = resp->request_id;
		all = parse_reply(st, resp, false, &ctx)->total;
	}
	MemoryContextSwitchTo(old);
	if (all >= 0 && all == st->page->total)
		return true;
	st->row = st->page->nrows;
	st->followed = true;
	start_request(st, MAKINI_PHASE_NULLS, 1);
	return false;
}

/*
 * makini_fdw.progress_interval: counts the page just read and, once the
 * interval has passed since the scan's start or its last NOTICE, says how
 * far the scan is, so that a long scan (makini_sync's) shows it is alive.
 * One clock read a page, and none while the setting is off.
 */
static void
note_progress(MakiniScanState *st)
{
	TimestampTz now;
	double		secs;

	st->progress_records += st->page->nrecords;
	st->progress_pages++;
	if (makini_progress_interval < 0)
		return;
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(st->progress_last, now,
									makini_progress_interval))
		return;
	st->progress_last = now;
	secs = Max(now - st->progress_start, 1) / (double) USECS_PER_SEC;
	ereport(NOTICE,
			(errmsg("makini_fdw: scan of \"%s\": %lld %s so far (%lld pages), %.0f records/s",
					get_rel_name(st->topts->relid),
					(long long) st->progress_records,
					st->topts->expand != NULL ? "parent records" : "records",
					(long long) st->progress_pages,
					st->progress_records / secs)));
}

/*
 * makini_sync's scan: keeps the latest updatedAt of the page's rows (of
 * their parents, in an expand table: the rows of one record share its
 * value, read once).  A value that is not ISO 8601 is passed over: it
 * cannot be compared, and a lower watermark only makes the next call read
 * more.
 */
static void
note_latest_updated(MakiniScanState *st)
{
	MakiniPage *page = st->page;
	int			slot = st->map->track_slot;
	const char *last = NULL;

	for (int r = 0; r < page->nrows; r++)
	{
		MakiniValue *v = &page->values[(Size) r * page->ncols + slot];
		TimestampTz ts;

		if (v->str == last)
			continue;
		last = v->str;
		if (v->kind == MAKINI_VALUE_STRING &&
			makini_parse_iso_instant(v->str, v->len, &ts) &&
			ts > st->latest_updated)
			st->latest_updated = ts;
	}
}

/*
 * Waits for the request in flight, sends more ahead now that it is off the
 * wire (send_ahead), parses it and makes it the current page; then puts
 * the following request on the wire, unless the query's LIMIT is already
 * covered.  Returns false when the scan is over.
 */
static bool
advance_page(MakiniScanState *st)
{
	MakiniResponse *resp;
	MemoryContext old;
	MemoryContext swap;
	bool		item;

	/* the LIMIT held the next request back, but the query wants more rows */
	if (st->next_req == NULL && st->page != NULL && !st->followed)
		prefetch(st, true);
	if (st->next_req == NULL)
	{
		cancel_speculation(st); /* a page count that was not right */
		return false;
	}
	item = ((MakiniVariant *) list_nth(st->variants,
									   st->next_variant))->item_key != NULL;
	old = MemoryContextSwitchTo(st->next_cxt);
	resp = wait_reply(st, item);
	st->next_req = NULL;
	if (resp != NULL && st->probe_req == NULL)
		send_ahead(st, false);

	/* the old page goes; the new one lives in what was next_cxt */
	MemoryContextReset(st->page_cxt);
	swap = st->page_cxt;
	st->page_cxt = st->next_cxt;
	st->next_cxt = swap;
	MemoryContextReset(st->page_req_cxt);
	swap = st->page_req_cxt;
	st->page_req_cxt = st->next_req_cxt;
	st->next_req_cxt = swap;
	st->followed = false;
	st->cur_variant = st->next_variant;
	st->cur_pageno = st->next_pageno;
	st->page = NULL;
	st->row = 0;
	st->decided_key = NULL;
	if (resp == NULL)
	{
		/* unreachable and on_unreachable 'skip': a WARNING was given */
		MemoryContextSwitchTo(old);
		st->finished = true;
		return false;
	}
	st->page_ctx.servername = st->topts->server.servername;
	st->page_ctx.path = st->next_path;
	st->page_ctx.request_id = resp->request_id;
	if (resp->status == 404)
		st->page = palloc0(sizeof(MakiniPage));
	else
		st->page = parse_reply(st, resp, item, &st->page_ctx);
	resp->body = NULL;
	MemoryContextSwitchTo(old);
	if (st->page->nrows > 0)
		st->had_rows = true;
	if (!item)					/* the count it gives, for the planner */
		makini_estimate_note(st->topts, ((MakiniVariant *) list_nth(st->variants, st->cur_variant))->filters,
							 st->cur_pageno, st->page);
	note_progress(st);
	if (st->map->track_slot >= 0)
		note_latest_updated(st);

	if (st->probe_req != NULL && !decide_nulls_first(st))
		return true;
	if (st->limit < 0 || st->rows_returned + st->page->nrows < st->limit)
		prefetch(st, false);
	return true;
}

/* Starts the scan: evaluates values, builds variants, sends the first request. */
static void
start_scan(ForeignScanState *node, MakiniScanState *st)
{
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);

	st->limit = st->plan_limit;
	st->probe_path = NULL;
	st->variants = phase_variants(st, build_variants(node, st));
	MemoryContextSwitchTo(old);
	st->started = true;
	st->finished = (st->variants == NIL);
	st->empty_pages = 0;
	st->speculate = true;
	st->progress_records = 0;
	st->progress_pages = 0;
	st->progress_start = st->progress_last = GetCurrentTimestamp();
	if (st->finished)
		return;
	if (st->probe_path == NULL)
	{
		start_request(st, 0, 1);
		send_ahead(st, true);
		return;
	}
	/* NULLS FIRST: the first sorted page and the probe, at once */
	start_request(st, MAKINI_PHASE_SORTED, 1);
	old = MemoryContextSwitchTo(st->scan_cxt);
	st->probe_req = makini_request_start(st->conn, st->probe_path, &st->stats);
	MemoryContextSwitchTo(old);
	note_in_flight(st);
}

/*
 * Is the row just converted one to pass over?  In the phase of the records
 * without a value for the sort field, the rows with one belong to the
 * sorted phase.
 */
static bool
phase_skips_row(MakiniScanState *st, TupleTableSlot *slot)
{
	MakiniVariant *v = list_nth(st->variants, st->cur_variant);

	return v->nulls_only && !slot->tts_isnull[st->sort_attnum - 1];
}

/* IterateForeignScan: the next row, fetching pages as needed. */
TupleTableSlot *
makiniIterateForeignScan(ForeignScanState *node)
{
	MakiniScanState *st = (MakiniScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;
	bool		skip;

	ExecClearTuple(slot);
	if (!st->started)
		start_scan(node, st);
	for (;;)
	{
		while (st->page == NULL || st->row >= st->page->nrows)
		{
			if (st->in_async && !st->finished && st->next_req != NULL &&
				!makini_request_poll(st->next_req))
			{
				st->starved = true; /* the Append will wait and ask again */
				return slot;
			}
			if (st->finished || !advance_page(st))
			{
				st->finished = true;
				return slot;
			}
		}
		MemoryContextReset(st->tuple_cxt);
		old = MemoryContextSwitchTo(st->tuple_cxt);
		makini_convert_row(st->map,
						   &st->page->values[(Size) st->row * st->page->ncols],
						   st->page->row_parent_keys[st->row],
						   st->page->row_keys[st->row],
						   slot->tts_values, slot->tts_isnull, &st->page_ctx);
		MemoryContextSwitchTo(old);
		skip = phase_skips_row(st, slot) || (st->dedupe && repeated_row(st));
		st->row++;
		if (!skip)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	st->rows_returned++;
	if (st->next_req != NULL && st->row % MAKINI_POLL_EVERY == 0)
		makini_request_poll(st->next_req);
	return ExecStoreVirtualTuple(slot);
}

/* Drops the request in flight and the pages. */
static void
reset_scan(MakiniScanState *st)
{
	cancel_speculation(st);
	cancel_probe(st);
	if (st->next_req != NULL)
		makini_request_cancel(st->next_req);
	st->next_req = NULL;
	st->page = NULL;
	st->variants = NIL;
	st->started = false;
	st->finished = false;
	st->rows_returned = 0;
	st->seen = NULL;			/* in scan_cxt, reset below */
	st->decided_key = NULL;
	st->key_free = 0;
	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->next_cxt);
	MemoryContextReset(st->page_req_cxt);
	MemoryContextReset(st->next_req_cxt);
	MemoryContextReset(st->scan_cxt);
}

/* ReScanForeignScan: start over, with the outer row's values if they changed. */
void
makiniReScanForeignScan(ForeignScanState *node)
{
	reset_scan((MakiniScanState *) node->fdw_state);
}

/*
 * EndForeignScan: release the request in flight now (contexts go with the
 * query); makini_sync's scan hands over its counts.
 */
void
makiniEndForeignScan(ForeignScanState *node)
{
	MakiniScanState *st = (MakiniScanState *) node->fdw_state;

	if (st != NULL && st->sync_counted && st->conn != NULL)
		makini_sync_note_scan(st->rows_returned, &st->stats, st->latest_updated);

	if (st != NULL && st->next_req != NULL)
	{
		makini_request_cancel(st->next_req);
		st->next_req = NULL;
	}
	if (st != NULL)
	{
		cancel_speculation(st);
		cancel_probe(st);
		close_wait_fds(st);
	}
}

/* ------------------------------------------------------------------------
 * ANALYZE: a sample of the rows, read through the same page loop.  The
 * first MAKINI_ANALYZE_MAX_PAGES pages of MAKINI_MAX_PAGE_SIZE records are
 * read; past them the row count is extrapolated from meta.total.
 * ------------------------------------------------------------------------
 */
#define MAKINI_MAX_PAGE_SIZE		500
#define MAKINI_ANALYZE_MAX_PAGES	200

/* Reservoir-samples the rows of a foreign table for ANALYZE. */
static int
makini_acquire_sample_rows(Relation rel, int elevel, HeapTuple *rows,
						   int targrows, double *totalrows,
						   double *totaldeadrows)
{
	MakiniScanState *st = palloc0(sizeof(MakiniScanState));
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	MemoryContext caller = CurrentMemoryContext;
	ReservoirStateData rstate;
	double		seen = 0;
	int64		records = 0;
	int			nsampled = 0;
	int			pages = 0;
	double		skip = -1;

	st->topts = makini_get_table_options(RelationGetRelid(rel));
	st->conn = makini_get_connection(&st->topts->server,
									 GetUserMapping(GetUserId(), GetForeignTable(RelationGetRelid(rel))->serverid));
	st->map = makini_build_column_map(rel, st->topts, NULL);
	st->per_page = MAKINI_MAX_PAGE_SIZE;
	st->limit = st->plan_limit = -1;
	create_scan_contexts(st, caller);
	st->variants = list_make1(palloc0(sizeof(MakiniVariant)));
	st->started = true;
	st->progress_start = st->progress_last = GetCurrentTimestamp();
	start_request(st, 0, 1);
	reservoir_init_selection_state(&rstate, targrows);

	while (pages < MAKINI_ANALYZE_MAX_PAGES && advance_page(st))
	{
		pages++;
		records += st->page->nrecords;
		for (st->row = 0; st->row < st->page->nrows; st->row++)
		{
			int			slot = nsampled;

			CHECK_FOR_INTERRUPTS();
			if (nsampled >= targrows)
			{
				/* Vitter's algorithm: skip rows, then replace a random one */
				if (skip < 0)
					skip = reservoir_get_next_S(&rstate, seen, targrows);
				if (skip-- > 0)
				{
					seen++;
					continue;
				}
				slot = (int) (targrows * sampler_random_fract(&rstate.randstate));
				heap_freetuple(rows[slot]);
			}
			MemoryContextReset(st->tuple_cxt);
			MemoryContextSwitchTo(st->tuple_cxt);
			makini_convert_row(st->map,
							   &st->page->values[(Size) st->row * st->page->ncols],
							   st->page->row_parent_keys[st->row],
							   st->page->row_keys[st->row], values, nulls,
							   &st->page_ctx);
			MemoryContextSwitchTo(caller);
			rows[slot] = heap_form_tuple(desc, values, nulls);
			if (nsampled < targrows)
				nsampled++;
			seen++;
		}
	}
	*totalrows = seen;
	if (st->next_req != NULL && st->page != NULL && st->page->total > records && records > 0)
		*totalrows = seen * st->page->total / records;
	*totaldeadrows = 0;
	if (st->next_req != NULL)
		makini_request_cancel(st->next_req);
	ereport(elevel,
			(errmsg("\"%s\": %d pages of the Makini API read, %.0f rows seen, %d rows in sample, %.0f estimated total rows",
					RelationGetRelationName(rel), pages, seen, nsampled, *totalrows)));
	MemoryContextDelete(st->scan_cxt);
	MemoryContextDelete(st->page_cxt);
	MemoryContextDelete(st->next_cxt);
	MemoryContextDelete(st->page_req_cxt);
	MemoryContextDelete(st->next_req_cxt);
	MemoryContextDelete(st->tuple_cxt);
	return nsampled;
}

/* AnalyzeForeignTable: sample through the API. */
bool
makiniAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						  BlockNumber *totalpages)
{
	*func = makini_acquire_sample_rows;
	*totalpages = 1;
	return true;
}

/* ------------------------------------------------------------------------
 * Async scans: under an Append over many servers, every scan's request is on
 * the wire at once (they share one curl multi handle) and rows come from
 * whichever page arrives first.  The Append waits on one descriptor per
 * scan, and in PostgreSQL 15 without its latch: so the descriptor is an
 * epoll set holding curl's sockets (a reply arriving wakes it at once) and
 * a timerfd for what no socket announces -- curl's timeouts, a retry's
 * backoff, and interrupts, which act when the wait ends, within
 * MAKINI_ASYNC_MAX_WAIT_MS.  Built afresh for every wait: curl's sockets
 * change between waits.
 * ------------------------------------------------------------------------
 */
#define MAKINI_ASYNC_MAX_WAIT_MS	20
#define MAKINI_ASYNC_MAX_SOCKETS	64

/* Closes the scan's wait descriptors (next wait, end of query or error). */
static void
close_wait_fds(void *arg)
{
	MakiniScanState *st = (MakiniScanState *) arg;

	if (st->timer_fd >= 0)
		close(st->timer_fd);
	if (st->wait_fd >= 0)
		close(st->wait_fd);
	st->wait_fd = st->timer_fd = -1;
}

/* Raises the error of a failed wait set-up (errno tells why). */
static void
wait_setup_failed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
			 errmsg("could not set up the wait of an asynchronous foreign scan: %m")));
}

/* Adds fd to epoll set epfd for events. */
static void
epoll_add(int epfd, int fd, uint32 events)
{
	struct epoll_event ev = {0};

	ev.events = events;
	ev.data.fd = fd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		wait_setup_failed();
}

/*
 * Builds the descriptor the Append waits on for this scan: curl's sockets,
 * and a timer for the next poll the scan's request needs (capped, so that
 * interrupts are seen).
 */
static int
async_wait_fd(MakiniScanState *st)
{
	int			fds[MAKINI_ASYNC_MAX_SOCKETS];
	int			events[MAKINI_ASYNC_MAX_SOCKETS];
	int			n = makini_wait_sockets(fds, events, MAKINI_ASYNC_MAX_SOCKETS);
	long		ms = st->next_req ? makini_request_timeout_ms(st->next_req) : 0;
	struct itimerspec its = {{0, 0}, {0, 0}};

	close_wait_fds(st);
	/*
	 * Registered on the query's context, not scan_cxt: a rescan resets
	 * scan_cxt, which would consume the callback, and an error after that
	 * would leak the descriptors.  The query's context is only deleted.
	 */
	if (st->wait_cb.func == NULL)
	{
		st->wait_cb.func = close_wait_fds;
		st->wait_cb.arg = st;
		MemoryContextRegisterResetCallback(MemoryContextGetParent(st->scan_cxt),
										   &st->wait_cb);
	}
	st->wait_fd = epoll_create1(EPOLL_CLOEXEC);
	if (st->wait_fd < 0)
		wait_setup_failed();
	st->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (st->timer_fd < 0)
		wait_setup_failed();

	if (ms < 0 || ms > MAKINI_ASYNC_MAX_WAIT_MS)
		ms = MAKINI_ASYNC_MAX_WAIT_MS;
	/* a zero it_value would disarm it: "now" is one nanosecond */
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (ms % 1000) * 1000000L + (ms == 0 ? 1 : 0);
	if (timerfd_settime(st->timer_fd, 0, &its, NULL) < 0)
		wait_setup_failed();
	epoll_add(st->wait_fd, st->timer_fd, EPOLLIN);
	for (int i = 0; i < n; i++)
		epoll_add(st->wait_fd, fds[i],
				  ((events[i] & MAKINI_WAIT_READ) ? EPOLLIN : 0) |
				  ((events[i] & MAKINI_WAIT_WRITE) ? EPOLLOUT : 0));
	return st->wait_fd;
}

/*
 * Gives the Append a row if one is ready, else leaves the request pending;
 * the row goes through the node (local quals, projection).
 */
static void
produce_async(AsyncRequest *areq)
{
	ForeignScanState *node = (ForeignScanState *) areq->requestee;
	MakiniScanState *st = (MakiniScanState *) node->fdw_state;
	TupleTableSlot *volatile result = NULL;

	st->in_async = true;
	st->starved = false;
	PG_TRY();
	{
		result = areq->requestee->ExecProcNodeReal(areq->requestee);
	}
	PG_FINALLY();
	{
		st->in_async = false;
	}
	PG_END_TRY();

	if (!TupIsNull(result))
		ExecAsyncRequestDone(areq, result);
	else if (st->starved)
		ExecAsyncRequestPending(areq);
	else
		ExecAsyncRequestDone(areq, NULL);
}

/* ForeignAsyncRequest: a row now, or pending. */
void
makiniForeignAsyncRequest(AsyncRequest *areq)
{
	produce_async(areq);
}

/* ForeignAsyncConfigureWait: wake the Append on a reply or the next deadline. */
void
makiniForeignAsyncConfigureWait(AsyncRequest *areq)
{
	ForeignScanState *node = (ForeignScanState *) areq->requestee;
	AppendState *requestor = (AppendState *) areq->requestor;

	AddWaitEventToSet(requestor->as_eventset, WL_SOCKET_READABLE,
					  async_wait_fd((MakiniScanState *) node->fdw_state), NULL, areq);
}

/* ForeignAsyncNotify: drive the transfers; a row if a page arrived. */
void
makiniForeignAsyncNotify(AsyncRequest *areq)
{
	CHECK_FOR_INTERRUPTS();
	produce_async(areq);
}

/*
 * The filters EXPLAIN shows for a condition: those sent for a constant; for
 * an expression, the parameters it fills, its value written $(expression)
 * (evaluated when the scan starts); for a constant IN list, its values as
 * {a,b} and in *requests their number (one request per value).
 */
static List *
explain_filters(MakiniCond *c, Expr *expr, List *dpcontext, int *requests)
{
	Const	   *k = (Const *) expr;
	List	   *filters = NIL;
	char	   *value;
	int			slots;

	*requests = -1;
	if (IsA(k, Const) && !k->constisnull && !c->in_list)
	{
		makini_cond_filters(c, k->constvalue, k->consttype, &filters);
		return filters;
	}
	if (IsA(k, Const) && !k->constisnull)
	{
		List	   *values;
		StringInfoData buf;
		ListCell   *lc;

		makini_in_list_values(k->constvalue, &values);
		*requests = list_length(values);
		initStringInfo(&buf);
		foreach(lc, values)
			appendStringInfo(&buf, "%s%s", buf.len == 0 ? "{" : ",", strVal(lfirst(lc)));
		appendStringInfoString(&buf, buf.len == 0 ? "{}" : "}");
		value = buf.data;
	}
	else
		value = psprintf("$(%s)", deparse_expression((Node *) expr, dpcontext,
													 false, false));
	slots = makini_cond_slots(c);
	for (int op = MAKINI_OP_EQ; op <= MAKINI_OP_LTEQ; op++)
	{
		MakiniFilter *f;

		if ((slots & (1 << op)) == 0)
			continue;
		f = palloc0(sizeof(MakiniFilter));
		f->field = c->field;
		f->op = makini_op_name((MakiniOp) op);
		f->value = value;
		filters = lappend(filters, f);
	}
	return filters;
}

/*
 * The request EXPLAIN VERBOSE shows: the values of constants, expressions
 * else; and how many requests an IN list or key list makes.  A sorted scan
 * in two phases (phase_variants) shows the sorted request, and in *nulls
 * the one for records without a value, and when it runs.
 */
static char *
explain_request(ForeignScanState *node, MakiniScanState *st, ExplainState *es,
				char **nulls)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	List	   *filters = NIL;
	char	   *item_key = NULL;
	char	   *per_value = NULL;
	int			requests = -1;
	char	   *path;
	ListCell   *lc1,
			   *lc2;

	forboth(lc1, st->conds, lc2, fsplan->fdw_exprs)
	{
		MakiniCond *c = (MakiniCond *) lfirst(lc1);
		int			n;
		List	   *f = explain_filters(c, (Expr *) lfirst(lc2), es->deparse_cxt, &n);

		if (c->in_list)
		{
			per_value = c->field;
			requests = n;
		}
		if (c->key_lookup && makini_key_fits_path(((MakiniFilter *) linitial(f))->value))
			item_key = ((MakiniFilter *) linitial(f))->value;
		else
			filters = list_concat(filters, f);
	}
	*nulls = NULL;
	if (requests == 0)
		return pstrdup("none (the IN list has no value)");
	if (st->sorts != NIL && item_key == NULL &&
		!filters_name_field(filters, ((MakiniSort *) linitial(st->sorts))->field))
	{
		MakiniSort *sort = linitial(st->sorts);

		*nulls = psprintf("GET %s (rows without %s, %s)",
						  makini_build_path(st->topts->resource, NULL, filters,
											NIL, st->topts->server.page_size,
											1, true),
						  sort->field,
						  sort->nulls_first ?
						  "first, unless its meta.total with per_page=1 equals the sorted request's" :
						  "after the sorted rows, if more are wanted");
		filters = valued_filters(filters, sort);
	}
	path = makini_build_path(st->topts->resource, item_key, filters, st->sorts,
							 st->per_page, 1, true);
	if (per_value != NULL)
		return psprintf("GET %s (one request per value of %s)", path, per_value);
	return psprintf("GET %s", path);
}

/* ExplainForeignScan: the request (VERBOSE) and what was transferred (ANALYZE). */
void
makiniExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	MakiniScanState *st = (MakiniScanState *) node->fdw_state;

	if (es->verbose)
	{
		char	   *nulls;

		ExplainPropertyText("Makini request", explain_request(node, st, es, &nulls), es);
		if (nulls != NULL)
			ExplainPropertyText("Makini request for NULLs", nulls, es);
	}
	if (es->analyze)
	{
		ExplainPropertyInteger("Makini HTTP requests", NULL, st->stats.requests, es);
		ExplainPropertyInteger("Makini pages", NULL, st->stats.pages, es);
		ExplainPropertyInteger("Makini bytes received", NULL, st->stats.bytes, es);
		ExplainPropertyInteger("Makini retries", NULL, st->stats.retries, es);
		ExplainPropertyInteger("Makini most requests in flight", NULL,
							   st->max_in_flight, es);
		if (st->track)
		{
			char	   *latest = makini_render_instant(st->latest_updated);

			ExplainPropertyText("Makini latest updatedAt",
								latest ? latest : "none", es);
		}
	}
}
