#!/usr/bin/python3
"""Self-test of the Makini API simulator: /usr/bin/python3 sql-tests/test_simulator.py

Starts simulator.py on a free port and checks it against fdw/API.md and its
own admin API. Expected values are computed here, independently, from
simdata.build_connections().
"""

import csv
import gzip
import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import simdata  # noqa: E402
import simulator  # noqa: E402

TOKENS = {"plant_a": "tok_plant_a", "plant_b": "tok_plant_b", "plant_c": "tok_plant_c"}
POS = "/api/erp/purchase-orders"


def text(value):
    """A JSON value as the contract compares it; None when null or ""."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def instant(value):
    """An ISO 8601 value (Z, offsets, fractions, date only) as a UTC datetime."""
    dt = datetime.fromisoformat(value)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


class SimulatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "simulator.py"), "--port", "0"],
            stdout=subprocess.PIPE, text=True)
        line = cls.proc.stdout.readline()
        m = re.fullmatch(r"simulator ready on http://127\.0\.0\.1:(\d+)\n", line)
        if not m:
            cls.proc.kill()
            raise RuntimeError(f"simulator did not start: {line!r}")
        cls.port = int(m.group(1))
        cls.origin = f"http://127.0.0.1:{cls.port}"
        cls.conns = simdata.build_connections()

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.proc.stdout.close()

    def setUp(self):
        self.assertEqual(self.admin("reset"), "ok\n")

    # -- helpers ------------------------------------------------------------

    def request(self, path, token="tok_plant_a", headers=None, method="GET"):
        """One request on a new connection: (status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = {"Accept": "application/json", "User-Agent": "sim-selftest/1"}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        try:
            conn.request(method, path, headers=sent)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def get(self, path, token="tok_plant_a", headers=None, status=200):
        """GET and parse JSON, asserting the status."""
        code, hdrs, body = self.request(path, token, headers)
        self.assertEqual(code, status, body[:300])
        return json.loads(body), hdrs

    def admin(self, what):
        return self.request("/_sim/" + what, token=None)[2].decode()

    def fault(self, params):
        self.assertEqual(self.admin("fault?" + params), "ok\n")

    def records(self, conn="plant_a", resource="purchase-orders"):
        return self.conns[conn]["data"][resource]

    def keys(self, path, token="tok_plant_a"):
        return [r["key"] for r in self.get(path, token)[0]["data"]]

    def all_pages(self, path, token="tok_plant_a"):
        """Follow links.next from a path; returns (records, pages)."""
        out, pages, url = [], [], self.origin + path
        while url:
            parts = urlsplit(url)
            self.assertEqual(f"{parts.scheme}://{parts.netloc}", self.origin)
            body, _ = self.get(f"{parts.path}?{parts.query}", token)
            pages.append(body)
            out.extend(body["data"])
            url = body["links"]["next"]
            self.assertLess(len(pages), 1000)
        return out, pages

    def assert_error(self, path, status, code, token="tok_plant_a", headers=None, method="GET"):
        got, hdrs, body = self.request(path, token, headers, method)
        self.assertEqual(got, status, body)
        err = json.loads(body)
        self.assertEqual(set(err), {"error"})
        self.assertEqual(set(err["error"]), {"code", "type", "message", "request_id"})
        self.assertEqual(err["error"]["code"], code)
        self.assertEqual(err["error"]["request_id"], hdrs["X-Request-Id"])
        return hdrs

    def raw(self, path, token="tok_plant_a", timeout=5):
        """Raw HTTP exchange on one socket: list of (seconds, bytes) chunks."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                     f"Authorization: Bearer {token}\r\n\r\n".encode())
        start, chunks = time.monotonic(), []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append((time.monotonic() - start, data))
                head, _, body = b"".join(c for _, c in chunks).partition(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head)
                if m and len(body) >= int(m.group(1)) and b"Connection: close" not in head:
                    break
        finally:
            sock.close()
        return chunks

    # -- paging ---------------------------------------------------------------

    def test_paging_follows_next_to_the_end(self):
        data = self.records()
        got, pages = self.all_pages(POS + "?per_page=100")
        self.assertEqual([r["key"] for r in got], [r["key"] for r in data])
        self.assertEqual(len(pages), 6)
        for n, page in enumerate(pages, 1):
            meta, links = page["meta"], page["links"]
            self.assertEqual(meta, {"current_page": n, "from": (n - 1) * 100 + 1, "to": n * 100,
                                    "last_page": 6, "per_page": 100,
                                    "path": self.origin + POS, "total": 600})
            self.assertEqual(links["first"], f"{self.origin}{POS}?per_page=100&page=1")
            self.assertEqual(links["last"], f"{self.origin}{POS}?per_page=100&page=6")
            self.assertEqual(links["prev"], None if n == 1 else
                             f"{self.origin}{POS}?per_page=100&page={n - 1}")
        self.assertIsNone(pages[-1]["links"]["next"])
        lines = sum(len(r["lineItems"]) for r in data)
        got, _ = self.all_pages("/api/erp/purchase-orders.line-items?per_page=500")
        self.assertEqual(len(got), lines)
        self.assertNotIn("orderNo", got[0])

    def test_paging_defaults_beyond_last_and_query_preserved(self):
        body, _ = self.get(POS)
        self.assertEqual((len(body["data"]), body["meta"]["per_page"]), (100, 100))
        body, _ = self.get(POS + "?page=99&per_page=100")
        self.assertEqual(body["data"], [])
        self.assertIsNone(body["links"]["next"])
        self.assertEqual((body["meta"]["from"], body["meta"]["to"]), (None, None))
        path = POS + "?filter%5BorderNo%3Acontains%5D=PO-2025&page=1&sort[orderDate]=1&per_page=50"
        body, _ = self.get(path)
        self.assertEqual(body["links"]["next"], self.origin + POS +
                         "?filter%5BorderNo%3Acontains%5D=PO-2025&sort[orderDate]=1&per_page=50&page=2")
        got, _ = self.all_pages(path)
        self.assertEqual(len(got), sum("PO-2025" in r["orderNo"] for r in self.records()))

    def test_per_page_and_page_limits(self):
        self.assertEqual(len(self.get(POS + "?per_page=500")[0]["data"]), 500)
        self.assertEqual(len(self.get(POS + "?per_page=1")[0]["data"]), 1)
        for bad in ("per_page=0", "per_page=501", "per_page=abc", "per_page=", "per_page=-5",
                    "per_page=10.5", "page=0", "page=x"):
            self.assert_error(f"{POS}?{bad}", 400, "INVALID_REQUEST")

    def test_item_endpoints(self):
        for resource in ("purchase-orders", "purchase-orders.line-items", "vendors",
                         "currencies", "uom"):
            record = self.records(resource=resource)[3]
            body, _ = self.get(f"/api/erp/{resource}/{record['key']}")
            self.assertEqual(body, json.loads(simdata.json_text({"data": record})))
            self.assert_error(f"/api/erp/{resource}/00000000000000", 404, "NOT_FOUND")
        status = self.records(resource="statuses/purchase-orders")[0]["key"]
        self.assert_error(f"/api/erp/statuses/purchase-orders/{status}", 404, "NOT_FOUND")

    def test_integration_current(self):
        for name, token in TOKENS.items():
            body, _ = self.get("/api/integrations/current", token)
            self.assertEqual(set(body["data"]), {"id", "company_name", "email", "provider",
                                                 "updated_at", "sync_status", "sync_updated_at"})
            self.assertEqual(body["data"]["provider"], self.conns[name]["provider"])
        self.assert_error("/api/integrations/current", 503, "SYSTEM_UNAVAILABLE", "tok_offline")
        self.assert_error("/api/integrations/current", 401, "TOKEN_EXPIRED", "tok_expired")

    # -- filters and sorting --------------------------------------------------

    def expect(self, pred, conn="plant_a", resource="purchase-orders"):
        return [r["key"] for r in self.records(conn, resource) if pred(r)]

    def test_filter_equality_contains_startswith(self):
        order = self.records()[20]
        self.assertEqual(self.keys(f"{POS}?filter[orderNo]={order['orderNo']}"), [order["key"]])
        self.assertEqual(self.keys(f"{POS}?filter[orderNo]={order['orderNo'].lower()}"), [])
        path = f"{POS}?per_page=500&filter[title:contains]=POMPE"
        self.assertEqual(self.keys(path), self.expect(
            lambda r: "pompe" in (text(r.get("title")) or "").lower()))
        self.assertTrue(self.keys(path))
        path = f"{POS}?per_page=500&filter[title:startsWith]=ersatzTEILE"
        self.assertEqual(self.keys(path), self.expect(
            lambda r: (text(r.get("title")) or "").lower().startswith("ersatzteile")))
        # an empty needle matches every record whose value is not null/""/missing
        self.assertEqual(self.get(f"{POS}?filter[title:contains]=")[0]["meta"]["total"],
                         len(self.expect(lambda r: text(r.get("title")) is not None)))
        self.assertEqual(self.get(f"{POS}?filter[title]=")[0]["meta"]["total"], 0)
        # Unicode needle, percent-encoded UTF-8
        self.assertEqual(self.keys(f"{POS}?filter[title:contains]={quote('für')}&per_page=500"),
                         self.expect(lambda r: "für" in (text(r.get("title")) or "")))

    def test_filter_numbers_and_booleans_compare_their_text(self):
        order = next(r for r in self.records("plant_b") if isinstance(r.get("totalNetValue"), simdata.Decimal))
        value = str(order["totalNetValue"])
        self.assertEqual(self.keys(f"{POS}?filter[totalNetValue]={value}", "tok_plant_b"),
                         self.expect(lambda r: text(r.get("totalNetValue")) == value, "plant_b"))
        for name in ("plant_a", "plant_b"):
            body, _ = self.get("/api/erp/currencies?filter[isBase]=true", TOKENS[name])
            self.assertEqual(len(body["data"]), 1)

    def test_filter_date_time_instants_across_offsets(self):
        # orders 11..15 hold 2025-03-01T08:17:33 as .123456Z, .5Z, +02:00, -05:00 and a date
        for op, bound in (("gt", "2025-03-01T08:17:33Z"), ("gteq", "2025-03-01T10:17:33+02:00"),
                          ("lt", "2025-03-01T03:17:33.5-05:00"), ("lteq", "2025-03-01T08:17:33Z"),
                          ("lted", "2025-03-01"), ("gteq", "2025-03-01T08:17:33.123456Z"),
                          ("gt", "2024-03-01"), ("lt", "2026-01-01T00:00:00.000001Z")):
            compare = {"gt": "__gt__", "gteq": "__ge__", "lt": "__lt__", "lteq": "__le__",
                       "lted": "__le__"}[op]
            want = self.expect(lambda r: text(r.get("orderDate")) is not None and getattr(
                instant(r["orderDate"]), compare)(instant(bound)))
            path = f"{POS}?per_page=500&filter[orderDate:{op}]={quote(bound)}"
            got, _ = self.all_pages(path)
            self.assertEqual([r["key"] for r in got], want, path)
        window = f"{POS}?filter[orderDate:gteq]=2025-03-01T08:17:33Z&filter[orderDate:lteq]=2025-03-01T08:17:33.5Z"
        got = {r["key"] for r in self.get(window)[0]["data"]}
        self.assertEqual(got, {r["key"] for r in self.records()[11:15]})
        self.assert_error(f"{POS}?filter[orderDate:gt]=yesterday", 400, "INVALID_FILTER")
        self.assert_error(f"{POS}?filter[orderDate:gt]=2025-02-30", 400, "INVALID_FILTER")
        # an unencoded "+" is a space: not a date-time any more
        self.assert_error(f"{POS}?filter[orderDate:gt]=2025-03-01T10:17:33+02:00", 400, "INVALID_FILTER")

    def test_filter_text_comparisons_and_match_any(self):
        self.assertEqual(self.keys(f"{POS}?per_page=500&filter[orderNo:gteq]=PO-2026-000100"),
                         self.expect(lambda r: r["orderNo"] >= "PO-2026-000100"))
        a, b = self.records()[30], self.records()[40]
        both = f"filter[orderNo]={a['orderNo']}&filter[vendorKey]={b['vendorKey']}"
        self.assertEqual(self.keys(f"{POS}?per_page=500&{both}&filterMatch=any"),
                         self.expect(lambda r: r["orderNo"] == a["orderNo"] or r["vendorKey"] == b["vendorKey"]))
        self.assertEqual(self.keys(f"{POS}?per_page=500&{both}&filterMatch=all"),
                         self.expect(lambda r: r["orderNo"] == a["orderNo"] and r["vendorKey"] == b["vendorKey"]))
        # repeated key: the last one wins
        self.assertEqual(self.keys(f"{POS}?filter[orderNo]={a['orderNo']}&filter[orderNo]={b['orderNo']}"),
                         [b["key"]])

    def test_invalid_filters_and_sorts(self):
        for bad in ("filter[nope]=1", "filter[orderNo:like]=1", "filter[orderNo:]=1",
                    "filter[shipmentAddress]=x", "filter[lineItems]=x", "filter[zzCostCenter]=CC-4100",
                    "filter[shipmentAddress.city]=x", "filter=1", "filter[orderNo=1",
                    "sort[orderDate]=2", "sort[orderDate]=desc", "sort[zzCostCenter]=0",
                    "sort[billingAddress]=1", "filterMatch=some", "filter[OrderNo]=x"):
            self.assert_error(f"{POS}?{bad}", 400, "INVALID_FILTER")

    def test_sort_nulls_last_both_directions(self):
        data = self.records()
        for direction in (0, 1):
            got, _ = self.all_pages(f"{POS}?per_page=500&sort[dueAt]={direction}")
            values = [text(r.get("dueAt")) for r in got]
            present = [v for v in values if v is not None]
            self.assertEqual(values[len(present):], [None] * (len(values) - len(present)))
            self.assertEqual([instant(v) for v in present],
                             sorted((instant(v) for v in present), reverse=bool(direction)))
            nulls = [r["key"] for r in got[len(present):]]
            self.assertEqual(nulls, [r["key"] for r in data if text(r.get("dueAt")) is None])
        got, _ = self.all_pages(f"{POS}?per_page=500&sort[vendorKey]=0&sort[orderNo]=1")
        self.assertEqual([(r["vendorKey"], r["orderNo"]) for r in got],
                         sorted(sorted(((r["vendorKey"], r["orderNo"]) for r in data),
                                       key=lambda t: t[1], reverse=True), key=lambda t: t[0]))

    def test_behave_nulls_first_per_direction_and_connection(self):
        data = self.records()
        nulls = [r["key"] for r in data if text(r.get("approvedAt")) is None]
        self.assertEqual(self.admin("behave?nulls_asc=first&conn=plant_a"), "ok\n")
        self.assertEqual(self.admin("behave?nulls_desc=first&conn=plant_b"), "ok\n")
        for direction, first in ((0, True), (1, False)):
            got, _ = self.all_pages(f"{POS}?per_page=500&sort[approvedAt]={direction}")
            keys = [r["key"] for r in got]
            head = keys[:len(nulls)] if first else keys[len(keys) - len(nulls):]
            self.assertEqual(head, nulls)
            present = [instant(text(r.get("approvedAt"))) for r in got
                       if text(r.get("approvedAt")) is not None]
            self.assertEqual(present, sorted(present, reverse=bool(direction)))
        b_nulls = [r["key"] for r in self.records("plant_b")
                   if text(r.get("approvedAt")) is None]
        got, _ = self.all_pages(f"{POS}?per_page=500&sort[approvedAt]=1", "tok_plant_b")
        self.assertEqual([r["key"] for r in got][:len(b_nulls)], b_nulls)
        got, _ = self.all_pages(f"{POS}?per_page=500&sort[approvedAt]=0", "tok_plant_b")
        self.assertEqual([r["key"] for r in got][-len(b_nulls):], b_nulls)
        # a filter still never matches a record without a value
        body, _ = self.get(f"{POS}?per_page=500&sort[approvedAt]=0"
                           "&filter[approvedAt:gteq]=0001-01-01T00:00:00Z")
        self.assertEqual(body["meta"]["total"], len(data) - len(nulls))
        self.assertEqual(self.admin("reset"), "ok\n")
        got, _ = self.all_pages(f"{POS}?per_page=500&sort[approvedAt]=0")
        self.assertEqual([r["key"] for r in got][-len(nulls):], nulls)
        for bad in ("nulls_asc=middle", "nulls=first", "nulls_asc=first&conn=nope", ""):
            self.assertTrue(self.admin("behave?" + bad).startswith("error: "), bad)

    def test_percent_encoded_brackets(self):
        order = self.records()[50]
        plain = self.keys(f"{POS}?filter[orderNo]={order['orderNo']}&sort[orderDate]=1")
        encoded = self.keys(f"{POS}?filter%5BorderNo%5D={quote(order['orderNo'])}&sort%5BorderDate%5D=1")
        lower = self.keys(f"{POS}?filter%5borderNo%5d={order['orderNo']}")
        self.assertEqual(plain, [order["key"]])
        self.assertEqual(encoded, plain)
        self.assertEqual(lower, plain)

    # -- errors and headers -----------------------------------------------------

    def test_every_error_code(self):
        self.assert_error(POS, 401, "AUTHENTICATION_FAILED", token=None)
        self.assert_error(POS, 401, "AUTHENTICATION_FAILED", token="tok_nope")
        self.assert_error(POS, 401, "AUTHENTICATION_FAILED", token=None,
                          headers={"Authorization": "Basic dG9rX3BsYW50X2E="})
        self.assert_error(POS, 401, "TOKEN_EXPIRED", token="tok_expired")
        self.assert_error(POS, 503, "SYSTEM_UNAVAILABLE", token="tok_offline")
        hdrs = self.assert_error(POS, 400, "UNSUPPORTED_API_VERSION", headers={"X-Api-Version": "v2"})
        self.assertEqual(hdrs["X-Api-Version"], "v1")
        self.assert_error("/api/erp/nothing-here", 404, "NOT_FOUND")
        self.assert_error("/", 404, "NOT_FOUND")
        self.assert_error(POS, 405, "INVALID_REQUEST", method="POST")
        for status, code in ((401, "REAUTHORIZATION_REQUIRED"), (403, "PERMISSION_DENIED"),
                             (429, "RATE_LIMIT_EXCEEDED"), (500, "INTERNAL_ERROR"),
                             (502, "SYSTEM_ERROR"), (504, "SYSTEM_TIMEOUT"),
                             (503, "SYSTEM_UNAVAILABLE")):
            self.fault(f"kind=status&status={status}&code={code}")
            self.assert_error(POS, status, code)
        self.fault("kind=status&status=504")
        self.assert_error(POS, 504, "SYSTEM_TIMEOUT")
        self.fault("kind=status&code=RATE_LIMIT_EXCEEDED")
        self.assert_error(POS, 429, "RATE_LIMIT_EXCEEDED")

    def test_request_id_version_and_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        ids = set()
        for version in (None, "v1", None):
            headers = {"Authorization": "Bearer tok_plant_a"}
            if version:
                headers["X-Api-Version"] = version
            conn.request("GET", POS + "?per_page=5", headers=headers)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.headers["X-Api-Version"], "v1")
            self.assertRegex(resp.headers["X-Request-Id"], r"^req_[0-9a-f]{12}$")
            self.assertIsNotNone(resp.headers["Content-Length"])
            self.assertIsNone(resp.headers["Deprecation"])
            ids.add(resp.headers["X-Request-Id"])
        conn.close()
        _, hdrs = self.get(POS, token="tok_nope", status=401)
        ids.add(hdrs["X-Request-Id"])
        self.assertEqual(len(ids), 4)

    def test_gzip(self):
        _, _, plain = self.request(POS + "?per_page=50")
        status, hdrs, body = self.request(POS + "?per_page=50", headers={"Accept-Encoding": "gzip"})
        self.assertEqual((status, hdrs["Content-Encoding"]), (200, "gzip"))
        self.assertEqual(int(hdrs["Content-Length"]), len(body))
        self.assertEqual(gzip.decompress(body), plain)
        _, hdrs, body = self.request(POS + "?per_page=5", headers={"Accept-Encoding": "gzip;q=0, br"})
        self.assertIsNone(hdrs["Content-Encoding"])
        status, hdrs, body = self.request(POS, token="bad", headers={"Accept-Encoding": "deflate, gzip"})
        self.assertEqual(json.loads(gzip.decompress(body))["error"]["code"], "AUTHENTICATION_FAILED")

    def test_deprecation(self):
        _, hdrs = self.get(POS + "?per_page=1", headers={"X-Api-Version": "v0"})
        self.assertEqual((hdrs["X-Api-Version"], hdrs["Deprecation"]), ("v0", "true"))
        self.assertEqual(hdrs["Sunset"], "Sat, 01 May 2027 00:00:00 GMT")
        self.fault("kind=deprecate")
        _, hdrs = self.get(POS + "?per_page=1")
        self.assertEqual((hdrs["X-Api-Version"], hdrs["Deprecation"]), ("v1", "true"))
        self.assertIsNotNone(parsedate_to_datetime(hdrs["Sunset"]))
        _, hdrs = self.get(POS + "?per_page=1")
        self.assertIsNone(hdrs["Deprecation"])

    # -- faults -------------------------------------------------------------------

    def test_fault_status_retry_after_and_matching(self):
        self.fault("kind=status&status=429&retry_after=2&count=2&path=/api/erp/purchase-orders")
        for _ in range(2):
            hdrs = self.assert_error(POS, 429, "RATE_LIMIT_EXCEEDED")
            self.assertEqual(hdrs["Retry-After"], "2")
        self.get(POS)
        self.fault("kind=status&status=503&code=SYSTEM_UNAVAILABLE&retry_after_date=1")
        hdrs = self.assert_error(POS, 503, "SYSTEM_UNAVAILABLE")
        wait = (parsedate_to_datetime(hdrs["Retry-After"]) - datetime.now(timezone.utc)).total_seconds()
        self.assertTrue(0 < wait <= 2.5, wait)
        # conn, path and page restrict a rule; count=-1 fires forever
        self.fault("kind=status&status=500&conn=plant_b&path=/api/erp/vendors&page=2&count=-1")
        self.get("/api/erp/vendors?page=2&per_page=5")
        self.get("/api/erp/vendors?page=1&per_page=5", "tok_plant_b")
        self.get(POS + "?page=2&per_page=5", "tok_plant_b")
        for _ in range(3):
            self.assert_error("/api/erp/vendors?page=2&per_page=5", 500, "INTERNAL_ERROR", "tok_plant_b")
        for bad in ("kind=nope", "kind=slow&delay=5", "kind=status&status=x", "kind=slow&conn=zz"):
            self.assertTrue(self.admin("fault?" + bad).startswith("error:"), bad)

    def test_fault_bodies_that_are_not_the_contract(self):
        self.fault("kind=html&status=502")
        status, hdrs, body = self.request(POS)
        self.assertEqual((status, hdrs["Content-Type"]), (502, "text/html"))
        self.assertIn(b"<html>", body)
        self.fault("kind=empty&status=500")
        self.assertEqual(self.request(POS)[::2], (500, b""))
        self.fault("kind=notjson")
        self.assertEqual(self.request(POS)[::2], (200, b"<html>oops</html>"))
        self.fault("kind=wrongshape")
        self.assertEqual(self.request(POS)[::2], (200, b'{"items": []}'))

    def test_fault_meta_bad_header_and_message(self):
        self.fault("kind=meta&field=last_page&value=4294967297")
        self.assertEqual(self.get(POS)[0]["meta"]["last_page"], 4294967297)
        self.fault("kind=meta&field=next_page&value=x1")
        self.assertTrue(self.get(POS)[0]["links"]["next"].endswith("page=x1"))
        self.fault("kind=bad_header&header=api_version")
        status, hdrs, _ = self.request(POS)
        self.assertEqual(hdrs["X-Api-Version"].encode("latin-1"), b"v1\xff\xfe")
        self.fault("kind=bad_header")
        self.fault("kind=status&status=503&message=caf%C3%A9")
        status, hdrs, body = self.request(POS)
        self.assertTrue(hdrs["X-Request-Id"].encode("latin-1").endswith(b"\xff\xfe"))
        self.assertEqual((status, json.loads(body)["error"]["message"]), (503, "café"))

    def test_served_bodies(self):
        served = "/_bodies/b1/gzip/api/erp/purchase-orders?per_page=5"
        self.assert_error(served, 404, "NOT_FOUND")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "b1.json"), "wb") as f:
                f.write(b'{"data": [\xff')
            self.assertEqual(self.admin("bodies?dir=" + quote(d)), "ok\n")
            gz = {"Accept-Encoding": "gzip"}
            status, hdrs, body = self.request(served, headers=gz)
            self.assertEqual((status, hdrs["Content-Encoding"]), (200, "gzip"))
            self.assertEqual(gzip.decompress(body), b'{"data": [\xff')
            status, hdrs, body = self.request(served.replace("gzip", "identity"), headers=gz)
            self.assertEqual((status, hdrs["Content-Encoding"], body), (200, None, b'{"data": [\xff'))
            later = json.loads(self.request(served + "&page=2")[2])
            self.assertEqual((later["data"], later["links"]["next"]), ([], None))
            self.assert_error(served, 401, "AUTHENTICATION_FAILED", token="bad")
            self.assert_error(served.replace("b1", "b2"), 404, "NOT_FOUND")
            self.assertTrue(self.admin("bodies?dir=/nonexistent").startswith("error:"))
            logged = len(self.admin("requests").splitlines())
            self.assertEqual(self.admin(f"bodies?dir={quote(d)}&log=0"), "ok\n")
            self.assertEqual(self.request(served)[0], 200)
            self.assertEqual(len(self.admin("requests").splitlines()), logged)
        self.assertEqual(self.admin("reset"), "ok\n")
        self.assert_error(served, 404, "NOT_FOUND")

    def test_fault_truncate_and_reset(self):
        self.fault("kind=truncate")
        chunks = self.raw(POS + "?per_page=20")
        head, _, body = b"".join(c for _, c in chunks).partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        self.assertEqual(len(body), length // 2)
        self.fault("kind=truncate")
        with self.assertRaises(http.client.IncompleteRead):
            self.request(POS + "?per_page=20")
        self.fault("kind=reset")
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            self.request(POS)
        self.get(POS)

    def test_fault_slow_and_stall(self):
        self.fault("kind=slow&delay_ms=300")
        start = time.monotonic()
        self.get(POS + "?per_page=5")
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.fault("kind=stall&delay_ms=400")
        chunks = self.raw(POS + "?per_page=20")
        self.assertLess(chunks[0][0], 0.3)
        self.assertIn(b"\r\n\r\n", chunks[0][1])
        self.assertGreaterEqual(chunks[-1][0], 0.4)
        head, _, body = b"".join(c for _, c in chunks).partition(b"\r\n\r\n")
        self.assertEqual(len(body), int(re.search(rb"Content-Length: (\d+)", head).group(1)))

    def test_fault_link_kinds(self):
        path = POS + "?per_page=10"
        self.fault("kind=next_loop")
        body, _ = self.get(path)
        self.assertEqual(body["links"]["next"], f"{self.origin}{path}&page=1")
        self.fault("kind=cross_origin_next")
        body, _ = self.get(path)
        self.assertEqual(body["links"]["next"], f"http://127.0.0.2:{self.port}{path}&page=2")
        self.fault("kind=empty_next")
        body, _ = self.get(path)
        self.assertEqual((body["data"], body["links"]["next"]), ([], f"{self.origin}{path}&page=2"))
        self.fault("kind=short")
        body, _ = self.get(path)
        self.assertEqual(len(body["data"]), 5)
        self.assertEqual(body["links"]["next"], f"{self.origin}{path}&page=2")
        self.assertEqual(len(self.get(path)[0]["data"]), 10)

    def test_fault_bad_value_and_cache_isolation(self):
        path = POS + "?per_page=3"
        normal, _ = self.get(path)
        self.fault("kind=bad_value&field=totalNetValue&value=12,50")
        body, _ = self.get(path)
        self.assertEqual(body["data"][0]["totalNetValue"], "12,50")
        self.assertEqual(body["data"][1:], normal["data"][1:])
        self.fault("kind=bad_value&field=lineItems.0.lineNo&value=ten")
        body, _ = self.get(path)
        self.assertEqual(body["data"][0]["lineItems"][0]["lineNo"], "ten")
        self.assertEqual(self.get(path)[0], normal)

    def test_latency(self):
        start = time.monotonic()
        self.get("/api/erp/uom", "tok_slow")
        self.assertGreaterEqual(time.monotonic() - start, 0.2)
        self.assertEqual(self.admin("latency?conn=plant_c&ms=150"), "ok\n")
        start = time.monotonic()
        self.get("/api/erp/uom", "tok_plant_c")
        self.assertGreaterEqual(time.monotonic() - start, 0.15)
        self.admin("reset")
        start = time.monotonic()
        self.get("/api/erp/uom", "tok_plant_c")
        self.assertLess(time.monotonic() - start, 0.15)

    # -- behaviour knobs and data changes --------------------------------------

    def behave(self, params):
        self.assertEqual(self.admin("behave?" + params), "ok\n")

    def test_knob_max_per_page(self):
        self.behave("max_per_page=40&conn=plant_a")
        got, pages = self.all_pages(POS + "?per_page=100")
        self.assertEqual([r["key"] for r in got], [r["key"] for r in self.records()])
        self.assertEqual([len(p["data"]) for p in pages], [40] * 15)
        self.assertEqual({(p["meta"]["per_page"], p["meta"]["last_page"]) for p in pages},
                         {(40, 15)})
        self.assertEqual(pages[1]["meta"]["from"], 41)
        self.behave("meta_per_page=asked&conn=plant_a")
        self.assertEqual(self.get(POS + "?per_page=100")[0]["meta"]["per_page"], 100)
        self.assertEqual(len(self.get(POS + "?per_page=100", "tok_plant_b")[0]["data"]), 100)
        self.admin("reset")
        self.assertEqual(len(self.get(POS + "?per_page=100")[0]["data"]), 100)

    def test_knob_empty_pages(self):
        self.behave("empty_pages=2")
        got, pages = self.all_pages(POS + "?per_page=100")
        self.assertEqual([r["key"] for r in got], [r["key"] for r in self.records()])
        self.assertEqual([len(p["data"]) for p in pages], [0, 0, 100] * 6)
        self.assertTrue(all(p["links"]["next"] for p in pages[:-1]))
        self.assertEqual((pages[0]["meta"]["last_page"], pages[2]["meta"]["from"],
                          pages[0]["meta"]["from"]), (18, 1, None))
        self.assertEqual(self.get(POS + "?page=19")[0]["data"], [])

    def test_knob_meta(self):
        for style in ("null", "absent", "none"):
            self.behave("meta=" + style + "&conn=plant_a")
            got, pages = self.all_pages(POS + "?per_page=250")
            self.assertEqual(len(got), 600)
            for page in pages:
                if style == "none":
                    self.assertNotIn("meta", page)
                elif style == "null":
                    self.assertEqual((page["meta"]["total"], page["meta"]["last_page"],
                                      page["links"]["last"]), (None, None, None))
                else:
                    self.assertFalse({"total", "last_page"} & set(page["meta"]))
                if style != "null":
                    self.assertNotIn("last", page["links"])
            self.assertEqual(self.get(POS, "tok_plant_b")[0]["meta"]["total"], 250)

    def test_behave_admin_errors(self):
        for bad in ("behave?nope=1", "behave?max_per_page=0", "behave?max_per_page=501",
                    "behave?meta=maybe", "behave?mutate_op=drop", "behave?conn=nope&meta=null",
                    "behave?conn=plant_a", "mutate?conn=plant_a&op=nope",
                    "mutate?conn=plant_a&op=update&key=nope", "mutate?op=insert"):
            status, _, body = self.request("/_sim/" + bad, token=None)
            self.assertEqual(status, 400, bad)
            self.assertTrue(body.startswith(b"error: "), bad)
        for knob in simulator.BEHAVIOUR_DEFAULTS:
            self.assertIn(knob + "=", self.admin("help"))

    def truth_keys(self, table="purchase_orders", column=0):
        body = self.request(f"/_sim/data/plant_a/{table}.csv", token=None)[2].decode()
        return [r[column] for r in list(csv.reader(io.StringIO(body)))[1:]]

    def mutate(self, params):
        status, _, body = self.request("/_sim/mutate?conn=plant_a&" + params, token=None)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_mutate_orders_and_reset(self):
        orders = self.records()
        keys = [r["key"] for r in orders]
        self.assertEqual(self.truth_keys(), keys)           # cached before the change
        done = self.mutate(f"op=insert&like={keys[5]}&before={keys[2]}&at=2030-01-01T10:00:00Z")
        new = done["key"]
        self.assertNotIn(new, keys)
        got = self.all_pages(POS + "?per_page=500")[0]
        self.assertEqual([r["key"] for r in got], keys[:2] + [new] + keys[2:])
        self.assertEqual(self.truth_keys(), keys[:2] + [new] + keys[2:])
        copy_ = self.get(f"{POS}/{new}")[0]["data"]
        self.assertEqual((copy_["title"], copy_["updatedAt"], len(copy_["lineItems"])),
                         (orders[5].get("title"), "2030-01-01T10:00:00Z",
                          len(orders[5]["lineItems"])))
        self.assertFalse({l["key"] for l in copy_["lineItems"]} &
                         {l["key"] for l in orders[5]["lineItems"]})
        self.mutate(f"op=update&key={keys[0]}&f.title=Renamed&null=notes&at=2030-01-02T00:00:00Z")
        first = self.get(f"{POS}/{keys[0]}")[0]["data"]
        self.assertEqual((first["title"], first["notes"], first["updatedAt"]),
                         ("Renamed", None, "2030-01-02T00:00:00Z"))
        self.mutate(f"op=soft_delete&key={keys[1]}&at=2030-01-03T00:00:00Z")
        second = self.get(f"{POS}/{keys[1]}")[0]["data"]
        self.assertEqual((second["deletedAt"], second["updatedAt"]),
                         ("2030-01-03T00:00:00Z", "2030-01-03T00:00:00Z"))
        self.mutate(f"op=delete&key={keys[3]}")
        self.assert_error(f"{POS}/{keys[3]}", 404, "NOT_FOUND")
        self.assertNotIn(keys[3], self.truth_keys())
        self.assertEqual(self.get(POS + "?filter[updatedAt:gteq]=2030-01-01T00:00:00Z")[0]
                         ["meta"]["total"], 3)
        self.assertEqual(orders[0]["key"], keys[0])         # nothing changed in place
        self.admin("reset")
        self.assertEqual(self.truth_keys(), keys)
        self.assertEqual(self.get(f"{POS}/{keys[0]}")[0]["data"]["title"], orders[0].get("title"))
        self.assertEqual([r["key"] for r in self.all_pages(POS + "?per_page=500")[0]], keys)

    def test_mutate_lines(self):
        order = self.records()[7]
        lines = [l["key"] for l in order["lineItems"]]
        at = "&at=2030-01-04T00:00:00Z"
        new = self.mutate(f"op=line_insert&key={order['key']}{at}")["line"]
        self.mutate(f"op=line_update&key={order['key']}&line={lines[0]}&f.name=Bolt{at}")
        self.mutate(f"op=line_soft_delete&key={order['key']}&line={new}{at}")
        got = self.get(f"{POS}/{order['key']}")[0]["data"]
        self.assertEqual([l["key"] for l in got["lineItems"]], lines + [new])
        self.assertEqual((got["updatedAt"], got["lineItems"][0]["name"],
                          got["lineItems"][0]["updatedAt"], got["lineItems"][-1]["deletedAt"]),
                         ("2030-01-04T00:00:00Z", "Bolt", "2030-01-04T00:00:00Z",
                          "2030-01-04T00:00:00Z"))
        self.mutate(f"op=line_delete&key={order['key']}&line={lines[0]}")
        all_lines = [r["key"] for r in self.all_pages(
            "/api/erp/purchase-orders.line-items?per_page=500")[0]]
        self.assertNotIn(lines[0], all_lines)
        self.assertIn(new, all_lines)
        self.assertIn(new, self.truth_keys("purchase_order_lines", 2))
        self.assertNotIn(lines[0], self.truth_keys("purchase_order_lines", 2))

    def test_knob_mutate_after_page(self):
        keys = [r["key"] for r in self.records()]
        expected = {"insert": keys[:100] + keys[99:], "delete": keys[:100] + keys[101:],
                    "update": keys}
        for op, want in expected.items():
            self.admin("reset")
            self.behave(f"mutate_after_page=1&mutate_op={op}&conn=plant_a")
            got = self.all_pages(POS + "?per_page=100")[0]
            self.assertEqual([r["key"] for r in got], want, op)
            self.assertEqual(self.truth_keys() == keys, op == "update")
            again = [r["key"] for r in self.all_pages(POS + "?per_page=100")[0]]
            self.assertEqual(len(again), len(set(again)))    # once only
            self.assertIn("mutate_" + op, [r["fault"] for r in self.log()[1]])
        self.assertEqual(self.get(f"{POS}/{keys[0]}")[0]["data"]["title"],
                         "changed between pages")

    def test_knob_max_concurrent(self):
        self.admin("latency?conn=plant_a&ms=3000")
        self.behave("max_concurrent=3&conn=plant_a")
        threads = [threading.Thread(target=self.request, args=("/api/erp/uom",))
                   for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 4
        while json.loads(self.admin("stats"))["plant_a"]["inflight"] < 3:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        hdrs = self.assert_error("/api/erp/uom", 429, "RATE_LIMIT_EXCEEDED")
        self.assertEqual(hdrs["Retry-After"], "1")
        self.assertEqual(self.request("/api/erp/uom", "tok_plant_b")[0], 200)
        for t in threads:
            t.join()
        self.assertEqual(json.loads(self.admin("stats"))["plant_a"]["inflight"], 0)
        self.assertEqual(self.request("/api/erp/uom")[0], 200)
        self.assertEqual(simulator.BEHAVIOUR_DEFAULTS["max_concurrent"], 8)

    # -- request log, ground truth, stats -------------------------------------------

    def log(self, since=0):
        text_ = self.admin(f"requests?since={since}")
        self.assertTrue(text_.startswith(
            "seq,conn,method,path,query,params_json,status,records,bytes,duration_ms,"
            "api_version,accept_encoding,user_agent,authorized,arrived_ms,fault\n"))
        return text_, list(csv.DictReader(io.StringIO(text_)))

    def test_request_log(self):
        self.request(POS + "?filter%5BorderNo%5D=x&filter[orderNo]=PO-2024-000001&per_page=7",
                     headers={"X-Api-Version": "v1", "Accept-Encoding": "gzip"})
        self.get("/api/erp/vendors/" + self.records(resource="vendors")[0]["key"])
        self.request(POS, token="tok_secret_value")
        self.fault("kind=notjson")
        self.request(POS)
        self.admin("stats")
        raw, rows = self.log()
        self.assertNotIn("tok_", raw)
        self.assertEqual(len(rows), 4)
        first, item, denied, faulted = rows
        self.assertEqual(first["query"], "filter%5BorderNo%5D=x&filter[orderNo]=PO-2024-000001&per_page=7")
        self.assertEqual(json.loads(first["params_json"]),
                         {"filter[orderNo]": "PO-2024-000001", "per_page": "7"})
        self.assertEqual((first["conn"], first["status"], first["records"], first["api_version"],
                          first["accept_encoding"], first["authorized"]),
                         ("plant_a", "200", "1", "v1", "gzip", "true"))
        self.assertEqual(first["user_agent"], "sim-selftest/1")
        self.assertGreater(int(first["bytes"]), 0)
        float(first["duration_ms"])
        # arrival times: one after the other, as the requests were sent
        self.assertLessEqual(float(first["arrived_ms"]), float(item["arrived_ms"]))
        self.assertEqual((item["records"], item["path"][:16]), ("1", "/api/erp/vendors"))
        self.assertEqual((denied["conn"], denied["status"], denied["authorized"], denied["records"]),
                         ("", "401", "false", "0"))
        self.assertEqual((faulted["fault"], faulted["records"]), ("notjson", "0"))
        seqs = [int(r["seq"]) for r in rows]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertEqual([r["seq"] for r in self.log(seqs[1])[1]], [str(s) for s in seqs[2:]])

    def test_ground_truth_matches_served_records(self):
        for conn in ("plant_a", "plant_b", "plant_c", "slow", "offline"):
            token = "tok_" + conn
            for table, (resource, _, expand, columns) in simdata.TABLES.items():
                status, _, body = self.request(f"/_sim/data/{conn}/{table}.csv", token=None)
                self.assertEqual(status, 200)
                rows = list(csv.reader(io.StringIO(body.decode())))
                self.assertEqual(rows[0], [c[0] for c in columns])
                if conn == "offline":
                    self.assertEqual(len(rows), 1)
                    continue
                if expand:
                    served = self.get("/api/erp/purchase-orders.line-items?per_page=1", token)[0]
                else:
                    served = self.get(f"/api/erp/{resource}?per_page=1", token)[0]
                self.assertEqual(len(rows) - 1, served["meta"]["total"], (conn, table))
        self.assertEqual(self.request("/_sim/data/plant_a/nope.csv", token=None)[0], 404)

    def test_ground_truth_conventions(self):
        orders = self.records()
        rows = {r[0]: r for r in simdata.table_rows(self.conns["plant_a"], "purchase_orders")}
        cols = [c[0] for c in simdata.TABLES["purchase_orders"][3]]
        empty = dict(zip(cols, rows[orders[9]["key"]]))     # every optional field ""
        self.assertEqual((empty["title"], empty["order_date"], empty["total_net_value"],
                          empty["billing_address"]), ("", None, None, None))
        nulls = dict(zip(cols, rows[orders[8]["key"]]))
        self.assertEqual((nulls["title"], nulls["order_date"]), (None, None))
        # date-times: the text as sent, its zone made explicit (COPY reads it)
        self.assertEqual(dict(zip(cols, rows[orders[12]["key"]]))["order_date"], "2025-03-01T08:17:33.5Z")
        self.assertEqual(dict(zip(cols, rows[orders[13]["key"]]))["order_date"], "2025-03-01T10:17:33+02:00")
        self.assertEqual(dict(zip(cols, rows[orders[15]["key"]]))["order_date"], "2025-03-01T00:00:00Z")
        self.assertEqual(dict(zip(cols, rows[orders[11]["key"]]))["created_at"], "2025-03-01T08:17:33.0000025Z")
        self.assertEqual(simdata.instant_text("2025-03-01T08:17:33"), "2025-03-01T08:17:33Z")
        self.assertIsNone(simdata.instant_text("03/04/2026"))
        custom = json.loads(dict(zip(cols, rows[orders[4]["key"]]))["custom_fields"])
        self.assertEqual(custom["zzProject"]["deep"], {"a": {"b": {"c": [1, 2, {"d": None}]}}})
        self.assertNotIn("lineItems", custom)
        body = self.request("/_sim/data/plant_a/purchase_orders.csv", token=None)[2].decode()
        line = next(x for x in body.split("\n") if x.startswith(f'"{orders[9]["key"]}"'))
        self.assertIn(',"",', line)                          # "" is a quoted empty string
        self.assertIn(",,", line)                            # NULL is an unquoted empty field
        lines = list(simdata.table_rows(self.conns["plant_b"], "purchase_order_lines"))
        self.assertEqual(len(lines), len(self.records("plant_b", "purchase-orders.line-items")))
        self.assertTrue(all(r[3] is None or r[3].isdigit() for r in lines))

    def test_stats_and_data_shape(self):
        stats = json.loads(self.admin("stats"))
        self.assertEqual(stats["plant_a"]["orders"], 600)
        self.assertEqual(stats["plant_a"]["lines"], len(self.records(resource="purchase-orders.line-items")))
        self.assertNotIn("bench", stats)
        data = self.conns["plant_a"]["data"]
        vendors = {v["key"] for v in data["vendors"]}
        statuses = {s["key"] for s in data["statuses/purchase-orders"]}
        currencies = {c["key"] for c in data["currencies"]}
        uoms = {u["key"] for u in data["uom"]}
        for order in data["purchase-orders"]:
            self.assertIn(order["vendorKey"], vendors)
            self.assertIn(order["statusKey"], statuses)
            self.assertIn(order["currencyKey"], currencies)
            self.assertTrue(all(line["uomKey"] in uoms for line in order["lineItems"]))
            self.assertRegex(order["key"], r"^\d{14}$")
        served = self.request(f"{POS}/{data['purchase-orders'][1]['key']}", "tok_plant_b")
        self.assertEqual(served[0], 404)
        plant_b = self.request(POS + "?per_page=5", "tok_plant_b")[2]
        self.assertRegex(plant_b, rb'"totalNetValue":-?\d+(\.\d+)?[,}]')

    def test_determinism_and_bench_generation(self):
        again = simdata.build_connections()
        for name in self.conns:
            self.assertEqual(simdata.json_text(again[name]["data"]),
                             simdata.json_text(self.conns[name]["data"]))
        bench = simdata.build_connections(bench_orders=400)["bench"]["data"]
        self.assertEqual(len(bench["purchase-orders"]), 400)
        self.assertTrue(4.5 < len(bench["purchase-orders.line-items"]) / 400 < 6.5)
        self.assertEqual(len({r["key"] for r in bench["purchase-orders.line-items"]}),
                         len(bench["purchase-orders.line-items"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
