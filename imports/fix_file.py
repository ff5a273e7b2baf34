"""The rows to fix (issue 15): the upload's own rows that were not imported, exactly as they
were, with an `errors` column saying why; staff correct the cells in a spreadsheet and upload
this file back as it is (the importers ignore the `errors` column). Every row of an invalid
order goes in, so an order comes back whole. Cells a spreadsheet would run as formulas are
escaped as in every file we write; the importers read them back unescaped."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from .importers.base import Importer
from .readers import RowError, normalise_header
from .writers import BOM, safe_cell

ERRORS_COLUMN = "errors"


def fix_file_bytes(
    importer: Importer, open_file: Callable, name: str, bad_rows: dict[int, list[str]]
) -> bytes | None:
    """The CSV of the rows to fix, or None when there is none (one more read of the file)."""
    if not bad_rows:
        return None
    out = io.StringIO()
    writer = csv.writer(out)
    binary = open_file()
    try:
        header, records = importer.open_records(binary, name)
        names = header.names
        keep = [i for i, cell in enumerate(names) if normalise_header(cell) != ERRORS_COLUMN]
        writer.writerow([names[i] for i in keep] + [ERRORS_COLUMN])
        written, number = 0, 1
        for record in records:
            number += 1
            if number not in bad_rows:
                continue
            cells = [] if isinstance(record, RowError) else record
            row = [safe_cell(cells[i]) if i < len(cells) else "" for i in keep]
            writer.writerow(row + [safe_cell("; ".join(bad_rows[number]) or "see its order")])
            written += 1
    finally:
        binary.close()
    return (BOM + out.getvalue()).encode("utf-8") if written else None
