"""The orders file: rows of order lines -> orders checked cell by cell -> `orders_create`.

Each row is a line; the rows of one order (same channel and channel order id) must be next to
each other (an export, or a sheet sorted by order, has them so). A first quick pass finds
orders whose rows are scattered, and they are refused as a whole rather than imported in part.
The order's own cells are read from its first row; its other rows repeat them or leave them
empty. Cells are checked against cached maps (channels; SKUs and existing orders once per
batch of orders), and the next batches are read in a thread while this one is written.

The columns, their parsers and what each fills in the service's input are declared once, on
`imports.resources.OrderLineResource`; this module checks the few that need more than their
parser (the channel, the order's key, the date against the clock, the pincode of the country).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError
from django.utils import timezone

from channels.models import Channel
from inventory.models import Sku
from orders.models import Order
from orders.selectors import orders_existing
from orders.services import orders_create
from uniware.core.actors import Actor
from uniware.core.readahead import read_ahead

from .. import parsing
from ..readers import RawRow, RowError, has_extra_cells, shown
from ..resources import LINE_LEVEL, ORDER_COLUMNS, ORDER_LEVEL, order_input
from .base import (
    INVALID,
    NEW,
    SKIPPED,
    Batch,
    Importer,
    Record,
    check_cell,
    check_cells,
    checks_of,
    data_rows,
)
from .reporter import Reporter

ORDER_BATCH = 2000  # orders per orders_create call
UNIT_BATCH = 20_000  # ... or fewer, when they have this many units (memory of the batch)
MAX_ORDER_UNITS = 5000  # units of one order (each is a row, created in one transaction)
SYSTEMIC_FAILURES = 20  # this many orders in a row refused by the database: stop the job

# The checks of the columns, made once, in the order their errors are reported. The channel
# (looked up), order_date (the clock), country and pincode (which depends on the country) are
# checked apart, in `_start`; the order id first of all.
CHECKED_APART = ("channel", "channel_order_id", "order_date", "country", "pincode")
ORDER_KEY = checks_of(ORDER_COLUMNS, "channel_order_id")
ORDER_FIELDS = tuple(c.check for c in ORDER_LEVEL if c.name not in CHECKED_APART)
ORDER_FIELD_NAMES = [name for name, _, _ in ORDER_FIELDS]
LINE_FIELDS = tuple(c.check for c in LINE_LEVEL)
LINE_FIELD_NAMES = [name for name, _, _ in LINE_FIELDS]
ORDER_LEVEL_NAMES = [c.name for c in ORDER_LEVEL]


@dataclass
class OrderData:
    fields: dict[str, Any]  # the order's values by column name (None: the cell was wrong)
    raw: dict[str, str]  # the first row's values (a column missing from the file is absent)
    lines: list[dict] | tuple[dict, ...] = field(default_factory=list)  # a tuple once complete
    line_rows: dict[str, int] = field(default_factory=dict)
    units: int = 0

    @property
    def channel(self) -> Channel | None:
        return self.fields["channel"]

    @property
    def channel_order_id(self) -> str:
        return self.fields["channel_order_id"]


def order_key(values: dict[str, str]) -> tuple[str, str] | None:
    """(channel, channel order id) of a row as written, or None when either is empty."""
    channel = values.get("channel", "").strip().upper()
    order_id = parsing.unescape(values.get("channel_order_id", "").strip())
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
        unescape = parsing.unescape
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

        def parsed() -> Iterator[tuple[list[Record], int]]:
            """Batches as read from the file. No database here: this runs in a thread."""
            counter = [0]
            records = self._orders(data_rows(table.rows, counter), scattered)
            while pending := _take(records):
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
            key = order_key(row.values)
            if key is None:
                orphans.append(_orphan(row))
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
        """An order from its first row: the order's cells, and its first line."""
        n, values = row.number, row.values
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
        (order_id,) = check_cells(record, row, ORDER_KEY)
        if channel is not None and order_id and len(channel.code) + 1 + len(order_id) > 100:
            record.error(
                n,
                "channel_order_id",
                order_id,
                f"is too long: the order code {channel.code}-<id> must fit 100 characters",
            )
        country = (
            check_cell(record, n, "country", values.get("country", ""), parsing.country) or "IN"
        )
        date = partial(parsing.order_date, now=self.now)
        fields: dict[str, Any] = {
            "channel": channel,
            "channel_order_id": order_id or key[1],
            "country": country,
            "order_date": check_cell(record, n, "order_date", values.get("order_date", ""), date),
        }
        fields.update(zip(ORDER_FIELD_NAMES, check_cells(record, row, ORDER_FIELDS), strict=True))
        pincode = partial(parsing.pincode, country=country)
        fields["pincode"] = check_cell(record, n, "pincode", values.get("pincode", ""), pincode)
        record.data = OrderData(fields, values)
        record.summary = _order_summary
        self._add_line(record, row)
        return record

    def _add_row(self, record: Record, row: RawRow) -> None:
        """Another row of the order: its order cells repeat the first row's (or are empty)."""
        n = row.number
        record.last_row = n
        record.rows += 1
        record.errors += row.errors
        if row.errors:
            record.state = INVALID
        data: OrderData = record.data
        get, first_get = row.values.get, data.raw.get
        for column in ORDER_LEVEL_NAMES:
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
        data: OrderData = record.data
        line = dict(zip(LINE_FIELD_NAMES, check_cells(record, row, LINE_FIELDS), strict=True))
        line_id, quantity = line["channel_line_id"], line["quantity"]
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
                    row.values.get("quantity", ""),
                    f"the order has more than {MAX_ORDER_UNITS:,} units; split it",
                )
        if len(data.lines) > MAX_ORDER_UNITS:  # lines of an invalid order are not kept
            return
        line["row"] = n
        data.lines.append(line)

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

    def run(self, batches, *, actor, report, progress, job=None) -> None:
        for batch in batches:
            ready = [r for r in batch.records if not report.not_written(r)]
            if ready:
                self._create(ready, actor, report)
            progress(batch.rows_done)

    def _create(self, records: list[Record], actor: Actor, report: Reporter) -> None:
        """orders_create for the batch; if it refuses (an order created meanwhile by a channel
        sync, say), halve the batch until the refused order is alone, and report it."""
        try:
            orders_create(
                [order_input(r.data.fields, r.data.lines) for r in records],
                actor=actor,
                allocate=True,
            )
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
            self._refused(records[0], exc, report)
            return
        self.db_failures = 0
        report.created(len(records))

    def _refused(self, record: Record, exc: Exception, report: Reporter) -> None:
        """One order the service refused: skipped when it is there meanwhile, else failed."""
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


def _take(records: Iterator[Record]) -> list[Record]:
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


def _orphan(row: RawRow) -> Record:
    """A row without its order's key: reported on its own."""
    orphan = Record(row.number, row.number, f"row {row.number}", state=INVALID)
    orphan.errors += row.errors
    if not row.errors:
        for column in ("channel", "channel_order_id"):
            if not row.values.get(column, "").strip():
                orphan.error(row.number, column, "", "required value is missing")
    return orphan


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
    """Whether another row's cell of an order column says what the first row's says."""
    if value == first:
        return True
    try:
        if column == "payment_method":
            return parsing.payment_method(value) == parsing.payment_method(first)
        if column == "order_date":
            return parsing.order_date(value) == parsing.order_date(first)
        if column == "pincode":
            return value.replace(" ", "") == first.replace(" ", "")
        if column == "country":
            return parsing.country(value) == parsing.country(first)
    except parsing.CellError:
        return False
    return parsing.unescape(value) == parsing.unescape(first)
