/*-------------------------------------------------------------------------
 *
 * errors.c
 *		  The one place where a failed Makini request becomes a SQL error.
 *
 * A failure (HTTP status, or libcurl's transport error) is classified into
 * a kind; the kind gives the SQLSTATE, whether on_unreachable 'skip'
 * applies, and the message and hint.  The detail always says what reply
 * came (status, Makini error code and message, or curl's error text), the
 * request (GET and the path, never the token), the request id and the
 * attempts made.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <curl/curl.h>

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "makini_fdw.h"

#define MAX_REMOTE_TEXT 500		/* bytes of a remote message we quote */

#define BAD_REPLY_HINT \
	"The Makini API or a proxy returned an unexpected response; retry, and report it to Makini with the request id if it persists."

typedef enum FailureKind
{
	FAIL_AUTH,					/* 401 */
	FAIL_FORBIDDEN,				/* 403 */
	FAIL_NOT_FOUND,				/* 404 */
	FAIL_BAD_REQUEST,			/* 400 */
	FAIL_RATE_LIMITED,			/* 429 after retries */
	FAIL_UNAVAILABLE,			/* 500, 502, 503, 504 after retries */
	FAIL_HTTP_OTHER,			/* any other status */
	FAIL_UNREACHABLE,			/* no connection: DNS, refused, TLS, timeout */
	FAIL_LOST,					/* connection broke or timed out mid-request */
	FAIL_TOO_LARGE,				/* reply over 1 GB */
	FAIL_OUT_OF_MEMORY,
	FAIL_BAD_ENCODING,			/* undecodable (gzip) reply */
	FAIL_TRANSFER_OTHER			/* any other libcurl failure */
} FailureKind;

/* what each kind is, indexed by FailureKind */
static const struct
{
	int			sqlstate;
	bool		unreachable;	/* on_unreachable 'skip' applies */
	const char *transport;		/* describes a curl failure of this kind */
}			failure_kinds[] =
{
	[FAIL_AUTH] = {ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, false, NULL},
	[FAIL_FORBIDDEN] = {ERRCODE_INSUFFICIENT_PRIVILEGE, false, NULL},
	[FAIL_NOT_FOUND] = {ERRCODE_FDW_TABLE_NOT_FOUND, false, NULL},
	[FAIL_BAD_REQUEST] = {ERRCODE_FDW_ERROR, false, NULL},
	[FAIL_RATE_LIMITED] = {ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, true, NULL},
	[FAIL_UNAVAILABLE] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, true, NULL},
	[FAIL_HTTP_OTHER] = {ERRCODE_FDW_ERROR, false, NULL},
	[FAIL_UNREACHABLE] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, true, "could not connect"},
	[FAIL_LOST] = {ERRCODE_CONNECTION_FAILURE, true, "connection lost"},
	[FAIL_TOO_LARGE] = {ERRCODE_PROGRAM_LIMIT_EXCEEDED, false, "reply too large"},
	[FAIL_OUT_OF_MEMORY] = {ERRCODE_OUT_OF_MEMORY, false, "out of memory"},
	[FAIL_BAD_ENCODING] = {ERRCODE_FDW_UNABLE_TO_CREATE_REPLY, false, "invalid reply"},
	[FAIL_TRANSFER_OTHER] = {ERRCODE_FDW_ERROR, false, "request failed"},
};

/* the "error" object of a Makini error body; NULL fields when absent */
typedef struct ErrorBody
{
	char	   *code;
	char	   *message;
	char	   *request_id;
} ErrorBody;

static List *deprecation_warned = NIL;	/* servers warned about, this session */


/*
 * Is this a final response at all, i.e. did a reply arrive?
 */
static inline bool
is_http_reply(const MakiniResponse *resp)
{
	return resp->curl_code == CURLE_OK && resp->status != 0;
}

/*
 * The kind of a libcurl failure.
 */
static FailureKind
classify_transport(int curl_code)
{
	switch ((CURLcode) curl_code)
	{
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_USE_SSL_FAILED:
		case CURLE_PROXY:
			return FAIL_UNREACHABLE;
		case CURLE_PARTIAL_FILE:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return FAIL_LOST;
		case CURLE_WRITE_ERROR:
			return FAIL_TOO_LARGE;
		case CURLE_OUT_OF_MEMORY:
			return FAIL_OUT_OF_MEMORY;
		case CURLE_BAD_CONTENT_ENCODING:
			return FAIL_BAD_ENCODING;
		default:
			return FAIL_TRANSFER_OTHER;
	}
}

