"""Deterministic, realistic data for the Makini API simulator.

`build_connections()` returns every simulated connection with the records its
endpoints serve, exactly as the API serves them (Python dicts; a JSON number
is a `Decimal` whose str() is the number's exact text).  The same seed gives
the same data on every run.

The module also holds what the simulator and the tests share about the
model: the field lists of fdw/API.md §4, date-time parsing, JSON rendering
of `Decimal` numbers, and the ground truth of the foreign tables of
README.md (`table_csv`).
"""

import functools
import json
import random
import re
from datetime import datetime, timedelta
from decimal import Decimal

# ---------------------------------------------------------------------------
# The model (fdw/API.md §2-§4): the simulator's copy of fdw/model.c, which
# sql/model.sql compares with the wrapper's (makini_model(), model_json())
# ---------------------------------------------------------------------------

def _fields(spec):
    """Parse "field kind, ..." specs into ((field, kind), ...)."""
    return tuple(tuple(item.split()) for item in spec.split(","))


# entity -> (list endpoint, whether the contract lists GET <endpoint>/{key},
# its fields with their kinds, in the order of the imported columns)
ENTITIES = {
    "PurchaseOrder": ("purchase-orders", True, _fields(
        "key text, orderNo text, title text, description text, siteKey text,"
        "organizationKey text, vendorKey text, userRequestedKey text,"
        "userApprovedKey text, statusKey text, currencyKey text,"
        "locationKey text, orderDate datetime, dueAt datetime,"
        "approvedAt datetime, completedAt datetime, shipmentDate datetime,"
        "shippingMethod text, terms text, notes text, totalNetValue decimal,"
        "totalTaxValue decimal, totalGrossValue decimal,"
        "shipmentAddress object, billingAddress object,"
        "deliveryAddress object, createdAt datetime, updatedAt datetime,"
        "deletedAt datetime, lineItems collection")),
    "POLineItem": ("purchase-orders.line-items", False, _fields(
        "key text, lineNo integer, code text, type text, name text,"
        "description text, lineRef text, quantity decimal,"
        "receivedQuantity decimal, uomKey text, currencyKey text,"
        "price decimal, discount decimal, lineTaxValue decimal,"
        "lineTotalValue decimal, notes text, deliveryAt datetime,"
        "dueAt datetime, locationKey text, accountKey text, vendorKey text,"
        "assetKey text, materialKey text, productKey text, statusKey text,"
        "storeroomKey text, createdAt datetime, updatedAt datetime,"
        "deletedAt datetime")),
    "Vendor": ("vendors", True, _fields(
        "key text, name text, code text, companyKey text,"
        "organizationKey text, createdAt datetime, updatedAt datetime,"
        "deletedAt datetime")),
    "Status": ("statuses/purchase-orders", False, _fields(
        "key text, organizationKey text, parentKey text, name text,"
        "code text, subCode text, scope text, isActive boolean")),
    "Currency": ("currencies", False, _fields(
        "key text, name text, code text, isBase boolean, isActive boolean")),
    "UnitOfMeasure": ("uom", False, _fields(
        "key text, name text, code text, rateBaseKey text, rate decimal,"
        "isActive boolean")),
}

# Beyond the model, the simulator also serves the contract's "..." (the
# public schema's createdAt/updatedAt/deletedAt) and item paths the contract
# does not list (the wrapper never asks for either).
_UNMODELLED_FIELDS = {
    "Status": ("createdAt", "updatedAt", "deletedAt"),
    "Currency": ("createdAt", "updatedAt", "deletedAt"),
}
_UNMODELLED_ITEMS = {"purchase-orders.line-items", "currencies", "uom"}

MODEL_FIELDS = {
    entity: tuple(f for f, _ in fields) + _UNMODELLED_FIELDS.get(entity, ())
    for entity, (_, _, fields) in ENTITIES.items()}

DATETIME_FIELDS = frozenset(
    f for _, _, fields in ENTITIES.values() for f, kind in fields if kind == "datetime")

ADDRESS_FIELDS = tuple(f for f, kind in ENTITIES["PurchaseOrder"][2] if kind == "object")

# list endpoint (path under /api/erp/) -> entity, and whether /{key} exists
RESOURCES = {
    resource: (entity, item or resource in _UNMODELLED_ITEMS)
    for entity, (resource, item, _) in ENTITIES.items()}


def scalar_fields(entity):
    """Fields of an entity that can be filtered and sorted on."""
    unscalar = {f for f, kind in ENTITIES[entity][2] if kind in ("object", "collection")}
    return frozenset(f for f in MODEL_FIELDS[entity] if f not in unscalar)


# ---------------------------------------------------------------------------
# Values: date-times and JSON text
# ---------------------------------------------------------------------------

_INSTANT_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?)?")


def parse_instant(text):
    """Parse an ISO 8601 date or date-time into (UTC datetime, nanoseconds).

    Accepts "Z", "+hh:mm"/"+hhmm"/"+hh" offsets, up to 9 fractional digits,
    and a date alone (00:00 UTC of that day). A date-time without an offset
    is taken as UTC. Returns None for anything else.
    """
    if not isinstance(text, str):
        return None
    m = _INSTANT_RE.fullmatch(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0),
                      int(s or 0))
    except ValueError:
        return None
    if tz and tz not in "Zz":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        dt -= sign * offset
    nanos = int((frac or "").ljust(9, "0")) if frac else 0
    return dt, nanos


@functools.lru_cache(maxsize=1 << 16)
def instant_key(text):
    """A string that sorts like the instant `text` denotes, or None."""
    parsed = parse_instant(text)
    if parsed is None:
        return None
    dt, nanos = parsed
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{nanos:09d}"


