/*-------------------------------------------------------------------------
 *
 * makini_fdw.c
 *		  The module: its settings, the FDW handler, and the planner side —
 *		  which conditions are sent, paths (plain, sorted, parameterized for
 *		  joins), costs and row estimates.  The executor side is in scan.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
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
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "makini_fdw.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* cost of one HTTP request (a round trip to an API in front of an ERP) */
#define MAKINI_REQUEST_COST		100.0
/* cost of transferring and parsing one record */
#define MAKINI_RECORD_COST		0.1

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

PG_FUNCTION_INFO_V1(makini_fdw_handler);

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
	{
		ArrayType  *arr = DatumGetArrayTypeP(((Const *) c->expr)->constvalue);

		return ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	}
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
 * The clauses of the pushable conditions that constant_filters did not
 * send (IN lists, parameters, clashing filters): the API's count of the
 * filters does not include them.
 */
static List *
unsent_clauses(MakiniRelInfo *info, List *sent)
{
	List	   *unsent = NIL;
	ListCell   *lc1,
			   *lc2;

	forboth(lc1, info->conds, lc2, info->cond_clauses)
	{
		if (!list_member_ptr(sent, lfirst(lc1)))
			unsent = lappend(unsent, lfirst(lc2));
	}
	return unsent;
}

/*
 * GetForeignRelSize: conditions, columns used, row estimate.  The table's
 * size (baserel->tuples, which also sizes parameterized paths) comes from
 * estimate.c: the API's count with use_remote_estimate, the analyzed size,
 * the counts the API gave earlier, or a default.
 */
static void
makiniGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	MakiniRelInfo *info = palloc0(sizeof(MakiniRelInfo));
	ListCell   *lc;
	Selectivity remote_sel;
	Selectivity all_sel;
	Oid			userid;
	List	   *sent;
	List	   *filters;
	MakiniSizeEstimate est;

	baserel->fdw_private = info;
	info->topts = makini_get_table_options(foreigntableid);
	info->per_page = info->topts->server.page_size;
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
	filters = constant_filters(info->conds, &sent);
	makini_estimate_size(root, baserel, info->topts, userid, filters,
						 info->cond_clauses, unsent_clauses(info, sent), &est);
	info->records = est.records;
	info->expansion = est.expansion;

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
 * The sort the API can do for the query's ORDER BY: its first key, when it
 * is a timestamptz column of a date-time field (the API then orders like
 * PostgreSQL: instants).  Where the API puts records without a value is
 * unspecified (API.md §3), so the scan reads them apart (scan.c); the
 * query's NULLS FIRST/LAST only says when.  Later keys are left to an
 * incremental sort above the scan: ties of the first key and NULLs of the
 * later ones are then PostgreSQL's business.  NIL when nothing is pushed.
 */
static List *
pushable_sorts(PlannerInfo *root, RelOptInfo *baserel, MakiniRelInfo *info)
{
	PathKey    *pk;
	Expr	   *em_expr;
	char	   *field;
	MakiniSort *s;
	bool		descending;

	if (root->query_pathkeys == NIL)
		return NIL;
	pk = linitial_node(PathKey, root->query_pathkeys);
	em_expr = em_expr_for_rel(pk->pk_eclass, baserel);
	if (em_expr == NULL || !makini_pathkey_ordered(pk, &descending) ||
		(field = makini_sortable_field(baserel, info->topts, em_expr)) == NULL)
		return NIL;
	while (IsA(em_expr, RelabelType))
		em_expr = ((RelabelType *) em_expr)->arg;
	s = palloc0(sizeof(MakiniSort));
	s->field = field;
	s->descending = descending;
	s->nulls_first = pk->pk_nulls_first;
	s->attnum = castNode(Var, em_expr)->varattno;
	return list_make1(s);
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
 * row, costed as such so that the planner weighs it against one scan: a
 * few outer rows beat a table of many pages, many outer rows lose to it.
 * Costs count requests, each work at the API under its rate limit: the
 * pages of a full scan overlap (max_concurrent_requests) where a nested
 * loop asks one outer row at a time, but overlapping saves waiting, not
 * requests, so neither side is discounted.  The table's size behind both
 * is estimate.c's, known without ANALYZE.
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
				 makini_foreignscan_path(root, baserel, ppi->ppi_rows,
										 startup, total, NIL, required_outer,
										 NIL));
	}
}

