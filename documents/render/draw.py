"""Small drawing helpers shared by the ReportLab canvas layouts (labels, picklists, manifests)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import TypeVar

from reportlab.graphics.barcode.code128 import Code128
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from .fonts import BOLD, REGULAR, register_reportlab_fonts

T = TypeVar("T")


def new_canvas(pagesize: tuple[float, float], title: str) -> tuple[Canvas, io.BytesIO]:
    """One canvas for a whole batch: fonts are registered (and embedded) once per PDF."""
    register_reportlab_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=pagesize, pageCompression=1, invariant=1)
    canvas.setTitle(title)
    canvas.setCreator("Uniware OMS documents")
    return canvas, buffer


def render_pages(
    docs: Iterable[T],
    pagesize: tuple[float, float],
    title: str,
    draw: Callable[[Canvas, T], None],
) -> bytes:
    """Draw every document into one PDF; `draw` ends each of its pages with showPage()."""
    canvas, buffer = new_canvas(pagesize, title)
    for doc in docs:
        draw(canvas, doc)
    canvas.save()
    return buffer.getvalue()


def fit(text: str, width: float, font: str = REGULAR, size: float = 9) -> str:
    """Cut text with an ellipsis so it fits `width` points: a layout never overflows a box."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def wrap(text: str, width: float, font: str = REGULAR, size: float = 9) -> list[str]:
    """Greedy word wrap to `width` points (addresses on labels)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if stringWidth(candidate, font, size) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return [fit(line, width, font, size) for line in lines]


def text(canvas: Canvas, x: float, y: float, value: str, size: float = 9, bold: bool = False):
    canvas.setFont(BOLD if bold else REGULAR, size)
    canvas.drawString(x, y, value)


def code128(
    canvas: Canvas,
    value: str,
    x: float,
    y: float,
    width: float,
    height: float,
    *,
    digits: bool = True,
    digit_size: float = 9,
    max_bar: float = 1.6,
) -> float:
    """A Code128 barcode fitted into `width`, its digits centred below; returns its width.

    Bars are drawn as vectors (no image step); the narrowest bar is chosen so the symbol,
    quiet zones included, fills the box, capped so short codes do not become huge.
    """
    probe = Code128(value, barWidth=1, barHeight=height, humanReadable=False)
    bar = min(max_bar, width / probe.width)
    symbol = Code128(value, barWidth=bar, barHeight=height, humanReadable=False)
    left = x + (width - symbol.width) / 2
    text_room = digit_size + 2 if digits else 0
    symbol.drawOn(canvas, left, y + text_room)
    if digits:
        canvas.setFont(REGULAR, digit_size)
        canvas.drawCentredString(x + width / 2, y, value)
    return symbol.width
