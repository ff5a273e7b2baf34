"""Request bodies of channel-api.md §4-6, built from plain values (no ORM here).

Seed 003's status notification: one `orderItems` entry per unit (a line of quantity n appears
n times), `IsReverse` false for shipments and true for reverse pickups, `updated` in the
tenant's time zone like `Mar 8, 2023 7:12:31 PM`, and the three reverse courier fields only on
reverse entries with status COURIER_ALLOCATED.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
REVERSE_COURIER_STATUS = "COURIER_ALLOCATED"

FORWARD_STATUSES = (
    "CREATED",
    "LOCATION_NOT_SERVICEABLE",
    "PICKING",
    "PICKED",
    "PENDING_CUSTOMIZATION",
    "CUSTOMIZATION_COMPLETE",
    "PACKED",
    "READY_TO_SHIP",
    "SPLITTED",
    "CANCELLED",
    "MERGED",
    "MANIFESTED",
    "DISPATCHED",
    "SHIPPED",
    "DELIVERED",
    "RETURN_EXPECTED",
    "RETURN_ACKNOWLEDGED",
    "RETURNED",
)
REVERSE_STATUSES = ("CREATED", "COURIER_ALLOCATED", "COMPLETE", "CANCELLED", "NOT_RECEIVED")


def format_updated(moment: datetime, tz: ZoneInfo) -> str:
    """`Mar 8, 2023 7:12:31 PM` in `tz`: English month whatever the locale (strftime's %b and
    %p are not), no leading zero on day or hour, 12-hour clock (12 AM is midnight)."""
    local = moment.astimezone(tz)
    hour = local.hour % 12 or 12
    half = "PM" if local.hour >= 12 else "AM"
    return (
        f"{MONTHS[local.month - 1]} {local.day}, {local.year} "
        f"{hour}:{local.minute:02d}:{local.second:02d} {half}"
    )


def iso(moment: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 with offset, to the second, in `tz` (the contract's other times)."""
    return moment.astimezone(tz).replace(microsecond=0).isoformat()


def forward_entry(item_id: str, status: str, courier_status: str, updated: str) -> dict:
    """One unit of a shipment (seed 003 field order)."""
    return {
        "orderItemId": item_id,
        "status": status,
        "IsReverse": False,
        "courier_status": courier_status or "",
        "updated": updated,
    }


def reverse_entry(
    item_id: str,
    status: str,
    updated: str,
    *,
    courier_name: str = "",
    courier_code: str = "",
    return_awb: str = "",
) -> dict:
    """One unit of a reverse pickup; the courier fields only with COURIER_ALLOCATED."""
    entry = {
        "orderItemId": item_id,
        "status": status,
        "IsReverse": True,
        "courier_status": "",
        "updated": updated,
    }
    if status == REVERSE_COURIER_STATUS:
        entry["reversePickupCourierName"] = courier_name or ""
        entry["reversePickupCourierCode"] = courier_code or ""
        entry["returnAwb"] = return_awb or ""
    return entry


def status_body(entries: list[dict]) -> dict:
    return {"orderItems": entries}


def reverse_body(
    item_ids: list[str],
    status: str,
    moment: datetime,
    tz: ZoneInfo,
    courier: tuple[str, str, str] = ("", "", ""),
) -> dict:
    """A reverse pickup's notification: its units' `status` at `moment`; `courier` is (name,
    code, return AWB), sent only with COURIER_ALLOCATED."""
    updated = format_updated(moment, tz)
    name, code, awb = courier
    return status_body(
        [
            reverse_entry(
                item_id, status, updated, courier_name=name, courier_code=code, return_awb=awb
            )
            for item_id in item_ids
        ]
    )


def cancel_body(channel_order_id: str, units: Iterable[tuple[str, str, str]]) -> dict:
    """§5: one entry per line with the number of its units cancelled. `units` are
    (orderItemId, productId, variantId) per cancelled unit; empty ids are left out, since the
    channel checks the ones sent against its own."""
    entries = []
    for (item_id, product_id, variant_id), quantity in Counter(units).items():
        entry: dict = {"orderItemId": item_id}
        if product_id:
            entry["productId"] = product_id
        if variant_id:
            entry["variantId"] = variant_id
        entry["quantity"] = quantity
        entries.append(entry)
    return {"orderId": channel_order_id, "orderItems": entries}


def dispatch_body(item_ids: Iterable[str], self_shipping: dict | None) -> dict:
    """§6: one entry per line with the number of its units dispatched; `selfShipping` only
    when the seller ships."""
    body: dict = {
        "orderItems": [
            {"orderItemId": item_id, "quantity": quantity}
            for item_id, quantity in Counter(item_ids).items()
        ]
    }
    if self_shipping is not None:
        body["selfShipping"] = self_shipping
    return body


def entries_to_send(payload: dict, retry_item_ids: list[str] | None) -> dict:
    """The body of the next attempt: everything, or only the entries of the items that failed
    last time (FAILED / PARTIAL_SUCCESS replies retry only the failed units)."""
    if not retry_item_ids:
        return payload
    keep = set(retry_item_ids)
    return {
        **payload,
        "orderItems": [e for e in payload["orderItems"] if e.get("orderItemId") in keep],
    }
