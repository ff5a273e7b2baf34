"""Amazon's Orders API replies read into our data classes, and the shipment confirmation
written from our dispatch push (the mapping of statuses: `channels.adapters.amazon`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import ChannelOrder, ChannelOrderItem
from .parse import describe

PENDING = {"Pending", "PendingAvailability"}
OPEN = {"Unshipped", "PartiallyShipped"}
SHIPPED = {"Shipped", "InvoiceUnconfirmed"}
RETURNING = {"ReturningToSeller", "ReturnedToSeller", "RejectedByBuyer", "Undeliverable"}
EVERY_UNIT = 1_000_000  # a cancelled order's lines: Amazon says QuantityOrdered 0


class BadAmazonOrder(ValueError):
    """One Amazon order cannot be read; the message names the field."""


def statuses_of(raw: dict) -> tuple[str, Callable[[dict], str]]:
    """Our order status, and the status of each of its lines (from the line)."""
    status = raw.get("OrderStatus")
    easy_ship = raw.get("EasyShipShipmentStatus")
    if status in PENDING:
        return "PENDING_VERIFICATION", lambda item: "CREATED"
    if status in OPEN:
        return "CREATED", lambda item: "DISPATCHED" if _shipped_all(item) else "CREATED"
    if status in SHIPPED:
        line = "DELIVERED" if easy_ship == "Delivered" else "DISPATCHED"
        line = "COURIER_RETURN" if easy_ship in RETURNING else line
        return "COMPLETE", lambda item: line
    if status == "Canceled":
        return "CANCELLED", lambda item: "CANCELLED"
    raise BadAmazonOrder(
        f"OrderStatus {status!r} is not one we handle (recorded, order left as it is)"
    )


def _shipped_all(item: dict) -> bool:
    ordered = _int(item.get("QuantityOrdered"), "QuantityOrdered")
    return ordered > 0 and _int(item.get("QuantityShipped") or 0, "QuantityShipped") >= ordered


def read_order(raw: dict, status: str, items: tuple) -> ChannelOrder:
    address = raw.get("ShippingAddress") or {}
    buyer = raw.get("BuyerInfo") or {}
    shipping = {
        "name": str(address.get("Name") or buyer.get("BuyerName") or ""),
        "addressLine1": str(address.get("AddressLine1") or ""),
        "addressLine2": str(address.get("AddressLine2") or ""),
        "city": str(address.get("City") or ""),
        "state": str(address.get("StateOrRegion") or ""),
        "country": str(address.get("CountryCode") or "IN"),
        "pincode": str(address.get("PostalCode") or ""),
        "phone": str(address.get("Phone") or ""),
        "email": str(buyer.get("BuyerEmail") or ""),
    }
    return ChannelOrder(
        id=str(raw["AmazonOrderId"]),
        order_status=status,
        order_date=read_date(raw.get("PurchaseDate"), "PurchaseDate"),
        dispatch_by=read_date(raw.get("LatestShipDate"), "LatestShipDate"),
        payment_type="COD" if raw.get("PaymentMethod") == "COD" else "PREPAID",
        third_party_shipping=bool(raw.get("EasyShipShipmentStatus")),
        items=items,
        currency=str((raw.get("OrderTotal") or {}).get("CurrencyCode") or "INR"),
        shipping_address=shipping,
        billing_address=dict(shipping),
        raw=raw,
    )


def read_line(item: dict, status: str) -> ChannelOrderItem:
    item_id = str(item.get("OrderItemId") or "")
    if not item_id:
        raise BadAmazonOrder("an order item has no OrderItemId")
    quantity = _int(item.get("QuantityOrdered"), f"item {item_id}: QuantityOrdered")
    cancelled = 0
    if status == "CANCELLED":
        quantity = cancelled = max(quantity, EVERY_UNIT)
    seller_sku = str(item.get("SellerSKU") or "")
    return ChannelOrderItem(
        order_item_id=item_id,
        sku=seller_sku,
        quantity=quantity,
        status=status,
        cancelled_quantity=cancelled,
        product_id=seller_sku,  # the listing is the seller SKU: what patchListingsItem names
        variant_id=str(item.get("ASIN") or ""),
        title=str(item.get("Title") or ""),
        selling_price=_money(item.get("ItemPrice"), quantity, f"item {item_id}: ItemPrice"),
        shipping_charges=_money(
            item.get("ShippingPrice"), quantity, f"item {item_id}: ShippingPrice"
        ),
    )


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadAmazonOrder(f"{field} must be a whole number, got {describe(value)}")
    return value


def _money(value: Any, quantity: int, field: str) -> Decimal:
    """Amazon's ItemPrice is for the line (all its units); ours is per unit."""
    if value is None:
        return Decimal(0)
    try:
        amount = Decimal(str(value["Amount"]))
    except (KeyError, TypeError, InvalidOperation):
        raise BadAmazonOrder(f"{field} is not a money amount: {describe(value)}") from None
    return (
        amount
        if quantity <= 1 or quantity == EVERY_UNIT
        else (amount / quantity).quantize(Decimal("0.01"))
    )


def read_date(value: Any, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadAmazonOrder(f"{field} {value!r} is not an ISO 8601 date") from None


def confirm_shipment(marketplace: str, body: dict, shipping: dict, key: str) -> dict:
    """The contract's dispatch push as Amazon's ConfirmShipmentRequest."""
    package = int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)  # positive, numeric
    return {
        "marketplaceId": marketplace,
        "packageDetail": {
            "packageReferenceId": str(package),
            "carrierCode": shipping.get("deliveryPartner") or "Other",
            "carrierName": shipping.get("deliveryPartner") or "",
            "trackingNumber": shipping.get("trackingId") or "",
            "shipDate": shipping.get("dispatchDate") or "",
            "orderItems": [
                {"orderItemId": i["orderItemId"], "quantity": int(i["quantity"])}
                for i in body.get("orderItems", [])
            ],
        },
    }
