/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which WHERE and join conditions the Makini API can evaluate
 *		  (API.md §3), and how their values are written into requests.
 *
 * Pushed, on the model's top-level scalar fields only (API.md §3; a
 * custom field would get 400 INVALID_FILTER): text equality (exact,
 * case-sensitive on both sides), comparisons of date-time columns (instants
 * on both sides), "col::date op date" as a range of instants in the
 * session's TimeZone, LIKE/ILIKE literal parts as startsWith/contains (the
 * API is case-insensitive: looser, so the condition is always rechecked
 * locally), = ANY(array) as one request per element, and key equality as an
 * item request.  Every pushed condition is also kept as a local qual: the API
 * narrows the transfer, PostgreSQL keeps the result exact whatever the
 * server does.
 *
 * Instant bounds are sent on half microseconds: PostgreSQL rounds a value
 * with more digits (some systems send 7) to microseconds, so "col >= X"
 * holds for every value from X - 0.5us on.  Sending gteq X - 0.5us (and
 * likewise for the other operators) makes the API select exactly the
 * records whose PostgreSQL value satisfies the condition.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "makini_fdw.h"
#include "model.h"

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

/*
 * Can key be one path segment?  Not with a '/', and not "." or "..", which
 * URL normalisation removes (the request would go to the list, or above).
 */
bool
makini_key_fits_path(const char *key)
{
	return key[0] != '\0' && strchr(key, '/') == NULL &&
		strcmp(key, ".") != 0 && strcmp(key, "..") != 0;
}

/*
 * The top-level field a Var of the scanned table maps to, if the API can
 * filter on it: a column whose field is a scalar field of the model (for an
 * expand table, a parent. column).  NULL otherwise.  *datetime tells
 * whether the API compares the field as instants.
 */
static char *
filterable_field(RelOptInfo *baserel, const MakiniTableOptions *topts,
				 Expr *expr, Oid *coltype, bool *datetime)
{
	Var		   *var;
	char	   *field;
	const MakiniField *model;

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
	model = makini_model_field(topts->resource, field);
	if (!makini_model_filterable(model))
		return NULL;
	*coltype = var->vartype;
	*datetime = (model->kind == MAKINI_FIELD_DATETIME);
	return field;
}

/*
 * The field the API can sort expr (a column of the table) by exactly as
 * PostgreSQL does: timestamptz columns of date-time fields (instants); NULL
 * otherwise.  (Text sorts differ: the API puts "" with the NULLs, and its
 * order need not be the column's collation.)
 */
char *
makini_sortable_field(RelOptInfo *baserel, const MakiniTableOptions *topts,
					  Expr *expr)
{
	Oid			coltype;
	bool		datetime;
	char	   *field = filterable_field(baserel, topts, expr, &coltype, &datetime);

	return (field != NULL && coltype == TIMESTAMPTZOID && datetime) ? field : NULL;
}

/*
 * Can the value side be evaluated once per scan (or per outer row)?  No
 * Vars of the scanned table, nothing volatile, no subplans.
 */
