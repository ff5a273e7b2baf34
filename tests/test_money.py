"""The one parser of money amounts (`uniware.core.money`): text from files, numbers from
channels' JSON and from code, with the same rules (the text cases are compared with the
import's earlier parser in tests/test_import_parsing_fast.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from uniware.core.money import MoneyError, parse_money


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        ("499", "499.00"),
        (" ₹ 1299.5 ", "1299.50"),
        ("INR 20", "20.00"),
        (499, "499.00"),
        (499.5, "499.50"),  # a JSON number: its shortest text, not the binary fraction
        (0.1, "0.10"),
        (Decimal("12.3"), "12.30"),
        ("9999999999.99", "9999999999.99"),
    ],
)
def test_amounts_have_two_decimals(value, amount):
    result = parse_money(value)
    assert (result, str(result)) == (Decimal(amount), amount)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1,299", "is not a number (write 1299.50, without thousands separators)"),
        ("NaN", "is not a number"),
        (float("inf"), "is not a number"),
        (True, "is not a number"),
        ([1], "is not a number"),
        ("-1", "is negative"),
        (-0.5, "is negative"),
        ("10000000000", "is too large"),
        (Decimal("1.005"), "has more than 2 decimals"),
        (0.125, "has more than 2 decimals"),
        ("", "required value is missing"),
        (None, "required value is missing"),
    ],
)
def test_what_is_wrong_is_said_without_the_place(value, message):
    with pytest.raises(MoneyError) as refused:
        parse_money(value)
    assert str(refused.value) == message


def test_a_missing_optional_amount_is_zero():
    assert parse_money("", required=False) == parse_money(None, required=False) == 0
