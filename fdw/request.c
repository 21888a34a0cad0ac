/*-------------------------------------------------------------------------
 *
 * request.c
 *		  Builds the path and query string of a Makini request: resource,
 *		  filters, sort and paging (API.md §3).
 *
 * The same function builds what is sent (every parameter percent-encoded,
 * brackets included: strict in what we send) and what EXPLAIN shows
 * (readable brackets and values, no page number).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "mb/pg_wchar.h"

#include "makini_fdw.h"

/*
 * Appends s (in the database encoding) percent-encoded as UTF-8, which is
 * what the API reads (API.md §3), or as is, for display.
 */
static void
append_encoded(StringInfo buf, const char *s, bool display)
{
	char	   *utf8;
	char	   *esc;

	if (display)
	{
		appendStringInfoString(buf, s);
		return;
	}
	utf8 = pg_server_to_any(s, strlen(s), PG_UTF8);
	esc = curl_easy_escape(NULL, utf8, strlen(utf8));
	if (esc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	appendStringInfoString(buf, esc);
	curl_free(esc);
}

/* Appends '&' unless the query string is still empty. */
static void
append_separator(StringInfo buf)
{
	if (buf->data[buf->len - 1] != '?')
		appendStringInfoChar(buf, '&');
}

/* Appends one "name[field(:op)]=value" parameter. */
static void
append_bracket_param(StringInfo buf, const char *name, const char *field,
					 const char *op, const char *value, bool display)
{
	StringInfoData key;

	initStringInfo(&key);
	appendStringInfo(&key, "%s[%s%s%s]", name, field, op ? ":" : "", op ? op : "");
	append_separator(buf);
	append_encoded(buf, key.data, display);
	appendStringInfoChar(buf, '=');
	append_encoded(buf, value, display);
	pfree(key.data);
}

/*
 * Path and query of a request: /api/erp/<resource>[/<key>]?filters&sorts&
 * per_page=N[&page=N].  An item request (item_key set) has no parameters.
 * Filters and sorts are lists of MakiniFilter / MakiniSort.
 */
char *
makini_build_path(const char *resource, const char *item_key, List *filters,
				  List *sorts, int per_page, int page, bool display)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s%s", MAKINI_API_PREFIX, resource);
	if (item_key != NULL)
	{
		appendStringInfoChar(&buf, '/');
		append_encoded(&buf, item_key, display);
		return buf.data;
	}
	appendStringInfoChar(&buf, '?');
	foreach(lc, filters)
	{
		MakiniFilter *f = (MakiniFilter *) lfirst(lc);

		append_bracket_param(&buf, "filter", f->field, f->op, f->value, display);
	}
	foreach(lc, sorts)
	{
		MakiniSort *s = (MakiniSort *) lfirst(lc);

		append_bracket_param(&buf, "sort", s->field, NULL,
							 s->descending ? "1" : "0", display);
	}
	append_separator(&buf);
	appendStringInfo(&buf, "per_page=%d", per_page);
	if (!display && page > 1)
		appendStringInfo(&buf, "&page=%d", page);
	return buf.data;
}
