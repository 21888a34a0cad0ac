/*-------------------------------------------------------------------------
 *
 * page.c
 *		  One streaming pass over a Makini reply, routing each field of each
 *		  record straight to the column that maps it.
 *
 * No DOM of the page is built: the tokens of json.c's reader follow a small
 * stack of "interesting" frames (the top object, the data array, a record,
 * a mapped nested object, the expand array and its elements); every other
 * subtree is skipped by the reader.  Values are recorded as MakiniValue
 * (pointer + length + kind) in the current memory context, which the caller
 * resets per page: strings without escapes, and objects and arrays (and
 * every value of a json/jsonb column) as raw JSON text, point into the
 * reply itself and are not NUL-terminated; de-escaped strings are copies.
 *
 * Nothing here raises: a reply that is not JSON, or not of the expected
 * shape, comes back to the caller as a MakiniJsonFailure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "makini_fdw.h"
#include "json.h"
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
	bool		unmapped;		/* only the map's hidden updatedAt reads it:
								 * it still goes to the star column */
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
	MakiniJsonReader reader;
	MakiniColumnMap *map;
	PathTrie   *trie;
	MakiniPage *page;
	bool		single;			/* "data" is one object, not an array */
	bool		seen_data;

	Frame	   *frames;
	int			nframes;
	int			maxframes;
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
} PageParseState;

/* what the record reader does with an object or array that starts */
typedef enum Step
{
	STEP_FAILED = 0,			/* a reply of the wrong shape */
	STEP_ENTER,					/* follow its contents */
	STEP_SKIP					/* leave it to the reader to skip */
} Step;

/*
 * Records a reply of the wrong shape at the current token; returns false
 * (STEP_FAILED), for "return shape_failure(...)".
 */
static bool
shape_failure(PageParseState *st, const char *detail)
{
	makini_json_fail(&st->reader, st->reader.start, detail);
	return false;
}

/* PG_INT64_MAX as text, for messages */
#define INT64_FORMAT_MAX_TEXT "9223372036854775807"

/* records parsed between two CHECK_FOR_INTERRUPTS() */
#define MAKINI_CFI_EVERY	1024

