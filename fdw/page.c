/*-------------------------------------------------------------------------
 *
 * page.c
 *		  One streaming pass over a Makini reply, routing each field of each
 *		  record straight to the column that maps it.
 *
 * No DOM of the page is built: the parse events follow a small stack of
 * "interesting" frames (the top object, the data array, a record, a mapped
 * nested object, the expand array and its elements); every other subtree is
 * skipped.  Values are recorded as MakiniValue (pointer + length + kind) in
 * the current memory context, which the caller resets per page: strings
 * without escapes, and objects and arrays (and every value of a json/jsonb
 * column) as raw JSON text, point into the reply itself and are not
 * NUL-terminated; de-escaped strings are copies.
 *
 * Two parsers drive the same events.  A fast scanner reads a reply in one
 * pass over its bytes, validating UTF-8 and JSON syntax as strictly as
 * PostgreSQL's parser does, without copying strings that need no
 * de-escaping and without events inside skipped subtrees.  Whatever it does
 * not take -- invalid UTF-8 or JSON, unusual escapes, deep nesting, a reply
 * of the wrong shape -- is parsed again from the start by PostgreSQL's own
 * parser (common/jsonapi.h), which is the reference: its verdict and its
 * error messages are the ones the user sees.  (Profiles showed PostgreSQL
 * 15's lexer, which de-escapes every string byte by byte into a StringInfo,
 * taking about half of a scan's time.)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "makini_fdw.h"
#include "model.h"

/*
 * A node of the field-path trie: one field name at one level, the columns
 * whose path ends here and the nodes below it.
 */
typedef struct PathNode
{
	const char *name;
	int			namelen;
	int			ncolumns;		/* needed columns whose path ends here */
	int		   *columns;		/* their slots */
	bool	   *colraw;			/* per column: it wants the raw JSON text */
	bool		raw;			/* some column wants the raw JSON text */
	bool		scalar;			/* some column wants scalars as values */
	int			nchildren;
	struct PathNode **children;
	int			lastmatch;		/* child matched last time: fields tend to
								 * come in the same order in every record */
	struct PathNode *element;	/* the expand array: root for its elements */
	int			star_column;	/* slot gathering unmapped fields, or -1 */
} PathNode;

/* the parser's lookup structure, built once per column map */
typedef struct PathTrie
{
	PathNode   *record;			/* fields of a record */
	bool		expand;			/* rows come from the expand array */
	int			rows_hint;		/* rows to make room for: the last page's */
} PathTrie;

typedef enum FrameKind
{
	FRAME_TOP,					/* the reply's top-level object */
	FRAME_DATA,					/* the "data" array of a list reply */
	FRAME_RECORD,				/* one record */
	FRAME_NODE,					/* a mapped object inside a record */
	FRAME_EXPAND,				/* the expand array of a record */
	FRAME_ELEMENT,				/* one element of the expand array */
	FRAME_LINKS,				/* "links" */
	FRAME_META					/* "meta" */
} FrameKind;

/* what a frame is, and what it knows of the field being parsed in it */
typedef struct Frame
{
	FrameKind	kind;
	PathNode   *node;			/* trie node of this object, if any */
	PathNode   *cur;			/* node of the current field, or NULL */
	char	   *cur_start;		/* where the current field's value starts */
	const char *cur_name;		/* current field name (not NUL-terminated) */
	int			cur_namelen;
	bool		cur_is_key;		/* current field is the record's "key" */
	bool		cur_star;		/* current field goes to the star column */
} Frame;

typedef struct PageParseState
{
	JsonLexContext *lex;		/* PostgreSQL's parser, NULL for the fast one */
	char	   *value_start;	/* PostgreSQL's: where the current value starts */
	char	   *name_from;		/* PostgreSQL's: the next field name is after */
	MakiniColumnMap *map;
	PathTrie   *trie;
	const MakiniReplyContext *ctx;
	MakiniPage *page;
	bool		single;			/* "data" is one object, not an array */
	bool		seen_data;
	bool		fast;			/* the fast scanner drives the events */
	bool		bail;			/* fast: leave the reply to PostgreSQL's parser */

	Frame	   *frames;
	int			nframes;
	int			maxframes;
	int			skip_depth;		/* >0 while inside a skipped subtree */
	FrameKind	pending;		/* what the next object/array start opens */
	PathNode   *pending_node;
	bool		pending_skip;

	int			rows_alloc;
	uint32		records_begun;	/* records and elements: interrupts are
								 * checked every MAKINI_CFI_EVERY of them */
	int			cur_row;		/* row receiving values, -1: parent values */
	int			record_first_row;	/* expand: first row of this record */
	MakiniValue *parent_vals;	/* expand: the record's own values */
	char	   *record_key;
	char	   *element_key;
	StringInfoData star;		/* fields gathered for the star column */
	int			star_count;
	StringInfoData scratch;		/* fast: de-escaping buffer */
} PageParseState;

/*
 * A reply of the wrong shape: with PostgreSQL's parser, raise HV00M; in the
 * fast scanner, give up (the reply is parsed again by PostgreSQL's parser,
 * which raises the error, or the one it meets first).  Used in void event
 * handlers: returns from the caller.
 */
#define SHAPE_ERROR(st, ...) \
	do { \
		if ((st)->fast) \
		{ \
			(st)->bail = true; \
			return; \
		} \
		makini_bad_reply((st)->ctx, __VA_ARGS__); \
	} while (0)

/* PG_INT64_MAX as text, for messages */
#define INT64_FORMAT_MAX_TEXT "9223372036854775807"

static char *json_string_utf8(const char *tok, int len);

/* records parsed between two CHECK_FOR_INTERRUPTS() */
#define MAKINI_CFI_EVERY	1024

/* Is the name of length len the literal lit? */
#define NAME_IS(name, len, lit) \
	((len) == sizeof(lit) - 1 && memcmp((name), (lit), sizeof(lit) - 1) == 0)

/* makini_fdw.fast_json: parse pages with the fast scanner first */
bool		makini_fast_json = true;

/* Finds or adds the child of node named name. */
static PathNode *
trie_child(PathNode *node, const char *name, bool add)
{
	int			len = strlen(name);
	PathNode   *child;

	for (int i = 0; i < node->nchildren; i++)
	{
		child = node->children[i];
		if (child->namelen == len && memcmp(child->name, name, len) == 0)
			return child;
	}
	if (!add)
		return NULL;
	child = palloc0(sizeof(PathNode));
	child->name = pstrdup(name);
	child->namelen = len;
	child->star_column = -1;
	node->children = node->nchildren == 0 ?
		palloc(sizeof(PathNode *)) :
		repalloc(node->children, sizeof(PathNode *) * (node->nchildren + 1));
	node->children[node->nchildren++] = child;
	return child;
}

