/*-------------------------------------------------------------------------
 *
 * remote.c
 *		  Text that came from the Makini server -- header values, an error
 *		  body's code and message -- made fit for messages and columns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#include "makini_http.h"

/*
 * One valid UTF-8 character (n bytes at s) appended in the database's
 * encoding, or as \xNN escapes if that encoding lacks it: the conversion's
 * error is caught, as messages are built before they are raised.
 */
static void
append_remote_char(StringInfo buf, const char *s, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile conv = NULL;

	PG_TRY();
	{
		conv = pg_any_to_server(s, n, PG_UTF8);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
	}
	PG_END_TRY();
	if (conv != NULL)
		appendBinaryStringInfo(buf, conv, conv == s ? n : strlen(conv));
	else
		for (int i = 0; i < n; i++)
			appendStringInfo(buf, "\\x%02x", (unsigned char) s[i]);
}

/*
 * Remote text -- a header value, an error body's code or message -- fit
 * for a message in the database's encoding.  The API speaks UTF-8: valid
 * characters are converted; bytes that are not UTF-8, and characters the
 * database's encoding lacks, are written as \xNN escapes.  Never raises
 * (but for out of memory): it builds the messages of errors.
 */
char *
makini_remote_text(const char *s, size_t len)
{
	StringInfoData buf;
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;

	if (utf8 && pg_verify_mbstr(PG_UTF8, s, len, true))
		return pnstrdup(s, len);
	initStringInfo(&buf);
	for (size_t i = 0; i < len;)
	{
		unsigned char c = (unsigned char) s[i];
		int			n = (c & 0x80) ? pg_utf_mblen((const unsigned char *) &s[i]) : 1;

		if (c < 0x80)
			appendStringInfoChar(&buf, c);
		else if (n > len - i ||
				 !pg_utf8_islegal((const unsigned char *) &s[i], n))
		{
			appendStringInfo(&buf, "\\x%02x", c);
			n = 1;
		}
		else if (utf8)
			appendBinaryStringInfo(&buf, &s[i], n);
		else
			append_remote_char(&buf, &s[i], n);
		i += n;
	}
	return buf.data;
}