static bool
runtime_value(PlannerInfo *root, RelOptInfo *baserel, Expr *expr)
{
	Relids		relids = pull_varnos(root, (Node *) expr);

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
 * May c (a character of a LIKE literal) be matched by the API's
 * case-insensitive search?  Sigmas lower-case by context (final sigma), and
 * in ILIKE a dotted capital I lower-cases to "i" + U+0307 for the API but to
 * "i" for PostgreSQL: the literal is cut there.  *cut_after: for ILIKE, the
 * "i" itself matches, but what follows it may be that U+0307.
 */
static bool
api_matchable(const char *c, int len, bool icase, bool *cut_after)
{
	/* UTF-8 of U+03A3, U+03C3, U+03C2 (sigmas); of U+0130 */
	static const char *const unsafe[] = {"\xCE\xA3", "\xCF\x83", "\xCF\x82", NULL};
	static const char *const unsafe_icase[] = {"\xC4\xB0", NULL};

	*cut_after = icase && len == 1 && (*c == 'i' || *c == 'I');
	for (int i = 0; unsafe[i]; i++)
		if (strlen(unsafe[i]) == len && memcmp(c, unsafe[i], len) == 0)
			return false;
	for (int i = 0; icase && unsafe_icase[i]; i++)
		if (strlen(unsafe_icase[i]) == len && memcmp(c, unsafe_icase[i], len) == 0)
			return false;
	return true;
}

/*
 * A constant LIKE/ILIKE pattern (default escape "\"): the part the API can
 * look for.  Every run of literal characters between wildcards is contained
 * in a matching string; the first run, if the pattern starts with it, is a
 * prefix.  Returns startsWith of the leading run when it is the longest,
 * else contains of the longest run (runs cut by api_matchable).  False if
 * the pattern has no literal the API can match.
 */
static bool
like_pattern(Expr *pattern, bool icase, char **literal, MakiniOp *op)
{
	const char *p;
	StringInfoData run;
	char	   *best = NULL;
	bool		leading = true; /* the current run starts the pattern */
	bool		best_leading = false;

	if (!IsA(pattern, Const) || ((Const *) pattern)->constisnull ||
		((Const *) pattern)->consttype != TEXTOID)
		return false;
	p = TextDatumGetCString(((Const *) pattern)->constvalue);
	initStringInfo(&run);
	for (;;)
	{
		bool		wildcard = (*p == '%' || *p == '_');
		bool		cut_after = false;
		int			len = 0;

		if (*p == '\\')
		{
			if (*++p == '\0')
				return false;	/* PostgreSQL raises for this pattern */
		}
		if (*p != '\0' && !wildcard)
		{
			len = pg_mblen(p);
			if (api_matchable(p, len, icase, &cut_after))
			{
				appendBinaryStringInfo(&run, p, len);
				p += len;
				if (!cut_after)
					continue;
				len = 0;
			}
		}
		/* the run ends here: keep it if it is the longest so far */
		if (run.len > 0 && (best == NULL || run.len > strlen(best)))
		{
			best = pstrdup(run.data);
			best_leading = leading;
		}
		resetStringInfo(&run);
		leading = false;
		if (*p == '\0')
			break;
		p += wildcard ? 1 : len;
	}
	if (best == NULL)
		return false;
	*literal = best;
	*op = best_leading ? MAKINI_OP_STARTSWITH : MAKINI_OP_CONTAINS;
	return true;
}

/* A text operator the API takes: =, LIKE, ILIKE (by its function). */
static bool
text_operator(OpExpr *opexpr, Expr *value, bool commuted, MakiniCond *cond)
{
	char	   *literal;

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
			if (commuted ||
				!like_pattern(value, opexpr->opfuncid == F_TEXTICLIKE,
							  &literal, &cond->op))
				return false;
			cond->expr = (Expr *) makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID,
											-1, CStringGetTextDatum(literal),
											false, false);
			return true;
		default:
			return false;
	}
}

/*
 * "timestamptz_column::date op date": the column's day in the session's
 * TimeZone, sent as a range of instants (MAKINI_FORM_DAY).
 */
static bool
day_comparison(RelOptInfo *baserel, const MakiniTableOptions *topts,
			   OpExpr *opexpr, MakiniCond *cond)
{
	Expr	   *args[2];
	int			side;

	if (opexpr->opfuncid != F_DATE_EQ && opexpr->opfuncid != F_DATE_LT &&
		opexpr->opfuncid != F_DATE_LE && opexpr->opfuncid != F_DATE_GT &&
		opexpr->opfuncid != F_DATE_GE)
		return false;
	args[0] = linitial(opexpr->args);
	args[1] = lsecond(opexpr->args);
	for (side = 0; side < 2; side++)
	{
		FuncExpr   *cast = (FuncExpr *) args[side];
		Oid			coltype;
		bool		datetime;

		if (!IsA(cast, FuncExpr) || cast->funcid != F_DATE_TIMESTAMPTZ ||
			list_length(cast->args) != 1)
			continue;
		cond->field = filterable_field(baserel, topts, linitial(cast->args),
									   &coltype, &datetime);
		if (cond->field == NULL || coltype != TIMESTAMPTZOID || !datetime)
			continue;
		if (!comparison_op(get_opname(opexpr->opno), side == 1, &cond->op))
			return false;
		cond->form = MAKINI_FORM_DAY;
		cond->exact = true;
		cond->expr = args[1 - side];
		return true;
	}
	return false;
}