/* A fresh trie node with no columns. */
static PathNode *
trie_new_root(void)
{
	PathNode   *root = palloc0(sizeof(PathNode));

	root->star_column = -1;
	return root;
}

/*
 * Adds the path of column col below root; if the query needs the column,
 * its value goes to the column's slot.
 */
static void
trie_add_column(PathNode *root, MakiniColumn *col)
{
	PathNode   *node = root;
	ListCell   *lc;

	foreach(lc, col->path)
		node = trie_child(node, strVal(lfirst(lc)), true);
	if (!col->needed)
		return;
	node->columns = node->ncolumns == 0 ? palloc(sizeof(int)) :
		repalloc(node->columns, sizeof(int) * (node->ncolumns + 1));
	node->colraw = node->ncolumns == 0 ? palloc(sizeof(bool)) :
		repalloc(node->colraw, sizeof(bool) * (node->ncolumns + 1));
	node->colraw[node->ncolumns] =
		(col->conv == MAKINI_CONV_JSON || col->conv == MAKINI_CONV_JSONB);
	node->raw |= node->colraw[node->ncolumns];
	node->scalar |= !node->colraw[node->ncolumns];
	node->columns[node->ncolumns++] = col->slot;
}

/*
 * Builds the trie of a column map: record-level paths (and, for an expand
 * table, parent. paths) under the record root, element paths under the
 * expand node's element root.
 */
static PathTrie *
build_trie(MakiniColumnMap *map)
{
	PathTrie   *trie = palloc0(sizeof(PathTrie));
	PathNode   *element = NULL;

	trie->record = trie_new_root();
	if (map->expand)
	{
		PathNode   *exp = trie_child(trie->record, map->expand, true);

		element = exp->element = trie_new_root();
		trie->expand = true;
	}
	for (int i = 0; i < map->ncols; i++)
	{
		MakiniColumn *col = &map->cols[i];
		PathNode   *root = (map->expand && !col->parent) ? element : trie->record;

		if (col->dropped)
			continue;
		if (col->star)
		{
			if (col->needed)
				root->star_column = col->slot;
			continue;
		}
		trie_add_column(root, col);
	}
	return trie;
}

