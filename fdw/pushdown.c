/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which WHERE and join conditions the Makini API can evaluate
 *		  (CONTRACT.md §3), and how their values are written into requests.
 *
 * Pushed: text equality (exact, case-sensitive on both sides), comparisons
 * of date-time columns (instants on both sides), LIKE/ILIKE prefixes and
 * infixes as startsWith/contains (the API is case-insensitive: looser, so
 * the condition is always rechecked locally), = ANY(array) as one request
 * per element, and key equality as an item request.  Every pushed condition
 * is also kept as a local qual: the API narrows the transfer, PostgreSQL
 * keeps the result exact whatever the server does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "makini_fdw.h"

/* resources that answer GET <resource>/<key> (CONTRACT.md §2) */
static const char *const item_resources[] = {
	"purchase-orders", "purchase-orders.line-items", "vendors", "currencies",
	"uom", NULL
};

static const char *const op_names[] = {
	[MAKINI_OP_EQ] = NULL,
	[MAKINI_OP_CONTAINS] = "contains",
	[MAKINI_OP_STARTSWITH] = "startsWith",
	[MAKINI_OP_GT] = "gt",
	[MAKINI_OP_GTEQ] = "gteq",
	[MAKINI_OP_LT] = "lt",
	[MAKINI_OP_LTEQ] = "lteq"
};

/* The API's operator name ("gteq"), NULL for equality. */
const char *
makini_op_name(MakiniOp op)
{
	return op_names[op];
}

/* Does GET /api/erp/<resource>/<key> exist? */
bool
makini_has_item_endpoint(const char *resource)
{
	for (int i = 0; item_resources[i]; i++)
		if (strcmp(resource, item_resources[i]) == 0)
			return true;
	return false;
}

/*
 * The top-level field a Var of the scanned table maps to, if the API can
 * filter on it: a column whose field is one name (for an expand table, a
 * parent. column), not '*'.  NULL otherwise.
 */
static char *
filterable_field(RelOptInfo *baserel, const MakiniTableOptions *topts,
				 Expr *expr, Oid *coltype)
{
	Var		   *var;
	char	   *field;

	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (!IsA(expr, Var))
		return NULL;
	var = (Var *) expr;
	if (var->varno != baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0)
		return NULL;
	field = makini_get_column_field(topts->relid, var->varattno,
									get_attname(topts->relid, var->varattno, false));
	if (topts->expand != NULL)
	{
		if (strncmp(field, "parent.", 7) != 0)
			return NULL;
		field += 7;
	}
	if (strchr(field, '.') != NULL || strcmp(field, "*") == 0 ||
		field[0] == '\0')
		return NULL;
	*coltype = var->vartype;
	return field;
}

/*
 * The field the API can sort expr (a column of the table) by exactly as
 * PostgreSQL does: date-time columns (instants); NULL otherwise.
 */
char *
makini_sortable_field(RelOptInfo *baserel, const MakiniTableOptions *topts,
					  Expr *expr)
{
	Oid			coltype;
	char	   *field = filterable_field(baserel, topts, expr, &coltype);

	return (field != NULL && coltype == TIMESTAMPTZOID) ? field : NULL;
}

/*
 * Can the value side be evaluated once per scan (or per outer row)?  No
 * Vars of the scanned table, nothing volatile, no subplans.
 */
static bool
runtime_value(RelOptInfo *baserel, Expr *expr)
{
	Relids		relids = pull_varnos(NULL, (Node *) expr);

	return !bms_is_member(baserel->relid, relids) &&
		!contain_volatile_functions((Node *) expr) &&
		!contain_subplans((Node *) expr);
}

/* Is the comparison's collation one under which equality is byte equality? */
static bool
exact_collation(Oid collid)
{
	return !OidIsValid(collid) || collid == DEFAULT_COLLATION_OID ||
		collid == C_COLLATION_OID || collid == POSIX_COLLATION_OID ||
		get_collation_isdeterministic(collid);
}

