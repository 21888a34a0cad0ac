/*-------------------------------------------------------------------------
 *
 * makini_fdw.c
 *		  Planner and executor callbacks of makini_fdw: paths and costs,
 *		  the scan's page loop with prefetch, EXPLAIN.
 *
 * A scan is a list of "variants" (one per value of a pushed IN list or
 * key list, else one), each a sequence of pages.  While the rows of one
 * page are returned, the next request (the next page, or the first page
 * of the next variant) is already on the wire.  Two memory contexts hold
 * the current page and the request in flight; a third, reset per tuple,
 * holds converted values.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/execAsync.h"
#include "executor/executor.h"
#include "executor/nodeAppend.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/sampling.h"

#include "makini_fdw.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* cost of one HTTP request (a round trip to an API in front of an ERP) */
#define MAKINI_REQUEST_COST		100.0
/* cost of transferring and parsing one record */
#define MAKINI_RECORD_COST		0.1
/* rows of a never-analyzed table without remote estimates */
#define MAKINI_DEFAULT_RECORDS	1000.0
/* rows per record of an expand table, unless measured */
#define MAKINI_DEFAULT_EXPANSION 5.0
/* empty pages in a row (with a next link) before we call it a loop */
#define MAKINI_MAX_EMPTY_PAGES	100
/* rows returned between two non-blocking polls of the request in flight */
#define MAKINI_POLL_EVERY		256

/* memory kept for a page: this much a record, between 1 and 8 MB */
#define MAKINI_PAGE_BYTES_PER_RECORD	(16 * 1024)

/* planner state of a foreign table */
typedef struct MakiniRelInfo
{
	MakiniTableOptions *topts;
	List	   *conds;			/* MakiniCond of pushable restrictions */
	List	   *cond_clauses;	/* their RestrictInfos */
	Bitmapset  *attrs_used;
	double		records;		/* records the pushed filters let through */
	double		expansion;		/* rows per record */
	int			per_page;
} MakiniRelInfo;

/* fdw_private of a ForeignScan; fdw_exprs holds the conditions' values */
enum FdwScanPrivateIndex
{
	FdwScanPrivateConds,		/* serialized MakiniCond list */
	FdwScanPrivateSorts,		/* list of (field, descending) */
	FdwScanPrivateAttrs,		/* attnums the query uses (0 = whole row) */
	FdwScanPrivatePerPage,
	FdwScanPrivateLimit			/* rows the query needs at most, or -1 */
};

/* one request sequence of a scan: filters, or one key */
typedef struct MakiniVariant
{
	List	   *filters;		/* MakiniFilter */
	char	   *item_key;		/* item request, or NULL */
} MakiniVariant;

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
	int64		limit;

	MemoryContext scan_cxt;		/* variants, lasting the scan */
	MemoryContext page_cxt;		/* the page whose rows are returned */
	MemoryContext next_cxt;		/* the request in flight */
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

	MakiniRequest *next_req;	/* in flight, or NULL */
	int			next_variant;
	int			next_pageno;
	char	   *next_path;

	/* the request after next, sent before the next page is parsed */
	bool		speculate;		/* this scan may (no LIMIT, not ANALYZE) */
	MakiniRequest *spec_req;	/* in flight, or NULL */
	int			spec_variant;
	int			spec_pageno;
	char	   *spec_path;
	MemoryContext spec_cxt;		/* created on first use */

	int64		rows_returned;
	bool		followed;		/* the request after the current page was
								 * considered (the LIMIT may hold it back) */
	MakiniStats stats;

	/* async scans under an Append */
	bool		in_async;		/* rows asked for by the Append: never block */
	bool		starved;		/* ... and the next page has not arrived */
	int			timer_fd;		/* wakes the Append to drive transfers, or -1 */
	MemoryContextCallback timer_cb;
} MakiniScanState;

PG_FUNCTION_INFO_V1(makini_fdw_handler);

static void close_timer(void *arg);

/* ------------------------------------------------------------------------
 * Planner
 * ------------------------------------------------------------------------
 */

/* A palloc'd copy of a condition. */
static MakiniCond *
copy_cond(const MakiniCond *c)
{
	MakiniCond *copy = palloc(sizeof(MakiniCond));

	memcpy(copy, c, sizeof(MakiniCond));
	return copy;
}

/* Records the pushable restrictions of the table, and their clauses. */
static void
collect_conds(PlannerInfo *root, RelOptInfo *baserel, MakiniRelInfo *info)
{
	ListCell   *lc;

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		MakiniCond	cond;

		if (!makini_pushable_cond(root, baserel, info->topts, ri->clause, &cond))
			continue;
		info->conds = lappend(info->conds, copy_cond(&cond));
		info->cond_clauses = lappend(info->cond_clauses, ri);
	}
}