/* Are the n bytes at a and b equal?  (Field names are short: no call.) */
static inline bool
bytes_equal(const char *a, const char *b, int n)
{
	for (int i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* Looks a field name up among node's children, trying the expected one first. */
static inline PathNode *
trie_lookup(PathNode *node, const char *name, int len)
{
	int			n = node->nchildren;

	for (int k = 0; k < n; k++)
	{
		int			i = node->lastmatch + k;
		PathNode   *child;

		if (i >= n)
			i -= n;
		child = node->children[i];
		if (child->namelen == len && bytes_equal(child->name, name, len))
		{
			node->lastmatch = (i + 1 == n) ? 0 : i + 1;
			return child;
		}
	}
	return NULL;
}

/* The values of the row (or of the parent record) currently being filled. */
static inline MakiniValue *
target_values(PageParseState *st)
{
	if (st->cur_row < 0)
		return st->parent_vals;
	return &st->page->values[(Size) st->cur_row * st->page->ncols];
}

/* Starts a new, all-NULL row and returns its index. */
static int
new_row(PageParseState *st)
{
	MakiniPage *page = st->page;

	if (page->nrows >= st->rows_alloc)
	{
		int			n = st->rows_alloc * 2;

		page->values = repalloc_huge(page->values,
									 sizeof(MakiniValue) * (Size) n *
									 Max(page->ncols, 1));
		page->row_keys = repalloc_huge(page->row_keys, sizeof(char *) * n);
		page->row_parent_keys = repalloc_huge(page->row_parent_keys,
											  sizeof(char *) * n);
		st->rows_alloc = n;
	}
	memset(&page->values[(Size) page->nrows * page->ncols], 0,
		   sizeof(MakiniValue) * page->ncols);
	page->row_keys[page->nrows] = NULL;
	page->row_parent_keys[page->nrows] = NULL;
	return page->nrows++;
}

/* Pushes a frame of the given kind. */
static Frame *
push_frame(PageParseState *st, FrameKind kind, PathNode *node)
{
	Frame	   *f;

	if (st->nframes >= st->maxframes)
	{
		st->maxframes *= 2;
		st->frames = repalloc(st->frames, sizeof(Frame) * st->maxframes);
	}
	f = &st->frames[st->nframes++];
	memset(f, 0, sizeof(Frame));
	f->kind = kind;
	f->node = node;
	return f;
}

/* which columns of a node a value goes to */
typedef enum StoreTo
{
	STORE_ALL,					/* objects and arrays: every column */
	STORE_RAW,					/* a scalar's raw JSON: json/jsonb columns */
	STORE_SCALAR				/* a scalar's value: the other columns */
} StoreTo;

/* Stores one value into the columns of node that take it. */
static inline void
store_value(PageParseState *st, PathNode *node, char *str, int len,
			MakiniValueKind kind, StoreTo to)
{
	MakiniValue *vals = target_values(st);

	for (int i = 0; i < node->ncolumns; i++)
	{
		MakiniValue *v = &vals[node->columns[i]];

		if ((to == STORE_RAW && !node->colraw[i]) ||
			(to == STORE_SCALAR && node->colraw[i]))
			continue;

		v->str = str;
		v->len = len;
		v->kind = kind;
	}
}

/*
 * Decides what the value of a field of frame f will open, and remembers it;
 * value_start is where the value's text begins in the reply.
 */
static void
field_start_in_frame(PageParseState *st, Frame *f, const char *name, int len,
					 char *value_start)
{
	PathNode   *child = NULL;

	f->cur_name = name;
	f->cur_namelen = len;
	f->cur_start = value_start;
	f->cur_is_key = false;
	f->cur_star = false;
	st->pending_skip = true;

	switch (f->kind)
	{
		case FRAME_TOP:
			if (NAME_IS(name, len, "data"))
			{
				st->seen_data = true;
				st->pending_skip = false;
				st->pending = st->single ? FRAME_RECORD : FRAME_DATA;
			}
			else if (NAME_IS(name, len, "links"))
			{
				st->pending_skip = false;
				st->pending = FRAME_LINKS;
			}
			else if (NAME_IS(name, len, "meta"))
			{
				st->pending_skip = false;
				st->pending = FRAME_META;
			}
			return;
		case FRAME_LINKS:
		case FRAME_META:
			return;
		case FRAME_RECORD:
		case FRAME_ELEMENT:
			f->cur_is_key = NAME_IS(name, len, "key");
			/* FALLTHROUGH */
		case FRAME_NODE:
			child = trie_lookup(f->node, name, len);
			break;
		default:
			return;
	}

	f->cur = child;
	if (child == NULL)
	{
		f->cur_star = (f->kind == FRAME_RECORD || f->kind == FRAME_ELEMENT) &&
			f->node->star_column >= 0 && !makini_model_is_collection(name, len);
		return;
	}
	if (child->element && f->kind == FRAME_RECORD)
	{
		st->pending_skip = false;
		st->pending = FRAME_EXPAND;
		st->pending_node = child->element;
	}
	else if (child->nchildren > 0)
	{
		st->pending_skip = false;
		st->pending = FRAME_NODE;
		st->pending_node = child;
	}
}

/* Event: a field starts; its value begins at value_start. */
static inline void
on_field_start(PageParseState *st, const char *name, int len, char *value_start)
{
	if (st->skip_depth > 0)
		return;
	field_start_in_frame(st, &st->frames[st->nframes - 1], name, len,
						 value_start);
}

/*
 * Appends one field, with its raw JSON text, to the star column's object.
 * The name is written as escape_json() writes it.
 */
static void
star_append(PageParseState *st, const char *name, int len, char *start, char *end)
{
	bool		plain = true;

	appendStringInfoChar(&st->star, st->star_count++ == 0 ? '{' : ',');
	for (int i = 0; i < len && plain; i++)
		plain = name[i] != '"' && name[i] != '\\' &&
			(unsigned char) name[i] >= 0x20;
	if (plain)
	{
		appendStringInfoChar(&st->star, '"');
		appendBinaryStringInfo(&st->star, name, len);
		appendStringInfoChar(&st->star, '"');
	}
	else
		escape_json(&st->star, pnstrdup(name, len));
	appendStringInfoChar(&st->star, ':');
	appendBinaryStringInfo(&st->star, start, end - start);
}

/*
 * Event: a field ends, its value ending at value_end; raw captures complete
 * here.
 */
static inline void
on_field_end(PageParseState *st, bool isnull, char *value_end)
{
	Frame	   *f;

	if (st->skip_depth > 0)
		return;
	f = &st->frames[st->nframes - 1];
	if (f->cur_star)
		star_append(st, f->cur_name, f->cur_namelen, f->cur_start, value_end);
	else if (f->cur && f->cur->ncolumns > 0 && !isnull)
	{
		bool		composite = (*f->cur_start == '{' || *f->cur_start == '[');

		if (composite || f->cur->raw)
			store_value(st, f->cur, f->cur_start, value_end - f->cur_start,
						MAKINI_VALUE_JSON, composite ? STORE_ALL : STORE_RAW);
	}
	f->cur = NULL;
	f->cur_star = false;
	f->cur_is_key = false;
}

/* Starts a record (kind FRAME_RECORD) or an expand element. */
static void
begin_record(PageParseState *st, FrameKind kind, PathNode *node)
{
	/* a page of a million records takes a while: stay cancellable */
	if ((++st->records_begun % MAKINI_CFI_EVERY) == 0)
		CHECK_FOR_INTERRUPTS();
	push_frame(st, kind, node);
	if (kind == FRAME_RECORD)
	{
		st->record_key = NULL;
		if (st->trie->expand)
		{
			memset(st->parent_vals, 0, sizeof(MakiniValue) * st->page->ncols);
			st->cur_row = -1;
			st->record_first_row = st->page->nrows;
		}
		else
			st->cur_row = new_row(st);
	}
	else
	{
		st->element_key = NULL;
		st->cur_row = new_row(st);
	}
	if (node->star_column >= 0)
	{
		resetStringInfo(&st->star);
		st->star_count = 0;
	}
}

/* Finishes a record or element: star column, keys, parent values. */
static void
end_record(PageParseState *st, Frame *f)
{
	MakiniPage *page = st->page;

	if (f->node->star_column >= 0 && st->star_count > 0)
	{
		MakiniValue *v = &target_values(st)[f->node->star_column];

		appendStringInfoChar(&st->star, '}');
		v->str = pnstrdup(st->star.data, st->star.len);
		v->len = st->star.len;
		v->kind = MAKINI_VALUE_JSON;
	}
	if (f->kind == FRAME_ELEMENT)
	{
		page->row_keys[st->cur_row] = st->element_key;
		st->cur_row = -1;
		return;
	}
	page->nrecords++;
	if (!st->trie->expand)
	{
		page->row_keys[st->cur_row] = st->record_key;
		return;
	}
	for (int r = st->record_first_row; r < page->nrows; r++)
	{
		MakiniValue *vals = &page->values[(Size) r * page->ncols];

		for (int c = 0; c < page->ncols; c++)
			if (st->map->cols[st->map->slot_cols[c]].parent)
				vals[c] = st->parent_vals[c];
		page->row_parent_keys[r] = st->record_key;
	}
}

/* Event: an object starts. */
static void
on_object_start(PageParseState *st)
{
	FrameKind	kind = st->pending;

	if (st->skip_depth > 0 || (st->nframes > 0 && st->pending_skip))
	{
		st->skip_depth++;
		return;
	}
	st->pending_skip = true;
	if (st->nframes == 0)
		push_frame(st, FRAME_TOP, NULL);
	else if (kind == FRAME_RECORD)
		begin_record(st, FRAME_RECORD, st->trie->record);
	else if (kind == FRAME_ELEMENT)
		begin_record(st, FRAME_ELEMENT, st->pending_node);
	else if (kind == FRAME_NODE || kind == FRAME_LINKS || kind == FRAME_META)
		push_frame(st, kind, st->pending_node);
	else
		SHAPE_ERROR(st, "\"%s\" is an object where an array was expected",
					kind == FRAME_DATA ? "data" : st->map->expand);
}

/* Event: an object ends. */
static void
on_object_end(PageParseState *st)
{
	Frame	   *f;

	if (st->skip_depth > 0)
	{
		st->skip_depth--;
		return;
	}
	f = &st->frames[st->nframes - 1];
	if (f->kind == FRAME_RECORD || f->kind == FRAME_ELEMENT)
		end_record(st, f);
	st->nframes--;
}

/* Event: an array starts. */
static void
on_array_start(PageParseState *st)
{
	if (st->skip_depth > 0 || st->nframes == 0 || st->pending_skip)
	{
		if (st->nframes == 0)
			SHAPE_ERROR(st, "the reply is a JSON array, not an object");
		st->skip_depth++;
		return;
	}
	st->pending_skip = true;
	if (st->pending == FRAME_DATA)
		push_frame(st, FRAME_DATA, NULL);
	else if (st->pending == FRAME_EXPAND)
		push_frame(st, FRAME_EXPAND, st->pending_node);
	else if (st->pending == FRAME_RECORD)
		SHAPE_ERROR(st, "\"data\" is an array where one record was expected");
	else
		st->skip_depth++;
}

/* Event: an array ends. */
static void
on_array_end(PageParseState *st)
{
	if (st->skip_depth > 0)
	{
		st->skip_depth--;
		return;
	}
	st->nframes--;
}

/* Event: an array element starts; records and elements open here. */
static void
on_element_start(PageParseState *st)
{
	Frame	   *f;

	if (st->skip_depth > 0)
		return;
	f = &st->frames[st->nframes - 1];
	st->pending_skip = false;
	if (f->kind == FRAME_DATA)
		st->pending = FRAME_RECORD;
	else if (f->kind == FRAME_EXPAND)
	{
		st->pending = FRAME_ELEMENT;
		st->pending_node = f->node;
	}
	else
		st->pending_skip = true;
}

/*
 * Reads a JSON number of len bytes at token as an integer in [0, max];
 * false for a fraction, an exponent, a sign or a value out of range.
 */
static bool
meta_integer(const char *token, int len, int64 max, int64 *result)
{
	int64		n = 0;

	if (len == 0)
		return false;
	for (int i = 0; i < len; i++)
	{
		if (token[i] < '0' || token[i] > '9' ||
			n > (max - (token[i] - '0')) / 10)
			return false;
		n = n * 10 + (token[i] - '0');
	}
	*result = n;
	return true;
}

/*
 * Records a scalar of the links or meta object.  The paging numbers steer
 * the scan (last_page ends it): one that is not a whole number in range is
 * a bad reply, never cut down to an int.
 */
static void
paging_scalar(PageParseState *st, Frame *f, char *token, int len,
			  JsonTokenType type)
{
	const char *name = f->cur_name;
	int			namelen = f->cur_namelen;
	int64		n;

	if (name == NULL)
		return;
	if (f->kind == FRAME_LINKS && NAME_IS(name, namelen, "next"))
	{
		st->page->has_next = (type == JSON_TOKEN_STRING);
		st->page->next_link = st->page->has_next ? pnstrdup(token, len) : NULL;
	}
	else if (f->kind == FRAME_META && type == JSON_TOKEN_NUMBER &&
			 (NAME_IS(name, namelen, "total") ||
			  NAME_IS(name, namelen, "current_page") ||
			  NAME_IS(name, namelen, "last_page")))
	{
		bool		total = NAME_IS(name, namelen, "total");

		if (!meta_integer(token, len, total ? PG_INT64_MAX : PG_INT32_MAX, &n))
			SHAPE_ERROR(st, "meta.%.*s is %.*s, not a whole number between 0 and %s.",
						namelen, name, Min(len, 40), token,
						total ? INT64_FORMAT_MAX_TEXT : "2147483647");
		if (total)
			st->page->total = n;
		else if (NAME_IS(name, namelen, "current_page"))
			st->page->current_page = (int) n;
		else
			st->page->last_page = (int) n;
	}
}

/*
 * Event: a scalar value, len bytes at token (the de-escaped text of a
 * string, the text of any other token; not necessarily NUL-terminated).
 */
static void
on_scalar(PageParseState *st, char *token, int len, JsonTokenType type)
{
	Frame	   *f;
	MakiniValueKind kind;

	if (st->skip_depth > 0)
		return;
	if (st->nframes == 0)
		SHAPE_ERROR(st, "the reply is a JSON scalar, not an object");
	f = &st->frames[st->nframes - 1];
	if (f->kind == FRAME_LINKS || f->kind == FRAME_META)
	{
		paging_scalar(st, f, token, len, type);
		return;
	}
	if (f->kind == FRAME_DATA)
		SHAPE_ERROR(st, "an element of \"data\" is not an object");
	if (f->kind == FRAME_TOP && f->cur_name &&
		NAME_IS(f->cur_name, f->cur_namelen, "data") && type != JSON_TOKEN_NULL)
		SHAPE_ERROR(st, "\"data\" is a scalar");
	if (f->cur_is_key && type != JSON_TOKEN_NULL)
	{
		if (f->kind == FRAME_RECORD)
			st->record_key = pnstrdup(token, len);
		else
			st->element_key = pnstrdup(token, len);
	}
	if (f->cur == NULL || !f->cur->scalar)
		return;
	switch (type)
	{
		case JSON_TOKEN_STRING:
			kind = MAKINI_VALUE_STRING;
			break;
		case JSON_TOKEN_NUMBER:
			kind = MAKINI_VALUE_NUMBER;
			break;
		case JSON_TOKEN_TRUE:
			kind = MAKINI_VALUE_TRUE;
			break;
		case JSON_TOKEN_FALSE:
			kind = MAKINI_VALUE_FALSE;
			break;
		default:
			return;				/* null: the row already holds NULL */
	}
	store_value(st, f->cur, token, len, kind, STORE_SCALAR);
}

/* ------------------------------------------------------------------------
 * PostgreSQL's parser: semantic callbacks turned into events.
 * ------------------------------------------------------------------------
 */

/* Semantic callback: an object starts; the lexer is at its '{'. */
static MakiniJsonResult
cb_object_start(void *state)
{
	PageParseState *st = (PageParseState *) state;

	st->name_from = makini_lex_token_start(st->lex) + 1;
	on_object_start(st);
	return MAKINI_JSON_OK;
}

/* Semantic callback: an object ends. */
static MakiniJsonResult
cb_object_end(void *state)
{
	on_object_end((PageParseState *) state);
	return MAKINI_JSON_OK;
}

/* Semantic callback: an array starts. */
static MakiniJsonResult
cb_array_start(void *state)
{
	on_array_start((PageParseState *) state);
	return MAKINI_JSON_OK;
}

/* Semantic callback: an array ends. */
static MakiniJsonResult
cb_array_end(void *state)
{
	on_array_end((PageParseState *) state);
	return MAKINI_JSON_OK;
}

/* Raises HV00M for a reply that is not valid UTF-8 JSON. */
static void
check_parse(JsonParseErrorType rc, JsonLexContext *lex,
			const MakiniReplyContext *ctx)
{
	if (rc != JSON_SUCCESS)
		makini_bad_reply(ctx, "The reply is not valid JSON: %s",
						 json_errdetail(rc, lex));
}

/*
 * Would on_scalar() ignore a scalar now?  (A field of a record or of a
 * mapped object that no column takes as a scalar, and not the key.)  Such
 * strings need not be de-escaped.
 */
static inline bool
scalar_ignored(PageParseState *st)
{
	Frame	   *f;

	if (st->nframes == 0)
		return false;
	f = &st->frames[st->nframes - 1];
	return (f->kind == FRAME_RECORD || f->kind == FRAME_ELEMENT ||
			f->kind == FRAME_NODE) && !f->cur_is_key &&
		(f->cur == NULL || !f->cur->scalar);
}

/*
 * The text of a string token, quotes included, at start (len bytes): a
 * pointer into the reply when it has no escapes, else de-escaped by
 * PostgreSQL's lexer.  The parse runs without de-escaping (twice as fast):
 * only the strings that are used pay for it.  The lexer writes \u escapes
 * in the database's encoding, but values are UTF-8 (convert.c converts
 * them): in another database the lexer only checks the string, and
 * json_string_utf8 de-escapes it.
 */
static char *
string_text(PageParseState *st, char *start, int len, int *outlen)
{
	JsonLexContext *lex;
	char	   *text;

	if (memchr(start + 1, '\\', len - 2) == NULL)
	{
		*outlen = len - 2;
		return start + 1;
	}
	lex = makini_json_lexer(start, len, true);
	check_parse(json_lex(lex), lex, st->ctx);
	if (GetDatabaseEncoding() == PG_UTF8)
	{
		*outlen = lex->strval->len;
		return lex->strval->data;
	}
	text = json_string_utf8(start, len);
	*outlen = strlen(text);		/* the lexer let no \u0000 through */
	return text;
}

/*
 * The token of a field name: between st->name_from (the end of the '{' or
 * of the previous field's value: only whitespace and a ',' follow) and the
 * ':' that ends at colon_end (only whitespace before it).
 */
static char *
field_name_token(PageParseState *st, char *colon_end, int *len)
{
	char	   *open = st->name_from;
	char	   *close = colon_end - 2;

	while (*open != '"')
		open++;
	while (*close != '"')
		close--;
	*len = close - open + 1;
	return open;
}

/* Semantic callback: an array element starts; the lexer is at its first token. */
static MakiniJsonResult
cb_element_start(void *state, bool isnull)
{
	PageParseState *st = (PageParseState *) state;

	st->value_start = makini_lex_token_start(st->lex);
	on_element_start(st);
	return MAKINI_JSON_OK;
}

/*
 * Semantic callback: a field starts; the lexer is past the name and its
 * ':' (no fname: nothing is de-escaped), at its value's first token.
 */
static MakiniJsonResult
cb_field_start(void *state, char *fname, bool isnull)
{
	PageParseState *st = (PageParseState *) state;
	char	   *token;
	char	   *name;
	int			toklen;
	int			len;

	st->value_start = makini_lex_token_start(st->lex);
	if (st->skip_depth > 0)
		return MAKINI_JSON_OK;
	token = field_name_token(st, makini_lex_prev_end(st->lex), &toklen);
	name = string_text(st, token, toklen, &len);
	on_field_start(st, name, len, makini_lex_token_start(st->lex));
	return MAKINI_JSON_OK;
}

/* Semantic callback: a field ends; its value ended at the previous token. */
static MakiniJsonResult
cb_field_end(void *state, char *fname, bool isnull)
{
	PageParseState *st = (PageParseState *) state;

	st->name_from = makini_lex_prev_end(st->lex);
	on_field_end(st, isnull, makini_lex_prev_end(st->lex));
	return MAKINI_JSON_OK;
}

/*
 * Semantic callback: a scalar value, which started at st->value_start and
 * ended at the previous token's end (a string's token is NULL).
 */
static MakiniJsonResult
cb_scalar(void *state, char *token, JsonTokenType type)
{
	PageParseState *st = (PageParseState *) state;
	char	   *start = st->value_start;
	int			len = st->lex->prev_token_terminator - start;

	if (st->skip_depth > 0)
		return MAKINI_JSON_OK;
	if (type != JSON_TOKEN_STRING)
		on_scalar(st, start, len, type);
	else if (scalar_ignored(st))
		on_scalar(st, start + 1, len - 2, type);
	else
	{
		char	   *text = string_text(st, start, len, &len);

		on_scalar(st, text, len, type);
	}
	return MAKINI_JSON_OK;
}

/* Parses the reply with PostgreSQL's parser: the reference, and its errors. */
static void
parse_with_postgres(PageParseState *st, char *body, size_t len)
{
	JsonSemAction sem;

	if (!pg_verify_mbstr(PG_UTF8, body, (int) len, true))
		makini_bad_reply(st->ctx, "The reply is not valid UTF-8.");

	memset(&sem, 0, sizeof(sem));
	sem.semstate = st;
	sem.object_start = cb_object_start;
	sem.object_end = cb_object_end;
	sem.array_start = cb_array_start;
	sem.array_end = cb_array_end;
	sem.object_field_start = cb_field_start;
	sem.object_field_end = cb_field_end;
	sem.array_element_start = cb_element_start;
	sem.scalar = cb_scalar;

	st->lex = makini_json_lexer(body, len, false);
	st->value_start = body;
	check_parse(pg_parse_json(st->lex, &sem), st->lex, st->ctx);
}

/* ------------------------------------------------------------------------
 * The fast scanner: recursive descent over the reply's bytes (which end in
 * a NUL, so every look-ahead stops there), accepting only what PostgreSQL's
 * parser accepts (RFC 8259 JSON; strings of valid UTF-8 without control
 * characters; \u escapes without U+0000 and with surrogates in pairs; no
 * letters or digits glued to a number or keyword).  A false return means
 * "not taken": the caller throws the partial page away and runs
 * parse_with_postgres().
 * ------------------------------------------------------------------------
 */

/* nesting beyond this is left to PostgreSQL's parser (and its stack check) */
#define FAST_MAX_DEPTH	256

#define CC_PLAIN	0x01		/* string byte needing no attention */
#define CC_ALNUM	0x02		/* continues a token (JSON_ALPHANUMERIC_CHAR) */
#define CC_WS		0x04		/* whitespace between tokens */

static uint8 char_class[256];

typedef struct FastScan
{
	PageParseState *st;
	char	   *p;				/* next byte */
	char	   *end;			/* the reply's end; *end is '\0' */
	bool		utf8_db;		/* \u escapes may be written as UTF-8 */
} FastScan;

/* Fills the character class table once per backend. */
static void
init_char_class(void)
{
	if (char_class['a'] != 0)
		return;
	for (int c = 0; c < 256; c++)
	{
		uint8		cc = 0;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
			cc |= CC_PLAIN;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c >= 0x80)
			cc |= CC_ALNUM;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			cc |= CC_WS;
		char_class[c] = cc;
	}
}

/* Skips whitespace. */
static inline char *
skip_ws(char *p)
{
	while (char_class[(uint8) *p] & CC_WS)
		p++;
	return p;
}

/* Length of the valid UTF-8 character at s (a lead byte >= 0x80), or 0. */
static inline int
utf8_char_len(FastScan *fs, unsigned char *s)
{
	int			l = pg_utf_mblen(s);

	if (l < 2 || s + l > (unsigned char *) fs->end || !pg_utf8_islegal(s, l))
		return 0;
	return l;
}

/* Value of a hexadecimal digit, or -1. */
static inline int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The rest of a string with escapes, from its first byte at start: validates
 * it and, with want, de-escapes it into a copy (*str, *len).
 */
static bool
fast_escaped_string(FastScan *fs, unsigned char *start, bool want,
					char **str, int *len)
{
	StringInfo	buf = &fs->st->scratch;
	unsigned char *s = start;
	int			hi = -1;		/* pending high surrogate */

	resetStringInfo(buf);
	for (;;)
	{
		unsigned char c = *s;

		if (c == '\\')
		{
			c = s[1];
			if (c == 'u')
			{
				int			ch = 0;

				for (int i = 2; i < 6; i++)
				{
					int			d = hex_value(s[i]);

					if (d < 0)
						return false;
					ch = ch * 16 + d;
				}
				s += 6;
				if (ch >= 0xD800 && ch <= 0xDBFF)
				{
					if (hi != -1)
						return false;
					hi = ch;
					continue;
				}
				if (ch >= 0xDC00 && ch <= 0xDFFF)
				{
					if (hi == -1)
						return false;
					ch = 0x10000 + ((hi - 0xD800) << 10) + (ch - 0xDC00);
					hi = -1;
				}
				else if (hi != -1)
					return false;
				if (ch == 0 || (ch >= 0x80 && !fs->utf8_db))
					return false;
				if (want)
				{
					unsigned char u[4];

					unicode_to_utf8((pg_wchar) ch, u);
					appendBinaryStringInfo(buf, (char *) u, pg_utf_mblen(u));
				}
				continue;
			}
			if (hi != -1)
				return false;
			switch (c)
			{
				case '"':
				case '\\':
				case '/':
					break;
				case 'b':
					c = '\b';
					break;
				case 'f':
					c = '\f';
					break;
				case 'n':
					c = '\n';
					break;
				case 'r':
					c = '\r';
					break;
				case 't':
					c = '\t';
					break;
				default:
					return false;
			}
			if (want)
				appendStringInfoChar(buf, (char) c);
			s += 2;
			continue;
		}
		if (hi != -1)
			return false;
		if (c == '"')
			break;
		if (c >= 0x80)
		{
			int			l = utf8_char_len(fs, s);

			if (l == 0)
				return false;
			if (want)
				appendBinaryStringInfo(buf, (char *) s, l);
			s += l;
			continue;
		}
		if (c < 0x20)
			return false;		/* a control character, or the end */
		if (want)
			appendStringInfoChar(buf, (char) c);
		s++;
	}
	if (want)
	{
		*str = pnstrdup(buf->data, buf->len);
		*len = buf->len;
	}
	fs->p = (char *) s + 1;
	return true;
}

/*
 * The string whose opening quote is at fs->p: validates it and returns its
 * text in *str, *len -- a slice of the reply when it has no escapes, else
 * (with want) a de-escaped copy.  Moves past the closing quote.
 */
static inline bool
fast_string(FastScan *fs, bool want, char **str, int *len)
{
	unsigned char *start = (unsigned char *) fs->p + 1;
	unsigned char *s = start;

	for (;;)
	{
		while (char_class[s[0]] & CC_PLAIN)
		{
			if (!(char_class[s[1]] & CC_PLAIN))
			{
				s++;
				break;
			}
			if (!(char_class[s[2]] & CC_PLAIN))
			{
				s += 2;
				break;
			}
			if (!(char_class[s[3]] & CC_PLAIN))
			{
				s += 3;
				break;
			}
			s += 4;
		}
		if (*s == '"')
			break;
		if (*s == '\\')
			return fast_escaped_string(fs, start, want, str, len);
		if (*s >= 0x80)
		{
			int			l = utf8_char_len(fs, s);

			if (l == 0)
				return false;
			s += l;
			continue;
		}
		return false;			/* a control character, or the end */
	}
	*str = (char *) start;
	*len = s - start;
	fs->p = (char *) s + 1;
	return true;
}

/* The number at fs->p, in PostgreSQL's grammar. */
static inline bool
fast_number(FastScan *fs, char **str, int *len)
{
	char	   *s = fs->p;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
	{
		do
			s++;
		while (*s >= '0' && *s <= '9');
	}
	else
		return false;
	if (*s == '.')
	{
		s++;
		if (*s < '0' || *s > '9')
			return false;
		do
			s++;
		while (*s >= '0' && *s <= '9');
	}
	if (*s == 'e' || *s == 'E')
	{
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		do
			s++;
		while (*s >= '0' && *s <= '9');
	}
	if (char_class[(uint8) *s] & CC_ALNUM)
		return false;
	*str = fs->p;
	*len = s - fs->p;
	fs->p = s;
	return true;
}

/* The keyword word (n bytes) at fs->p, not followed by a token character. */
static inline bool
fast_keyword(FastScan *fs, const char *word, int n)
{
	for (int i = 0; i < n; i++)
		if (fs->p[i] != word[i])
			return false;
	if (char_class[(uint8) fs->p[n]] & CC_ALNUM)
		return false;
	fs->p += n;
	return true;
}

/* Validates the value at fs->p and moves past it, with no events. */
static bool
fast_skip(FastScan *fs, int depth)
{
	char	   *str;
	int			len;
	char		close;

	switch (*fs->p)
	{
		case '{':
		case '[':
			if (depth > FAST_MAX_DEPTH)
				return false;
			close = (*fs->p == '{') ? '}' : ']';
			fs->p = skip_ws(fs->p + 1);
			if (*fs->p == close)
			{
				fs->p++;
				return true;
			}
			for (;;)
			{
				if (close == '}')
				{
					if (*fs->p != '"' || !fast_string(fs, false, &str, &len))
						return false;
					fs->p = skip_ws(fs->p);
					if (*fs->p != ':')
						return false;
					fs->p = skip_ws(fs->p + 1);
				}
				if (!fast_skip(fs, depth + 1))
					return false;
				fs->p = skip_ws(fs->p);
				if (*fs->p == ',')
				{
					fs->p = skip_ws(fs->p + 1);
					continue;
				}
				if (*fs->p != close)
					return false;
				fs->p++;
				return true;
			}
		case '"':
			return fast_string(fs, false, &str, &len);
		case 't':
			return fast_keyword(fs, "true", 4);
		case 'f':
			return fast_keyword(fs, "false", 5);
		case 'n':
			return fast_keyword(fs, "null", 4);
		default:
			return fast_number(fs, &str, &len);
	}
}

static bool fast_value(FastScan *fs, int depth);

/* The object at fs->p, with its events. */
static bool
fast_object(FastScan *fs, int depth)
{
	PageParseState *st = fs->st;

	if (depth > FAST_MAX_DEPTH)
		return false;
	on_object_start(st);
	if (st->bail)
		return false;
	if (st->skip_depth > 0)
	{
		/* a skipped subtree: validated, no events */
		if (!fast_skip(fs, depth))
			return false;
		on_object_end(st);
		return true;
	}
	fs->p = skip_ws(fs->p + 1);
	if (*fs->p != '}')
	{
		for (;;)
		{
			char	   *name;
			int			namelen;
			bool		isnull;

			if (*fs->p != '"' || !fast_string(fs, true, &name, &namelen))
				return false;
			fs->p = skip_ws(fs->p);
			if (*fs->p != ':')
				return false;
			fs->p = skip_ws(fs->p + 1);
			isnull = (*fs->p == 'n');
			on_field_start(st, name, namelen, fs->p);
			if (!fast_value(fs, depth + 1))
				return false;
			on_field_end(st, isnull, fs->p);
			fs->p = skip_ws(fs->p);
			if (*fs->p == ',')
			{
				fs->p = skip_ws(fs->p + 1);
				continue;
			}
			if (*fs->p != '}')
				return false;
			break;
		}
	}
	fs->p++;
	on_object_end(st);
	return true;
}

/* The array at fs->p, with its events. */
static bool
fast_array(FastScan *fs, int depth)
{
	PageParseState *st = fs->st;

	if (depth > FAST_MAX_DEPTH)
		return false;
	on_array_start(st);
	if (st->bail)
		return false;
	if (st->skip_depth > 0)
	{
		if (!fast_skip(fs, depth))
			return false;
		on_array_end(st);
		return true;
	}
	fs->p = skip_ws(fs->p + 1);
	if (*fs->p != ']')
	{
		for (;;)
		{
			on_element_start(st);
			if (!fast_value(fs, depth + 1))
				return false;
			fs->p = skip_ws(fs->p);
			if (*fs->p == ',')
			{
				fs->p = skip_ws(fs->p + 1);
				continue;
			}
			if (*fs->p != ']')
				return false;
			break;
		}
	}
	fs->p++;
	on_array_end(st);
	return true;
}

/* The value at fs->p, with its events. */
static bool
fast_value(FastScan *fs, int depth)
{
	PageParseState *st = fs->st;
	char	   *str = fs->p;
	int			len;
	JsonTokenType type;

	switch (*fs->p)
	{
		case '{':
			return fast_object(fs, depth);
		case '[':
			return fast_array(fs, depth);
		case '"':
			if (scalar_ignored(st))
				return fast_string(fs, false, &str, &len);
			if (!fast_string(fs, true, &str, &len))
				return false;
			type = JSON_TOKEN_STRING;
			break;
		case 't':
			if (!fast_keyword(fs, "true", 4))
				return false;
			len = 4;
			type = JSON_TOKEN_TRUE;
			break;
		case 'f':
			if (!fast_keyword(fs, "false", 5))
				return false;
			len = 5;
			type = JSON_TOKEN_FALSE;
			break;
		case 'n':
			if (!fast_keyword(fs, "null", 4))
				return false;
			len = 4;
			type = JSON_TOKEN_NULL;
			break;
		default:
			if (!fast_number(fs, &str, &len))
				return false;
			type = JSON_TOKEN_NUMBER;
			break;
	}
	on_scalar(st, str, len, type);
	return !st->bail;
}

/*
 * Parses the reply with the fast scanner; false if it did not take it
 * (then the page is incomplete and must be thrown away).
 */
static bool
parse_fast(PageParseState *st, char *body, size_t len)
{
	FastScan	fs;

	if (body[len] != '\0')
		return false;
	init_char_class();
	fs.st = st;
	fs.end = body + len;
	fs.utf8_db = (GetDatabaseEncoding() == PG_UTF8);
	fs.p = skip_ws(body);
	if (*fs.p != '{')
		return false;			/* not an object: PostgreSQL's parser says why */
	if (!fast_value(&fs, 0))
		return false;
	fs.p = skip_ws(fs.p);
	return fs.p == fs.end;
}

/* ------------------------------------------------------------------------
 * Pages
 * ------------------------------------------------------------------------
 */

/* A fresh parse state and empty page (the fast scanner's when fast). */
static void
init_parse(PageParseState *st, MakiniColumnMap *map, bool single_record,
		   const MakiniReplyContext *ctx, bool fast)
{
	MakiniPage *page = palloc0(sizeof(MakiniPage));

	memset(st, 0, sizeof(PageParseState));
	st->map = map;
	st->trie = (PathTrie *) map->parser;
	st->ctx = ctx;
	st->page = page;
	st->single = single_record;
	st->fast = fast;
	st->maxframes = 16;
	st->frames = palloc(sizeof(Frame) * st->maxframes);
	st->pending_skip = true;
	st->rows_alloc = Max(64, st->trie->rows_hint);
	st->cur_row = -1;
	st->parent_vals = palloc0(sizeof(MakiniValue) * Max(map->nslots, 1));
	initStringInfo(&st->star);
	if (fast)
		initStringInfo(&st->scratch);

	page->ncols = map->nslots;
	page->total = -1;
	page->values = palloc0(sizeof(MakiniValue) * st->rows_alloc * Max(map->nslots, 1));
	page->row_keys = palloc(sizeof(char *) * st->rows_alloc);
	page->row_parent_keys = palloc(sizeof(char *) * st->rows_alloc);
}

/*
 * Parses one reply (a list page, or with single_record an item reply
 * {"data": {...}}) into rows of map's columns.  Everything is allocated in
 * the current memory context; the body (NUL-terminated at len) must stay
 * valid, and unchanged, as long as the page.
 */
MakiniPage *
makini_parse_page(MakiniColumnMap *map, char *body, size_t len,
				  bool single_record, const MakiniReplyContext *ctx)
{
	PageParseState	st;

	if (len > PG_INT32_MAX)
		makini_bad_reply(ctx, "The reply is larger than 2 GB.");
	if (map->parser == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(map));

		map->parser = build_trie(map);
		MemoryContextSwitchTo(old);
	}

	init_parse(&st, map, single_record, ctx, true);
	if (!makini_fast_json || !parse_fast(&st, body, len) || st.bail)
	{
		elog(DEBUG2, "makini_fdw: reply of GET %s left to PostgreSQL's JSON parser",
			 ctx->path ? ctx->path : "?");
		init_parse(&st, map, single_record, ctx, false);
		parse_with_postgres(&st, body, len);
	}
	if (!st.seen_data)
		makini_bad_reply(ctx, "The reply has no \"data\" member.");
	/* pages are alike: the next one gets room for this one's rows and some */
	st.trie->rows_hint = Min(st.page->nrows + st.page->nrows / 8, 1000000);
	return st.page;
}

