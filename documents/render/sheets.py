"""A4 picklists and manifest handover sheets: tables of rows, each row with its barcode.

Drawn on a ReportLab canvas like the labels (same reasons: speed, memory, vector barcodes).
Every page repeats the header (document code as a barcode) and says "page n of m".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from ..data import ManifestDoc, ManifestRow, PicklistDoc
from ..words import format_inr
from .draw import code128, fit, new_canvas, text
from .fonts import BOLD, REGULAR

MARGIN = 36
WIDTH = A4[0] - 2 * MARGIN
HEADER_H = 92
TABLE_HEAD_H = 18
ROW_H = 40
BOTTOM = MARGIN + 16  # room for the page number


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: float
    align: str = "left"  # left, right, or barcode


@dataclass(frozen=True, slots=True)
class Sheet:
    """What a sheet needs: its header, its columns, its rows' cells and its closing block."""

    title: str
    code: str
    meta: Sequence[str]
    columns: Sequence[Column]
    cells: Sequence[Sequence[str]]
    closing_height: float
    draw_closing: Callable[[Canvas, float], None]


PICK_COLUMNS = (
    Column("#", 22, "right"),
    Column("Shelf", 62),
    Column("SKU", 92),
    Column("Description", 127),
    Column("Qty", 30, "right"),
    Column("Barcode", 145, "barcode"),
    Column("Picked", 45),
)
# The AWB column is wide enough that zbar reads every AWB of a sheet rasterised at 200 dpi
# (at 180 pt, 4 % of 18-character AWBs were missed: modules under 2 pixels).
MANIFEST_COLUMNS = (
    Column("#", 24, "right"),
    Column("AWB", 220, "barcode"),
    Column("Shipment", 72),
    Column("Order", 108),
    Column("Units", 38, "right"),
    Column("COD (₹)", 61, "right"),
)


def render_picklists(docs: Iterable[PicklistDoc]) -> bytes:
    """One PDF: each picklist from a new page, rows in the walk order given."""
    return _render(docs, "Picklists", _picklist_sheet)


def render_manifests(docs: Iterable[ManifestDoc]) -> bytes:
    """One PDF: each manifest's handover sheet from a new page, ending with signature boxes."""
    return _render(docs, "Manifests", _manifest_sheet)


def _render(docs: Iterable[Any], title: str, to_sheet: Callable[[Any], Sheet]) -> bytes:
    canvas, buffer = new_canvas(A4, title)
    for doc in docs:
        draw_sheet(canvas, to_sheet(doc))
    canvas.save()
    return buffer.getvalue()


def _picklist_sheet(doc: PicklistDoc) -> Sheet:
    cells = [
        (str(n), r.shelf, r.sku, r.description, str(r.quantity), r.barcode_value, "☐")
        for n, r in enumerate(doc.rows, 1)
    ]
    totals = f"Totals: {len(doc.rows)} lines, {doc.total_skus} SKUs, {doc.total_quantity} units"

    def closing(canvas: Canvas, y: float) -> None:
        text(canvas, MARGIN, y - 16, totals, 11, bold=True)
        text(canvas, MARGIN, y - 40, "Picked by: ____________________    Time: __________", 9)

    return Sheet(
        title="PICKLIST",
        code=doc.code,
        meta=(
            f"Facility: {doc.facility}",
            f"Created: {doc.created:%d %b %Y %H:%M}",
            "Rows in walk order (shelf sequence)",
        ),
        columns=PICK_COLUMNS,
        cells=cells,
        closing_height=50,
        draw_closing=closing,
    )


def _manifest_cells(rows: Sequence[ManifestRow]) -> list[tuple[str, ...]]:
    return [
        (
            str(n),
            r.awb,
            r.shipment_code,
            r.order_code,
            str(r.units),
            format_inr(r.cod_amount) if r.cod_amount else "Prepaid",
        )
        for n, r in enumerate(rows, 1)
    ]


def _manifest_sheet(doc: ManifestDoc) -> Sheet:
    counts = (
        f"Shipments: {doc.shipment_count}    Units: {doc.unit_count}    "
        f"COD shipments: {doc.cod_count} (₹{format_inr(doc.cod_total)})    "
        f"Prepaid: {doc.shipment_count - doc.cod_count}"
    )

    def closing(canvas: Canvas, y: float) -> None:
        text(canvas, MARGIN, y - 16, counts, 10, bold=True)
        _signature_boxes(canvas, y - 30, doc)

    return Sheet(
        title="MANIFEST / HANDOVER SHEET",
        code=doc.code,
        meta=(
            f"Facility: {doc.facility}    Channel: {doc.channel}",
            f"Courier: {doc.provider}",
            f"Created: {doc.created:%d %b %Y %H:%M}",
        ),
        columns=MANIFEST_COLUMNS,
        cells=_manifest_cells(doc.rows),
        closing_height=150,
        draw_closing=closing,
    )


