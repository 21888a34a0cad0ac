/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  The column map (column → field path and type input) and the
 *		  conversion of JSON values from a Makini reply into Datums.
 *
 * Rules (README.md, "Types"): numeric is read exactly from the decimal text
 * (string or JSON number, never through a double); date-times are ISO 8601
 * with "Z", an offset, fractional seconds, or date-only meaning 00:00 UTC —
 * a value without a zone is UTC whatever the session's TimeZone; booleans
 * come as JSON booleans or "true"/"false"; "" is NULL for non-string types;
 * json/jsonb take any JSON value; anything else goes through the type's
 * input function.  A value that does not convert is HV024 with the type's
 * own message; an error context callback adds the column, the field, the
 * record's key, the value and the request.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "parser/parse_coerce.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "makini_fdw.h"

/*
 * Chooses the conversion for a column type.  Every string type (category
 * 'S': varchar, bpchar, name, citext, domains over them) keeps "" as text
 * does; only text itself skips the input function.
 */
static MakiniConvKind
conv_kind(Oid typid)
{
	switch (typid)
	{
		case TEXTOID:
			return MAKINI_CONV_TEXT;
		case NUMERICOID:
			return MAKINI_CONV_NUMERIC;
		case TIMESTAMPTZOID:
			return MAKINI_CONV_TIMESTAMPTZ;
		case TIMESTAMPOID:
			return MAKINI_CONV_TIMESTAMP;
		case DATEOID:
			return MAKINI_CONV_DATE;
		case BOOLOID:
			return MAKINI_CONV_BOOL;
		case JSONBOID:
			return MAKINI_CONV_JSONB;
		case JSONOID:
			return MAKINI_CONV_JSON;
		default:
			if (TypeCategory(typid) == TYPCATEGORY_STRING)
				return MAKINI_CONV_STRING;
			return MAKINI_CONV_OTHER;
	}
}

/* Splits a field option into the column's path, parent and star flags. */
static void
parse_field(MakiniColumn *col, const MakiniTableOptions *topts,
			const char *relname)
{
	char	   *rest = col->field;
	char	   *seg;

	if (strcmp(rest, "*") == 0)
	{
		col->star = true;
		return;
	}
	if (strncmp(rest, "parent.", 7) == 0)
	{
		if (topts->expand == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("column \"%s\" of foreign table \"%s\" reaches the parent record, but the table has no expand option",
							col->attname, relname),
					 errhint("Set the table option expand, or remove \"parent.\" from the field option.")));
		col->parent = true;
		rest += 7;
	}
	rest = pstrdup(rest);
	while ((seg = strsep(&rest, ".")) != NULL)
		col->path = lappend(col->path, makeString(seg));
}

/*
 * Builds the column map of a foreign table for one scan: every column's
 * field path and conversion; attrs_used (offset by
 * FirstLowInvalidHeapAttributeNumber, NULL for all) marks what the query
 * needs: only those get a slot in parsed rows, and are converted.
 */
MakiniColumnMap *
makini_build_column_map(Relation rel, const MakiniTableOptions *topts,
						Bitmapset *attrs_used)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	MakiniColumnMap *map = palloc0(sizeof(MakiniColumnMap));
	bool		wholerow = attrs_used == NULL ||
		bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used);

	map->relname = pstrdup(RelationGetRelationName(rel));
	map->ncols = tupdesc->natts;
	map->cols = palloc0(sizeof(MakiniColumn) * Max(map->ncols, 1));
	map->slot_cols = palloc(sizeof(int) * Max(map->ncols, 1));
	map->expand = topts->expand ? pstrdup(topts->expand) : NULL;
	map->track_slot = -1;

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		MakiniColumn *col = &map->cols[i];
		Oid			infunc;

		col->attnum = att->attnum;
		col->slot = -1;
		col->dropped = att->attisdropped;
		if (col->dropped)
			continue;
		col->attname = pstrdup(NameStr(att->attname));
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->field = makini_get_column_field(RelationGetRelid(rel), att->attnum,
											 col->attname);
		parse_field(col, topts, map->relname);
		col->needed = wholerow ||
			bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber,
						  attrs_used);
		if (col->needed)
		{
			col->slot = map->nslots;
			map->slot_cols[map->nslots++] = i;
		}
		col->conv = conv_kind(col->typid);
		getTypeInputInfo(col->typid, &infunc, &col->ioparam);
		fmgr_info(infunc, &col->infunc);
	}
	return map;
}

/*
 * Makes the parser read the record's updatedAt (in an expand table, the
 * parent's) into a slot of its own, for makini_sync (sync.c), whether or not
 * a column maps it: a hidden column, cols[ncols], which no tuple receives.
 */
