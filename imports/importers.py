"""The streaming, chunked import path: file rows -> checked records -> batches for the services.

Each kind of import (orders, stock, serviceability) reads the file a row at a time, checks
every cell against cached maps (channels, facilities, providers; SKUs and shelves resolved once
per batch of rows), and hands out batches of records, each either valid and new, already in
the database (skipped), or invalid with its errors. The same pass serves the preview (nothing
is written) and the import (valid records go to the services a batch at a time).

Orders: rows of one order (same channel and channel order id) must be next to each other (an
export, or a sheet sorted by order, has them so); a first quick pass finds orders whose rows
are scattered, and they are refused as a whole rather than imported in part.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError
from django.utils import timezone

from channels.models import Channel
from inventory.models import Facility, InventoryType, Shelf, ShippingProvider, Sku
from orders.models import Order
from orders.selectors import orders_existing
from orders.services import LineInput, OrderInput, orders_create
from uniware.core.actors import Actor
from uniware.core.readahead import read_ahead

from . import parsing as p
from .readers import (
    ROW_COLUMN,
    Header,
    RawRow,
    RowError,
    Table,
    has_extra_cells,
    open_records,
    open_table,
    shown,
)

log = logging.getLogger(__name__)

ORDER_BATCH = 2000  # orders per orders_create call
UNIT_BATCH = 20_000  # ... or fewer, when they have this many units (memory of the batch)
MAX_ORDER_UNITS = 5000  # units of one order (each is a row, created in one transaction)
SYSTEMIC_FAILURES = 20  # this many orders in a row refused by the database: stop the job
ROW_BATCH = 1000  # stock / serviceability rows per batch


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    description: str
    example: str
    level: str = ""  # orders: "order" (same on every row of the order) or "line"


ORDER_COLUMNS = [
    Column("channel", True, "Channel code, as in the admin (e.g. FLIPKART).", "FLIPKART", "order"),
    Column("channel_order_id", True, "The channel's order id.", "OD1234567890", "order"),
    Column(
        "order_date",
        True,
        "2024-05-01, 2024-05-01 14:30, 2024-05-01T14:30:00+05:30 or 01/05/2024 (day first); "
        "without an offset, in the server's time zone. Not in the future.",
        "2024-05-01 14:30",
        "order",
    ),
    Column("payment_method", True, "COD or PREPAID.", "PREPAID", "order"),
    Column(
        "channel_line_id",
        True,
        "The channel's id of the order line, unique within the order.",
        "OD1234567890-1",
        "line",
    ),
    Column("sku", True, "SKU code, as in the admin.", "TSHIRT-RED-M", "line"),
    Column(
        "quantity",
        True,
        f"Units of the line, 1 to {p.MAX_LINE_QUANTITY}; each becomes a unit of the order.",
        "2",
        "line",
    ),
    Column("selling_price", True, "Price of one unit, e.g. 499.00 (2 decimals).", "499.00", "line"),
    Column("shipping_charges", False, "Shipping charged per unit; empty means 0.", "0", "line"),
    Column("customer_name", False, "", "Asha Rao", "order"),
    Column(
        "customer_phone", False, "Digits, spaces, +, - and brackets.", "+91 98450 00000", "order"
    ),
    Column("customer_email", False, "", "asha@example.com", "order"),
    Column("address_line1", False, "", "12 MG Road", "order"),
    Column("address_line2", False, "", "", "order"),
    Column("city", False, "", "Bengaluru", "order"),
    Column("state", False, "", "Karnataka", "order"),
    Column("pincode", True, "Shipping pincode: 6 digits in India.", "560001", "order"),
    Column("country", False, "2-letter code; empty means IN.", "IN", "order"),
]
ORDER_ALIASES = {
    "channel_code": "channel",
    "order_id": "channel_order_id",
    "display_order_code": "channel_order_id",
    "sale_order_code": "channel_order_id",
    "date": "order_date",
    "payment": "payment_method",
    "shipping_method": "payment_method",
    "line_id": "channel_line_id",
    "channel_order_item_id": "channel_line_id",
    "order_item_id": "channel_line_id",
    "sku_code": "sku",
    "item_sku_code": "sku",
    "qty": "quantity",
    "price": "selling_price",
    "unit_price": "selling_price",
    "shipping": "shipping_charges",
    "name": "customer_name",
    "phone": "customer_phone",
    "mobile": "customer_phone",
    "email": "customer_email",
    "e_mail": "customer_email",
    "address": "address_line1",
    "ship_address_line1": "address_line1",
    "ship_address_line2": "address_line2",
    "ship_city": "city",
    "ship_state": "state",
    "pin": "pincode",
    "pin_code": "pincode",
    "ship_pincode": "pincode",
    "postal_code": "pincode",
    "ship_country": "country",
}

INVENTORY_COLUMNS = [
    Column("facility", True, "Facility code.", "WH1"),
    Column("shelf", True, "Shelf code in that facility (the shelf must exist).", "A1"),
    Column("sku", True, "SKU code.", "TSHIRT-RED-M"),
    Column("quantity", True, "Units to add to the shelf (1 to 1,000,000).", "25"),
    Column(
        "inventory_type",
        False,
        "GOOD_INVENTORY (default), BAD_INVENTORY, QC_REJECTED or VIRTUAL_INVENTORY.",
        "GOOD_INVENTORY",
    ),
]
INVENTORY_ALIASES = {
    "facility_code": "facility",
    "shelf_code": "shelf",
    "sku_code": "sku",
    "qty": "quantity",
    "type": "inventory_type",
}
INVENTORY_TYPES = {
    **{t.upper(): t for t in InventoryType.values},
    "GOOD": InventoryType.GOOD_INVENTORY,
    "BAD": InventoryType.BAD_INVENTORY,
    "VIRTUAL": InventoryType.VIRTUAL_INVENTORY,
}

SERVICEABILITY_COLUMNS = [
    Column("pincode", True, "6-digit pincode.", "560001"),
    Column("payment_method", True, "COD or PREPAID (Uniware's 'Shipping Method').", "COD"),
    Column("shipping_provider", True, "Shipping provider code.", "BLUEDART"),
    Column("priority", False, "1 is tried first; empty means 1.", "1"),
]
SERVICEABILITY_ALIASES = {
    "shipping_method": "payment_method",
    "payment": "payment_method",
    "provider": "shipping_provider",
    "shipping_provider_code": "shipping_provider",
    "courier": "shipping_provider",
    "pin": "pincode",
    "pin_code": "pincode",
}


# --- Records and batches --------------------------------------------------------------------

NEW, SKIPPED, INVALID = "new", "skipped", "invalid"


@dataclass
class Record:
    """One thing to import (an order, a stock row, a serviceability row) and its rows."""

    first_row: int
    last_row: int
    label: str
    errors: list[RowError] = field(default_factory=list)
    state: str = NEW
    note: str = ""  # why skipped
    data: Any = None
    rows: int = 1
    key_column: str = ROW_COLUMN
    key_value: str = ""
    details: str = ""
    summary: Callable[[Record], str] | None = None  # makes `details` when they are shown

    def describe(self) -> str:
        """For the preview's sample of new records (so made only for those)."""
        rows = (
            f"row {self.first_row}"
            if self.first_row == self.last_row
            else f"rows {self.first_row}–{self.last_row}"
        )
        details = self.details or (self.summary(self) if self.summary else "")
        return f"{self.label}{': ' + details if details else ''} ({rows})"

    def error(self, row: int, column: str, value: object, message: str) -> None:
        self.errors.append(RowError(row, column, shown(value), message))
        self.state = INVALID


