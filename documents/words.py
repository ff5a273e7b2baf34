"""Money as Indian invoices print it: lakh/crore grouping in figures and in words."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from num2words import num2words

PAISA = Decimal("0.01")


def _words(number: int) -> str:
    """num2words' Indian English ("one crore, twenty-three lakh ..."), each word capitalised."""
    text = num2words(number, lang="en_IN").replace(",", "")
    return " ".join(part.title() if part != "and" else part for part in text.split(" "))


def amount_in_words(amount: Decimal) -> str:
    """`Rupees One Lakh Twenty-Three Thousand ... and Fifty Paise Only` (Rule 46 practice).

    The library does the Indian numbering (lakh, crore); we only add rupees, paise and "Only".
    """
    if amount < 0:
        raise ValueError(f"Amount in words needs a non-negative amount, not {amount}")
    paise_total = int(amount.quantize(PAISA, rounding=ROUND_HALF_UP) * 100)
    rupees, paise = divmod(paise_total, 100)
    text = f"Rupees {_words(rupees)}"
    if paise:
        text += f" and {_words(paise)} {'Paisa' if paise == 1 else 'Paise'}"
    return text + " Only"


def format_inr(amount: Decimal, *, symbol: bool = False) -> str:
    """`1,23,45,678.90`: Indian digit grouping (last three, then pairs), two decimals."""
    value = amount.quantize(PAISA, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    whole, _, fraction = f"{abs(value):.2f}".partition(".")
    head, tail = whole[:-3], whole[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    grouped = ",".join([*groups, tail])
    return f"{sign}{'₹' if symbol else ''}{grouped}.{fraction}"
