#!/usr/bin/python3
"""Reply bodies for the differential test of the FDW's JSON reader.

    /usr/bin/python3 sql-tests/diff_bodies.py --port PORT --dir DIR --seed S --count N
    /usr/bin/python3 sql-tests/diff_bodies.py --dir DIR --canonical <N-TAB-HEX-LINES

Writes DIR/0.json .. DIR/(N-1).json, DIR/index.tsv (number, kind, base
reply, what was done to it), DIR/keys.tsv (number, key of the first
record of the base reply: key lookups ask for it; whether the base is an
item reply) and DIR/bodies.tsv (number, the body as bytea hex, for COPY).
test_differential.sh has PostgreSQL read each body (the oracle) and write
the ones it accepts again; --canonical stores those as DIR/cN.json.  The
simulator serves both to foreign tables, and the test compares what
makini_fdw makes of them.

The first bodies are real replies of the simulator, as served: pages of
purchase orders with embedded lineItems, vendors and units of measure, and
item replies {"data": {...}} of orders and vendors, from connections that
write JSON differently (UTF-8 or \\u escapes, compact or spaced, amounts as
strings or numbers).  The others are seeded mutations of the small ones:

  valid   the page parsed and written again, still valid JSON: keys
          reordered or duplicated, unknown fields at every level, numbers as
          strings and back, nulls, "", odd and huge numbers, unicode and
          escapes (also in field names), very long strings, deep nesting,
          other shapes (an object where an array is expected, ...), and
          whitespace between tokens;
  bytes   byte mutations of a real or "valid" body, mostly invalid: bytes
          inserted, deleted, changed, truncation, invalid UTF-8, bad escapes,
          \\u0000, lone surrogates, control characters, deep or unbalanced
          nesting, malformed numbers and keywords, trailing garbage.

Body i depends only on the seed and i (its own random.Random), so a body
that shows a difference is made again by the same seed alone.
"""

import argparse
import http.client
import json
import os
import random
import re
import sys

# (connection, resource, per_page, page): real pages; the small ones and the
# item replies are also the bases of the mutations
SMALL_PAGES = [
    ("plant_a", "purchase-orders", 2, 1), ("plant_a", "purchase-orders", 3, 7),
    ("plant_b", "purchase-orders", 2, 3), ("plant_b", "purchase-orders", 3, 1),
    ("plant_c", "purchase-orders", 2, 5), ("plant_c", "purchase-orders", 1, 2),
    ("plant_a", "vendors", 6, 1), ("plant_b", "vendors", 5, 2),
    ("plant_c", "vendors", 8, 1), ("plant_a", "uom", 10, 1),
    ("plant_c", "uom", 10, 1),
]
# item replies {"data": {...}}: the record at (connection, resource, position)
ITEMS = [("plant_a", "purchase-orders", 5), ("plant_b", "purchase-orders", 9),
         ("plant_c", "purchase-orders", 3), ("plant_a", "vendors", 2),
         ("plant_c", "vendors", 4)]
# whole big pages, served as they are
BIG_PAGES = [
    ("plant_a", "purchase-orders", 100, 1), ("plant_b", "purchase-orders", 60, 2),
    ("plant_c", "purchase-orders", 80, 1), ("plant_c", "vendors", 100, 1),
]
BASES = len(SMALL_PAGES) + len(ITEMS)


class Num(str):
    """A JSON number, kept as its text."""


class Obj(list):
    """A JSON object as its (name, value) pairs: order and duplicates kept."""


def load(data):
    """Parse JSON bytes into Obj / list / str / Num / bool / None."""
    return json.loads(data, object_pairs_hook=Obj, parse_float=Num,
                      parse_int=Num, parse_constant=Num)


def get(port, conn, path):
    """A reply of the simulator, as it is served."""
    http_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    http_conn.request("GET", "/api/erp/" + path, headers={"Authorization": f"Bearer tok_{conn}"})
    resp = http_conn.getresponse()
    body = resp.read()
    http_conn.close()
    if resp.status != 200:
        sys.exit(f"diff_bodies: GET {path} on {conn}: {resp.status} {body[:200]!r}")
    return body


