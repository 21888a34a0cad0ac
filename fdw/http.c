/*-------------------------------------------------------------------------
 *
 * http.c
 *		  libcurl transfers of makini_fdw.
 *
 * One multi handle per backend drives every transfer; its connection cache
 * gives keep-alive, DNS caching and TLS reuse across requests and queries.
 * An endpoint keeps what a request needs (the configuration its caller
 * gave as plain values, the prebuilt header list with the token) and a few
 * idle easy handles.  This file knows nothing of catalogs, options or SQL
 * errors: connection.c keeps one endpoint per user mapping, and errors.c
 * turns a failed response into a SQL error.  Whether to retry comes from
 * failure.c's classification.
 *
 * A request lives in the memory context that was current when it started:
 * a reset callback on that context takes its easy handle out of the multi
 * handle and returns it, so no error path can leak a handle or leave one
 * half-attached.  Its life:
 *
 *	 RUNNING   transfer in the multi handle; when it ends:
 *			   aborted for an interrupt -> CHECK_FOR_INTERRUPTS(), else resend
 *			   retryable, retries and max_retry_wait left -> BACKOFF
 *			   otherwise -> DONE
 *	 BACKOFF   handle detached until the deadline, then sent again: RUNNING
 *	 DONE	   final response kept, handle returned to the connection
 *
 * Curl callbacks never raise errors (no longjmp through libcurl): they only
 * copy bytes into preallocated or non-throwing memory and set flags.  The
 * token appears only in the Authorization header: it is never logged, and
 * redirects are never followed, so it goes only to base URL + path.
 *
 * Replies are asked for gzip-compressed, but curl does not decode them: its
 * streaming zlib inflate took a quarter of a scan's time.  A finished body
 * is decoded in one pass by libdeflate into a buffer of the
 * size the gzip trailer announces; the result is what curl would have
 * delivered, and a body that does not decode fails the attempt as curl
 * would (CURLE_BAD_CONTENT_ENCODING).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <libdeflate.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "makini_http.h"

#if LIBCURL_VERSION_NUM < 0x075500
#error "makini_fdw needs libcurl 7.85.0 or later (CURLOPT_PROTOCOLS_STR)"
#endif

#define MAKINI_IDLE_HANDLES		4	/* idle easy handles kept per connection */
#define MAKINI_MAX_CONNECTS		32	/* connections the multi handle keeps */
#define MAKINI_POLL_MS			100 /* longest wait between interrupt checks */
#define MAKINI_BACKOFF_BASE_MS	500
#define MAKINI_BACKOFF_CAP_MS	30000
#define MAKINI_BODY_INITIAL		16384
#define MAKINI_MAX_RATIO_GUESS	64	/* first guess of decoded / encoded size */

/* reference-counted header list: requests in flight outlive a rebuild */
typedef struct MakiniHeaders
{
	struct curl_slist *list;
	int			refcount;
} MakiniHeaders;

/* an endpoint: a configuration and its token; never freed */
struct MakiniEndpoint
{
	bool		retired;		/* forgotten: handles in use are not kept */
	uint32		generation;		/* bumped at each configuration */
	MemoryContext cxt;			/* holds the copy of cfg */
	MakiniHttpConfig cfg;
	MakiniHeaders *headers;		/* NULL until a token is given */
	CURL	   *idle[MAKINI_IDLE_HANDLES];
	int			nidle;

	/*
	 * The rate budget every scan of this endpoint shares: requests on
	 * the wire now, and how many may be (max_concurrent_requests, halved
	 * at each 429, one more after that many successes in a row); no
	 * request ahead before paused_until (a 429's Retry-After).
	 */
	int			in_flight;
	int			allowed;
	int			successes;
	TimestampTz paused_until;
};

typedef enum MakiniRequestState
{
	REQ_RUNNING,				/* transfer in the multi handle */
	REQ_BACKOFF,				/* waiting to retry, handle detached */
	REQ_DONE,					/* final result in resp, handle returned */
	REQ_CANCELLED				/* released before a final result */
} MakiniRequestState;

/* response headers we keep, captured without allocating */
typedef struct MakiniCaptured
{
	char		request_id[128];
	char		retry_after[64];
	char		content_type[128];
	char		api_version[64];
	char		deprecation[64];
	char		sunset[64];
	char		content_encoding[64];
} MakiniCaptured;

struct MakiniRequest
{
	MakiniEndpoint *conn;
	MemoryContext cxt;			/* request, body and response live here */
	MemoryContext body_cxt;		/* ... but the decoded body here */
	MemoryContextCallback release_cb;
	MakiniRequestState state;
	CURL	   *easy;			/* NULL once returned */
	bool		attached;		/* easy is in the multi handle */
	MakiniHeaders *headers;		/* our reference, NULL once dropped */
	uint32		generation;		/* of conn when the handle was taken */

	char	   *server_name;	/* the endpoint's name when it started */
	char	   *path;
	MakiniStats *stats;
	int			max_retries;
	long		max_retry_wait_ms;

	int			attempts;		/* requests sent */
	int			retries;		/* retries scheduled */
	long		waited_ms;		/* backoff scheduled in total */
	TimestampTz retry_at;		/* REQ_BACKOFF: when to send again */

	bool		transfer_done;	/* set from the multi handle's messages */
	CURLcode	result;
	bool		body_failed;	/* the write callback refused data */
	bool		body_oom;		/* ... because memory ran out */

	char	   *body;			/* growable buffer in cxt */
	size_t		body_len;
	size_t		body_cap;
	MakiniCaptured hdr;
	char		errbuf[CURL_ERROR_SIZE];

	MakiniResponse *resp;		/* REQ_DONE: the final response */
};