def instant_text(text):
    """The date-time text with its zone made explicit, or None if it is not
    ISO 8601: COPY into timestamptz then reads it as the API means it (no
    zone and a date alone are UTC) and rounds a fraction past microseconds
    exactly as ::timestamptz does -- the ground truth carries the text, not
    our idea of PostgreSQL's rounding.
    """
    m = _INSTANT_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None or parse_instant(text) is None:
        return None
    if m.group(4) is None:
        return text + "T00:00:00Z"
    return text if m.group(8) else text + "Z"


_NUMBER_MARK = re.compile(r'"\\u0000N([^"\\]*)\\u0000"')


def _mark_number(obj):
    if isinstance(obj, Decimal):
        return "\x00N" + str(obj) + "\x00"
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


class JsonStyle:
    """How one connection renders JSON: UTF-8 or \\u escapes, compact or not.

    `Decimal` values are written as JSON numbers with their exact text.
    """

    def __init__(self, ensure_ascii=False, spaced=False):
        self.item_separator = b", " if spaced else b","
        self._encoder = json.JSONEncoder(
            ensure_ascii=ensure_ascii, check_circular=False,
            separators=(", ", ": ") if spaced else (",", ":"),
            default=_mark_number)

    def dumps(self, obj):
        """Render `obj` as JSON text."""
        text = self._encoder.encode(obj)
        if "\\u0000N" in text:
            text = _NUMBER_MARK.sub(r"\1", text)
        return text

    def dumpb(self, obj):
        """Render `obj` as UTF-8 JSON bytes."""
        return self.dumps(obj).encode("utf-8")


JSON_TEXT = JsonStyle()


def json_text(obj):
    """Compact UTF-8 JSON text of a value (Decimal numbers exact)."""
    return JSON_TEXT.dumps(obj)


# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------

# Connection specs: seed, orders, line items per order (min, max), amounts as
# "string" or "number", booleans "json" / "string" / "mixed", base currency,
# vendors, tax rates, sync_status; optionally fields a system never sends
# (absent), latency_ms, JSON style, 7-digit fractional seconds.
_PLANTS = [
    dict(name="plant_a", provider="SAP S/4HANA",
         company="Nordwerk Maschinenbau GmbH (Werk A)", seed=101, orders=600,
         lines=(1, 9), numbers="string", booleans="json", base="EUR",
         vendors=48, tax=("19", "7"), sync="synced"),
    dict(name="plant_b", provider="NetSuite",
         company="Great Lakes Fabrication Inc.", seed=202, orders=250,
         lines=(1, 7), numbers="number", booleans="string", base="USD",
         vendors=30, tax=("0", "8.25"), sync="synced",
         absent={"userApprovedKey", "deletedAt", "assetKey", "storeroomKey"}),
    dict(name="plant_c", provider="Microsoft Dynamics 365",
         company="Thames Valley Components Ltd", seed=303, orders=80,
         lines=(1, 6), numbers="string", booleans="mixed", base="GBP",
         vendors=22, tax=("20", "5"), sync="inprogress",
         json=dict(ensure_ascii=True, spaced=True), seven_digit_fractions=True),
    dict(name="slow", provider="Infor CloudSuite Industrial",
         company="Slowpoke Mining Pty Ltd", seed=404, orders=60, lines=(1, 5),
         numbers="string", booleans="json", base="CHF", vendors=20,
         tax=("8.1",), sync="synced", latency_ms=200),
]

_EMPTY = [
    dict(name="offline", provider="IBM Maximo", company="Offline Foundry S.A.",
         seed=505, offline=True, sync="error"),
    dict(name="expired", provider="Fiix CMMS", company="Expired Plastics B.V.",
         seed=606, auth_error="TOKEN_EXPIRED", sync="fail"),
]

_BENCH = dict(name="bench", provider="SAP S/4HANA",
              company="Benchmark Heavy Industries AG", seed=909, lines=(1, 10),
              numbers="string", booleans="json", base="EUR", vendors=60,
              tax=("19",), sync="synced", template_lines=True)


def build_connections(bench_orders=0):
    """All simulated connections, keyed by name (see module docstring).

    Each is a dict: token, provider, company_name, data (resource -> list of
    records), integration (the /api/integrations/current record),
    latency_ms, offline, auth_error, number_style, boolean_style, json_style.
    """
    specs = list(_PLANTS) + list(_EMPTY)
    if bench_orders > 0:
        specs.append(dict(_BENCH, orders=bench_orders))
    return {spec["name"]: _Plant(spec).connection() for spec in specs}


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------

_SPECIAL_VENDORS = [
    "Müller GmbH",
    "Société Générale d'Équipement",
    "株式会社東京精機",
    "Zürich Präzision AG",
    "O'Brien & Sons \"Quoted\"",
    "Back\\slash Tooling Ltd",
    "Nord\nSüd Handels KG",
    "Rocket 🚀 Supplies Inc.",
]

