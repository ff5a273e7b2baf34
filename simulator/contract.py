"""The channel side of `channel-api.md`: statuses, formats and the checks on what clients send.

Kept apart from the HTTP server so the rules a back-office client is held to sit in one place.
Every function here is pure: the store calls them under its lock.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

ORDER_STATUSES = ("PENDING_VERIFICATION", "CREATED", "COMPLETE", "CANCELLED")
ITEM_STATUSES = (
    "CREATED",
    "CANCELLED",
    "DISPATCHED",
    "DELIVERED",
    "RETURN_REQUESTED",
    "COURIER_RETURN",
)
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
REVERSE_COURIER_FIELDS = ("reversePickupCourierName", "reversePickupCourierCode", "returnAwb")
PAYMENT_TYPES = ("COD", "PREPAID")
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
# Text fields of an order item that the channel fills as the item moves on ("" until then).
ITEM_TRACKING_FIELDS = (
    "courierName",
    "trackingNumber",
    "returnReason",
    "returnDate",
    "returnAWB",
    "returnShippingProvider",
)
SELF_SHIPPING_FIELDS = (
    "deliveryPartner",
    "dispatchDate",
    "invoiceNumber",
    "invoiceDate",
    "trackingId",
)

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# "Mar 8, 2023 7:12:31 PM": abbreviated English month, day and hour without a leading zero.
UPDATED_RE = re.compile(
    r"^(" + "|".join(MONTHS) + r") ([1-9]|[12]\d|3[01]), (\d{4}) "
    r"([1-9]|1[0-2]):([0-5]\d):([0-5]\d) (AM|PM)$"
)
IST = timezone(timedelta(hours=5, minutes=30))


class ContractError(ValueError):
    """A request or control call that breaks the contract; `status` is the HTTP code to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_offset(value: str) -> timezone:
    """`+05:30` → a fixed-offset time zone (the simulator's idea of the tenant's zone)."""
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", value or "")
    if not match:
        raise ContractError(f"time zone offset {value!r}: expected +HH:MM or -HH:MM")
    sign = 1 if match[1] == "+" else -1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))