/* An OpExpr "column op value" (either way round) the API can evaluate. */
static bool
pushable_opexpr(PlannerInfo *root, RelOptInfo *baserel,
				const MakiniTableOptions *topts, OpExpr *opexpr,
				MakiniCond *cond)
{
	Expr	   *left,
			   *right,
			   *value;
	Oid			coltype;
	bool		datetime;
	bool		commuted = false;

	if (list_length(opexpr->args) != 2)
		return false;
	if (day_comparison(baserel, topts, opexpr, cond))
		return runtime_value(root, baserel, cond->expr);
	left = linitial(opexpr->args);
	right = lsecond(opexpr->args);
	cond->field = filterable_field(baserel, topts, left, &coltype, &datetime);
	value = right;
	if (cond->field == NULL)
	{
		cond->field = filterable_field(baserel, topts, right, &coltype, &datetime);
		value = left;
		commuted = true;
	}
	if (cond->field == NULL || !runtime_value(root, baserel, value))
		return false;

	if (coltype == TIMESTAMPTZOID && instant_type(exprType((Node *) value)))
	{
		/* timestamptz against timestamptz, date or timestamp: instants */
		if (!datetime ||
			!comparison_op(get_opname(opexpr->opno), commuted, &cond->op))
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
pushable_in_list(PlannerInfo *root, RelOptInfo *baserel,
				 const MakiniTableOptions *topts, ScalarArrayOpExpr *saop,
				 MakiniCond *cond)
{
	Oid			coltype;
	bool		datetime;
	Expr	   *value;

	if (!saop->useOr || list_length(saop->args) != 2 ||
		saop->opfuncid != F_TEXTEQ ||
		!exact_collation(saop->inputcollid))
		return false;
	cond->field = filterable_field(baserel, topts, linitial(saop->args),
								   &coltype, &datetime);
	value = lsecond(saop->args);
	if (cond->field == NULL || !runtime_value(root, baserel, value))
		return false;
	cond->op = MAKINI_OP_EQ;
	cond->form = MAKINI_FORM_TEXT;
	cond->in_list = true;
	cond->exact = true;
	cond->expr = value;
	return true;
}

/*
 * Would a condition whose value is a constant be sent?  Not if the value
 * cannot be written ("", which the API never matches, an infinite
 * date-time): such a condition is not pushed at all.
 */
static bool
sendable_const(const MakiniCond *c)
{
	Const	   *k = (Const *) c->expr;
	List	   *values = NIL;

	if (!IsA(k, Const) || k->constisnull)
		return true;			/* evaluated later; NULL: no row at all */
	if (c->in_list)
		return makini_in_list_values(k->constvalue, &values);
	return makini_cond_filters(c, k->constvalue, k->consttype, &values);
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
		ok = pushable_opexpr(root, baserel, topts, (OpExpr *) clause, cond);
	else if (IsA(clause, ScalarArrayOpExpr))
		ok = pushable_in_list(root, baserel, topts, (ScalarArrayOpExpr *) clause, cond);
	else
		ok = false;
	ok = ok && sendable_const(cond);
	if (ok && cond->op == MAKINI_OP_EQ && cond->form == MAKINI_FORM_TEXT &&
		makini_model_key_lookup(topts->resource, cond->field))
		cond->key_lookup = true;
	return ok;
}

/*
 * The filter parameters a condition is sent as, one bit per operator
 * (date-time conditions are sent as gteq / lteq bounds).  Two conditions on
 * one field with a common bit cannot both be sent: the API keeps the last
 * of a repeated parameter.
 */
int
makini_cond_slots(const MakiniCond *c)
{
	const int	lower = 1 << MAKINI_OP_GTEQ,
				upper = 1 << MAKINI_OP_LTEQ;

	if (c->form == MAKINI_FORM_TEXT)
		return 1 << c->op;
	switch (c->op)
	{
		case MAKINI_OP_GT:
		case MAKINI_OP_GTEQ:
			return lower;
		case MAKINI_OP_LT:
		case MAKINI_OP_LTEQ:
			return upper;
		default:
			return lower | upper;
	}
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

/* One condition of makini_conds_to_private's list (expr left NULL). */
static MakiniCond *
cond_from_private(List *item)
{
	MakiniCond *c = palloc0(sizeof(MakiniCond));
	int			flags = intVal(lfourth(item));

	c->field = strVal(linitial(item));
	c->op = (MakiniOp) intVal(lsecond(item));
	c->form = (MakiniValueForm) intVal(lthird(item));
	c->in_list = (flags & 1) != 0;
	c->key_lookup = (flags & 2) != 0;
	c->exact = (flags & 4) != 0;
	return c;
}

/* The inverse of makini_conds_to_private (expr left NULL). */
List *
makini_conds_from_private(List *private)
{
	List	   *result = NIL;

	for (int i = 0; i < list_length(private); i++)
		result = lappend(result, cond_from_private(list_nth(private, i)));
	return result;
}

/*
 * ts as the API writes instants (UTC, ISO 8601), with the fractional digits
 * of fraction (microseconds, then the given digits) and "Z".  NULL outside
 * years 1..9999.
 */
static char *
render_utc(TimestampTz ts, const char *fraction)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1 || tm.tm_year > 9999)
		return NULL;
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06d%sZ", tm.tm_year,
					tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
					(int) fsec, fraction);
}

