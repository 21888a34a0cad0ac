/*-------------------------------------------------------------------------
 *
 * options.c
 *		  Validation and lookup of makini_fdw's server, table, column and
 *		  user mapping options.
 *
 * One static table describes every option: the objects that may carry it,
 * how its value is checked, its default and where it lands in
 * MakiniServerOptions.  The validator, the defaults and the hint that lists
 * the valid names are all driven by that table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "makini_fdw.h"

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* objects an option may appear on (bits of MakiniOption.where) */
#define OPT_SERVER	0x01
#define OPT_TABLE	0x02
#define OPT_COLUMN	0x04
#define OPT_MAPPING	0x08

typedef enum MakiniOptKind
{
	OPT_BOOL,					/* parse_bool */
	OPT_INT,					/* decimal digits within [min, max] */
	OPT_CHOICE,					/* one of choices[], stored as a bool that is
								 * true unless it is the first choice */
	OPT_STRING					/* checked by check(), stored as a copy */
} MakiniOptKind;

/* who may set an option (MakiniOption.privilege) */
typedef enum MakiniOptPrivilege
{
	PRIV_ANYONE = 0,
	PRIV_SUPERUSER,				/* superusers only */
	PRIV_READ_FILES				/* superusers and pg_read_server_files */
} MakiniOptPrivilege;

/* returns NULL if value is acceptable, else an errdetail sentence */
typedef const char *(*MakiniOptCheck) (const char *value);

typedef struct MakiniOption
{
	const char *name;
	int			where;			/* OPT_* bits */
	MakiniOptKind kind;
	int			min;			/* OPT_INT range */
	int			max;
	const char *const *choices; /* OPT_CHOICE, NULL-terminated */
	MakiniOptCheck check;		/* OPT_STRING */
	const char *hint;			/* OPT_STRING: what a valid value looks like */
	bool		secret;			/* never echo the value */
	MakiniOptPrivilege privilege;	/* who may set it */
	const char *defval;			/* default, parsed like a given value */
	int			offset;			/* in MakiniServerOptions, or 0: not there */
} MakiniOption;

static const char *check_url_syntax(const char *value);
static const char *check_api_version(const char *value);
static const char *check_resource(const char *value);
static const char *check_expand(const char *value);
static const char *check_field(const char *value);
static const char *check_token(const char *value);
static const char *check_ca_file(const char *value);

pg_noreturn static void report_unknown_option(const char *name, int where);
pg_noreturn static void report_invalid_value(const MakiniOption *opt,
											 const char *value,
											 const char *detail,
											 const char *hint);

static const char *const on_unreachable_choices[] = {"error", "skip", NULL};

#define SRV(f) ((int) offsetof(MakiniServerOptions, f))

/* makini_fdw.allowed_hosts: hosts of servers owned by non-superusers */
char	   *makini_allowed_hosts = NULL;

/* offset 0 means "not stored in MakiniServerOptions": serverid is there */
StaticAssertDecl(offsetof(MakiniServerOptions, serverid) == 0,
				 "serverid must come first in MakiniServerOptions");

/*
 * Every option of makini_fdw.  Order matters only for the hint listing the
 * valid names.
 */