_VENDORS = [
    "Acme Industrial Supply", "Bosch Rexroth AG", "SKF Sverige AB",
    "Würth Industrie Service GmbH & Co. KG", "W.W. Grainger, Inc.",
    "Fastenal Company", "ŠKODA Parts s.r.o.", "Łódź Metal Sp. z o.o.",
    "Ørsted Components A/S", "İstanbul Makina A.Ş.",
    "Ελληνική Βιομηχανία Α.Ε.", "Промышленные Системы ООО",
    "上海精密机械有限公司", "대한정밀 주식회사", "Tata Steel Ltd",
    "Festo SE & Co. KG", "Schaeffler Technologies", "Parker Hannifin Corp",
    "Siemens AG", "ABB Ltd", "Emerson Electric Co.",
    "Honeywell International", "3M Deutschland GmbH", "Hilti AG",
    "Alfred Kärcher SE & Co. KG", "Sandvik Coromant", "Atlas Copco AB",
    "Lincoln Electric", "Mitsubishi Electric Europe B.V.", "Yaskawa Europe",
    "Omron Electronics", "Phoenix Contact", "Rittal GmbH & Co. KG",
    "igus GmbH", "MISUMI Europa", "RS Components", "Conrad Electronic SE",
    "Mouser Electronics", "Brammer Buck & Hickman",
    "Applied Industrial Technologies", "MSC Industrial Direct",
    "Motion Industries", "Hoffmann Group", "Café Industrial Ltda.",
    "Niño Herramientas S.A.", "Ålesund Verktøy AS", "Þór Vélar ehf.",
    "Schäfer & Söhne OHG", "Établissements Dupont & Fils",
    "Kraków Łożyska S.A.", "Nürnberger Dichtungstechnik", "Østfold Hydraulikk",
    "Gdańsk Stal", "Ūdens Sūkņi SIA", "Tōhoku Seiki K.K.",
]

_PRODUCTS = [
    # name, type, uom, lowest and highest unit price
    ("Deep groove ball bearing 6204-2RS", "Material", "EA", 3, 25),
    ("Hydraulic oil HLP 46, 208 L drum", "Material", "L", 2, 6),
    ("Schneidöl emulgierbar, 20 L", "Material", "L", 3, 9),
    ("V-belt SPA 1250", "Material", "EA", 8, 30),
    ("Stainless steel sheet 1.4301, 2 mm", "Material", "KG", 3, 8),
    ("Copper cable NYM-J 3×1.5", "Material", "M", 1, 3),
    ("Safety gloves EN 388, size 10", "Material", "BOX", 20, 60),
    ("Preventive maintenance – compressor C-12", "Service", "H", 60, 140),
    ("Calibration of torque wrenches", "Service", "EA", 40, 120),
    ("Forklift rental (weekly)", "Expense", "EA", 200, 600),
    ("ボールねじ BSS1520", "Material", "EA", 150, 900),
    ("Filtre à air 610×610×292", "Material", "EA", 25, 90),
    ("Gear pump PGP 511", "Asset", "EA", 800, 4200),
    ("Welding wire ER70S-6 Ø1.0 mm", "Material", "KG", 2, 7),
    ("Pneumatic cylinder Ø63×200", "Material", "EA", 90, 350),
    ("Frequenzumrichter 7,5 kW", "Asset", "EA", 700, 2400),
    ("Lubricating grease NLGI 2, 18 kg", "Material", "KG", 4, 12),
    ("Cleaning service — paint shop", "Service", "H", 30, 70),
    ("O-ring kit NBR 70 (386 pcs)", "Material", "BOX", 20, 80),
    ("Spare parts freight", "Expense", "EA", 15, 300),
    ("Gasket \"DN50\" PN16", "Material", "EA", 1, 6),
    ("Conveyor belt 800 mm\tEP400/3", "Material", "M", 40, 160),
]

_TITLES = [
    "Spare parts for CNC line {n}", "Quarterly lubricants", "Ersatzteile für Presse P-{n:02d}",
    "Réparation pompe centrifuge n° {n}", "保守部品の発注 {n}", "Safety equipment restock",
    "Compressor overhaul C-{n}", "MRO consumables", "Tooling for line {n}",
    "Electrical spares — substation {n}", "Annual calibration services",
]

_SENTENCES = [
    "Urgent: line stoppage risk.", "Deliver to gate 3, dock B.",
    "Please confirm the delivery date.", "Bitte Lieferschein beilegen.",
    "Livraison partielle acceptée.", "Quote ref. Q-{n} applies.",
    "Frame contract 4600001234, call-off {n}.", "納期厳守でお願いします。",
    "Price as agreed by phone (J. O'Neil).", "Certificates 3.1 required.",
    "Path on share: C:\\ERP\\PO\\{n}.pdf", "Two lines:\nsecond line here.",
    "Tab\tseparated\tremark.", "\"Quoted\" remark with 'single' quotes.",
]

_TERMS = ["Net 30", "Net 60", "2/10 Net 30", "Due on receipt", "30 Tage netto",
          "EOM", "60 jours fin de mois", "Net 45"]
_SHIPPING = ["DHL Express", "UPS Ground", "FedEx Freight", "Sea freight",
             "Pickup", "Spedition", "Rail", "Courier"]

_CITIES = [
    ("München", "BY", "80331", "DE", "+49 89 1234567"),
    ("Zürich", "ZH", "8001", "CH", "+41 44 123 45 67"),
    ("Lyon", "ARA", "69002", "FR", "+33 4 72 00 00 00"),
    ("東京都港区", "東京都", "105-0011", "JP", "+81 3-1234-5678"),
    ("Detroit", "MI", "48201", "US", "+1 313 555 0100"),
    ("Reading", "Berkshire", "RG1 1AA", "GB", "+44 118 496 0000"),
    ("Kraków", "MA", "31-001", "PL", "+48 12 345 67 89"),
]
_STREETS = ["Hauptstraße 5", "Industriestr. 12\nHalle 3", "1 Rue de la Paix",
            "4-1-1 Shibakoen", "1200 Woodward Ave", "Unit 7, Thames Park",
            "ul. Długa 44/2", "Rämistrasse 101"]

