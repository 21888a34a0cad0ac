/*-------------------------------------------------------------------------
 *
 * errors.c
 *		  The one place where a failed Makini request becomes a SQL error.
 *
 * A failure (HTTP status, or libcurl's transport error) is classified into
 * a kind by failure.c; here the kind, made precise, gives the SQLSTATE,
 * the message and the hint (from a table of literal format strings, marked
 * for translation), and failure.c says whether on_unreachable 'skip'
 * applies.  The detail always says what reply
 * came (status, Makini error code and message, or curl's error text), the
 * request (GET and the path, never the token), the request id and the
 * attempts made.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "makini_fdw.h"

#define MAX_REMOTE_TEXT 500		/* bytes of a remote message we quote */

#define BAD_REPLY_HINT \
	"The Makini API or a proxy returned an unexpected response; retry, and report it to Makini with the request id if it persists."

/*
 * What a failure says: each kind has one text, but a few kinds say more
 * precisely what went wrong (which status, which error code, which
 * certificate check).
 */
typedef enum FailureText
{
	TEXT_AUTH,
	TEXT_FORBIDDEN,
	TEXT_NOT_FOUND,
	TEXT_API_VERSION,			/* 400 UNSUPPORTED_API_VERSION */
	TEXT_API_VERSION_SERVED,	/* ... naming the version served */
	TEXT_INVALID_FILTER,		/* 400 INVALID_FILTER */
	TEXT_BAD_REQUEST,
	TEXT_RATE_LIMITED,
	TEXT_SERVER_FAILED,			/* 500 */
	TEXT_ERP_UNAVAILABLE,		/* 503 */
	TEXT_ERP_NO_ANSWER,			/* 502, 504 */
	TEXT_REDIRECT,				/* 3xx */
	TEXT_HTTP_OTHER,
	TEXT_UNREACHABLE,
	TEXT_CA_FILE,
	TEXT_CERT_UNTRUSTED,
	TEXT_CERT_MISMATCH,
	TEXT_TIMEOUT,
	TEXT_LOST,
	TEXT_TOO_LARGE,
	TEXT_OUT_OF_MEMORY,
	TEXT_BAD_ENCODING,
	TEXT_TRANSFER_OTHER
} FailureText;

/*
 * The SQLSTATE, detail word, message and hint of each text.  The message
 * is formatted with the server's name and the HTTP status, the hint with
 * the server's name quoted as an identifier and the API version served.
 */
