"""What a new order must fit before it is written: the columns' own limits, read from the models.

`orders_create` is the one way orders come in (keyed in, pulled from a channel, imported), so
the checks live here, once: a channel order id that makes the order code too long, a price
beyond its column's digits or a quantity of ten million is refused with a message that names
the order, the line and the field, instead of a database error that would fail the whole
batch (and, in an order pull, every later pull of the channel). PostgreSQL enforces these
limits; SQLite does not, so without these checks the default test run could not see them.

The limits come from the fields (`max_length`, `max_digits`, `decimal_places`), so a migration
that widens a column widens the check. The one limit no column has is the units per line
(`ORDER_LINE_MAX_QUANTITY`, default 1,000): each unit is a row, and a channel line of ten
million units is a data error, not an order.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from gst.gstin import gstin_problem

from ..models import Order, OrderItem

ORDER_TEXT = (
    "code",
    "channel_order_id",
    "currency",
    "customer_name",
    "customer_email",
    "customer_phone",
    "ship_address_line1",
    "ship_address_line2",
    "ship_city",
    "ship_state",
    "ship_country",
    "ship_pincode",
    "buyer_gstin",
)
UNIT_TEXT = ("code", "channel_order_item_id", "channel_product_id", "variant_id", "title")
SMALLINT = (-32768, 32767)


def max_quantity() -> int:
    return int(getattr(settings, "ORDER_LINE_MAX_QUANTITY", 1000))


@cache
def _field(model: type[models.Model], name: str) -> models.Field:
    return model._meta.get_field(name)


def _refuse(name: str, message: str) -> ValidationError:
    return ValidationError({name: message})


def check_text(obj: models.Model, names: tuple[str, ...], where: str) -> None:
    """Every text field fits its column."""
    for name in names:
        value = getattr(obj, name)
        limit = _field(type(obj), name).max_length
        if value is not None and len(value) > limit:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise _refuse(
                name, f"{where}: {name} {shown!r} is {len(value)} characters, at most {limit}"
            )


def check_amount(model: type[models.Model], name: str, value: Decimal, where: str) -> None:
    """A money value fits its column: at most `decimal_places` decimals and the digits left."""
    field = _field(model, name)
    places, whole = field.decimal_places, field.max_digits - field.decimal_places
    if value.as_tuple().exponent < -places and value != value.quantize(Decimal(1).scaleb(-places)):
        raise _refuse(name, f"{where}: {name} {value} has more than {places} decimals")
    if value >= Decimal(10) ** whole:
        raise _refuse(name, f"{where}: {name} {value} is too large (at most {whole} digits)")


def check_quantity(quantity: int, where: str) -> None:
    limit = max_quantity()
    if quantity > limit:
        raise _refuse(
            "quantity", f"{where}: quantity {quantity:,} is more than {limit:,} units per line"
        )


def check_order(order: Order, units: list[OrderItem], where: str) -> None:
    """The order and its units fit the columns. The units of a line differ only in their
    code's suffix, so the line's last unit (the longest code) stands for all of them."""
    check_text(order, ORDER_TEXT, where)
    if order.buyer_gstin and gstin_problem(order.buyer_gstin):
        problem = gstin_problem(order.buyer_gstin)
        raise _refuse("buyer_gstin", f"{where}: buyer GSTIN {order.buyer_gstin}: {problem}")
    low, high = SMALLINT
    if not low <= order.priority <= high:
        raise _refuse("priority", f"{where}: priority {order.priority} is not in {low}..{high}")
    check_amount(Order, "total_amount", order.total_amount, where)
    last_of_line = {unit.channel_order_item_id: unit for unit in units}
    for line_id, unit in last_of_line.items():
        check_text(unit, UNIT_TEXT, f"{where} line {line_id}")