/*
 * The conditions a scan sends: a key lookup replaces every filter (the item
 * endpoint takes none); otherwise the first condition of each filter
 * parameter (the API keeps only the last of a repeated one, see
 * makini_cond_slots) and one IN list (each makes one request per value).
 */
static List *
effective_conds(List *conds)
{
	List	   *result = NIL;
	ListCell   *lc;
	bool		have_in_list = false;

	foreach(lc, conds)
	{
		MakiniCond *c = (MakiniCond *) lfirst(lc);

		if (c->key_lookup)
			return list_make1(c);
	}
	foreach(lc, conds)
	{
		MakiniCond *c = (MakiniCond *) lfirst(lc);
		ListCell   *lc2;
		bool		clash = (c->in_list && have_in_list);

		foreach(lc2, result)
		{
			MakiniCond *o = (MakiniCond *) lfirst(lc2);

			clash |= (strcmp(o->field, c->field) == 0 &&
					  (makini_cond_slots(o) & makini_cond_slots(c)) != 0);
		}
		if (clash)
			continue;
		have_in_list |= c->in_list;
		result = lappend(result, c);
	}
	return result;
}

/* Number of values in a constant IN list, or a guess. */
static double
in_list_length(MakiniCond *c)
{
	if (IsA(c->expr, Const) && !((Const *) c->expr)->constisnull)
		return ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) c->expr)->constvalue)),
							  ARR_DIMS(DatumGetArrayTypeP(((Const *) c->expr)->constvalue)));
	if (IsA(c->expr, ArrayExpr))
		return list_length(((ArrayExpr *) c->expr)->elements);
	return 10;
}

/* How many request sequences the conditions make. */
static double
variant_count(List *conds)
{
	ListCell   *lc;

	foreach(lc, conds)
	{
		MakiniCond *c = (MakiniCond *) lfirst(lc);

		if (c->in_list)
			return Max(in_list_length(c), 1);
	}
	return 1;
}

/*
 * Filters of the sent conditions whose value is a constant (for estimates),
 * and in *sent those conditions.
 */
static List *
constant_filters(List *conds, List **sent)
{
	List	   *filters = NIL;
	ListCell   *lc;

	*sent = NIL;
	foreach(lc, effective_conds(conds))
	{
		MakiniCond *c = (MakiniCond *) lfirst(lc);
		Const	   *k = (Const *) c->expr;

		if (!c->in_list && !c->key_lookup && IsA(k, Const) && !k->constisnull &&
			makini_cond_filters(c, k->constvalue, k->consttype, &filters))
			*sent = lappend(*sent, c);
	}
	return filters;
}

/*
 * Asks the API how many records match filters (meta.total, -1 if it does
 * not say) with a small first page; for an expand table, also how many rows
 * a record gives (*expansion, left alone if the page has no record).
 */
static double
remote_count(MakiniTableOptions *topts, Oid userid, List *filters,
			 double *expansion)
{
	ForeignServer *server = GetForeignServer(GetForeignTable(topts->relid)->serverid);
	UserMapping *um = GetUserMapping(userid, server->serverid);
	MakiniConnection *conn = makini_get_connection(&topts->server, um);
	MakiniStats stats = {0};
	char	   *path;
	MakiniResponse *resp;
	MakiniReplyContext ctx;
	MakiniPage *page;
	Relation	rel;
	MakiniColumnMap *map;

	path = makini_build_path(topts->resource, NULL, filters, NIL,
							 topts->expand ? 20 : 1, 1, false);
	resp = makini_http_get(conn, path, &stats, MAKINI_RAISE);
	if (resp == NULL)
		return -1;				/* unreachable and skipped */
	ctx.servername = topts->server.servername;
	ctx.path = path;
	ctx.request_id = resp->request_id;
	rel = table_open(topts->relid, NoLock);
	/* no column needed: only records and rows are counted */
	map = makini_build_column_map(rel, topts,
								  bms_make_singleton(SelfItemPointerAttributeNumber -
													 FirstLowInvalidHeapAttributeNumber));
	table_close(rel, NoLock);
	page = makini_parse_page(map, resp->body, resp->len, false, &ctx);
	if (topts->expand && page->nrecords > 0)
		*expansion = (double) page->nrows / page->nrecords;
	return page->total;
}

/*
 * use_remote_estimate: the records the constant filters let through, from
 * the API, times the selectivity of the pushed conditions it was not asked
 * about (IN lists, parameters, clashing filters); the table's size, if not
 * analyzed, from an unfiltered request.  False if the API gave no count.
 */