_STATUSES = [
    # name, code, subCode, parent name, active
    ("Draft", "DRAFT", "10", None, True),
    ("Approved", "APPR", "20", None, True),
    ("Sent", "SENT", "30", None, True),
    ("Partially Received", "PREC", "40", "Sent", True),
    ("Closed", "CLOSED", "90", None, True),
    ("Cancelled", "CANC", "99", None, True),
    ("On Hold (legacy)", "HOLD", "50", "Approved", False),
]
_STATUS_WEIGHTS = {"Draft": 10, "Approved": 15, "Sent": 20,
                   "Partially Received": 15, "Closed": 30, "Cancelled": 10}

_CURRENCIES = [("EUR", "Euro", True), ("USD", "US Dollar", True),
               ("JPY", "Japanese Yen", True), ("GBP", "Pound Sterling", True),
               ("CHF", "Swiss Franc", True), ("SEK", "Swedish Krona", False)]

_UOMS = [
    # code, name, base code, rate, active
    ("EA", "Each", None, "1", True),
    ("KG", "Kilogram", None, "1", True),
    ("M", "Metre", None, "1", True),
    ("L", "Litre", None, "1", True),
    ("BOX", "Box of 12", "EA", "12", True),
    ("G", "Gram", "KG", "0.001", True),
    ("H", "Hour", None, "1", True),
    ("CM", "Centimetre", "M", "0.01", False),
]
_QTY_DECIMALS = {"EA": 0, "BOX": 0, "KG": 3, "M": 2, "L": 1, "H": 2}

# formats of date-times: (style, weight)
_DT_STYLES = [("Z", 72), ("frac6", 5), ("frac3", 4), ("frac1", 4),
              ("+02:00", 5), ("-05:00", 5), ("+05:30", 2), ("date", 3)]

_FIRST_DAY = datetime(2024, 1, 1)
_ORDER_SPAN = (datetime(2026, 11, 30) - _FIRST_DAY).days

# order fields the edge-case orders keep (identity and references)
_FIXED_ORDER = {"key", "orderNo", "vendorKey", "statusKey", "currencyKey",
                "lineItems"}


class _Keys:
    """Unique 14-digit keys "PP000nnnnnnnnn": a bijection of a counter."""

    def __init__(self, prefix, salt):
        self.prefix, self.salt, self.n = prefix + "000", salt, 0

    def __call__(self):
        self.n += 1
        return f"{self.prefix}{(self.n * 387420489 + self.salt) % 10**9:09d}"


def _plain(d):
    """Decimal as plain text without trailing zeros (17, 1250.5)."""
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "0") else text


