/*-------------------------------------------------------------------------
 *
 * failure.c
 *		  What kind of failure a response is: the one classification of
 *		  libcurl error codes and HTTP statuses in makini_fdw.
 *
 * Pure functions of a MakiniResponse.  http.c asks them whether to retry,
 * errors.c which SQL error to raise, scans whether on_unreachable 'skip'
 * applies; none of them looks at a curl error code itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "makini_http.h"

/* Did a reply arrive at all (whatever its status)? */
bool
makini_is_reply(const MakiniResponse *resp)
{
	return resp->curl_code == CURLE_OK && resp->status != 0;
}

/* Did a complete 2xx reply arrive? */
bool
makini_response_ok(const MakiniResponse *resp)
{
	return resp->curl_code == CURLE_OK && resp->status >= 200 &&
		resp->status < 300;
}

/* The kind of a libcurl failure. */
static MakiniFailureKind
classify_transport(int curl_code)
{
	switch ((CURLcode) curl_code)
	{
		case CURLE_COULDNT_CONNECT:
			return MAKINI_FAIL_CONNECT;
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_USE_SSL_FAILED:
		case CURLE_PROXY:
			return MAKINI_FAIL_UNREACHABLE;
		case CURLE_SSL_CACERT_BADFILE:
			return MAKINI_FAIL_CA_FILE;
		case CURLE_PEER_FAILED_VERIFICATION:
			return MAKINI_FAIL_CERTIFICATE;
		case CURLE_PARTIAL_FILE:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return MAKINI_FAIL_LOST;
		case CURLE_OPERATION_TIMEDOUT:
			return MAKINI_FAIL_TIMEOUT;
		case CURLE_WRITE_ERROR:
			return MAKINI_FAIL_TOO_LARGE;
		case CURLE_OUT_OF_MEMORY:
			return MAKINI_FAIL_OUT_OF_MEMORY;
		case CURLE_BAD_CONTENT_ENCODING:
			return MAKINI_FAIL_BAD_ENCODING;
		default:
			return MAKINI_FAIL_TRANSFER_OTHER;
	}
}

/* The kind of an HTTP status (a reply arrived). */
static MakiniFailureKind
classify_status(long status)
{
	if (status >= 200 && status < 300)
		return MAKINI_FAIL_NONE;
	switch (status)
	{
		case 400:
			return MAKINI_FAIL_BAD_REQUEST;
		case 401:
			return MAKINI_FAIL_AUTH;
		case 403:
			return MAKINI_FAIL_FORBIDDEN;
		case 404:
			return MAKINI_FAIL_NOT_FOUND;
		case 429:
			return MAKINI_FAIL_RATE_LIMITED;
		case 500:
		case 502:
		case 503:
		case 504:
			return MAKINI_FAIL_UNAVAILABLE;
		default:
			return MAKINI_FAIL_HTTP_OTHER;
	}
}

/*
 * The kind of a response: by its HTTP status if a reply arrived, else by
 * libcurl's error.
 */
MakiniFailureKind
makini_classify(const MakiniResponse *resp)
{
	if (makini_is_reply(resp))
		return classify_status(resp->status);
	return classify_transport(resp->curl_code);
}

/*
 * Should a request that failed this way be sent again?  What a new
 * attempt may not meet: 429, 500/502/503/504, refused, reset, timed out,
 * cut short.  DNS and TLS failures are not retried: they rarely heal in
 * seconds and usually mean a wrong url.
 */
bool
makini_failure_retryable(MakiniFailureKind kind)
{
	return kind == MAKINI_FAIL_RATE_LIMITED || kind == MAKINI_FAIL_UNAVAILABLE ||
		kind == MAKINI_FAIL_CONNECT || kind == MAKINI_FAIL_LOST ||
		kind == MAKINI_FAIL_TIMEOUT;
}

/*
 * Does a failure of this kind mean the server could not be reached: the
 * failures on_unreachable 'skip' turns into a WARNING?  The retryable ones
 * (after the retries), and the DNS and TLS failures.
 */
bool
makini_failure_unreachable(MakiniFailureKind kind)
{
	return makini_failure_retryable(kind) || kind == MAKINI_FAIL_UNREACHABLE ||
		kind == MAKINI_FAIL_CA_FILE || kind == MAKINI_FAIL_CERTIFICATE;
}

/* makini_failure_unreachable() of a response. */
bool
makini_is_unreachable(const MakiniResponse *resp)
{
	return makini_failure_unreachable(makini_classify(resp));
}
