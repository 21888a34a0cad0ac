/*-------------------------------------------------------------------------
 *
 * page.c
 *		  One streaming pass over a Makini reply with PostgreSQL's own JSON
 *		  parser (common/jsonapi.h), routing each field of each record
 *		  straight to the column that maps it.
 *
 * No DOM of the page is built: the semantic callbacks follow a small stack
 * of "interesting" frames (the top object, the data array, a record, a
 * mapped nested object, the expand array and its elements); every other
 * subtree is skipped with a depth counter.  Values are recorded as
 * MakiniValue (pointer + length + kind) in the current memory context,
 * which the caller resets per page.  Objects and arrays, and every value of
 * a json/jsonb column, are kept as the raw JSON text of the reply.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "makini_fdw.h"

/* fields of a record that are embedded collections, never custom fields */
static const char *const embedded_collections[] = {"lineItems", NULL};

/*
 * A node of the field-path trie: one field name at one level, the columns
 * whose path ends here and the nodes below it.
 */
typedef struct PathNode
{
	const char *name;
	int			namelen;
	int			ncolumns;		/* needed columns whose path ends here */
	int		   *columns;
	bool		raw;			/* some such column wants the raw JSON text */
	int			nchildren;
	struct PathNode **children;
	int			lastmatch;		/* child matched last time: fields tend to
								 * come in the same order in every record */
	struct PathNode *element;	/* the expand array: root for its elements */
	int			star_column;	/* column gathering unmapped fields, or -1 */
} PathNode;

/* the parser's lookup structure, built once per column map */
typedef struct PathTrie
{
	PathNode   *record;			/* fields of a record */
	bool		expand;			/* rows come from the expand array */
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
	char	   *cur_name;		/* current field name */
	bool		cur_is_key;		/* current field is the record's "key" */
	bool		cur_star;		/* current field goes to the star column */
} Frame;

typedef struct ParseState
{
	JsonLexContext *lex;
	MakiniColumnMap *map;
	PathTrie   *trie;
	const MakiniReplyContext *ctx;
	MakiniPage *page;
	bool		single;			/* "data" is one object, not an array */
	bool		seen_data;

	Frame	   *frames;
	int			nframes;
	int			maxframes;
	int			skip_depth;		/* >0 while inside a skipped subtree */
	FrameKind	pending;		/* what the next object/array start opens */
	PathNode   *pending_node;
	bool		pending_skip;

	int			rows_alloc;
	int			cur_row;		/* row receiving values, -1: parent values */
	int			record_first_row;	/* expand: first row of this record */
	MakiniValue *parent_vals;	/* expand: the record's own values */
	char	   *record_key;
	char	   *element_key;
	StringInfoData star;		/* fields gathered for the star column */
	int			star_count;
} ParseState;

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

/* Attaches column i to the node at the end of path below root. */
static void
trie_add_column(PathNode *root, MakiniColumn *col, int i)
{
	PathNode   *node = root;
	ListCell   *lc;

	foreach(lc, col->path)
		node = trie_child(node, strVal(lfirst(lc)), true);
	if (!col->needed)
		return;
	node->columns = node->ncolumns == 0 ? palloc(sizeof(int)) :
		repalloc(node->columns, sizeof(int) * (node->ncolumns + 1));
	node->columns[node->ncolumns++] = i;
	if (col->conv == MAKINI_CONV_JSON || col->conv == MAKINI_CONV_JSONB)
		node->raw = true;
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
				root->star_column = i;
			continue;
		}
		trie_add_column(root, col, i);
	}
	return trie;
}

/* Looks a field name up among node's children, trying the expected one first. */
static PathNode *
trie_lookup(PathNode *node, const char *name)
{
	int			len;
	int			n = node->nchildren;

	if (n == 0)
		return NULL;
	len = strlen(name);
	for (int k = 0; k < n; k++)
	{
		int			i = (node->lastmatch + k) % n;
		PathNode   *child = node->children[i];

		if (child->namelen == len && memcmp(child->name, name, len) == 0)
		{
			node->lastmatch = (i + 1) % n;
			return child;
		}
	}
	return NULL;
}

/* Is name one of the embedded collections left out of custom fields? */
static bool
is_embedded_collection(const char *name)
{
	for (int i = 0; embedded_collections[i]; i++)
		if (strcmp(name, embedded_collections[i]) == 0)
			return true;
	return false;
}