static const struct
{
	int			sqlstate;
	const char *transport;		/* names a curl failure in the detail */
	const char *message;
	const char *hint;
}			failure_texts[] =
{
	[TEXT_AUTH] = {ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, NULL,
		gettext_noop("Makini server \"%s\" rejected the token"),
	gettext_noop("Reconnect the system in Makini, then ALTER USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (SET token '...').")},
	[TEXT_FORBIDDEN] = {ERRCODE_INSUFFICIENT_PRIVILEGE, NULL,
		gettext_noop("Makini server \"%s\" denied access to the requested data"),
	gettext_noop("The account of the connected ERP system lacks permission for these records; ask the ERP system's administrator to grant it.")},
	[TEXT_NOT_FOUND] = {ERRCODE_FDW_TABLE_NOT_FOUND, NULL,
		gettext_noop("Makini server \"%s\" has no such resource"),
	gettext_noop("Check the foreign table's resource option (for example 'purchase-orders' or 'vendors') and the server option url.")},
	[TEXT_API_VERSION] = {ERRCODE_FDW_ERROR, NULL,
		gettext_noop("Makini server \"%s\" does not serve the requested API version"),
	gettext_noop("Set the server option api_version to a version the server serves.")},
	[TEXT_API_VERSION_SERVED] = {ERRCODE_FDW_ERROR, NULL,
		gettext_noop("Makini server \"%s\" does not serve the requested API version"),
	gettext_noop("Set the server option api_version to a version the server serves, such as \"%2$s\": ALTER SERVER %1$s OPTIONS (SET api_version '%2$s').")},
	[TEXT_INVALID_FILTER] = {ERRCODE_FDW_ERROR, NULL,
		gettext_noop("Makini server \"%s\" rejected a filter of the request"),
	gettext_noop("This is a makini_fdw bug: please report it with the request shown above.")},
	[TEXT_BAD_REQUEST] = {ERRCODE_FDW_ERROR, NULL,
		gettext_noop("Makini server \"%s\" rejected the request"),
	gettext_noop("Check the options of the foreign table and its columns; if they are right, report this to Makini with the request id.")},
	[TEXT_RATE_LIMITED] = {ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, NULL,
		gettext_noop("Makini server \"%s\" is rate limiting requests"),
	gettext_noop("Retry later or run fewer concurrent queries on this connection; the server options max_retries and max_retry_wait set how long makini_fdw keeps retrying.")},
	[TEXT_SERVER_FAILED] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, NULL,
		gettext_noop("Makini server \"%s\" failed"),
	gettext_noop("This is usually temporary: retry later. If it persists, check the connection's status in Makini or with makini_connection_status().")},
	[TEXT_ERP_UNAVAILABLE] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, NULL,
		gettext_noop("the ERP system behind Makini server \"%s\" is unavailable"),
	gettext_noop("This is usually temporary: retry later. If it persists, check the connection's status in Makini or with makini_connection_status().")},
	[TEXT_ERP_NO_ANSWER] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, NULL,
		gettext_noop("the ERP system behind Makini server \"%s\" failed to answer"),
	gettext_noop("This is usually temporary: retry later. If it persists, check the connection's status in Makini or with makini_connection_status().")},
	[TEXT_REDIRECT] = {ERRCODE_FDW_ERROR, NULL,
		gettext_noop("Makini server \"%s\" answered with HTTP status %ld"),
	gettext_noop("Check the server option url: redirects are not followed, so that the token goes only to the configured URL.")},
	[TEXT_HTTP_OTHER] = {ERRCODE_FDW_ERROR, NULL,
		gettext_noop("Makini server \"%s\" answered with HTTP status %ld"),
	gettext_noop("Check the server option url; if it is right, report this to Makini with the request id.")},
	[TEXT_UNREACHABLE] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, "could not connect",
		gettext_noop("Makini server \"%s\" is unreachable"),
	gettext_noop("Check the server option url and that this database server can reach it (DNS, firewall, proxy, TLS certificates).")},
	[TEXT_CA_FILE] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, "could not connect",
		gettext_noop("could not load the certificate authorities of Makini server \"%s\""),
	gettext_noop("Check the server option ca_file: it must name a PEM file of certificate authorities that the database server can read. Without ca_file, the system's certificate authorities are used: install them (Debian: package ca-certificates).")},
	[TEXT_CERT_UNTRUSTED] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, "could not connect",
		gettext_noop("the certificate of Makini server \"%s\" was refused"),
	gettext_noop("The certificate is not trusted (or is expired or invalid). If the server uses a private certificate authority, a superuser can set the server option ca_file to a PEM file of it.")},
	[TEXT_CERT_MISMATCH] = {ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, "could not connect",
		gettext_noop("the certificate of Makini server \"%s\" was refused"),
	gettext_noop("The url's host does not match the certificate: use in the server option url a host name the certificate was issued for.")},
	[TEXT_TIMEOUT] = {ERRCODE_CONNECTION_FAILURE, "timed out",
		gettext_noop("request to Makini server \"%s\" timed out"),
	gettext_noop("Retry; if it keeps timing out, narrow the query with filters or raise the server option request_timeout.")},
	[TEXT_LOST] = {ERRCODE_CONNECTION_FAILURE, "connection lost",
		gettext_noop("connection to Makini server \"%s\" was lost"),
	gettext_noop("This is usually temporary: retry the query.")},
	[TEXT_TOO_LARGE] = {ERRCODE_PROGRAM_LIMIT_EXCEEDED, "reply too large",
		gettext_noop("reply from Makini server \"%s\" is too large to receive"),
	gettext_noop("Lower the page_size option of the foreign table or the server.")},
	[TEXT_OUT_OF_MEMORY] = {ERRCODE_OUT_OF_MEMORY, "out of memory",
		gettext_noop("reply from Makini server \"%s\" is too large to receive"),
	gettext_noop("Lower the page_size option of the foreign table or the server.")},
	[TEXT_BAD_ENCODING] = {ERRCODE_FDW_UNABLE_TO_CREATE_REPLY, "invalid reply",
		gettext_noop("invalid reply from Makini server \"%s\""),
	gettext_noop(BAD_REPLY_HINT)},
	[TEXT_TRANSFER_OTHER] = {ERRCODE_FDW_ERROR, "request failed",
		gettext_noop("request to Makini server \"%s\" failed"),
	gettext_noop("Check the server option url.")},
};

StaticAssertDecl(lengthof(failure_texts) == TEXT_TRANSFER_OTHER + 1,
				 "failure_texts must describe every FailureText");

/* the "error" object of a Makini error body; NULL fields when absent */
typedef struct ErrorBody
{
	char	   *code;
	char	   *message;
	char	   *request_id;
} ErrorBody;

