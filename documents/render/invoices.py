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
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import islice
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
# Invoices per Typst compile (its fonts embedded once). Typst holds ~2 MB per invoice until the
# compile is forgotten; the CPU per invoice was the same, within noise, for 10, 15, 20, 25 and 50
# (measured), and a 500-invoice first print peaked at 205 MB with 10, 214 with 15, 226 with 20.
CHUNK = 10
EVICT_AGE = 10  # the binding evicts Typst's memo cache entries unused for this many compiles
_local = threading.local()
_thread_lock = threading.Lock()
_thread: tuple[int, ThreadPoolExecutor] | None = None


@dataclass(frozen=True)
class CompiledInvoice:
    """One invoice of a bulk compile: its own file, and where its pages are in its chunk."""

    file: bytes  # its own PDF: what is stored, what a re-print returns
    chunk: bytes  # the PDF it was compiled in, shared by the chunk (fonts embedded once)
    pages: range | None  # its pages in `chunk` (None: all of them)


def render_invoices(docs: Iterable[InvoiceDoc], *, template: str = TEMPLATE) -> bytes:
    """One A4 PDF holding every invoice / credit note, in the order given.

    Up to CHUNK invoices are one Typst document; larger batches are compiled chunk by chunk
    (each followed by `_forget_layouts`, so memory stays that of one chunk) and merged.
    """
    docs = list(docs)
    if not docs:
        raise ValueError("render_invoices needs at least one invoice")
    parts = []
    for chunk in _chunks(docs, CHUNK):
        parts.append(_on_typst_thread(_compile, invoice_markup(chunk, template=template), chunk))
    return parts[0] if len(parts) == 1 else merge_pdfs(parts)


def compile_invoices(
    docs: Iterable[InvoiceDoc], *, template: str = TEMPLATE
) -> Iterator[list[CompiledInvoice]]:
    """Each invoice's own PDF (to store: a re-print must give the same bytes) at bulk speed,
    a chunk at a time, lazily (`docs` may be read from the database as chunks are asked for).

    CHUNK invoices are compiled as one document, then split where each invoice begins: the
    base template's loop puts a hidden bookmark (a PDF outline entry) on each invoice's first
    page. Typst runs in its own thread (it releases the GIL): while it compiles a chunk, this
    thread renders the next chunk's markup, splits the last one and the caller stores it. A
    template that leaves no such bookmarks is compiled one invoice at a time (same files,
    slower).
    """
    typst_thread = _typst_thread()
    pending = None
    for chunk in _chunks(docs, CHUNK):
        compiling = typst_thread.submit(_compile, invoice_markup(chunk, template=template), chunk)
        if pending is not None:
            yield _split(*pending, template=template)
        pending = (chunk, compiling)
    if pending is not None:
        yield _split(*pending, template=template)


def _split(chunk: list[InvoiceDoc], compiling: Future, *, template: str) -> list[CompiledInvoice]:
    """The chunk's compiled PDF, once Typst is done with it, cut into each invoice's file."""
    pdf = compiling.result()
    if len(chunk) == 1:
        return [CompiledInvoice(pdf, pdf, None)]
    parts = split_at_bookmarks(pdf)
    if len(parts) == len(chunk):
        return [CompiledInvoice(file, pdf, pages) for pages, file in parts]
    alone = (typst_to_pdf(invoice_markup([doc], template=template)) for doc in chunk)
    return [CompiledInvoice(file, file, None) for file in alone]


def _chunks(docs: Iterable[InvoiceDoc], size: int) -> Iterator[list[InvoiceDoc]]:
    docs = iter(docs)
    while chunk := list(islice(docs, size)):
        yield chunk


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


def _typst_thread() -> ThreadPoolExecutor:
    """The one thread of this process that runs Typst: its compiler (and the fonts it parsed)
    lives as long as the process, and one compile at a time bounds Typst's memory.

    Typst does not survive a fork: in a process forked from one that has compiled, the next
    compile never returns (measured, with or without this thread). Celery's prefork pool forks
    its children before they run a task, so each compiles in its own; anything else that forks
    after printing gets this error instead of a worker hung for good."""
    global _thread
    with _thread_lock:
        if _thread is not None and _thread[0] != os.getpid():
            raise RuntimeError(
                "Typst cannot compile in a process forked from one that already compiled: "
                "fork before printing (or start a fresh process)"
            )
        if _thread is None:
            _thread = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="typst"))
        return _thread[1]


def _on_typst_thread(function, *args):
    return _typst_thread().submit(function, *args).result()


def typst_to_pdf(markup: str) -> bytes:
    """Compile Typst source to PDF bytes; a template error names Typst's message and hints."""
    return _on_typst_thread(_compile, markup, ())


def _compile(markup: str, docs: Sequence[InvoiceDoc]) -> bytes:
    """Runs on the Typst thread. The creation date is fixed so the same invoices give the same
    bytes (re-prints of a stored invoice are its stored file anyway). No tagged-PDF structure:
    it made files 4x larger and compiles ~10 % slower, for paper that goes in a box. A chunk of
    several invoices is forgotten after it (`_forget_layouts`)."""
    try:
        pdf = _compiler().compile(markup.encode(), format="pdf", timestamp=0, pdf_tags=False)
    except typst.TypstError as error:
        hints = "; ".join(error.hints)
        raise RuntimeError(
            f"The invoice template did not compile: {error.message}"
            + (f" (hint: {hints})" if hints else "")
        ) from error
    if len(docs) > 1:
        _forget_layouts()
    return pdf


def _forget_layouts() -> None:
    """Drop what Typst memoized while compiling the last documents.

    Typst caches layouts process-wide for incremental compiles; the binding keeps the entries
    of the last EVICT_AGE compiles. That is ~2 MB per invoice: without this a worker would hold
    the last 10 chunks. Empty compiles age them out; single-invoice compiles skip it (10
    invoices' worth is small).
    """
    compiler = _compiler()
    for _ in range(EVICT_AGE):
        compiler.compile(b"", format="svg")