/*
 * What a sorted scan costs on top of a plain one: unless a condition on the
 * sort field keeps every record without a value out, scan.c reads those
 * records with a second, unsorted pass over the records the conditions let
 * through.  A LIMIT rarely needs it; a whole sorted table is cheaper sorted
 * here.
 */
static Cost
nulls_pass_cost(MakiniRelInfo *info, List *conds, List *sorts)
{
	const char *field = ((MakiniSort *) linitial(sorts))->field;
	ListCell   *lc;
	Cost		startup,
				total;

	foreach(lc, conds)
		if (strcmp(((MakiniCond *) lfirst(lc))->field, field) == 0)
			return 0;
	scan_cost(info, info->records, 1, 0, &startup, &total);
	return total;
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
			 makini_foreignscan_path(root, baserel, baserel->rows,
									 startup, total, NIL,
									 baserel->lateral_relids, NIL));

	sorts = (variants == 1) ? pushable_sorts(root, baserel, info) : NIL;
	if (sorts != NIL)
		add_path(baserel, (Path *)
				 makini_foreignscan_path(root, baserel, baserel->rows,
										 startup, total + nulls_pass_cost(info, conds, sorts),
										 list_make1(linitial(root->query_pathkeys)),
										 baserel->lateral_relids,
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

		result = lappend(result, list_make4(makeString(s->field),
											makeBoolean(s->descending),
											makeBoolean(s->nulls_first),
											makeInteger(s->attnum)));
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
	Bitmapset  *used;
	bool		sync;
	bool		track;
	TimestampTz since;

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
	/* makini_sync's scan: the records changed since (sync.c), sent first */
	sync = makini_sync_scan_of(info->topts, &track, &since);
	if (track && since != DT_NOBEGIN)
	{
		all_conds = lcons(makini_changed_since_cond(since), all_conds);
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

	/* the sorted column tells the scan which records lack the value */
	used = bms_copy(info->attrs_used);
	foreach(lc, sorts)
		used = bms_add_member(used, ((MakiniSort *) lfirst(lc))->attnum -
							  FirstLowInvalidHeapAttributeNumber);
	x = -1;
	while ((x = bms_next_member(used, x)) >= 0)
		attrs = lappend_int(attrs, x + FirstLowInvalidHeapAttributeNumber);

	return make_foreignscan(tlist, extract_actual_clauses(scan_clauses, false),
							baserel->relid, exprs,
							list_concat(list_make5(makini_conds_to_private(conds),
												   sorts_to_private(sorts), attrs,
												   makeInteger(per_page),
												   makeInteger((int) limit)),
										list_make2(makeBoolean(sync), makeBoolean(track))),
							NIL, NIL, outer_plan);
}

/* IsForeignPathAsyncCapable: the server's (or table's) async_capable. */
static bool
makiniIsForeignPathAsyncCapable(ForeignPath *path)
{
	MakiniRelInfo *info = (MakiniRelInfo *) path->path.parent->fdw_private;

	return info->topts->server.async_capable;
}

/* ImportForeignSchema: the static catalog of import.c. */
static List *
makiniImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	return makini_import_foreign_schema(stmt, serverOid);
}

/* Module load: the settings. */
void
_PG_init(void)
{
	DefineCustomStringVariable("makini_fdw.allowed_hosts",
							   "Hosts that makini_fdw servers owned by non-superusers may connect to.",
							   "Comma-separated host names or addresses as written in the server's url; \"*\" allows any host.",
							   &makini_allowed_hosts, "api.makini.io", PGC_SUSET, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("makini_fdw.progress_interval",
							"Interval between the progress NOTICEs of a foreign scan.",
							"After a page is read, a NOTICE gives the records and pages read so far once this long has passed since the scan began or its last NOTICE; -1 turns them off, 0 gives one after every page.",
							&makini_progress_interval, -1, -1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	makini_sync_define_setting();
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
