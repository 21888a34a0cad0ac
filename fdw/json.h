/*-------------------------------------------------------------------------
 *
 * json.h
 *		  makini_fdw's JSON tokenizer: a pull reader over a reply's bytes.
 *
 * The reader hands out one token at a time and keeps the nesting on a stack
 * of its own, so it checks the whole grammar (commas, colons, brackets)
 * while its caller only follows what it is interested in.  It accepts
 * exactly what PostgreSQL's parser accepts when it does not de-escape (the
 * json type's input): RFC 8259 JSON whose strings are valid UTF-8 without
 * control characters, with escapes that are well formed, and no letters or
 * digits glued to a number or keyword.  A \u escape of U+0000 or an
 * unpaired surrogate is a failure only where a string is de-escaped
 * (makini_json_unescape), as in PostgreSQL.
 *
 * Nothing raises: a failure is described in the reader (what, and at which
 * byte) and the caller decides what to do with it.
 *
 * The reading of tokens is here, inline: it runs once for every token of a
 * reply, and with a call per token a full scan of purchase_order_lines took
 * 294 -> 322 ms of CPU (best of 28 runs each).
 * What runs seldom (failures, escapes, characters beyond ASCII, the
 * stack's growth, de-escaping) is in json.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MAKINI_JSON_H
#define MAKINI_JSON_H

#include "makini_fdw.h"

typedef enum MakiniJsonToken
{
	MAKINI_JSON_FAILED = 0,		/* see reader->failure */
	MAKINI_JSON_END,			/* the document is complete */
	MAKINI_JSON_OBJECT_START,
	MAKINI_JSON_OBJECT_END,
	MAKINI_JSON_ARRAY_START,
	MAKINI_JSON_ARRAY_END,
	MAKINI_JSON_STRING,
	MAKINI_JSON_NUMBER,
	MAKINI_JSON_TRUE,
	MAKINI_JSON_FALSE,
	MAKINI_JSON_NULL
} MakiniJsonToken;

typedef struct MakiniJsonReader
{
	char	   *body;			/* the document; body[len] is '\0' */
	char	   *end;
	char	   *p;				/* next byte to read */
	char	   *stack;			/* '{' or '[' of each open container */
	int			depth;
	int			maxdepth;
	bool		first;			/* the open container has no item yet */
	bool		done;			/* the top-level value is complete */

	/* the token just read */
	bool		member;			/* a value (or a container's end) inside an
								 * object: name is its field's */
	char	   *start;			/* its first byte in the document */
	char	   *str;			/* scalar text: a string's contents between
								 * the quotes (escapes kept), a number's or
								 * keyword's text */
	int			len;
	bool		escaped;		/* the string has escapes */
	char	   *name;			/* field name between the quotes (escapes
								 * kept) */
	int			namelen;
	bool		name_escaped;

	StringInfoData scratch;		/* makini_json_unescape's buffer */
	MakiniJsonFailure failure;
} MakiniJsonReader;

#define MAKINI_CC_PLAIN	0x01	/* string byte needing no attention */
#define MAKINI_CC_ALNUM	0x02	/* continues a token (JSON_ALPHANUMERIC_CHAR) */
#define MAKINI_CC_WS	0x04	/* whitespace between tokens */

extern uint8 makini_json_char_class[256];

extern void makini_json_init(MakiniJsonReader *r, char *body, size_t len);
extern bool makini_json_skip(MakiniJsonReader *r);
extern bool makini_json_unescape(MakiniJsonReader *r, const char *s, int len,
								 bool strict, char **out, int *outlen);
extern void makini_json_fail(MakiniJsonReader *r, const char *at,
							 const char *detail);
extern MakiniJsonToken makini_json_fail_expected(MakiniJsonReader *r,
												 const char *s,
												 const char *expected);
extern MakiniJsonToken makini_json_fail_token(MakiniJsonReader *r,
											  const char *s);
extern unsigned char *makini_json_string_special(MakiniJsonReader *r,
												 unsigned char *s);
extern void makini_json_grow(MakiniJsonReader *r);

/* Skips whitespace. */
static inline char *
makini_json_skip_ws(char *p)
{
	while (makini_json_char_class[(uint8) *p] & MAKINI_CC_WS)
		p++;
	return p;
}

/*
 * The string whose opening quote is at r->p: checks it and points *str,
 * *len at its contents; *escaped tells whether it has escapes.  Moves past
 * the closing quote.
 */
static inline bool
makini_json_read_string(MakiniJsonReader *r, char **str, int *len,
						bool *escaped)
{
	const uint8 *cc = makini_json_char_class;
	unsigned char *start = (unsigned char *) r->p + 1;
	unsigned char *s = start;

	*escaped = false;
	for (;;)
	{
		while (cc[s[0]] & MAKINI_CC_PLAIN)
		{
			if (!(cc[s[1]] & MAKINI_CC_PLAIN))
			{
				s++;
				break;
			}
			if (!(cc[s[2]] & MAKINI_CC_PLAIN))
			{
				s += 2;
				break;
			}
			if (!(cc[s[3]] & MAKINI_CC_PLAIN))
			{
				s += 3;
				break;
			}
			s += 4;
		}
		if (*s == '"')
			break;
		*escaped |= (*s == '\\');
		s = makini_json_string_special(r, s);
		if (s == NULL)
			return false;
	}
	*str = (char *) start;
	*len = s - start;
	r->p = (char *) s + 1;
	return true;
}

