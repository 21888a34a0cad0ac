/*-------------------------------------------------------------------------
 *
 * makini_http.h
 *		  The HTTP side of makini_fdw: requests to a Makini endpoint, their
 *		  responses, and what kind of failure a response is.
 *
 * Nothing here knows of catalogs, options or SQL errors: the caller gives
 * an endpoint its configuration as plain values (MakiniHttpConfig) and its
 * token, and turns a failed response into a SQL error itself (errors.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MAKINI_HTTP_H
#define MAKINI_HTTP_H

#include "postgres.h"

#define MAKINI_FDW_VERSION "1.0.0"

/* counters of a scan's requests */
typedef struct MakiniStats
{
	int64		requests;		/* HTTP requests sent, retries included */
	int64		retries;
	int64		pages;			/* successful list/item responses */
	int64		bytes;			/* body bytes received (decoded) */
} MakiniStats;

typedef struct MakiniResponse
{
	long		status;			/* HTTP status; 0 if no response arrived */
	char	   *body;			/* NUL-terminated decoded body */
	size_t		len;
	char	   *request_id;		/* X-Request-Id, or NULL */
	char	   *retry_after;	/* Retry-After as sent, or NULL */
	long		retry_after_ms; /* the delay it asks for, or -1 */
	char	   *content_type;
	char	   *api_version;	/* X-Api-Version served, or NULL */
	char	   *sunset;			/* Sunset header, or NULL */
	bool		deprecated;		/* Deprecation header present */
	int			curl_code;		/* CURLcode; 0 when a response arrived */
	long		tls_verify_result;	/* X.509 verification result of the
									 * peer's certificate (0: trusted) */
	char	   *curl_error;		/* curl's error text, or NULL */
	int			attempts;		/* requests made for this result */
} MakiniResponse;

/* ------------------------------------------------------------------------
 * failure.c: what kind of failure a response is (pure: no side effects).
 * ------------------------------------------------------------------------
 */
typedef enum MakiniFailureKind
{
	MAKINI_FAIL_NONE,			/* a complete 2xx reply */
	MAKINI_FAIL_AUTH,			/* 401 */
	MAKINI_FAIL_FORBIDDEN,		/* 403 */
	MAKINI_FAIL_NOT_FOUND,		/* 404 */
	MAKINI_FAIL_BAD_REQUEST,	/* 400 */
	MAKINI_FAIL_RATE_LIMITED,	/* 429 */
	MAKINI_FAIL_UNAVAILABLE,	/* 500, 502, 503, 504 */
	MAKINI_FAIL_HTTP_OTHER,		/* any other status */
	MAKINI_FAIL_CONNECT,		/* connection refused or not made in time */
	MAKINI_FAIL_UNREACHABLE,	/* DNS, proxy, TLS handshake */
	MAKINI_FAIL_CA_FILE,		/* the trusted CAs could not be loaded */
	MAKINI_FAIL_CERTIFICATE,	/* the server's certificate was refused */
	MAKINI_FAIL_LOST,			/* connection broke mid-request */
	MAKINI_FAIL_TIMEOUT,		/* the request took too long */
	MAKINI_FAIL_TOO_LARGE,		/* reply over 1 GB */
	MAKINI_FAIL_OUT_OF_MEMORY,
	MAKINI_FAIL_BAD_ENCODING,	/* undecodable (gzip) reply */
	MAKINI_FAIL_TRANSFER_OTHER	/* any other libcurl failure */
} MakiniFailureKind;

extern bool makini_is_reply(const MakiniResponse *resp);
extern MakiniFailureKind makini_classify(const MakiniResponse *resp);
extern bool makini_failure_retryable(MakiniFailureKind kind);
extern bool makini_failure_unreachable(MakiniFailureKind kind);
extern bool makini_is_unreachable(const MakiniResponse *resp);
extern bool makini_response_ok(const MakiniResponse *resp);

/* ------------------------------------------------------------------------
 * http.c: libcurl transfers to endpoints -- one GET with retries and
 * backoff, interruptible waits, non-blocking progress for read-ahead and
 * async scans, and a rate budget per endpoint.
 * ------------------------------------------------------------------------
 */

/* how to reach an endpoint: plain values, copied by the endpoint */
typedef struct MakiniHttpConfig
{
	const char *name;			/* for log lines: the server's name */
	const char *url;			/* base URL, no trailing slash */
	const char *proxy;			/* proxy URL, or NULL: no proxy */
	const char *ca_file;		/* PEM file of trusted CAs, or NULL: system */
	const char *api_version;	/* sent as X-Api-Version, or NULL */
	int			connect_timeout;	/* seconds */
	int			request_timeout;	/* seconds, one HTTP request */
	int			max_retries;	/* retries of one request */
	int			max_retry_wait; /* seconds waited in total for retries */
	int			max_concurrent_requests;	/* rate budget of the endpoint */
} MakiniHttpConfig;

typedef struct MakiniEndpoint MakiniEndpoint;
typedef struct MakiniRequest MakiniRequest;

extern MakiniEndpoint *makini_endpoint_create(void);
extern void makini_endpoint_configure(MakiniEndpoint *ep,
									  const MakiniHttpConfig *cfg,
									  const char *token);
extern bool makini_endpoint_has_token(MakiniEndpoint *ep);
extern void makini_endpoint_set_token(MakiniEndpoint *ep, const char *token);
extern void makini_endpoint_forget(MakiniEndpoint *ep);
extern bool makini_endpoint_has_room(MakiniEndpoint *ep);

extern MakiniRequest *makini_http_start(MakiniEndpoint *ep, const char *path,
										MakiniStats *stats);
extern MakiniResponse *makini_http_finish(MakiniRequest *req);
extern const char *makini_request_path(MakiniRequest *req);
extern const char *makini_request_server_name(MakiniRequest *req);
extern void makini_request_set_body_context(MakiniRequest *req,
											MemoryContext cxt);
extern bool makini_request_poll(MakiniRequest *req);
extern bool makini_request_wait_arrival(MakiniRequest *req);
extern void makini_request_cancel(MakiniRequest *req);
extern long makini_request_timeout_ms(MakiniRequest *req);

/* what makini_wait_sockets says a socket waits for */
#define MAKINI_WAIT_READ	0x01
#define MAKINI_WAIT_WRITE	0x02
extern int	makini_wait_sockets(int *fds, int *events, int max);

/* ------------------------------------------------------------------------
 * remote.c: text that came from the server, fit for messages and columns.
 * ------------------------------------------------------------------------
 */
extern char *makini_remote_text(const char *s, size_t len);

#endif							/* MAKINI_HTTP_H */