void
makini_column_map_add_updated(MakiniColumnMap *map)
{
	MakiniColumn *col;

	Assert(map->track_slot < 0 && map->parser == NULL);
	map->cols = repalloc(map->cols, sizeof(MakiniColumn) * (map->ncols + 1));
	map->slot_cols = repalloc(map->slot_cols, sizeof(int) * (map->nslots + 1));
	col = &map->cols[map->ncols];
	memset(col, 0, sizeof(MakiniColumn));
	col->attname = "updatedAt";
	col->field = map->expand ? "parent.updatedAt" : "updatedAt";
	col->path = list_make1(makeString("updatedAt"));
	col->parent = (map->expand != NULL);
	col->needed = true;
	col->typid = TIMESTAMPTZOID;
	col->typmod = -1;
	col->conv = MAKINI_CONV_TIMESTAMPTZ;
	col->slot = map->track_slot = map->nslots;
	map->slot_cols[map->nslots++] = map->ncols;
}

/* Reads exactly n digits at *p into *out; false if they are not digits. */
static inline bool
read_digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/*
 * Microseconds of the fraction digits at p (n of them, n > 0), rounded
 * exactly as timestamptz_in rounds them: rint(strtod(".digits") * 10^6) in
 * double arithmetic -- so "0.0000025" gives 2 and "0.0000035" gives 4, as
 * the binary values of those fractions fall.  Six digits or fewer are
 * exact either way and skip strtod; -1 if there are too many digits.
 */
static int64
fraction_usec(const char *p, int n)
{
	char		buf[MAXDATELEN + 2];
	int64		usec = 0;

	if (n <= 6)
	{
		for (int i = 0; i < 6; i++)
			usec = usec * 10 + (i < n ? p[i] - '0' : 0);
		return usec;
	}
	if (n > MAXDATELEN)
		return -1;
	buf[0] = '.';
	memcpy(buf + 1, p, n);
	buf[n + 1] = '\0';
	return (int64) rint(strtod(buf, NULL) * USECS_PER_SEC);
}

/*
 * Parses the ISO 8601 / RFC 3339 forms Makini sends --
 * YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|+-HH[[:]MM]] -- into a UTC instant;
 * no zone means UTC, a date alone 00:00 UTC.  The one date-time reader of
 * makini_fdw (scans and makini_connection_status): false for anything else,
 * whatever the session's DateStyle.
 */