static bool
remote_estimate(PlannerInfo *root, RelOptInfo *baserel, MakiniRelInfo *info,
				Oid userid)
{
	List	   *sent;
	List	   *filters = constant_filters(info->conds, &sent);
	double		total = remote_count(info->topts, userid, filters, &info->expansion);
	List	   *unsent = NIL;
	ListCell   *lc1,
			   *lc2;

	if (total < 0)
		return false;
	if (baserel->tuples <= 0)
	{
		double		all = (filters == NIL) ? total :
			remote_count(info->topts, userid, NIL, &info->expansion);

		baserel->tuples = Max(all, total) * info->expansion;
	}
	forboth(lc1, info->conds, lc2, info->cond_clauses)
	{
		if (!list_member_ptr(sent, lfirst(lc1)))
			unsent = lappend(unsent, lfirst(lc2));
	}
	info->records = total * clauselist_selectivity(root, unsent, baserel->relid,
												   JOIN_INNER, NULL);
	return true;
}

/*
 * GetForeignRelSize: conditions, columns used, row estimate.  The table's
 * size (baserel->tuples, which also sizes parameterized paths) is its
 * analyzed size, the API's count with use_remote_estimate, else a default.
 */
static void
makiniGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	MakiniRelInfo *info = palloc0(sizeof(MakiniRelInfo));
	ListCell   *lc;
	Selectivity remote_sel;
	Selectivity all_sel;
	Oid			userid;

	baserel->fdw_private = info;
	info->topts = makini_get_table_options(foreigntableid);
	info->per_page = info->topts->server.page_size;
	info->expansion = info->topts->expand ? MAKINI_DEFAULT_EXPANSION : 1.0;
	collect_conds(root, baserel, info);

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &info->attrs_used);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &info->attrs_used);

	remote_sel = clauselist_selectivity(root, info->cond_clauses, baserel->relid,
										JOIN_INNER, NULL);
	all_sel = clauselist_selectivity(root, baserel->baserestrictinfo,
									 baserel->relid, JOIN_INNER, NULL);
	userid = OidIsValid(baserel->userid) ? baserel->userid : GetUserId();
	if (!info->topts->server.use_remote_estimate ||
		!remote_estimate(root, baserel, info, userid))
	{
		if (baserel->tuples <= 0)
			baserel->tuples = MAKINI_DEFAULT_RECORDS * info->expansion;
		info->records = baserel->tuples / info->expansion * remote_sel;
	}

	baserel->rows = clamp_row_est(info->records * info->expansion *
								  (remote_sel > 0 ? all_sel / remote_sel : all_sel));
}

/* Cost of fetching `records` records in `variants` request sequences. */
static void
scan_cost(MakiniRelInfo *info, double records, double variants, double rows,
		  Cost *startup, Cost *total)
{
	double		requests = Max(variants, ceil(records / info->per_page));

	*startup = MAKINI_REQUEST_COST;
	*total = requests * MAKINI_REQUEST_COST + records * MAKINI_RECORD_COST +
		rows * cpu_tuple_cost;
}

/* The expression of an equivalence class that belongs to rel alone, if any. */
static Expr *
em_expr_for_rel(EquivalenceClass *ec, RelOptInfo *rel)
{
	ListCell   *lc;

	foreach(lc, ec->ec_members)
	{
		EquivalenceMember *em = (EquivalenceMember *) lfirst(lc);

		if (!em->em_is_const && !em->em_is_child &&
			bms_equal(em->em_relids, rel->relids))
			return em->em_expr;
	}
	return NULL;
}

/*
 * The API sorts like PostgreSQL only for instants (timestamptz columns),
 * and puts NULLs last in both directions: a NULLS FIRST key (DESC by
 * default) is pushed only where no NULL can reach the result, i.e. the
 * field carries a pushed date-time condition (strict, and rechecked
 * locally; a text column of the field may hold "" where this one is NULL).
 * Returns the sort fields of the query's ORDER BY, or NIL when it cannot be
 * pushed.
 */
static List *
pushable_sorts(PlannerInfo *root, RelOptInfo *baserel, MakiniRelInfo *info)
{
	List	   *sorts = NIL;
	ListCell   *lc;

	foreach(lc, root->query_pathkeys)
	{
		PathKey    *pk = (PathKey *) lfirst(lc);
		Expr	   *em_expr = em_expr_for_rel(pk->pk_eclass, baserel);
		char	   *field;
		MakiniSort *s;
		ListCell   *lc2;
		bool		nonnull = false;

		if (em_expr == NULL || pk->pk_strategy == 0 ||
			(field = makini_sortable_field(baserel, info->topts, em_expr)) == NULL)
			return NIL;
		foreach(lc2, info->conds)
		{
			MakiniCond *c = (MakiniCond *) lfirst(lc2);

			/* a date-time condition: on a timestamptz column of the field */
			nonnull |= (c->form != MAKINI_FORM_TEXT && strcmp(c->field, field) == 0);
		}
		if (pk->pk_nulls_first && !nonnull)
			return NIL;
		s = palloc0(sizeof(MakiniSort));
		s->field = field;
		s->descending = (pk->pk_strategy == BTGreaterStrategyNumber);
		sorts = lappend(sorts, s);
	}
	return sorts;
}