def fetch_real(port):
    """The real replies, (label, body, key of its first record): the small
    pages, the items, the big pages.  links.next is made null on most pages:
    a served body is page 1 of its own, later pages are empty."""
    pages = []
    for n, (conn, resource, per_page, page) in enumerate(SMALL_PAGES + BIG_PAGES):
        path = f"{resource}?per_page={per_page}&page={page}"
        body = get(port, conn, path)
        if n % 4 != 1:
            body = re.sub(rb'"next": ?"[^"]*"', b'"next": null', body)
        pages.append((f"{conn}/{path}", body, json.loads(body)["data"][0]["key"]))
    items = []
    for conn, resource, position in ITEMS:
        key = json.loads(get(port, conn, f"{resource}?per_page=1&page={position}"))["data"][0]["key"]
        path = f"{resource}/{key}"
        items.append((f"{conn}/{path}", get(port, conn, path), key))
    return pages[:len(SMALL_PAGES)] + items + pages[len(SMALL_PAGES):]


# ---------------------------------------------------------------------------
# Writing JSON, with the variations a server may use
# ---------------------------------------------------------------------------

SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f",
                 "\n": "\\n", "\r": "\\r", "\t": "\\t"}
WHITESPACE = ["", " ", "\n", "\t", "\r\n", " \n\t ", "    "]


class Writer:
    """Writes a parsed value back as JSON: whitespace between tokens and the
    share of characters written as \\u escapes vary by body."""

    def __init__(self, rng):
        self.rng = rng
        self.spaced = rng.random() < 0.3
        self.escape_share = rng.choice([0, 0, 0.02, 0.3, 1])
        self.ascii = rng.random() < 0.3
        self.solidus = rng.random() < 0.3      # "/" written as "\/"

    def ws(self):
        """Whitespace between two tokens."""
        return self.rng.choice(WHITESPACE) if self.spaced else ""

    def u_escape(self, code):
        """\\uXXXX, a surrogate pair above U+FFFF, hex digits in either case."""
        if code > 0xFFFF:
            code -= 0x10000
            return self.u_escape(0xD800 + (code >> 10)) + self.u_escape(0xDC00 + (code & 0x3FF))
        text = f"\\u{code:04x}"
        return text.upper().replace("\\U", "\\u") if self.rng.random() < 0.5 else text

    def string(self, s):
        """A string (or field name) as JSON, escaped as this body escapes."""
        out = ['"']
        for ch in s:
            code = ord(ch)
            if self.escape_share and self.rng.random() < self.escape_share:
                out.append("\\/" if ch == "/" and self.rng.random() < 0.5 else self.u_escape(code))
            elif ch in SHORT_ESCAPES:
                out.append(SHORT_ESCAPES[ch])
            elif ch == "/" and self.solidus:
                out.append("\\/")
            elif code < 0x20 or (code >= 0x80 and self.ascii):
                out.append(self.u_escape(code))
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)

    def value(self, v):
        """A value as JSON text."""
        if isinstance(v, Obj):
            if not v:
                return "{" + self.ws() + "}"
            items = [self.ws() + self.string(k) + self.ws() + ":" + self.ws() + self.value(x)
                     for k, x in v]
            return "{" + ",".join(items) + self.ws() + "}"
        if isinstance(v, list):
            return "[" + ",".join(self.ws() + self.value(x) for x in v) + self.ws() + "]"
        if isinstance(v, Num):
            return str.__str__(v)
        if isinstance(v, str):
            return self.string(v)
        return {None: "null", True: "true", False: "false"}[v]

    def dump(self, v):
        """The whole body as UTF-8 bytes (lone surrogates written as such)."""
        return (self.ws() + self.value(v) + self.ws()).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------
# Valid-JSON mutations
# ---------------------------------------------------------------------------

ODD_NAMES = ["extra", "x-unknown", "ключ", "🚀", 'q"uote', "back\\slash", "",
             "key2", "Key", "lineItems2", "data", "meta", "links", "nested",
             "custom_1", "tab\tname", "\u2028", "name"]