/* The digits at s, and past them. */
static inline char *
makini_json_digits(char *s)
{
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

/* The number at r->p, in PostgreSQL's grammar. */
static inline bool
makini_json_read_number(MakiniJsonReader *r)
{
	char	   *s = r->p;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		s = makini_json_digits(s);
	else
		return false;
	if (*s == '.')
	{
		s++;
		if (*s < '0' || *s > '9')
			return false;
		s = makini_json_digits(s);
	}
	if (*s == 'e' || *s == 'E')
	{
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		s = makini_json_digits(s);
	}
	if (makini_json_char_class[(uint8) *s] & MAKINI_CC_ALNUM)
		return false;
	r->str = r->p;
	r->len = s - r->p;
	r->p = s;
	return true;
}

/* The keyword word (n bytes) at r->p, not followed by a token character. */
static inline bool
makini_json_read_keyword(MakiniJsonReader *r, const char *word, int n)
{
	for (int i = 0; i < n; i++)
		if (r->p[i] != word[i])
			return false;
	if (makini_json_char_class[(uint8) r->p[n]] & MAKINI_CC_ALNUM)
		return false;
	r->str = r->p;
	r->len = n;
	r->p += n;
	return true;
}

/* Opens a container ('{' or '[') at r->p. */
static inline void
makini_json_open(MakiniJsonReader *r, char open)
{
	if (r->depth >= r->maxdepth)
		makini_json_grow(r);
	r->stack[r->depth++] = open;
	r->first = true;
	r->p++;
}

/*
 * Closes the innermost container (opened by open), whose closing bracket is
 * at r->p; member tells whether it was a field's value.
 */
static inline MakiniJsonToken
makini_json_close(MakiniJsonReader *r, char open)
{
	r->p++;
	r->depth--;
	r->first = false;
	r->member = (r->depth > 0 && r->stack[r->depth - 1] == '{');
	return open == '{' ? MAKINI_JSON_OBJECT_END : MAKINI_JSON_ARRAY_END;
}

/* The value at r->p: its token, or MAKINI_JSON_FAILED. */
static inline MakiniJsonToken
makini_json_read_value(MakiniJsonReader *r)
{
	char	   *s = r->p;

	r->start = s;
	switch (*s)
	{
		case '{':
			makini_json_open(r, '{');
			return MAKINI_JSON_OBJECT_START;
		case '[':
			makini_json_open(r, '[');
			return MAKINI_JSON_ARRAY_START;
		case '"':
			return makini_json_read_string(r, &r->str, &r->len, &r->escaped) ?
				MAKINI_JSON_STRING : MAKINI_JSON_FAILED;
		case 't':
			return makini_json_read_keyword(r, "true", 4) ?
				MAKINI_JSON_TRUE : makini_json_fail_token(r, s);
		case 'f':
			return makini_json_read_keyword(r, "false", 5) ?
				MAKINI_JSON_FALSE : makini_json_fail_token(r, s);
		case 'n':
			return makini_json_read_keyword(r, "null", 4) ?
				MAKINI_JSON_NULL : makini_json_fail_token(r, s);
		default:
			if ((*s >= '0' && *s <= '9') || *s == '-')
				return makini_json_read_number(r) ?
					MAKINI_JSON_NUMBER : makini_json_fail_token(r, s);
			return makini_json_fail_expected(r, s, "JSON value");
	}
}

/*
 * The next token.  For a value inside an object, r->name is its field's
 * name; a container's end tells in r->member whether the container was a
 * field's value.
 */
static inline MakiniJsonToken
makini_json_next(MakiniJsonReader *r)
{
	char		open;
	char		close;
	char	   *p = makini_json_skip_ws(r->p);

	r->p = p;
	if (r->depth == 0)
	{
		if (r->done)
			return p < r->end ?
				makini_json_fail_expected(r, p, "end of input") : MAKINI_JSON_END;
		r->done = true;
		r->member = false;
		return makini_json_read_value(r);
	}
	open = r->stack[r->depth - 1];
	close = (open == '{') ? '}' : ']';
	if (*p == close)
		return makini_json_close(r, open);
	if (!r->first)
	{
		if (*p != ',')
			return makini_json_fail_expected(r, p, open == '{' ?
											 "\",\" or \"}\"" : "\",\" or \"]\"");
		p = r->p = makini_json_skip_ws(p + 1);
	}
	r->first = false;
	r->member = (open == '{');
	if (open == '{')
	{
		if (*p != '"')
			return makini_json_fail_expected(r, p, "string");
		if (!makini_json_read_string(r, &r->name, &r->namelen, &r->name_escaped))
			return MAKINI_JSON_FAILED;
		p = makini_json_skip_ws(r->p);
		if (*p != ':')
			return makini_json_fail_expected(r, p, "\":\"");
		r->p = makini_json_skip_ws(p + 1);
	}
	return makini_json_read_value(r);
}

#endif							/* MAKINI_JSON_H */
