#!/usr/bin/python3
"""A Makini API simulator for the makini_fdw tests (standard library only).

    /usr/bin/python3 sql-tests/simulator.py --port 18765 [--host 127.0.0.1]
        [--bench-orders N] [--pidfile F] [--prewarm] [--verbose]

Serves the connections of simdata.py following shared/makini-api/CONTRACT.md,
and an admin API under /_sim/ (no auth) to inject faults, set latencies, read
the request log and the ground truth of the foreign tables:

    /_sim/reset                      clear faults, the log and served bodies, reset latencies
    /_sim/fault?kind=K&...           add a fault rule (see FAULT_KINDS)
    /_sim/faults                     the active fault rules (JSON)
    /_sim/latency?conn=NAME&ms=N     set a connection's latency
    /_sim/requests[?since=SEQ]       the request log (CSV)
    /_sim/data/CONN/TABLE.csv        ground truth of a foreign table (CSV)
    /_sim/stats                      orders/lines/vendors per connection (JSON)
    /_sim/bodies?dir=PATH[&log=0]    serve the files of a directory (see below)
    /_sim/help                       this text

A fault rule: conn=NAME (default: any), path=PREFIX (default: /api/),
page=N (only requests for that page; no page parameter counts as 1),
count=N (default 1; -1 = forever), kind=K and K's parameters:

    status&status=503&code=SYSTEM_UNAVAILABLE[&retry_after=S | &retry_after_date=1]
    html[&status=502]   empty[&status=500]   notjson   wrongshape
    truncate   reset   slow&delay_ms=N   stall&delay_ms=N   deprecate
    next_loop   cross_origin_next   empty_next   short
    bad_value&field=F&value=V[&json=1]    (F may be dotted: lineItems.0.lineNo)

Every rule matching a request fires, in the order added, each using up one
count; a rule that replaces the reply (status, html, empty, notjson,
wrongshape, reset) ends the list. Replies are never cached when a rule fired.

Served bodies (for the differential test of the FDW's JSON parsers): after
/_sim/bodies?dir=PATH, an API request (with a valid token) for
/_bodies/NAME/MODE/api/... is answered 200 with the bytes of PATH/NAME.json as
they are when it is not for a page > 1, else with an empty last page; MODE is
"gzip" (compressed if the client accepts it) or "identity" (never
compressed). A server url of http://host:port/_bodies/NAME/MODE makes every
request of a foreign table such a request. "dir=" turns it off; with log=0
these requests are not logged (long runs make millions of them).
"""

import argparse
import csv
import gc
import gzip
import io
import itertools
import json
import operator
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simdata  # noqa: E402
from simdata import (DATETIME_FIELDS, RESOURCES, TABLES, JsonStyle,  # noqa: E402
                     instant_key, scalar_fields)

SUNSET = "Sat, 01 May 2027 00:00:00 GMT"
SERVED_VERSIONS = {"v1": False, "v0": True}     # version -> deprecated
MAX_PER_PAGE, DEFAULT_PER_PAGE = 500, 100
SERVED_BODY = re.compile(r"/_bodies/([A-Za-z0-9_-]+)/(gzip|identity)/api/.*")
EMPTY_LAST_PAGE = b'{"data": [], "links": {"next": null}, "meta": {}}'
CACHE_LIMIT = 1 << 30                           # bytes of cached bodies

# ---------------------------------------------------------------------------
# Errors (CONTRACT §5)
# ---------------------------------------------------------------------------

ERRORS = {
    "INVALID_REQUEST": (400, "invalid_request_error", "The request is invalid."),
    "INVALID_FILTER": (400, "invalid_request_error", "The filter or sort is invalid."),
    "UNSUPPORTED_API_VERSION": (400, "invalid_request_error",
                                "This API version is not supported; use v1."),
    "AUTHENTICATION_FAILED": (401, "authentication_error",
                              "The API token is invalid or expired."),
    "TOKEN_EXPIRED": (401, "authentication_error", "The API token has expired."),
    "REAUTHORIZATION_REQUIRED": (401, "authentication_error",
                                 "The system credentials changed; reconnect the integration."),
    "PERMISSION_DENIED": (403, "permission_error",
                          "The connected system account lacks permission."),
    "NOT_FOUND": (404, "not_found_error", "No such record or path."),
    "RATE_LIMIT_EXCEEDED": (429, "rate_limit_error",
                            "Too many requests for this connection; retry later."),
    "INTERNAL_ERROR": (500, "api_error", "Makini failed to process the request."),
    "SYSTEM_ERROR": (502, "system_error", "The connected system returned an error."),
    "SYSTEM_UNAVAILABLE": (503, "system_error", "The connected system is unreachable."),
    "SYSTEM_TIMEOUT": (504, "system_error", "The connected system timed out."),
}
DEFAULT_CODES = {400: "INVALID_REQUEST", 401: "AUTHENTICATION_FAILED",
                 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 405: "INVALID_REQUEST", 429: "RATE_LIMIT_EXCEEDED",
                 500: "INTERNAL_ERROR", 502: "SYSTEM_ERROR",
                 503: "SYSTEM_UNAVAILABLE", 504: "SYSTEM_TIMEOUT"}