/*
 * The kind of a failure: by HTTP status if a reply arrived, else by the
 * libcurl error.
 */
static FailureKind
classify(const MakiniResponse *resp)
{
	if (!is_http_reply(resp))
		return classify_transport(resp->curl_code);

	switch (resp->status)
	{
		case 400:
			return FAIL_BAD_REQUEST;
		case 401:
			return FAIL_AUTH;
		case 403:
			return FAIL_FORBIDDEN;
		case 404:
			return FAIL_NOT_FOUND;
		case 429:
			return FAIL_RATE_LIMITED;
		case 500:
		case 502:
		case 503:
		case 504:
			return FAIL_UNAVAILABLE;
		default:
			return FAIL_HTTP_OTHER;
	}
}

/*
 * Should the request be sent again: 429, 500, 502, 503, 504, and transport
 * failures that a new attempt may not meet (refused, reset, timeout,
 * broken body).  DNS and TLS failures are not retried: they rarely heal in
 * seconds and usually mean a wrong url.
 */
bool
makini_is_retryable(const MakiniResponse *resp)
{
	if (is_http_reply(resp))
		return resp->status == 429 || resp->status == 500 ||
			resp->status == 502 || resp->status == 503 ||
			resp->status == 504;

	switch ((CURLcode) resp->curl_code)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_PARTIAL_FILE:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return true;
		default:
			return false;
	}
}

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

/*
 * Remote text, fit for a message (makini_remote_text) and cut to
 * MAX_REMOTE_TEXT bytes (on a character boundary), or NULL.
 */
static char *
clip_remote(char *raw)
{
	char	   *text;
	int			len;

	if (raw == NULL || raw[0] == '\0')
		return NULL;
	text = makini_remote_text(raw, strlen(raw));
	len = strlen(text);
	if (len > MAX_REMOTE_TEXT)
	{
		len = pg_mbcliplen(text, len, MAX_REMOTE_TEXT);
		text[len] = '\0';
	}
	return text;
}

/*
 * Read {"error": {"code", "message", "request_id"}} from an error body.
 * Anything else (empty, HTML, JSON of another shape) leaves all NULL.
 */
static void
parse_error_body(const MakiniResponse *resp, ErrorBody *eb)
{
	static const char *const paths[] = {
		"error.code", "error.message", "error.request_id"
	};
	char	   *values[lengthof(paths)] = {NULL};
	size_t		i = 0;

	memset(eb, 0, sizeof(ErrorBody));
	if (resp->body == NULL)
		return;
	while (i < resp->len && isspace((unsigned char) resp->body[i]))
		i++;
	if (i >= resp->len || resp->body[i] != '{')
		return;
	if (!makini_json_extract(resp->body, resp->len, lengthof(paths), paths,
							 values))
		return;
	eb->code = clip_remote(values[0]);
	eb->message = clip_remote(values[1]);
	eb->request_id = clip_remote(values[2]);
}

/*
 * Reason phrase of the statuses a Makini server or a proxy sends.
 */
static const char *
status_text(long status)
{
	switch (status)
	{
		case 301:
			return "Moved Permanently";
		case 302:
			return "Found";
		case 307:
			return "Temporary Redirect";
		case 308:
			return "Permanent Redirect";
		case 400:
			return "Bad Request";
		case 401:
			return "Unauthorized";
		case 403:
			return "Forbidden";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 406:
			return "Not Acceptable";
		case 408:
			return "Request Timeout";
		case 429:
			return "Too Many Requests";
		case 500:
			return "Internal Server Error";
		case 501:
			return "Not Implemented";
		case 502:
			return "Bad Gateway";
		case 503:
			return "Service Unavailable";
		case 504:
			return "Gateway Timeout";
		default:
			return NULL;
	}
}

/*
 * Append what came back, in one line:
 *	 HTTP 401 TOKEN_EXPIRED: The API token has expired.
 *	 HTTP 502 Bad Gateway (text/html reply)
 *	 could not connect: Failed to connect to ... Connection refused
 */
static void
append_reply(StringInfo buf, const MakiniResponse *resp, FailureKind kind,
			 const ErrorBody *eb)
{
	if (!is_http_reply(resp))
	{
		appendStringInfo(buf, "%s: %s",
						 resp->curl_code == CURLE_OPERATION_TIMEDOUT ?
						 "timed out" : failure_kinds[kind].transport,
						 resp->curl_error ? resp->curl_error :
						 curl_easy_strerror((CURLcode) resp->curl_code));
		return;
	}

	appendStringInfo(buf, "HTTP %ld", resp->status);
	if (eb->code != NULL || eb->message != NULL)
	{
		if (eb->code != NULL)
			appendStringInfo(buf, " %s", eb->code);
		if (eb->message != NULL)
			appendStringInfo(buf, ": %s", eb->message);
		return;
	}
	if (status_text(resp->status) != NULL)
		appendStringInfo(buf, " %s", status_text(resp->status));
	if (resp->len > 0 && resp->content_type != NULL)
		appendStringInfo(buf, " (%s reply)", resp->content_type);
}