/* header name → field of MakiniCaptured */
static const struct
{
	const char *name;
	size_t		offset;
	size_t		size;
}			captured_headers[] =
{
	{"X-Request-Id", offsetof(MakiniCaptured, request_id), sizeof(((MakiniCaptured *) 0)->request_id)},
	{"Retry-After", offsetof(MakiniCaptured, retry_after), sizeof(((MakiniCaptured *) 0)->retry_after)},
	{"Content-Type", offsetof(MakiniCaptured, content_type), sizeof(((MakiniCaptured *) 0)->content_type)},
	{"X-Api-Version", offsetof(MakiniCaptured, api_version), sizeof(((MakiniCaptured *) 0)->api_version)},
	{"Deprecation", offsetof(MakiniCaptured, deprecation), sizeof(((MakiniCaptured *) 0)->deprecation)},
	{"Sunset", offsetof(MakiniCaptured, sunset), sizeof(((MakiniCaptured *) 0)->sunset)},
	{"Content-Encoding", offsetof(MakiniCaptured, content_encoding), sizeof(((MakiniCaptured *) 0)->content_encoding)},
};

static CURLM *makini_multi = NULL;
static CURLSH *makini_share = NULL;
static int	makini_running = 0; /* transfers running after the last drive */
static struct libdeflate_decompressor *makini_inflater = NULL;
static MakiniStats dummy_stats;


#define MAKINI_SETOPT(easy, opt, val) \
	do { \
		CURLcode	rc_ = curl_easy_setopt((easy), (opt), (val)); \
		if (rc_ != CURLE_OK) \
			setopt_failed(#opt, rc_); \
	} while (0)


/*
 * Raise the error for a curl option libcurl refused (an old or oddly built
 * libcurl, or out of memory).
 */
static void
setopt_failed(const char *option, CURLcode rc)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("could not set libcurl option %s: %s",
					option, curl_easy_strerror(rc))));
}

/* ------------------------------------------------------------------------
 * What curl waits for: its socket and timer callbacks keep the sockets of
 * the transfers (and what each waits for) and the time curl wants to be
 * called again.  The waits (request_sleep, an async Append's) are built
 * from them; the callbacks only record, never raise.
 * ------------------------------------------------------------------------
 */
typedef struct CurlSocket
{
	curl_socket_t fd;
	int			events;			/* MAKINI_WAIT_READ | MAKINI_WAIT_WRITE */
} CurlSocket;

static CurlSocket *curl_sockets = NULL; /* malloc'd: callbacks cannot throw */
static int	curl_nsockets = 0;
static int	curl_sockets_cap = 0;
static bool curl_sockets_changed = true;	/* wait_set is out of date */
static TimestampTz curl_timer_at = 0;	/* 0: curl wants no call */
static WaitEventSet *wait_set = NULL;	/* latch, postmaster, curl_sockets */

/*
 * CURLMOPT_SOCKETFUNCTION: curl starts, changes or stops waiting on a
 * socket.  Returns -1 (curl fails the transfer) only if memory runs out.
 */
static int
socket_changed(CURL *easy, curl_socket_t fd, int what, void *userp,
			   void *socketp)
{
	int			i;

	for (i = 0; i < curl_nsockets; i++)
		if (curl_sockets[i].fd == fd)
			break;
	curl_sockets_changed = true;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < curl_nsockets)
			curl_sockets[i] = curl_sockets[--curl_nsockets];
		return 0;
	}
	if (i == curl_nsockets)
	{
		if (curl_nsockets == curl_sockets_cap)
		{
			int			cap = Max(curl_sockets_cap * 2, 16);
			CurlSocket *grown = realloc(curl_sockets, cap * sizeof(CurlSocket));

			if (grown == NULL)
				return -1;
			curl_sockets = grown;
			curl_sockets_cap = cap;
		}
		curl_sockets[curl_nsockets++].fd = fd;
	}
	curl_sockets[i].events =
		((what == CURL_POLL_IN || what == CURL_POLL_INOUT) ? MAKINI_WAIT_READ : 0) |
		((what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ? MAKINI_WAIT_WRITE : 0);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called in ms (-1: never). */
static int
timer_changed(CURLM *multi, long ms, void *userp)
{
	curl_timer_at = ms < 0 ? 0 :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	return 0;
}

/* Milliseconds until curl's timer expires: -1 if none, 0 if due. */
static long
curl_timer_ms(void)
{
	if (curl_timer_at == 0)
		return -1;
	return TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
										   curl_timer_at);
}

/*
 * Create the backend's multi handle and TLS session share on first use.
 */
static void
multi_init(void)
{
	if (makini_multi != NULL)
		return;

	/* once per backend, on first use (nothing else initializes libcurl) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not initialize libcurl")));

	if (makini_share == NULL)
	{
		makini_share = curl_share_init();
		if (makini_share != NULL)
			curl_share_setopt(makini_share, CURLSHOPT_SHARE,
							  CURL_LOCK_DATA_SSL_SESSION);
	}

	makini_multi = curl_multi_init();
	if (makini_multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(makini_multi, CURLMOPT_MAXCONNECTS,
					  (long) MAKINI_MAX_CONNECTS);
	curl_multi_setopt(makini_multi, CURLMOPT_SOCKETFUNCTION, socket_changed);
	curl_multi_setopt(makini_multi, CURLMOPT_TIMERFUNCTION, timer_changed);
	/* requests in flight to an HTTP/2 server share one connection */
	curl_multi_setopt(makini_multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
}

/*
 * Run the multi handle without blocking: let curl act on each socket it
 * waits on (it tests them itself) and on its timer if due, then record
 * every finished transfer on its request (a message may belong to another
 * request than the one being polled: read-ahead and async scans share the
 * multi handle).
 */
static void
multi_drive(void)
{
	CURLMcode	mc = CURLM_OK;
	CURLMsg    *msg;
	int			left;
	int			n = curl_nsockets;
	curl_socket_t *fds = palloc(sizeof(curl_socket_t) * Max(n, 1));

	/* the callbacks change the table as curl acts: act on a copy */
	for (int i = 0; i < n; i++)
		fds[i] = curl_sockets[i].fd;
	for (int i = 0; i < n && mc == CURLM_OK; i++)
		mc = curl_multi_socket_action(makini_multi, fds[i], 0, &makini_running);
	if (mc == CURLM_OK && curl_timer_ms() == 0)
		mc = curl_multi_socket_action(makini_multi, CURL_SOCKET_TIMEOUT, 0,
									  &makini_running);
	pfree(fds);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("libcurl failed: %s", curl_multi_strerror(mc))));

	while ((msg = curl_multi_info_read(makini_multi, &left)) != NULL)
	{
		char	   *priv = NULL;
		MakiniRequest *req;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		req = (MakiniRequest *) priv;
		if (req != NULL)
		{
			req->transfer_done = true;
			req->result = msg->data.result;
		}
	}
}