static const MakiniOption makini_options[] = {
	{.name = "url", .where = OPT_SERVER, .kind = OPT_STRING,
		.check = check_url_syntax,
		.hint = "Give a URL of the form https://host[:port][/path].",
	.defval = MAKINI_DEFAULT_URL, .offset = SRV(url)},
	{.name = "allow_insecure", .where = OPT_SERVER, .kind = OPT_BOOL,
		.privilege = PRIV_SUPERUSER,
	.defval = "false", .offset = SRV(allow_insecure)},
	{.name = "ca_file", .where = OPT_SERVER, .kind = OPT_STRING,
		.check = check_ca_file, .privilege = PRIV_READ_FILES,
		.hint = "Give the absolute path of a PEM file of certificate authorities.",
	.offset = SRV(ca_file)},
	{.name = "proxy", .where = OPT_SERVER, .kind = OPT_STRING,
		.check = check_url_syntax, .privilege = PRIV_SUPERUSER,
		.hint = "Give a proxy URL of the form http://host:port or https://host:port.",
	.offset = SRV(proxy)},
	{.name = "api_version", .where = OPT_SERVER, .kind = OPT_STRING,
		.check = check_api_version, .hint = "Give a version such as \"v1\".",
	.defval = "v1", .offset = SRV(api_version)},
	{.name = "connect_timeout", .where = OPT_SERVER, .kind = OPT_INT,
	.min = 1, .max = 3600, .defval = "10", .offset = SRV(connect_timeout)},
	{.name = "request_timeout", .where = OPT_SERVER, .kind = OPT_INT,
	.min = 1, .max = 86400, .defval = "60", .offset = SRV(request_timeout)},
	{.name = "max_retries", .where = OPT_SERVER, .kind = OPT_INT,
	.min = 0, .max = 100, .defval = "5", .offset = SRV(max_retries)},
	{.name = "max_retry_wait", .where = OPT_SERVER, .kind = OPT_INT,
	.min = 0, .max = 86400, .defval = "60", .offset = SRV(max_retry_wait)},
	{.name = "async_capable", .where = OPT_SERVER, .kind = OPT_BOOL,
	.defval = "true", .offset = SRV(async_capable)},
	{.name = "max_concurrent_requests", .where = OPT_SERVER, .kind = OPT_INT,
	.min = 1, .max = 8, .defval = "4", .offset = SRV(max_concurrent_requests)},
	{.name = "resource", .where = OPT_TABLE, .kind = OPT_STRING,
		.check = check_resource,
	.hint = "Give the path under /api/erp/, such as \"purchase-orders\" or \"statuses/purchase-orders\"."},
	{.name = "expand", .where = OPT_TABLE, .kind = OPT_STRING,
		.check = check_expand,
	.hint = "Give the name of an array field of each record, such as \"lineItems\"."},
	{.name = "page_size", .where = OPT_SERVER | OPT_TABLE, .kind = OPT_INT,
	.min = 1, .max = 500, .defval = "100", .offset = SRV(page_size)},
	{.name = "on_unreachable", .where = OPT_SERVER | OPT_TABLE,
		.kind = OPT_CHOICE, .choices = on_unreachable_choices,
	.defval = "error", .offset = SRV(skip_unreachable)},
	{.name = "use_remote_estimate", .where = OPT_SERVER | OPT_TABLE,
		.kind = OPT_BOOL,
	.defval = "false", .offset = SRV(use_remote_estimate)},
	{.name = "token", .where = OPT_MAPPING, .kind = OPT_STRING,
		.check = check_token, .secret = true,
	.hint = "Give the bearer token of the Makini connection."},
	{.name = "field", .where = OPT_COLUMN, .kind = OPT_STRING,
		.check = check_field,
	.hint = "Give a dotted path such as \"shipmentAddress.city\" or \"parent.orderNo\", or \"*\" for the fields no other column maps."},
	{0}
};

/*
 * Maps the catalog a validator call is for to the OPT_* bit of that object;
 * 0 for objects that take no options (the wrapper itself).
 */
static int
catalog_to_where(Oid catalog)
{
	switch (catalog)
	{
		case ForeignServerRelationId:
			return OPT_SERVER;
		case ForeignTableRelationId:
			return OPT_TABLE;
		case AttributeRelationId:
			return OPT_COLUMN;
		case UserMappingRelationId:
			return OPT_MAPPING;
		default:
			return 0;
	}
}

/* Finds the option called name that may appear on objects of kind where. */
static const MakiniOption *
find_option(const char *name, int where)
{
	const MakiniOption *opt;

	for (opt = makini_options; opt->name; opt++)
	{
		if ((opt->where & where) && strcmp(opt->name, name) == 0)
			return opt;
	}
	return NULL;
}

