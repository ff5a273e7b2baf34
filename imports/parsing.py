"""Turning the text of one cell into a value, or into a message saying what is wrong with it.

Each parser raises `CellError(message)`; the importers add the row number, the column and the
value. Parsers are plain, pure functions on strings (no queries), so checking 100,000 rows costs
about a second. The ones whose values repeat down a file (quantities, prices, dates, pincodes,
payment methods) keep the results of recent distinct values (`lru_cache`: bounded, and only
results are kept; a bad value is parsed again and raises again). Fast paths take the common
case and leave anything unusual to the general code below them, with the same outcome
(tests/test_import_parsing_fast.py compares them).

The columns of each file name their parser (`imports.resources`); `text_of`, `code_of`,
`whole_number` and `one_of` make the parser of a column with its limits. A parser from
`text_of` or `code_of` carries `plain`, its maximum length: both return a plain value (printable
ASCII, starting with neither a space nor a quote, not too long) unchanged, so the importer takes
such a value without the call (`imports.importers.base.check_cells`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from gst.gstin import gstin_problem
from uniware.core.money import MoneyError, parse_money

MAX_LINE_QUANTITY = 1000  # units of one order line (each unit is a row in the database)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Parser = Callable[[str], Any]  # a cell's text -> its value, or CellError


class CellError(ValueError):
    """What is wrong with a cell's value."""


def unescape(value: str) -> str:
    """Undo the formula escaping of our exports ("'=1+2" was exported for "=1+2")."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_STARTS:
        return value[1:]
    return value


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text(value: str, *, max_length: int, required: bool = False) -> str:
    if value.isascii() and value.isprintable() and value:  # the common case, in one test
        if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_STARTS:
            value = value[1:]
        if len(value) <= max_length:
            return value
    value = unescape(value)
    if not value:
        if required:
            raise CellError("required value is missing")
        return ""
    if "\ufffd" in value:
        raise CellError(
            "has characters that could not be read (save the file as CSV UTF-8 or XLSX)"
        )
    if CONTROL.search(value):
        raise CellError("contains control characters")
    if len(value) > max_length:
        raise CellError(f"is {len(value):,} characters long; at most {max_length} are allowed")
    return value


CODE_RE = re.compile(r"^[^\s\x00-\x1f][^\x00-\x1f]*$")


def code(value: str, *, max_length: int, what: str) -> str:
    """An identifier (order id, line id): required, no control characters."""
    value = text(value, max_length=max_length, required=True)
    if not CODE_RE.match(value):
        raise CellError(f"is not a valid {what}")
    return value


def text_of(max_length: int, *, required: bool = False) -> Callable[[str], str]:
    """The parser of a text column (a closure: a partial with keywords is slower)."""

    def parse(value: str) -> str:
        return text(value, max_length=max_length, required=required)

    parse.plain = max_length  # type: ignore[attr-defined]
    return parse


def code_of(max_length: int, what: str) -> Callable[[str], str]:
    """The parser of an identifier column."""

    def parse(value: str) -> str:
        return code(value, max_length=max_length, what=what)

    parse.plain = max_length  # type: ignore[attr-defined]
    return parse


@lru_cache(maxsize=1024)
def quantity(value: str) -> int:
    if not value:
        raise CellError("required value is missing")
    return _whole(value, MAX_LINE_QUANTITY, f"is more than {MAX_LINE_QUANTITY} units on one line")


def _whole(value: str, maximum: int, too_large: str) -> int:
    """A whole number from 1 to `maximum` (compared before it becomes an int: "1e999999" is
    integral too)."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise CellError("is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise CellError("is not a whole number")
    if number < 1:
        raise CellError("must be at least 1")
    if number > maximum:
        raise CellError(too_large)
    return int(number)


def money(value: str, *, required: bool = True) -> Decimal:
    """An amount (`uniware.core.money`: the rules every amount follows)."""
    try:
        return parse_money(value, required=required)
    except MoneyError as exc:
        raise CellError(str(exc)) from None


def optional_money(value: str) -> Decimal:
    """An amount whose empty cell means 0."""
    return money(value, required=False)


DATE_FORMATS = [
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d-%m-%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
]
EARLIEST = datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC"))
ONE_DAY = timedelta(days=1)


def order_date(value: str, *, now: datetime | None = None) -> datetime:
    """ISO 8601 (2024-05-01, 2024-05-01T10:30:00+05:30, ...Z) or day first (01/05/2024 10:30).
    Without an offset the time is in the current zone: the tenant's (`uniware.core.zones`)."""
    if not value:
        raise CellError("required value is missing")
    parsed = _parse_date(value, timezone.get_current_timezone())
    if parsed > (now or timezone.now()) + ONE_DAY:
        raise CellError("is in the future")
    return parsed