bool
makini_parse_iso_instant(const char *s, int len, TimestampTz *result)
{
	const char *p = s;
	const char *end = s + len;
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				sec = 0,
				off = 0;
	int64		usec = 0;

	if (len < 10 || !read_digits(&p, 4, &y) || *p++ != '-' ||
		!read_digits(&p, 2, &mo) || *p++ != '-' || !read_digits(&p, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > day_tab[isleap(y)][mo - 1])
		return false;
	if (p < end && (*p == 'T' || *p == 't' || *p == ' '))
	{
		p++;
		if (end - p < 5 || !read_digits(&p, 2, &h) || *p++ != ':' ||
			!read_digits(&p, 2, &mi))
			return false;
		if (p < end && *p == ':')
		{
			p++;
			if (end - p < 2 || !read_digits(&p, 2, &sec))
				return false;
			if (p < end && (*p == '.' || *p == ','))
			{
				const char *digits = ++p;

				while (p < end && *p >= '0' && *p <= '9')
					p++;
				if (p == digits ||
					(usec = fraction_usec(digits, p - digits)) < 0)
					return false;
			}
		}
		if (h > 24 || mi > 59 || sec > 60 ||
			(h == 24 && (mi > 0 || sec > 0 || usec > 0)))
			return false;
		if (p < end && (*p == 'Z' || *p == 'z'))
			p++;
		else if (p < end && (*p == '+' || *p == '-'))
		{
			int			sign = (*p++ == '-') ? -1 : 1;
			int			oh,
						om = 0;

			if (!read_digits(&p, 2, &oh))
				return false;
			if (p < end && *p == ':')
				p++;
			if (p < end && !read_digits(&p, 2, &om))
				return false;
			if (oh > 15 || om > 59)
				return false;
			off = sign * (oh * SECS_PER_HOUR + om * SECS_PER_MINUTE);
		}
	}
	if (p != end)
		return false;
	if (!IS_VALID_JULIAN(y, mo, d))
		return false;
	*result = ((int64) (date2j(y, mo, d) - POSTGRES_EPOCH_JDATE) * SECS_PER_DAY +
			   h * SECS_PER_HOUR + mi * SECS_PER_MINUTE + sec - off) * USECS_PER_SEC +
		usec;
	return IS_VALID_TIMESTAMP(*result);
}

/*
 * Text of a value as PostgreSQL sees it: a NUL-terminated copy in the
 * database encoding (values point into the reply and are not terminated).
 */
static char *
value_cstring(MakiniValue *v)
{
	switch (v->kind)
	{
		case MAKINI_VALUE_TRUE:
			return "true";
		case MAKINI_VALUE_FALSE:
			return "false";
		default:
			break;
	}
	if (GetDatabaseEncoding() == PG_UTF8)
		return pnstrdup(v->str, v->len);
	return pg_any_to_server(pnstrdup(v->str, v->len), v->len, PG_UTF8);
}

/* Printable form of a bad value for an error message, shortened. */
static char *
value_for_message(MakiniValue *v)
{
	char	   *s = value_cstring(v);
	int			len = strlen(s);

	if (len <= 80)
		return s;
	return psprintf("%s...", pnstrdup(s, pg_mbcliplen(s, len, 77)));
}

/* A text value: straight from the reply when the database is UTF-8. */
static Datum
text_value(MakiniValue *v)
{
	if (GetDatabaseEncoding() == PG_UTF8 &&
		v->kind != MAKINI_VALUE_TRUE && v->kind != MAKINI_VALUE_FALSE)
		return PointerGetDatum(cstring_to_text_with_len(v->str, v->len));
	return PointerGetDatum(cstring_to_text(value_cstring(v)));
}

/* Runs a column's input function on text. */
static Datum
input_value(MakiniColumn *col, char *text)
{
	return InputFunctionCall(&col->infunc, text, col->ioparam, col->typmod);
}

/*
 * digits the fast path takes: int64_div_fast_to_numeric() may multiply by up
 * to 10^3 inside int64, so 10^15 keeps every 15.x minor release exact
 */
#define MAKINI_FAST_DIGITS	15

/*
 * Plain decimal text -- [-]digits[.digits], at most 15 digits -- as a
 * numeric without numeric_in(): int64_div_fast_to_numeric() gives the same
 * value with the same display scale, normalized the same way, so the same
 * Datum.  Returns false for anything else (exponents, NaN, spaces, more
 * digits), which the input function then reads.
 */
static bool
fast_numeric(const char *s, int len, Datum *result)
{
	const char *p = s;
	const char *end = s + len;
	int64		val = 0;
	int			ndigits = 0;
	int			scale = 0;
	bool		neg = false;

	if (p < end && *p == '-')
	{
		neg = true;
		p++;
	}
	if (p == end || *p < '0' || *p > '9')
		return false;
	for (; p < end && *p >= '0' && *p <= '9' && ndigits <= MAKINI_FAST_DIGITS;
		 p++, ndigits++)
		val = val * 10 + (*p - '0');
	if (p < end && *p == '.')
	{
		p++;
		if (p == end || *p < '0' || *p > '9')
			return false;
		for (; p < end && *p >= '0' && *p <= '9' && ndigits <= MAKINI_FAST_DIGITS;
			 p++, ndigits++, scale++)
			val = val * 10 + (*p - '0');
	}
	if (p != end || ndigits > MAKINI_FAST_DIGITS)
		return false;
	*result = NumericGetDatum(int64_div_fast_to_numeric(neg ? -val : val, scale));
	return true;
}

/* A date-time value: ISO 8601 only (README.md, "Types"). */
static Datum
convert_instant(MakiniColumn *col, MakiniValue *v)
{
	TimestampTz ts;

	/*
	 * nothing else goes to the input function: "03/04/2026" would be March
	 * or April as the session's DateStyle says
	 */
	if (v->kind != MAKINI_VALUE_STRING ||
		!makini_parse_iso_instant(v->str, v->len, &ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("not an ISO 8601 date-time: \"%s\"", value_for_message(v))));
	switch (col->conv)
	{
		case MAKINI_CONV_TIMESTAMPTZ:
		case MAKINI_CONV_TIMESTAMP:

			/*
			 * a timestamp is the UTC wall-clock time of the instant: the same
			 * int64 as the timestamptz
			 */
			if (col->typmod >= 0)
				return DirectFunctionCall2(col->conv == MAKINI_CONV_TIMESTAMPTZ ?
										   timestamptz_scale : timestamp_scale,
										   TimestampTzGetDatum(ts),
										   Int32GetDatum(col->typmod));
			return TimestampTzGetDatum(ts);
		default:
			/* the UTC date of the instant */
			return DateADTGetDatum((DateADT) ((ts - (ts < 0 ? USECS_PER_DAY - 1 : 0)) /
											  USECS_PER_DAY));
	}
}

/* Converts one non-null value to its column's type. */
static Datum
convert_value(MakiniColumn *col, MakiniValue *v, bool *isnull)
{
	*isnull = false;
	if (col->conv == MAKINI_CONV_TEXT)
		return text_value(v);
	if (col->conv == MAKINI_CONV_STRING)
		return input_value(col, value_cstring(v));
	if ((v->kind == MAKINI_VALUE_STRING && v->len == 0) ||
		(v->kind == MAKINI_VALUE_JSON && v->len == 2 && v->str[0] == '"'))
	{
		*isnull = true;			/* "" is NULL for every non-string type */
		return (Datum) 0;
	}
	switch (col->conv)
	{
		case MAKINI_CONV_NUMERIC:
			{
				Datum		d;

				/* a typmod needs numeric_in's rounding and checks */
				if (col->typmod < 0 &&
					(v->kind == MAKINI_VALUE_STRING || v->kind == MAKINI_VALUE_NUMBER) &&
					fast_numeric(v->str, v->len, &d))
					return d;
			}
			break;
		case MAKINI_CONV_BOOL:
			if (v->kind == MAKINI_VALUE_TRUE || v->kind == MAKINI_VALUE_FALSE)
				return BoolGetDatum(v->kind == MAKINI_VALUE_TRUE);
			break;
		case MAKINI_CONV_TIMESTAMPTZ:
		case MAKINI_CONV_TIMESTAMP:
		case MAKINI_CONV_DATE:
			return convert_instant(col, v);
		case MAKINI_CONV_JSON:
		case MAKINI_CONV_JSONB:
			if (v->kind == MAKINI_VALUE_STRING)
			{
				StringInfoData buf;

				/* a bare string (not captured raw): make it a JSON string */
				initStringInfo(&buf);
				escape_json(&buf, value_cstring(v));
				return input_value(col, buf.data);
			}
			break;
		default:
			break;
	}
	return input_value(col, value_cstring(v));
}

/* What conversion_error_callback needs to know about the value at hand. */
typedef struct ConversionErrorState
{
	MakiniColumnMap *map;
	MakiniColumn *col;			/* the column being converted, or NULL */
	MakiniValue *value;
	const char *parent_key;
	const char *record_key;
	const MakiniReplyContext *ctx;
} ConversionErrorState;

/*
 * Error context callback of makini_convert_row: a value that does not
 * convert (the input function's error, or ours) becomes HV024, with the
 * column, the field, the record's key, the value and the request in the
 * CONTEXT.  A cancel, an out-of-memory or an HV024 already raised is not a
 * bad value and passes unchanged, but for the CONTEXT.
 */
static void
conversion_error_callback(void *arg)
{
	ConversionErrorState *st = (ConversionErrorState *) arg;
	MakiniColumn *col = st->col;
	int			sqlstate = geterrcode();
	char	   *record;

	if (col == NULL)
		return;
	if (sqlstate != ERRCODE_QUERY_CANCELED &&
		sqlstate != ERRCODE_OUT_OF_MEMORY &&
		sqlstate != ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE)
	{
		errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE);
		errhint("Change the column's type (text accepts any value) or correct the record in the source system.");
	}
	record = st->record_key ? psprintf("\"%s\"", st->record_key) : "(no key)";
	if (st->parent_key != NULL)
		record = psprintf("%s of record \"%s\"", record, st->parent_key);
	errcontext("column \"%s\" of foreign table \"%s\", field \"%s\" of record %s, value \"%s\"",
			   col->attname, st->map->relname, col->field, record,
			   value_for_message(st->value));
	errcontext("Makini request: GET %s (server \"%s\"%s%s)",
			   st->ctx->path, st->ctx->servername,
			   st->ctx->request_id ? ", request id " : "",
			   st->ctx->request_id ? st->ctx->request_id : "");
}

