"""What an import pass found, record by record: counts, the preview's samples, and the
row-level report (CSV) written as it goes, so nothing grows with the file."""

from __future__ import annotations

import csv
from typing import TextIO

from ..readers import RowError, shown
from ..writers import safe_cell
from .base import NEW, SKIPPED, Record

SAMPLE_ERRORS = 200  # errors kept for the preview (all of them go to the report)
SAMPLE_RECORDS = 20  # new and skipped records described on the preview


class Reporter:
    """Counts records and writes every problem to the row-level report as it goes; only the
    first few examples are kept, for the preview."""

    HEADER = ["row", "column", "value", "error"]

    def __init__(self, out: TextIO | None = None) -> None:
        self.writer = csv.writer(out) if out is not None else None
        if self.writer is not None:
            self.writer.writerow(self.HEADER)
        self.error_count = 0
        self.invalid_count = 0
        self.new_count = 0
        self.skipped_count = 0
        self.created_count = 0
        self.failed_count = 0
        self.errors: list[list] = []  # the first SAMPLE_ERRORS errors, for the preview
        self.skipped_sample: list[str] = []
        self.new_sample: list[str] = []
        self.message = ""  # the importer's closing remark (shown with the counts)
        self.ignored: list[str] = []  # header cells of columns nobody reads
        self.rows = 0  # data rows read
        # row number -> its problems, for the file of rows to fix (`imports.fix_file`): every
        # row of an invalid or failed record, so an order goes back whole
        self.bad_rows: dict[int, list[str]] = {}

    def _write(self, row: int, column: str, value: str, message: str) -> None:
        if self.writer is not None:
            self.writer.writerow([row, column, safe_cell(value), safe_cell(message)])

    def error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < SAMPLE_ERRORS:
            self.errors.append(error.as_list())
        self._write(*error.as_list())
        if error.row > 1:
            self.bad_rows.setdefault(error.row, []).append(f"{error.column}: {error.message}")

    def _keep_rows(self, record: Record) -> None:
        for row in range(record.first_row, record.last_row + 1):
            self.bad_rows.setdefault(row, [])

    def invalid(self, record: Record) -> None:
        self.invalid_count += 1
        for error in record.errors:
            self.error(error)
        self._keep_rows(record)

    def new(self, record: Record) -> None:
        self.new_count += 1
        if len(self.new_sample) < SAMPLE_RECORDS:
            self.new_sample.append(record.describe())

    def skipped(self, record: Record) -> None:
        self.skipped_count += 1
        if len(self.skipped_sample) < SAMPLE_RECORDS:
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
        self._keep_rows(record)

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

    def not_written(self, record: Record) -> bool:
        """The import: report a record that is skipped or invalid; True when it is."""
        if record.state == NEW:
            return False
        if record.state == SKIPPED:
            self.skipped(record)
        else:
            self.invalid(record)
        return True
