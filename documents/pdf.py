"""Whole-PDF operations (pikepdf, i.e. qpdf in C++): merging, splitting and counting pages.

pikepdf merges 100 invoices in ~0.1 s where pypdf took ~0.9 s (measured side by side)."""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import pikepdf

# Source PDFs a PdfSpool keeps open before it writes what it gathered to a temporary file:
# ~100 stored invoices (each embeds its own fonts), or the chunks of a 500-invoice first print.
SPOOL_BYTES = 4 * 1024 * 1024


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


def split_at_bookmarks(pdf: bytes) -> list[tuple[range, bytes]]:
    """One file per top-level bookmark, with the pages it was taken from: its pages up to the
    next bookmark's (each file keeps the bookmark's title as its title). Pages before the first
    bookmark are dropped."""
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
            files.append((range(first, end), out.getvalue()))
        return files


class PdfSpool:
    """Pages of many PDFs gathered into one, in bounded memory, each font embedded once.

    qpdf copies a source's pages lazily: the source must stay open until the result is saved.
    So once SPOOL_BYTES of sources are open, what was gathered is written to a temporary file
    and they are closed; `result()` merges those files (qpdf reads them from disk).

    Fonts: a page whose font has the same content as one already gathered (`content_key`: a
    stored invoice carries its own copy of the fonts of the chunk it was compiled in, so ten
    stored invoices share one) uses that one. Re-printing 500 stored invoices this way gives a
    3.7 MB file instead of 18 MB, and qpdf holds ~15 KB per page instead of ~150 KB (a font's
    widths are hundreds of objects). A result made of one whole source is that source's bytes,
    untouched (a stored invoice re-printed alone).
    """

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="pdf-spool-")
        self._files: list[Path] = []
        self._gathered = pikepdf.Pdf.new()
        self._sources: list[pikepdf.Pdf] = []
        self._last: tuple[bytes, pikepdf.Pdf] | None = None
        self._held = 0
        self._sole: bytes | None = None  # the only source so far, when added whole
        self._added = 0
        self._fonts: dict[bytes, pikepdf.Object] = {}  # content key: the font in the result
        self._keys: dict[tuple[int, int], bytes] = {}  # the last source's fonts: content keys

    def __enter__(self) -> PdfSpool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error, trace: TracebackType) -> None:
        self.close()

    def add(self, pdf: bytes, pages: range | None = None) -> None:
        """Append `pages` of `pdf` (all of them by default)."""
        source = self._open(pdf)
        whole = pages is None or pages == range(len(source.pages))
        self._sole = pdf if whole and self._added == 0 else None
        self._added += 1
        chosen = source.pages if pages is None else source.pages[pages.start : pages.stop]
        for page in chosen:
            known, new = self._sort_fonts(page, source)
            self._gathered.pages.append(page)
            fonts = self._gathered.pages[-1].obj.get("/Resources", {}).get("/Font")
            for name, font in known.items():
                fonts[name] = font
            for name, key in new.items():
                self._fonts.setdefault(key, fonts[name])

    def _sort_fonts(self, page: pikepdf.Page, source: pikepdf.Pdf) -> tuple[dict, dict]:
        """The page's fonts already in the result (same content, from another source: each
        stored invoice embeds its own copy of its chunk's fonts), taken off the page before it
        is copied, so it uses those; and the others with their content keys."""
        fonts = page.obj.get("/Resources", {}).get("/Font")
        known, new = {}, {}
        for name, font in list(fonts.items()) if fonts is not None else ():
            if font.objgen not in self._keys:
                self._keys[font.objgen] = content_key(font, source)
            key = self._keys[font.objgen]
            if key in self._fonts:
                known[name] = self._fonts[key]
                del fonts[name]
            else:
                new[name] = key
        return known, new

    def result(self) -> bytes:
        """The one PDF of every page added, in order."""
        if self._sole is not None:
            return self._sole
        if not self._files:  # everything is still in memory: no temporary file
            out = io.BytesIO()
            self._gathered.save(out)
            return out.getvalue()
        if len(self._gathered.pages):
            self._spill()
        if len(self._files) == 1:
            return self._files[0].read_bytes()
        merged = Path(self._folder.name) / "merged.pdf"
        merge_pdf_files(self._files, merged)
        return merged.read_bytes()

    def close(self) -> None:
        self._close_sources()
        self._gathered.close()
        self._folder.cleanup()

    def _open(self, pdf: bytes) -> pikepdf.Pdf:
        if self._last is not None and self._last[0] is pdf:
            return self._last[1]
        if self._held + len(pdf) > SPOOL_BYTES and self._sources:
            self._spill()
        source = pikepdf.Pdf.open(io.BytesIO(pdf))
        self._sources.append(source)
        self._last, self._keys = (pdf, source), {}
        self._held += len(pdf)
        return source

    def _spill(self) -> None:
        path = Path(self._folder.name) / f"{len(self._files):06d}.pdf"
        self._gathered.save(path)
        self._files.append(path)
        self._gathered.close()
        self._gathered = pikepdf.Pdf.new()
        self._fonts = {}
        self._close_sources()

    def _close_sources(self) -> None:
        for source in self._sources:
            source.close()
        self._sources, self._last, self._held = [], None, 0


_REFERENCE = re.compile(rb"(\d+) (\d+) R\b")


def content_key(obj: pikepdf.Object, owner: pikepdf.Pdf) -> bytes:
    """A digest of an object of `owner` and of everything it refers to, by content, not by
    object number: two fonts with the same key are the same font, whichever file they are in."""
    return _content(obj, owner, {})


def _content(obj: pikepdf.Object, owner: pikepdf.Pdf, seen: dict[tuple, bytes]) -> bytes:
    if obj.is_indirect and obj.objgen in seen:
        return seen[obj.objgen]
    if obj.is_indirect:
        seen[obj.objgen] = b"(a reference back)"

    def referred(match: re.Match) -> bytes:
        referred_to = owner.get_object(int(match[1]), int(match[2]))
        return _content(referred_to, owner, seen).hex().encode()

    stream = isinstance(obj, pikepdf.Stream)
    text = obj.stream_dict.unparse() if stream else obj.unparse(resolved=True)
    digest = hashlib.sha256(_REFERENCE.sub(referred, text))
    if stream:
        digest.update(obj.read_raw_bytes())
    key = digest.digest()
    if obj.is_indirect:
        seen[obj.objgen] = key
    return key
