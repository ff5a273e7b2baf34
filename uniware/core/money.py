"""Amounts of money from what people and channels send: the one parser, and its rules.

An amount is a finite, non-negative number of rupees with at most two decimals (paise) and at
most `MAX` (the `DecimalField(max_digits=12, decimal_places=2)` of prices and totals). Text may
carry a "₹" or "INR" and spaces around it; thousands separators are refused ("1,299" means
1299 in one sheet and 1.299 in another). A JSON number (a float) is read from its shortest
text, so 499.5 is 499.50 and not the binary fraction beneath it. An amount comes back with
exactly two decimals; a missing optional one is 0.

`MoneyError` says what is wrong without naming the field or the record: each caller adds
its own place (row and column of a file, order and line of a channel).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

CENT = Decimal("0.01")
MAX = Decimal("9999999999.99")
ZERO = Decimal("0")


class MoneyError(ValueError):
    """What is wrong with an amount ("is negative"); the caller says where it was."""


def parse_money(value: object, *, required: bool = True) -> Decimal:
    """The amount `value` stands for. None or "" is missing: refused when `required`,
    else zero. Raises `MoneyError`."""
    if value is None or value == "":
        if required:
            raise MoneyError("required value is missing")
        return ZERO
    if isinstance(value, str):
        return _from_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise MoneyError("is not a number")
    return _checked(Decimal(str(value)) if isinstance(value, float) else Decimal(value))


@lru_cache(maxsize=8192)
def _from_text(value: str) -> Decimal:
    """Prices repeat down a file: each distinct text is parsed once (a Decimal is immutable,
    so a cached one can be shared; a bad value is not cached and raises again)."""
    cleaned = value.replace("₹", "").replace("INR", "").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise MoneyError("is not a number (write 1299.50, without thousands separators)") from None
    return _checked(amount)


def _checked(amount: Decimal) -> Decimal:
    if not amount.is_finite():
        raise MoneyError("is not a number")
    if amount < 0:
        raise MoneyError("is negative")
    if amount > MAX:
        raise MoneyError("is too large")
    if amount != amount.quantize(CENT):
        raise MoneyError("has more than 2 decimals")
    return amount.quantize(CENT)