@dataclass
class Batch:
    records: list[Record]
    rows_done: int  # data rows read so far (for progress)


class Reporter:
    """Counts records and writes every problem to the row-level report as it goes, so
    nothing grows with the file but the first few examples kept for the preview."""

    HEADER = ["row", "column", "value", "error"]
    SAMPLE = 200

    def __init__(self, out=None) -> None:
        import csv

        self.writer = csv.writer(out) if out is not None else None
        if self.writer is not None:
            self.writer.writerow(self.HEADER)
        self.error_count = 0
        self.invalid_count = 0
        self.new_count = 0
        self.skipped_count = 0
        self.created_count = 0
        self.failed_count = 0
        self.errors: list[list] = []  # the first SAMPLE errors, for the preview
        self.skipped_sample: list[str] = []
        self.new_sample: list[str] = []
        self.message = ""

    def _write(self, row: int, column: str, value: str, message: str) -> None:
        if self.writer is not None:
            from .writers import safe_cell

            self.writer.writerow([row, column, safe_cell(value), safe_cell(message)])

    def error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < self.SAMPLE:
            self.errors.append(error.as_list())
        self._write(*error.as_list())

    def invalid(self, record: Record) -> None:
        self.invalid_count += 1
        for error in record.errors:
            self.error(error)

    def new(self, record: Record) -> None:
        self.new_count += 1
        if len(self.new_sample) < 20:
            self.new_sample.append(record.describe())

    def skipped(self, record: Record) -> None:
        self.skipped_count += 1
        if len(self.skipped_sample) < 20:
            self.skipped_sample.append(f"{record.label}: {record.note}")
        self._write(
            record.first_row, record.key_column, record.key_value, f"skipped: {record.note}"
        )

    def failed(self, record: Record, message: str) -> None:
        self.failed_count += 1
        self.error(
            RowError(
                record.first_row,
                record.key_column,
                shown(record.key_value),
                f"not imported: {message}",
            )
        )

    def created(self, n: int) -> None:
        self.created_count += n

    def classify(self, record: Record) -> None:
        """The preview: count a record as new, skipped or invalid."""
        if record.state == NEW:
            self.new(record)
        elif record.state == SKIPPED:
            self.skipped(record)
        else:
            self.invalid(record)