ODD_STRINGS = ["", " ", "é", "中文", "🚀", "\u2028\u2029", "\ufeff", "\ud7ff\ue000\uffff",
               'say "hi"', "C:\\path\\", "line\nbreak\ttab", "\u0001\u001f\u007f",
               "</script>", "2024-02-30T25:61:00Z", "2023-10-06T08:17:33.1234567+02:00",
               "true", "null", "12,50", "1e3", "-0", "NaN", "0001", "\b\f\n\r\t\"\\/",
               "a/b\\c", "\u00e9\u0301"]
ODD_NUMBERS = ["0", "-0", "1e400", "-1E-400", "123456789012345678901234567890.123456789",
               "1.5e+10", "0.000001", "1E2", "-0.0", "9" * 400, "1e-7", "3.14159",
               "-2147483649", "2147483648", "9223372036854775808", "0.1e1"]


def nodes(v, out=None, parent=None, index=None):
    """Every value of a tree, with its container and index: [(value, parent, index)]."""
    if out is None:
        out = []
    out.append((v, parent, index))
    if isinstance(v, Obj):
        for i, (_, x) in enumerate(v):
            nodes(x, out, v, i)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            nodes(x, out, v, i)
    return out


def put(parent, index, value):
    """Replaces the value at index of a container."""
    if isinstance(parent, Obj):
        parent[index] = (parent[index][0], value)
    else:
        parent[index] = value


def nested(rng, depth):
    """A value nested depth levels deep (arrays and objects)."""
    v = rng.choice([Num("1"), "deep", None, Obj(), []])
    for _ in range(depth):
        v = [v] if rng.random() < 0.5 else Obj([(rng.choice(ODD_NAMES), v)])
    return v


def random_value(rng, depth=0):
    """A random JSON value."""
    r = rng.random()
    if depth < 3 and r < 0.15:
        return Obj((rng.choice(ODD_NAMES), random_value(rng, depth + 1))
                   for _ in range(rng.randint(0, 3)))
    if depth < 3 and r < 0.25:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if r < 0.5:
        return rng.choice(ODD_STRINGS)
    if r < 0.7:
        return Num(rng.choice(ODD_NUMBERS))
    return rng.choice([None, True, False])