/* Reports an unknown option name with the list of valid names as a hint. */
static void
report_unknown_option(const char *name, int where)
{
	const MakiniOption *opt;
	StringInfoData buf;

	initStringInfo(&buf);
	for (opt = makini_options; opt->name; opt++)
	{
		if (opt->where & where)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", opt->name);
	}

	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", name),
			 buf.len > 0
			 ? errhint("Valid options in this context are: %s", buf.data)
			 : errhint("There are no valid options in this context.")));
}

/*
 * Reports an invalid value of opt; detail says what is wrong (or NULL) and
 * hint what is valid.  A secret value is never echoed.
 */
static void
report_invalid_value(const MakiniOption *opt, const char *value,
					 const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 opt->secret
			 ? errmsg("invalid value for option \"%s\"", opt->name)
			 : errmsg("invalid value for option \"%s\": \"%s\"",
					  opt->name, value),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("%s", hint)));
}

/* Parses a plain non-negative decimal integer (no sign, space or unit). */
static bool
parse_plain_int(const char *value, int *result)
{
	int64		v = 0;
	const char *p;

	if (*value == '\0')
		return false;
	for (p = value; *p; p++)
	{
		if (*p < '0' || *p > '9' || v > PG_INT32_MAX / 10)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (v > PG_INT32_MAX)
		return false;
	*result = (int) v;
	return true;
}

/* Returns the index of value in opt's choices, or -1. */
static int
choice_index(const MakiniOption *opt, const char *value)
{
	int			i;

	for (i = 0; opt->choices[i]; i++)
	{
		if (strcmp(opt->choices[i], value) == 0)
			return i;
	}
	return -1;
}

/* Lists opt's choices as a hint: Valid values are "a", "b" and "c". */
static char *
choices_hint(const MakiniOption *opt)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "Valid values are ");
	for (i = 0; opt->choices[i]; i++)
		appendStringInfo(&buf, "%s\"%s\"",
						 i == 0 ? "" : (opt->choices[i + 1] ? ", " : " and "),
						 opt->choices[i]);
	appendStringInfoChar(&buf, '.');
	return buf.data;
}

/*
 * Checks value against opt, raising on an invalid one; if dst is not NULL,
 * stores the parsed value at opt's offset in it.  Used both to validate and
 * to read options, so what is accepted and what is used cannot differ.
 */
static void
parse_option_value(const MakiniOption *opt, const char *value,
				   MakiniServerOptions *dst)
{
	char	   *field = dst && opt->offset ? (char *) dst + opt->offset : NULL;
	const char *detail;
	bool		b;
	int			i;

	switch (opt->kind)
	{
		case OPT_BOOL:
			if (!parse_bool(value, &b))
				report_invalid_value(opt, value, NULL,
									 "Valid values are \"true\" and \"false\".");
			if (field)
				*(bool *) field = b;
			break;
		case OPT_INT:
			if (!parse_plain_int(value, &i) || i < opt->min || i > opt->max)
				report_invalid_value(opt, value, NULL,
									 psprintf("Valid values are integers from %d to %d.",
											  opt->min, opt->max));
			if (field)
				*(int *) field = i;
			break;
		case OPT_CHOICE:
			i = choice_index(opt, value);
			if (i < 0)
				report_invalid_value(opt, value, NULL, choices_hint(opt));
			if (field)
				*(bool *) field = (i > 0);
			break;
		case OPT_STRING:
			detail = opt->check(value);
			if (detail)
				report_invalid_value(opt, value, detail, opt->hint);
			if (field)
				*(char **) field = pstrdup(value);
			break;
	}
}

/* ------------------------------------------------------------------------
 * Value checks of string options.  Each returns NULL for a valid value,
 * else an errdetail sentence.
 * ------------------------------------------------------------------------
 */

/* True if s has a control character (or DEL), or a space unless allowed. */
static bool
has_control(const char *s, bool space_ok)
{
	for (; *s; s++)
	{
		if ((unsigned char) *s < ' ' || *s == 0x7f || (*s == ' ' && !space_ok))
			return true;
	}
	return false;
}