/*
 * The request id to quote: the X-Request-Id header, else the reply
 * context's, else the one in the error body.
 */
static const char *
pick_request_id(const MakiniResponse *resp, const MakiniReplyContext *ctx,
				const ErrorBody *eb)
{
	if (resp != NULL && resp->request_id != NULL)
		return resp->request_id;
	if (ctx->request_id != NULL)
		return ctx->request_id;
	return eb ? eb->request_id : NULL;
}

/*
 * Append the "Request: GET <path> (request id ..., N attempts)" line.
 */
static void
append_request(StringInfo buf, const char *path, const char *request_id,
			   int attempts)
{
	appendStringInfo(buf, "Request: GET %s", path);
	if (request_id != NULL && attempts > 0)
		appendStringInfo(buf, " (request id %s, attempts: %d)",
						 request_id, attempts);
	else if (request_id != NULL)
		appendStringInfo(buf, " (request id %s)", request_id);
	else if (attempts > 0)
		appendStringInfo(buf, " (attempts: %d)", attempts);
}

/*
 * Message and hint of a refused certificate, saying which check failed;
 * false if the failure is not one.  libcurl reports both failures as
 * CURLE_PEER_FAILED_VERIFICATION: an untrusted or invalid certificate has
 * an X.509 verification error (above 1), while a host name mismatch is
 * found after the chain verified (0, or 1: libcurl's "not yet verified").
 */
static bool
tls_failure_text(const MakiniResponse *resp, const char *server,
				 char **message, char **hint)
{
	if (resp->curl_code == CURLE_SSL_CACERT_BADFILE)
	{
		*message = psprintf("could not load the certificate authorities of Makini server \"%s\"", server);
		*hint = pstrdup("Check the server option ca_file: it must name a PEM file of certificate authorities that the database server can read. Without ca_file, the system's certificate authorities are used: install them (Debian: package ca-certificates).");
		return true;
	}
	if (resp->curl_code != CURLE_PEER_FAILED_VERIFICATION)
		return false;
	*message = psprintf("the certificate of Makini server \"%s\" was refused", server);
	if (resp->tls_verify_result > 1)
		*hint = pstrdup("The certificate is not trusted (or is expired or invalid). If the server uses a private certificate authority, a superuser can set the server option ca_file to a PEM file of it.");
	else
		*hint = pstrdup("The url's host does not match the certificate: use in the server option url a host name the certificate was issued for.");
	return true;
}

/*
 * Message and hint of a failure kind, naming the server.
 */