/*
 * Converts one parsed row (one value per slot) into values/nulls of the
 * scan tuple.  Columns the query does not use are left NULL.  A value that
 * does not convert raises HV024 through conversion_error_callback.
 */
void
makini_convert_row(MakiniColumnMap *map, MakiniValue *rowvals,
				   const char *parent_key, const char *record_key,
				   Datum *values, bool *nulls, const MakiniReplyContext *ctx)
{
	ConversionErrorState errstate = {map, NULL, NULL, parent_key, record_key, ctx};
	ErrorContextCallback errcallback;

	/* the hidden updatedAt slot, if any, is the last: no column takes it */
	int			nslots = map->track_slot >= 0 ? map->track_slot : map->nslots;

	memset(values, 0, sizeof(Datum) * map->ncols);
	memset(nulls, true, sizeof(bool) * map->ncols);
	errcallback.callback = conversion_error_callback;
	errcallback.arg = &errstate;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (int s = 0; s < nslots; s++)
	{
		int			i = map->slot_cols[s];
		MakiniValue *v = &rowvals[s];

		if (v->kind == MAKINI_VALUE_NULL)
			continue;
		errstate.col = &map->cols[i];
		errstate.value = v;
		values[i] = convert_value(&map->cols[i], v, &nulls[i]);
	}
	error_context_stack = errcallback.previous;
}