static List *deprecation_warned = NIL;	/* servers warned about, this session */


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
 * Anything else (empty, HTML, JSON of another shape, no reply at all)
 * leaves all NULL.
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
	if (!makini_is_reply(resp) || resp->body == NULL)
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
append_reply(StringInfo buf, const MakiniResponse *resp, FailureText text,
			 const ErrorBody *eb)
{
	if (!makini_is_reply(resp))
	{
		appendStringInfo(buf, "%s: %s", failure_texts[text].transport,
						 resp->curl_error ? resp->curl_error : "unknown error");
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
 * The text of a failure: its kind, made precise by the status, the error
 * body's code and the certificate check that failed.  libcurl reports both
 * certificate failures as one error, but an untrusted or invalid
 * certificate has an X.509 verification error (above 1), while a host name
 * mismatch is found after the chain verified (0, or 1: libcurl's "not yet
 * verified").
 */
static FailureText
failure_text(MakiniFailureKind kind, const MakiniResponse *resp,
			 const ErrorBody *eb)
{
	bool		has_code = eb->code != NULL;

	switch (kind)
	{
		case MAKINI_FAIL_AUTH:
			return TEXT_AUTH;
		case MAKINI_FAIL_FORBIDDEN:
			return TEXT_FORBIDDEN;
		case MAKINI_FAIL_NOT_FOUND:
			return TEXT_NOT_FOUND;
		case MAKINI_FAIL_BAD_REQUEST:
			if (has_code && strcmp(eb->code, "UNSUPPORTED_API_VERSION") == 0)
				return resp->api_version ? TEXT_API_VERSION_SERVED : TEXT_API_VERSION;
			if (has_code && strcmp(eb->code, "INVALID_FILTER") == 0)
				return TEXT_INVALID_FILTER;
			return TEXT_BAD_REQUEST;
		case MAKINI_FAIL_RATE_LIMITED:
			return TEXT_RATE_LIMITED;
		case MAKINI_FAIL_UNAVAILABLE:
			if (resp->status == 500)
				return TEXT_SERVER_FAILED;
			return resp->status == 503 ? TEXT_ERP_UNAVAILABLE : TEXT_ERP_NO_ANSWER;
		case MAKINI_FAIL_HTTP_OTHER:
			return resp->status >= 300 && resp->status < 400 ?
				TEXT_REDIRECT : TEXT_HTTP_OTHER;
		case MAKINI_FAIL_CONNECT:
		case MAKINI_FAIL_UNREACHABLE:
			return TEXT_UNREACHABLE;
		case MAKINI_FAIL_CA_FILE:
			return TEXT_CA_FILE;
		case MAKINI_FAIL_CERTIFICATE:
			return resp->tls_verify_result > 1 ? TEXT_CERT_UNTRUSTED : TEXT_CERT_MISMATCH;
		case MAKINI_FAIL_TIMEOUT:
			return TEXT_TIMEOUT;
		case MAKINI_FAIL_LOST:
			return TEXT_LOST;
		case MAKINI_FAIL_TOO_LARGE:
			return TEXT_TOO_LARGE;
		case MAKINI_FAIL_OUT_OF_MEMORY:
			return TEXT_OUT_OF_MEMORY;
		case MAKINI_FAIL_BAD_ENCODING:
			return TEXT_BAD_ENCODING;
		case MAKINI_FAIL_NONE:
		case MAKINI_FAIL_TRANSFER_OTHER:
			break;
	}
	return TEXT_TRANSFER_OTHER;
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
	MakiniFailureKind kind = makini_classify(resp);
	ErrorBody	eb;
	FailureText text;
	StringInfoData detail;
	bool		skip;

	parse_error_body(resp, &eb);
	text = failure_text(kind, resp, &eb);
	initStringInfo(&detail);
	append_reply(&detail, resp, text, &eb);
	if (kind == MAKINI_FAIL_RATE_LIMITED && resp->retry_after != NULL)
		appendStringInfo(&detail, "\nRetry-After: %s", resp->retry_after);
	appendStringInfoChar(&detail, '\n');
	append_request(&detail, ctx->path, pick_request_id(resp, ctx, &eb),
				   resp->attempts);

	skip = skip_unreachable && makini_failure_unreachable(kind);
	ereport(skip ? WARNING : ERROR,
			(errcode(failure_texts[text].sqlstate),
			 errmsg(failure_texts[text].message, ctx->servername, resp->status),
			 errdetail_internal("%s", detail.data),
			 skip ?
			 errhint("on_unreachable is 'skip' for server %s: its rows are missing from the result.",
					 quote_identifier(ctx->servername)) :
			 errhint(failure_texts[text].hint,
					 quote_identifier(ctx->servername), resp->api_version)));
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
	MakiniFailureKind kind = makini_classify(resp);
	ErrorBody	eb;
	StringInfoData buf;
	const char *request_id;

	if (kind == MAKINI_FAIL_NONE)
		return NULL;

	parse_error_body(resp, &eb);
	initStringInfo(&buf);
	append_reply(&buf, resp, failure_text(kind, resp, &eb), &eb);
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
 * Raise "invalid reply": a reply arrived but is not what API.md says (a
 * failure page.c returned, or a paging value scan.c found out of range).
 * The detail is the caller's text, then the request and its id.
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
