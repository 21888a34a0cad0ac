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

uint8		makini_json_char_class[256];

/* a token quoted in a message is cut to this many bytes */
#define TOKEN_SHOWN	40

/* Fills the character class table once per backend. */
static void
init_char_class(void)
{
	if (makini_json_char_class['a'] != 0)
		return;
	for (int c = 0; c < 256; c++)
	{
		uint8		cc = 0;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
			cc |= MAKINI_CC_PLAIN;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c >= 0x80)
			cc |= MAKINI_CC_ALNUM;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			cc |= MAKINI_CC_WS;
		makini_json_char_class[c] = cc;
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

	while (makini_json_char_class[(uint8) s[n]] & MAKINI_CC_ALNUM)
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
MakiniJsonToken
makini_json_fail_expected(MakiniJsonReader *r, const char *s,
						  const char *expected)
{
	if (s >= r->end)
		fail_at(r, s, "The input string ended unexpectedly.");
	else if ((*s == '\0' || strchr("{}[],:\"-", *s) == NULL) &&
			 !(makini_json_char_class[(uint8) *s] & MAKINI_CC_ALNUM))
		makini_json_fail_token(r, s);
	else
		fail_at(r, s, psprintf("Expected %s, but found \"%s\".",
							   expected, token_text(s)));
	return MAKINI_JSON_FAILED;
}

/* A failure at s: a token that is not JSON (a malformed number, ...). */
MakiniJsonToken
makini_json_fail_token(MakiniJsonReader *r, const char *s)
{
	fail_at(r, s, psprintf("Token \"%s\" is invalid.", token_text(s)));
	return MAKINI_JSON_FAILED;
}

/* Makes room for more nesting on the reader's stack. */
void
makini_json_grow(MakiniJsonReader *r)
{
	r->maxdepth *= 2;
	r->stack = repalloc(r->stack, r->maxdepth);
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
 * A byte of a string that is not plain ASCII, at s: an escape or a UTF-8
 * character is checked and passed; the end of the string is not here.
 * Returns where the string goes on, or NULL after recording a failure.
 */
unsigned char *
makini_json_string_special(MakiniJsonReader *r, unsigned char *s)
{
	int			l;

	if (*s == '\\')
		l = check_escape(r, (char *) s);
	else if (*s >= 0x80)
	{
		l = utf8_char_len(r, s);
		if (l == 0)
			fail_at(r, (char *) s, NULL);
	}
	else if (s >= (unsigned char *) r->end)
		l = fail_at(r, (char *) s, "The input string ended unexpectedly.");
	else
		l = fail_at(r, (char *) s,
					psprintf("Character with value 0x%02x must be escaped.", *s));
	return l == 0 ? NULL : s + l;
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
