#!/usr/bin/python3
"""A Makini API simulator for the makini_fdw tests (standard library only).

    /usr/bin/python3 sql-tests/simulator.py --port 18765 [--host 127.0.0.1]
        [--bench-orders N] [--pidfile F] [--prewarm] [--verbose]

Serves the connections of simdata.py following fdw/API.md,
and an admin API under /_sim/ (no auth) to inject faults, set latencies, read
the request log and the ground truth of the foreign tables:

    /_sim/reset                      clear faults, the log and served bodies, reset latencies
    /_sim/fault?kind=K&...           add a fault rule (see FAULT_KINDS)
    /_sim/faults                     the active fault rules (JSON)
    /_sim/latency?conn=NAME&ms=N     set a connection's latency
    /_sim/behave?KNOB=V[&KNOB=V...][&conn=NAME]
                                     switch a behaviour the contract leaves
                                     open (see BEHAVIOUR_DEFAULTS; no conn =
                                     every connection; reset restores them)
    /_sim/mutate?conn=NAME&op=OP&... change the data (see MUTATE_OPS); the
                                     ground truth follows, reset restores it
    /_sim/requests[?since=SEQ]       the request log (CSV; arrived_ms: when
                                     each request arrived, monotonic clock)
    /_sim/inflight[?conn=NAME]       the most requests each connection was
                                     answering at once since the last reset
                                     (JSON; 429s of max_concurrent not counted)
    /_sim/connections[?conn=NAME]    the TCP connections (client ports) its
                                     API requests came on since the last reset
                                     (JSON)
    /_sim/data/CONN/TABLE.csv        ground truth of a foreign table (CSV)
    /_sim/stats                      orders/lines/vendors per connection (JSON)
    /_sim/model                      the model of simdata.py, in the shape of
                                     makini_model() (JSON, sql/model.sql)
    /_sim/bodies?dir=PATH[&log=0]    serve the files of a directory (see below)
    /_sim/help                       this text

A fault rule: conn=NAME (default: any), path=PREFIX (default: /api/),
page=N (only requests for that page; no page parameter counts as 1),
count=N (default 1; -1 = forever), kind=K and K's parameters:

    status&status=503&code=SYSTEM_UNAVAILABLE[&message=M][&retry_after=S | &retry_after_date=1]
    html[&status=502]   empty[&status=500]   notjson   wrongshape
    bad_header[&header=request_id|api_version]   (bytes ff fe appended: not UTF-8)
    truncate   reset   slow&delay_ms=N   stall&delay_ms=N   deprecate
    next_loop   cross_origin_next   empty_next   short
    meta&field=F&value=V     (meta field F := JSON V; F=next_page: links.next's page)
    bad_value&field=F&value=V[&json=1]    (F may be dotted: lineItems.0.lineNo)

Every rule matching a request fires, in the order added, each using up one
count; a rule that replaces the reply (status, html, empty, notjson,
wrongshape, reset) ends the list. Replies are never cached when a rule fired.

With --tls-cert/--tls-key it serves https; a TLS connection that brings no
request is logged as an entry with no method, path or connection and fault
tls_handshake_failed:REASON (the client broke the handshake off) or
tls_no_request (it closed, or sent an alert, after the server's side of the
handshake: which one a refused certificate gives depends on the client's TLS
library and version).

Behaviour knobs (/_sim/behave; defaults in brackets):

    max_per_page=N [500]      serve at most N records a page, whatever
                              per_page asked: pages shorter than per_page
                              before the last (fdw/API.md §7)
    meta_per_page=capped|asked [capped]
                              meta.per_page reports the cap or what was asked
    empty_pages=N [0]         N empty pages (data [], links.next set) before
                              each page of records: page numbers are then
                              (N+1) times as many (§7)
    meta=full|null|absent|none [full]
                              meta.total, meta.last_page and links.last are
                              sent, null, or left out; none: no meta object
                              and no links.last (§3: clients must not
                              depend on them)
    mutate_after_page=N [0]   once, right after answering page N of a
    mutate_op=insert|delete|update [insert]
                              purchase-orders list request, change the data
                              around that page's first record: insert a copy
                              of it (new key) just before it, so the next
                              page repeats a record; delete it outright, so
                              the next page skips one; or update its title,
                              orderNo, updatedAt (§7: records that change between
                              pages). 0 = off; setting it arms it again.
    max_concurrent=N [8]      a connection serves N requests at once; more
                              get 429 RATE_LIMIT_EXCEEDED, Retry-After: 1
                              (§3); 0 = no limit
    nulls_asc=last|first [last]
                              where sort[F]=0 puts records without a value
                              for F (missing, null or ""), per sort key (§3:
                              unspecified, may differ per connection)
    nulls_desc=last|first [last]  the same for sort[F]=1

/_sim/mutate?conn=NAME&op=OP[&key=K][&line=L][&like=K][&before=K][&at=TS]
[&f.FIELD=VALUE...][&null=F1,F2][&drop=F1,F2] changes one purchase order the
way an ERP does (the line-items list and the ground truth follow):

    insert        a copy of order `like` (default: the first) with key `key`
                  (default: a new one), placed before order `before` (default:
                  `like`)
    update        set fields of order `key` (default: the first)
    soft_delete   set deletedAt of order `key`
    delete        remove order `key` outright
    line_insert   append a copy of line `like` (default: the order's first)
                  with key `line` (default: a new one) to order `key`
    line_update   set fields of line `line` (default: the first) of order `key`
    line_soft_delete  set deletedAt of that line
    line_delete   remove that line from its order

f.FIELD=VALUE sets a field to a string, null= sets fields to null, drop=
removes them (of the line for line_* ops). Every op sets updatedAt (of the
order, and of the line it changes) to `at` (default: now, UTC, "...Z");
soft deletes set deletedAt to it too. The reply is JSON: op, key, line.

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
import copy
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
import ssl
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
# Behaviour knobs: where the contract allows several behaviours (see the
# module docstring). Defaults are the simulator's plain behaviour.
# ---------------------------------------------------------------------------

BEHAVIOUR_DEFAULTS = {
    "max_per_page": MAX_PER_PAGE, "meta_per_page": "capped", "empty_pages": 0,
    "meta": "full", "mutate_after_page": 0, "mutate_op": "insert",
    "max_concurrent": 8, "nulls_asc": "last", "nulls_desc": "last",
}


def _knob_int(low, high):
    """A knob parser for an integer low..high."""
    def parse(value):
        if not re.fullmatch(r"[0-9]{1,6}", value) or not low <= int(value) <= high:
            raise ValueError(f"an integer {low}..{high}")
        return int(value)
    return parse


def _knob_choice(*choices):
    """A knob parser for one of choices."""
    def parse(value):
        if value not in choices:
            raise ValueError("one of " + "|".join(choices))
        return value
    return parse


BEHAVIOUR_PARSERS = {
    "max_per_page": _knob_int(1, MAX_PER_PAGE),
    "meta_per_page": _knob_choice("capped", "asked"),
    "empty_pages": _knob_int(0, 100),
    "meta": _knob_choice("full", "null", "absent", "none"),
    "mutate_after_page": _knob_int(0, 100000),
    "mutate_op": _knob_choice("insert", "delete", "update"),
    "max_concurrent": _knob_int(0, 1000),
    "nulls_asc": _knob_choice("last", "first"),
    "nulls_desc": _knob_choice("last", "first"),
}

# ---------------------------------------------------------------------------
# Errors (fdw/API.md §5)
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

    def select(self, query, nulls_first=(False, False)):
        """Indices of the matching records, in the requested order; records
        without a value for a sort key go first where nulls_first[desc]."""
        key = (tuple(query.filters.values()), query.match_any, tuple(query.sorts.items()),
               nulls_first)
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
            absent = [i for i in idx if col[i] is None]
            idx = absent + present if nulls_first[descending] else present + absent
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
        return self._wrap(self.paging.envelope(), array)

    def _wrap(self, envelope, data):
        before, after = self.style.dumpb(envelope).split(b'"\\u0001"', 1)
        return before + data + after


class Paging:
    """links and meta of one page; builds links on any origin.

    page and last are the page numbers served (empty_pages adds pages that
    hold no record); first is the 1-based position of the page's first
    record; meta_style is the behaviour knob "meta".
    """

    def __init__(self, ex, page, last, per_page, total, first, served, meta_style="full"):
        self.ex, self.page, self.per_page, self.first = ex, page, per_page, first
        self.meta_style = meta_style
        self.links = {"first": self.link(1), "last": self.link(last),
                      "prev": self.link(page - 1) if page > 1 else None,
                      "next": self.link(page + 1) if page < last else None}
        self.meta = {"current_page": page, "from": None, "to": None,
                     "last_page": last, "per_page": per_page,
                     "path": f"http://{ex.origin}{ex.path}", "total": total}
        self.served(served)

    def link(self, page, origin=None):
        """This request's URL with page=N, other parameters as sent."""
        parts = [p for p in self.ex.query.split("&")
                 if p and unquote_plus(p.split("=", 1)[0]) != "page"]
        parts.append(f"page={page}")
        return f"http://{origin or self.ex.origin}{self.ex.path}?{'&'.join(parts)}"

    def served(self, count):
        """Set from/to for count records served (also after a fault changed them)."""
        self.meta["from"] = self.first if count else None
        self.meta["to"] = self.first + count - 1 if count else None

    def envelope(self):
        """The reply's top-level object, "data" a placeholder; the counts
        clients must not depend on are null or left out as the knob says."""
        links, meta = dict(self.links), dict(self.meta)
        if self.meta_style != "full":
            for obj, name in ((meta, "total"), (meta, "last_page"), (links, "last")):
                if self.meta_style == "null":
                    obj[name] = None
                else:
                    del obj[name]
        out = {"data": _HOLE, "links": links}
        if self.meta_style != "none":
            out["meta"] = meta
        return out


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