def valid_mutation(rng, tree):
    """One valid-JSON mutation of the tree (in place); returns (tree, what)."""
    all_nodes = nodes(tree)
    objects = [n for n in all_nodes if isinstance(n[0], Obj)]
    scalars = [n for n in all_nodes if n[1] is not None and not isinstance(n[0], (Obj, list))]
    op = rng.choice(["shuffle", "unknown", "unknown", "numstr", "null", "empty", "duplicate",
                     "long", "unicode", "escapes", "escapes", "number", "deep", "shape",
                     "rename", "emptyobj"])
    if op == "shuffle":
        obj = rng.choice(objects)[0]
        rng.shuffle(obj)
    elif op == "unknown":
        obj = rng.choice(objects)[0]
        obj.insert(rng.randint(0, len(obj)), (rng.choice(ODD_NAMES), random_value(rng)))
    elif op == "numstr" and scalars:
        v, parent, i = rng.choice(scalars)
        if isinstance(v, Num):
            put(parent, i, str.__str__(v))
        elif isinstance(v, str) and re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?", v):
            put(parent, i, Num(v))
        else:
            put(parent, i, Num(rng.choice(ODD_NUMBERS)))
    elif op in ("null", "empty") and scalars:
        v, parent, i = rng.choice(scalars + [n for n in all_nodes if n[1] is not None])
        put(parent, i, None if op == "null" else rng.choice(["", Obj(), [], False, True]))
    elif op == "duplicate":
        obj = rng.choice(objects)[0]
        if obj:
            name = rng.choice(obj)[0]
            obj.insert(rng.randint(0, len(obj)), (name, random_value(rng)))
    elif op == "long" and scalars:
        v, parent, i = rng.choice(scalars)
        piece = rng.choice(["a", "ü", "中", "🚀", 'x\\"y', "\n", "ab/cd", "0123456789"])
        put(parent, i, piece * rng.choice([1000, 20000, 70000]))
    elif op == "unicode" and scalars:
        v, parent, i = rng.choice(scalars)
        put(parent, i, rng.choice(ODD_STRINGS) + (v if isinstance(v, str) else "") +
            rng.choice(ODD_STRINGS))
    elif op == "escapes" and scalars:
        strings = [n for n in scalars if isinstance(n[0], str) and not isinstance(n[0], Num)]
        for v, parent, i in rng.sample(strings, min(len(strings), rng.randint(1, 8))):
            for _ in range(rng.randint(1, 3)):
                k = rng.randint(0, len(v))
                v = v[:k] + rng.choice('\b\f\n\r\t"\\/\u0001\u001f\u007f\u0080é€🚀') + v[k:]
            put(parent, i, v)
    elif op == "number" and scalars:
        v, parent, i = rng.choice(scalars)
        put(parent, i, Num(rng.choice(ODD_NUMBERS)))
    elif op == "deep":
        obj = rng.choice(objects)[0]
        depth = rng.choice([5, 200, 250, 254, 255, 256, 257, 300, 1200])
        if obj and rng.random() < 0.5:
            i = rng.randrange(len(obj))
            obj[i] = (obj[i][0], nested(rng, depth))
        else:
            obj.append(("deep", nested(rng, depth)))
    elif op == "shape":
        v, parent, i = rng.choice([n for n in all_nodes if n[1] is not None] or all_nodes[:1])
        if parent is not None:
            put(parent, i, rng.choice([Obj(), [], "text", Num("1"), [Num("1"), "a"],
                                       Obj([("key", "k")]), [Obj()], [[]], None]))
    elif op == "rename":
        obj = rng.choice(objects)[0]
        if obj:
            i = rng.randrange(len(obj))
            name = obj[i][0]
            new = rng.choice([name.upper(), name + " ", " " + name, name[:-1], name + "x"])
            obj[i] = (new, obj[i][1])
    elif op == "emptyobj":
        lists = [n[0] for n in all_nodes if type(n[0]) is list]
        if lists:
            target = rng.choice(lists)
            target.insert(rng.randint(0, len(target)), rng.choice([Obj(), [], None, "s", Num("2")]))
    return tree, op


# ---------------------------------------------------------------------------
# Byte mutations
# ---------------------------------------------------------------------------

INTERESTING = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b" ", b"0", b"-", b"e",
               b".", b"n", b"t", b"f", b"u", b"\x00", b"\x80", b"\xff", b"\xc3", b"\xed",
               b"\x7f", b"\x1f", b"\n", b"\t", b"\x0b"]
BAD_UTF8 = [b"\xc3", b"\xff", b"\xfe", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xc0\xaf",
            b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80",
            b"\xe2\x82", b"\x80", b"\xbf", b"\xf0\x9f\x9a", b"\xf0\x9f\x9a\x80"]
ESCAPES = [b"\\x", b"\\u12", b"\\uZZZZ", b"\\U0041", b"\\", b"\\u00", b"\\a", b"\\'",
           b"\\0", b"\\u0000", b"\\u0000", b"\\ud800", b"\\udc00", b"\\ud800\\u0041",
           b"\\ud800\\ud800", b"\\udbff\\udfff", b"\\uD83D\\uDE80", b"\\ud800x",
           b"\\udc00\\ud800", b"\\ud800\\n", b"\\u00e9", b"\\u0041", b"\\/", b"\\b",
           b"\\f", b"\\u007f", b"\\u0080", b"\\u07ff", b"\\u0800", b"\\uffff", b"\\ufeff",
           b"\\ud83d", b"\\ude80", b"\\uDBFF\\uDFFF", b"\\\\", b'\\"']
CONTROL = [b"\x01", b"\n", b"\t", b"\x1f", b"\x7f", b"\r", b"\x00"]
BAD_NUMBERS = [b"01", b"1.", b".5", b"-", b"+1", b"1e", b"1e+", b"NaN", b"Infinity",
               b"-Infinity", b"0x10", b"1_000", b"1e999999", b"- 1", b"1.2.3", b"00",
               b"-01", b"2a", b"1E+2", b"-0", b"1.0e-0", b"9" * 1000, b"1e5x", b"0e", b"-.1"]