/* ------------------------------------------------------------------------
 * Connection cache
 * ------------------------------------------------------------------------
 */

/*
 * Drop one reference to a header list, freeing it with the last one; the
 * lines are wiped first (one holds the token).
 */
static void
headers_unref(MakiniHeaders *headers)
{
	if (--headers->refcount > 0)
		return;
	for (struct curl_slist *l = headers->list; l != NULL; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(headers->list);
	pfree(headers);
}

/*
 * Append one line to a curl header list, raising on out of memory (the
 * list built so far is freed then).
 */
static struct curl_slist *
slist_add(struct curl_slist *list, const char *line)
{
	struct curl_slist *result = curl_slist_append(list, line);

	if (result == NULL)
	{
		curl_slist_free_all(list);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	return result;
}

/*
 * Build the headers every request of a connection sends.  The token goes
 * only into the Authorization line; our formatted copy is wiped.
 */
static MakiniHeaders *
headers_build(const MakiniHttpConfig *opts, const char *token)
{
	struct curl_slist *list = NULL;
	MakiniHeaders *headers;
	char	   *line;

	list = slist_add(list, "Accept: application/json");
	list = slist_add(list, "User-Agent: makini_fdw/" MAKINI_FDW_VERSION);
	if (opts->api_version != NULL && opts->api_version[0] != '\0')
	{
		line = psprintf("X-Api-Version: %s", opts->api_version);
		list = slist_add(list, line);
		pfree(line);
	}
	line = psprintf("Authorization: Bearer %s", token);
	list = slist_add(list, line);
	explicit_bzero(line, strlen(line));
	pfree(line);

	headers = MemoryContextAllocExtended(TopMemoryContext,
										 sizeof(MakiniHeaders),
										 MCXT_ALLOC_NO_OOM);
	if (headers == NULL)
	{
		curl_slist_free_all(list);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	headers->list = list;
	headers->refcount = 1;
	return headers;
}

/*
 * Drop the connection's reference to its header list (on invalidation and
 * rebuild): with no request in flight the token goes from memory now, else
 * when the last of them ends.
 */
static void
connection_drop_headers(MakiniEndpoint *conn)
{
	if (conn->headers != NULL)
	{
		headers_unref(conn->headers);
		elog(DEBUG1, "makini_fdw: dropped the request headers of server \"%s\"",
			 conn->cfg.name);
	}
	conn->headers = NULL;
}

/*
 * Free a connection's idle easy handles (on invalidation and rebuild).
 */
static void
connection_free_idle(MakiniEndpoint *conn)
{
	while (conn->nidle > 0)
		curl_easy_cleanup(conn->idle[--conn->nidle]);
}

/* A copy of str in the current memory context, or NULL. */
static char *
pstrdup_or_null(const char *str)
{
	return str ? pstrdup(str) : NULL;
}

/* A new endpoint, unconfigured (makini_endpoint_configure gives it all). */
MakiniEndpoint *
makini_endpoint_create(void)
{
	multi_init();
	return MemoryContextAllocZero(TopMemoryContext, sizeof(MakiniEndpoint));
}

/*
 * (Re)configure an endpoint: copy cfg, build the headers with the token.
 *
 * Requests in flight keep their own header reference, and their handles
 * carry the old generation, so they are freed rather than reused when they
 * come back.  Until the headers are built the endpoint has no token
 * (makini_endpoint_has_token), so an error in between (out of memory)
 * leaves it to be configured again.
 */
void
makini_endpoint_configure(MakiniEndpoint *conn, const MakiniHttpConfig *cfg,
						  const char *token)
{
	MemoryContext oldcxt;

	connection_free_idle(conn);
	connection_drop_headers(conn);
	conn->generation++;
	conn->retired = false;

	if (conn->cxt == NULL)
		conn->cxt = AllocSetContextCreate(TopMemoryContext,
										  "makini_fdw endpoint",
										  ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(conn->cxt);

	oldcxt = MemoryContextSwitchTo(conn->cxt);
	conn->cfg = *cfg;
	conn->cfg.name = pstrdup(cfg->name);
	conn->cfg.url = pstrdup(cfg->url);
	conn->cfg.api_version = pstrdup_or_null(cfg->api_version);
	conn->cfg.proxy = pstrdup_or_null(cfg->proxy);
	conn->cfg.ca_file = pstrdup_or_null(cfg->ca_file);
	MemoryContextSwitchTo(oldcxt);

	conn->allowed = Max(conn->cfg.max_concurrent_requests, 1);
	conn->successes = 0;
	makini_endpoint_set_token(conn, token);
}

/* Does the endpoint have its token (it was dropped by forget)? */
bool
makini_endpoint_has_token(MakiniEndpoint *conn)
{
	return conn->headers != NULL;
}

/*
 * Give the endpoint its token again after makini_endpoint_forget: a scan
 * that started before goes on, with the token its caller has now.
 */
void
makini_endpoint_set_token(MakiniEndpoint *conn, const char *token)
{
	connection_drop_headers(conn);
	conn->headers = headers_build(&conn->cfg, token);
}

/*
 * The configuration changed (server or user mapping altered): free the
 * idle handles and drop the header list, which holds the token, now;
 * handles and headers in use are freed when their request ends.
 */
void
makini_endpoint_forget(MakiniEndpoint *conn)
{
	conn->retired = true;
	connection_free_idle(conn);
	connection_drop_headers(conn);
}

/*
 * May one more request of the connection go on the wire now, beyond the
 * one a scan cannot do without?  Scans ask before sending a page ahead.
 */
bool
makini_endpoint_has_room(MakiniEndpoint *conn)
{
	return conn->in_flight < conn->allowed &&
		GetCurrentTimestamp() >= conn->paused_until;
}

/*
 * The server said 429 (too many requests): halve the budget, and send
 * nothing ahead before its Retry-After (delay_ms) has passed.
 */
static void
connection_throttle(MakiniEndpoint *conn, long delay_ms)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													Max(delay_ms, 0L));

	conn->allowed = Max(conn->allowed / 2, 1);
	conn->successes = 0;
	conn->paused_until = Max(conn->paused_until, until);
}

/* A request succeeded: after as many in a row as allowed, allow one more. */
static void
connection_recover(MakiniEndpoint *conn)
{
	if (conn->allowed >= conn->cfg.max_concurrent_requests)
		return;
	if (++conn->successes >= conn->allowed)
	{
		conn->allowed++;
		conn->successes = 0;
	}
}

/* ------------------------------------------------------------------------
 * Curl callbacks: no palloc that can throw, no ereport
 * ------------------------------------------------------------------------
 */

/*
 * Append received (decoded) body bytes to the request's buffer, growing it
 * without throwing; refusing the data makes curl fail with
 * CURLE_WRITE_ERROR, reported as "too large" or "out of memory".
 */
static size_t
write_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	MakiniRequest *req = (MakiniRequest *) userdata;
	size_t		n = size * nmemb;

	if (req->body_len + n + 1 > req->body_cap)
	{
		size_t		newcap = Max(req->body_cap * 2, MAKINI_BODY_INITIAL);
		char	   *newbuf;
		curl_off_t	announced = -1;

		/* the first time, make room for the whole announced body */
		if (req->body == NULL &&
			curl_easy_getinfo(req->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
							  &announced) == CURLE_OK &&
			announced > 0 && announced < MaxAllocSize)
			newcap = Max(newcap, (size_t) announced + 1);

		while (newcap < req->body_len + n + 1)
			newcap *= 2;
		newcap = Min(newcap, MaxAllocSize);
		if (req->body_len + n + 1 > newcap)
		{
			req->body_failed = true;
			return 0;
		}
		newbuf = MemoryContextAllocExtended(req->cxt, newcap,
											MCXT_ALLOC_NO_OOM);
		if (newbuf == NULL)
		{
			req->body_failed = req->body_oom = true;
			return 0;
		}
		if (req->body != NULL)
		{
			memcpy(newbuf, req->body, req->body_len);
			pfree(req->body);
		}
		req->body = newbuf;
		req->body_cap = newcap;
	}
	memcpy(req->body + req->body_len, data, n);
	req->body_len += n;
	req->body[req->body_len] = '\0';
	return n;
}

/*
 * Keep the response headers we need (names compared case-insensitively).
 * A status line starts a new response: forget what an earlier one sent.
 */
static size_t
capture_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
	MakiniRequest *req = (MakiniRequest *) userdata;
	size_t		n = size * nitems;
	int			i;

	if (n >= 5 && strncmp(buffer, "HTTP/", 5) == 0)
	{
		memset(&req->hdr, 0, sizeof(req->hdr));
		return n;
	}

	for (i = 0; i < lengthof(captured_headers); i++)
	{
		size_t		namelen = strlen(captured_headers[i].name);
		const char *value;
		const char *end;
		char	   *dest;
		size_t		len;

		if (n <= namelen || buffer[namelen] != ':' ||
			pg_strncasecmp(buffer, captured_headers[i].name, namelen) != 0)
			continue;

		value = buffer + namelen + 1;
		end = buffer + n;
		while (value < end && (*value == ' ' || *value == '\t'))
			value++;
		while (end > value && (end[-1] == '\r' || end[-1] == '\n' ||
							   end[-1] == ' ' || end[-1] == '\t'))
			end--;
		len = Min((size_t) (end - value), captured_headers[i].size - 1);
		dest = (char *) &req->hdr + captured_headers[i].offset;
		memcpy(dest, value, len);
		dest[len] = '\0';
		break;
	}
	return n;
}