/* True if the first n bytes of s are all in the character set allowed. */
static bool
span_is(const char *s, size_t n, const char *allowed)
{
	return strspn(s, allowed) >= n;
}

#define ALNUM_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

#define URL_SCHEME_DETAIL "The URL must start with \"http://\" or \"https://\"."
#define URL_PORT_DETAIL "The URL's port must be a number from 1 to 65535."
#define URL_NO_HOST_DETAIL "The URL has no host."
#define URL_HOST_DETAIL "The URL's host name contains an invalid character."

/* A part of a URL libcurl parsed, copied into palloc'd memory; or NULL. */
static char *
url_part(CURLU *u, CURLUPart what)
{
	char	   *value = NULL;
	char	   *result;

	if (curl_url_get(u, what, &value, 0) != CURLUE_OK || value == NULL)
		return NULL;
	result = pstrdup(value);
	curl_free(value);
	return result;
}

/*
 * Checks a URL with libcurl's parser (u receives it): an http or https
 * URL with a host, an optional port and path, nothing else.  What libcurl
 * lets pass is checked here: it takes "https:///x" as host "x", drops an
 * empty port, accepts port 0 and any character but a few in a host name.
 * Sets *is_http and *host (as written, without brackets).
 */
static const char *
check_url_parts(CURLU *u, const char *url, bool *is_http, char **host)
{
	const char *authority;
	char	   *scheme;
	char	   *port;
	size_t		n;

	switch (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME))
	{
		case CURLUE_OK:
			break;
		case CURLUE_OUT_OF_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
			break;
		case CURLUE_NO_HOST:
			return URL_NO_HOST_DETAIL;
		case CURLUE_BAD_PORT_NUMBER:
			return URL_PORT_DETAIL;
		case CURLUE_BAD_IPV6:
			return "The URL's IPv6 address is malformed.";
		case CURLUE_BAD_HOSTNAME:
			return URL_HOST_DETAIL;
		default:
			return URL_SCHEME_DETAIL;
	}
	scheme = url_part(u, CURLUPART_SCHEME);
	*is_http = scheme != NULL && pg_strcasecmp(scheme, "http") == 0;
	if (!*is_http && (scheme == NULL || pg_strcasecmp(scheme, "https") != 0))
		return URL_SCHEME_DETAIL;
	if (url_part(u, CURLUPART_USER) != NULL ||
		url_part(u, CURLUPART_PASSWORD) != NULL)
		return "The URL must not contain a user name or password.";
	if (url_part(u, CURLUPART_QUERY) != NULL ||
		url_part(u, CURLUPART_FRAGMENT) != NULL)
		return "The URL must not contain a query string or a fragment.";

	authority = strstr(url, "://") + 3;
	n = strcspn(authority, "/");
	if (n == 0)
		return URL_NO_HOST_DETAIL;
	port = url_part(u, CURLUPART_PORT);
	if (authority[n - 1] == ':' || (port != NULL && atoi(port) < 1))
		return URL_PORT_DETAIL;

	/*
	 * The host as written, not as libcurl normalizes it ("127.1" would
	 * become "127.0.0.1"): the loopback rule and allowed_hosts judge what
	 * the user wrote.  libcurl has checked an IPv6 address.
	 */
	if (authority[0] == '[')
		*host = pnstrdup(authority + 1, strcspn(authority, "]") - 1);
	else
	{
		*host = pnstrdup(authority, strcspn(authority, ":/"));
		if (!span_is(*host, strlen(*host), ALNUM_CHARS ".-"))
			return URL_HOST_DETAIL;
	}
	return NULL;
}

/*
 * Splits url into scheme and host, returning NULL if it is a valid base URL
 * (http or https, a host, an optional port and path, nothing else), else
 * the errdetail sentence saying what is wrong.
 */