/* Member callback: is em a pushable column of the table? */
static bool
ec_member_pushable(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				   EquivalenceMember *em, void *arg)
{
	Expr	   *expr = em->em_expr;

	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	return IsA(expr, Var) && ((Var *) expr)->varno == rel->relid &&
		equal(expr, arg);
}

/* Join clauses of baserel the API could evaluate per outer row. */
static List *
pushable_join_clauses(PlannerInfo *root, RelOptInfo *baserel, MakiniRelInfo *info)
{
	List	   *clauses = NIL;
	ListCell   *lc;

	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		MakiniCond	c;

		if (join_clause_is_movable_to(ri, baserel) &&
			makini_pushable_cond(root, baserel, info->topts, ri->clause, &c) &&
			c.op == MAKINI_OP_EQ && !c.in_list)
			clauses = lappend(clauses, ri);
	}
	if (baserel->has_eclass_joins)
	{
		TupleDesc	desc;
		Relation	rel = table_open(info->topts->relid, NoLock);

		desc = RelationGetDescr(rel);
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			Var		   *var;

			if (att->attisdropped)
				continue;
			var = makeVar(baserel->relid, att->attnum, att->atttypid,
						  att->atttypmod, att->attcollation, 0);
			foreach(lc, generate_implied_equalities_for_column(root, baserel,
															   ec_member_pushable,
															   var,
															   baserel->lateral_referencers))
			{
				RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
				MakiniCond	c;

				if (makini_pushable_cond(root, baserel, info->topts, ri->clause, &c) &&
					c.op == MAKINI_OP_EQ)
					clauses = lappend(clauses, ri);
			}
		}
		table_close(rel, NoLock);
	}
	return clauses;
}

/*
 * Adds one parameterized path per pushable join clause: the outer row's
 * value is sent as a filter (or a key lookup), one small request per outer
 * row, costed as such so that the planner weighs it against one scan.
 */
static void
add_parameterized_paths(PlannerInfo *root, RelOptInfo *baserel, MakiniRelInfo *info)
{
	ListCell   *lc;

	foreach(lc, pushable_join_clauses(root, baserel, info))
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Relids		required_outer;
		ParamPathInfo *ppi;
		Cost		startup,
					total;
		double		records;

		required_outer = bms_union(ri->clause_relids, baserel->lateral_relids);
		required_outer = bms_del_member(required_outer, baserel->relid);
		if (bms_is_empty(required_outer))
			continue;
		ppi = get_baserel_parampathinfo(root, baserel, required_outer);
		records = Max(1.0, ppi->ppi_rows / info->expansion);
		scan_cost(info, records, 1, ppi->ppi_rows, &startup, &total);
		add_path(baserel, (Path *)
				 create_foreignscan_path(root, baserel, NULL, ppi->ppi_rows,
										 startup, total, NIL, required_outer,
										 NULL, NIL));
	}
}

/*
 * GetForeignPaths: the plain scan, a sorted one, parameterized ones.  Paths
 * of a table referenced laterally are parameterized by what it references.
 */
static void
makiniGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	MakiniRelInfo *info = (MakiniRelInfo *) baserel->fdw_private;
	List	   *conds = effective_conds(info->conds);
	double		variants = variant_count(conds);
	Cost		startup,
				total;
	List	   *sorts;

	if (conds != NIL && ((MakiniCond *) linitial(conds))->key_lookup)
		info->records = Min(info->records, variants);
	scan_cost(info, info->records, variants, baserel->rows, &startup, &total);
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, total, NIL,
									 baserel->lateral_relids, NULL, NIL));

	sorts = (variants == 1) ? pushable_sorts(root, baserel, info) : NIL;
	if (sorts != NIL)
		add_path(baserel, (Path *)
				 create_foreignscan_path(root, baserel, NULL, baserel->rows,
										 startup, total, root->query_pathkeys,
										 baserel->lateral_relids, NULL,
										 list_make1(sorts)));
	add_parameterized_paths(root, baserel, info);
}

/* Serializes a sort list for fdw_private. */
static List *
sorts_to_private(List *sorts)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, sorts)
	{
		MakiniSort *s = (MakiniSort *) lfirst(lc);

		result = lappend(result, list_make2(makeString(s->field),
											makeBoolean(s->descending)));
	}
	return result;
}