/* ts in UTC ISO 8601 with microseconds (EXPLAIN); NULL outside 1..9999. */
char *
makini_render_instant(TimestampTz ts)
{
	return render_utc(ts, "");
}

/*
 * The half microsecond after ts, as the API writes instants: seven
 * fractional digits, the last one 5.  NULL outside years 1..9999.
 */
static char *
render_half_after(TimestampTz ts)
{
	return render_utc(ts, "5");
}

/*
 * Appends the API's bound for "column op ts" (op one of gt, gteq, lt, lteq)
 * to *filters: the half microsecond where PostgreSQL's rounding of the
 * column's value flips the condition, inclusive (a value exactly there may
 * round either way: sent, and the local recheck decides).
 */
static bool
add_instant_bound(List **filters, const char *field, MakiniOp op, TimestampTz ts)
{
	MakiniFilter *f = palloc0(sizeof(MakiniFilter));
	bool		lower = (op == MAKINI_OP_GT || op == MAKINI_OP_GTEQ);
	bool		inclusive = (op == MAKINI_OP_GTEQ || op == MAKINI_OP_LTEQ);

	/* >= X and < X flip at X - 0.5us; > X and <= X at X + 0.5us */
	if (inclusive == lower)
		ts -= 1;
	f->field = (char *) field;
	f->op = makini_op_name(lower ? MAKINI_OP_GTEQ : MAKINI_OP_LTEQ);
	f->value = render_half_after(ts);
	if (f->value == NULL)
		return false;
	*filters = lappend(*filters, f);
	return true;
}

/*
 * Is a date, timestamp or timestamptz value within the years 1..9998?  Its
 * bounds can then be written (and a day's successor exists) whatever the
 * session's TimeZone; the API is not asked about other values.
 */
static bool
sendable_datetime(Datum value, Oid type)
{
	int64		low = date2j(1, 1, 1) - POSTGRES_EPOCH_JDATE;
	int64		high = date2j(9999, 1, 1) - POSTGRES_EPOCH_JDATE;

	if (type == DATEOID)
		return DatumGetDateADT(value) >= low && DatumGetDateADT(value) < high;
	return DatumGetTimestamp(value) >= low * USECS_PER_DAY &&
		DatumGetTimestamp(value) < high * USECS_PER_DAY;
}

/* A date-time value of a condition as a timestamptz (the session's zone). */
static TimestampTz
instant_of(Datum value, Oid type)
{
	if (type == DATEOID)
		return DatumGetTimestampTz(DirectFunctionCall1(date_timestamptz, value));
	if (type == TIMESTAMPOID)
		return DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, value));
	return DatumGetTimestampTz(value);
}

/*
 * Instant bounds of a date-time condition.  "col::date op D" is a range of
 * instants: the day D runs from D 00:00 to D+1 00:00 in the session's
 * TimeZone.  False if the value cannot be sent.
 */