class _Plant:
    """Generates one connection's data from its spec, deterministically."""

    P_NULL, P_EMPTY, P_MISSING = 0.03, 0.02, 0.02

    def __init__(self, spec):
        self.spec = spec
        self.rng = random.Random(spec["seed"])
        self.absent = spec.get("absent", set())
        styles = list(_DT_STYLES)
        if spec.get("seven_digit_fractions"):
            styles.append(("frac7", 5))
        self.dt_styles = [s for s, _ in styles]
        self.dt_weights = [w for _, w in styles]
        salt = self.rng.randrange(10**9)
        self.keys = {p: _Keys(p, salt + i * 7919) for i, p in enumerate(
            ("06", "04", "09", "07", "02", "03", "05", "08", "01"))}

    # -- small value helpers ------------------------------------------------

    def amount(self, d):
        """An amount in the connection's number style."""
        if self.spec.get("numbers") == "number":
            return Decimal(_plain(d))
        return str(d)

    def boolean(self, b):
        """A boolean in the connection's boolean style."""
        style = self.spec.get("booleans", "json")
        if style == "mixed":
            style = self.rng.choice(("json", "string"))
        return b if style == "json" else ("true" if b else "false")

    def when(self, dt, style=None):
        """A date-time in one of the formats real systems send."""
        style = style or self.rng.choices(self.dt_styles, self.dt_weights)[0]
        base = f"{dt:%Y-%m-%dT%H:%M:%S}"
        if style == "Z":
            return base + "Z"
        if style == "date":
            return f"{dt:%Y-%m-%d}"
        if style.startswith("frac"):
            digits = int(style[4:])
            frac = f"{self.rng.randrange(1, 10**digits):0{digits}d}"
            return f"{base}.{frac}Z"
        sign = 1 if style[0] == "+" else -1
        offset = timedelta(hours=int(style[1:3]), minutes=int(style[4:6]))
        return f"{dt + sign * offset:%Y-%m-%dT%H:%M:%S}{style}"

    def put(self, rec, field, value, fixed=()):
        """Set a field, sometimes null, "" or missing instead (seeded)."""
        if field in self.absent:
            return
        if field not in fixed:
            r = self.rng.random()
            if r < self.P_NULL:
                value = None
            elif r < self.P_NULL + self.P_EMPTY:
                value = ""
            elif r < self.P_NULL + self.P_EMPTY + self.P_MISSING:
                return
        rec[field] = value

    def money(self, lo, hi, decimals):
        """A random Decimal in [lo, hi] with the given decimals."""
        scale = 10 ** decimals
        return Decimal(self.rng.randint(int(lo * scale), int(hi * scale))
                       ).scaleb(-decimals)

    def text(self, n):
        """A few sentences of free text."""
        return " ".join(self.rng.choice(_SENTENCES).format(n=n)
                        for _ in range(self.rng.randint(1, 3)))

    # -- master data --------------------------------------------------------

    def connection(self):
        """The connection dict with all its data."""
        spec, rng = self.spec, self.rng
        data = {r: [] for r in RESOURCES}
        if spec.get("orders"):
            self.org = self.keys["02"]()
            self.pools = {
                name: [self.keys[p]() for _ in range(n)] for name, p, n in (
                    ("site", "04", 3), ("user", "06", 15), ("location", "08", 10),
                    ("account", "01", 12), ("asset", "05", 25),
                    ("material", "01", 60), ("product", "01", 60),
                    ("storeroom", "06", 4))}
            data["currencies"] = self.currencies()
            data["uom"] = self.uoms()
            data["statuses/purchase-orders"] = self.statuses()
            data["vendors"] = self.vendors()
            data["purchase-orders"] = self.orders()
            data["purchase-orders.line-items"] = [
                line for order in data["purchase-orders"]
                for line in order.get("lineItems") or ()]
        stamp = self.when(datetime(2026, 11, 20, 6, 30, rng.randrange(60)), "Z")
        if spec.get("seven_digit_fractions"):
            stamp = stamp[:-1] + ".0000025Z"     # a rounding tie
        return {
            "name": spec["name"],
            "token": "tok_" + spec["name"],
            "provider": spec["provider"],
            "company_name": spec["company"],
            "data": data,
            "integration": {
                "id": f"{rng.getrandbits(128):032x}",
                "company_name": spec["company"],
                "email": f"erp-admin@{spec['name'].replace('_', '-')}.example.com",
                "provider": spec["provider"],
                "updated_at": "2026-10-02T11:04:52Z",
                "sync_status": spec["sync"],
                "sync_updated_at": stamp,
            },
            "latency_ms": spec.get("latency_ms", 0),
            "offline": spec.get("offline", False),
            "auth_error": spec.get("auth_error"),
            "number_style": spec.get("numbers", "string"),
            "boolean_style": spec.get("booleans", "json"),
            "json_style": spec.get("json", {}),
        }

    def stamps(self, rec, fixed=()):
        """createdAt / updatedAt / deletedAt of a master-data record."""
        created = _FIRST_DAY - timedelta(days=self.rng.randint(30, 2000),
                                         seconds=self.rng.randrange(86400))
        self.put(rec, "createdAt", self.when(created), fixed)
        self.put(rec, "updatedAt", self.when(
            created + timedelta(days=self.rng.randint(0, 900))), fixed)
        rec["deletedAt"] = None

    def currencies(self):
        out = []
        for code, name, active in _CURRENCIES:
            rec = {"key": self.keys["02"](), "name": name, "code": code,
                   "isBase": self.boolean(code == self.spec["base"]),
                   "isActive": self.boolean(active)}
            self.stamps(rec, fixed={"createdAt", "updatedAt"})
            out.append(rec)
        self.currency = {r["code"]: r["key"] for r in out}
        return out

    def uoms(self):
        out, keys = [], {}
        for code, name, base, rate, active in _UOMS:
            keys[code] = self.keys["03"]()
            out.append({"key": keys[code], "name": name, "code": code,
                        "rateBaseKey": keys.get(base) if base else None,
                        "rate": self.amount(Decimal(rate)),
                        "isActive": self.boolean(active)})
        self.uom = keys
        return out

    def statuses(self):
        out, keys = [], {}
        for name, code, sub, parent, active in _STATUSES:
            keys[name] = self.keys["07"]()
            rec = {"key": keys[name], "organizationKey": self.org,
                   "parentKey": keys.get(parent) if parent else None,
                   "name": name, "code": code, "subCode": sub,
                   "scope": "purchase-orders", "isActive": self.boolean(active)}
            self.stamps(rec, fixed={"createdAt", "updatedAt"})
            out.append(rec)
        self.status = keys
        return out

    def vendors(self):
        rng, out = self.rng, []
        names = _SPECIAL_VENDORS + rng.sample(
            _VENDORS, self.spec["vendors"] - len(_SPECIAL_VENDORS))
        rng.shuffle(names)
        for i, name in enumerate(names):
            rec = {"key": self.keys["09"](), "name": name}
            self.put(rec, "code", f"V{10000 + i * 37}")
            self.put(rec, "companyKey", self.org)
            self.put(rec, "organizationKey", self.org)
            self.stamps(rec)
            if i % 9 == 8:
                rec["deletedAt"] = self.when(datetime(2025, 6, 1) + timedelta(
                    days=rng.randint(0, 400)))
            out.append(rec)
        self.vendor_keys = [r["key"] for r in out]
        return out

    # -- purchase orders ----------------------------------------------------

    def address(self):
        """An Address object, or null."""
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            return None
        city, state, post, country, phone = rng.choice(_CITIES)
        addr = {"addressee": rng.choice(_VENDORS), "addressLines": rng.choice(_STREETS),
                "city": city, "state": state, "postCode": post, "country": country,
                "phone": phone, "email": "receiving@example.com",
                "notes": rng.choice([None, "", "Ring bell twice", "Tor 4 — Anlieferung 6–14 Uhr"]),
                "isActive": self.boolean(True)}
        if r > 0.9:
            addr["geo"] = {"lat": Decimal("48.137154"), "lon": Decimal("11.576124"),
                           "zzDockDoor": {"id": "D-4", "ramp": True}}
        return addr

    def orders(self):
        spec, rng = self.spec, self.rng
        per_year, out = {}, []
        status_names = list(_STATUS_WEIGHTS)
        weights = list(_STATUS_WEIGHTS.values())
        template = self.line_templates() if spec.get("template_lines") else None
        for i in range(spec["orders"]):
            ordered = _FIRST_DAY + timedelta(days=rng.randrange(_ORDER_SPAN),
                                             seconds=rng.randrange(86400))
            per_year[ordered.year] = per_year.get(ordered.year, 0) + 1
            status = rng.choices(status_names, weights)[0]
            currency = spec["base"] if rng.random() < 0.8 else rng.choice(
                ("EUR", "USD", "JPY", "GBP", "CHF"))
            order = self.order(i, ordered, per_year[ordered.year], status)
            order["currencyKey"] = self.currency[currency]
            n_lines = rng.randint(*spec["lines"])
            if template:
                lines = self.clone_lines(order, template, n_lines)
            else:
                lines = [self.line(order, ordered, status, currency, n)
                         for n in range(n_lines)]
            self.totals(order, lines)
            order["lineItems"] = [rec for rec, _ in lines]
            out.append(order)
        if not template:
            self.specials(out)
        return out

    def order(self, i, ordered, seq, status):
        rng, put = self.rng, self.put
        rec = {"key": self.keys["06"](),
               "orderNo": f"PO-{ordered.year}-{seq:06d}"}
        pools = self.pools
        put(rec, "title", rng.choice(_TITLES).format(n=rng.randint(1, 12)))
        put(rec, "description", self.text(i))
        put(rec, "siteKey", rng.choice(pools["site"]))
        put(rec, "organizationKey", self.org)
        rec["vendorKey"] = rng.choice(self.vendor_keys)
        put(rec, "userRequestedKey", rng.choice(pools["user"]))
        approved = status not in ("Draft",)
        put(rec, "userApprovedKey", rng.choice(pools["user"]) if approved else None)
        rec["statusKey"] = self.status[status]
        rec["currencyKey"] = None   # set by the caller
        put(rec, "locationKey", rng.choice(pools["location"]))
        put(rec, "orderDate", self.when(ordered))
        due = ordered + timedelta(days=rng.randint(14, 120))
        put(rec, "dueAt", self.when(due))
        put(rec, "approvedAt", self.when(ordered + timedelta(
            hours=rng.randint(1, 120))) if approved else None)
        put(rec, "completedAt", self.when(due + timedelta(
            days=rng.randint(-10, 20))) if status == "Closed" else None)
        shipped = status in ("Sent", "Partially Received", "Closed")
        put(rec, "shipmentDate", self.when(ordered + timedelta(
            days=rng.randint(3, 30))) if shipped else None)
        put(rec, "shippingMethod", rng.choice(_SHIPPING))
        terms = rng.choice(_TERMS)
        if self.spec.get("numbers") == "number" and rng.random() < 0.15:
            terms = Decimal(rng.choice(("30", "45", "60")))   # a terms id
        put(rec, "terms", terms)
        put(rec, "notes", rng.choice([None, "", self.text(i + 1)]))
        for field in ("totalNetValue", "totalTaxValue", "totalGrossValue"):
            rec[field] = None    # set by totals()
        for field in ADDRESS_FIELDS:
            put(rec, field, self.address())
        put(rec, "createdAt", self.when(ordered))
        put(rec, "updatedAt", self.when(ordered + timedelta(
            days=rng.randint(0, 200), seconds=rng.randrange(86400))))
        deleted = status == "Cancelled" and rng.random() < 0.3
        put(rec, "deletedAt", self.when(ordered + timedelta(days=40)) if deleted else None)
        self.custom_fields(rec)
        return rec

    def custom_fields(self, rec):
        """Extra top-level fields configured on the connection."""
        rng = self.rng
        if rng.random() < 0.3:
            rec["zzCostCenter"] = f"CC-{rng.randint(41, 49)}00"
        if rng.random() < 0.1:
            rec["zzApproved"] = rng.random() < 0.5
        if rng.random() < 0.05:
            rec["zzProject"] = {"id": rng.randint(1, 99),
                                "tags": rng.sample(["capex", "opex", "urgent", "audit"], 2)}

    def line(self, order, ordered, status, currency, n):
        """One line item of an order, and its (net, tax) for the totals."""
        rng, put = self.rng, self.put
        name, kind, uom, lo, hi = rng.choice(_PRODUCTS)
        decimals = 0 if currency == "JPY" else rng.choice((0, 1, 2, 2, 2, 2, 2, 3, 4))
        factor = 150 if currency == "JPY" else 1
        price = self.money(lo * factor, hi * factor, decimals)
        qty = self.money(1, 200 if _QTY_DECIMALS[uom] == 0 else 50, _QTY_DECIMALS[uom])
        gross = qty * price
        r = rng.random()
        cent = Decimal(1) if currency == "JPY" else Decimal("0.01")
        if r < 0.2:
            discount = (gross * Decimal(rng.randint(3, 15)) / 100).quantize(cent)
        elif r < 0.27:
            discount = -(gross * Decimal(rng.randint(1, 5)) / 100).quantize(cent) - cent
        else:
            discount = Decimal(0).quantize(cent) if rng.random() < 0.5 else Decimal(0)
        net = (gross - discount).quantize(cent)
        tax = (net * Decimal(rng.choice(self.spec["tax"])) / 100).quantize(cent)
        if status == "Closed":
            received = qty
        elif status == "Partially Received":
            received = (qty * Decimal(rng.randint(0, 9)) / 10).quantize(qty)
        else:
            received = Decimal(0).quantize(qty)

        rec = {"key": self.keys["04"](), "lineNo": str((n + 1) * 10)}
        code = f"{rng.randint(10**7, 10**8 - 1)}"
        if self.spec.get("numbers") == "number" and rng.random() < 0.1:
            code = Decimal(code)     # a JSON number in a text field
        put(rec, "code", code)
        put(rec, "type", kind)
        put(rec, "name", name)
        put(rec, "description", self.text(n))
        put(rec, "lineRef", rng.choice([None, f"REQ-{rng.randint(1000, 9999)}",
                                        f"{order['orderNo']}/{(n + 1) * 10}"]))
        put(rec, "quantity", self.amount(qty))
        put(rec, "receivedQuantity", self.amount(received))
        rec["uomKey"] = self.uom[uom]
        rec["currencyKey"] = self.currency[currency]
        put(rec, "price", self.amount(price))
        put(rec, "discount", self.amount(discount))
        put(rec, "lineTaxValue", self.amount(tax))
        put(rec, "lineTotalValue", self.amount(net))
        put(rec, "notes", rng.choice([None, "", "Teillieferung möglich", "See drawing rev. C"]))
        put(rec, "deliveryAt", self.when(ordered + timedelta(days=rng.randint(5, 60))))
        put(rec, "dueAt", order.get("dueAt"))
        pools = self.pools
        put(rec, "locationKey", order.get("locationKey"))
        put(rec, "accountKey", rng.choice(pools["account"]))
        put(rec, "vendorKey", order["vendorKey"])
        put(rec, "assetKey", rng.choice(pools["asset"]) if kind == "Asset" else None)
        put(rec, "materialKey", rng.choice(pools["material"]) if kind == "Material" else None)
        put(rec, "productKey", rng.choice(pools["product"]))
        put(rec, "statusKey", order["statusKey"])
        put(rec, "storeroomKey", rng.choice(pools["storeroom"]))
        put(rec, "createdAt", order.get("createdAt"))
        put(rec, "updatedAt", self.when(ordered + timedelta(days=rng.randint(0, 90))))
        put(rec, "deletedAt", None)
        if rng.random() < 0.2:
            rec["zzWbsElement"] = f"P-{rng.randint(1000, 1999)}-01.0{rng.randint(1, 9)}"
        if rng.random() < 0.04:
            rec["zzInspection"] = {"required": True, "lot": f"L-2025-{rng.randint(1, 999):04d}",
                                   "checks": ["visual", "dimensional"]}
        return rec, (net, tax)

    def line_templates(self):
        """A pool of rich line items that large data sets are cloned from."""
        ordered = datetime(2025, 5, 5, 10, 0, 0)
        order = {"orderNo": "PO-2025-000000", "vendorKey": self.vendor_keys[0],
                 "statusKey": self.status["Sent"], "dueAt": "2025-07-01T00:00:00Z",
                 "locationKey": self.pools["location"][0],
                 "createdAt": "2025-05-05T10:00:00Z"}
        return [self.line(order, ordered, "Sent", self.spec["base"], n % 10)
                for n in range(500)]

    def clone_lines(self, order, templates, count):
        """`count` lines copied from templates, with fresh keys (fast)."""
        rng, out = self.rng, []
        for n in range(count):
            rec, totals = templates[rng.randrange(len(templates))]
            rec = dict(rec, key=self.keys["04"](), lineNo=str((n + 1) * 10),
                       vendorKey=order["vendorKey"], statusKey=order["statusKey"])
            out.append((rec, totals))
        return out

    def totals(self, order, lines):
        """Order totals as the sums of its lines."""
        net = sum((t[0] for _, t in lines), Decimal("0.00"))
        tax = sum((t[1] for _, t in lines), Decimal("0.00"))
        for field, value in (("totalNetValue", net), ("totalTaxValue", tax),
                             ("totalGrossValue", net + tax)):
            self.put(order, field, self.amount(value))

    def specials(self, orders):
        """Edge cases every rich connection has, on fixed orders."""
        if len(orders) < 20:
            return
        o = orders
        o[3]["description"] = ("Technische Spezifikation (lang): " + " ".join(
            f"Pos.{n:05d} Maß ±0,01 mm — \"OK\";" for n in range(700)))[:20000]
        o[4].update(zzCostCenter="CC-4100", zzApproved=True, zzProject={
            "id": 7, "tags": ["a", "b"],
            "deep": {"a": {"b": {"c": [1, 2, {"d": None}]}}}})
        o[4]["lineItems"][0].update(zzCostCenter="CC-4100", zzApproved=False,
                                    zzProject={"id": 8, "tags": []})
        o[5]["title"] = "Valve \"DN50\" \\ spare\nline 2\tTabbed ünïcödé 🚀"
        o[5]["notes"] = "C:\\new\\table \\\\server\\share \"x\" 'y'\r\nend"
        o[6]["shipmentAddress"] = {
            "addressee": "Müller GmbH — Wareneingang", "addressLines": "Hauptstraße 5\nTor 2",
            "city": "München", "state": "BY", "postCode": "80331", "country": "DE",
            "phone": None, "email": "", "notes": "Anlieferung 6–14 Uhr",
            "isActive": True, "zzUnloading": {"forklift": True, "slots": [6, 10, 14]}}
        deep = {"leaf": "bottom"}
        for level in range(40):
            deep = {f"level{39 - level}": deep}
        o[6]["zzDeep"] = deep
        o[7].update({"zzKostenstelleÜ": "Ä-1", "zz.dotted.key": "dots",
                     "zzEmpty": "", "zzNull": None, "zzList": [1, "two", None, True],
                     "zzNumber": Decimal("12.50")})
        for index, value in ((8, None), (9, ""), (10, "missing")):
            for field in [f for f in MODEL_FIELDS["PurchaseOrder"] if f not in _FIXED_ORDER]:
                if value == "missing":
                    o[index].pop(field, None)
                else:
                    o[index][field] = value
        for index, style in ((11, "frac6"), (12, "frac1"), (13, "+02:00"),
                             (14, "-05:00"), (15, "date")):
            o[index]["orderDate"] = self.when(datetime(2025, 3, 1, 8, 17, 33), style)
            o[index]["createdAt"] = self.when(datetime(2025, 3, 1, 8, 17, 33), style)
        o[11]["orderDate"] = "2025-03-01T08:17:33.123456Z"
        o[12]["orderDate"] = "2025-03-01T08:17:33.5Z"
        line = o[16]["lineItems"][0]
        line.update(price=self.amount(Decimal("12.3456")), discount=self.amount(Decimal("-1.5")),
                    quantity=self.amount(Decimal("0")), lineTotalValue=self.amount(Decimal("0.00")),
                    deliveryAt="", dueAt=None, description="x" * 5000 + " ✓ end")
        line.pop("notes", None)
        o[17]["lineItems"][-1].update(price="", quantity=None, receivedQuantity="",
                                      lineTaxValue=None, lineNo="990")
        o[18].update(totalNetValue="", totalTaxValue=None, dueAt="", approvedAt=None,
                     billingAddress="", deliveryAddress=None)
        o[18].pop("shipmentAddress", None)
        # ties at the seventh digit, rounded as timestamptz_in rounds them
        # (same instants to the second as the forms above)
        for index, frac in ((11, "0000025"), (12, "0000035"), (13, "1234565"),
                            (14, "9999995")):
            o[index]["createdAt"] = f"2025-03-01T08:17:33.{frac}Z"