static const char *
parse_url(const char *url, bool *is_http, char **host)
{
	CURLU	   *u;
	const char *volatile detail = NULL;

	if (has_control(url, false) || strchr(url, '\\'))
		return "The URL must not contain spaces, control characters or backslashes.";
	u = curl_url();
	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PG_TRY();
	{
		detail = check_url_parts(u, url, is_http, host);
	}
	PG_FINALLY();
	{
		curl_url_cleanup(u);
	}
	PG_END_TRY();
	return detail;
}

/* True if host is localhost, an address in 127.0.0.0/8, or ::1. */
static bool
is_loopback_host(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (pg_strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/*
 * Parses the value of the url or proxy option, raising on a malformed one;
 * returns whether it is plain http and sets *host.
 */
static bool
parse_url_option(const char *name, const char *value, char **host)
{
	const MakiniOption *opt = find_option(name, OPT_SERVER);
	const char *detail;
	bool		is_http = false;

	detail = parse_url(value, &is_http, host);
	if (detail)
		report_invalid_value(opt, value, detail, opt->hint);
	return is_http;
}

/*
 * Raises unless url (reached through proxy, if not NULL) may carry the
 * token: https, or http to a loopback host, or http anywhere with
 * allow_insecure.  Through a proxy, an https url is tunnelled (the proxy
 * sees only TLS), but a plain http request crosses a plain http:// proxy
 * in clear text, so that proxy must be on a loopback host too.  Used when
 * options are validated and again when they are used, so that no sequence
 * of ALTERs can send a token in clear text to another host.  Returns the
 * url's host.
 */
static char *
check_transport(const char *url, const char *proxy, bool allow_insecure)
{
	char	   *host = NULL;
	char	   *proxy_host = NULL;
	bool		is_http = parse_url_option("url", url, &host);

	if (is_http && !allow_insecure && !is_loopback_host(host))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"url\": \"%s\"", url),
				 errdetail("Plain http:// is allowed only to loopback hosts (localhost, 127.0.0.0/8, ::1): the token would cross the network unencrypted."),
				 errhint("Use https://, or set the server option allow_insecure to 'true'.")));
	if (proxy != NULL && parse_url_option("proxy", proxy, &proxy_host) &&
		is_http && !allow_insecure && !is_loopback_host(proxy_host))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"proxy\": \"%s\"", proxy),
				 errdetail("The url is plain http://, and a plain http:// proxy other than a loopback host would see the token unencrypted."),
				 errhint("Use an https:// url or proxy, or set the server option allow_insecure to 'true'.")));
	return host;
}

/* True if host is in the comma-separated list, or the list has "*". */
static bool
host_listed(const char *host, const char *list)
{
	char	   *copy = pstrdup(list ? list : "");
	char	   *save = NULL;
	char	   *item;
	bool		found = false;

	for (item = strtok_r(copy, ",", &save); item && !found;
		 item = strtok_r(NULL, ",", &save))
	{
		size_t		n;

		while (*item == ' ' || *item == '\t')
			item++;
		n = strlen(item);
		while (n > 0 && (item[n - 1] == ' ' || item[n - 1] == '\t'))
			item[--n] = '\0';
		if (n > 1 && item[0] == '[' && item[n - 1] == ']')
		{
			item[n - 1] = '\0';
			item++;
		}
		found = (strcmp(item, "*") == 0 || pg_strcasecmp(item, host) == 0);
	}
	pfree(copy);
	return found;
}

/*
 * May a server owned by owner use host?  Superusers' servers may use any
 * host, other servers only those in makini_fdw.allowed_hosts.
 */
static bool
host_allowed(const char *host, Oid owner)
{
	return superuser_arg(owner) || host_listed(host, makini_allowed_hosts);
}

/*
 * Raises unless a server owned by owner may use host.  servername is NULL
 * while the server is being created.
 */
