"""GST on an invoice's lines, from the tax-inclusive prices channels charge.

Channels sell at tax-inclusive prices, so each line's tax is taken out of what the channel
collects for it (its gross: quantity x unit price - discount), never added on top:

    taxable value = gross / (1 + (GST rate + cess rate) / 100), to the paisa
    cess          = taxable value x cess rate / 100, to the paisa
    GST           = gross - taxable value - cess

GST is what remains, so every line sums exactly to its gross and the invoice total is exactly
what the channel collects (rounding each line's tax on its own, as Rule 46 asks for the tax of
each line, and summing). A supply within the seller's state (place of supply = the seller's
state) carries CGST and SGST, each at half the rate; any other carries IGST at the full rate.
Money is rounded half up to the paisa.

Shipping charges: shipping charged with goods is part of a composite supply whose principal
supply is the goods (CGST Act s.2(30) and s.8(a)), so it is taxed as the goods it ships with:
at their rate and under their HSN code. `shipping_supplies` turns the shipping charged with each
goods supply into one "Shipping charges" line per (HSN, rate, cess rate) of the goods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .states import STATES

GST_RATES = (
    Decimal("0"),
    Decimal("0.25"),
    Decimal("3"),
    Decimal("5"),
    Decimal("12"),
    Decimal("18"),
    Decimal("28"),
)

PAISA = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


@dataclass(frozen=True, kw_only=True)
class Supply:
    """One line to invoice. Prices are tax-inclusive; `discount` is for the whole line."""

    key: str
    description: str
    hsn: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal(0)
    gst_rate: Decimal
    cess_rate: Decimal = Decimal(0)
    is_shipping: bool = False
    unit: str = "NOS"


@dataclass(frozen=True, kw_only=True)
class TaxedLine:
    """A supply with its tax. taxable_value + cgst + sgst + igst + cess == gross == total."""

    key: str
    description: str
    hsn: str
    quantity: int
    unit_price: Decimal
    discount: Decimal
    gst_rate: Decimal
    cess_rate: Decimal
    is_shipping: bool
    unit: str
    gross: Decimal
    taxable_value: Decimal
    cgst_rate: Decimal
    cgst: Decimal
    sgst_rate: Decimal
    sgst: Decimal
    igst_rate: Decimal
    igst: Decimal
    cess: Decimal
    total: Decimal


@dataclass(frozen=True)
class HsnRow:
    """The invoice's lines of one HSN code at one GST rate, summed (HSN-wise summary)."""

    hsn: str
    rate: Decimal
    taxable: Decimal
    cgst: Decimal
    sgst: Decimal
    igst: Decimal
    cess: Decimal


@dataclass(frozen=True)
class Taxed:
    """A taxed invoice: its lines, HSN summary and totals (sums of the lines)."""

    lines: tuple[TaxedLine, ...]
    hsn_summary: tuple[HsnRow, ...]
    taxable: Decimal
    cgst: Decimal
    sgst: Decimal
    igst: Decimal
    cess: Decimal
    grand_total: Decimal
    intra_state: bool


def _round(value: Decimal) -> Decimal:
    return value.quantize(PAISA, rounding=ROUND_HALF_UP)


