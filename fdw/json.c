/*-------------------------------------------------------------------------
 *
 * json.c
 *		  makini_fdw's JSON tokenizer (see json.h): one pass over a reply's
 *		  bytes, one token at a time.
 *
 * The reply ends in a NUL, so every look-ahead stops there.  Strings are
 * checked but not copied: a token points into the reply, and only the
 * strings a caller uses are de-escaped (makini_json_unescape).  Profiles of
 * PostgreSQL 15's own parser showed its lexer, which de-escapes every
 * string byte by byte into a StringInfo, taking about half of a scan's
 * time; PostgreSQL's parser is the oracle this one is tested against
 * (sql-tests/test_differential.sh).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "makini_fdw.h"
#include "json.h"

#define CC_PLAIN	0x01		/* string byte needing no attention */
#define CC_ALNUM	0x02		/* continues a token (JSON_ALPHANUMERIC_CHAR) */
#define CC_WS		0x04		/* whitespace between tokens */

static uint8 char_class[256];

/* a token quoted in a message is cut to this many bytes */
#define TOKEN_SHOWN	40

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

/*
 * Starts reading the len bytes at body (body[len] must be '\0').  Memory
 * comes from the current context.
 */
void
makini_json_init(MakiniJsonReader *r, char *body, size_t len)
{
	init_char_class();
	memset(r, 0, sizeof(MakiniJsonReader));
	r->body = body;
	r->end = body + len;
	r->p = body;
	r->maxdepth = 32;
	r->stack = palloc(r->maxdepth);
	r->failure.offset = -1;
	initStringInfo(&r->scratch);
}

/*
 * Records a failure found at byte at: what is a sentence saying what is
 * wrong there, NULL for bytes that are not UTF-8.  Returns false, for
 * "return makini_json_fail(...)" in the readers below.
 */
static bool
fail_at(MakiniJsonReader *r, const char *at, const char *what)
{
	r->failure.offset = at - r->body;
	if (what == NULL)
		r->failure.detail = psprintf("The reply is not valid UTF-8 at byte " INT64_FORMAT ".",
									 r->failure.offset);
	else
		r->failure.detail = psprintf("The reply is not valid JSON at byte " INT64_FORMAT ": %s",
									 r->failure.offset, what);
	return false;
}

/*
 * Records a failure the caller found at byte at (a reply of the wrong
 * shape): detail is the whole sentence.
 */
void
makini_json_fail(MakiniJsonReader *r, const char *at, const char *detail)
{
	r->failure.offset = at - r->body;
	r->failure.detail = pstrdup(detail);
}

/*
 * The token at s as a message quotes it: its letters and digits, or its
 * one byte, cut to TOKEN_SHOWN bytes on a character boundary.
 */
static char *
token_text(const char *s)
{
	int			n = 0;

	while (char_class[(uint8) s[n]] & CC_ALNUM)
		n++;
	if (n == 0)
		n = 1;
	n = pg_encoding_mbcliplen(PG_UTF8, s, n, TOKEN_SHOWN);
	return pnstrdup(s, n);
}

/*
 * A failure where a token of some kind was expected at s: the end of the
 * input, a token that is not JSON, or another token than the expected.
 */