static void
check_host_allowed(const char *host, Oid owner, const char *servername)
{
	if (host_allowed(host, owner))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to use host \"%s\" for a makini_fdw server", host),
			 servername
			 ? errdetail("Server \"%s\" is owned by role \"%s\", which is not a superuser, and the host is not in makini_fdw.allowed_hosts.",
						 servername, GetUserNameFromId(owner, false))
			 : errdetail("Servers owned by roles that are not superusers may use only the hosts in makini_fdw.allowed_hosts."),
			 errhint("A superuser can add the host to the setting makini_fdw.allowed_hosts.")));
}

/*
 * Raises unless the server of opts may send a request to its host now: the
 * setting and the server's owner may have changed since it was validated.
 */
void
makini_check_host_allowed(const MakiniServerOptions *opts)
{
	check_host_allowed(opts->host, opts->owner, opts->servername);
}

/* The same rule as a test, for makini_connection_status (which never raises). */
bool
makini_host_allowed(const MakiniServerOptions *opts)
{
	return host_allowed(opts->host, opts->owner);
}

/*
 * Raises unless the current user may set opt: allow_insecure and proxy
 * decide where the token goes, and ca_file makes the backend read a file
 * (the rule file_fdw applies to its filename).
 */
static void
check_option_privilege(const MakiniOption *opt)
{
	if (opt->privilege == PRIV_ANYONE || superuser())
		return;
	if (opt->privilege == PRIV_READ_FILES)
	{
		if (has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
			return;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set option \"%s\"", opt->name),
				 errhint("Only superusers and members of pg_read_server_files may set option \"%s\".",
						 opt->name)));
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to set option \"%s\"", opt->name),
			 errhint("Only superusers may set option \"%s\".", opt->name)));
}

/* url as an option value: syntax only; the http rule needs allow_insecure */
static const char *
check_url_syntax(const char *value)
{
	bool		is_http;
	char	   *host;

	return parse_url(value, &is_http, &host);
}

/* api_version: a non-empty token of letters, digits, '.', '_' and '-' */
static const char *
check_api_version(const char *value)
{
	if (*value == '\0' || !span_is(value, strlen(value), ALNUM_CHARS "._-"))
		return "The version must be non-empty and contain only letters, digits, \".\", \"_\" and \"-\".";
	return NULL;
}

/*
 * Checks each segment of value (separated by sep, n bytes at seg) with
 * check_segment; returns the first complaint, or NULL.
 */
static const char *
check_segments(const char *value, const char *sep,
			   const char *(*check_segment) (const char *seg, size_t n))
{
	const char *seg = value;

	for (;;)
	{
		size_t		n = strcspn(seg, sep);
		const char *detail = check_segment(seg, n);

		if (detail != NULL || seg[n] == '\0')
			return detail;
		seg += n + 1;
	}
}

/* A segment of a resource: non-empty, not made only of dots. */
static const char *
check_resource_segment(const char *seg, size_t n)
{
	if (n == 0)
		return "The resource must be non-empty and must not start or end with \"/\" or contain \"//\".";
	if (strspn(seg, ".") >= n)
		return "The resource must not contain \".\" or \"..\" as a path segment.";
	return NULL;
}

/*
 * resource: '/'-separated non-empty segments of letters, digits, '.', '_'
 * and '-', none made only of dots (no "..", which would climb out of
 * /api/erp/).
 */
static const char *
check_resource(const char *value)
{
	if (!span_is(value, strlen(value), ALNUM_CHARS "._-/"))
		return "The resource must contain only letters, digits, \".\", \"_\", \"-\" and \"/\".";
	return check_segments(value, "/", check_resource_segment);
}

/* expand: one field name (non-empty, no '.', no space or control) */
static const char *
check_expand(const char *value)
{
	if (*value == '\0' || strchr(value, '.') || has_control(value, false))
		return "The value must be a single field name, without \".\", spaces or control characters.";
	return NULL;
}