/*
 * Rows the query needs at most, when the scan is the whole query and the
 * API evaluates every condition exactly: per_page shrinks to it and no page
 * is prefetched past it.  -1 otherwise.
 */
static int64
scan_limit(PlannerInfo *root, List *pathkeys)
{
	if (root->limit_tuples <= 0 || root->limit_tuples > PG_INT32_MAX ||
		bms_membership(root->all_baserels) != BMS_SINGLETON ||
		(root->query_pathkeys != NIL &&
		 !pathkeys_contained_in(root->query_pathkeys, pathkeys)))
		return -1;
	return (int64) root->limit_tuples;
}

/* GetForeignPlan: pushed conditions and their values, local quals. */
static ForeignScan *
makiniGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					 ForeignPath *best_path, List *tlist, List *scan_clauses,
					 Plan *outer_plan)
{
	MakiniRelInfo *info = (MakiniRelInfo *) baserel->fdw_private;
	List	   *all_conds = NIL;
	List	   *conds;
	List	   *exprs = NIL;
	List	   *attrs = NIL;
	List	   *sorts = best_path->fdw_private ? linitial(best_path->fdw_private) : NIL;
	ListCell   *lc;
	int			x;
	bool		all_exact = true;
	int64		limit;
	int			per_page = info->per_page;

	/* every pushed condition also stays a local qual: results stay exact */
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		MakiniCond	c;

		if (makini_pushable_cond(root, baserel, info->topts, ri->clause, &c))
		{
			all_conds = lappend(all_conds, copy_cond(&c));
			all_exact &= c.exact;
		}
		else
			all_exact = false;
	}
	conds = effective_conds(all_conds);
	all_exact &= list_length(conds) == list_length(all_conds);
	foreach(lc, conds)
		exprs = lappend(exprs, ((MakiniCond *) lfirst(lc))->expr);

	limit = (all_exact && variant_count(conds) == 1) ?
		scan_limit(root, best_path->path.pathkeys) : -1;
	if (limit > 0 && limit < per_page)
		per_page = (int) limit;

	x = -1;
	while ((x = bms_next_member(info->attrs_used, x)) >= 0)
		attrs = lappend_int(attrs, x + FirstLowInvalidHeapAttributeNumber);

	return make_foreignscan(tlist, extract_actual_clauses(scan_clauses, false),
							baserel->relid, exprs,
							list_make5(makini_conds_to_private(conds),
									   sorts_to_private(sorts), attrs,
									   makeInteger(per_page),
									   makeInteger((int) limit)),
							NIL, NIL, outer_plan);
}

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