/* ------------------------------------------------------------------------
 * Small documents: error bodies, /api/integrations/current.
 * ------------------------------------------------------------------------
 */
typedef struct ExtractState
{
	JsonLexContext *lex;
	char	   *name_from;		/* the next field name is after this */
	int			npaths;
	const char *const *paths;
	char	  **values;
	StringInfoData path;		/* dotted path of the current field */
	int		   *saved_len;		/* path length before each field, by level */
	char	  **value_start;	/* where each level's field value starts */
	int			array_depth;	/* >0 inside arrays: nothing matches */
} ExtractState;

/* Index of the wanted path equal to the current one, or -1. */
static int
extract_match(ExtractState *es)
{
	if (es->array_depth > 0)
		return -1;
	for (int i = 0; i < es->npaths; i++)
		if (strcmp(es->paths[i], es->path.data) == 0)
			return i;
	return -1;
}

/*
 * A JSON string token (quotes included, checked by the lexer) de-escaped
 * into UTF-8, whatever the database's encoding: PostgreSQL's lexer would
 * write \u escapes in the database's encoding, and raise for a character
 * it lacks.  An escape that is no character (a lone surrogate, \u0000)
 * becomes U+FFFD.
 */
static char *
json_string_utf8(const char *tok, int len)
{
	StringInfoData buf;
	const char *s = tok + 1;
	const char *end = tok + len - 1;
	pg_wchar	hi = 0;

	initStringInfo(&buf);
	while (s < end)
	{
		pg_wchar	ch;
		unsigned char u[4];

		if (*s != '\\')
		{
			appendStringInfoChar(&buf, *s++);
			continue;
		}
		if (s[1] != 'u')
		{
			const char *from = "bfnrt";
			const char *to = "\b\f\n\r\t";
			const char *k = strchr(from, s[1]);

			appendStringInfoChar(&buf, k ? to[k - from] : s[1]);
			s += 2;
			continue;
		}
		ch = 0;
		for (int i = 2; i < 6; i++)
			ch = ch * 16 + (isdigit((unsigned char) s[i]) ? s[i] - '0' :
							(s[i] | 0x20) - 'a' + 10);
		s += 6;
		if (ch >= 0xD800 && ch <= 0xDBFF && hi == 0 &&
			s + 6 <= end && s[0] == '\\' && s[1] == 'u')
		{
			hi = ch;			/* a pair's first half: the second follows */
			continue;
		}
		if (hi != 0 && ch >= 0xDC00 && ch <= 0xDFFF)
			ch = 0x10000 + ((hi - 0xD800) << 10) + (ch - 0xDC00);
		else if (hi != 0 || ch == 0 || (ch >= 0xD800 && ch <= 0xDFFF))
			ch = 0xFFFD;
		hi = 0;
		unicode_to_utf8(ch, u);
		appendBinaryStringInfo(&buf, (char *) u, pg_utf_mblen(u));
	}
	return buf.data;
}