class Importer:
    kind: str
    columns: list[Column]
    aliases: dict[str, str]

    @property
    def known(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def open(self, binary, name: str) -> Table:
        return open_table(
            binary, name, known=self.known, aliases=self.aliases, required=self.required
        )

    def open_records(self, binary, name: str) -> tuple[Header, Iterator[list[str] | RowError]]:
        return open_records(
            binary, name, known=self.known, aliases=self.aliases, required=self.required
        )

    def batches(
        self, open_file: Callable[[], Any], name: str
    ) -> tuple[Table, Generator[Batch, None, None]]:
        """The header, and the records in batches (a generator: close it when stopping)."""
        raise NotImplementedError

    def run(self, batches: Iterable[Batch], *, actor: Actor, report: Reporter, progress) -> None:
        """Import the valid records; report the others."""
        raise NotImplementedError


def _data_rows(rows: Iterator[RawRow], counter: list[int]) -> Iterator[RawRow]:
    """Rows that are not blank; counter[0] counts them (progress)."""
    for row in rows:
        if row.is_blank:
            continue
        counter[0] += 1
        yield row


def _check(record: Record, row: int, column: str, raw: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(raw)
    except p.CellError as exc:
        record.error(row, column, raw, str(exc))
        return None


def _check_all(record: Record, row: RawRow, parsers: tuple[tuple[str, Callable, int], ...]) -> list:
    """`_check` of several columns of a row in one call (a call per cell is much of the cost of
    a row): their values in order, None for the wrong ones (reported on the record).

    `parsers` are (column, parse, plain) where a non-zero `plain` says `parse` is `p.text` or
    `p.code` with that max_length (see `_text_column`): both return a plain value (printable
    ASCII, starting with neither a space nor a quote, not too long) unchanged, so it is taken
    without the call."""
    n, get = row.number, row.values.get
    out: list = []
    append = out.append
    for column, parse, plain in parsers:
        raw = get(column, "")
        if (
            plain
            and raw
            and len(raw) <= plain
            and raw[0] not in " '"
            and raw.isascii()
            and raw.isprintable()
        ):
            append(raw)
            continue
        try:
            append(parse(raw))
        except p.CellError as exc:
            record.error(n, column, raw, str(exc))
            append(None)
    return out


def _column(name: str, parse: Callable[[str], Any]) -> tuple[str, Callable, int]:
    return name, parse, 0


def _text_column(name: str, max_length: int, *, required: bool = False):
    """A `_check_all` entry for `p.text` (a closure: a partial with keywords is slower)."""

    def parse(value: str) -> str:
        return p.text(value, max_length=max_length, required=required)

    return name, parse, max_length


def _code_column(name: str, max_length: int, what: str):
    """A `_check_all` entry for `p.code`."""

    def parse(value: str) -> str:
        return p.code(value, max_length=max_length, what=what)

    return name, parse, max_length


# --- Orders ---------------------------------------------------------------------------------

ORDER_LEVEL = [c.name for c in ORDER_COLUMNS if c.level == "order"]

# The parsers of the columns, made once (not a dict of lambdas per order), in the order their
# errors are reported. order_date (the clock), country and pincode (which depends on the
# country) are checked apart, in `_start`.
ORDER_KEY = (_code_column("channel_order_id", 100, "order id"),)
ORDER_FIELDS = (
    _column("payment_method", p.payment_method),
    _text_column("customer_name", 200),
    _column("customer_phone", p.phone),
    _column("customer_email", p.email),
    _text_column("address_line1", 255),
    _text_column("address_line2", 255),
    _text_column("city", 100),
    _text_column("state", 100),
)
ORDER_FIELD_NAMES = [column for column, _, _ in ORDER_FIELDS]
LINE_FIELDS = (
    _code_column("channel_line_id", 100, "line id"),
    _text_column("sku", 100, required=True),
    _column("quantity", p.quantity),
    _column("selling_price", p.money),
    _column("shipping_charges", lambda value: p.money(value, required=False)),
)


@dataclass
class OrderData:
    channel: Channel | None
    channel_order_id: str
    fields: dict[str, Any]
    raw: dict[str, str]  # the first row's values (a column missing from the file is absent)
    lines: list[dict] | tuple[dict, ...] = field(default_factory=list)  # a tuple once complete
    line_rows: dict[str, int] = field(default_factory=dict)
    units: int = 0


def _key(values: dict[str, str]) -> tuple[str, str] | None:
    channel = values.get("channel", "").strip().upper()
    order_id = p.unescape(values.get("channel_order_id", "").strip())
    if not channel or not order_id:
        return None
    return channel, order_id


def scattered_orders(open_file: Callable[[], Any], name: str, importer: Importer) -> set:
    """Orders whose rows are not all next to each other. A first, cheap pass: the two key cells
    of each record, as read (no row dicts). It passes over the rows the main pass cannot read
    (unreadable records, extra cells) or that have no key, as `_orders` does."""
    seen: set[tuple[str, str]] = set()
    scattered: set[tuple[str, str]] = set()
    current = None
    with open_file() as binary:
        header, records = importer.open_records(binary, name)
        if "channel" not in header.positions or "channel_order_id" not in header.positions:
            return scattered
        width = len(header.names)
        channel_at = header.positions["channel"]
        order_id_at = header.positions["channel_order_id"]
        needed = max(channel_at, order_id_at) + 1
        unescape = p.unescape
        for record in records:
            if isinstance(record, RowError) or len(record) < needed:
                continue  # unreadable, or a key cell missing
            if len(record) > width and has_extra_cells(record, width):
                continue
            channel = record[channel_at].strip().upper()
            order_id = unescape(record[order_id_at].strip())
            if not channel or not order_id:
                continue
            key = (channel, order_id)
            if key == current:
                continue
            if key in seen:
                scattered.add(key)
            seen.add(key)
            current = key
    return scattered


class OrderImporter(Importer):
    kind = "ORDERS"
    columns = ORDER_COLUMNS
    aliases = ORDER_ALIASES

    def __init__(self) -> None:
        self.channels = {c.code.upper(): c for c in Channel.objects.only("pk", "code")}
        self.sku_ids: dict[str, int | None] = {}
        self.db_failures = 0
        self.now = timezone.now()  # "not in the future": read once per batch of orders

    # Reading: rows -> orders ------------------------------------------------------------

    def batches(self, open_file, name):
        scattered = scattered_orders(open_file, name, self)
        binary = open_file()
        table = self.open(binary, name)

        def take(records: Iterator[Record]) -> list[Record]:
            """The next batch of orders, checked cell by cell."""
            pending: list[Record] = []
            units = 0
            for record in records:
                pending.append(record)
                if record.data is not None:
                    record.data.lines = tuple(record.data.lines)  # complete
                    units += record.data.units
                if len(pending) >= ORDER_BATCH or units >= UNIT_BATCH:
                    break
            return pending

        def parsed() -> Iterator[tuple[list[Record], int]]:
            """Batches as read from the file. No database here: this runs in a thread."""
            counter = [0]
            records = self._orders(_data_rows(table.rows, counter), scattered)
            while pending := take(records):
                yield pending, counter[0]

        def generate() -> Iterator[Batch]:
            # the next batches are read while this thread (and PostgreSQL) write this one
            ahead = read_ahead(parsed())
            try:
                for pending, rows_done in ahead:
                    self._finish(pending)  # SKUs and existing orders: one query each
                    yield Batch(pending, rows_done)
            finally:
                ahead.close()  # the reading thread has stopped before the file closes
                binary.close()

        return table, generate()

    def _orders(self, rows: Iterator[RawRow], scattered: set) -> Iterator[Record]:
        current: Record | None = None
        current_key = None
        orphans: list[Record] = []  # unreadable rows since the last good one
        started = 0
        for row in rows:
            key = _key(row.values)
            if key is None:
                orphan = Record(row.number, row.number, f"row {row.number}", state=INVALID)
                orphan.errors += row.errors
                if not row.errors:
                    for column in ("channel", "channel_order_id"):
                        if not row.values.get(column, "").strip():
                            orphan.error(row.number, column, "", "required value is missing")
                orphans.append(orphan)
                continue
            if key == current_key and current is not None:
                for orphan in orphans:  # an unreadable row inside an order spoils the order
                    current.errors += orphan.errors
                    current.state = INVALID
                    current.rows += 1
                orphans = []
                self._add_row(current, row)
                continue
            if current is not None:
                yield current
            yield from orphans
            orphans = []
            if started % ORDER_BATCH == 0:
                self.now = timezone.now()
            started += 1
            current, current_key = self._start(row, key), key
            if key in scattered:
                current.error(
                    row.number,
                    "channel_order_id",
                    key[1],
                    f"rows of order {key[1]} of channel {key[0]} are not next to each other "
                    "in the file; sort the file by order and import again",
                )
        if current is not None:
            yield current
        yield from orphans

    def _start(self, row: RawRow, key: tuple[str, str]) -> Record:
        n = row.number
        values = row.values
        record = Record(
            n,
            n,
            f"{key[0]} {key[1]}",
            errors=row.errors,  # the row's own list: the row is done with
            state=INVALID if row.errors else NEW,
            key_column="channel_order_id",
            key_value=key[1],
        )
        channel = self.channels.get(key[0])
        if channel is None:
            record.error(n, "channel", values.get("channel", ""), "unknown channel")
        (order_id,) = _check_all(record, row, ORDER_KEY)
        if channel is not None and order_id and len(channel.code) + 1 + len(order_id) > 100:
            record.error(
                n,
                "channel_order_id",
                order_id,
                f"is too long: the order code {channel.code}-<id> must fit 100 characters",
            )
        country = _check(record, n, "country", values.get("country", ""), p.country) or "IN"
        fields: dict[str, Any] = {"country": country}
        raw = values.get("order_date", "")
        try:
            fields["order_date"] = p.order_date(raw, now=self.now)
        except p.CellError as exc:
            record.error(n, "order_date", raw, str(exc))
            fields["order_date"] = None
        fields.update(zip(ORDER_FIELD_NAMES, _check_all(record, row, ORDER_FIELDS), strict=True))
        raw = values.get("pincode", "")
        try:
            fields["pincode"] = p.pincode(raw, country=country)
        except p.CellError as exc:
            record.error(n, "pincode", raw, str(exc))
            fields["pincode"] = None
        record.data = OrderData(channel, order_id or key[1], fields, values)
        record.summary = _order_summary
        self._add_line(record, row)
        return record

    def _add_row(self, record: Record, row: RawRow) -> None:
        n = row.number
        record.last_row = n
        record.rows += 1
        record.errors += row.errors
        if row.errors:
            record.state = INVALID
        data: OrderData = record.data
        get, first_get = row.values.get, data.raw.get
        for column in ORDER_LEVEL:
            value = get(column, "")
            if not value:
                continue
            first = first_get(column, "")
            if value == first or _same(column, value, first):
                continue
            where = f"row {record.first_row} of this order"
            message = (
                f"conflicts with {where}, which has {shown(first)!r}"
                if first
                else f"conflicts with {where}, which leaves it empty"
            )
            record.error(n, column, value, message)
        self._add_line(record, row)

    def _add_line(self, record: Record, row: RawRow) -> None:
        n = row.number
        values = row.values
        data: OrderData = record.data
        line_id, sku, quantity, price, shipping = _check_all(record, row, LINE_FIELDS)
        if line_id:
            if line_id in data.line_rows:
                record.error(
                    n,
                    "channel_line_id",
                    line_id,
                    f"line {line_id} is already in row {data.line_rows[line_id]} of this order",
                )
            else:
                data.line_rows[line_id] = n
        if quantity:
            data.units += quantity
            if data.units > MAX_ORDER_UNITS and data.units - quantity <= MAX_ORDER_UNITS:
                record.error(
                    n,
                    "quantity",
                    values.get("quantity", ""),
                    f"the order has more than {MAX_ORDER_UNITS:,} units; split it",
                )
        if len(data.lines) > MAX_ORDER_UNITS:  # lines of an invalid order are not kept
            return
        data.lines.append(
            {
                "row": n,
                "channel_line_id": line_id,
                "sku": sku,
                "quantity": quantity,
                "selling_price": price,
                "shipping_charges": shipping,
            }
        )

    # Per batch: SKUs, existing orders ----------------------------------------------------

    def _finish(self, records: list[Record]) -> None:
        sku_ids = self.sku_ids
        orders = [r for r in records if r.data is not None]
        wanted = {line["sku"] for r in orders for line in r.data.lines} - sku_ids.keys()
        wanted.discard(None)  # the SKU cell was wrong (reported)
        wanted.discard("")
        if wanted:
            found = dict(Sku.objects.filter(code__in=wanted).values_list("code", "pk"))
            for code in wanted:
                sku_ids[code] = found.get(code)
        for record in orders:
            for line in record.data.lines:
                if line["sku"] and sku_ids.get(line["sku"]) is None:
                    record.error(line["row"], "sku", line["sku"], "unknown SKU")
        self._mark_existing(records)

    def _mark_existing(self, records: list[Record]) -> None:
        """One query for the batch: orders the channel already has are skipped."""
        candidates = [r for r in records if r.state == NEW and r.data.channel is not None]
        if not candidates:
            return
        keys = {(r.data.channel.pk, r.data.channel_order_id): r for r in candidates}
        codes = {f"{r.data.channel.code}-{r.data.channel_order_id}": r for r in candidates}
        existing = orders_existing(set(keys), set(codes))
        for channel_id, order_id, code in existing:
            record = keys.get((channel_id, order_id))
            if record is not None:
                record.state = SKIPPED
                record.note = f"already imported as order {code}"
                continue
            clash = codes.get(code)
            if clash is not None and clash.state == NEW:
                clash.error(
                    clash.first_row,
                    "channel_order_id",
                    clash.data.channel_order_id,
                    f"the order code {code} is taken by an order of another channel",
                )

    # Writing ---------------------------------------------------------------------------

    def run(self, batches, *, actor, report, progress) -> None:
        for batch in batches:
            ready = []
            for record in batch.records:
                if record.state == SKIPPED:
                    report.skipped(record)
                elif record.state == INVALID:
                    report.invalid(record)
                else:
                    ready.append(record)
            if ready:
                self._create(ready, actor, report)
            progress(batch.rows_done)

    def _create(self, records: list[Record], actor: Actor, report: Reporter) -> None:
        """orders_create for the batch; if it refuses (an order created meanwhile by a channel
        sync, say), halve the batch until the refused order is alone, and report it."""
        try:
            orders_create([_order_input(r.data) for r in records], actor=actor, allocate=True)
        except (ValidationError, IntegrityError, DataError) as exc:
            if self.db_failures >= SYSTEMIC_FAILURES:
                raise RuntimeError(
                    f"{SYSTEMIC_FAILURES} orders in a row were refused by the database, the "
                    f"last with: {exc}"
                ) from exc
            if len(records) > 1:
                middle = len(records) // 2
                self._create(records[:middle], actor, report)
                self._create(records[middle:], actor, report)
                return
            record = records[0]
            data = record.data
            existing = (
                Order.objects.filter(channel=data.channel, channel_order_id=data.channel_order_id)
                .values_list("code", flat=True)
                .first()
            )
            if existing:
                record.state, record.note = SKIPPED, f"already imported as order {existing}"
                report.skipped(record)
                return
            if isinstance(exc, ValidationError):
                message = "; ".join(exc.messages)
            else:
                message = str(exc)
                self.db_failures += 1
            report.failed(record, message)
            return
        self.db_failures = 0
        report.created(len(records))


def _order_summary(record: Record) -> str:
    """'2 lines, 3 units, 1,497.00' (a new order: every line checked)."""
    lines = record.data.lines
    units = record.data.units
    amount = sum(
        (line["selling_price"] + line["shipping_charges"]) * line["quantity"] for line in lines
    )
    return (
        f"{len(lines)} line{'s' if len(lines) != 1 else ''}, "
        f"{units} unit{'s' if units != 1 else ''}, {amount:,.2f}"
    )


def _same(column: str, value: str, first: str) -> bool:
    if value == first:
        return True
    try:
        if column == "payment_method":
            return p.payment_method(value) == p.payment_method(first)
        if column == "order_date":
            return p.order_date(value) == p.order_date(first)
        if column == "pincode":
            return value.replace(" ", "") == first.replace(" ", "")
        if column == "country":
            return p.country(value) == p.country(first)
    except p.CellError:
        return False
    return p.unescape(value) == p.unescape(first)


def _order_input(data: OrderData) -> OrderInput:
    f = data.fields
    return OrderInput(
        channel=data.channel,
        channel_order_id=data.channel_order_id,
        order_date=f["order_date"],
        payment_method=f["payment_method"],
        ship_pincode=f["pincode"],
        customer_name=f["customer_name"] or "",
        customer_phone=f["customer_phone"] or "",
        customer_email=f["customer_email"] or "",
        ship_address_line1=f["address_line1"] or "",
        ship_address_line2=f["address_line2"] or "",
        ship_city=f["city"] or "",
        ship_state=f["state"] or "",
        ship_country=f["country"],
        lines=[
            LineInput(
                channel_order_item_id=line["channel_line_id"],
                sku=line["sku"],
                quantity=line["quantity"],
                selling_price=line["selling_price"],
                shipping_charges=line["shipping_charges"],
            )
            for line in data.lines
        ],
    )


# --- Stock ----------------------------------------------------------------------------------


class RowImporter(Importer):
    """Imports where each row is one record."""

    def batches(self, open_file, name):
        binary = open_file()
        table = self.open(binary, name)

        def generate() -> Iterator[Batch]:
            counter = [0]
            pending: list[Record] = []
            try:
                for row in _data_rows(table.rows, counter):
                    pending.append(self._record(row))
                    if len(pending) >= ROW_BATCH:
                        self._finish(pending)
                        yield Batch(pending, counter[0])
                        pending = []
                if pending:
                    self._finish(pending)
                    yield Batch(pending, counter[0])
            finally:
                binary.close()

        return table, generate()

    def _record(self, row: RawRow) -> Record:
        raise NotImplementedError

    def _finish(self, records: list[Record]) -> None:
        pass


class InventoryImporter(RowImporter):
    kind = "INVENTORY"
    columns = INVENTORY_COLUMNS
    aliases = INVENTORY_ALIASES

    def __init__(self) -> None:
        self.facilities = {f.code.upper(): f for f in Facility.objects.all()}
        self.shelves: dict[tuple[int, str], int | None] = {}
        self.sku_ids: dict[str, int | None] = {}

    def _record(self, row: RawRow) -> Record:
        n, values = row.number, row.values
        record = Record(n, n, f"row {n}")
        record.errors += row.errors
        if row.errors:
            record.state = INVALID
            return record
        facility_code = values.get("facility", "")
        facility = self.facilities.get(facility_code.upper())
        if not facility_code:
            record.error(n, "facility", "", "required value is missing")
        elif facility is None:
            record.error(n, "facility", facility_code, "unknown facility")
        shelf = _check(
            record,
            n,
            "shelf",
            values.get("shelf", ""),
            lambda v: p.text(v, max_length=40, required=True),
        )
        sku = _check(
            record,
            n,
            "sku",
            values.get("sku", ""),
            lambda v: p.text(v, max_length=100, required=True),
        )
        quantity = _check(
            record,
            n,
            "quantity",
            values.get("quantity", ""),
            lambda v: p.positive_int(v, maximum=1_000_000),
        )
        kind = _check(
            record,
            n,
            "inventory_type",
            values.get("inventory_type", ""),
            lambda v: p.choice(v, INVENTORY_TYPES, default=InventoryType.GOOD_INVENTORY),
        )
        record.label = f"{sku} on {facility_code}/{shelf}"
        record.key_column, record.key_value = "sku", sku or ""
        record.details = f"+{quantity} {kind}"
        record.data = {
            "facility": facility,
            "shelf": shelf,
            "sku": sku,
            "quantity": quantity,
            "inventory_type": kind,
        }
        return record

    def _finish(self, records: list[Record]) -> None:
        valid = [r for r in records if r.state == NEW]
        shelves_wanted = {
            (r.data["facility"].pk, r.data["shelf"])
            for r in valid
            if (r.data["facility"].pk, r.data["shelf"]) not in self.shelves
        }
        if shelves_wanted:
            rows = Shelf.objects.filter(
                facility_id__in={f for f, _ in shelves_wanted},
                code__in={c for _, c in shelves_wanted},
            ).values_list("facility_id", "code", "pk")
            found = {(f, c): pk for f, c, pk in rows}
            for key in shelves_wanted:
                self.shelves[key] = found.get(key)
        skus_wanted = {r.data["sku"] for r in valid if r.data["sku"] not in self.sku_ids}
        if skus_wanted:
            found = dict(Sku.objects.filter(code__in=skus_wanted).values_list("code", "pk"))
            for code in skus_wanted:
                self.sku_ids[code] = found.get(code)
        for record in valid:
            data = record.data
            n = record.first_row
            data["shelf_id"] = self.shelves.get((data["facility"].pk, data["shelf"]))
            if data["shelf_id"] is None:
                record.error(
                    n, "shelf", data["shelf"], f"no such shelf in facility {data['facility'].code}"
                )
            data["sku_id"] = self.sku_ids.get(data["sku"])
            if data["sku_id"] is None:
                record.error(n, "sku", data["sku"], "unknown SKU")

    def run(self, batches, *, actor, report, progress) -> None:
        from .services import stock_add_many

        for batch in batches:
            ready = []
            for record in batch.records:
                if record.state == NEW:
                    ready.append(record)
                else:
                    report.invalid(record)
            if ready:
                stock_add_many(
                    [
                        (
                            r.data["shelf_id"],
                            r.data["sku_id"],
                            r.data["inventory_type"],
                            r.data["quantity"],
                        )
                        for r in ready
                    ],
                    actor=actor,
                    job=getattr(progress, "job", None),  # the ledger's reference
                )
                report.created(len(ready))
            progress(batch.rows_done)


class ServiceabilityImporter(RowImporter):
    kind = "SERVICEABILITY"
    columns = SERVICEABILITY_COLUMNS
    aliases = SERVICEABILITY_ALIASES

    def __init__(self) -> None:
        self.providers = {s.code.upper(): s for s in ShippingProvider.objects.all()}
        self.seen: dict[tuple[int, str, str], tuple[int, int]] = {}  # -> (row, priority)

    def _record(self, row: RawRow) -> Record:
        n, values = row.number, row.values
        record = Record(n, n, f"row {n}")
        record.errors += row.errors
        if row.errors:
            record.state = INVALID
            return record
        pincode = _check(record, n, "pincode", values.get("pincode", ""), p.pincode)
        method = _check(
            record, n, "payment_method", values.get("payment_method", ""), p.payment_method
        )
        provider_code = values.get("shipping_provider", "")
        provider = self.providers.get(provider_code.upper())
        if not provider_code:
            record.error(n, "shipping_provider", "", "required value is missing")
        elif provider is None:
            record.error(n, "shipping_provider", provider_code, "unknown shipping provider")
        priority = _check(
            record,
            n,
            "priority",
            values.get("priority", ""),
            lambda v: p.positive_int(v, maximum=32767, required=False, default=1),
        )
        record.label = f"{pincode} {method} {provider_code}"
        record.key_column, record.key_value = "pincode", pincode or ""
        record.details = f"priority {priority}"
        if record.state == NEW:
            key = (provider.pk, pincode, method)
            earlier = self.seen.get(key)
            if earlier is None:
                self.seen[key] = (n, priority)
            elif earlier[1] == priority:
                record.state, record.note = SKIPPED, f"the same as row {earlier[0]}"
            else:
                record.error(
                    n,
                    "priority",
                    values.get("priority", ""),
                    f"conflicts with row {earlier[0]}, which gives {provider.code} priority "
                    f"{earlier[1]} for {pincode} {method}",
                )
        record.data = {
            "shipping_provider_id": provider.pk if provider else None,
            "pincode": pincode,
            "payment_method": method,
            "priority": priority,
        }
        return record

    def run(self, batches, *, actor, report, progress) -> None:
        from .services import serviceability_replace

        def valid_rows() -> Iterator[dict]:
            for batch in batches:
                for record in batch.records:
                    if record.state == NEW:
                        report.created(1)
                        yield record.data
                    elif record.state == SKIPPED:
                        report.skipped(record)
                    else:
                        report.invalid(record)
                progress(batch.rows_done)

        replaced = serviceability_replace(valid_rows(), actor=actor)
        report.message = f"{replaced:,} previous serviceability rows were replaced."


IMPORTERS: dict[str, type[Importer]] = {
    "ORDERS": OrderImporter,
    "INVENTORY": InventoryImporter,
    "SERVICEABILITY": ServiceabilityImporter,
}
COLUMNS = {kind: cls.columns for kind, cls in IMPORTERS.items()}