/*
 * Progress callback: abort the transfer when a cancel (pg_cancel_backend,
 * statement_timeout, Ctrl-C) or a termination is pending and may be
 * processed now; the caller then runs CHECK_FOR_INTERRUPTS(), which raises
 * it.  Other interrupts (a ProcSignalBarrier, a memory context dump) are
 * served by the wait loop's CHECK_FOR_INTERRUPTS() without costing the
 * transfer: aborting for them would only send the request again.
 */
static int
check_interrupts(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
				 curl_off_t ultotal, curl_off_t ulnow)
{
	return INTERRUPTS_PENDING_CONDITION() && INTERRUPTS_CAN_BE_PROCESSED() &&
		(QueryCancelPending || ProcDiePending);
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------
 */

/*
 * Take an easy handle: an idle one of the connection, or a new one.
 */
static CURL *
handle_acquire(MakiniEndpoint *conn)
{
	CURL	   *easy;

	if (conn->nidle > 0)
		return conn->idle[--conn->nidle];

	easy = curl_easy_init();
	if (easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	return easy;
}

/* Attaches a request's handle to the multi handle, counting it in flight. */
static void
request_attach(MakiniRequest *req)
{
	CURLMcode	mc = curl_multi_add_handle(makini_multi, req->easy);

	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("libcurl failed: %s", curl_multi_strerror(mc))));
	req->attached = true;
	req->conn->in_flight++;
}

/* Detaches a request's handle (never raises: error cleanup calls it). */
static void
request_detach(MakiniRequest *req)
{
	curl_multi_remove_handle(makini_multi, req->easy);
	req->attached = false;
	req->conn->in_flight = Max(req->conn->in_flight - 1, 0);
}

/*
 * Give back a request's handle and header reference, detaching the handle
 * from the multi handle first.  The handle is reset, so an idle handle
 * holds no pointer into freed memory, and kept only if its connection was
 * not rebuilt or invalidated meanwhile.  Idempotent, and never raises: it
 * runs from the memory context reset callback during error cleanup.
 */
