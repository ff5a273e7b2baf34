"""The fast paths of the import check give exactly what the general code gives.

The cell parsers (imports/parsing.py) keep recent results and take the common case first; the
order importer takes plain text cells without calling the parser, reads rows through one
itemgetter, finds scattered orders on the raw cells, and asks PostgreSQL for existing orders
with one query per batch. Each is compared here with the code it replaced: the reference
parsers below are that code, verbatim, and the reference scattered pass reads rows the old way.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imports import parsing
from imports.importers import orders as order_import
from imports.importers.base import INVALID, NEW, SKIPPED, Record, check_cell, check_cells
from imports.importers.orders import OrderImporter
from imports.readers import RawRow, open_table
from uniware.core.money import MAX as MAX_MONEY

from .factories import ChannelFactory
from .importing import ORDER_HEADER, csv_bytes, order_row
from .test_import_hypothesis import messy_csv

# --- The parsers as they were (the general code the fast paths must agree with) -----------


def ref_unescape(value):
    if len(value) > 1 and value[0] == "'" and value[1] in parsing.FORMULA_STARTS:
        return value[1:]
    return value


def ref_text(value, *, max_length, required=False):
    value = ref_unescape(value)
    if not value:
        if required:
            raise parsing.CellError("required value is missing")
        return ""
    if "\ufffd" in value:
        raise parsing.CellError(
            "has characters that could not be read (save the file as CSV UTF-8 or XLSX)"
        )
    if parsing.CONTROL.search(value):
        raise parsing.CellError("contains control characters")
    if len(value) > max_length:
        raise parsing.CellError(
            f"is {len(value):,} characters long; at most {max_length} are allowed"
        )
    return value


def ref_code(value, *, max_length, what):
    value = ref_text(value, max_length=max_length, required=True)
    if not parsing.CODE_RE.match(value):
        raise parsing.CellError(f"is not a valid {what}")
    return value


def ref_quantity(value):
    if not value:
        raise parsing.CellError("required value is missing")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise parsing.CellError("is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise parsing.CellError("is not a whole number")
    if number < 1:
        raise parsing.CellError("must be at least 1")
    if number > parsing.MAX_LINE_QUANTITY:
        raise parsing.CellError(f"is more than {parsing.MAX_LINE_QUANTITY} units on one line")
    return int(number)


def ref_money(value, *, required=True):
    if not value:
        if required:
            raise parsing.CellError("required value is missing")
        return Decimal("0")
    cleaned = value.replace("₹", "").replace("INR", "").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise parsing.CellError(
            "is not a number (write 1299.50, without thousands separators)"
        ) from None
    if not amount.is_finite():
        raise parsing.CellError("is not a number")
    if amount < 0:
        raise parsing.CellError("is negative")
    if amount > MAX_MONEY:
        raise parsing.CellError("is too large")
    if amount != amount.quantize(Decimal("0.01")):
        raise parsing.CellError("has more than 2 decimals")
    return amount.quantize(Decimal("0.01"))


def ref_order_date(value, *, now=None):
    if not value:
        raise parsing.CellError("required value is missing")
    parsed = None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        for fmt in parsing.DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise parsing.CellError("is not a date (use 2024-05-01, 2024-05-01 14:30 or 01/05/2024)")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=ZoneInfo(django_settings.TIME_ZONE))
    now = now or timezone.now()
    if parsed < parsing.EARLIEST:
        raise parsing.CellError("is before 2000")
    if parsed > now + timedelta(days=1):
        raise parsing.CellError("is in the future")
    return parsed


def ref_payment_method(value):
    if not value:
        raise parsing.CellError("required value is missing")
    normalised = value.strip().upper().replace(" ", "_")
    aliases = {"CASH_ON_DELIVERY": "COD", "PRE_PAID": "PREPAID", "PREPAID": "PREPAID"}
    normalised = aliases.get(normalised, normalised)
    if normalised not in ("COD", "PREPAID"):
        raise parsing.CellError("must be COD or PREPAID")
    return normalised


def ref_pincode(value, *, country="IN"):
    value = ref_unescape(value).replace(" ", "") if country == "IN" else ref_unescape(value).strip()
    if not value:
        raise parsing.CellError("required value is missing")
    if value.endswith(".0") and value[:-2].isdigit():
        value = value[:-2]
    if country == "IN":
        if not parsing.INDIAN_PIN.match(value):
            raise parsing.CellError("is not a 6-digit Indian pincode")
    elif not parsing.OTHER_POSTCODE.match(value):
        raise parsing.CellError("is not a postal code")
    return value


def ref_country(value):
    if not value:
        return "IN"
    upper = value.strip().upper()
    upper = parsing.COUNTRY_NAMES.get(upper, upper)
    if not re.fullmatch(r"[A-Z]{2}", upper):
        raise parsing.CellError("is not a 2-letter country code (IN)")
    return upper


def ref_email(value):
    value = ref_text(value, max_length=254)
    if value:
        try:
            validate_email(value)
        except ValidationError:
            raise parsing.CellError("is not an e-mail address") from None
    return value


def outcome(parse, value, **kwargs):
    """What a parser makes of a value: its result (with its exact text), or its message."""
    try:
        result = parse(value, **kwargs)
    except parsing.CellError as exc:
        return ("error", str(exc))
    return ("ok", type(result).__name__, result, str(result))


# --- Tricky values --------------------------------------------------------------------------

TRICKY = [
    "",
    " ",
    "0",
    "1",
    "2",
    "01",
    " 2",
    "2 ",
    "1.0",
    "1.5",
    "1e3",
    "1E0",
    "-0",
    "-1",
    "+1",
    "0.0",
    "1000",
    "1001",
    "10000",
    "١٢",
    "१",
    "１２",
    "²",
    "½",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "∞",
    "499",
    "499.",
    ".5",
    "499.00",
    "499.005",
    "499.0000",
    "1,299",
    "₹499",
    "₹ 499.50",
    "INR 20",
    "INR",
    "1_000",
    "9999999999.99",
    "9999999999.995",
    "10000000000",
    "0x10",
    "'=1+2",
    "'+91",
    "'-5",
    "'",
    "''",
    "'x",
    "=1+2",
    "@x",
    "\t",
    "a\tb",
    "a\nb",
    "a\rb",
    "x\x00",
    "a\x01b",
    "x\x7f",
    "\ufffd",
    "ü",
    "€",
    "\u00a0x",
    "x\u00a0",
    "\u2003x",
    "\u200b",
    " OD1",
    "OD 1",
    "OD1",
    "OD1\n",
    "x" * 100,
    "x" * 101,
    "x" * 255,
    "x" * 256,
    "2024-05-01",
    "2024-05-01 14:30",
    "2024-05-01 14:30:15",
    "2024-05-01T14:30",
    "2024-05-01T14:30:00+05:30",
    "2024-05-01T10:30:00Z",
    "2024-05-01t10:30:00z",
    "01/05/2024",
    "01/05/2024 10:30",
    "01-05-2024 10:30:15",
    "31/02/2024",
    "1999-12-31",
    "1999-12-31T23:30:00-05:00",
    "2000-01-01",
    "2999-01-01",
    "20240501",
    "yesterday",
    "COD",
    "cod",
    "Prepaid",
    "PRE PAID",
    "pre_paid",
    "cash on delivery",
    " COD ",
    "card",
    "560001",
    "56 0001",
    "560001.0",
    "560001.00",
    "056000",
    "56000",
    "5600011",
    "५६०००१",
    "SW1A 1AA",
    "10115",
    "IN",
    "in",
    " In ",
    "India",
    "IND",
    "bharat",
    "XX",
    "USA",
    "I",
    "a@b.co",
    "asha@example.com",
    "A+B_c-d@Sub.Example.COM",
    "x@localhost",
    "a@[127.0.0.1]",
    "a@[::1]",
    "ü@example.com",
    "a@exämple.com",
    "a..b@x.com",
    ".a@x.com",
    "a.@x.com",
    "a@x",
    "a@x.c",
    "a@x.c0",
    "a@-x.com",
    "a@x-.com",
    "a@x.co-",
    "a@x..com",
    "a@x.xn--p1ai",
    "a@b@c.com",
    '"a b"@x.com',
    "a@" + "x" * 64 + ".com",
    "a@x.com\n",
    "+91 98450 00000",
    "(080) 1234-5678",
    "12345",
    "abc",
]

PARSERS = [
    (parsing.text, ref_text, {"max_length": 100}),
    (parsing.text, ref_text, {"max_length": 100, "required": True}),
    (parsing.text, ref_text, {"max_length": 255}),
    (parsing.code, ref_code, {"max_length": 100, "what": "order id"}),
    (parsing.quantity, ref_quantity, {}),
    (parsing.money, ref_money, {}),
    (parsing.money, ref_money, {"required": False}),
    (parsing.payment_method, ref_payment_method, {}),
    (parsing.pincode, ref_pincode, {}),
    (parsing.pincode, ref_pincode, {"country": "GB"}),
    (parsing.country, ref_country, {}),
    (parsing.email, ref_email, {}),
]
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize("parse, reference, kwargs", PARSERS)
def test_tricky_values_give_the_same_results_and_messages(parse, reference, kwargs):
    for value in TRICKY:
        for _ in range(2):  # the second time from the cache, where there is one
            assert outcome(parse, value, **kwargs) == outcome(reference, value, **kwargs), value


def test_order_dates_give_the_same_results_and_messages():
    for value in TRICKY:
        for _ in range(2):
            expected = outcome(ref_order_date, value, now=NOW)
            assert outcome(parsing.order_date, value, now=NOW) == expected, value


def test_the_date_cache_follows_the_time_zone(settings):
    settings.TIME_ZONE = "Asia/Kolkata"
    india = parsing.order_date("2024-05-01 10:30", now=NOW)
    settings.TIME_ZONE = "Europe/London"
    london = parsing.order_date("2024-05-01 10:30", now=NOW)
    assert india.utcoffset() == timedelta(hours=5, minutes=30)
    assert london.utcoffset() == timedelta(hours=1)
    assert london == ref_order_date("2024-05-01 10:30", now=NOW)


def test_the_future_is_judged_against_the_clock_given():
    assert outcome(parsing.order_date, "2024-06-02 11:00", now=NOW)[0] == "ok"
    assert outcome(parsing.order_date, "2024-06-02 18:00", now=NOW) == ("error", "is in the future")


# Text: anything, plausible pieces more often.
cells = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=30),
    st.text(alphabet="0123456789.-+eE ₹INR'=@,", max_size=12),
    st.from_regex(r"[a-z0-9._+-]{1,8}@[a-z0-9-]{1,8}(\.[a-z0-9-]{1,6}){1,2}", fullmatch=True),
    st.from_regex(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?", fullmatch=True),
)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(value=cells)
def test_any_value_gives_the_same_result_and_message(value):
    for parse, reference, kwargs in PARSERS:
        assert outcome(parse, value, **kwargs) == outcome(reference, value, **kwargs)
    assert outcome(parsing.order_date, value, now=NOW) == outcome(ref_order_date, value, now=NOW)


# --- The importer's own fast paths ----------------------------------------------------------


def checked_columns(values: dict[str, str]) -> list:
    record = Record(2, 2, "x")
    row = RawRow(2, values)
    parsers = order_import.ORDER_FIELDS + order_import.LINE_FIELDS + order_import.ORDER_KEY
    return [check_cells(record, row, parsers), [e.as_list() for e in record.errors]]


def expected_columns(values: dict[str, str]) -> list:
    record = Record(2, 2, "x")
    references = {
        "payment_method": ref_payment_method,
        "customer_name": lambda v: ref_text(v, max_length=200),
        "customer_phone": parsing.phone,
        "customer_email": ref_email,
        "address_line1": lambda v: ref_text(v, max_length=255),
        "address_line2": lambda v: ref_text(v, max_length=255),
        "city": lambda v: ref_text(v, max_length=100),
        "state": lambda v: ref_text(v, max_length=100),
        "channel_line_id": lambda v: ref_code(v, max_length=100, what="line id"),
        "sku": lambda v: ref_text(v, max_length=100, required=True),
        "quantity": ref_quantity,
        "selling_price": ref_money,
        "shipping_charges": lambda v: ref_money(v, required=False),
        "channel_order_id": lambda v: ref_code(v, max_length=100, what="order id"),
        "buyer_gstin": parsing.gstin,  # no fast path: always parsed
    }
    parsers = order_import.ORDER_FIELDS + order_import.LINE_FIELDS + order_import.ORDER_KEY
    out = [check_cell(record, 2, c, values.get(c, ""), references[c]) for c, _, _ in parsers]
    return [out, [e.as_list() for e in record.errors]]


@SETTINGS
@given(value=cells, column=st.sampled_from(ORDER_HEADER))
def test_plain_cells_taken_without_the_parser_are_what_it_gives(value, column):
    values = order_row(**{column: value})
    assert checked_columns(values) == expected_columns(values)


def test_rows_read_through_the_itemgetter_are_the_rows_read_cell_by_cell():
    header = ["Qty", "sku", "notes", "channel", "channel_order_id", ""]
    lines = [
        header,
        ["1", " A ", "x", "FLIPKART", "FK-1", ""],
        ["2", "B"],  # short: the general way
        [],
        ["3", "C", "", "FLIPKART", "FK-2", "", "", " "],  # blank extra cells are fine
        ["4", "D", "", "FLIPKART", "FK-3", "", "oops"],  # an extra cell is an error
    ]
    data = "\n".join(",".join(line) for line in lines).encode()
    table = open_table(
        io.BytesIO(data),
        "x.csv",
        known=["quantity", "sku", "channel", "channel_order_id"],
        aliases={"qty": "quantity"},
        required=["sku"],
    )
    rows = [(r.number, r.values, [e.as_list() for e in r.errors]) for r in table.rows]
    assert rows == [
        (2, {"quantity": "1", "sku": "A", "channel": "FLIPKART", "channel_order_id": "FK-1"}, []),
        (3, {"quantity": "2", "sku": "B", "channel": "", "channel_order_id": ""}, []),
        (4, {"quantity": "", "sku": "", "channel": "", "channel_order_id": ""}, []),
        (5, {"quantity": "3", "sku": "C", "channel": "FLIPKART", "channel_order_id": "FK-2"}, []),
        (
            6,
            {"quantity": "4", "sku": "D", "channel": "FLIPKART", "channel_order_id": "FK-3"},
            [
                [
                    6,
                    "(row)",
                    "oops",
                    "the row has 7 cells but the header has 6 columns "
                    "(an unquoted comma in a value?)",
                ]
            ],
        ),
    ]


def test_a_single_known_column_is_read_too():
    table = open_table(
        io.BytesIO(b"sku,other\n A ,1\n\nB\n"), "x.csv", known=["sku"], aliases={}, required=[]
    )
    assert [(r.number, r.values) for r in table.rows] == [
        (2, {"sku": "A"}),
        (3, {"sku": ""}),
        (4, {"sku": "B"}),
    ]


def reference_scattered(data: bytes) -> set:
    """The first pass as it was: through the row dicts."""
    seen, scattered, current = set(), set(), None
    table = OrderImporter.open(OrderImporter.__new__(OrderImporter), io.BytesIO(data), "x.csv")
    for row in table.rows:
        if row.is_blank or row.errors:
            continue
        key = order_import.order_key(row.values)
        if key is None or key == current:
            continue
        if key in seen:
            scattered.add(key)
        seen.add(key)
        current = key
    return scattered


def scattered(data: bytes) -> set:
    importer = OrderImporter.__new__(OrderImporter)  # no queries: only the reading is used
    return order_import.scattered_orders(lambda: io.BytesIO(data), "x.csv", importer)


def test_scattered_orders_are_found_on_the_raw_cells():
    rows = [
        order_row("FK-1"),
        order_row("FK-2"),
        order_row("FK-1", "L2"),
        order_row("'=FK-3"),
        order_row("=FK-3", "L2"),  # the same order: the quote is the export's escape
        order_row("FK-4", channel=" flipkart "),
        order_row("FK-5"),
        order_row("FK-4", "L2"),
    ]
    data = csv_bytes(rows)
    assert (
        scattered(data)
        == reference_scattered(data)
        == {
            ("FLIPKART", "FK-1"),
            ("FLIPKART", "FK-4"),
        }
    )


def test_rows_the_main_pass_cannot_read_do_not_count_as_scattered():
    header = ",".join(ORDER_HEADER)
    good = ",".join(order_row("FK-1").values())
    other = ",".join(order_row("FK-2").values())
    data = "\n".join([header, good, other, good + ",extra", good[:30], "", good]).encode()
    assert scattered(data) == reference_scattered(data) == {("FLIPKART", "FK-1")}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=messy_csv())
def test_scattered_orders_of_messy_files_are_the_same(data):
    assert scattered(data) == reference_scattered(data)


@pytest.mark.django_db
def test_existing_orders_are_skipped_and_a_taken_code_is_an_error(world):
    world.order("X-1")
    ChannelFactory(code="FLIPKART-X", name="Flipkart X", channel_type="FLIPKART")
    data = csv_bytes(
        [
            order_row("X-1"),  # already imported
            order_row("X-2"),  # new
            order_row("2", channel="FLIPKART-X"),  # new too: FLIPKART-X-2 is in this file only
        ]
        + [order_row(f"N-{n}") for n in range(order_import.ORDER_BATCH - 3)]
        + [order_row("1", channel="FLIPKART-X")]  # its code would be FLIPKART-X-1: taken
    )
    table, batches = OrderImporter().batches(lambda: io.BytesIO(data), "x.csv")
    records = [record for batch in batches for record in batch.records]
    assert [(r.label, r.state, r.note) for r in records[:3]] == [
        ("FLIPKART X-1", SKIPPED, "already imported as order FLIPKART-X-1"),
        ("FLIPKART X-2", NEW, ""),
        ("FLIPKART-X 2", NEW, ""),
    ]
    assert records[1].describe() == "FLIPKART X-2: 1 line, 1 unit, 499.00 (row 3)"
    taken = records[-1]
    assert (taken.label, taken.state) == ("FLIPKART-X 1", INVALID)
    assert [e.as_list() for e in taken.errors] == [
        [
            order_import.ORDER_BATCH + 2,
            "channel_order_id",
            "1",
            "the order code FLIPKART-X-1 is taken by an order of another channel",
        ]
    ]