BAD_KEYWORDS = [b"nul", b"tru", b"True", b"nulll", b"NULL", b"falsee", b"nullx", b"true1",
                b"t", b"fals", b"null_", "nullé".encode()]
NUMBER = re.compile(rb"(?<=[:\[,] )-?\d+(\.\d+)?([eE][+-]?\d+)?|(?<=[:\[,])-?\d+(\.\d+)?([eE][+-]?\d+)?")
KEYWORD = re.compile(rb"\b(null|true|false)\b")


def string_positions(data):
    """Positions just after a '"' (inside a string, or just after one)."""
    return [m.end() for m in re.finditer(b'"', data)] or [0]


def byte_mutation(rng, data):
    """One byte mutation; returns (data, what)."""
    n = len(data)
    pos = rng.randint(0, n)
    op = rng.choice(["insert", "delete", "change", "flip", "truncate", "utf8", "escape",
                     "escape", "control", "nesting", "number", "number", "keyword",
                     "structure", "whitespace"])
    if op == "insert":
        return data[:pos] + rng.choice(INTERESTING) + data[pos:], f"insert@{pos}"
    if op == "delete":
        k = rng.randint(1, 8)
        return data[:pos] + data[pos + k:], f"delete{k}@{pos}"
    if op == "change" and n:
        pos = rng.randrange(n)
        return data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1:], f"change@{pos}"
    if op == "flip" and n:
        pos = rng.randrange(n)
        return data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1:], f"flip@{pos}"
    if op == "truncate":
        return data[:pos], f"truncate@{pos}"
    if op in ("utf8", "escape", "control"):
        pos = rng.choice(string_positions(data))
        if rng.random() < 0.3:
            pos += rng.randint(0, 3)
        piece = rng.choice({"utf8": BAD_UTF8, "escape": ESCAPES, "control": CONTROL}[op])
        return data[:pos] + piece + data[pos:], f"{op} {piece!r}@{pos}"
    if op == "nesting":
        depth = rng.choice([10, 256, 257, 1000, 6000, 50000])
        opened = rng.choice([b"[", b'{"a":'])
        closed = b"]" if opened == b"[" else b"}"
        shut = depth if rng.random() < 0.7 else depth - 1
        pos = rng.choice(string_positions(data)[1::4] or [pos])
        piece = opened * depth + b"1" + closed * shut
        m = re.compile(rb'"\s*:\s*').match(data, pos)
        if m:       # a field name ends here: replace the value's first byte onwards
            pos = m.end()
        return data[:pos] + piece + (b"," if m else b"") + data[pos:], f"nesting{depth}/{shut}@{pos}"
    if op == "number":
        found = list(NUMBER.finditer(data))
        if found:
            m = rng.choice(found)
            piece = rng.choice(BAD_NUMBERS)
            return data[:m.start()] + piece + data[m.end():], f"number {piece[:20]!r}@{m.start()}"
    if op == "keyword":
        found = list(KEYWORD.finditer(data))
        if found:
            m = rng.choice(found)
            piece = rng.choice(BAD_KEYWORDS)
            return data[:m.start()] + piece + data[m.end():], f"keyword {piece!r}@{m.start()}"
    if op == "structure":
        kind = rng.randrange(7)
        if kind == 0:
            return b"\xef\xbb\xbf" + data, "bom"
        if kind == 1:
            tail = rng.choice([b"x", b"{}", b" \n", b"\x00", b",", b"]", b"}", b"null"])
            return data + tail, f"trailing {tail!r}"
        if kind == 2:
            found = [m.start() for m in re.finditer(rb"[}\]]", data)]
            if found:
                p = rng.choice(found)
                return data[:p] + b"," + data[p:], f"trailing comma@{p}"
        if kind == 3:
            found = [m.start() for m in re.finditer(b",", data)]
            if found:
                p = rng.choice(found)
                return data[:p] + data[p + 1:], f"missing comma@{p}"
        if kind == 4:
            found = [m.start() for m in re.finditer(b":", data)]
            if found:
                p = rng.choice(found)
                return data[:p] + b"::" + data[p + 1:], f"double colon@{p}"
        if kind == 5:
            return data[:pos] + b"\x00" + data[pos:], f"nul@{pos}"
        swap = rng.choice([(b"{", b"["), (b"[", b"{"), (b"}", b"]"), (b'"', b"'")])
        found = [m.start() for m in re.finditer(re.escape(swap[0]), data)]
        if found:
            p = rng.choice(found)
            return data[:p] + swap[1] + data[p + 1:], f"swap {swap!r}@{p}"
    if op == "whitespace":
        found = [m.start() for m in re.finditer(rb"[,:]", data)]
        if found:
            p = rng.choice(found) + 1
            piece = rng.choice([b" ", b"\n\t", b"\r\n", b"\x0b", b"\x0c", b"\xa0", b"\xc2\xa0",
                                b"\xe2\x80\x83", b" " * 5000])
            return data[:p] + piece + data[p:], f"whitespace {piece[:8]!r}@{p}"
    return data[:pos] + rng.choice(INTERESTING) + data[pos:], f"insert@{pos}"


