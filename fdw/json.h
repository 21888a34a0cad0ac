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

extern void makini_json_init(MakiniJsonReader *r, char *body, size_t len);
extern MakiniJsonToken makini_json_next(MakiniJsonReader *r);
extern bool makini_json_skip(MakiniJsonReader *r);
extern bool makini_json_unescape(MakiniJsonReader *r, const char *s, int len,
								 bool strict, char **out, int *outlen);
extern void makini_json_fail(MakiniJsonReader *r, const char *at,
							 const char *detail);

#endif							/* MAKINI_JSON_H */