static bool
fail_expected(MakiniJsonReader *r, const char *s, const char *expected)
{
	if (s >= r->end)
		return fail_at(r, s, "The input string ended unexpectedly.");
	if ((*s == '\0' || strchr("{}[],:\"-", *s) == NULL) &&
		!(char_class[(uint8) *s] & CC_ALNUM))
		return fail_at(r, s, psprintf("Token \"%s\" is invalid.", token_text(s)));
	return fail_at(r, s, psprintf("Expected %s, but found \"%s\".",
								  expected, token_text(s)));
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
utf8_char_len(MakiniJsonReader *r, unsigned char *s)
{
	int			l = pg_utf_mblen(s);

	if (l < 2 || s + l > (unsigned char *) r->end || !pg_utf8_islegal(s, l))
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
 * Checks the escape at s (a backslash): its length, or 0 after recording
 * the failure.
 */
static int
check_escape(MakiniJsonReader *r, char *s)
{
	if (s[1] == 'u')
	{
		for (int i = 2; i < 6; i++)
			if (hex_value(s[i]) < 0)
				return fail_at(r, s, "\"\\u\" must be followed by four hexadecimal digits.");
		return 6;
	}
	if (s[1] != '\0' && strchr("\"\\/bfnrt", s[1]) != NULL)
		return 2;
	if (s + 1 >= r->end)
		return fail_at(r, s, "The input string ended unexpectedly.");
	return fail_at(r, s, psprintf("Escape sequence \"\\%s\" is invalid.",
								  token_text(s + 1)));
}

/*
 * The string whose opening quote is at r->p: checks it and points *str,
 * *len at its contents; *escaped tells whether it has escapes.  Moves past
 * the closing quote.
 */
static inline bool
read_string(MakiniJsonReader *r, char **str, int *len, bool *escaped)
{
	unsigned char *start = (unsigned char *) r->p + 1;
	unsigned char *s = start;

	*escaped = false;
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
		{
			int			l = check_escape(r, (char *) s);

			if (l == 0)
				return false;
			*escaped = true;
			s += l;
		}
		else if (*s >= 0x80)
		{
			int			l = utf8_char_len(r, s);

			if (l == 0)
				return fail_at(r, (char *) s, NULL);
			s += l;
		}
		else if (s >= (unsigned char *) r->end)
			return fail_at(r, (char *) s, "The input string ended unexpectedly.");
		else
			return fail_at(r, (char *) s,
						   psprintf("Character with value 0x%02x must be escaped.", *s));
	}
	*str = (char *) start;
	*len = s - start;
	r->p = (char *) s + 1;
	return true;
}

/* The number at r->p, in PostgreSQL's grammar. */
static inline bool
read_number(MakiniJsonReader *r)
{
	char	   *s = r->p;

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
	r->str = r->p;
	r->len = s - r->p;
	r->p = s;
	return true;
}

/* The keyword word (n bytes) at r->p, not followed by a token character. */
static inline bool
read_keyword(MakiniJsonReader *r, const char *word, int n)
{
	for (int i = 0; i < n; i++)
		if (r->p[i] != word[i])
			return false;
	if (char_class[(uint8) r->p[n]] & CC_ALNUM)
		return false;
	r->str = r->p;
	r->len = n;
	r->p += n;
	return true;
}

/* Opens a container ('{' or '[') at r->p. */
static inline void
open_container(MakiniJsonReader *r, char open)
{
	if (r->depth >= r->maxdepth)
	{
		r->maxdepth *= 2;
		r->stack = repalloc(r->stack, r->maxdepth);
	}
	r->stack[r->depth++] = open;
	r->first = true;
	r->p++;
}

/* Closes the innermost container, whose closing bracket is at r->p. */
static inline void
close_container(MakiniJsonReader *r)
{
	r->p++;
	r->depth--;
	r->first = false;
	r->member = (r->depth > 0 && r->stack[r->depth - 1] == '{');
	r->done = (r->depth == 0);
}

/* The value at r->p: its token, or MAKINI_JSON_FAILED. */
static inline MakiniJsonToken
read_value(MakiniJsonReader *r)
{
	MakiniJsonToken tok;
	char	   *s = r->p;

	r->start = s;
	switch (*s)
	{
		case '{':
			open_container(r, '{');
			return MAKINI_JSON_OBJECT_START;
		case '[':
			open_container(r, '[');
			return MAKINI_JSON_ARRAY_START;
		case '"':
			if (!read_string(r, &r->str, &r->len, &r->escaped))
				return MAKINI_JSON_FAILED;
			tok = MAKINI_JSON_STRING;
			break;
		case 't':
			tok = read_keyword(r, "true", 4) ? MAKINI_JSON_TRUE : MAKINI_JSON_FAILED;
			break;
		case 'f':
			tok = read_keyword(r, "false", 5) ? MAKINI_JSON_FALSE : MAKINI_JSON_FAILED;
			break;
		case 'n':
			tok = read_keyword(r, "null", 4) ? MAKINI_JSON_NULL : MAKINI_JSON_FAILED;
			break;
		default:
			if ((*s >= '0' && *s <= '9') || *s == '-')
				tok = read_number(r) ? MAKINI_JSON_NUMBER : MAKINI_JSON_FAILED;
			else
				return fail_expected(r, s, "JSON value");
			break;
	}
	if (tok == MAKINI_JSON_FAILED && r->failure.detail == NULL)
		fail_at(r, s, psprintf("Token \"%s\" is invalid.", token_text(s)));
	r->done = (r->depth == 0);
	return tok;
}

/*
 * After an item of the open container: a ',' and the next item's start, or
 * the container's end.  Returns the end's token, or MAKINI_JSON_STRING to
 * go on with the next item, or MAKINI_JSON_FAILED.
 */
static inline MakiniJsonToken
after_item(MakiniJsonReader *r, char open)
{
	char		close = (open == '{') ? '}' : ']';

	r->p = skip_ws(r->p);
	if (*r->p == ',' && !r->first)
	{
		r->p = skip_ws(r->p + 1);
		return MAKINI_JSON_STRING;
	}
	if (*r->p == close)
	{
		close_container(r);
		return open == '{' ? MAKINI_JSON_OBJECT_END : MAKINI_JSON_ARRAY_END;
	}
	if (r->first)
		return MAKINI_JSON_STRING;
	fail_expected(r, r->p, open == '{' ? "\",\" or \"}\"" : "\",\" or \"]\"");
	return MAKINI_JSON_FAILED;
}

/*
 * The next token.  For a value inside an object, r->name is its field's
 * name; a container's end tells in r->member whether the container was a
 * field's value.
 */
MakiniJsonToken
makini_json_next(MakiniJsonReader *r)
{
	char		open;
	MakiniJsonToken tok;

	if (r->depth == 0)
	{
		r->p = skip_ws(r->p);
		if (!r->done)
		{
			r->member = false;
			return read_value(r);
		}
		if (r->p < r->end)
			return fail_expected(r, r->p, "end of input");
		return MAKINI_JSON_END;
	}
	open = r->stack[r->depth - 1];
	tok = after_item(r, open);
	if (tok != MAKINI_JSON_STRING)
		return tok;
	r->first = false;
	r->member = (open == '{');
	if (open == '{')
	{
		if (*r->p != '"')
			return fail_expected(r, r->p, "string");
		if (!read_string(r, &r->name, &r->namelen, &r->name_escaped))
			return MAKINI_JSON_FAILED;
		r->p = skip_ws(r->p);
		if (*r->p != ':')
			return fail_expected(r, r->p, "\":\"");
		r->p = skip_ws(r->p + 1);
	}
	return read_value(r);
}

/*
 * Reads past the rest of the container whose start was the last token,
 * checking it: its contents are of no interest.
 */
bool
makini_json_skip(MakiniJsonReader *r)
{
	int			depth = r->depth;

	while (r->depth >= depth)
		if (makini_json_next(r) == MAKINI_JSON_FAILED)
			return false;
	return true;
}

/*
 * De-escapes the contents of a string (len bytes at s, checked by the
 * reader) into UTF-8, whatever the database's encoding (convert.c converts
 * values).  *out is the scratch buffer's copy, valid until the next call.
 * With strict, U+0000 and an unpaired surrogate are a failure, as in
 * PostgreSQL's lexer; without, they become U+FFFD.
 */
bool
makini_json_unescape(MakiniJsonReader *r, const char *s, int len,
					 bool strict, char **out, int *outlen)
{
	StringInfo	buf = &r->scratch;
	const char *end = s + len;
	int			hi = -1;		/* pending high surrogate */

	resetStringInfo(buf);
	while (s < end)
	{
		const char *k;
		int			ch = 0;
		unsigned char u[4];

		if (*s != '\\' || s[1] != 'u')
		{
			if (hi != -1 && strict)
				return fail_at(r, s, "Unicode low surrogate must follow a high surrogate.");
			if (hi != -1)
				appendStringInfoString(buf, "\xEF\xBF\xBD");
			hi = -1;
			k = (*s == '\\') ? strchr("b\bf\fn\nr\rt\t", s[1]) : NULL;
			appendStringInfoChar(buf, k ? k[1] : (*s == '\\') ? s[1] : *s);
			s += (*s == '\\') ? 2 : 1;
			continue;
		}
		for (int i = 2; i < 6; i++)
			ch = ch * 16 + hex_value(s[i]);
		if (ch >= 0xD800 && ch <= 0xDBFF && hi == -1)
		{
			hi = ch;			/* a pair's first half: the second follows */
			s += 6;
			continue;
		}
		if (hi != -1 && ch >= 0xDC00 && ch <= 0xDFFF)
			ch = 0x10000 + ((hi - 0xD800) << 10) + (ch - 0xDC00);
		else if (strict && (hi != -1 || ch == 0 || (ch >= 0xDC00 && ch <= 0xDFFF)))
			return fail_at(r, s, hi != -1 && ch >= 0xD800 && ch <= 0xDBFF ?
						   "Unicode high surrogate must not follow a high surrogate." :
						   ch == 0 ? "\\u0000 cannot be converted to text." :
						   "Unicode low surrogate must follow a high surrogate.");
		else if (hi != -1 || ch == 0 || (ch >= 0xD800 && ch <= 0xDFFF))
			ch = 0xFFFD;
		hi = -1;
		s += 6;
		unicode_to_utf8((pg_wchar) ch, u);
		appendBinaryStringInfo(buf, (char *) u, pg_utf_mblen(u));
	}
	if (hi != -1 && strict)
		return fail_at(r, s, "Unicode low surrogate must follow a high surrogate.");
	if (hi != -1)
		appendStringInfoString(buf, "\xEF\xBF\xBD");
	*out = buf->data;
	*outlen = buf->len;
	return true;
}