class ApiError(Exception):
    """A contract error reply: status, code and an optional message."""

    def __init__(self, code, message=None, status=None, headers=()):
        known = ERRORS.get(code)
        self.code = code
        self.status = status or (known[0] if known else 500)
        self.type = known[1] if known else "api_error"
        self.message = message or (known[2] if known else "Request failed.")
        self.headers = list(headers)
        super().__init__(f"{self.status} {code}: {self.message}")


class AdminError(Exception):
    """A bad admin request (answered 400 text/plain)."""


# ---------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------

class Reply:
    """A response before delivery: status, body bytes, extra headers."""

    __slots__ = ("status", "body", "ctype", "headers", "records", "_gz")

    def __init__(self, status, body=b"", ctype="application/json",
                 headers=(), records=0):
        self.status, self.body, self.ctype = status, body, ctype
        self.headers, self.records, self._gz = list(headers), records, None

    def gzipped(self):
        """The body gzip-compressed (computed once)."""
        if self._gz is None:
            self._gz = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gz


def error_reply(err, request_id):
    """The §5 JSON error body for an ApiError."""
    body = json.dumps({"error": {"code": err.code, "type": err.type,
                                 "message": err.message,
                                 "request_id": request_id}}).encode()
    return Reply(err.status, body, headers=err.headers)


def text_reply(text, status=200, ctype="text/plain; charset=utf-8"):
    return Reply(status, text.encode("utf-8"), ctype)