/* Maps a comparison strategy name to the API operator (var on the left). */
static bool
comparison_op(const char *oprname, bool commuted, MakiniOp *op)
{
	static const struct
	{
		const char *name;
		MakiniOp	op;
		MakiniOp	commuted;
	}			ops[] = {
		{"=", MAKINI_OP_EQ, MAKINI_OP_EQ},
		{"<", MAKINI_OP_LT, MAKINI_OP_GT},
		{"<=", MAKINI_OP_LTEQ, MAKINI_OP_GTEQ},
		{">", MAKINI_OP_GT, MAKINI_OP_LT},
		{">=", MAKINI_OP_GTEQ, MAKINI_OP_LTEQ},
	};

	for (int i = 0; i < lengthof(ops); i++)
		if (strcmp(oprname, ops[i].name) == 0)
		{
			*op = commuted ? ops[i].commuted : ops[i].op;
			return true;
		}
	return false;
}

/* Is type a date-time type the API compares as an instant? */
static bool
instant_type(Oid type)
{
	return type == TIMESTAMPTZOID || type == TIMESTAMPOID || type == DATEOID;
}

/*
 * A constant LIKE pattern of the form 'abc%' or '%abc%' (no other
 * wildcards, no escapes): the literal part and the API operator.
 */
static bool
like_pattern(Expr *pattern, char **literal, MakiniOp *op)
{
	char	   *s;
	int			len;
	bool		lead;

	if (!IsA(pattern, Const) || ((Const *) pattern)->constisnull ||
		((Const *) pattern)->consttype != TEXTOID)
		return false;
	s = TextDatumGetCString(((Const *) pattern)->constvalue);
	len = strlen(s);
	if (len < 2 || s[len - 1] != '%')
		return false;
	lead = (s[0] == '%');
	s[len - 1] = '\0';
	if (lead)
		s++;
	if (*s == '\0' || strpbrk(s, "%_\\") != NULL)
		return false;
	*literal = s;
	*op = lead ? MAKINI_OP_CONTAINS : MAKINI_OP_STARTSWITH;
	return true;
}

/* A text operator the API takes: =, LIKE, ILIKE (by its function). */
static bool
text_operator(OpExpr *opexpr, Expr *value, bool commuted, MakiniCond *cond)
{
	switch (opexpr->opfuncid)
	{
		case F_TEXTEQ:
			if (!exact_collation(opexpr->inputcollid))
				return false;
			cond->op = MAKINI_OP_EQ;
			cond->exact = true;
			cond->expr = value;
			return true;
		case F_TEXTLIKE:
		case F_TEXTICLIKE:
			{
				char	   *literal;

				if (commuted || !like_pattern(value, &literal, &cond->op))
					return false;
				cond->expr = (Expr *) makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID,
												-1, CStringGetTextDatum(literal),
												false, false);
				return true;
			}
		default:
			return false;
	}
}

/* An OpExpr "column op value" (either way round) the API can evaluate. */
static bool
pushable_opexpr(RelOptInfo *baserel, const MakiniTableOptions *topts,
				OpExpr *opexpr, MakiniCond *cond)
{
	Expr	   *left,
			   *right,
			   *value;
	Oid			coltype;
	bool		commuted = false;

	if (list_length(opexpr->args) != 2)
		return false;
	left = linitial(opexpr->args);
	right = lsecond(opexpr->args);
	cond->field = filterable_field(baserel, topts, left, &coltype);
	value = right;
	if (cond->field == NULL)
	{
		cond->field = filterable_field(baserel, topts, right, &coltype);
		value = left;
		commuted = true;
	}
	if (cond->field == NULL || !runtime_value(baserel, value))
		return false;

	if (coltype == TIMESTAMPTZOID && instant_type(exprType((Node *) value)))
	{
		/* timestamptz against timestamptz, date or timestamp: instants */
		if (!comparison_op(get_opname(opexpr->opno), commuted, &cond->op))
			return false;
		cond->form = MAKINI_FORM_INSTANT;
		cond->exact = true;
		cond->expr = value;
		return true;
	}
	cond->form = MAKINI_FORM_TEXT;
	return text_operator(opexpr, value, commuted, cond);
}