@fault_kind("replace", status=None, code="", message="", retry_after=-1, retry_after_date=0)
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
    return error_reply(ApiError(code, p["message"] or None, status=status, headers=headers),
                       ex.request_id)


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


@fault_kind("deliver", header="request_id")
def _bad_header(p, ex):
    """Bytes that are not UTF-8 (ff fe) at the end of the X-Request-Id or
    (header=api_version) the X-Api-Version of the reply."""
    if p["header"] == "api_version":
        ex.version += "\xff\xfe"               # headers go out as Latin-1
    else:
        ex.request_id += "\xff\xfe"


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


@fault_kind("page", field="last_page", value="4294967297")
def _meta(p, ex, body):
    """Set a meta field to a JSON value; field=next_page: the page number
    links.next asks for (any text)."""
    if body.paging:
        if p["field"] == "next_page":
            body.paging.links["next"] = body.paging.link(p["value"])
        else:
            body.paging.meta[p["field"]] = json.loads(p["value"])


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
        self.counted, self.resource, self.notes = False, None, []
        self.served_body = False        # a /_sim/bodies file or its later page
        page = dict(self.params).get("page", "1")
        self.page = int(page) if page.isdigit() else None


class Connection:
    """A simulated connection at run time."""

    def __init__(self, spec):
        self.spec, self.name, self.token = spec, spec["name"], spec["token"]
        self.style = JsonStyle(**spec["json_style"])
        self.latency_ms = spec["latency_ms"]
        self.behaviour = dict(BEHAVIOUR_DEFAULTS)
        self.mutate_armed = False
        self.inflight = 0           # requests being answered (max_concurrent)
        self.peak_inflight = 0      # the most at once since the last reset
        self.peers = set()          # client (host, port): TCP connections since then
        self.pristine = None        # spec["data"] before the first mutation
        self.load()

    def load(self):
        """(Re)build the resources from spec["data"]."""
        self.resources = {name: Resource(name, records, self.style)
                          for name, records in self.spec["data"].items()}

    def customised(self):
        """Whether a behaviour knob differs from its default."""
        return self.behaviour != BEHAVIOUR_DEFAULTS