/* Is the name of length len the literal lit? */
#define NAME_IS(name, len, lit) \
	((len) == sizeof(lit) - 1 && memcmp((name), (lit), sizeof(lit) - 1) == 0)

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
	if (map->track_slot >= 0)
	{
		MakiniColumn *col = &map->cols[map->ncols];
		const char *name = strVal(linitial(col->path));
		bool		mapped = trie_child(trie->record, name, false) != NULL;

		trie_add_column(trie->record, col);
		trie_child(trie->record, name, false)->unmapped = !mapped;
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
	if (child == NULL || child->unmapped)
		f->cur_star = (f->kind == FRAME_RECORD || f->kind == FRAME_ELEMENT) &&
			f->node->star_column >= 0 && !makini_model_is_collection(name, len);
	if (child == NULL)
		return;
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
	Frame	   *f = &st->frames[st->nframes - 1];

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

/* Event: an object starts; records and mapped objects are entered. */
static Step
on_object_start(PageParseState *st)
{
	FrameKind	kind = st->pending;

	if (st->nframes > 0 && st->pending_skip)
		return STEP_SKIP;
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
		return shape_failure(st, psprintf("\"%s\" is an object where an array was expected",
										  kind == FRAME_DATA ? "data" : st->map->expand));
	return STEP_ENTER;
}

/* Event: an array starts; the data and expand arrays are entered. */
static Step
on_array_start(PageParseState *st)
{
	if (st->nframes == 0)
		return shape_failure(st, "the reply is a JSON array, not an object");
	if (st->pending_skip)
		return STEP_SKIP;
	st->pending_skip = true;
	if (st->pending == FRAME_DATA)
		push_frame(st, FRAME_DATA, NULL);
	else if (st->pending == FRAME_EXPAND)
		push_frame(st, FRAME_EXPAND, st->pending_node);
	else if (st->pending == FRAME_RECORD)
		return shape_failure(st, "\"data\" is an array where one record was expected");
	else
		return STEP_SKIP;
	return STEP_ENTER;
}

/* Event: an entered object or array ends. */
static void
on_container_end(PageParseState *st)
{
	Frame	   *f = &st->frames[st->nframes - 1];

	if (f->kind == FRAME_RECORD || f->kind == FRAME_ELEMENT)
		end_record(st, f);
	st->nframes--;
}

/* Event: an array element starts; records and elements open here. */
static void
on_element_start(PageParseState *st)
{
	Frame	   *f = &st->frames[st->nframes - 1];

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
static bool
paging_scalar(PageParseState *st, Frame *f, char *token, int len,
			  MakiniJsonToken type)
{
	const char *name = f->cur_name;
	int			namelen = f->cur_namelen;
	int64		n;

	if (name == NULL)
		return true;
	if (f->kind == FRAME_LINKS && NAME_IS(name, namelen, "next"))
	{
		st->page->has_next = (type == MAKINI_JSON_STRING);
		st->page->next_link = st->page->has_next ? pnstrdup(token, len) : NULL;
	}
	else if (f->kind == FRAME_META && type == MAKINI_JSON_NUMBER &&
			 (NAME_IS(name, namelen, "total") ||
			  NAME_IS(name, namelen, "current_page") ||
			  NAME_IS(name, namelen, "last_page")))
	{
		bool		total = NAME_IS(name, namelen, "total");

		if (!meta_integer(token, len, total ? PG_INT64_MAX : PG_INT32_MAX, &n))
			return shape_failure(st, psprintf("meta.%.*s is %.*s, not a whole number between 0 and %s.",
											  namelen, name, Min(len, 40), token,
											  total ? INT64_FORMAT_MAX_TEXT : "2147483647"));
		if (total)
			st->page->total = n;
		else if (NAME_IS(name, namelen, "current_page"))
			st->page->current_page = (int) n;
		else
			st->page->last_page = (int) n;
	}
	return true;
}

/*
 * Event: a scalar value, len bytes at token (the de-escaped text of a
 * string, the text of any other token; not necessarily NUL-terminated).
 */
static bool
on_scalar(PageParseState *st, char *token, int len, MakiniJsonToken type)
{
	Frame	   *f;
	MakiniValueKind kind;

	if (st->nframes == 0)
		return shape_failure(st, "the reply is a JSON scalar, not an object");
	f = &st->frames[st->nframes - 1];
	if (f->kind == FRAME_LINKS || f->kind == FRAME_META)
		return paging_scalar(st, f, token, len, type);
	if (f->kind == FRAME_DATA)
		return shape_failure(st, "an element of \"data\" is not an object");
	if (f->kind == FRAME_TOP && f->cur_name &&
		NAME_IS(f->cur_name, f->cur_namelen, "data") && type != MAKINI_JSON_NULL)
		return shape_failure(st, "\"data\" is a scalar");
	if (f->cur_is_key && type != MAKINI_JSON_NULL)
	{
		if (f->kind == FRAME_RECORD)
			st->record_key = pnstrdup(token, len);
		else
			st->element_key = pnstrdup(token, len);
	}
	if (f->cur == NULL || !f->cur->scalar)
		return true;
	switch (type)
	{
		case MAKINI_JSON_STRING:
			kind = MAKINI_VALUE_STRING;
			break;
		case MAKINI_JSON_NUMBER:
			kind = MAKINI_VALUE_NUMBER;
			break;
		case MAKINI_JSON_TRUE:
			kind = MAKINI_VALUE_TRUE;
			break;
		case MAKINI_JSON_FALSE:
			kind = MAKINI_VALUE_FALSE;
			break;
		default:
			return true;		/* null: the row already holds NULL */
	}
	store_value(st, f->cur, token, len, kind, STORE_SCALAR);
	return true;
}

/* ------------------------------------------------------------------------
 * The record reader: json.c's tokens turned into the events above.
 * ------------------------------------------------------------------------
 */

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
 * The text of a string token the events use: a slice of the reply when it
 * has no escapes, else a de-escaped copy; false if it has an escape that
 * is no character.
 */
static inline bool
string_text(PageParseState *st, char *str, int len, bool escaped,
			char **text, int *textlen)
{
	*text = str;
	*textlen = len;
	if (!escaped)
		return true;
	if (!makini_json_unescape(&st->reader, str, len, true, text, textlen))
		return false;
	*text = pnstrdup(*text, *textlen);
	return true;
}

/* A value starts: the events of its field, or of its array element. */
static inline bool
value_begins(PageParseState *st)
{
	MakiniJsonReader *r = &st->reader;
	char	   *name;
	int			len;

	if (r->member)
	{
		if (!string_text(st, r->name, r->namelen, r->name_escaped, &name, &len))
			return false;
		on_field_start(st, name, len, r->start);
	}
	else if (st->nframes > 0)
		on_element_start(st);
	return true;
}

/* A scalar value: its event (strings de-escaped if they are used). */
static inline bool
scalar_value(PageParseState *st, MakiniJsonToken tok)
{
	MakiniJsonReader *r = &st->reader;
	char	   *text = r->str;
	int			len = r->len;

	if (tok == MAKINI_JSON_STRING && !scalar_ignored(st) &&
		!string_text(st, r->str, r->len, r->escaped, &text, &len))
		return false;
	return on_scalar(st, text, len, tok);
}

/*
 * Reads the reply token by token into the page; false if it is not JSON
 * or not of the expected shape (see st->reader.failure).
 */
static bool
read_reply(PageParseState *st)
{
	MakiniJsonReader *r = &st->reader;

	for (;;)
	{
		MakiniJsonToken tok = makini_json_next(r);
		Step		step;

		switch (tok)
		{
			case MAKINI_JSON_FAILED:
				return false;
			case MAKINI_JSON_END:
				return true;
			case MAKINI_JSON_OBJECT_END:
			case MAKINI_JSON_ARRAY_END:
				on_container_end(st);
				if (r->member)
					on_field_end(st, false, r->p);
				continue;
			default:
				break;
		}
		if (!value_begins(st))
			return false;
		if (tok == MAKINI_JSON_OBJECT_START)
			step = on_object_start(st);
		else if (tok == MAKINI_JSON_ARRAY_START)
			step = on_array_start(st);
		else
		{
			if (!scalar_value(st, tok))
				return false;
			if (r->member)
				on_field_end(st, tok == MAKINI_JSON_NULL, r->p);
			continue;
		}
		if (step == STEP_FAILED)
			return false;
		if (step == STEP_SKIP)
		{
			if (!makini_json_skip(r))
				return false;
			if (r->member)
				on_field_end(st, false, r->p);
		}
	}
}

/* ------------------------------------------------------------------------
 * Pages
 * ------------------------------------------------------------------------
 */

/* A fresh parse state and empty page. */
static void
init_parse(PageParseState *st, MakiniColumnMap *map, bool single_record,
		   char *body, size_t len)
{
	MakiniPage *page = palloc0(sizeof(MakiniPage));

	memset(st, 0, sizeof(PageParseState));
	makini_json_init(&st->reader, body, len);
	st->map = map;
	st->trie = (PathTrie *) map->parser;
	st->page = page;
	st->single = single_record;
	st->maxframes = 16;
	st->frames = palloc(sizeof(Frame) * st->maxframes);
	st->pending_skip = true;
	st->rows_alloc = Max(64, st->trie->rows_hint);
	st->cur_row = -1;
	st->parent_vals = palloc0(sizeof(MakiniValue) * Max(map->nslots, 1));
	initStringInfo(&st->star);

	page->ncols = map->nslots;
	page->total = -1;
	page->values = palloc0(sizeof(MakiniValue) * st->rows_alloc * Max(map->nslots, 1));
	page->row_keys = palloc(sizeof(char *) * st->rows_alloc);
	page->row_parent_keys = palloc(sizeof(char *) * st->rows_alloc);
}

/*
 * The failure of a reply that is not valid UTF-8 anywhere: that is said
 * first, wherever the reader stopped.
 */
static void
check_utf8(MakiniJsonFailure *failure, char *body, size_t len)
{
	int			valid = pg_encoding_verifymbstr(PG_UTF8, body, (int) len);

	if (valid < (int) len)
	{
		failure->offset = valid;
		failure->detail = psprintf("The reply is not valid UTF-8 at byte %d.", valid);
	}
}

/*
 * Parses one reply (a list page, or with single_record an item reply
 * {"data": {...}}) into rows of map's columns.  Everything is allocated in
 * the current memory context; the body (NUL-terminated at len) must stay
 * valid, and unchanged, as long as the page.  Returns NULL if the reply is
 * not JSON or not of the expected shape, with *failure saying why.
 */
MakiniPage *
makini_parse_page(MakiniColumnMap *map, char *body, size_t len,
				  bool single_record, MakiniJsonFailure *failure)
{
	PageParseState st;

	failure->offset = -1;
	failure->detail = NULL;
	if (len > PG_INT32_MAX)
	{
		failure->detail = "The reply is larger than 2 GB.";
		return NULL;
	}
	if (map->parser == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(map));

		map->parser = build_trie(map);
		MemoryContextSwitchTo(old);
	}

	init_parse(&st, map, single_record, body, len);
	if (!read_reply(&st))
	{
		*failure = st.reader.failure;
		check_utf8(failure, body, len);
		return NULL;
	}
	if (!st.seen_data)
	{
		failure->detail = "The reply has no \"data\" member.";
		return NULL;
	}
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
	MakiniJsonReader reader;
	int			npaths;
	const char *const *paths;
	char	  **values;
	StringInfoData path;		/* dotted path of the current field */
	int		   *saved_len;		/* path length before each field, by level */
	char	  **value_start;	/* where each level's object value starts */
} ExtractState;

/* Index of the wanted path equal to the current one, or -1. */
static int
extract_match(ExtractState *es)
{
	for (int i = 0; i < es->npaths; i++)
		if (strcmp(es->paths[i], es->path.data) == 0)
			return i;
	return -1;
}

/* A field starts at level: the current path gets its name. */
static void
extract_field_start(ExtractState *es, int level)
{
	MakiniJsonReader *r = &es->reader;
	char	   *name;
	int			len;

	es->saved_len[level] = es->path.len;
	if (es->path.len > 0)
		appendStringInfoChar(&es->path, '.');
	makini_json_unescape(r, r->name, r->namelen, false, &name, &len);
	appendBinaryStringInfo(&es->path, name, len);
}

/*
 * A field at level ends; a wanted one keeps its value: a scalar's text
 * (the last one wins), raw JSON from start to the reader's position for an
 * object or array (the first one wins).
 */
static void
extract_field_end(ExtractState *es, int level, MakiniJsonToken tok, char *start)
{
	MakiniJsonReader *r = &es->reader;
	int			i = extract_match(es);
	char	   *text;
	int			len;

	if (i >= 0 && tok == MAKINI_JSON_STRING)
	{
		makini_json_unescape(r, r->str, r->len, false, &text, &len);
		es->values[i] = pnstrdup(text, len);
	}
	else if (i >= 0 && (tok == MAKINI_JSON_OBJECT_END || tok == MAKINI_JSON_ARRAY_START))
	{
		if (es->values[i] == NULL)
			es->values[i] = pnstrdup(start, r->p - start);
	}
	else if (i >= 0 && tok != MAKINI_JSON_NULL)
		es->values[i] = pnstrdup(r->str, r->len);
	es->path.len = es->saved_len[level];
	es->path.data[es->path.len] = '\0';
}

/*
 * Follows the fields of a small document's objects (arrays are skipped:
 * nothing inside one matches); false if it is not valid JSON.
 */
static bool
extract_fields(ExtractState *es)
{
	MakiniJsonReader *r = &es->reader;

	for (;;)
	{
		MakiniJsonToken tok = makini_json_next(r);
		char	   *start = r->start;
		int			level = r->depth;

		if (tok == MAKINI_JSON_FAILED)
			return false;
		if (tok == MAKINI_JSON_END)
			return true;
		if (tok == MAKINI_JSON_OBJECT_START || tok == MAKINI_JSON_ARRAY_START)
			level--;
		if (!r->member)
		{
			if (tok == MAKINI_JSON_ARRAY_START && !makini_json_skip(r))
				return false;
			continue;
		}
		if (tok == MAKINI_JSON_OBJECT_END)
			start = es->value_start[level];
		else
			extract_field_start(es, level);
		if (tok == MAKINI_JSON_OBJECT_START)
		{
			es->value_start[level] = start;
			continue;
		}
		if (tok == MAKINI_JSON_ARRAY_START && !makini_json_skip(r))
			return false;
		extract_field_end(es, level, tok, start);
	}
}

/*
 * Finds the values at the given dotted paths of a small JSON document:
 * values[i] is the scalar's text (raw JSON for an object or array) or NULL,
 * strings de-escaped into UTF-8.  Returns false if the body is not valid
 * JSON.  Arrays are not entered.
 */
bool
makini_json_extract(const char *body, size_t len, int npaths,
					const char *const *paths, char **values)
{
	ExtractState es;

	for (int i = 0; i < npaths; i++)
		values[i] = NULL;
	if (body == NULL || len == 0 || len > PG_INT32_MAX)
		return false;

	memset(&es, 0, sizeof(es));
	makini_json_init(&es.reader, pnstrdup(body, len), len);
	es.npaths = npaths;
	es.paths = paths;
	es.values = values;
	initStringInfo(&es.path);
	/* nesting takes at least two bytes a level */
	es.saved_len = palloc(sizeof(int) * (len / 2 + 2));
	es.value_start = palloc(sizeof(char *) * (len / 2 + 2));

	if (!extract_fields(&es))
	{
		for (int i = 0; i < npaths; i++)
			values[i] = NULL;
		return false;
	}
	return true;
}