/* The scan's memory: variants, two pages (current, in flight), one row. */
static void
create_scan_contexts(MakiniScanState *st, MemoryContext parent)
{
	st->scan_cxt = AllocSetContextCreate(parent, "makini_fdw scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->page_cxt = create_page_context(st, parent);
	st->next_cxt = create_page_context(st, parent);
	st->tuple_cxt = AllocSetContextCreate(parent, "makini_fdw tuple",
										  ALLOCSET_SMALL_SIZES);
	st->timer_fd = -1;
}

/* BeginForeignScan: options, connection, column map, condition values. */
static void
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
	RangeTblEntry *rte;

	node->fdw_state = st;
	st->timer_fd = -1;
	st->topts = makini_get_table_options(RelationGetRelid(rel));
	st->conds = makini_conds_from_private(list_nth(fsplan->fdw_private, FdwScanPrivateConds));
	foreach(lc, (List *) list_nth(fsplan->fdw_private, FdwScanPrivateSorts))
	{
		MakiniSort *s = palloc0(sizeof(MakiniSort));

		s->field = strVal(linitial((List *) lfirst(lc)));
		s->descending = boolVal(lsecond((List *) lfirst(lc)));
		st->sorts = lappend(st->sorts, s);
	}
	foreach(lc, (List *) list_nth(fsplan->fdw_private, FdwScanPrivateAttrs))
		attrs = bms_add_member(attrs, lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	/* no column at all (count(*)): a set naming none, as NULL means all */
	if (attrs == NULL)
		attrs = bms_make_singleton(SelfItemPointerAttributeNumber -
								   FirstLowInvalidHeapAttributeNumber);
	st->per_page = intVal(list_nth(fsplan->fdw_private, FdwScanPrivatePerPage));
	st->limit = intVal(list_nth(fsplan->fdw_private, FdwScanPrivateLimit));

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	um = GetUserMapping(userid, GetForeignTable(RelationGetRelid(rel))->serverid);
	st->conn = makini_get_connection(&st->topts->server, um);
	st->map = makini_build_column_map(rel, st->topts, attrs);
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
			if (c->key_lookup && strchr(text, '/') == NULL)
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

/* The path of the request for page pageno of variant v. */
static char *
variant_path(MakiniScanState *st, MakiniVariant *v, int pageno)
{
	return makini_build_path(st->topts->resource, v->item_key, v->filters,
							 st->sorts, st->per_page, pageno, false);
}

/* Drops the speculative request, if any (it was not needed after all). */
static void
cancel_speculation(MakiniScanState *st)
{
	if (st->spec_req == NULL)
		return;
	makini_request_cancel(st->spec_req);
	st->spec_req = NULL;
	MemoryContextReset(st->spec_cxt);
}

/*
 * Puts the request for (variant, pageno) on the wire in next_cxt, or adopts
 * the speculative request if it asked for just that.
 */
static void
start_request(MakiniScanState *st, int variant, int pageno)
{
	MemoryContext old;

	if (st->spec_req != NULL && st->spec_variant == variant &&
		st->spec_pageno == pageno)
	{
		MemoryContext swap = st->next_cxt;

		st->next_cxt = st->spec_cxt;
		st->spec_cxt = swap;
		st->next_req = st->spec_req;
		st->next_variant = variant;
		st->next_pageno = pageno;
		st->next_path = st->spec_path;
		st->spec_req = NULL;
		return;
	}
	cancel_speculation(st);
	old = MemoryContextSwitchTo(st->next_cxt);
	st->next_variant = variant;
	st->next_pageno = pageno;
	st->next_path = variant_path(st, list_nth(st->variants, variant), pageno);
	st->next_req = makini_request_start(st->conn, st->next_path, &st->stats);
	MemoryContextSwitchTo(old);
}

/* Page number the links.next URL asks for, or 0 if it names none. */
static int
next_link_page(const char *link)
{
	const char *q = link ? strchr(link, '?') : NULL;

	while (q != NULL)
	{
		q++;
		if (strncmp(q, "page=", 5) == 0)
			return atoi(q + 5);
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
	linked = next_link_page(page->next_link);
	if (linked != 0 && linked <= st->cur_pageno)
		makini_bad_reply(&st->page_ctx,
						 "links.next of page %d asks for page %d again.",
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

/* Starts the request after the current page: next page, or next variant. */
static void
prefetch(MakiniScanState *st)
{
	st->followed = true;
	if (has_following_page(st))
		start_request(st, st->cur_variant, st->cur_pageno + 1);
	else if (st->cur_variant + 1 < list_length(st->variants))
		start_request(st, st->cur_variant + 1, 1);
}

/*
 * Speculative prefetch.  With one keep-alive connection (HTTP/1.1, no
 * pipelining) a request can only go out once the reply before it has
 * arrived, and what to ask for next is known only once that reply is
 * decoded and parsed (links.next, meta).  But the current page N's
 * meta.last_page already says whether page N+2 exists: so as soon as the
 * bytes of page N+1 are in, the request for N+2 goes out, and the decoding
 * and parsing of N+1 overlap its round trip.  Parsing N+1 then confirms it (prefetch adopts the request) or not
 * (it is cancelled: the paging changed meanwhile, or N+1 was bad), so the
 * pages read are the same either way.  Only plain list scans without a
 * LIMIT speculate, and never on an empty page.
 */
static void
speculate(MakiniScanState *st)
{
	MakiniPage *page = st->page;
	MakiniVariant *v = list_nth(st->variants, st->next_variant);
	MemoryContext old;

	if (!st->speculate || st->spec_req != NULL || page == NULL ||
		v->item_key != NULL || st->next_variant != st->cur_variant ||
		st->next_pageno != st->cur_pageno + 1 || !page->has_next ||
		page->nrecords == 0 || page->last_page < st->next_pageno + 1 ||
		!makini_request_wait_arrival(st->next_req))
		return;
	if (st->spec_cxt == NULL)
		st->spec_cxt = create_page_context(st, MemoryContextGetParent(st->page_cxt));
	old = MemoryContextSwitchTo(st->spec_cxt);
	st->spec_variant = st->next_variant;
	st->spec_pageno = st->next_pageno + 1;
	st->spec_path = variant_path(st, v, st->spec_pageno);
	st->spec_req = makini_request_start(st->conn, st->spec_path, &st->stats);
	MemoryContextSwitchTo(old);
}

/*
 * Waits for the request in flight.  A failure is reported here with the
 * table's on_unreachable (the connection, shared by every table of the
 * server, does not know it); NULL when the server is skipped.
 */
static MakiniResponse *
wait_reply(MakiniScanState *st, bool item)
{
	MakiniResponse *resp = makini_request_wait(st->next_req, MAKINI_NO_RAISE);
	MakiniReplyContext ctx;

	if ((resp->status >= 200 && resp->status < 300) || (item && resp->status == 404))
		return resp;
	ctx.servername = st->topts->server.servername;
	ctx.path = st->next_path;
	ctx.request_id = resp->request_id;
	makini_report_failure(resp, &ctx, st->topts->server.skip_unreachable);
	return NULL;				/* skipped: a WARNING was given */
}

/*
 * Waits for the request in flight, parses it and makes it the current
 * page; then puts the following request on the wire, unless the query's
 * LIMIT is already covered.  Returns false when the scan is over.
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
		prefetch(st);
	if (st->next_req == NULL)
		return false;
	item = ((MakiniVariant *) list_nth(st->variants,
									   st->next_variant))->item_key != NULL;
	speculate(st);
	old = MemoryContextSwitchTo(st->next_cxt);
	resp = wait_reply(st, item);
	st->next_req = NULL;

	/* the old page goes; the new one lives in what was next_cxt */
	MemoryContextReset(st->page_cxt);
	swap = st->page_cxt;
	st->page_cxt = st->next_cxt;
	st->next_cxt = swap;
	st->followed = false;
	st->cur_variant = st->next_variant;
	st->cur_pageno = st->next_pageno;
	st->page = NULL;
	st->row = 0;
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
		st->page = makini_parse_page(st->map, resp->body, resp->len,
									 item,
									 &st->page_ctx);
	resp->body = NULL;
	MemoryContextSwitchTo(old);

	if (st->limit < 0 || st->rows_returned + st->page->nrows < st->limit)
		prefetch(st);
	cancel_speculation(st);		/* not adopted: not needed */
	return true;
}

/* Starts the scan: evaluates values, builds variants, sends the first request. */
static void
start_scan(ForeignScanState *node, MakiniScanState *st)
{
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);

	st->variants = build_variants(node, st);
	MemoryContextSwitchTo(old);
	st->started = true;
	st->finished = (st->variants == NIL);
	st->empty_pages = 0;
	st->speculate = (st->limit < 0);
	if (!st->finished)
		start_request(st, 0, 1);
}

/* IterateForeignScan: the next row, fetching pages as needed. */
static TupleTableSlot *
makiniIterateForeignScan(ForeignScanState *node)
{
	MakiniScanState *st = (MakiniScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;

	ExecClearTuple(slot);
	if (!st->started)
		start_scan(node, st);
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
	st->row++;
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
	if (st->next_req != NULL)
		makini_request_cancel(st->next_req);
	st->next_req = NULL;
	st->page = NULL;
	st->variants = NIL;
	st->started = false;
	st->finished = false;
	st->rows_returned = 0;
	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->next_cxt);
	MemoryContextReset(st->scan_cxt);
}

/* ReScanForeignScan: start over, with the outer row's values if they changed. */
static void
makiniReScanForeignScan(ForeignScanState *node)
{
	reset_scan((MakiniScanState *) node->fdw_state);
}

/* EndForeignScan: release the request in flight now (contexts go with the query). */
static void
makiniEndForeignScan(ForeignScanState *node)
{
	MakiniScanState *st = (MakiniScanState *) node->fdw_state;

	if (st != NULL && st->next_req != NULL)
	{
		makini_request_cancel(st->next_req);
		st->next_req = NULL;
	}
	if (st != NULL)
	{
		cancel_speculation(st);
		close_timer(st);
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
	st->limit = -1;
	create_scan_contexts(st, caller);
	st->variants = list_make1(palloc0(sizeof(MakiniVariant)));
	st->started = true;
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
	MemoryContextDelete(st->tuple_cxt);
	return nsampled;
}

/* AnalyzeForeignTable: sample through the API. */
static bool
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
 * scan: a timerfd ticking every MAKINI_ASYNC_TICK_MS, after which the scan
 * drives all transfers without blocking.  A tick rather than curl's sockets
 * keeps the wait interruptible (the Append's wait set has no latch) and
 * covers connects and retry backoffs alike.
 * ------------------------------------------------------------------------
 */
#define MAKINI_ASYNC_TICK_MS	2

/* Closes the scan's timer when its memory goes (end of query or error). */
static void
close_timer(void *arg)
{
	MakiniScanState *st = (MakiniScanState *) arg;

	if (st->timer_fd >= 0)
		close(st->timer_fd);
	st->timer_fd = -1;
}

/* Arms the scan's timer for one tick, creating it on first use. */
static int
arm_timer(MakiniScanState *st)
{
	struct itimerspec its = {{0, 0}, {0, MAKINI_ASYNC_TICK_MS * 1000000L}};
	uint64		expirations;

	if (st->timer_fd < 0)
	{
		st->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (st->timer_fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("makini_fdw could not create a timer for an async scan: %m")));
		st->timer_cb.func = close_timer;
		st->timer_cb.arg = st;
		MemoryContextRegisterResetCallback(st->scan_cxt, &st->timer_cb);
	}
	/* drain a past expiration, then arm */
	if (read(st->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		elog(DEBUG1, "makini_fdw: reading the async timer failed: %m");
	if (timerfd_settime(st->timer_fd, 0, &its, NULL) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("makini_fdw could not arm a timer for an async scan: %m")));
	return st->timer_fd;
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

/* IsForeignPathAsyncCapable: the server's (or table's) async_capable. */
static bool
makiniIsForeignPathAsyncCapable(ForeignPath *path)
{
	MakiniRelInfo *info = (MakiniRelInfo *) path->path.parent->fdw_private;

	return info->topts->server.async_capable;
}

/* ForeignAsyncRequest: a row now, or pending. */
static void
makiniForeignAsyncRequest(AsyncRequest *areq)
{
	produce_async(areq);
}

/* ForeignAsyncConfigureWait: wake the Append at the next tick. */
static void
makiniForeignAsyncConfigureWait(AsyncRequest *areq)
{
	ForeignScanState *node = (ForeignScanState *) areq->requestee;
	AppendState *requestor = (AppendState *) areq->requestor;

	AddWaitEventToSet(requestor->as_eventset, WL_SOCKET_READABLE,
					  arm_timer((MakiniScanState *) node->fdw_state), NULL, areq);
}

/* ForeignAsyncNotify: drive the transfers; a row if a page arrived. */
static void
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
 * else; and how many requests an IN list or key list makes.
 */
static char *
explain_request(ForeignScanState *node, MakiniScanState *st, ExplainState *es)
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
		if (c->key_lookup && strchr(((MakiniFilter *) linitial(f))->value, '/') == NULL)
			item_key = ((MakiniFilter *) linitial(f))->value;
		else
			filters = list_concat(filters, f);
	}
	if (requests == 0)
		return pstrdup("none (the IN list has no value)");
	path = makini_build_path(st->topts->resource, item_key, filters, st->sorts,
							 st->per_page, 1, true);
	if (per_value != NULL)
		return psprintf("GET %s (one request per value of %s)", path, per_value);
	return psprintf("GET %s", path);
}

/* ExplainForeignScan: the request (VERBOSE) and what was transferred (ANALYZE). */
static void
makiniExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	MakiniScanState *st = (MakiniScanState *) node->fdw_state;

	if (es->verbose)
		ExplainPropertyText("Makini request", explain_request(node, st, es), es);
	if (es->analyze)
	{
		ExplainPropertyInteger("Makini HTTP requests", NULL, st->stats.requests, es);
		ExplainPropertyInteger("Makini pages", NULL, st->stats.pages, es);
		ExplainPropertyInteger("Makini bytes received", NULL, st->stats.bytes, es);
		ExplainPropertyInteger("Makini retries", NULL, st->stats.retries, es);
	}
}

/* ImportForeignSchema: the static catalog of import.c. */
static List *
makiniImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	return makini_import_foreign_schema(stmt, serverOid);
}

/*
 * Module load: the settings.  makini_fdw.fast_json (on) lets the fast
 * scanner parse pages first; off leaves every reply to PostgreSQL's own
 * JSON parser (the reference, slower by about 3x on large scans).
 */
void
_PG_init(void)
{
	DefineCustomBoolVariable("makini_fdw.fast_json",
							 "Parses Makini pages with makini_fdw's fast scanner before PostgreSQL's JSON parser.",
							 "Off: every reply goes through PostgreSQL's own JSON parser, which is always the reference for errors.",
							 &makini_fast_json, true, PGC_USERSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("makini_fdw");
}

/* The FDW handler: our callbacks. */
Datum
makini_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = makiniGetForeignRelSize;
	routine->GetForeignPaths = makiniGetForeignPaths;
	routine->GetForeignPlan = makiniGetForeignPlan;
	routine->BeginForeignScan = makiniBeginForeignScan;
	routine->IterateForeignScan = makiniIterateForeignScan;
	routine->ReScanForeignScan = makiniReScanForeignScan;
	routine->EndForeignScan = makiniEndForeignScan;
	routine->ExplainForeignScan = makiniExplainForeignScan;
	routine->ImportForeignSchema = makiniImportForeignSchema;
	routine->AnalyzeForeignTable = makiniAnalyzeForeignTable;
	routine->IsForeignPathAsyncCapable = makiniIsForeignPathAsyncCapable;
	routine->ForeignAsyncRequest = makiniForeignAsyncRequest;
	routine->ForeignAsyncConfigureWait = makiniForeignAsyncConfigureWait;
	routine->ForeignAsyncNotify = makiniForeignAsyncNotify;
	PG_RETURN_POINTER(routine);
}