/* The values of the row (or of the parent record) currently being filled. */
static inline MakiniValue *
target_values(ParseState *st)
{
	if (st->cur_row < 0)
		return st->parent_vals;
	return &st->page->values[(Size) st->cur_row * st->page->ncols];
}

/* Starts a new, all-NULL row and returns its index. */
static int
new_row(ParseState *st)
{
	MakiniPage *page = st->page;

	if (page->nrows >= st->rows_alloc)
	{
		int			n = st->rows_alloc * 2;

		page->values = repalloc_huge(page->values,
									 sizeof(MakiniValue) * (Size) n * page->ncols);
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
push_frame(ParseState *st, FrameKind kind, PathNode *node)
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

/* Stores one value into every column of node. */
static void
store_value(ParseState *st, PathNode *node, char *str, int len,
			MakiniValueKind kind)
{
	MakiniValue *vals = target_values(st);

	for (int i = 0; i < node->ncolumns; i++)
	{
		MakiniValue *v = &vals[node->columns[i]];

		v->str = str;
		v->len = len;
		v->kind = kind;
	}
}

/* Decides what the value of a field of frame f will open, and remembers it. */
static void
field_start_in_frame(ParseState *st, Frame *f, char *fname)
{
	PathNode   *child = NULL;

	f->cur_name = fname;
	f->cur_start = st->lex->token_start;
	f->cur_is_key = false;
	f->cur_star = false;
	st->pending_skip = true;

	switch (f->kind)
	{
		case FRAME_TOP:
			if (strcmp(fname, "data") == 0)
			{
				st->seen_data = true;
				st->pending_skip = false;
				st->pending = st->single ? FRAME_RECORD : FRAME_DATA;
			}
			else if (strcmp(fname, "links") == 0)
			{
				st->pending_skip = false;
				st->pending = FRAME_LINKS;
			}
			else if (strcmp(fname, "meta") == 0)
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
			f->cur_is_key = strcmp(fname, "key") == 0;
			/* FALLTHROUGH */
		case FRAME_NODE:
			child = trie_lookup(f->node, fname);
			break;
		default:
			return;
	}

	f->cur = child;
	if (child == NULL)
	{
		f->cur_star = (f->kind == FRAME_RECORD || f->kind == FRAME_ELEMENT) &&
			f->node->star_column >= 0 && !is_embedded_collection(fname);
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

/* Semantic callback: a field starts. */
static void
cb_field_start(void *state, char *fname, bool isnull)
{
	ParseState *st = (ParseState *) state;

	if (st->skip_depth > 0)
		return;
	field_start_in_frame(st, &st->frames[st->nframes - 1], fname);
}

/* Appends one field, with its raw JSON text, to the star column's object. */
static void
star_append(ParseState *st, const char *name, char *start, char *end)
{
	appendStringInfoChar(&st->star, st->star_count++ == 0 ? '{' : ',');
	escape_json(&st->star, name);
	appendStringInfoChar(&st->star, ':');
	appendBinaryStringInfo(&st->star, start, end - start);
}

/* Semantic callback: a field ends; raw captures complete here. */
static void
cb_field_end(void *state, char *fname, bool isnull)
{
	ParseState *st = (ParseState *) state;
	Frame	   *f;
	char	   *end;

	if (st->skip_depth > 0)
		return;
	f = &st->frames[st->nframes - 1];
	end = st->lex->prev_token_terminator;
	if (f->cur_star)
		star_append(st, fname, f->cur_start, end);
	else if (f->cur && f->cur->ncolumns > 0 && !isnull &&
			 (f->cur->raw || *f->cur_start == '{' || *f->cur_start == '['))
	{
		int			len = end - f->cur_start;
		char	   *raw = pnstrdup(f->cur_start, len);

		store_value(st, f->cur, raw, len, MAKINI_VALUE_JSON);
	}
	f->cur = NULL;
	f->cur_star = false;
	f->cur_is_key = false;
}

/* Starts a record (kind FRAME_RECORD) or an expand element. */
static void
begin_record(ParseState *st, FrameKind kind, PathNode *node)
{
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
end_record(ParseState *st, Frame *f)
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
			if (st->map->cols[c].parent)
				vals[c] = st->parent_vals[c];
		page->row_parent_keys[r] = st->record_key;
	}
}

/* Semantic callback: an object starts. */
static void
cb_object_start(void *state)
{
	ParseState *st = (ParseState *) state;
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
		makini_bad_reply(st->ctx, "\"%s\" is an object where an array was expected",
						 kind == FRAME_DATA ? "data" : st->map->expand);
}

/* Semantic callback: an object ends. */
static void
cb_object_end(void *state)
{
	ParseState *st = (ParseState *) state;
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

/* Semantic callback: an array starts. */
static void
cb_array_start(void *state)
{
	ParseState *st = (ParseState *) state;

	if (st->skip_depth > 0 || st->nframes == 0 || st->pending_skip)
	{
		if (st->nframes == 0)
			makini_bad_reply(st->ctx, "the reply is a JSON array, not an object");
		st->skip_depth++;
		return;
	}
	st->pending_skip = true;
	if (st->pending == FRAME_DATA)
		push_frame(st, FRAME_DATA, NULL);
	else if (st->pending == FRAME_EXPAND)
		push_frame(st, FRAME_EXPAND, st->pending_node);
	else if (st->pending == FRAME_RECORD)
		makini_bad_reply(st->ctx, "\"data\" is an array where one record was expected");
	else
		st->skip_depth++;
}

/* Semantic callback: an array ends. */
static void
cb_array_end(void *state)
{
	ParseState *st = (ParseState *) state;

	if (st->skip_depth > 0)
	{
		st->skip_depth--;
		return;
	}
	st->nframes--;
}

/* Semantic callback: an array element starts; records and elements open here. */
static void
cb_element_start(void *state, bool isnull)
{
	ParseState *st = (ParseState *) state;
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

/* Records a scalar of the links or meta object. */
static void
paging_scalar(ParseState *st, Frame *f, char *token, JsonTokenType type)
{
	const char *name = f->cur_name;

	if (name == NULL)
		return;
	if (f->kind == FRAME_LINKS && strcmp(name, "next") == 0)
	{
		st->page->has_next = (type == JSON_TOKEN_STRING);
		st->page->next_link = st->page->has_next ? token : NULL;
	}
	else if (f->kind == FRAME_META && type == JSON_TOKEN_NUMBER)
	{
		int64		n = strtoi64(token, NULL, 10);

		if (strcmp(name, "total") == 0)
			st->page->total = n;
		else if (strcmp(name, "current_page") == 0)
			st->page->current_page = (int) n;
		else if (strcmp(name, "last_page") == 0)
			st->page->last_page = (int) n;
	}
}

/* Semantic callback: a scalar value. */
static void
cb_scalar(void *state, char *token, JsonTokenType type)
{
	ParseState *st = (ParseState *) state;
	Frame	   *f;
	MakiniValueKind kind;

	if (st->skip_depth > 0)
		return;
	if (st->nframes == 0)
		makini_bad_reply(st->ctx, "the reply is a JSON scalar, not an object");
	f = &st->frames[st->nframes - 1];
	if (f->kind == FRAME_LINKS || f->kind == FRAME_META)
	{
		paging_scalar(st, f, token, type);
		return;
	}
	if (f->kind == FRAME_DATA)
		makini_bad_reply(st->ctx, "an element of \"data\" is not an object");
	if (f->kind == FRAME_TOP && f->cur_name && strcmp(f->cur_name, "data") == 0 &&
		type != JSON_TOKEN_NULL)
		makini_bad_reply(st->ctx, "\"data\" is a scalar");
	if (f->cur_is_key && type != JSON_TOKEN_NULL)
	{
		if (f->kind == FRAME_RECORD)
			st->record_key = token;
		else
			st->element_key = token;
	}
	if (f->cur == NULL || f->cur->ncolumns == 0 || f->cur->raw)
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
	store_value(st, f->cur, token, strlen(token), kind);
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
 * Parses one reply (a list page, or with single_record an item reply
 * {"data": {...}}) into rows of map's columns.  Everything is allocated in
 * the current memory context; the body must stay valid as long as the page.
 */
MakiniPage *
makini_parse_page(MakiniColumnMap *map, char *body, size_t len,
				  bool single_record, const MakiniReplyContext *ctx)
{
	ParseState	st;
	JsonSemAction sem;
	MakiniPage *page = palloc0(sizeof(MakiniPage));

	if (len > PG_INT32_MAX)
		makini_bad_reply(ctx, "The reply is larger than 2 GB.");
	if (!pg_verify_mbstr(PG_UTF8, body, (int) len, true))
		makini_bad_reply(ctx, "The reply is not valid UTF-8.");
	if (map->parser == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(map));

		map->parser = build_trie(map);
		MemoryContextSwitchTo(old);
	}

	memset(&st, 0, sizeof(st));
	st.map = map;
	st.trie = (PathTrie *) map->parser;
	st.ctx = ctx;
	st.page = page;
	st.single = single_record;
	st.maxframes = 16;
	st.frames = palloc(sizeof(Frame) * st.maxframes);
	st.pending_skip = true;
	st.rows_alloc = 64;
	st.cur_row = -1;
	st.parent_vals = palloc0(sizeof(MakiniValue) * Max(map->ncols, 1));
	initStringInfo(&st.star);

	page->ncols = map->ncols;
	page->total = -1;
	page->values = palloc0(sizeof(MakiniValue) * st.rows_alloc * Max(map->ncols, 1));
	page->row_keys = palloc(sizeof(char *) * st.rows_alloc);
	page->row_parent_keys = palloc(sizeof(char *) * st.rows_alloc);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = cb_object_start;
	sem.object_end = cb_object_end;
	sem.array_start = cb_array_start;
	sem.array_end = cb_array_end;
	sem.object_field_start = cb_field_start;
	sem.object_field_end = cb_field_end;
	sem.array_element_start = cb_element_start;
	sem.scalar = cb_scalar;

	st.lex = makeJsonLexContextCstringLen(body, (int) len, PG_UTF8, true);
	check_parse(pg_parse_json(st.lex, &sem), st.lex, ctx);
	if (!st.seen_data)
		makini_bad_reply(ctx, "The reply has no \"data\" member.");
	return page;
}

/* ------------------------------------------------------------------------
 * Small documents: error bodies, /api/integrations/current.
 * ------------------------------------------------------------------------
 */
typedef struct ExtractState
{
	JsonLexContext *lex;
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

/* Extract callback: a field starts; extend the current path. */
static void
ex_field_start(void *state, char *fname, bool isnull)
{
	ExtractState *es = (ExtractState *) state;
	int			level = es->lex->lex_level;

	es->saved_len[level] = es->path.len;
	if (es->path.len > 0)
		appendStringInfoChar(&es->path, '.');
	appendStringInfoString(&es->path, fname);
	es->value_start[level] = es->lex->token_start;
}

/* Extract callback: a field ends; objects and arrays are kept as raw text. */
static void
ex_field_end(void *state, char *fname, bool isnull)
{
	ExtractState *es = (ExtractState *) state;
	int			level = es->lex->lex_level;
	int			i = extract_match(es);

	if (i >= 0 && !isnull && es->values[i] == NULL)
	{
		char	   *start = es->value_start[level];

		if (*start == '{' || *start == '[')
			es->values[i] = pnstrdup(start, es->lex->prev_token_terminator - start);
	}
	es->path.len = es->saved_len[level];
	es->path.data[es->path.len] = '\0';
}

/* Extract callback: a scalar at a wanted path. */
static void
ex_scalar(void *state, char *token, JsonTokenType type)
{
	ExtractState *es = (ExtractState *) state;
	int			i = extract_match(es);

	if (i >= 0 && type != JSON_TOKEN_NULL)
		es->values[i] = token;
}

/* Extract callbacks: arrays hide their contents from path matching. */
static void
ex_array_start(void *state)
{
	((ExtractState *) state)->array_depth++;
}

static void
ex_array_end(void *state)
{
	((ExtractState *) state)->array_depth--;
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
	es.lex = makeJsonLexContextCstringLen(pnstrdup(body, len), (int) len,
										  PG_UTF8, true);
	/* nesting takes at least two bytes a level */
	es.saved_len = palloc(sizeof(int) * (len / 2 + 2));
	es.value_start = palloc(sizeof(char *) * (len / 2 + 2));

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &es;
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