/* A segment of a field path: non-empty, not "*". */
static const char *
check_field_segment(const char *seg, size_t n)
{
	if (n == 0)
		return "The field must be a path of non-empty names separated by \".\".";
	if (n == 1 && seg[0] == '*')
		return "\"*\" must be the whole field.";
	return NULL;
}

/*
 * field: exactly "*", or a dotted path of non-empty segments (optionally
 * starting with "parent."); '*' is not a segment.
 */
static const char *
check_field(const char *value)
{
	if (strcmp(value, "*") == 0)
		return NULL;
	if (has_control(value, true))
		return "The field must not contain control characters.";
	return check_segments(value, ".", check_field_segment);
}

/* ca_file: an absolute path without control characters */
static const char *
check_ca_file(const char *value)
{
	if (!is_absolute_path(value) || has_control(value, true))
		return "The path must be absolute and must not contain control characters.";
	return NULL;
}

/* token: non-empty, no whitespace or control characters (never echoed) */
static const char *
check_token(const char *value)
{
	if (*value == '\0' || has_control(value, false))
		return "The token is empty or contains whitespace or control characters.";
	return NULL;
}

/* ------------------------------------------------------------------------
 * The validator
 * ------------------------------------------------------------------------
 */

/* Finds the value of option name in a DefElem list, or NULL. */
static const char *
find_defelem(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, name) == 0)
			return defGetString(def);
	}
	return NULL;
}

/*
 * Checks what needs several options of one object: the http rules of a
 * server's url and proxy, the hosts a non-superuser's server may use, and
 * the token a user mapping must have.  On ALTER, PostgreSQL passes the
 * object's resulting option list, so dropping allow_insecure or token is
 * caught here too.  The current user creates the server or, to alter it,
 * owns it (or is a superuser: then the check before each request applies).
 */
static void
validate_option_set(List *options, int where)
{
	const char *url = find_defelem(options, "url");
	const char *insecure = find_defelem(options, "allow_insecure");
	bool		allow_insecure = false;
	char	   *host;

	if (where == OPT_SERVER)
	{
		if (insecure)
			(void) parse_bool(insecure, &allow_insecure);
		host = check_transport(url ? url : MAKINI_DEFAULT_URL,
							   find_defelem(options, "proxy"), allow_insecure);
		check_host_allowed(host, GetUserId(), NULL);
	}
	if (where == OPT_MAPPING && !find_defelem(options, "token"))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a makini_fdw user mapping must have option \"token\""),
				 errhint("Give the connection's bearer token: CREATE USER MAPPING ... OPTIONS (token '...') or ALTER USER MAPPING ... OPTIONS (ADD token '...').")));
}

/*
 * Validates the options of a server, user mapping, foreign table or column
 * that uses makini_fdw (or of the wrapper itself, which takes none).
 */
PG_FUNCTION_INFO_V1(makini_fdw_validator);

Datum
makini_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	int			where = catalog_to_where(PG_GETARG_OID(1));
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const MakiniOption *opt = find_option(def->defname, where);

		if (!opt)
			report_unknown_option(def->defname, where);
		check_option_privilege(opt);
		parse_option_value(opt, defGetString(def), NULL);
	}
	validate_option_set(options, where);

	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Lookup
 * ------------------------------------------------------------------------
 */

/*
 * Checks the options of list that may appear on objects of kind where, and
 * stores those that live in MakiniServerOptions into opts.  Options are
 * checked again when used, in case the validator was bypassed.
 */
static void
apply_options(List *options, int where, MakiniServerOptions *opts)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const MakiniOption *opt = find_option(def->defname, where);

		if (opt)
			parse_option_value(opt, defGetString(def), opts);
	}
}

/* Returns the value of option name in options, checked as at validation. */
static const char *
checked_option(List *options, const char *name, int where)
{
	const char *value = find_defelem(options, name);

	if (value)
		parse_option_value(find_option(name, where), value, NULL);
	return value;
}

/*
 * Fills opts with the defaults overridden by server's options; the url
 * loses any trailing '/', and url and proxy are checked again against
 * allow_insecure.
 */
