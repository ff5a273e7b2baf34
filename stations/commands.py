"""The printable sheet of the stations' command barcodes, so staff never need the mouse:
one Code 128 per command word, large enough for a handheld's scanner at arm's length."""

from __future__ import annotations

from reportlab.lib.pagesizes import A4

from documents.render.draw import code128, new_canvas, text

from .scans import CANCEL, CLOSE, SPLIT, UNDO, VALIDATE

COMMAND_HELP = {
    VALIDATE: "Packing: every unit scanned, invoice and label the shipment (or Enter).",
    UNDO: "Packing: take back the last unit scanned.",
    SPLIT: "Packing, supervisors: split the units not scanned off into a new shipment.",
    CANCEL: "Leave the shipment (or the manifest): nothing changes on it.",
    CLOSE: "Manifest handover: close the manifest, dispatch its parcels.",
    "GOOD": "Putaway: the next units go in as good (sellable) stock.",
    "BAD": "Putaway: the next units go in as bad (damaged) stock.",
}


def command_sheet_pdf() -> bytes:
    """One A4 page: each command's word, what it does and its barcode."""
    canvas, buffer = new_canvas(A4, "Scan station commands")
    width, height = A4
    text(canvas, 40, height - 60, "Scan station commands", size=20, bold=True)
    top = height - 90
    for word, meaning in COMMAND_HELP.items():
        text(canvas, 40, top - 20, word, size=16, bold=True)
        text(canvas, 40, top - 36, meaning, size=10)
        code128(canvas, word, 40, top - 98, width - 80, 52, digit_size=12, max_bar=3)
        top -= 104  # seven commands fit on the page
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
