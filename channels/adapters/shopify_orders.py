"""Shopify's order nodes read into channel orders (the statuses as `shopify` describes them),
and the global ids Shopify names everything by."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import ChannelOrder, ChannelOrderItem, OrdersReply
from .parse import describe

COD = "Cash on Delivery (COD)"
KNOWN_DISPLAY = {
    "UNFULFILLED",
    "PARTIALLY_FULFILLED",
    "FULFILLED",
    "RESTOCKED",
    "PENDING_FULFILLMENT",
    "OPEN",
    "IN_PROGRESS",
    "ON_HOLD",
    "SCHEDULED",
}
RETURNING = {"NOT_DELIVERED", "FAILURE"}


def gid(kind: str, value: str) -> str:
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


def tail(value: Any) -> str:
    return str(value or "").rsplit("/", 1)[-1]


class BadShopifyOrder(ValueError):
    """One order cannot be read; the message names the field."""


def read_orders(nodes: list[dict], channel: str) -> OrdersReply:
    reply = OrdersReply()
    for n, node in enumerate(nodes, start=1):
        order_id = tail(node.get("id")) or f"#{n}"
        try:
            reply.orders.append(read_order(node))
        except BadShopifyOrder as exc:
            reply.problems.append((order_id, f"Channel {channel}: order {order_id}: {exc}"))
    return reply


def read_order(node: dict) -> ChannelOrder:
    display = node.get("displayFulfillmentStatus")
    if not node.get("cancelledAt") and display not in KNOWN_DISPLAY:
        raise BadShopifyOrder(
            f"displayFulfillmentStatus {display!r} is not one we handle "
            "(recorded, order left as it is)"
        )
    fulfilled, tracking = _fulfilled(node)
    returning = _returning(node)
    items = tuple(
        _line(line, node, fulfilled, tracking, returning)
        for line in (node.get("lineItems") or {}).get("nodes") or []
    )
    if node.get("cancelledAt"):
        status = "CANCELLED"
    elif display == "ON_HOLD":
        status = "PENDING_VERIFICATION"
    else:
        status = "COMPLETE" if all(i.status != "CREATED" for i in items) else "CREATED"
    address = node.get("shippingAddress") or {}
    shipping = {
        "name": str(address.get("name") or ""),
        "addressLine1": str(address.get("address1") or ""),
        "addressLine2": str(address.get("address2") or ""),
        "city": str(address.get("city") or ""),
        "state": str(address.get("province") or ""),
        "country": str(address.get("countryCodeV2") or "IN"),
        "pincode": str(address.get("zip") or ""),
        "phone": str(address.get("phone") or node.get("phone") or ""),
        "email": str(node.get("email") or ""),
    }
    return ChannelOrder(
        id=tail(node.get("id")),
        order_status=status,
        order_date=read_date(node.get("createdAt")),
        payment_type="COD" if COD in (node.get("paymentGatewayNames") or []) else "PREPAID",
        third_party_shipping=False,
        items=items,
        currency=str(node.get("currencyCode") or "INR"),
        shipping_address=shipping,
        billing_address=dict(shipping),
        raw=node,
    )


def _fulfilled(node: dict) -> tuple[dict[str, tuple[str, int]], dict[str, tuple[str, str]]]:
    """Per line id: (its fulfillments' display status, units); (courier, tracking number)."""
    fulfilled: dict[str, tuple[str, int]] = {}
    tracking: dict[str, tuple[str, str]] = {}
    for f in node.get("fulfillments") or []:
        if f.get("status") in ("CANCELLED", "ERROR", "FAILURE"):
            continue
        info = (f.get("trackingInfo") or [{}])[0] or {}
        for row in (f.get("fulfillmentLineItems") or {}).get("nodes") or []:
            line = tail((row.get("lineItem") or {}).get("id"))
            units = fulfilled.get(line, ("", 0))[1] + int(row.get("quantity") or 0)
            fulfilled[line] = (str(f.get("displayStatus") or ""), units)
            tracking[line] = (str(info.get("company") or ""), str(info.get("number") or ""))
    return fulfilled, tracking


def _returning(node: dict) -> dict[str, str]:
    """The lines in a return asked for or open: why (the customer's note, else the reason)."""
    lines = {}
    for ret in (node.get("returns") or {}).get("nodes") or []:
        if ret.get("status") not in ("REQUESTED", "OPEN"):
            continue
        for row in (ret.get("returnLineItems") or {}).get("nodes") or []:
            line = ((row.get("fulfillmentLineItem") or {}).get("lineItem") or {}).get("id")
            why = row.get("customerNote") or row.get("returnReason") or ""
            lines[tail(line)] = str(why if why != "UNKNOWN" else "")
    return lines


def _line(
    line: dict, node: dict, fulfilled: dict, tracking: dict, returning: dict
) -> ChannelOrderItem:
    line_id = tail(line.get("id"))
    quantity = _int(line.get("quantity"), f"line {line_id}: quantity")
    current = (
        0
        if node.get("cancelledAt")
        else _int(line.get("currentQuantity", quantity), f"line {line_id}: currentQuantity")
    )
    display, shipped = fulfilled.get(line_id, ("", 0))
    if not current:
        status = "CANCELLED"
    elif line_id in returning:
        status = "RETURN_REQUESTED"
    elif shipped >= current:
        status = (
            "DELIVERED"
            if display == "DELIVERED"
            else "COURIER_RETURN"
            if display in RETURNING
            else "DISPATCHED"
        )
    else:
        status = "CREATED"
    courier, number = tracking.get(line_id, ("", ""))
    return ChannelOrderItem(
        order_item_id=line_id,
        sku=str(line.get("sku") or ""),
        quantity=quantity,
        status=status,
        cancelled_quantity=quantity - current,
        product_id=tail((line.get("product") or {}).get("id")),
        variant_id=tail((line.get("variant") or {}).get("id")),
        title=str(line.get("title") or ""),
        selling_price=_money(line.get("originalUnitPriceSet"), f"line {line_id}: price"),
        courier_name=courier,
        tracking_number=number,
        return_reason=returning.get(line_id, ""),
    )


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadShopifyOrder(f"{field} must be a whole number, got {describe(value)}")
    return value


def _money(value: Any, field: str) -> Decimal:
    try:
        return Decimal(str(value["shopMoney"]["amount"])) if value else Decimal(0)
    except (KeyError, TypeError, InvalidOperation):
        raise BadShopifyOrder(f"{field} is not a money amount: {describe(value)}") from None


def read_date(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        raise BadShopifyOrder(f"{value!r} is not an ISO 8601 date") from None