def _signature_boxes(canvas: Canvas, top: float, doc: ManifestDoc) -> None:
    """Two boxes: handed over by the facility, received by the courier (name, count, sign)."""
    box_w, box_h = (WIDTH - 12) / 2, 110
    labels = (
        (f"Handed over by ({doc.facility})", ("Name", "Signature", "Date / time")),
        (f"Received by ({doc.provider})", ("Name", "Shipments received", "Signature")),
    )
    for index, (heading, fields) in enumerate(labels):
        x = MARGIN + index * (box_w + 12)
        canvas.rect(x, top - box_h, box_w, box_h)
        text(canvas, x + 6, top - 14, fit(heading, box_w - 12, BOLD, 9), 9, bold=True)
        for n, name in enumerate(fields):
            y = top - 40 - n * 28
            text(canvas, x + 6, y, f"{name}:", 8)
            canvas.line(x + 90, y - 2, x + box_w - 8, y - 2)


def _pages(sheet: Sheet) -> tuple[int, int]:
    """Rows per page and page count, with room for the closing block on the last page."""
    per_page = int((A4[1] - MARGIN - HEADER_H - TABLE_HEAD_H - BOTTOM) // ROW_H)
    pages = max(1, math.ceil(len(sheet.cells) / per_page))
    used = len(sheet.cells) - (pages - 1) * per_page
    free = A4[1] - MARGIN - HEADER_H - TABLE_HEAD_H - used * ROW_H - BOTTOM
    return per_page, pages + (free < sheet.closing_height)


def draw_sheet(canvas: Canvas, sheet: Sheet) -> None:
    """Header, table pages and the closing block; ends with showPage()."""
    per_page, pages = _pages(sheet)
    for page in range(pages):
        chunk = sheet.cells[page * per_page : (page + 1) * per_page]
        y = _header(canvas, sheet, page + 1, pages)
        y = _table_head(canvas, sheet.columns, y)
        for cells in chunk:
            _row(canvas, sheet.columns, cells, y)
            y -= ROW_H
        if page == pages - 1:
            sheet.draw_closing(canvas, y - 4)
        canvas.showPage()


def _header(canvas: Canvas, sheet: Sheet, page: int, pages: int) -> float:
    top = A4[1] - MARGIN
    text(canvas, MARGIN, top - 18, sheet.title, 16, bold=True)
    text(canvas, MARGIN, top - 36, sheet.code, 12, bold=True)
    for n, line in enumerate(sheet.meta):
        text(canvas, MARGIN, top - 52 - n * 12, fit(line, WIDTH - 200), 9)
    code128(canvas, sheet.code, MARGIN + WIDTH - 190, top - 56, 190, 40, digit_size=9)
    canvas.setFont(REGULAR, 8)
    canvas.drawCentredString(A4[0] / 2, MARGIN, f"{sheet.code} · page {page} of {pages}")
    return top - HEADER_H


def _table_head(canvas: Canvas, columns: Sequence[Column], y: float) -> float:
    canvas.setFillGray(0.88)
    canvas.rect(MARGIN, y - TABLE_HEAD_H, WIDTH, TABLE_HEAD_H, fill=1, stroke=0)
    canvas.setFillGray(0)
    x = MARGIN
    for column in columns:
        _cell(canvas, column, column.title, x, y - 13, bold=True, header=True)
        x += column.width
    return y - TABLE_HEAD_H


def _row(canvas: Canvas, columns: Sequence[Column], cells: Sequence[str], y: float) -> None:
    x = MARGIN
    for column, value in zip(columns, cells, strict=True):
        if column.align == "barcode":
            code128(canvas, value, x + 4, y - ROW_H + 4, column.width - 8, 22, digit_size=7)
        else:
            _cell(canvas, column, value, x, y - ROW_H / 2 - 3)
        x += column.width
    canvas.setLineWidth(0.3)
    canvas.line(MARGIN, y - ROW_H, MARGIN + WIDTH, y - ROW_H)


def _cell(canvas, column: Column, value: str, x: float, y: float, *, bold=False, header=False):
    font = BOLD if bold else REGULAR
    value = fit(value, column.width - 8, font, 9)
    canvas.setFont(font, 9)
    if column.align == "right" and not header:
        canvas.drawRightString(x + column.width - 4, y, value)
    else:
        canvas.drawString(x + 4, y, value)