void
makini_get_server_options(ForeignServer *server, MakiniServerOptions *opts)
{
	const MakiniOption *opt;
	size_t		n;

	memset(opts, 0, sizeof(*opts));
	for (opt = makini_options; opt->name; opt++)
	{
		if ((opt->where & OPT_SERVER) && opt->defval)
			parse_option_value(opt, opt->defval, opts);
	}
	apply_options(server->options, OPT_SERVER, opts);

	opts->serverid = server->serverid;
	opts->servername = pstrdup(server->servername);
	opts->owner = server->owner;
	opts->host = check_transport(opts->url, opts->proxy, opts->allow_insecure);
	n = strlen(opts->url);
	while (n > 0 && opts->url[n - 1] == '/')
		opts->url[--n] = '\0';
}

/* The default resource of a table: its name with '_' turned into '-'. */
static char *
default_resource(Oid relid)
{
	char	   *name = get_rel_name(relid);
	char	   *p;

	for (p = name; *p; p++)
	{
		if (*p == '_')
			*p = '-';
	}
	if (check_resource(name) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" needs option \"resource\"",
						get_rel_name(relid)),
				 errdetail("Its name does not make a valid resource path."),
				 errhint("Add OPTIONS (resource '...') to the foreign table.")));
	return name;
}

/*
 * Returns the options of foreign table relid: its server's, with the
 * table's page_size, on_unreachable and use_remote_estimate winning, and
 * its resource (default from the table name) and expand.
 */
MakiniTableOptions *
makini_get_table_options(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	MakiniTableOptions *topts = palloc0(sizeof(MakiniTableOptions));
	/* apply_options() below checks these too */
	const char *resource = find_defelem(table->options, "resource");
	const char *expand = find_defelem(table->options, "expand");

	topts->relid = relid;
	makini_get_server_options(GetForeignServer(table->serverid), &topts->server);
	apply_options(table->options, OPT_TABLE, &topts->server);
	topts->resource = resource ? pstrdup(resource) : default_resource(relid);
	topts->expand = expand ? pstrdup(expand) : NULL;
	return topts;
}

/*
 * Returns the field path of a column: its option field, else its name in
 * camelCase.
 */
char *
makini_get_column_field(Oid relid, AttrNumber attnum, const char *attname)
{
	const char *field = checked_option(GetForeignColumnOptions(relid, attnum),
									   "field", OPT_COLUMN);

	return field ? pstrdup(field) : makini_camel_case(attname);
}

/*
 * Turns a snake_case column name into the API's camelCase field name:
 * "total_net_value" becomes "totalNetValue".  Underscores are dropped and
 * the letter after one is upper-cased (except at the start).
 */
char *
makini_camel_case(const char *name)
{
	char	   *result = palloc(strlen(name) + 1);
	char	   *out = result;
	bool		upper = false;

	for (; *name; name++)
	{
		if (*name == '_')
		{
			upper = (out > result);
			continue;
		}
		*out++ = upper ? pg_ascii_toupper((unsigned char) *name) : *name;
		upper = false;
	}
	*out = '\0';
	return result;
}

/*
 * Returns the token of a user mapping; raises (naming server and user, never
 * showing any token) if it has none or a malformed one.
 */
const char *
makini_get_token(UserMapping *um, const char *servername)
{
	const char *token = checked_option(um->options, "token", OPT_MAPPING);
	const char *user;

	if (token)
		return token;

	user = OidIsValid(um->userid) ? GetUserNameFromId(um->userid, false) : "public";
	ereport(ERROR,
			(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
			 errmsg("user mapping for user \"%s\" on server \"%s\" has no option \"token\"",
					user, servername),
			 errhint("Add it with ALTER USER MAPPING FOR %s SERVER %s OPTIONS (ADD token '...').",
					 OidIsValid(um->userid) ? quote_identifier(user) : "PUBLIC",
					 quote_identifier(servername))));
	return NULL;				/* keep compiler quiet */
}