/* Extract callback: an object starts; its first field name follows. */
static MakiniJsonResult
ex_object_start(void *state)
{
	ExtractState *es = (ExtractState *) state;

	es->name_from = makini_lex_token_start(es->lex) + 1;
	return MAKINI_JSON_OK;
}

/*
 * Extract callback: a field starts; extend the current path.  The lexer
 * does not de-escape (see json_string_utf8): the name is found in the text,
 * between the end of the '{' or ',' before it and the ':' after it.
 */
static MakiniJsonResult
ex_field_start(void *state, char *fname, bool isnull)
{
	ExtractState *es = (ExtractState *) state;
	int			level = es->lex->lex_level;
	char	   *open = es->name_from;
	char	   *close = makini_lex_prev_end(es->lex) - 2;

	while (*open != '"')
		open++;
	while (*close != '"')
		close--;
	es->saved_len[level] = es->path.len;
	if (es->path.len > 0)
		appendStringInfoChar(&es->path, '.');
	appendStringInfoString(&es->path, json_string_utf8(open, close - open + 1));
	es->value_start[level] = makini_lex_token_start(es->lex);
	return MAKINI_JSON_OK;
}

/* Extract callback: a field ends; objects and arrays are kept as raw text. */
static MakiniJsonResult
ex_field_end(void *state, char *fname, bool isnull)
{
	ExtractState *es = (ExtractState *) state;
	int			level = es->lex->lex_level;
	int			i = extract_match(es);

	if (i >= 0 && !isnull && es->values[i] == NULL)
	{
		char	   *start = es->value_start[level];

		if (*start == '{' || *start == '[')
			es->values[i] = pnstrdup(start, makini_lex_prev_end(es->lex) - start);
	}
	es->path.len = es->saved_len[level];
	es->path.data[es->path.len] = '\0';
	es->name_from = makini_lex_prev_end(es->lex);
	return MAKINI_JSON_OK;
}