# ---------------------------------------------------------------------------
# Data changes (/_sim/mutate and the mutate_after_page knob)
# ---------------------------------------------------------------------------

ORDERS, LINES = "purchase-orders", "purchase-orders.line-items"
_new_keys = itertools.count(990000000000)


class Mutation:
    """One change to a connection's purchase orders, made copy-on-write: the
    records and lists served so far are never changed in place, the first
    change keeps the original data for /_sim/reset."""

    def __init__(self, conn, params):
        self.conn, self.params = conn, params
        if conn.pristine is None:
            conn.pristine = conn.spec["data"]
        self.data = dict(conn.spec["data"])
        self.orders = list(self.data[ORDERS])
        self.at = params.get("at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def apply(self, op):
        """Run op, install the new data; returns what changed (JSON-able)."""
        handler = MUTATE_OPS.get(op)
        if handler is None:
            raise AdminError(f"op must be one of {', '.join(sorted(MUTATE_OPS))}")
        done = handler(self)
        self.data[ORDERS] = self.orders
        self.data[LINES] = [line for order in self.orders
                            for line in order.get("lineItems") or ()]
        self.conn.spec["data"] = self.data
        self.conn.load()
        return dict(op=op, **done)

    def position(self, name):
        """Index of the order named by parameter name (default: the first)."""
        key = self.params.get(name)
        if not key:
            if not self.orders:
                raise AdminError("the connection has no purchase orders")
            return 0
        for i, order in enumerate(self.orders):
            if order.get("key") == key:
                return i
        raise AdminError(f"no purchase order with key {key!r}")

    def order(self):
        """A private copy of the order named by key=, put in place."""
        i = self.position("key")
        self.orders[i] = copy.deepcopy(self.orders[i])
        return self.orders[i]

    def line_index(self, order, name="line"):
        """Index of the line named by parameter name (default: the first)."""
        lines = order.get("lineItems") or []
        key = self.params.get(name)
        for i, line in enumerate(lines):
            if not key or line.get("key") == key:
                return i
        raise AdminError(f"order {order.get('key')!r} has no line {key or ''!r}")

    def new_key(self, prefix):
        """A key no record of the connection has."""
        taken = {o.get("key") for o in self.orders} | {
            l.get("key") for o in self.orders for l in o.get("lineItems") or ()}
        while True:
            key = f"{prefix}{next(_new_keys):012d}"
            if key not in taken:
                return key

    def set_fields(self, record):
        """f.FIELD=VALUE, null=F,.. and drop=F,.. applied to record."""
        for name, value in self.params.items():
            if name.startswith("f.") and len(name) > 2:
                record[name[2:]] = value
        for field in filter(None, self.params.get("null", "").split(",")):
            record[field] = None
        for field in filter(None, self.params.get("drop", "").split(",")):
            record.pop(field, None)

    def touch(self, *records):
        for record in records:
            record["updatedAt"] = self.at


def _mutate_insert(m):
    like = copy.deepcopy(m.orders[m.position("like")])
    before = m.position("before") if m.params.get("before") else m.position("like")
    like["key"] = m.params.get("key") or m.new_key("06")
    if any(o.get("key") == like["key"] for o in m.orders):
        raise AdminError(f"key {like['key']!r} exists")
    for line in like.get("lineItems") or ():
        line["key"] = m.new_key("04")
        line["createdAt"] = m.at
        m.touch(line)
    like["createdAt"] = m.at
    m.set_fields(like)
    m.touch(like)
    m.orders.insert(before, like)
    return {"key": like["key"]}


def _mutate_update(m):
    order = m.order()
    m.set_fields(order)
    m.touch(order)
    return {"key": order["key"]}


def _mutate_soft_delete(m):
    order = m.order()
    order["deletedAt"] = m.at
    m.touch(order)
    return {"key": order["key"]}


def _mutate_delete(m):
    return {"key": m.orders.pop(m.position("key")).get("key")}


def _mutate_line_insert(m):
    order = m.order()
    lines = order.setdefault("lineItems", [])
    line = copy.deepcopy(lines[m.line_index(order, "like")]) if lines else {}
    line["key"] = m.params.get("line") or m.new_key("04")
    numbers = [int(l["lineNo"]) for l in lines if str(l.get("lineNo") or "").isdigit()]
    line["lineNo"] = str(max(numbers, default=0) + 10)
    line["createdAt"] = m.at
    m.set_fields(line)
    lines.append(line)
    m.touch(line, order)
    return {"key": order["key"], "line": line["key"]}


def _mutate_line_update(m):
    order = m.order()
    line = order["lineItems"][m.line_index(order)]
    m.set_fields(line)
    m.touch(line, order)
    return {"key": order["key"], "line": line["key"]}


def _mutate_line_soft_delete(m):
    order = m.order()
    line = order["lineItems"][m.line_index(order)]
    line["deletedAt"] = m.at
    m.touch(line, order)
    return {"key": order["key"], "line": line["key"]}


def _mutate_line_delete(m):
    order = m.order()
    line = order["lineItems"].pop(m.line_index(order))
    m.touch(order)
    return {"key": order["key"], "line": line["key"]}


MUTATE_OPS = {"insert": _mutate_insert, "update": _mutate_update,
              "soft_delete": _mutate_soft_delete, "delete": _mutate_delete,
              "line_insert": _mutate_line_insert, "line_update": _mutate_line_update,
              "line_soft_delete": _mutate_line_soft_delete,
              "line_delete": _mutate_line_delete}


# ---------------------------------------------------------------------------
# The simulator
# ---------------------------------------------------------------------------

LOG_FIELDS = ("seq", "conn", "method", "path", "query", "params_json", "status",
              "records", "bytes", "duration_ms", "api_version", "accept_encoding",
              "user_agent", "authorized", "arrived_ms", "fault")


class Simulator:
    """Connections, fault rules, the request log and the response cache."""

    def __init__(self, connections, verbose=False):
        self.conns = {name: Connection(spec) for name, spec in connections.items()}
        self.by_token = {c.token: c for c in self.conns.values()}
        self.verbose = verbose
        self.lock = threading.Lock()
        self.mutate_lock = threading.Lock()     # one data change at a time
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
        self._admit(ex)
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
        cacheable = not ex.faults and not ex.conn.customised()
        if cacheable:
            cached = self.cache.get(cache_key)
            if cached is not None:
                return cached
        body = self._route(ex)
        for fault in ex.faults:
            if fault.kind.stage == "page":
                fault.kind.effect(fault.params, ex, body)
        reply = Reply(200, body.render(), records=len(body.chunks))
        if cacheable:
            self._remember(cache_key, reply)
        self._auto_mutate(ex, body)
        return reply

    def mutate(self, conn, op, params):
        """Change a connection's purchase orders (see Mutation); cached
        replies and ground truth of the connection are dropped."""
        with self.mutate_lock:
            done = Mutation(conn, params).apply(op)
            self._forget(conn)
        return done

    def _forget(self, conn):
        """Drop cached replies and ground truth (the data changed)."""
        with self.lock:
            self.cache.clear()
            self.cache_bytes = 0
            for key in [k for k in self.truth if k[0] == conn.name]:
                del self.truth[key]

    def _auto_mutate(self, ex, body):
        """The mutate_after_page knob: after page N of a purchase-orders
        list, change the data around that page's first record, once."""
        conn, knobs = ex.conn, ex.conn.behaviour
        if (not conn.mutate_armed or ex.page != knobs["mutate_after_page"]
                or ex.resource is None or ex.resource.name != ORDERS or not body.records):
            return
        with self.lock:
            if not conn.mutate_armed:
                return
            conn.mutate_armed = False
        key, op = body.records[0].get("key"), knobs["mutate_op"]
        changed = {"f.title": "changed between pages",
                   "f.orderNo": f"{body.records[0].get('orderNo')}-CHANGED"}
        params = {"update": dict(changed, key=key),
                  "delete": {"key": key}, "insert": {"like": key}}[op]
        self.mutate(conn, op, params)
        ex.notes.append("mutate_" + op)

    def _admit(self, ex):
        """Count the request in flight on its connection, or answer 429
        when max_concurrent are already (fdw/API.md §3); release() uncounts."""
        limit = ex.conn.behaviour["max_concurrent"]
        with self.lock:
            if limit and ex.conn.inflight >= limit:
                busy = True
            else:
                ex.conn.inflight += 1
                ex.conn.peak_inflight = max(ex.conn.peak_inflight, ex.conn.inflight)
                ex.counted, busy = True, False
        if busy:
            raise ApiError("RATE_LIMIT_EXCEEDED",
                           f"This connection serves at most {limit} requests at once.",
                           headers=[("Retry-After", "1")])

    def release(self, ex):
        """The request's reply is sent: it no longer counts as in flight."""
        if ex.counted:
            with self.lock:
                ex.conn.inflight -= 1
            ex.counted = False

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
        """One page of a list: per_page capped by max_per_page, and with
        empty_pages, N empty pages before each page of records."""
        query = ListQuery(ex.params, resource.fields)
        knobs = ex.conn.behaviour
        idx = resource.select(query, (knobs["nulls_asc"] == "first",
                                      knobs["nulls_desc"] == "first"))
        per_page = min(query.per_page, knobs["max_per_page"])
        every = knobs["empty_pages"] + 1
        last = max(1, -(-len(idx) // per_page)) * every
        real, slot = divmod(query.page - 1, every)
        chosen = []
        if slot == every - 1 and query.page <= last:
            chosen = idx[real * per_page:(real + 1) * per_page]
        reported = per_page if knobs["meta_per_page"] == "capped" else query.per_page
        paging = Paging(ex, query.page, last, reported, len(idx), real * per_page + 1,
                        len(chosen), knobs["meta"])
        ex.resource = resource
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
                 "fault": "+".join([f.kind.name for f in ex.faults] + ex.notes),
                 # when the request arrived, on a monotonic clock: only the
                 # differences between requests mean something
                 "arrived_ms": f"{started * 1000:.3f}"}
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.log.append(entry)

    def record_tls_event(self, what):
        """Log a TLS connection that brought no HTTP request (and so no
        token): a handshake the client broke off, or one it completed and
        then closed (after refusing the host name)."""
        with self.lock:
            self.seq += 1
            self.log.append({"seq": self.seq, "conn": "", "method": "", "path": "",
                             "status": 0, "records": 0, "bytes": 0, "authorized": "false",
                             "fault": what})

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
                conn.behaviour = dict(BEHAVIOUR_DEFAULTS)
                conn.mutate_armed = False
                conn.peak_inflight = conn.inflight
                conn.peers.clear()
        with self.mutate_lock:
            for conn in self.conns.values():
                if conn.pristine is not None:
                    conn.spec["data"], conn.pristine = conn.pristine, None
                    conn.load()
                    self._forget(conn)
        return text_reply("ok\n")

    def _admin_behave(self, params):
        conns = self._admin_conns(params)
        knobs = {}
        for name, value in params.items():
            if name == "conn":
                continue
            parse = BEHAVIOUR_PARSERS.get(name)
            if parse is None:
                raise AdminError(f"unknown knob {name!r}; knobs: "
                                 f"{', '.join(sorted(BEHAVIOUR_PARSERS))}")
            try:
                knobs[name] = parse(value)
            except ValueError as err:
                raise AdminError(f"{name} must be {err}") from None
        if not knobs:
            raise AdminError("no knob given; see /_sim/help")
        with self.lock:
            for conn in conns:
                conn.behaviour.update(knobs)
                if "mutate_after_page" in knobs:
                    conn.mutate_armed = knobs["mutate_after_page"] > 0
        return text_reply("ok\n")

    def _admin_mutate(self, params):
        conn = self._admin_conns(params, required=True)[0]
        done = self.mutate(conn, params.get("op", ""), params)
        return text_reply(json.dumps(done) + "\n", ctype="application/json")

    def _admin_conns(self, params, required=False):
        """The connections an admin request names with conn= (none: all)."""
        name = params.get("conn")
        if not name and not required:
            return list(self.conns.values())
        if name not in self.conns:
            raise AdminError("conn must name a connection")
        return [self.conns[name]]

    def _admin_fault(self, params):
        fault = Fault.from_query(params, self.conns)
        with self.lock:
            self.faults.append(fault)
        return text_reply("ok\n")

    def _admin_faults(self, params):
        with self.lock:
            active = [f.describe() for f in self.faults if f.count != 0]
        return text_reply(json.dumps(active, indent=1) + "\n", ctype="application/json")

    def _admin_inflight(self, params):
        with self.lock:
            peaks = {c.name: c.peak_inflight for c in self._admin_conns(params)}
        return text_reply(json.dumps(peaks) + "\n", ctype="application/json")

    def _admin_connections(self, params):
        with self.lock:
            counts = {c.name: len(c.peers) for c in self._admin_conns(params)}
        return text_reply(json.dumps(counts) + "\n", ctype="application/json")

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
                        "latency_ms": c.latency_ms, "inflight": c.inflight}
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

    def _admin_model(self, params):
        return text_reply(simdata.model_json() + "\n", ctype="application/json")

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
    served = 0      # requests read on this connection

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
        self.served += 1
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
        try:
            self.answer(sim, ex, method, started)
        finally:
            sim.release(ex)

    def answer(self, sim, ex, method, started):
        """Answer an API request: the reply after the latency, per its delivery."""
        reply = sim.answer(ex, method)
        if ex.conn:
            with sim.lock:
                ex.conn.peers.add(self.client_address)
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
    tls = None      # an ssl.SSLContext when serving https

    def finish_request(self, request, client_address):
        """Serve one connection; with TLS, handshake first (in the
        connection's thread), logging a refused handshake."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.sim.record_tls_event("tls_handshake_failed:"
                                      + (getattr(exc, "reason", None) or type(exc).__name__))
            return
        served = 0
        try:
            served = self.RequestHandlerClass(request, client_address, self).served
        except (ssl.SSLError, OSError):
            pass        # an alert after the handshake (newer TLS stacks): no request
        finally:
            request.close()
        if served == 0:
            self.sim.record_tls_event("tls_no_request")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=18765, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--bench-orders", type=int, default=0)
    parser.add_argument("--pidfile")
    parser.add_argument("--prewarm", action="store_true",
                        help="encode all records before reporting ready")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    parser.add_argument("--tls-cert", help="serve https with this PEM certificate (chain)")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    args = parser.parse_args(argv)

    gc.disable()        # millions of long-lived objects: no collector passes over them
    sim = Simulator(simdata.build_connections(args.bench_orders), args.verbose)
    if args.prewarm:
        sim.prewarm()
    gc.freeze()
    gc.enable()
    server = Server((args.host, args.port), Handler)
    server.sim = sim
    scheme = "http"
    if args.tls_cert:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(args.tls_cert, args.tls_key)
        scheme = "https"
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = server.server_address[:2]
    print(f"simulator ready on {scheme}://{host}:{port}", flush=True)
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
