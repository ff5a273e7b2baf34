"""Writing CSV and XLSX safely: cells that a spreadsheet would run as formulas are escaped.

A text value starting with =, +, -, @, a tab or a carriage return is written with a leading
apostrophe (OWASP's advice against CSV injection), so "=HYPERLINK(...)" in a customer name
shows as text. Numbers, dates, booleans and number-like text ("-5") are never escaped. Our
importers remove the apostrophe again (`parsing.unescape`): an export imports back unchanged.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import ExportFormat
from .parsing import FORMULA_STARTS

XLSX_MAX_ROWS = 1_048_575  # plus the header
BOM = "\ufeff"  # lets Excel open UTF-8 CSV with the right characters
NUMBER = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")  # "-5" is a number, not a formula


def safe_cell(value: object) -> object:
    """The value to write: formula-looking text escaped, dates in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool | int | float | Decimal):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not NUMBER.match(text):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_chunks(header: list[str], rows: Iterable[list], *, bom: bool = True) -> Iterator[bytes]:
    """UTF-8 CSV, a few hundred rows per chunk (for StreamingHttpResponse or a file)."""
    writer = csv.writer(_Echo())
    buffer = [BOM + writer.writerow(header) if bom else writer.writerow(header)]
    for row in rows:
        buffer.append(writer.writerow([safe_cell(v) for v in row]))
        if len(buffer) >= 500:
            yield "".join(buffer).encode("utf-8")
            buffer = []
    if buffer:
        yield "".join(buffer).encode("utf-8")


def xlsx_write(path_or_file, header: list[str], rows: Iterable[list], *, title: str) -> int:
    """Write an XLSX in openpyxl's write-only mode (rows go to disk as they come): a frozen
    header row with filters, dates as real dates (in the tenant's zone), numbers as numbers,
    so the sheet sorts and sums as staff expect."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.freeze_panes = "A2"
    sheet.append(header)
    count = 0
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, datetime | date):
                cell = WriteOnlyCell(sheet, value=_sheet_date(value))
                cell.number_format = (
                    "yyyy-mm-dd hh:mm" if isinstance(value, datetime) else "yyyy-mm-dd"
                )
                cells.append(cell)
                continue
            value = safe_cell(value)
            if isinstance(value, str):
                value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
            cells.append(value)
        sheet.append(cells)
        count += 1
    if header:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{count + 1}"
    workbook.save(path_or_file)
    return count


def _sheet_date(value: date) -> date:
    """A spreadsheet has no time zones: an aware moment is written in the tenant's zone."""
    if isinstance(value, datetime) and timezone.is_aware(value):
        return timezone.localtime(value).replace(tzinfo=None)
    return value


def write_export(out, fmt: str, header: list[str], rows: Iterable[list], *, title: str) -> int:
    """Write rows as CSV or XLSX into a binary file; returns the rows written."""
    if fmt == ExportFormat.XLSX:

        def capped() -> Iterable[list]:
            for n, row in enumerate(rows, 1):
                if n > XLSX_MAX_ROWS:
                    raise ValidationError(
                        f"More than {XLSX_MAX_ROWS:,} rows do not fit in one XLSX sheet: "
                        "export CSV instead, or filter the list."
                    )
                yield row

        return xlsx_write(out, header, capped(), title=title)
    count = [0]

    def counted() -> Iterable[list]:
        for row in rows:
            count[0] += 1
            yield row

    for chunk in csv_chunks(header, counted()):
        out.write(chunk)
    return count[0]
