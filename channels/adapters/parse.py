"""Reading the channel's ORDER JSON (channel-api.md §2-3) into data classes.

A reply of the wrong shape is a `ChannelReplyError` (the whole request failed); one order that
cannot be read is a problem for that order only, named with its id and field, and the other
orders of the reply are kept.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from uniware.core.money import MoneyError, parse_money

from .base import (
    ITEM_STATUSES,
    ORDER_STATUSES,
    ChannelOrder,
    ChannelOrderItem,
    ChannelReplyError,
    OrdersReply,
)

ADDRESS_FIELDS = (
    "name",
    "addressLine1",
    "addressLine2",
    "city",
    "state",
    "country",
    "pincode",
    "phone",
    "email",
)


class BadOrder(ValueError):
    """One order the channel sent cannot be read; the message names the field."""


def describe(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_orders_reply(data: Any, *, channel: str, what: str = "") -> OrdersReply:
    if not isinstance(data, dict) or not isinstance(data.get("orders"), list):
        where = what or f"Channel {channel}"
        raise ChannelReplyError(
            f'{where}: malformed reply, expected {{"orders": [...]}}, got {describe(data)}'
        )
    reply = OrdersReply()
    for n, raw in enumerate(data["orders"], start=1):
        label = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else ""
        try:
            reply.orders.append(parse_order(raw))
        except BadOrder as exc:
            reply.problems.append((label or f"#{n}", f"Channel {channel}: {exc}"))
    return reply


def _text(raw: dict, key: str, where: str, *, required: bool = False, default: str = "") -> str:
    value = raw.get(key)
    if value.__class__ is str and value:  # the usual case first: 20,000 orders a run
        return value.strip()
    if value is None or value == "":
        if required:
            raise BadOrder(f"{where}: {key} is missing")
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise BadOrder(f"{where}: {key} must be a string, got {describe(value)}")
    return value.strip()


def _choice(raw: dict, key: str, where: str, allowed: tuple[str, ...], default: str = "") -> str:
    value = _text(raw, key, where, required=not default, default=default).upper()
    if value not in allowed:
        raise BadOrder(f"{where}: {key} {value!r} is not one of {', '.join(allowed)}")
    return value


def _int(raw: dict, key: str, where: str, *, default: int | None = None, minimum: int = 0) -> int:
    value = raw.get(key)
    if value is None or value == "":
        if default is None:
            raise BadOrder(f"{where}: {key} is missing")
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadOrder(f"{where}: {key} must be a whole number, got {describe(value)}")
    if value < minimum:
        raise BadOrder(f"{where}: {key} {value} is below {minimum}")
    return value


def _money(raw: dict, key: str, where: str) -> Decimal:
    """An amount of the channel's order, by the one money parser (`uniware.core.money`);
    a missing one is 0."""
    value = raw.get(key)
    try:
        return parse_money(value, required=False)
    except MoneyError as exc:
        raise BadOrder(f"{where}: {key} {describe(value)} {exc}") from None


def parse_time(value: Any, where: str, key: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadOrder(f"{where}: {key} must be an ISO 8601 time, got {describe(value)}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadOrder(f"{where}: {key} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadOrder(f"{where}: {key} {value!r} has no UTC offset")
    return moment


def _address(raw: Any, where: str) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise BadOrder(f"{where} must be an object, got {describe(raw)}")
    return {key: _text(raw, key, where) for key in ADDRESS_FIELDS}


def parse_item(raw: Any, where: str) -> ChannelOrderItem:
    if not isinstance(raw, dict):
        raise BadOrder(f"{where}: an order item must be an object, got {describe(raw)}")
    item_id = _text(raw, "orderItemId", where, required=True)
    where = f"{where} item {item_id}"
    quantity = _int(raw, "quantity", where, default=1, minimum=1)
    status = _choice(raw, "status", where, ITEM_STATUSES, default="CREATED")
    cancelled = raw.get("cancelledQuantity")
    if cancelled in (None, ""):
        cancelled_quantity = quantity if status == "CANCELLED" else 0
    else:
        cancelled_quantity = _int(raw, "cancelledQuantity", where, minimum=0)
        if cancelled_quantity > quantity:
            raise BadOrder(
                f"{where}: cancelledQuantity {cancelled_quantity} is above quantity {quantity}"
            )
    return ChannelOrderItem(
        order_item_id=item_id,
        sku=_text(raw, "sku", where),
        quantity=quantity,
        status=status,
        cancelled_quantity=cancelled_quantity,
        product_id=_text(raw, "productId", where),
        variant_id=_text(raw, "variantId", where),
        title=_text(raw, "title", where),
        selling_price=_money(raw, "sellingPrice", where),
        shipping_charges=_money(raw, "shippingCharges", where),
        updated=parse_time(raw.get("updated"), where, "updated"),
        courier_name=_text(raw, "courierName", where),
        tracking_number=_text(raw, "trackingNumber", where),
        return_reason=_text(raw, "returnReason", where),
        return_date=_text(raw, "returnDate", where),
        return_awb=_text(raw, "returnAWB", where),
        return_shipping_provider=_text(raw, "returnShippingProvider", where),
    )


def parse_order(raw: Any) -> ChannelOrder:
    if not isinstance(raw, dict):
        raise BadOrder(f"an order must be an object, got {describe(raw)}")
    order_id = _text(raw, "id", "order", required=True)
    where = f"order {order_id}"
    items_raw = raw.get("orderItems")
    if not isinstance(items_raw, list) or not items_raw:
        raise BadOrder(f"{where}: orderItems must be a non-empty list")
    items = tuple(parse_item(item, where) for item in items_raw)
    seen: set[str] = set()
    for item in items:
        if item.order_item_id in seen:
            raise BadOrder(f"{where}: orderItemId {item.order_item_id} appears twice")
        seen.add(item.order_item_id)
    third_party = raw.get("thirdPartyShipping", False)
    if not isinstance(third_party, bool):
        raise BadOrder(f"{where}: thirdPartyShipping must be true or false")
    payment = _text(raw, "paymentType", where, default="PREPAID").upper()
    if payment not in ("COD", "PREPAID"):
        raise BadOrder(f"{where}: paymentType {payment!r} is not COD or PREPAID")
    billing = raw.get("billingAddress")
    return ChannelOrder(
        raw=raw,
        id=order_id,
        order_status=_choice(raw, "orderStatus", where, ORDER_STATUSES, default="CREATED"),
        order_date=parse_time(raw.get("orderDate"), where, "orderDate"),
        payment_type=payment,
        third_party_shipping=third_party,
        items=items,
        currency=_text(raw, "currency", where, default="INR")[:3].upper(),
        shipping_address=_address(raw.get("shippingAddress"), f"{where}: shippingAddress"),
        billing_address=billing if isinstance(billing, dict) else {},
    )


def parse_push_reply(data: Any, *, channel: str, what: str) -> tuple[str, list, str]:
    """(status, [(orderItemId, errorMessage)], error) of a push reply (channel-api.md §4)."""
    if not isinstance(data, dict) or data.get("status") not in (
        "SUCCESS",
        "FAILED",
        "PARTIAL_SUCCESS",
    ):
        raise ChannelReplyError(
            f"Channel {channel}: malformed reply to {what}, expected a status of SUCCESS, "
            f"FAILED or PARTIAL_SUCCESS, got {describe(data)}"
        )
    failed = []
    entries = data.get("orderItems") or data.get("failedProductList") or []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            key = entry.get("orderItemId") or entry.get("productId") or ""
            failed.append((str(key), str(entry.get("errorMessage") or entry.get("message") or "")))
    return data["status"], failed, str(data.get("error") or "")
