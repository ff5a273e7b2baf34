"""What every kind of import shares: records, batches, the checking of cells, the importer.

A record is one thing to import (an order and its rows, a stock row, a serviceability row):
new, already in the database (skipped), or invalid with its errors. An importer reads a file a
row at a time and hands out batches of checked records; the same pass serves the preview
(nothing is written) and the import (valid records go to the services a batch at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from uniware.core.actors import Actor

from .. import parsing
from ..models import ImportJob
from ..readers import (
    ROW_COLUMN,
    Header,
    RawRow,
    RowError,
    Table,
    open_records,
    open_table,
    shown,
)
from ..resources import Column, aliases_of

if TYPE_CHECKING:
    from .reporter import Reporter

NEW, SKIPPED, INVALID = "new", "skipped", "invalid"

Check = tuple[str, parsing.Parser, int]  # column, parser, plain length (`Column.check`)


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


Progress = Callable[[int], None]  # data rows done so far: the job's progress and heartbeat


class Importer:
    """A kind of import: its file's columns (from its resource) and how its records are read,
    checked and written."""

    kind: str
    columns: list[Column]

    @classmethod
    def header_rules(cls) -> dict[str, Any]:
        """How a file's header is matched to the columns (for `readers`)."""
        return {
            "known": [c.name for c in cls.columns],
            "aliases": aliases_of(cls.columns),
            "required": [c.name for c in cls.columns if c.required],
        }

    def open(self, binary, name: str) -> Table:
        return open_table(binary, name, **self.header_rules())

    def open_records(self, binary, name: str) -> tuple[Header, Iterator[list[str] | RowError]]:
        return open_records(binary, name, **self.header_rules())

    def batches(
        self, open_file: Callable[[], Any], name: str
    ) -> tuple[Table, Generator[Batch, None, None]]:
        """The header, and the records in batches (a generator: close it when stopping)."""
        raise NotImplementedError

    def run(
        self,
        batches: Iterable[Batch],
        *,
        actor: Actor,
        report: Reporter,
        progress: Progress,
        job: ImportJob | None = None,
    ) -> None:
        """Import the valid records; report the others."""
        raise NotImplementedError


def data_rows(rows: Iterator[RawRow], counter: list[int]) -> Iterator[RawRow]:
    """Rows that are not blank; counter[0] counts them (progress)."""
    for row in rows:
        if row.is_blank:
            continue
        counter[0] += 1
        yield row


def check_cell(record: Record, row: int, column: str, raw: str, parse: parsing.Parser) -> Any:
    """The value of a cell, or None with the error reported on the record."""
    try:
        return parse(raw)
    except parsing.CellError as exc:
        record.error(row, column, raw, str(exc))
        return None


def check_cells(record: Record, row: RawRow, checks: tuple[Check, ...]) -> list:
    """`check_cell` of several columns of a row in one call (a call per cell is much of the
    cost of a row): their values in order, None for the wrong ones (reported on the record).

    A non-zero plain length says the parser is one of `parsing.text_of` or `parsing.code_of`
    with that max_length: both return a plain value (printable ASCII, starting with neither a
    space nor a quote, not too long) unchanged, so it is taken without the call."""
    n, get = row.number, row.values.get
    out: list = []
    append = out.append
    for column, parse, plain in checks:
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
        except parsing.CellError as exc:
            record.error(n, column, raw, str(exc))
            append(None)
    return out


def checks_of(columns: Iterable[Column], *names: str) -> tuple[Check, ...]:
    """The checks of the named columns, in that order."""
    by_name = {c.name: c for c in columns}
    return tuple(by_name[name].check for name in names)
