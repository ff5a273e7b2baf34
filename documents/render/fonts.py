"""Fonts with the rupee sign (U+20B9), found on the machine and registered with ReportLab once.

The 14 standard PDF fonts have no ₹ glyph: a label printed in Helvetica shows a box where the
COD amount's symbol should be. Debian's fonts-dejavu-core ships DejaVu Sans, which has it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

REGULAR = "DocSans"
BOLD = "DocSans-Bold"
FILES = {REGULAR: "DejaVuSans.ttf", BOLD: "DejaVuSans-Bold.ttf"}
SEARCH_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/local/share/fonts/dejavu",
    "/Library/Fonts",
)


class FontMissing(RuntimeError):
    """The documents' font is not installed: printing would lose the ₹ sign."""


def font_dirs() -> list[Path]:
    """`DOCUMENTS_FONT_DIR` first (a deployment's own fonts), then the usual system places."""
    extra = os.environ.get("DOCUMENTS_FONT_DIR")
    return [Path(d) for d in ((extra,) if extra else ()) + SEARCH_DIRS]


@cache
def font_path(name: str) -> Path:
    """The file of REGULAR or BOLD; a clear error naming the Debian package when missing."""
    filename = FILES[name]
    for directory in font_dirs():
        candidate = directory / filename
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in font_dirs())
    raise FontMissing(
        f"Font {filename} (DejaVu Sans, needed for the ₹ sign) not found in {searched}: "
        "install Debian's fonts-dejavu-core (apt-get install fonts-dejavu-core) "
        "or set DOCUMENTS_FONT_DIR to a folder holding it"
    )


@cache
def register_reportlab_fonts() -> tuple[str, str]:
    """Register DejaVu Sans (regular, bold) with ReportLab once per process."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for name in (REGULAR, BOLD):
        pdfmetrics.registerFont(TTFont(name, str(font_path(name))))
    addMapping(REGULAR, 0, 0, REGULAR)
    addMapping(REGULAR, 1, 0, BOLD)
    return REGULAR, BOLD
