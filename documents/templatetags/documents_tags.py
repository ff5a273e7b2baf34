"""Filters for invoice templates (and sellers' overrides): Typst escaping, Indian money, rates.

The invoice templates emit Typst markup, not HTML, and are rendered with autoescape off (HTML
escaping would print `&amp;`). Every value that comes from data goes through `typst` (in
markup) or `typst_str` (as a string in Typst code): a buyer named `*#eval("...")` must print
as those characters, not run as markup or code.
"""

from __future__ import annotations

import string
from decimal import Decimal

from django import template

from ..words import format_inr

register = template.Library()

# Typst markup gives a meaning to most ASCII punctuation (`#` code, `*` strong, `_` emphasis,
# `$` math, `[ ]` content, `< >` labels, `@` references, `~` nbsp, `//` comments, `--` dashes,
# `...` ellipsis, `"` `'` smart quotes, `\` escapes, `=` `-` `+` `1.` at a line start, `http://`
# links). A backslash before ANY punctuation character prints it literally, so every one is
# escaped rather than a list that a Typst release could outgrow. Line breaks become spaces (a
# blank line would end the paragraph, or the table cell's markup); other controls are dropped.
_MARKUP = {ord(c): "\\" + c for c in string.punctuation}
_MARKUP.update({ord("\n"): " ", ord("\r"): " ", ord("\t"): " "})
_MARKUP.update({c: None for c in (*range(0x20), 0x7F) if c not in (9, 10, 13)})
# Inside a Typst string literal only `\` and `"` are special; controls get escapes.
_STRING = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_STRING.update({c: None for c in (*range(0x20), 0x7F) if c not in (9, 10, 13)})


@register.filter
def typst(value: object) -> str:
    """Text printed literally in Typst markup: `#x` becomes `\\#x`; None prints nothing."""
    return "" if value is None else str(value).translate(_MARKUP)


@register.filter
def typst_str(value: object) -> str:
    """A Typst string literal, quotes included, for text used in Typst code."""
    return '"' + ("" if value is None else str(value)).translate(_STRING) + '"'


@register.filter
def inr(value: Decimal | None) -> str:
    """`1,23,456.00`: Indian digit grouping, two decimals; empty for None. Safe in Typst."""
    return "" if value is None else format_inr(Decimal(value))


@register.filter
def rate(value: Decimal | None) -> str:
    """A tax rate without trailing zeros: 18, 2.5, 0.25."""
    if value is None:
        return ""
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