/* Extract callback: a scalar at a wanted path. */
static MakiniJsonResult
ex_scalar(void *state, char *token, JsonTokenType type)
{
	ExtractState *es = (ExtractState *) state;
	int			i = extract_match(es);

	if (i < 0 || type == JSON_TOKEN_NULL)
		return MAKINI_JSON_OK;
	if (type == JSON_TOKEN_STRING)
	{
		char	   *start = es->value_start[es->lex->lex_level];

		es->values[i] = json_string_utf8(start,
										 makini_lex_prev_end(es->lex) - start);
	}
	else
		es->values[i] = token;
	return MAKINI_JSON_OK;
}

/* Extract callbacks: arrays hide their contents from path matching. */
static MakiniJsonResult
ex_array_start(void *state)
{
	((ExtractState *) state)->array_depth++;
	return MAKINI_JSON_OK;
}

static MakiniJsonResult
ex_array_end(void *state)
{
	((ExtractState *) state)->array_depth--;
	return MAKINI_JSON_OK;
}

/*
 * Finds the values at the given dotted paths of a small JSON document:
 * values[i] is the scalar's text (raw JSON for an object or array) or NULL.
 * Returns false if the body is not valid JSON.  Arrays are not entered.
 */
bool
makini_json_extract(const char *body, size_t len, int npaths,
					const char *const *paths, char **values)
{
	ExtractState es;
	JsonSemAction sem;
	JsonParseErrorType rc;

	for (int i = 0; i < npaths; i++)
		values[i] = NULL;
	if (body == NULL || len == 0 || len > PG_INT32_MAX ||
		!pg_verify_mbstr(PG_UTF8, body, (int) len, true))
		return false;

	memset(&es, 0, sizeof(es));
	es.npaths = npaths;
	es.paths = paths;
	es.values = values;
	initStringInfo(&es.path);
	es.lex = makini_json_lexer(pnstrdup(body, len), len, false);
	/* nesting takes at least two bytes a level */
	es.saved_len = palloc(sizeof(int) * (len / 2 + 2));
	es.value_start = palloc(sizeof(char *) * (len / 2 + 2));

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &es;
	sem.object_start = ex_object_start;
	sem.object_field_start = ex_field_start;
	sem.object_field_end = ex_field_end;
	sem.scalar = ex_scalar;
	sem.array_start = ex_array_start;
	sem.array_end = ex_array_end;

	rc = pg_parse_json(es.lex, &sem);
	if (rc != JSON_SUCCESS)
	{
		for (int i = 0; i < npaths; i++)
			values[i] = NULL;
		return false;
	}
	return true;
}