static void
request_release(MakiniRequest *req)
{
	MakiniEndpoint *conn = req->conn;

	if (req->attached)
		request_detach(req);
	if (req->easy != NULL)
	{
		curl_easy_reset(req->easy);
		if (!conn->retired && req->generation == conn->generation &&
			conn->nidle < MAKINI_IDLE_HANDLES)
			conn->idle[conn->nidle++] = req->easy;
		else
			curl_easy_cleanup(req->easy);
		req->easy = NULL;
	}
	if (req->headers != NULL)
	{
		headers_unref(req->headers);
		req->headers = NULL;
	}
}

/*
 * Memory context reset callback: the context holding the request is going
 * away (end of scan, or error cleanup).
 */
static void
request_release_callback(void *arg)
{
	MakiniRequest *req = (MakiniRequest *) arg;

	request_release(req);
	if (req->state != REQ_DONE)
		req->state = REQ_CANCELLED;
}

/*
 * Set how a request reaches the server: only the proxy of the server's
 * options (an empty CURLOPT_PROXY and CURLOPT_NOPROXY make libcurl ignore
 * the postmaster's http_proxy, ALL_PROXY and no_proxy), and certificates
 * and host names always verified, against ca_file if given.
 */
static void
request_setup_transport(CURL *easy, const MakiniHttpConfig *opts)
{
	MAKINI_SETOPT(easy, CURLOPT_PROXY, opts->proxy ? opts->proxy : "");
	MAKINI_SETOPT(easy, CURLOPT_NOPROXY, "");
	MAKINI_SETOPT(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	MAKINI_SETOPT(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	MAKINI_SETOPT(easy, CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
	MAKINI_SETOPT(easy, CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
	if (opts->ca_file != NULL)
	{
		MAKINI_SETOPT(easy, CURLOPT_CAINFO, opts->ca_file);
		MAKINI_SETOPT(easy, CURLOPT_PROXY_CAINFO, opts->ca_file);
	}
}

/*
 * HTTP/2 where an https server offers it (ALPN), HTTP/1.1 otherwise.  Over
 * https a request waits for the TLS handshake of a connection being set up
 * to tell whether it multiplexes rather than opening one more
 * (CURLOPT_PIPEWAIT): concurrent requests then share one connection.  Not
 * over http: there libcurl learns it only from the first reply's headers,
 * and a slow reply would hold the other requests back.  Keep-alive
 * connections, one a request in flight, are reused otherwise.  Only asked
 * of a libcurl built with HTTP/2 (it refuses the version otherwise).
 */
static void
request_setup_http2(CURL *easy, const char *url)
{
	if ((curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2) == 0)
		return;
	MAKINI_SETOPT(easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
	if (pg_strncasecmp(url, "https://", 8) == 0)
		MAKINI_SETOPT(easy, CURLOPT_PIPEWAIT, 1L);
}

/*
 * Set every option of a request on its (reset) easy handle.
 */
static void
request_setup(MakiniRequest *req, const char *url)
{
	CURL	   *easy = req->easy;
	const MakiniHttpConfig *opts = &req->conn->cfg;

	MAKINI_SETOPT(easy, CURLOPT_URL, url);
	MAKINI_SETOPT(easy, CURLOPT_HTTPGET, 1L);
	MAKINI_SETOPT(easy, CURLOPT_HTTPHEADER, req->headers->list);
	MAKINI_SETOPT(easy, CURLOPT_ACCEPT_ENCODING, "gzip");
	MAKINI_SETOPT(easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);	/* decode_body() */
	MAKINI_SETOPT(easy, CURLOPT_CONNECTTIMEOUT, (long) opts->connect_timeout);
	MAKINI_SETOPT(easy, CURLOPT_TIMEOUT, (long) opts->request_timeout);
	MAKINI_SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	MAKINI_SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
	MAKINI_SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	MAKINI_SETOPT(easy, CURLOPT_WRITEFUNCTION, write_body);
	MAKINI_SETOPT(easy, CURLOPT_WRITEDATA, req);
	MAKINI_SETOPT(easy, CURLOPT_HEADERFUNCTION, capture_header);
	MAKINI_SETOPT(easy, CURLOPT_HEADERDATA, req);
	MAKINI_SETOPT(easy, CURLOPT_XFERINFOFUNCTION, check_interrupts);
	MAKINI_SETOPT(easy, CURLOPT_NOPROGRESS, 0L);
	MAKINI_SETOPT(easy, CURLOPT_ERRORBUFFER, req->errbuf);
	MAKINI_SETOPT(easy, CURLOPT_PRIVATE, (char *) req);
	if (makini_share != NULL)
		MAKINI_SETOPT(easy, CURLOPT_SHARE, makini_share);
	request_setup_transport(easy, opts);
	request_setup_http2(easy, url);
}

/*
 * Send (or send again) the request: forget the previous attempt's reply,
 * attach the handle and run the multi handle once, so the request is on
 * the wire before the caller goes on.
 */
static void
request_send(MakiniRequest *req)
{
	req->body_len = 0;
	if (req->body != NULL)
		req->body[0] = '\0';
	req->body_failed = req->body_oom = false;
	memset(&req->hdr, 0, sizeof(req->hdr));
	req->errbuf[0] = '\0';
	req->transfer_done = false;
	req->result = CURLE_OK;

	elog(DEBUG1, "makini_fdw: GET %s", req->path);

	request_attach(req);
	req->state = REQ_RUNNING;
	req->attempts++;
	req->stats->requests++;

	multi_drive();
}

/*
 * Start a GET of base URL + path (path and query, starting with '/').
 * The request, its body and its response live in CurrentMemoryContext;
 * resetting or deleting that context ends the transfer and returns the
 * handle.  The endpoint must have its token (makini_endpoint_has_token).
 */
MakiniRequest *
makini_http_start(MakiniEndpoint *conn, const char *path, MakiniStats *stats)
{
	MakiniRequest *req;
	char	   *url;

	if (path == NULL || path[0] != '/')
		elog(ERROR, "makini_fdw: request path must start with \"/\"");
	if (conn->headers == NULL)
		elog(ERROR, "makini_fdw: request to an endpoint without its token");

	req = palloc0(sizeof(MakiniRequest));
	req->conn = conn;
	req->cxt = req->body_cxt = CurrentMemoryContext;
	req->state = REQ_CANCELLED;
	req->server_name = pstrdup(conn->cfg.name);
	req->path = pstrdup(path);
	req->stats = stats ? stats : &dummy_stats;
	req->max_retries = Max(conn->cfg.max_retries, 0);
	req->max_retry_wait_ms = Max(conn->cfg.max_retry_wait, 0) * 1000L;
	url = psprintf("%s%s", conn->cfg.url, path);

	/* from here on, whatever happens, the context's reset releases */
	req->release_cb.func = request_release_callback;
	req->release_cb.arg = req;
	MemoryContextRegisterResetCallback(req->cxt, &req->release_cb);

	req->easy = handle_acquire(conn);
	req->generation = conn->generation;
	req->headers = conn->headers;
	req->headers->refcount++;

	request_setup(req, url);	/* curl copies the URL */
	pfree(url);

	request_send(req);
	return req;
}

/*
 * Decode the request's reply into cxt instead of the request's context: a
 * scan keeps the small encoded replies of the pages it asked for ahead in
 * contexts of their own, and decodes each, once it is the next page, into
 * the one page context kept for that (scan.c).  cxt must outlive the
 * request, or the request be cancelled first.
 */
void
makini_request_set_body_context(MakiniRequest *req, MemoryContext cxt)
{
	req->body_cxt = cxt;
}

/*
 * How long to wait before the next retry: exponential backoff with full
 * jitter, cut to what is left of max_retry_wait, and at least what
 * Retry-After asks; -1 when the retries are used up or Retry-After asks
 * for more than is left.  The jitter alone never ends the retries (it is
 * cut instead), so max_retries are made whenever the server does not ask
 * for longer waits than max_retry_wait allows.
 */
static long
backoff_ms(MakiniRequest *req, const MakiniResponse *resp)
{
	long		ceiling;
	long		delay;
	long		asked = resp->retry_after_ms;
	long		left = Max(req->max_retry_wait_ms - req->waited_ms, 0L);

	if (req->retries >= req->max_retries || asked > left)
		return -1;
	ceiling = MAKINI_BACKOFF_BASE_MS << Min(req->retries, 16);
	ceiling = Min(ceiling, MAKINI_BACKOFF_CAP_MS);
	delay = (long) (pg_prng_double(&pg_global_prng_state) * ceiling);
	delay = Min(delay, left);
	delay = Max(delay, asked);
	return delay;
}

/*
 * Fail the attempt that just finished as curl fails a body it cannot
 * decode.
 */
static void
decode_failed(MakiniRequest *req, const char *why)
{
	req->result = CURLE_BAD_CONTENT_ENCODING;
	snprintf(req->errbuf, CURL_ERROR_SIZE,
			 "Error while processing content unencoding: %s", why);
}

/*
 * Decode the body of the attempt that just finished as its Content-Encoding
 * says (gzip, possibly several members, or deflate), in one pass with
 * libdeflate, into a NUL-terminated buffer in the request's body context
 * (makini_request_set_body_context).  The
 * first guess of the size is the gzip trailer's (bounded by
 * MAKINI_MAX_RATIO_GUESS times the encoded size); the buffer doubles while
 * it is too small, up to MaxAllocSize.  On failure the attempt fails as
 * curl would have failed it.
 */
static void
decode_body(MakiniRequest *req)
{
	const char *enc = req->hdr.content_encoding;
	const char *in = req->body;
	size_t		in_len = req->body_len;
	bool		gzip;
	size_t		cap;
	char	   *out = NULL;
	size_t		out_len = 0;
	enum libdeflate_result rc = LIBDEFLATE_BAD_DATA;

	if (enc[0] == '\0' || pg_strcasecmp(enc, "identity") == 0 || in_len == 0)
		return;
	gzip = pg_strcasecmp(enc, "gzip") == 0 || pg_strcasecmp(enc, "x-gzip") == 0;
	if (!gzip && pg_strcasecmp(enc, "deflate") != 0)
	{
		decode_failed(req, "unrecognized content encoding type");
		return;
	}
	if (makini_inflater == NULL)
	{
		makini_inflater = libdeflate_alloc_decompressor();
		if (makini_inflater == NULL)
		{
			req->result = CURLE_WRITE_ERROR;
			req->body_failed = req->body_oom = true;
			return;
		}
	}

	cap = Min(in_len, MaxAllocSize / MAKINI_MAX_RATIO_GUESS) * MAKINI_MAX_RATIO_GUESS;
	if (gzip && in_len >= 18)
	{
		const unsigned char *t = (const unsigned char *) in + in_len - 4;
		size_t		isize = (size_t) t[0] | ((size_t) t[1] << 8) |
			((size_t) t[2] << 16) | ((size_t) t[3] << 24);

		cap = Min(cap, isize + 1);
	}
	cap = Min(Max(cap, 64), MaxAllocSize);

	for (;;)
	{
		size_t		in_pos = 0;
		int			members = 0;

		/* each pass decodes up to 1 GB in one call: check in between */
		CHECK_FOR_INTERRUPTS();
		out = MemoryContextAllocExtended(req->body_cxt, cap,
										 MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
		if (out == NULL)
		{
			req->result = CURLE_WRITE_ERROR;
			req->body_failed = req->body_oom = true;
			return;
		}
		out_len = 0;
		do
		{
			size_t		used = 0;
			size_t		produced = 0;

			if (members > 0)
				CHECK_FOR_INTERRUPTS();
			/* leave room for the terminating NUL */
			if (gzip)
				rc = libdeflate_gzip_decompress_ex(makini_inflater,
												   in + in_pos, in_len - in_pos,
												   out + out_len, cap - 1 - out_len,
												   &used, &produced);
			else
				rc = libdeflate_zlib_decompress_ex(makini_inflater,
												   in + in_pos, in_len - in_pos,
												   out + out_len, cap - 1 - out_len,
												   &used, &produced);
			if (rc == LIBDEFLATE_SUCCESS)
			{
				members++;
				in_pos += used;
				out_len += produced;
			}
		} while (rc == LIBDEFLATE_SUCCESS && gzip && in_pos < in_len);

		/* bytes after a complete member are ignored, as curl ignores them */
		if (rc == LIBDEFLATE_BAD_DATA && members > 0)
			rc = LIBDEFLATE_SUCCESS;
		if (rc != LIBDEFLATE_INSUFFICIENT_SPACE)
			break;
		pfree(out);
		if (cap >= MaxAllocSize)
		{
			req->result = CURLE_WRITE_ERROR;
			req->body_failed = true;	/* "exceeds 1 GB" */
			return;
		}
		cap = Min(cap * 2, MaxAllocSize);
	}
	if (rc != LIBDEFLATE_SUCCESS)
	{
		pfree(out);
		decode_failed(req, gzip ? "invalid gzip data" : "invalid deflate data");
		return;
	}
	out[out_len] = '\0';
	pfree(req->body);
	req->body = out;
	req->body_len = out_len;
	req->body_cap = cap;
}

/*
 * A captured header as text for messages and columns (makini_remote_text),
 * or NULL if it was absent.
 */
static char *
header_text(const char *value)
{
	return value[0] ? makini_remote_text(value, strlen(value)) : NULL;
}

/*
 * The delay the attempt's Retry-After header asks for (seconds, or an
 * HTTP-date: libcurl reads both), in milliseconds; -1 if none was sent.
 * A value over a day counts as a day: far beyond any max_retry_wait.
 */
static long
retry_after_ms(MakiniRequest *req)
{
	curl_off_t	seconds = 0;

	if (req->hdr.retry_after[0] == '\0' ||
		curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &seconds) != CURLE_OK)
		return -1;
	return (long) Min(Max(seconds, 0), (curl_off_t) SECS_PER_DAY) * 1000L;
}

/*
 * Turn the attempt that just finished into a MakiniResponse in the
 * request's context.  A transfer failure has status 0 even if a status
 * line arrived (a partial reply is no reply).  The body buffer is shared
 * with the request until the response becomes final.
 */
static MakiniResponse *
request_make_response(MakiniRequest *req)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(req->cxt);
	MakiniResponse *resp = palloc0(sizeof(MakiniResponse));
	MakiniCaptured *hdr = &req->hdr;

	if (req->result == CURLE_OK)
		decode_body(req);
	resp->curl_code = req->result;
	if (req->result == CURLE_OK)
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &resp->status);
	else if (req->body_failed)
	{
		resp->curl_code = req->body_oom ? CURLE_OUT_OF_MEMORY : CURLE_WRITE_ERROR;
		resp->curl_error = pstrdup(req->body_oom ?
								   "out of memory for the reply body" :
								   "reply body exceeds 1 GB");
	}
	else
	{
		long		sent = 0;

		/* a timeout before the request could be sent is a connect failure */
		curl_easy_getinfo(req->easy, CURLINFO_REQUEST_SIZE, &sent);
		if (req->result == CURLE_OPERATION_TIMEDOUT && sent == 0)
			resp->curl_code = CURLE_COULDNT_CONNECT;
		resp->curl_error = pstrdup(req->errbuf[0] ? req->errbuf :
								   curl_easy_strerror(req->result));
		curl_easy_getinfo(req->easy, CURLINFO_SSL_VERIFYRESULT,
						  &resp->tls_verify_result);
	}

	if (req->body == NULL)
	{
		req->body = palloc0(1);
		req->body_cap = 1;
	}
	resp->body = req->body;
	resp->len = req->body_len;
	/* what may reach messages and columns: checked as UTF-8, converted */
	resp->request_id = header_text(hdr->request_id);
	resp->retry_after = hdr->retry_after[0] ? pstrdup(hdr->retry_after) : NULL;
	resp->retry_after_ms = retry_after_ms(req);
	resp->content_type = header_text(hdr->content_type);
	resp->api_version = header_text(hdr->api_version);
	resp->sunset = header_text(hdr->sunset);
	resp->deprecated = hdr->deprecation[0] != '\0' &&
		pg_strcasecmp(hdr->deprecation, "false") != 0;
	resp->attempts = req->attempts;

	MemoryContextSwitchTo(oldcxt);
	return resp;
}

/*
 * Record the final response: the body now belongs to it, the handle goes
 * back, and a success counts in the stats.
 */
static void
request_finish(MakiniRequest *req, MakiniResponse *resp)
{
	req->resp = resp;
	req->body = NULL;
	req->body_len = req->body_cap = 0;
	req->state = REQ_DONE;
	request_release(req);

	if (makini_response_ok(resp))
	{
		req->stats->pages++;
		req->stats->bytes += resp->len;
	}
}

/*
 * A transfer finished: decide between sending again now (it was aborted
 * for an interrupt that did not raise), backing off before a retry, and a
 * final result.  Cancel wins over any remote error: an aborted transfer
 * runs CHECK_FOR_INTERRUPTS() first.
 */
static void
request_attempt_done(MakiniRequest *req)
{
	MakiniResponse *resp;
	MakiniFailureKind kind;
	long		delay;

	request_detach(req);

	if (req->result == CURLE_ABORTED_BY_CALLBACK)
	{
		CHECK_FOR_INTERRUPTS();
		request_send(req);
		return;
	}

	resp = request_make_response(req);
	kind = makini_classify(resp);
	if (kind == MAKINI_FAIL_RATE_LIMITED)
		connection_throttle(req->conn, resp->retry_after_ms);
	else if (kind == MAKINI_FAIL_NONE)
		connection_recover(req->conn);
	if (makini_failure_retryable(kind) && (delay = backoff_ms(req, resp)) >= 0)
	{
		req->retries++;
		req->waited_ms += delay;
		req->stats->retries++;
		req->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													delay);
		req->state = REQ_BACKOFF;
		elog(DEBUG1, "makini_fdw: retrying GET %s after %s (attempt %d of %d, waiting %ld ms)",
			 req->path,
			 resp->status != 0 ? psprintf("HTTP %ld", resp->status) : resp->curl_error,
			 req->retries + 1, req->max_retries + 1, delay);
		return;
	}
	request_finish(req, resp);
}

/*
 * Make progress without blocking; true once a final result is ready (then
 * makini_http_finish returns at once).  Cheap: curl acts on the sockets it
 * waits on, no more.
 */
bool
makini_request_poll(MakiniRequest *req)
{
	switch (req->state)
	{
		case REQ_RUNNING:
			if (!req->transfer_done)
				multi_drive();
			if (req->transfer_done)
				request_attempt_done(req);
			break;
		case REQ_BACKOFF:
			if (GetCurrentTimestamp() >= req->retry_at)
				request_send(req);
			break;
		case REQ_DONE:
		case REQ_CANCELLED:
			break;
	}
	return req->state == REQ_DONE || req->state == REQ_CANCELLED;
}

/*
 * Build the wait set again from curl's sockets, the latch (signals: cancel,
 * termination) and the postmaster's death; the old one is freed first, so
 * an error in between leaves none to leak.
 */
static void
wait_set_rebuild(void)
{
	if (wait_set != NULL)
		FreeWaitEventSet(wait_set);
	wait_set = NULL;
	wait_set = makini_create_wait_event_set(curl_nsockets + 2);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET,
					  NULL, NULL);
	for (int i = 0; i < curl_nsockets; i++)
		AddWaitEventToSet(wait_set,
						  ((curl_sockets[i].events & MAKINI_WAIT_READ) ?
						   WL_SOCKET_READABLE : 0) |
						  ((curl_sockets[i].events & MAKINI_WAIT_WRITE) ?
						   WL_SOCKET_WRITEABLE : 0),
						  curl_sockets[i].fd, NULL, NULL);
	curl_sockets_changed = false;
}

/*
 * Block until a socket of curl's is ready, curl's timer or the request's
 * backoff expires, or the latch is set -- for at most MAKINI_POLL_MS.  The
 * caller then checks for interrupts and drives the transfers.
 */
static void
request_sleep(MakiniRequest *req)
{
	long		timeout = makini_request_timeout_ms(req);
	WaitEvent	event;

	if (timeout < 0 || timeout > MAKINI_POLL_MS)
		timeout = MAKINI_POLL_MS;
	if (curl_sockets_changed || wait_set == NULL)
		wait_set_rebuild();
	if (WaitEventSetWait(wait_set, timeout, &event, 1, PG_WAIT_EXTENSION) > 0 &&
		(event.events & WL_LATCH_SET))
		ResetLatch(MyLatch);
}

/*
 * Serve interrupts before a wait: cancel, statement_timeout and
 * termination raise here; a dead postmaster ends the backend (as
 * WL_EXIT_ON_PM_DEATH would, also while curl waits on sockets).
 */
static void
wait_check(void)
{
	CHECK_FOR_INTERRUPTS();
	if (!PostmasterIsAlive())
		proc_exit(1);
}

/*
 * Wait for the final result, interruptibly (cancel, statement_timeout and
 * termination act within MAKINI_POLL_MS, in transfers and in backoffs),
 * and return it, success or failure: what a failure means is the caller's
 * business (failure.c classifies it, errors.c reports it).
 */
MakiniResponse *
makini_http_finish(MakiniRequest *req)
{
	for (;;)
	{
		wait_check();
		if (makini_request_poll(req))
			break;
		request_sleep(req);
	}
	if (req->state != REQ_DONE)
		elog(ERROR, "makini_fdw: request GET %s was cancelled", req->path);
	return req->resp;
}

/* The path (and query) of a request, as given to makini_http_start. */
const char *
makini_request_path(MakiniRequest *req)
{
	return req->path;
}

/* The name of the endpoint a request went to, as it was then. */
const char *
makini_request_server_name(MakiniRequest *req)
{
	return req->server_name;
}

/*
 * Wait, interruptibly, until the reply to the request's current attempt has
 * arrived in full -- not yet decoded nor judged -- or the request is over.
 * True if that reply is a complete 2xx: its connection is free again, and
 * another request can go out on it while the caller decodes and parses
 * this one (makini_http_finish then finishes it).
 */
bool
makini_request_wait_arrival(MakiniRequest *req)
{
	for (;;)
	{
		long		status = 0;

		wait_check();
		if (req->state == REQ_DONE)
			return makini_response_ok(req->resp);
		if (req->state != REQ_RUNNING)
			return false;
		if (!req->transfer_done)
			multi_drive();
		if (req->transfer_done)
		{
			if (req->result != CURLE_OK)
				return false;
			curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
			return status >= 200 && status < 300;
		}
		request_sleep(req);
	}
}

/*
 * Abandon a request now (its transfer, if any, stops); idempotent with the
 * context reset callback.
 */
void
makini_request_cancel(MakiniRequest *req)
{
	request_release(req);
	if (req->state != REQ_DONE)
		req->state = REQ_CANCELLED;
}

/*
 * Milliseconds until the request needs makini_request_poll again without
 * socket activity: curl's own timer while running (-1: none), the backoff
 * deadline while backing off, 0 when done.
 */
long
makini_request_timeout_ms(MakiniRequest *req)
{
	long		ms = -1;

	switch (req->state)
	{
		case REQ_RUNNING:
			ms = req->transfer_done ? 0 : curl_timer_ms();
			break;
		case REQ_BACKOFF:
			ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
												 req->retry_at);
			break;
		case REQ_DONE:
		case REQ_CANCELLED:
			ms = 0;
			break;
	}
	return ms;
}

/*
 * The sockets curl's transfers are waiting on, for a wait that is not
 * makini_http_finish's (an async Append's): up to max of them in fds, with
 * MAKINI_WAIT_READ / MAKINI_WAIT_WRITE in events; returns how many.
 */
int
makini_wait_sockets(int *fds, int *events, int max)
{
	int			n = Min(curl_nsockets, max);

	for (int i = 0; i < n; i++)
	{
		fds[i] = curl_sockets[i].fd;
		events[i] = curl_sockets[i].events;
	}
	return n;
}