# ---------------------------------------------------------------------------
# Ground truth: the foreign tables of README.md
# ---------------------------------------------------------------------------

_COLUMN_TYPES = {"text": "text", "datetime": "timestamptz", "decimal": "numeric",
                 "integer": "integer", "boolean": "boolean", "object": "jsonb"}


def _table(entity, parent=None, expand=None, parent_columns=(), custom_fields=False):
    """(resource, entity of the row, expand, columns) of an imported table:
    the parent columns ("parent." fields), one column per field but
    collections (named in snake_case), then custom_fields jsonb ("*")."""
    kinds = dict(ENTITIES[parent][2]) if parent else {}
    columns = [(name, _COLUMN_TYPES[kinds[field]], "parent." + field)
               for name, field in parent_columns]
    columns += [(re.sub("([A-Z])", lambda m: "_" + m.group(1).lower(), field),
                 _COLUMN_TYPES[kind], field)
                for field, kind in ENTITIES[entity][2] if kind != "collection"]
    if custom_fields:
        columns.append(("custom_fields", "jsonb", "*"))
    return (ENTITIES[parent or entity][0], entity, expand, columns)


# table -> (resource, entity of the row, expand, columns), in import order
TABLES = {
    "purchase_orders": _table("PurchaseOrder", custom_fields=True),
    "purchase_order_lines": _table(
        "POLineItem", parent="PurchaseOrder", expand="lineItems",
        parent_columns=(("order_key", "key"), ("order_no", "orderNo")),
        custom_fields=True),
    "vendors": _table("Vendor"),
    "purchase_order_statuses": _table("Status"),
    "currencies": _table("Currency"),
    "units_of_measure": _table("UnitOfMeasure"),
}