def _number(value: object, key: str, field: str, *, paise: bool) -> Decimal:
    """`value` as a non-negative Decimal; refuses floats (binary fractions are not paise)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError(f"line {key!r}: {field} must be a Decimal, not {value!r}")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise ValueError(f"line {key!r}: {field} must be zero or more, not {value}")
    if not paise:
        return number
    if number != number.quantize(PAISA):
        raise ValueError(f"line {key!r}: {field} {value} has more than 2 decimals")
    return number.quantize(PAISA)


def _checked(supply: Supply) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    """(unit price, discount, gross, GST rate, cess rate) of a supply tax_lines accepts."""
    key = supply.key
    if isinstance(supply.quantity, bool) or not isinstance(supply.quantity, int):
        raise ValueError(f"line {key!r}: quantity must be a whole number, not {supply.quantity!r}")
    if supply.quantity < 1:
        raise ValueError(f"line {key!r}: quantity must be at least 1, not {supply.quantity}")
    price = _number(supply.unit_price, key, "unit_price", paise=True)
    discount = _number(supply.discount, key, "discount", paise=True)
    rate = _number(supply.gst_rate, key, "gst_rate", paise=False)
    if rate not in GST_RATES:
        rates = ", ".join(str(r) for r in GST_RATES)
        raise ValueError(f"line {key!r}: gst_rate {rate}% is not a GST rate ({rates})")
    cess_rate = _number(supply.cess_rate, key, "cess_rate", paise=False)
    gross = (supply.quantity * price - discount).quantize(PAISA)
    if gross < 0:
        raise ValueError(f"line {key!r}: discount {discount} is more than the line's value")
    return price, discount, gross, rate, cess_rate


def _tax_line(supply: Supply, *, intra_state: bool) -> TaxedLine:
    price, discount, gross, rate, cess_rate = _checked(supply)
    taxable = _round(gross * HUNDRED / (HUNDRED + rate + cess_rate))
    tax = gross - taxable
    # Cess takes its share (or all of the tax on a 0% line); GST the rest, never below zero.
    cess = tax if rate == 0 else min(_round(taxable * cess_rate / HUNDRED), tax)
    gst = tax - cess
    half = _round(gst / 2) if intra_state else ZERO
    values = {f.name: getattr(supply, f.name) for f in dataclasses.fields(Supply)}
    values.update(unit_price=price, discount=discount, gst_rate=rate, cess_rate=cess_rate)
    return TaxedLine(
        **values,
        gross=gross,
        taxable_value=taxable,
        cgst_rate=rate / 2 if intra_state else Decimal(0),
        cgst=half,
        sgst_rate=rate / 2 if intra_state else Decimal(0),
        sgst=gst - half if intra_state else ZERO,
        igst_rate=Decimal(0) if intra_state else rate,
        igst=ZERO if intra_state else gst,
        cess=cess,
        total=gross,
    )


def hsn_summary(lines: Iterable) -> tuple[HsnRow, ...]:
    """Lines summed per HSN code and GST rate: taxed lines, or stored invoice lines (anything
    with hsn, the three rates, taxable_value and the tax amounts)."""
    sums: dict[tuple[str, Decimal], list[Decimal]] = {}
    for line in lines:
        rate = line.cgst_rate + line.sgst_rate + line.igst_rate
        row = sums.setdefault((line.hsn, rate), [ZERO] * 5)
        for i, amount in enumerate(
            (line.taxable_value, line.cgst, line.sgst, line.igst, line.cess)
        ):
            row[i] += amount
    return tuple(HsnRow(hsn, rate, *sums[hsn, rate]) for hsn, rate in sorted(sums))


def tax_lines(supplies: Iterable[Supply], *, seller_state: str, place_of_supply: str) -> Taxed:
    """Tax each supply (tax-inclusive) and total the invoice.

    Intra-state lines split their GST into CGST = half rounded half up, SGST = the rest, so the
    two may differ by one paisa and the line still sums exactly. Refuses (ValueError naming the
    line and field) a rate not in GST_RATES, quantity < 1, money with more than 2 decimals or
    below zero, a discount above the line, and state codes that are not GST states."""
    for what, code in (("seller state", seller_state), ("place of supply", place_of_supply)):
        if code not in STATES:
            raise ValueError(f"{what} {code!r} is not a GST state code")
    intra_state = seller_state == place_of_supply
    lines = tuple(_tax_line(supply, intra_state=intra_state) for supply in supplies)

    def total(field: str) -> Decimal:
        return sum((getattr(line, field) for line in lines), ZERO)

    return Taxed(
        lines=lines,
        hsn_summary=hsn_summary(lines),
        taxable=total("taxable_value"),
        cgst=total("cgst"),
        sgst=total("sgst"),
        igst=total("igst"),
        cess=total("cess"),
        grand_total=total("gross"),
        intra_state=intra_state,
    )


def merge_supplies(supplies: Iterable[Supply]) -> list[Supply]:
    """One line per (key, unit price, rates, shipping or not), quantities and discounts summed,
    in first-seen order: the units of one SKU at one price become one invoice line. A merged
    line keeps the description, HSN and unit of its first supply."""
    merged: dict[tuple, Supply] = {}
    for supply in supplies:
        group = (
            supply.key,
            supply.unit_price,
            supply.gst_rate,
            supply.cess_rate,
            supply.is_shipping,
        )
        first = merged.get(group)
        merged[group] = (
            supply
            if first is None
            else dataclasses.replace(
                first,
                quantity=first.quantity + supply.quantity,
                discount=first.discount + supply.discount,
            )
        )
    return list(merged.values())


def _shipping_key(hsn: str, rate: Decimal, cess_rate: Decimal) -> str:
    key = f"SHIPPING-{hsn}-{rate.normalize():f}"
    return f"{key}-{cess_rate.normalize():f}" if cess_rate else key


def shipping_supplies(goods: Iterable[tuple[Supply, Decimal]]) -> list[Supply]:
    """The shipping lines for goods supplies and the shipping charged (tax-inclusive) with each:
    one per (HSN, GST rate, cess rate) of the goods, taxed as those goods (composite supply,
    see the module's docstring); groups charged nothing are left out."""
    totals: dict[tuple[str, Decimal, Decimal], Decimal] = {}
    for supply, amount in goods:
        charged = _number(amount, supply.key, "shipping charges", paise=True)
        group = (supply.hsn, Decimal(supply.gst_rate), Decimal(supply.cess_rate))
        totals[group] = totals.get(group, ZERO) + charged
    return [
        Supply(
            key=_shipping_key(hsn, rate, cess_rate),
            description="Shipping charges",
            hsn=hsn,
            quantity=1,
            unit_price=amount,
            gst_rate=rate,
            cess_rate=cess_rate,
            is_shipping=True,
            unit="OTH",
        )
        for (hsn, rate, cess_rate), amount in totals.items()
        if amount
    ]