static void
failure_text(FailureKind kind, const MakiniResponse *resp,
			 const ErrorBody *eb, const char *server,
			 char **message, char **hint)
{
	const char *qserver = quote_identifier(server);

	switch (kind)
	{
		case FAIL_AUTH:
			*message = psprintf("Makini server \"%s\" rejected the token", server);
			*hint = psprintf("Reconnect the system in Makini, then ALTER USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (SET token '...').",
							 qserver);
			break;
		case FAIL_FORBIDDEN:
			*message = psprintf("Makini server \"%s\" denied access to the requested data", server);
			*hint = pstrdup("The account of the connected ERP system lacks permission for these records; ask the ERP system's administrator to grant it.");
			break;
		case FAIL_NOT_FOUND:
			*message = psprintf("Makini server \"%s\" has no such resource", server);
			*hint = pstrdup("Check the foreign table's resource option (for example 'purchase-orders' or 'vendors') and the server option url.");
			break;
		case FAIL_BAD_REQUEST:
			if (eb->code != NULL && strcmp(eb->code, "UNSUPPORTED_API_VERSION") == 0)
			{
				*message = psprintf("Makini server \"%s\" does not serve the requested API version", server);
				if (resp->api_version != NULL)
					*hint = psprintf("Set the server option api_version to a version the server serves, such as \"%s\": ALTER SERVER %s OPTIONS (SET api_version '%s').",
									 resp->api_version, qserver, resp->api_version);
				else
					*hint = pstrdup("Set the server option api_version to a version the server serves.");
			}
			else if (eb->code != NULL && strcmp(eb->code, "INVALID_FILTER") == 0)
			{
				*message = psprintf("Makini server \"%s\" rejected a filter of the request", server);
				*hint = pstrdup("This is a makini_fdw bug: please report it with the request shown above.");
			}
			else
			{
				*message = psprintf("Makini server \"%s\" rejected the request", server);
				*hint = pstrdup("Check the options of the foreign table and its columns; if they are right, report this to Makini with the request id.");
			}
			break;
		case FAIL_RATE_LIMITED:
			*message = psprintf("Makini server \"%s\" is rate limiting requests", server);
			*hint = pstrdup("Retry later or run fewer concurrent queries on this connection; the server options max_retries and max_retry_wait set how long makini_fdw keeps retrying.");
			break;
		case FAIL_UNAVAILABLE:
			if (resp->status == 500)
				*message = psprintf("Makini server \"%s\" failed", server);
			else if (resp->status == 503)
				*message = psprintf("the ERP system behind Makini server \"%s\" is unavailable", server);
			else
				*message = psprintf("the ERP system behind Makini server \"%s\" failed to answer", server);
			*hint = pstrdup("This is usually temporary: retry later. If it persists, check the connection's status in Makini or with makini_connection_status().");
			break;
		case FAIL_HTTP_OTHER:
			*message = psprintf("Makini server \"%s\" answered with HTTP status %ld", server, resp->status);
			if (resp->status >= 300 && resp->status < 400)
				*hint = pstrdup("Check the server option url: redirects are not followed, so that the token goes only to the configured URL.");
			else
				*hint = pstrdup("Check the server option url; if it is right, report this to Makini with the request id.");
			break;
		case FAIL_UNREACHABLE:
			if (tls_failure_text(resp, server, message, hint))
				break;
			*message = psprintf("Makini server \"%s\" is unreachable", server);
			*hint = pstrdup("Check the server option url and that this database server can reach it (DNS, firewall, proxy, TLS certificates).");
			break;
		case FAIL_LOST:
			if (resp->curl_code == CURLE_OPERATION_TIMEDOUT)
			{
				*message = psprintf("request to Makini server \"%s\" timed out", server);
				*hint = pstrdup("Retry; if it keeps timing out, narrow the query with filters or raise the server option request_timeout.");
			}
			else
			{
				*message = psprintf("connection to Makini server \"%s\" was lost", server);
				*hint = pstrdup("This is usually temporary: retry the query.");
			}
			break;
		case FAIL_TOO_LARGE:
		case FAIL_OUT_OF_MEMORY:
			*message = psprintf("reply from Makini server \"%s\" is too large to receive", server);
			*hint = pstrdup("Lower the page_size option of the foreign table or the server.");
			break;
		case FAIL_BAD_ENCODING:
			*message = psprintf("invalid reply from Makini server \"%s\"", server);
			*hint = pstrdup(BAD_REPLY_HINT);
			break;
		case FAIL_TRANSFER_OTHER:
			*message = psprintf("request to Makini server \"%s\" failed", server);
			*hint = pstrdup("Check the server option url.");
			break;
	}
}

/*
 * Whether a failed request means the server could not be reached: the
 * failures on_unreachable 'skip' turns into a WARNING.
 */
bool
makini_is_unreachable(const MakiniResponse *resp)
{
	return failure_kinds[classify(resp)].unreachable;
}

/*
 * Report a failed request: raise the error its kind calls for or, when
 * skip_unreachable is set and the server could not be reached (08001,
 * 08006, 53400), warn instead and return true so the scan yields no rows.
 */
bool
makini_report_failure(const MakiniResponse *resp,
					  const MakiniReplyContext *ctx,
					  bool skip_unreachable)
{
	FailureKind kind = classify(resp);
	ErrorBody	eb;
	StringInfoData detail;
	char	   *message = NULL;
	char	   *hint = NULL;
	bool		skip;

	if (is_http_reply(resp))
		parse_error_body(resp, &eb);
	else
		memset(&eb, 0, sizeof(eb));

	initStringInfo(&detail);
	append_reply(&detail, resp, kind, &eb);
	if (kind == FAIL_RATE_LIMITED && resp->retry_after != NULL)
		appendStringInfo(&detail, "\nRetry-After: %s", resp->retry_after);
	appendStringInfoChar(&detail, '\n');
	append_request(&detail, ctx->path, pick_request_id(resp, ctx, &eb),
				   resp->attempts);

	failure_text(kind, resp, &eb, ctx->servername, &message, &hint);

	skip = skip_unreachable && failure_kinds[kind].unreachable;
	if (skip)
		hint = psprintf("on_unreachable is 'skip' for server %s: its rows are missing from the result.",
						quote_identifier(ctx->servername));

	ereport(skip ? WARNING : ERROR,
			(errcode(failure_kinds[kind].sqlstate),
			 errmsg("%s", message),
			 errdetail_internal("%s", detail.data),
			 errhint("%s", hint)));
	return true;
}