def model_json():
    """The model in the shape of the wrapper's makini_model() (one line)."""
    entities = [{"entity": entity, "resource": resource, "key": "key",
                 "item_endpoint": item,
                 "fields": [{"name": f, "kind": kind} for f, kind in fields]}
                for entity, (resource, item, fields) in ENTITIES.items()]
    tables = [{"table": table, "entity": entity, "resource": resource,
               "expand": expand,
               "columns": [{"name": n, "type": t, "field": f} for n, t, f in columns]}
              for table, (resource, entity, expand, columns) in TABLES.items()]
    return json.dumps({"entities": entities, "tables": tables})


def _scalar_text(value):
    """A JSON value's text form: strings as is, others as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json_text(value)


def _cell(value, kind):
    """The text PostgreSQL should hold for one JSON value, or None (NULL)."""
    if kind == "text":
        return None if value is None else _scalar_text(value)
    if value is None or value == "":
        return None
    if kind == "timestamptz":
        return instant_text(value)
    if kind == "boolean":
        return {"true": "true", "false": "false"}[_scalar_text(value)]
    if kind in ("numeric", "integer"):
        return _scalar_text(value)
    if kind == "jsonb":
        return json_text(value)
    raise ValueError(f"unknown column type {kind}")


def _get(record, parent, field):
    if field.startswith("parent."):
        record, field = parent, field[len("parent."):]
    return record.get(field)


def table_rows(conn, table):
    """Rows (lists of text or None) of one foreign table, in served order."""
    resource, entity, expand, columns = TABLES[table]
    known = set(MODEL_FIELDS[entity]) | {"lineItems"}
    for parent in conn["data"][resource]:
        for record in (parent.get(expand) or ()) if expand else (parent,):
            row = []
            for _, kind, field in columns:
                if field == "*":
                    extra = {k: v for k, v in record.items() if k not in known}
                    row.append(json_text(extra) if extra else None)
                else:
                    row.append(_cell(_get(record, parent, field), kind))
            yield row


def _csv_field(value):
    if value is None:
        return ""
    return '"' + value.replace('"', '""') + '"'


def table_csv(conn, table):
    """The ground truth of a table as CSV for COPY ... (FORMAT csv, HEADER).

    NULL is an unquoted empty field; every other value is quoted, so "" is
    an empty string and backslashes or "\\." can never be misread.
    """
    columns = TABLES[table][3]
    lines = [",".join(_csv_field(name) for name, _, _ in columns)]
    lines.extend(",".join(_csv_field(v) for v in row)
                 for row in table_rows(conn, table))
    return "\n".join(lines) + "\n"