static bool
instant_filters(const MakiniCond *c, Datum value, Oid type, List **filters)
{
	MakiniOp	op = c->op;
	TimestampTz start;
	TimestampTz next;

	if (!sendable_datetime(value, type))
		return false;
	start = instant_of(value, type);
	if (c->form == MAKINI_FORM_INSTANT)
	{
		if (op == MAKINI_OP_EQ)
			return add_instant_bound(filters, c->field, MAKINI_OP_GTEQ, start) &&
				add_instant_bound(filters, c->field, MAKINI_OP_LTEQ, start);
		return add_instant_bound(filters, c->field, op, start);
	}

	/* MAKINI_FORM_DAY: value is a date */
	next = instant_of(DateADTGetDatum(DatumGetDateADT(value) + 1), DATEOID);
	switch (op)
	{
		case MAKINI_OP_EQ:		/* start <= col < next */
			return add_instant_bound(filters, c->field, MAKINI_OP_GTEQ, start) &&
				add_instant_bound(filters, c->field, MAKINI_OP_LT, next);
		case MAKINI_OP_GTEQ:
			return add_instant_bound(filters, c->field, MAKINI_OP_GTEQ, start);
		case MAKINI_OP_GT:
			return add_instant_bound(filters, c->field, MAKINI_OP_GTEQ, next);
		case MAKINI_OP_LT:
			return add_instant_bound(filters, c->field, MAKINI_OP_LT, start);
		case MAKINI_OP_LTEQ:
			return add_instant_bound(filters, c->field, MAKINI_OP_LT, next);
		default:
			return false;
	}
}

/*
 * makini_sync's condition (sync.c): records (for an expand table, parents)
 * with updatedAt >= since.  It has no column and no local qual: the API's
 * selection is taken as it is (a record changed earlier that it sends too is
 * only copied again).
 */
MakiniCond *
makini_changed_since_cond(TimestampTz since)
{
	MakiniCond *c = palloc0(sizeof(MakiniCond));

	c->field = pstrdup("updatedAt");
	c->op = MAKINI_OP_GTEQ;
	c->form = MAKINI_FORM_INSTANT;
	c->exact = false;
	c->expr = (Expr *) makeConst(TIMESTAMPTZOID, -1, InvalidOid, sizeof(TimestampTz),
								 TimestampTzGetDatum(since), false, FLOAT8PASSBYVAL);
	return c;
}

/* The text of a value (an IN list element, a key, a text filter's value). */
char *
makini_render_text(Datum value, Oid type)
{
	Oid			outfunc;
	bool		varlena;

	getTypeOutputInfo(type, &outfunc, &varlena);
	return OidOutputFunctionCall(outfunc, value);
}

/*
 * The distinct texts of an IN list's non-NULL elements, in *values (String
 * nodes).  False if one of them cannot be sent ("": the API never matches
 * it, though PostgreSQL does).
 */
bool
makini_in_list_values(Datum array, List **values)
{
	ArrayType  *arr = DatumGetArrayTypeP(array);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	*values = NIL;
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *text;

		if (nulls[i])
			continue;
		text = makini_render_text(elems[i], ARR_ELEMTYPE(arr));
		if (text[0] == '\0')
			return false;
		*values = list_append_unique(*values, makeString(text));
	}
	return true;
}

/*
 * Appends the filters a condition (not an IN list, not a key lookup) with
 * its evaluated, non-NULL value is sent as to *filters: one, or two for the
 * range of an instant or day equality.  Returns false, appending nothing,
 * for a value that cannot be sent (an infinite date-time, "", which the API
 * never matches): the condition is then left to the local recheck alone.
 */
bool
makini_cond_filters(const MakiniCond *c, Datum value, Oid type, List **filters)
{
	MakiniFilter *f;
	List	   *added = NIL;

	if (c->form != MAKINI_FORM_TEXT)
	{
		if (!instant_filters(c, value, type, &added))
			return false;
		*filters = list_concat(*filters, added);
		return true;
	}
	f = palloc0(sizeof(MakiniFilter));
	f->field = c->field;
	f->op = makini_op_name(c->op);
	f->value = makini_render_text(value, type);
	if (f->value[0] == '\0')
		return false;
	*filters = lappend(*filters, f);
	return true;
}