@lru_cache(maxsize=4096)
def _parse_date(value: str, zone: ZoneInfo) -> datetime:
    """The aware datetime of a non-empty cell; naive ones are in `zone` (the tenant's time
    zone, part of the cache key since it can change). Not compared with now: not cached."""
    parsed = None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        for fmt in DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise CellError("is not a date (use 2024-05-01, 2024-05-01 14:30 or 01/05/2024)")
    if parsed.tzinfo is None:  # naive (both parsers give a fixed offset or no tzinfo)
        parsed = parsed.replace(tzinfo=zone)
    if parsed < EARLIEST:
        raise CellError("is before 2000")
    return parsed


PAYMENT_ALIASES = {"CASH_ON_DELIVERY": "COD", "PRE_PAID": "PREPAID", "PREPAID": "PREPAID"}


@lru_cache(maxsize=256)
def payment_method(value: str) -> str:
    if not value:
        raise CellError("required value is missing")
    normalised = value.strip().upper().replace(" ", "_")
    normalised = PAYMENT_ALIASES.get(normalised, normalised)
    if normalised not in ("COD", "PREPAID"):
        raise CellError("must be COD or PREPAID")
    return normalised


INDIAN_PIN = re.compile(r"^[1-9][0-9]{5}$")
OTHER_POSTCODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z -]{1,8}[0-9A-Za-z]$")


def pincode(value: str, *, country: str = "IN") -> str:
    return _pincode(value, country)


@lru_cache(maxsize=8192)
def _pincode(value: str, country: str) -> str:
    value = unescape(value).replace(" ", "") if country == "IN" else unescape(value).strip()
    if not value:
        raise CellError("required value is missing")
    if value.endswith(".0") and value[:-2].isdigit():  # a number column in a spreadsheet
        value = value[:-2]
    if country == "IN":
        if not INDIAN_PIN.match(value):
            raise CellError("is not a 6-digit Indian pincode")
    elif not OTHER_POSTCODE.match(value):
        raise CellError("is not a postal code")
    return value


COUNTRY_NAMES = {"INDIA": "IN", "IND": "IN", "BHARAT": "IN"}
COUNTRY_CODE = re.compile(r"[A-Z]{2}")


@lru_cache(maxsize=256)
def country(value: str) -> str:
    if not value:
        return "IN"
    upper = value.strip().upper()
    upper = COUNTRY_NAMES.get(upper, upper)
    if not COUNTRY_CODE.fullmatch(upper):
        raise CellError("is not a 2-letter country code (IN)")
    return upper


PHONE = re.compile(r"^\+?[0-9 ()\-]{6,20}$")


def phone(value: str) -> str:
    value = text(value, max_length=20)
    if value and not PHONE.match(value):
        raise CellError("is not a phone number")
    return value


# Plain addresses (ASCII dot-atom user, ASCII host names, a letters-only TLD): a strict subset
# of what Django's EmailValidator accepts, checked by one regex instead of its several lazy ones.
PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,63}"
)


def email(value: str) -> str:
    value = text(value, max_length=254)
    if value and not PLAIN_EMAIL.fullmatch(value):
        try:
            validate_email(value)
        except ValidationError:
            raise CellError("is not an e-mail address") from None
    return value


def positive_int(value: str, *, maximum: int, required: bool = True, default: int = 1) -> int:
    if not value:
        if required:
            raise CellError("required value is missing")
        return default
    return _whole(value, maximum, f"must be at most {maximum:,}")


def whole_number(maximum: int, *, required: bool = True, default: int = 1) -> Callable[[str], int]:
    """The parser of a column of whole numbers from 1 to `maximum`."""

    def parse(value: str) -> int:
        return positive_int(value, maximum=maximum, required=required, default=default)

    return parse


def choice(value: str, choices: dict[str, str], *, default: str | None = None) -> str:
    """A value from `choices` (keys upper-case, values canonical), case-insensitive."""
    if not value:
        if default is None:
            raise CellError("required value is missing")
        return default
    key = value.strip().upper().replace(" ", "_")
    if key not in choices:
        raise CellError(f"must be one of {', '.join(sorted(set(choices.values())))}")
    return choices[key]


def one_of(choices: dict[str, str], *, default: str | None = None) -> Callable[[str], str]:
    """The parser of a column of `choices` (see `choice`)."""

    def parse(value: str) -> str:
        return choice(value, choices, default=default)

    return parse


def gstin(value: str) -> str:
    """A GSTIN (`gst.gstin`), upper-cased; empty is allowed (a buyer without one)."""
    if not value:
        return ""
    value = unescape(value).strip().upper()
    problem = gstin_problem(value)
    if problem:
        raise CellError(f"is not a valid GSTIN: {problem}")
    return value


def units_or_none(maximum: int) -> Callable[[str], int]:
    """The parser of a count that may be 0 (a buffer): empty means 0."""

    def parse(value: str) -> int:
        if not value or value.strip() == "0":
            return 0
        return _whole(value, maximum, f"must be at most {maximum:,}")

    return parse


YES_NO = {"YES": "yes", "Y": "yes", "TRUE": "yes", "1": "yes"} | {
    "NO": "no",
    "N": "no",
    "FALSE": "no",
    "0": "no",
}