/*
 * One line for makini_connection_status's error column, e.g.
 * "HTTP 401 TOKEN_EXPIRED: The API token has expired. (request id req_1)"
 * or "could not connect: <curl error>"; NULL for a success.
 */
char *
makini_describe_failure(const MakiniResponse *resp)
{
	FailureKind kind;
	ErrorBody	eb;
	StringInfoData buf;
	const char *request_id;

	if (is_http_reply(resp) && resp->status >= 200 && resp->status < 300)
		return NULL;

	kind = classify(resp);
	if (is_http_reply(resp))
		parse_error_body(resp, &eb);
	else
		memset(&eb, 0, sizeof(eb));

	initStringInfo(&buf);
	append_reply(&buf, resp, kind, &eb);
	request_id = resp->request_id ? resp->request_id : eb.request_id;
	if (request_id != NULL)
		appendStringInfo(&buf, " (request id %s)", request_id);
	return buf.data;
}

/*
 * Warn once per session and server when the server says the pinned API
 * version is deprecated.
 */
void
makini_check_deprecation(const MakiniResponse *resp,
						 const MakiniReplyContext *ctx)
{
	ListCell   *lc;
	MemoryContext oldcxt;

	if (!resp->deprecated)
		return;
	foreach(lc, deprecation_warned)
	{
		if (strcmp((char *) lfirst(lc), ctx->servername) == 0)
			return;
	}

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	deprecation_warned = lappend(deprecation_warned, pstrdup(ctx->servername));
	MemoryContextSwitchTo(oldcxt);

	ereport(WARNING,
			(errcode(ERRCODE_WARNING_DEPRECATED_FEATURE),
			 errmsg("Makini API version \"%s\" used by server \"%s\" is deprecated",
					resp->api_version ? resp->api_version : "?",
					ctx->servername),
			 resp->sunset ?
			 errdetail("The server will stop serving it on %s.", resp->sunset) :
			 errdetail("The server has not said when it will stop serving it."),
			 errhint("Set the server option api_version to a current version.")));
}

/*
 * Raise HV024 for a value of a reply that its column's type does not
 * accept (convert.c): the message names the column, the table and the
 * value; the detail the record (and its parent record, for a row of an
 * expand table), the field and why the type refused it, then the request.
 */
void
makini_report_bad_value(const MakiniReplyContext *ctx, const char *relname,
						const char *attname, const char *field,
						const char *record_key, const char *parent_key,
						const char *value, const char *reason)
{
	StringInfoData detail;

	initStringInfo(&detail);
	appendStringInfo(&detail, "Record \"%s\"", record_key ? record_key : "(no key)");
	if (parent_key != NULL)
		appendStringInfo(&detail, " of record \"%s\"", parent_key);
	appendStringInfo(&detail, ", field \"%s\": %s\n", field, reason);
	appendStringInfo(&detail, "Request: GET %s (server \"%s\"", ctx->path,
					 ctx->servername);
	if (ctx->request_id != NULL)
		appendStringInfo(&detail, ", request id %s", ctx->request_id);
	appendStringInfoChar(&detail, ')');

	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for column \"%s\" of foreign table \"%s\": \"%s\"",
					attname, relname, value),
			 errdetail_internal("%s", detail.data),
			 errhint("Change the column's type (text accepts any value) or correct the record in the source system.")));
	pg_unreachable();
}

/*
 * Raise "invalid reply": a reply arrived but is not what the contract
 * says (page.c, convert.c).  The detail is the caller's text, then the
 * request and its id.
 */
void
makini_bad_reply(const MakiniReplyContext *ctx, const char *fmt,...)
{
	StringInfoData detail;

	initStringInfo(&detail);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&detail, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&detail, needed);
	}
	appendStringInfoChar(&detail, '\n');
	append_request(&detail, ctx->path, ctx->request_id, 0);

	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
			 errmsg("invalid reply from Makini server \"%s\"", ctx->servername),
			 errdetail_internal("%s", detail.data),
			 errhint(BAD_REPLY_HINT)));
	pg_unreachable();
}
