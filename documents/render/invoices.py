"""A4 tax invoices and credit notes: a Django template writes Typst markup, Typst typesets it.

The template (`documents/invoice.typ`) is a Django template so a seller can override it (a
file of the same name in the project's templates/ folder wins over the app's); what it emits is
Typst markup, compiled in-process by the `typst` package (the Rust compiler). Up to CHUNK
invoices are ONE Typst document, a page break between invoices, so fonts are loaded and
embedded once per chunk, not per invoice. See README "Documents" for the engines measured and
why this one.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import segno
import typst
from django.template import Context, engines

from ..data import InvoiceDoc
from ..pdf import merge_pdfs, split_at_bookmarks
from .fonts import BOLD, REGULAR, font_path

TEMPLATE = "documents/invoice.typ"
# What Typst code may read (`image("x.png")`, `read(...)`): only the app's template folder, not
# the working directory; data reaches the document through the template, escaped.
TYPST_ROOT = Path(__file__).resolve().parent.parent / "templates" / "documents"
CHUNK = 25  # invoices per Typst compile: Typst holds ~2 MB per invoice until the compile ends
EVICT_AGE = 10  # the binding evicts Typst's memo cache entries unused for this many compiles
_local = threading.local()


def render_invoices(docs: Iterable[InvoiceDoc], *, template: str = TEMPLATE) -> bytes:
    """One A4 PDF holding every invoice / credit note, in the order given.

    Up to CHUNK invoices are one Typst document; larger batches are compiled chunk by chunk
    (each followed by `forget_layouts`, so memory stays that of one chunk) and merged.
    """
    docs = list(docs)
    if not docs:
        raise ValueError("render_invoices needs at least one invoice")
    parts = []
    for start in range(0, len(docs), CHUNK):
        chunk = docs[start : start + CHUNK]
        parts.append(typst_to_pdf(invoice_markup(chunk, template=template)))
        if len(chunk) > 1:
            forget_layouts()
    return parts[0] if len(parts) == 1 else merge_pdfs(parts)


def render_invoice_files(docs: Iterable[InvoiceDoc], *, template: str = TEMPLATE) -> list[bytes]:
    """Each invoice's own PDF (to store: a re-print must give the same bytes), at bulk speed.

    Up to CHUNK invoices are compiled as one document, then split where each invoice begins:
    the base template's loop puts a hidden bookmark (a PDF outline entry) on each invoice's
    first page. A template that replaces the whole document and leaves no such bookmarks is
    compiled one invoice at a time instead (same files, slower).
    """
    docs = list(docs)
    files: list[bytes] = []
    for start in range(0, len(docs), CHUNK):
        chunk = docs[start : start + CHUNK]
        if len(chunk) == 1:
            files.append(typst_to_pdf(invoice_markup(chunk, template=template)))
            continue
        parts = split_at_bookmarks(typst_to_pdf(invoice_markup(chunk, template=template)))
        forget_layouts()
        if len(parts) != len(chunk):
            parts = [typst_to_pdf(invoice_markup([doc], template=template)) for doc in chunk]
        files += parts
    return files


def invoice_markup(docs: Sequence[InvoiceDoc], *, template: str = TEMPLATE) -> str:
    """The template rendered for these invoices: the Typst source the compiler receives.

    Autoescape is off: HTML escaping means nothing to Typst (it would print `&amp;`); the
    templates escape data for Typst with the `typst` filter instead.
    """
    context = {
        "invoices": [invoice_context(doc) for doc in docs],
        "title": docs[0].number if len(docs) == 1 else f"{len(docs)} invoices",
    }
    compiled = engines["django"].engine.get_template(template)
    return compiled.render(Context(context, autoescape=False))


def invoice_context(doc: InvoiceDoc) -> dict[str, Any]:
    """What the template needs beyond the dataclass: tax columns present, rows, QR image."""
    names = ["IGST"] if doc.inter_state else ["CGST", "SGST"]
    if doc.totals.cess or any(line.cess for line in doc.lines):
        names.append("Cess")
    keys = [name.lower() for name in names]
    return {
        "doc": doc,
        "qr_svg": qr_svg(doc.qr_text),
        "parties": (doc.buyer, doc.ship_to),
        "taxes": names,
        "lines": [
            {"line": line, "taxes": [(getattr(line, f"{k}_rate"), getattr(line, k)) for k in keys]}
            for line in doc.lines
        ],
        "total_taxes": [
            (name, getattr(doc.totals, k)) for name, k in zip(names, keys, strict=True)
        ],
        "summary_taxes": names,
        "hsn_rows": [
            {"row": row, "amounts": [getattr(row, k) for k in keys]} for row in doc.hsn_summary
        ],
    }


def qr_svg(text: str) -> str:
    """The QR of the invoice reference as SVG text (vector in the PDF; no file, no network)."""
    out = io.BytesIO()
    # A fixed mask: choosing the "best" of 8 costs segno 3 ms per QR in Python (most of an
    # invoice's Python time); any mask is a valid symbol and zbar reads these at 150 dpi.
    segno.make(text, error="m", mask=0, micro=False).save(
        out, kind="svg", border=1, xmldecl=False, svgns=True, svgclass=None, lineclass=None
    )
    return out.getvalue().decode()


@cache
def _font_dirs() -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(font_path(name).parent) for name in (REGULAR, BOLD)))


def _compiler() -> typst.Compiler:
    """One compiler per thread: its font book is read once; system fonts are not scanned.

    Only DejaVu Sans' folder is given, so an invoice prints the same on every host (and ₹ has
    its glyph); Typst's own embedded fonts stay available for a seller's template.
    """
    compiler = getattr(_local, "compiler", None)
    if compiler is None:
        compiler = _local.compiler = typst.Compiler(
            root=str(TYPST_ROOT), font_paths=list(_font_dirs()), ignore_system_fonts=True
        )
    return compiler


def typst_to_pdf(markup: str) -> bytes:
    """Compile Typst source to PDF bytes; a template error names Typst's message and hints.

    The creation date is fixed so the same invoices give the same bytes (re-prints of a stored
    invoice are its stored file anyway). No tagged-PDF structure: it made files 4x larger and
    compiles ~10 % slower, for paper that goes in a box .
    """
    try:
        return _compiler().compile(markup.encode(), format="pdf", timestamp=0, pdf_tags=False)
    except typst.TypstError as error:
        hints = "; ".join(error.hints)
        raise RuntimeError(
            f"The invoice template did not compile: {error.message}"
            + (f" (hint: {hints})" if hints else "")
        ) from error


def forget_layouts() -> None:
    """Drop what Typst memoized while compiling the last documents.

    Typst caches layouts process-wide for incremental compiles; the binding keeps the entries
    of the last EVICT_AGE compiles. That is ~2 MB per invoice: without this a worker would hold
    the last 10 chunks (250 invoices, ~500 MB). Empty compiles age them out; single-invoice
    compiles skip it (10 invoices' worth is small).
    """
    compiler = _compiler()
    for _ in range(EVICT_AGE):
        compiler.compile(b"", format="svg")