/* "column = ANY(array)" on a text column: one request per element. */
static bool
pushable_in_list(RelOptInfo *baserel, const MakiniTableOptions *topts,
				 ScalarArrayOpExpr *saop, MakiniCond *cond)
{
	Oid			coltype;
	Expr	   *value;

	if (!saop->useOr || list_length(saop->args) != 2 ||
		saop->opfuncid != F_TEXTEQ ||
		!exact_collation(saop->inputcollid))
		return false;
	cond->field = filterable_field(baserel, topts, linitial(saop->args), &coltype);
	value = lsecond(saop->args);
	if (cond->field == NULL || !runtime_value(baserel, value))
		return false;
	cond->op = MAKINI_OP_EQ;
	cond->form = MAKINI_FORM_TEXT;
	cond->in_list = true;
	cond->exact = true;
	cond->expr = value;
	return true;
}

/*
 * Is clause a condition the API can evaluate on the scanned table?  Fills
 * cond (field, operator, value expression) when it is.  Join clauses
 * qualify too: their value side holds Vars of the outer relation, which
 * become executor parameters.
 */
bool
makini_pushable_cond(PlannerInfo *root, RelOptInfo *baserel,
					 const MakiniTableOptions *topts, Expr *clause,
					 MakiniCond *cond)
{
	bool		ok;

	memset(cond, 0, sizeof(MakiniCond));
	if (IsA(clause, OpExpr))
		ok = pushable_opexpr(baserel, topts, (OpExpr *) clause, cond);
	else if (IsA(clause, ScalarArrayOpExpr))
		ok = pushable_in_list(baserel, topts, (ScalarArrayOpExpr *) clause, cond);
	else
		ok = false;
	if (ok && cond->op == MAKINI_OP_EQ && cond->form == MAKINI_FORM_TEXT &&
		strcmp(cond->field, "key") == 0 && makini_has_item_endpoint(topts->resource))
		cond->key_lookup = true;
	return ok;
}

/* Serializes conditions (without their expressions) for fdw_private. */
List *
makini_conds_to_private(List *conds)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, conds)
	{
		MakiniCond *c = (MakiniCond *) lfirst(lc);
		int			flags = (c->in_list ? 1 : 0) | (c->key_lookup ? 2 : 0) |
			(c->exact ? 4 : 0);

		result = lappend(result, list_make4(makeString(c->field),
											makeInteger(c->op),
											makeInteger(c->form),
											makeInteger(flags)));
	}
	return result;
}

/* The inverse of makini_conds_to_private (expr left NULL). */
List *
makini_conds_from_private(List *private)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, private)
	{
		List	   *item = (List *) lfirst(lc);
		MakiniCond *c = palloc0(sizeof(MakiniCond));
		int			flags = intVal(lfourth(item));

		c->field = strVal(linitial(item));
		c->op = (MakiniOp) intVal(lsecond(item));
		c->form = (MakiniValueForm) intVal(lthird(item));
		c->in_list = (flags & 1) != 0;
		c->key_lookup = (flags & 2) != 0;
		c->exact = (flags & 4) != 0;
		result = lappend(result, c);
	}
	return result;
}

/* A timestamptz as the API writes instants: UTC, "Z", microseconds if any. */
static char *
render_instant(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return NULL;
	if (fsec != 0)
		return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year,
						tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
						(int) fsec);
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year, tm.tm_mon,
					tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * Writes a condition's evaluated value as the API expects it.  Returns NULL
 * for a value that cannot be sent (an infinite date-time): the condition
 * is then left to the local recheck alone.
 */
char *
makini_render_value(Datum value, Oid type, MakiniValueForm form)
{
	Oid			outfunc;
	bool		varlena;

	if (form == MAKINI_FORM_INSTANT)
	{
		if (type == DATEOID)
		{
			if (DATE_NOT_FINITE(DatumGetDateADT(value)))
				return NULL;
			value = DirectFunctionCall1(date_timestamptz, value);
		}
		else if (type == TIMESTAMPOID)
		{
			if (TIMESTAMP_NOT_FINITE(DatumGetTimestamp(value)))
				return NULL;
			value = DirectFunctionCall1(timestamp_timestamptz, value);
		}
		return render_instant(DatumGetTimestampTz(value));
	}
	getTypeOutputInfo(type, &outfunc, &varlena);
	return OidOutputFunctionCall(outfunc, value);
}