def _phrase(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# ---------------------------------------------------------------------------
# Data access: one list endpoint of one connection
# ---------------------------------------------------------------------------

def text_form(value):
    """A scalar JSON value as filters and sorts see it; None if null/""."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return None
    return str(value)           # Decimal or int: the number's JSON text


_COMPARE = {"gt": operator.gt, "gteq": operator.ge, "lt": operator.lt,
            "lteq": operator.le, "lted": operator.le}
FILTER_OPS = {"eq", "contains", "startsWith"} | set(_COMPARE)


class Resource:
    """The records of one list endpoint, with lazily built lookup columns,
    encoded records and remembered selections."""

    def __init__(self, name, records, style):
        self.name = name
        entity, self.has_items = RESOURCES[name]
        self.fields = scalar_fields(entity)
        self.records, self.style = records, style
        self._encoded = [None] * len(records)
        self._columns, self._selections, self._index = {}, {}, None
        self._lock = threading.Lock()

    def encoded(self, i):
        """Record i as JSON bytes (cached)."""
        data = self._encoded[i]
        if data is None:
            data = self._encoded[i] = self.style.dumpb(self.records[i])
        return data

    def find(self, key):
        """Index of the record with this key, or None."""
        if self._index is None:
            self._index = {r.get("key"): i for i, r in enumerate(self.records)}
        return self._index.get(key)

    def column(self, field, kind):
        """Per-record values of a field: "text", "lower" or "instant"."""
        col = self._columns.get((field, kind))
        if col is None:
            texts = [text_form(r.get(field)) for r in self.records]
            if kind == "lower":
                col = [t.lower() if t is not None else None for t in texts]
            elif kind == "instant":
                col = [instant_key(t) if t is not None else None for t in texts]
            else:
                col = texts
            self._columns[(field, kind)] = col
        return col

    def _matching(self, field, op, value):
        """Indices of the records one filter matches."""
        if op in _COMPARE:
            if field in DATETIME_FIELDS:
                bound = instant_key(value)
                if bound is None:
                    raise ApiError("INVALID_FILTER",
                                   f"filter[{field}:{op}]: not an ISO 8601 date-time: {value!r}")
                col = self.column(field, "instant")
            else:
                bound, col = value, self.column(field, "text")
            test = _COMPARE[op]
            return {i for i, v in enumerate(col) if v is not None and test(v, bound)}
        if op == "eq":
            return {i for i, v in enumerate(self.column(field, "text")) if v == value}
        needle, col = value.lower(), self.column(field, "lower")
        if op == "contains":
            return {i for i, v in enumerate(col) if v is not None and needle in v}
        return {i for i, v in enumerate(col) if v is not None and v.startswith(needle)}

    def select(self, query):
        """Indices of the matching records, in the requested order."""
        key = (tuple(query.filters.values()), query.match_any, tuple(query.sorts.items()))
        found = self._selections.get(key)
        if found is not None:
            return found
        if query.filters:
            sets = [self._matching(*f) for f in query.filters.values()]
            chosen = set.union(*sets) if query.match_any else set.intersection(*sets)
            idx = sorted(chosen)
        else:
            idx = list(range(len(self.records)))
        for field, descending in reversed(list(query.sorts.items())):
            col = self.column(field, "instant" if field in DATETIME_FIELDS else "text")
            present = [i for i in idx if col[i] is not None]
            present.sort(key=col.__getitem__, reverse=descending)
            idx = present + [i for i in idx if col[i] is None]    # nulls last
        with self._lock:
            if len(self._selections) > 64:
                self._selections.clear()
            self._selections[key] = idx
        return idx


class ListQuery:
    """The §3 parameters of a list request, validated."""

    _FILTER = re.compile(r"filter\[([^\]:]+)(?::([^\]]*))?\]")
    _SORT = re.compile(r"sort\[([^\]]+)\]")

    def __init__(self, params, fields):
        self.filters, self.sorts = {}, {}    # param name -> (field, op, value); field -> desc
        self.match_any, self.page, self.per_page = False, 1, DEFAULT_PER_PAGE
        for name, value in params:
            if name == "page":
                self.page = self._integer(name, value, 1, None)
            elif name == "per_page":
                self.per_page = self._integer(name, value, 1, MAX_PER_PAGE)
            elif name == "filterMatch":
                if value not in ("all", "any"):
                    raise ApiError("INVALID_FILTER", "filterMatch must be 'all' or 'any'.")
                self.match_any = value == "any"
            elif name.startswith("filter"):
                m = self._FILTER.fullmatch(name)
                if not m:
                    raise ApiError("INVALID_FILTER", f"Malformed filter parameter {name!r}.")
                field, op = m.group(1), m.group(2) or "eq"
                self._check_field(field, fields)
                if op not in FILTER_OPS or op == "eq" and m.group(2) is not None:
                    raise ApiError("INVALID_FILTER", f"Unknown filter operator {op!r}.")
                self.filters.pop(name, None)      # the last one wins
                self.filters[name] = (field, op, value)
            elif name.startswith("sort"):
                m = self._SORT.fullmatch(name)
                if not m or value not in ("0", "1"):
                    raise ApiError("INVALID_FILTER", f"Malformed sort parameter {name}={value!r}.")
                self._check_field(m.group(1), fields)
                self.sorts.pop(m.group(1), None)
                self.sorts[m.group(1)] = value == "1"

    @staticmethod
    def _integer(name, value, low, high):
        if not re.fullmatch(r"[0-9]{1,9}", value) or int(value) < low or (
                high is not None and int(value) > high):
            limits = f"{low}..{high}" if high else f">= {low}"
            raise ApiError("INVALID_REQUEST", f"{name} must be an integer {limits}.")
        return int(value)

    @staticmethod
    def _check_field(field, fields):
        if field not in fields:
            raise ApiError("INVALID_FILTER", f"Field {field!r} cannot be filtered or sorted on.")


# ---------------------------------------------------------------------------
# Success bodies
# ---------------------------------------------------------------------------

_HOLE = "\x01"


class Body:
    """A success body before rendering: the served records as JSON chunks,
    plus the paging envelope of a list (links, meta) or None for one record."""

    def __init__(self, style, records, chunks, paging=None):
        self.style, self.records, self.chunks, self.paging = style, records, chunks, paging

    def render(self):
        if self.paging is None:
            return self._wrap({"data": _HOLE}, self.chunks[0])
        array = b"[" + self.style.item_separator.join(self.chunks) + b"]"
        p = self.paging
        return self._wrap({"data": _HOLE, "links": p.links, "meta": p.meta}, array)

    def _wrap(self, envelope, data):
        before, after = self.style.dumpb(envelope).split(b'"\\u0001"', 1)
        return before + data + after


class Paging:
    """links and meta of one page; builds links on any origin."""

    def __init__(self, ex, total, page, per_page, served):
        self.ex, self.page, self.per_page = ex, page, per_page
        last = max(1, -(-total // per_page))
        first = (page - 1) * per_page + 1
        self.links = {"first": self.link(1), "last": self.link(last),
                      "prev": self.link(page - 1) if page > 1 else None,
                      "next": self.link(page + 1) if page < last else None}
        self.meta = {"current_page": page,
                     "from": first if served else None,
                     "to": first + served - 1 if served else None,
                     "last_page": last, "per_page": per_page,
                     "path": f"http://{ex.origin}{ex.path}", "total": total}

    def link(self, page, origin=None):
        """This request's URL with page=N, other parameters as sent."""
        parts = [p for p in self.ex.query.split("&")
                 if p and unquote_plus(p.split("=", 1)[0]) != "page"]
        parts.append(f"page={page}")
        return f"http://{origin or self.ex.origin}{self.ex.path}?{'&'.join(parts)}"

    def served(self, count):
        """Adjust from/to after the records were changed."""
        first = (self.page - 1) * self.per_page + 1
        self.meta["from"] = first if count else None
        self.meta["to"] = first + count - 1 if count else None


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------

class FaultKind:
    """One kind of fault: its stage, parameter defaults and effect.

    Stages: "replace" answers instead of the API; "page" edits the success
    Body; "deliver" changes how the reply is sent (Delivery).
    """

    def __init__(self, name, stage, defaults, effect):
        self.name, self.stage, self.defaults, self.effect = name, stage, defaults, effect


FAULT_KINDS = {}


def fault_kind(stage, **defaults):
    """Register a fault effect under its function name (minus "_")."""
    def register(effect):
        name = effect.__name__.strip("_")
        FAULT_KINDS[name] = FaultKind(name, stage, defaults, effect)
        return effect
    return register


@fault_kind("replace", status=None, code="", retry_after=-1, retry_after_date=0)
def _status(p, ex):
    status = p["status"] or ERRORS.get(p["code"], (503,))[0]
    code = p["code"] or DEFAULT_CODES.get(status) or (
        "INVALID_REQUEST" if status < 500 else "INTERNAL_ERROR")
    headers = []
    if p["retry_after_date"]:
        headers.append(("Retry-After", formatdate(int(time.time()) + 2, usegmt=True)))
    elif p["retry_after"] >= 0:
        headers.append(("Retry-After", str(p["retry_after"])))
    if status == 429:
        reset = int(time.time()) + max(p["retry_after"], 2)
        headers += [("X-RateLimit-Limit", "60"), ("X-RateLimit-Remaining", "0"),
                    ("X-RateLimit-Reset", str(reset))]
    return error_reply(ApiError(code, status=status, headers=headers), ex.request_id)


@fault_kind("replace", status=502)
def _html(p, ex):
    title = f"{p['status']} {_phrase(p['status'])}"
    page = (f"<html><head><title>{title}</title></head><body>"
            f"<center><h1>{title}</h1></center><hr>"
            "<center>nginx</center></body></html>\n")
    return text_reply(page, p["status"], "text/html")


@fault_kind("replace", status=500)
def _empty(p, ex):
    return Reply(p["status"], b"")


@fault_kind("replace")
def _notjson(p, ex):
    return Reply(200, b"<html>oops</html>")


@fault_kind("replace")
def _wrongshape(p, ex):
    return Reply(200, b'{"items": []}')


@fault_kind("replace")
def _reset(p, ex):
    ex.delivery.mode = "reset"
    return Reply(0)


@fault_kind("deliver")
def _truncate(p, ex):
    ex.delivery.mode = "truncate"


@fault_kind("deliver", delay_ms=1000)
def _slow(p, ex):
    ex.delivery.delay_ms += p["delay_ms"]


@fault_kind("deliver", delay_ms=1000)
def _stall(p, ex):
    ex.delivery.mode, ex.delivery.stall_ms = "stall", p["delay_ms"]


@fault_kind("deliver")
def _deprecate(p, ex):
    ex.delivery.deprecated = True


@fault_kind("page")
def _next_loop(p, ex, body):
    if body.paging:
        body.paging.links["next"] = body.paging.link(body.paging.page)


@fault_kind("page")
def _cross_origin_next(p, ex, body):
    if body.paging:
        body.paging.links["next"] = body.paging.link(
            body.paging.page + 1, origin=f"127.0.0.2:{ex.server_port}")


@fault_kind("page")
def _empty_next(p, ex, body):
    if body.paging:
        body.records, body.chunks = [], []
        body.paging.served(0)
        body.paging.links["next"] = body.paging.link(body.paging.page + 1)


@fault_kind("page")
def _short(p, ex, body):
    if body.paging:
        keep = min(len(body.chunks), body.paging.per_page // 2)
        body.records, body.chunks = body.records[:keep], body.chunks[:keep]
        body.paging.served(keep)


@fault_kind("page", field="totalNetValue", value="12,50", json=0)
def _bad_value(p, ex, body):
    """Set a field (dotted path, e.g. lineItems.0.lineNo) of the first record."""
    if not body.records:
        return
    record = json.loads(body.style.dumps(body.records[0]),
                        parse_float=simdata.Decimal, parse_int=simdata.Decimal)
    value = json.loads(p["value"]) if p["json"] else p["value"]
    *path, last = p["field"].split(".")
    target = record
    for step in path:
        target = target[int(step)] if isinstance(target, list) else target.setdefault(step, {})
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    body.records = [record] + body.records[1:]
    body.chunks = [body.style.dumpb(record)] + body.chunks[1:]


class Fault:
    """A fault rule added through /_sim/fault."""

    def __init__(self, kind, conn, path, page, count, params):
        self.kind, self.conn, self.path, self.page = kind, conn, path, page
        self.count, self.params = count, params

    @classmethod
    def from_query(cls, params, conn_names):
        """Build a rule from admin parameters, validating them."""
        kind = FAULT_KINDS.get(params.get("kind", ""))
        if kind is None:
            raise AdminError(f"kind must be one of {', '.join(sorted(FAULT_KINDS))}")
        conn = params.get("conn") or None
        if conn is not None and conn not in conn_names:
            raise AdminError(f"unknown conn {conn!r}")
        allowed = dict(kind.defaults, page=None, count=1)
        unknown = set(params) - set(allowed) - {"kind", "conn", "path"}
        if unknown:
            raise AdminError(f"unknown parameter(s) for kind={kind.name}: "
                             f"{', '.join(sorted(unknown))}")
        values = {}
        for name, default in allowed.items():
            raw = params.get(name)
            if raw is None or raw == "":
                values[name] = default
            elif default is None or isinstance(default, int):
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise AdminError(f"{name} must be an integer") from None
            else:
                values[name] = raw
        page, count = values.pop("page"), values.pop("count")
        return cls(kind, conn, params.get("path") or "/api/", page, count, values)

    def matches(self, ex):
        return (self.count != 0 and (self.conn is None or self.conn == ex.conn.name)
                and ex.path.startswith(self.path)
                and (self.page is None or self.page == ex.page))

    def describe(self):
        return {"kind": self.kind.name, "conn": self.conn, "path": self.path,
                "page": self.page, "count": self.count, **self.params}


# ---------------------------------------------------------------------------
# One exchange (request + how its reply is delivered)
# ---------------------------------------------------------------------------

class Delivery:
    """How a reply goes on the wire: mode normal|truncate|stall|reset."""

    def __init__(self):
        self.mode, self.delay_ms, self.stall_ms, self.deprecated = "normal", 0, 0, False
        self.gzip = True            # compress if the client accepts it


_request_ids = itertools.count(1)


def new_request_id():
    """A unique request id: "req_" and 12 hex digits (counter + random)."""
    return f"req_{next(_request_ids) % (1 << 24):06x}{os.urandom(3).hex()}"


class Exchange:
    """Everything known about one API request while it is answered."""

    def __init__(self, handler, path, query):
        self.path, self.query = path, query
        self.params = parse_qsl(query, keep_blank_values=True)
        self.headers = handler.headers
        self.origin = handler.headers.get("Host") or "%s:%s" % handler.server.server_address[:2]
        self.server_port = handler.server.server_address[1]
        self.request_id = new_request_id()
        self.conn, self.authorized, self.version = None, False, "v1"
        self.faults, self.delivery = [], Delivery()
        self.served_body = False        # a /_sim/bodies file or its later page
        page = dict(self.params).get("page", "1")
        self.page = int(page) if page.isdigit() else None


class Connection:
    """A simulated connection at run time."""

    def __init__(self, spec):
        self.spec, self.name, self.token = spec, spec["name"], spec["token"]
        self.style = JsonStyle(**spec["json_style"])
        self.resources = {name: Resource(name, records, self.style)
                          for name, records in spec["data"].items()}
        self.latency_ms = spec["latency_ms"]


# ---------------------------------------------------------------------------
# The simulator
# ---------------------------------------------------------------------------

LOG_FIELDS = ("seq", "conn", "method", "path", "query", "params_json", "status",
              "records", "bytes", "duration_ms", "api_version", "accept_encoding",
              "user_agent", "authorized", "fault")


class Simulator:
    """Connections, fault rules, the request log and the response cache."""

    def __init__(self, connections, verbose=False):
        self.conns = {name: Connection(spec) for name, spec in connections.items()}
        self.by_token = {c.token: c for c in self.conns.values()}
        self.verbose = verbose
        self.lock = threading.Lock()
        self.faults, self.log, self.seq = [], [], 0
        self.cache, self.cache_bytes, self.truth = {}, 0, {}
        self.bodies_dir, self.served, self.bodies_log = None, {}, True

    def prewarm(self):
        """Encode every record now instead of on first use."""
        for conn in self.conns.values():
            for resource in conn.resources.values():
                for i in range(len(resource.records)):
                    resource.encoded(i)

    # -- API ----------------------------------------------------------------

    def answer(self, ex, method):
        """The Reply to an API request (never raises ApiError)."""
        try:
            return self._answer(ex, method)
        except ApiError as err:
            return error_reply(err, ex.request_id)
        except Exception as exc:    # a simulator bug: say so, keep serving
            traceback.print_exc()
            return error_reply(ApiError("INTERNAL_ERROR", f"simulator bug: {exc!r}"),
                               ex.request_id)

    def _answer(self, ex, method):
        scheme, _, token = (ex.headers.get("Authorization") or "").strip().partition(" ")
        ex.conn = self.by_token.get(token.strip()) if scheme.lower() == "bearer" else None
        if ex.conn is None:
            raise ApiError("AUTHENTICATION_FAILED", headers=[("WWW-Authenticate", "Bearer")])
        requested = ex.headers.get("X-Api-Version")
        if requested is not None and requested not in SERVED_VERSIONS:
            raise ApiError("UNSUPPORTED_API_VERSION",
                           f"API version {requested!r} is not supported; use v1.")
        ex.version = requested or "v1"
        if ex.conn.spec["auth_error"]:
            raise ApiError(ex.conn.spec["auth_error"],
                           headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
        ex.authorized = True
        if ex.conn.spec["offline"]:
            raise ApiError("SYSTEM_UNAVAILABLE")
        if method != "GET":
            raise ApiError("INVALID_REQUEST", f"Method {method} is not allowed.", status=405,
                           headers=[("Allow", "GET")])
        served = SERVED_BODY.fullmatch(ex.path)
        if served:
            return self._served_body(ex, *served.groups())
        for fault in self._fire_faults(ex):
            if fault.kind.stage == "replace":
                return fault.kind.effect(fault.params, ex)
            if fault.kind.stage == "deliver":
                fault.kind.effect(fault.params, ex)
        cache_key = (ex.conn.name, ex.path, ex.query, ex.origin)
        if not ex.faults:
            cached = self.cache.get(cache_key)
            if cached is not None:
                return cached
        body = self._route(ex)
        for fault in ex.faults:
            if fault.kind.stage == "page":
                fault.kind.effect(fault.params, ex, body)
        reply = Reply(200, body.render(), records=len(body.chunks))
        if not ex.faults:
            self._remember(cache_key, reply)
        return reply

    def _fire_faults(self, ex):
        """Consume the matching fault rules, in the order added; a replacing
        one ends the list."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(ex):
                    fault.count -= fault.count > 0
                    ex.faults.append(fault)
                    if fault.kind.stage == "replace":
                        break
        return list(ex.faults)

    def _route(self, ex):
        """The success Body for a path, or ApiError 404/400."""
        conn, path = ex.conn, ex.path
        if path == "/api/integrations/current":
            record = conn.spec["integration"]
            return Body(conn.style, [record], [conn.style.dumpb(record)])
        if path.startswith("/api/erp/"):
            rest = unquote(path[len("/api/erp/"):])
            if rest in conn.resources:
                return self._list(ex, conn.resources[rest])
            name, _, key = rest.rpartition("/")
            resource = conn.resources.get(name)
            if resource is not None and resource.has_items and key:
                i = resource.find(key)
                if i is None:
                    raise ApiError("NOT_FOUND", f"No {name} record with key {key!r}.")
                return Body(conn.style, [resource.records[i]], [resource.encoded(i)])
        raise ApiError("NOT_FOUND", f"No such path: {path}")

    def _list(self, ex, resource):
        query = ListQuery(ex.params, resource.fields)
        idx = resource.select(query)
        start = (query.page - 1) * query.per_page
        chosen = idx[start:start + query.per_page]
        paging = Paging(ex, len(idx), query.page, query.per_page, len(chosen))
        return Body(resource.style, [resource.records[i] for i in chosen],
                    [resource.encoded(i) for i in chosen], paging)

    def _served_body(self, ex, name, mode):
        """A file of the /_sim/bodies directory as it is (page 1), or an empty
        last page (later pages); the last files read are kept (and their
        gzip form)."""
        if self.bodies_dir is None:
            raise ApiError("NOT_FOUND", "No bodies are served: see /_sim/bodies.")
        ex.delivery.gzip, ex.served_body = mode == "gzip", True
        if ex.page != 1:
            return Reply(200, EMPTY_LAST_PAGE)
        reply = self.served.get(name)
        if reply is None:
            try:
                with open(os.path.join(self.bodies_dir, name + ".json"), "rb") as f:
                    reply = Reply(200, f.read())
            except FileNotFoundError:
                raise ApiError("NOT_FOUND", f"No body {name!r}.") from None
            with self.lock:
                if len(self.served) > 64:
                    self.served.clear()
                self.served[name] = reply
        return reply

    def _remember(self, key, reply):
        with self.lock:
            if self.cache_bytes > CACHE_LIMIT:
                self.cache.clear()
                self.cache_bytes = 0
            self.cache[key] = reply
            self.cache_bytes += len(reply.body)

    # -- request log ----------------------------------------------------------

    def record(self, ex, method, reply, sent_bytes, started):
        """Append an API request to the log (the token is never logged)."""
        if ex.served_body and not self.bodies_log:
            return
        entry = {"conn": ex.conn.name if ex.conn else "", "method": method,
                 "path": ex.path, "query": ex.query,
                 "params_json": json.dumps(dict(ex.params), ensure_ascii=False),
                 "status": reply.status, "records": reply.records if reply.status == 200 else 0,
                 "bytes": sent_bytes,
                 "duration_ms": f"{(time.perf_counter() - started) * 1000:.3f}",
                 "api_version": ex.headers.get("X-Api-Version") or "",
                 "accept_encoding": ex.headers.get("Accept-Encoding") or "",
                 "user_agent": ex.headers.get("User-Agent") or "",
                 "authorized": "true" if ex.authorized else "false",
                 "fault": "+".join(f.kind.name for f in ex.faults)}
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.log.append(entry)

    # -- admin ----------------------------------------------------------------

    def admin(self, path, query):
        """Answer a /_sim/ request."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        name = path[len("/_sim/"):]
        try:
            if name.startswith("data/"):
                return self._admin_data(name)
            handler = getattr(self, "_admin_" + name, None)
            if handler is None:
                raise AdminError(f"unknown admin path {path}; see /_sim/help")
            return handler(params)
        except AdminError as err:
            return text_reply(f"error: {err}\n", 400)

    def _admin_help(self, params):
        return text_reply(__doc__)

    def _admin_reset(self, params):
        with self.lock:
            self.faults.clear()
            self.log.clear()
            self.bodies_dir, self.served, self.bodies_log = None, {}, True
            for conn in self.conns.values():
                conn.latency_ms = conn.spec["latency_ms"]
        return text_reply("ok\n")

    def _admin_fault(self, params):
        fault = Fault.from_query(params, self.conns)
        with self.lock:
            self.faults.append(fault)
        return text_reply("ok\n")

    def _admin_faults(self, params):
        with self.lock:
            active = [f.describe() for f in self.faults if f.count != 0]
        return text_reply(json.dumps(active, indent=1) + "\n", ctype="application/json")

    def _admin_latency(self, params):
        conn = self.conns.get(params.get("conn", ""))
        if conn is None:
            raise AdminError("conn must name a connection")
        try:
            conn.latency_ms = int(params.get("ms", ""))
        except ValueError:
            raise AdminError("ms must be an integer") from None
        return text_reply("ok\n")

    def _admin_requests(self, params):
        try:
            since = int(params.get("since") or 0)
        except ValueError:
            raise AdminError("since must be an integer") from None
        with self.lock:
            rows = [e for e in self.log if e["seq"] > since]
        out = io.StringIO()
        writer = csv.DictWriter(out, LOG_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return text_reply(out.getvalue(), ctype="text/csv; charset=utf-8")

    def _admin_stats(self, params):
        stats = {name: {"orders": len(c.spec["data"]["purchase-orders"]),
                        "lines": len(c.spec["data"]["purchase-orders.line-items"]),
                        "vendors": len(c.spec["data"]["vendors"]),
                        "latency_ms": c.latency_ms}
                 for name, c in self.conns.items()}
        return text_reply(json.dumps(stats, indent=1) + "\n", ctype="application/json")

    def _admin_bodies(self, params):
        path = params.get("dir", "")
        if path and not os.path.isdir(path):
            raise AdminError(f"{path!r} is not a directory")
        log = params.get("log", "1")
        if log not in ("0", "1"):
            raise AdminError("log must be 0 or 1")
        with self.lock:
            self.bodies_dir, self.served, self.bodies_log = path or None, {}, log == "1"
        return text_reply("ok\n")

    def _admin_data(self, name):
        m = re.fullmatch(r"data/([^/]+)/([^/]+)\.csv", name)
        conn = self.conns.get(m.group(1)) if m else None
        if conn is None or m.group(2) not in TABLES:
            return text_reply(f"no such connection or table; tables: {', '.join(TABLES)}\n", 404)
        key = (conn.name, m.group(2))
        if key not in self.truth:
            self.truth[key] = simdata.table_csv(conn.spec, m.group(2)).encode("utf-8")
        return Reply(200, self.truth[key], "text/csv; charset=utf-8")


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

def accepts_gzip(value):
    """Whether an Accept-Encoding header value allows gzip."""
    for part in (value or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = re.search(r"q\s*=\s*([0-9.]+)", params)
            if not q or float(q.group(1)) > 0:
                return True
    return False


class Handler(BaseHTTPRequestHandler):
    """Reads requests; the Simulator answers; this writes the replies."""

    protocol_version = "HTTP/1.1"
    server_version = "makini-sim/1.0"
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        if self.server.sim.verbose:
            super().log_message(fmt, *args)

    def do_GET(self):
        self.handle_method("GET")

    def do_POST(self):
        self.handle_method("POST")

    do_PUT = do_PATCH = do_DELETE = do_POST

    def handle_method(self, method):
        started = time.perf_counter()
        sim = self.server.sim
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length):
            self.rfile.read(int(length))
        # a raw UTF-8 request target arrives decoded as Latin-1: undo that
        target = self.path.encode("latin-1", "replace").decode("utf-8", "replace")
        url = urlsplit(target)
        if url.path.startswith("/_sim/"):
            reply = sim.admin(url.path, url.query)
            self.send(reply, [("X-Request-Id", new_request_id())], accepts_gzip=False)
            return
        ex = Exchange(self, url.path, url.query)
        reply = sim.answer(ex, method)
        latency = ex.conn.latency_ms if ex.conn else 0
        if latency or ex.delivery.delay_ms:
            time.sleep((latency + ex.delivery.delay_ms) / 1000)
        if ex.delivery.mode == "reset":
            sim.record(ex, method, reply, 0, started)
            self.reset()
            return
        headers = [("X-Api-Version", ex.version), ("X-Request-Id", ex.request_id),
                   ("Vary", "Accept-Encoding")]
        if SERVED_VERSIONS.get(ex.version) or ex.delivery.deprecated:
            headers += [("Deprecation", "true"), ("Sunset", SUNSET)]
        self.send(reply, headers,
                  ex.delivery.gzip and accepts_gzip(self.headers.get("Accept-Encoding")),
                  ex.delivery, lambda n: sim.record(ex, method, reply, n, started))

    def send(self, reply, headers, accepts_gzip, delivery=None, before_write=None):
        """Write a reply: headers, then the body per the delivery mode."""
        body = reply.body
        headers = [("Content-Type", reply.ctype)] + headers + reply.headers
        if body and accepts_gzip:
            body = reply.gzipped()
            headers.append(("Content-Encoding", "gzip"))
        mode = delivery.mode if delivery else "normal"
        if mode == "truncate" or self.close_connection:
            self.close_connection = True
            headers.append(("Connection", "close"))
        head = "".join([f"HTTP/1.1 {reply.status} {_phrase(reply.status)}\r\n",
                        f"Date: {formatdate(usegmt=True)}\r\nServer: {self.server_version}\r\n",
                        f"Content-Length: {len(body)}\r\n"]
                       + [f"{k}: {v}\r\n" for k, v in headers] + ["\r\n"]).encode("latin-1")
        cut = {"truncate": len(body) // 2, "stall": min(100, len(body))}.get(mode, len(body))
        if before_write:
            before_write(cut if mode == "truncate" else len(body))
        try:
            self.connection.sendall(head + body[:cut])
            if mode == "stall":
                time.sleep(delivery.stall_ms / 1000)
                self.connection.sendall(body[cut:])
        except OSError:
            self.close_connection = True

    def reset(self):
        """Drop the connection with a TCP reset and no response."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=18765, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--bench-orders", type=int, default=0)
    parser.add_argument("--pidfile")
    parser.add_argument("--prewarm", action="store_true",
                        help="encode all records before reporting ready")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)

    gc.disable()        # millions of long-lived objects: no collector passes over them
    sim = Simulator(simdata.build_connections(args.bench_orders), args.verbose)
    if args.prewarm:
        sim.prewarm()
    gc.freeze()
    gc.enable()
    server = Server((args.host, args.port), Handler)
    server.sim = sim
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = server.server_address[:2]
    print(f"simulator ready on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass


if __name__ == "__main__":
    main()