def parse_iso(value: Any, field: str) -> datetime:
    """An ISO 8601 time that must carry its UTC offset (naive times are ambiguous)."""
    if not isinstance(value, str) or not value:
        raise ContractError(f"{field}: expected an ISO 8601 time with offset, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        hint = " (a '+' in a query string must be sent as %2B)" if " " in value else ""
        raise ContractError(f"{field}: {value!r} is not an ISO 8601 time{hint}") from None
    if parsed.tzinfo is None:
        raise ContractError(f"{field}: {value!r} has no UTC offset")
    return parsed


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def parse_updated(value: Any) -> datetime | None:
    """Parse a notification's `updated` ("Mar 8, 2023 7:12:31 PM"), or None when malformed."""
    if not isinstance(value, str):
        return None
    match = UPDATED_RE.match(value)
    if not match:
        return None
    hour = int(match[4]) % 12 + (12 if match[7] == "PM" else 0)
    try:
        return datetime(
            int(match[3]),
            MONTHS.index(match[1]) + 1,
            int(match[2]),
            hour,
            int(match[5]),
            int(match[6]),
        )
    except ValueError:  # Feb 30 and the like
        return None


def format_updated(moment: datetime) -> str:
    """The inverse of `parse_updated`, locale-independent (strftime's %b is not)."""
    hour = moment.hour % 12 or 12
    half = "PM" if moment.hour >= 12 else "AM"
    return (
        f"{MONTHS[moment.month - 1]} {moment.day}, {moment.year} "
        f"{hour}:{moment.minute:02d}:{moment.second:02d} {half}"
    )


def as_int(value: Any, field: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer from JSON or from a form/query string, with a clear error naming the field."""
    if isinstance(value, bool):
        raise ContractError(f"{field}: expected an integer, got {value!r}")
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise ContractError(f"{field}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ContractError(f"{field}: {value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ContractError(f"{field}: {value} is above the maximum {maximum}")
    return value


def as_float_or_none(value: Any, field: str, minimum: float, maximum: float) -> float | None:
    """An optional number within bounds (fault probabilities, delays, token TTLs)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ContractError(f"{field}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not minimum <= number <= maximum:
        raise ContractError(f"{field}: {value!r} is not between {minimum} and {maximum}")
    return number


def as_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "on", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "on", "1", "yes")
    raise ContractError(f"{field}: expected true or false, got {value!r}")


def as_text(value: Any, field: str, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ContractError(f"{field}: expected a string, got {value!r}")
    if required and not value:
        raise ContractError(f"{field} is required")
    return value


def as_list(value: Any, field: str) -> list[str]:
    """A list of strings from JSON, or a comma-separated string from a form."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ContractError(f"{field}: expected a list of strings, got {value!r}")


def money(value: Any, field: str) -> str:
    """Prices travel as decimal strings with two places."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ContractError(f"{field}: {value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise ContractError(f"{field}: {value!r} is not a non-negative amount")
    return str(amount.quantize(Decimal("0.01")))


def choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ContractError(f"{field}: {value!r} is not one of {', '.join(allowed)}")
    return value


def cancelled_units(item: dict) -> int:
    """`cancelledQuantity` counts cancelled units under any status; CANCELLED without it is all."""
    if "cancelledQuantity" in item:
        return item["cancelledQuantity"]
    return item["quantity"] if item["status"] == "CANCELLED" else 0


def derive_order_status(items: list[dict], current: str) -> str:
    """The channel's order status follows its items: all cancelled, all moved on, or still open.

    A partly cancelled CANCELLED line has units left that are still open (not yet shipped).
    """
    if all(cancelled_units(item) >= item["quantity"] for item in items):
        return "CANCELLED"
    still_open = any(
        item["status"] == "CREATED"
        or (item["status"] == "CANCELLED" and cancelled_units(item) < item["quantity"])
        for item in items
    )
    if not still_open:
        return "COMPLETE"
    return current if current in ("PENDING_VERIFICATION", "CREATED") else "CREATED"


def normalize_address(raw: Any, field: str) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ContractError(f"{field}: expected an object, got {raw!r}")
    address = {key: as_text(raw.get(key), f"{field}.{key}") for key in ADDRESS_FIELDS}
    address["country"] = address["country"] or "IN"
    address.update({k: v for k, v in raw.items() if k not in ADDRESS_FIELDS})
    return address


def normalize_order(raw: Any, now: datetime) -> dict:
    """Check a control-supplied order and fill every field of the contract's ORDER shape.

    Unknown keys are kept, so tests can check that clients tolerate extra fields.
    """
    if not isinstance(raw, dict):
        raise ContractError(f"order: expected an object, got {raw!r}")
    order_id = as_text(raw.get("id"), "order.id", required=True)
    where = f"order {order_id}"
    order_date = raw.get("orderDate") or iso(now)
    parse_iso(order_date, f"{where}: orderDate")
    raw_items = raw.get("orderItems")
    if not isinstance(raw_items, list) or not raw_items:
        raise ContractError(f"{where}: orderItems must be a non-empty list")
    items = []
    seen = set()
    for n, raw_item in enumerate(raw_items, start=1):
        items.append(normalize_item(raw_item, order_id, n, order_date))
        if items[-1]["orderItemId"] in seen:
            raise ContractError(f"{where}: orderItemId {items[-1]['orderItemId']} appears twice")
        seen.add(items[-1]["orderItemId"])
    shipping = normalize_address(raw.get("shippingAddress"), f"{where}: shippingAddress")
    billing = raw.get("billingAddress")
    order = {
        "id": order_id,
        "orderDate": order_date,
        "orderStatus": choice(
            raw.get("orderStatus") or derive_order_status(items, "CREATED"),
            ORDER_STATUSES,
            f"{where}: orderStatus",
        ),
        "paymentType": choice(
            raw.get("paymentType") or "PREPAID", PAYMENT_TYPES, f"{where}: paymentType"
        ),
        "thirdPartyShipping": as_bool(
            raw.get("thirdPartyShipping", False), f"{where}: thirdPartyShipping"
        ),
        "currency": as_text(raw.get("currency") or "INR", f"{where}: currency"),
        "orderItems": items,
        "shippingAddress": shipping,
        "billingAddress": dict(shipping)
        if billing is None
        else normalize_address(billing, f"{where}: billingAddress"),
    }
    order.update({k: v for k, v in raw.items() if k not in order})
    return order


def normalize_item(raw: Any, order_id: str, n: int, order_date: str) -> dict:
    where = f"order {order_id} item {n}"
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: expected an object, got {raw!r}")
    sku = as_text(raw.get("sku"), f"{where}: sku", required=True)
    item_id = as_text(raw.get("orderItemId") or f"{order_id}-{n}", f"{where}: orderItemId")
    where = f"order {order_id} item {item_id}"
    item = {
        "orderItemId": item_id,
        "sku": sku,
        "productId": as_text(raw.get("productId") or f"P-{sku}", f"{where}: productId"),
        "variantId": as_text(raw.get("variantId") or f"V-{sku}", f"{where}: variantId"),
        "title": as_text(raw.get("title") or sku, f"{where}: title"),
        "quantity": as_int(raw.get("quantity", 1), f"{where}: quantity", minimum=1),
        "sellingPrice": money(raw.get("sellingPrice", "0.00"), f"{where}: sellingPrice"),
        "shippingCharges": money(raw.get("shippingCharges", "0.00"), f"{where}: shippingCharges"),
        "status": choice(raw.get("status") or "CREATED", ITEM_STATUSES, f"{where}: status"),
        "updated": raw.get("updated") or order_date,
    }
    parse_iso(item["updated"], f"{where}: updated")
    for key in ITEM_TRACKING_FIELDS:
        item[key] = as_text(raw.get(key), f"{where}: {key}")
    if raw.get("cancelledQuantity") is not None:
        item["cancelledQuantity"] = as_int(
            raw["cancelledQuantity"], f"{where}: cancelledQuantity", 0, item["quantity"]
        )
    item.update({k: v for k, v in raw.items() if k not in item and k != "cancelledQuantity"})
    return item


def outcome(errors: list[tuple[str, str | None]]) -> dict:
    """Section 4's reply from one (orderItemId, error or None) pair per entry received."""
    failed: dict[str, str] = {}
    for item_id, message in errors:
        if message and item_id not in failed:
            failed[item_id] = message
    if not failed:
        return {"orderItems": [], "status": "SUCCESS", "error": ""}
    all_failed = all(message for _, message in errors)
    return {
        "orderItems": [{"orderItemId": i, "errorMessage": m} for i, m in failed.items()],
        "status": "FAILED" if all_failed else "PARTIAL_SUCCESS",
        "error": "; ".join(f"{i}: {m}" for i, m in failed.items()),
    }


def _entries(body: Any, key: str, what: str) -> list[dict]:
    """The list under `key`, or a 400: a body of the wrong shape is a client bug, not an outcome."""
    if not isinstance(body, dict):
        raise ContractError(f"{what}: the body must be a JSON object")
    entries = body.get(key)
    if not isinstance(entries, list) or not entries:
        raise ContractError(f"{what}: {key} must be a non-empty list")
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ContractError(f"{what}: {key}[{n}] must be an object, got {entry!r}")
    return entries


def check_notification(
    order: dict | None, order_id: str, body: Any
) -> list[tuple[str, str | None]]:
    """Check a status notification (section 4) entry by entry: (orderItemId, error or None)."""
    entries = _entries(body, "orderItems", f"notification for order {order_id}")
    items = {item["orderItemId"]: item for item in order["orderItems"]} if order else {}
    results: list[tuple[str, str | None]] = []
    per_item: Counter[str] = Counter()
    for entry in entries:
        item_id = entry.get("orderItemId")
        problems = []
        if not isinstance(item_id, str) or not item_id:
            problems.append("orderItemId is missing")
            item_id = str(item_id or "")
        elif order is None:
            problems.append(f"order {order_id} is unknown")
        elif item_id not in items:
            problems.append(f"order item {item_id} is not in order {order_id}")
        else:
            per_item[item_id] += 1
            quantity = items[item_id]["quantity"]
            if per_item[item_id] > quantity:
                problems.append(f"more entries than the quantity {quantity} of the line")
        reverse = entry.get("IsReverse")
        status = entry.get("status")
        if not isinstance(reverse, bool):
            problems.append(f"IsReverse must be true or false, got {reverse!r}")
        elif status not in (REVERSE_STATUSES if reverse else FORWARD_STATUSES):
            kind = "reverse pickup" if reverse else "forward shipment"
            problems.append(f"status {status!r} is not a {kind} status")
        if parse_updated(entry.get("updated")) is None:
            problems.append(
                f"updated {entry.get('updated')!r} is not like 'Mar 8, 2023 7:12:31 PM'"
            )
        if not isinstance(entry.get("courier_status", ""), str):
            problems.append("courier_status must be a string")
        for field in REVERSE_COURIER_FIELDS:
            if field not in entry:
                continue
            if not (reverse is True and status == "COURIER_ALLOCATED"):
                problems.append(f"{field} is only sent on reverse COURIER_ALLOCATED entries")
            elif not isinstance(entry[field], str):
                problems.append(f"{field} must be a string")
        results.append((item_id, "; ".join(problems) or None))
    return results


def _quantity_problem(entry: dict, item: dict) -> str | None:
    quantity = entry.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        return f"quantity must be a positive integer, got {quantity!r}"
    if quantity > item["quantity"]:
        return f"quantity {quantity} exceeds the {item['quantity']} ordered"
    return None


def check_cancel(order: dict | None, body: Any) -> tuple[str, list[tuple[str, str | None]]]:
    """Check a seller cancel (section 5): the order id, and per entry an error or None."""
    if not isinstance(body, dict):
        raise ContractError("cancel: the body must be a JSON object")
    order_id = body.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise ContractError("cancel: orderId is required")
    entries = _entries(body, "orderItems", f"cancel of order {order_id}")
    if order is None:
        return order_id, [
            (str(e.get("orderItemId", "")), f"order {order_id} is unknown") for e in entries
        ]
    items = {item["orderItemId"]: item for item in order["orderItems"]}
    results: list[tuple[str, str | None]] = []
    for entry in entries:
        item_id = entry.get("orderItemId")
        item = items.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            results.append(
                (str(item_id or ""), f"order item {item_id!r} is not in order {order_id}")
            )
            continue
        problems = [_quantity_problem(entry, item)]
        for key in ("productId", "variantId"):
            if key in entry and entry[key] != item[key]:
                problems.append(f"{key} {entry[key]!r} does not match {item[key]!r}")
        results.append((item_id, "; ".join(p for p in problems if p) or None))
    return order_id, results


def check_dispatch(items: dict[str, dict], body: Any) -> list[tuple[str, str | None]]:
    """Check a seller dispatch (section 6); `items` maps every orderItemId of the channel."""
    entries = _entries(body, "orderItems", "dispatch")
    shipping_problem = None
    self_shipping = body.get("selfShipping")
    if self_shipping is not None:
        if not isinstance(self_shipping, dict):
            shipping_problem = "selfShipping must be an object"
        else:
            missing = [
                key
                for key in SELF_SHIPPING_FIELDS
                if not isinstance(self_shipping.get(key), str) or not self_shipping.get(key)
            ]
            if missing:
                shipping_problem = f"selfShipping lacks {', '.join(missing)}"
    results: list[tuple[str, str | None]] = []
    for entry in entries:
        item_id = entry.get("orderItemId")
        item = items.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            results.append((str(item_id or ""), f"order item {item_id!r} is unknown"))
            continue
        problems = [_quantity_problem(entry, item), shipping_problem]
        results.append((item_id, "; ".join(p for p in problems if p) or None))
    return results


def check_inventory(body: Any) -> list[tuple[dict, str | None]]:
    """Check an inventory push (section 7): per listing, an error or None."""
    entries = _entries(body, "inventoryList", "inventory update")
    results: list[tuple[dict, str | None]] = []
    for entry in entries:
        problems = []
        for key in ("productId", "facilityCode"):
            if not isinstance(entry.get(key), str) or not entry.get(key):
                problems.append(f"{key} is required")
        if not isinstance(entry.get("variantId", ""), str):
            problems.append("variantId must be a string")
        quantity = entry.get("inventory")
        if not isinstance(quantity, str) or not re.fullmatch(r"[0-9]+", quantity):
            problems.append(f"inventory must be a string of digits, got {quantity!r}")
        results.append((entry, "; ".join(problems) or None))
    return results
