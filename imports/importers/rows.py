"""Imports where each row is one record (stock, serviceability): read in batches of rows."""

from __future__ import annotations

from collections.abc import Iterator

from ..readers import RawRow
from .base import INVALID, Batch, Importer, Record, data_rows

ROW_BATCH = 1000  # rows per batch


class RowImporter(Importer):
    """An importer whose records are single rows; `_record` checks one, `_finish` a batch."""

    def batches(self, open_file, name):
        binary = open_file()
        table = self.open(binary, name)

        def generate() -> Iterator[Batch]:
            counter = [0]
            pending: list[Record] = []
            try:
                for row in data_rows(table.rows, counter):
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
        """Checks that need the database, once per batch."""


def row_record(row: RawRow) -> Record:
    """The record of a row, invalid already when the row could not be read."""
    record = Record(row.number, row.number, f"row {row.number}")
    record.errors += row.errors
    if row.errors:
        record.state = INVALID
    return record


def looked_up(record: Record, row: RawRow, column: str, table: dict, what: str):
    """The object a code cell names in `table` (keys upper-case), or None with the error."""
    code = row.values.get(column, "")
    found = table.get(code.upper())
    if not code:
        record.error(row.number, column, "", "required value is missing")
    elif found is None:
        record.error(row.number, column, code, f"unknown {what}")
    return found
