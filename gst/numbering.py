"""Invoice numbers: CGST Rule 46(b), and the financial year they are unique in.

Rule 46(b): a consecutive serial number of at most 16 characters, of letters, digits, hyphen
'-' and slash '/', unique for a financial year (1 April to 31 March). A series that starts again
at 1 each year must therefore carry the year in its prefix: `{FY}` renders as "26-27".

E-invoicing (the IRP's schema for `DocDtls.No`, ^[A-Z1-9][A-Z0-9/-]{0,15}$) is stricter: no
lower-case letters, and no number starting with '0', '-' or '/'. An issued number can never be
changed, so a series is refused unless its numbers satisfy both.
"""

from __future__ import annotations

from datetime import date

MAX_LENGTH = 16
FY_TOKEN = "{FY}"
_FY_SAMPLE = "26-27"  # what {FY} renders to: five characters, starting with a non-zero digit
_PUNCTUATION = "-/"


def financial_year(day: date) -> str:
    """The Indian financial year `day` falls in: 2 December 2026 and 31 March 2027 -> "26-27"."""
    start = financial_year_start(day).year
    return f"{start % 100:02d}-{(start + 1) % 100:02d}"


def financial_year_start(day: date) -> date:
    """1 April of the financial year `day` falls in."""
    return date(day.year if day.month >= 4 else day.year - 1, 4, 1)


def render_prefix(prefix: str, day: date) -> str:
    """The prefix of numbers taken on `day`: {FY} replaced by the financial year."""
    return prefix.replace(FY_TOKEN, financial_year(day))


def _characters_problem(what: str, text: str) -> str | None:
    """Why `text` (a prefix with {FY} rendered, or a number) has characters Rule 46 or the
    e-invoice schema refuses, or None."""
    found = [
        c
        for c in dict.fromkeys(text)
        if not (c.isascii() and c.isalnum()) and c not in _PUNCTUATION
    ]
    if found:
        listed = ", ".join(repr(c) for c in found)
        return f"{what} may contain only letters, digits, '-' and '/' (found {listed})"
    if any(c.islower() for c in text):
        return f"{what} has lower-case letters, which e-invoices refuse: use capitals"
    if text[:1] in ("0", *_PUNCTUATION):
        return (
            f"{what} starts with {text[0]!r}, which e-invoices refuse: start with a letter or 1-9"
        )
    return None


def sequence_problem(prefix: str, padding: int, *, restarts_yearly: bool) -> str | None:
    """Why a series with this prefix and zero-padding could give an illegal invoice number (or
    repeat one within a financial year), or None."""
    if padding < 1:
        return f"numbers need at least 1 digit (padding is {padding})"
    rendered = prefix.replace(FY_TOKEN, _FY_SAMPLE)
    first_number = rendered + "1".zfill(padding)
    problem = _characters_problem(f"prefix '{prefix}'", rendered)
    if problem is None and not rendered:
        problem = _characters_problem(f"a number without prefix ({first_number})", first_number)
    if problem:
        return problem
    if restarts_yearly and FY_TOKEN not in prefix:
        return (
            f"a sequence that restarts each financial year must carry {FY_TOKEN} in its prefix, "
            "or its numbers repeat across years"
        )
    if len(first_number) > MAX_LENGTH:
        return (
            f"numbers would be up to {len(first_number)} characters (prefix '{prefix}' is "
            f"{len(rendered)}, with {padding} digits); an invoice number may have at most "
            f"{MAX_LENGTH} (CGST Rule 46)"
        )
    return None


def number_problem(number: str) -> str | None:
    """Why a finished invoice number breaks Rule 46 or the e-invoice schema, or None."""
    if not number:
        return "an invoice number may not be empty"
    if len(number) > MAX_LENGTH:
        return (
            f"invoice number '{number}' is {len(number)} characters; "
            f"at most {MAX_LENGTH} (CGST Rule 46)"
        )
    return _characters_problem(f"invoice number '{number}'", number)


def exhausted(padding: int, value: int) -> bool:
    """Whether `value` needs more digits than the series' padding (its numbers would grow
    past the length `sequence_problem` checked)."""
    return len(str(value)) > padding