# ---------------------------------------------------------------------------


def make_body(seed, i, real):
    """Body i: (bytes, kind, base, what was done)."""
    if i < len(real):
        return real[i][1], "real", real[i][0], "as served"
    rng = random.Random(f"{seed}:{i}")
    base = rng.randrange(BASES)
    what = []
    data = real[base][1]
    valid = rng.random() < 0.5
    if valid or rng.random() < 0.5:
        tree = load(data)
        for _ in range(rng.choice([0, 1, 1, 2, 3]) if not valid else rng.choice([1, 1, 2, 3])):
            tree, op = valid_mutation(rng, tree)
            what.append(op)
        writer = Writer(rng)
        data = writer.dump(tree)
        what.append(f"written(spaced={writer.spaced},escapes={writer.escape_share},"
                    f"ascii={writer.ascii})")
    if not valid:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            data, op = byte_mutation(rng, data)
            what.append(op)
    return data, "valid" if valid else "bytes", real[base][0], " ".join(what)


def write_canonical(directory):
    """Write DIR/cN.json for each line "N<tab>hex" on stdin: body N as
    PostgreSQL's json functions read and wrote it again."""
    for line in sys.stdin.buffer:
        number, text = line.rstrip(b"\n").split(b"\t", 1)
        with open(os.path.join(directory, f"c{int(number)}.json"), "wb") as f:
            f.write(bytes.fromhex(text.decode("ascii")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--seed")
    parser.add_argument("--count", type=int)
    parser.add_argument("--canonical", action="store_true",
                        help="write the canonical bodies read from stdin instead")
    args = parser.parse_args()
    if args.canonical:
        write_canonical(args.dir)
        return
    sys.setrecursionlimit(20000)
    real = fetch_real(args.port)
    os.makedirs(args.dir, exist_ok=True)
    keys = {label: key for label, _, key in real}
    items = {label for label, _, _ in real[len(SMALL_PAGES):BASES]}
    with open(os.path.join(args.dir, "index.tsv"), "w", encoding="utf-8") as index, \
            open(os.path.join(args.dir, "keys.tsv"), "w", encoding="utf-8") as key_file, \
            open(os.path.join(args.dir, "bodies.tsv"), "w", encoding="ascii") as hex_file:
        for i in range(args.count):
            data, kind, base, what = make_body(args.seed, i, real)
            with open(os.path.join(args.dir, f"{i}.json"), "wb") as f:
                f.write(data)
            hex_file.write(f"{i}\t\\\\x{data.hex()}\n")
            index.write(f"{i}\t{kind}\t{len(data)}\t{base}\t{what}\n")
            key_file.write(f"{i}\t{keys[base]}\t{base in items}\n")


if __name__ == "__main__":
    main()
