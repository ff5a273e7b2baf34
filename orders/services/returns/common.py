"""What the return paths share with each other and with cancellation and repacking: which
statuses make a return, how units are named in messages, reasons and the sequence check made
before anything changes."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError

from inventory.models import Facility
from uniware.core.services import SequenceNotDefined, sequence_find

from ...models import Order, OrderItem, OrderItemStatus, ReversePickupItem, ShipmentStatus
from ...models.returns import REVERSE_PICKUP_OPEN

# A shipment on its way back with the courier, received, or put away (a courier return).
RETURN_PATH = [
    ShipmentStatus.RETURN_EXPECTED,
    ShipmentStatus.RETURN_ACKNOWLEDGED,
    ShipmentStatus.RETURNED,
]
# Units that travel in a dispatched package (and so come back with a courier return).
IN_PACKAGE = [OrderItemStatus.DISPATCHED, OrderItemStatus.RESHIPPED, OrderItemStatus.REPLACED]
CUSTOMER_RETURNABLE_UNITS = [
    OrderItemStatus.DISPATCHED,
    OrderItemStatus.DELIVERED,
    OrderItemStatus.REPLACED,
]
CUSTOMER_RETURNABLE_SHIPMENTS = [
    ShipmentStatus.DISPATCHED,
    ShipmentStatus.SHIPPED,
    ShipmentStatus.DELIVERED,
]
MAX_REASON = 255


def unit_label(unit: OrderItem, orders: dict[int, Order] | None = None) -> str:
    """`<order code>/<unit code>`: unit codes repeat across orders."""
    order = (orders or {}).get(unit.order_id) or unit.order
    return f"{order.code}/{unit.code}"


def clean_reason(reason: str, *, required: bool = True, limit: int = MAX_REASON) -> str:
    """The reason, stripped; a ValidationError when it is missing (if required) or too long."""
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationError({"reason": "A reason is required"})
    if len(reason) > limit:
        raise ValidationError(
            {"reason": f"The reason is {len(reason)} characters long; at most {limit}"}
        )
    return reason


def missing_sequences(facility_ids: Iterable[int], names: Iterable[str]) -> dict[int, str]:
    """{facility id: why} for facilities lacking one of these sequences (no lock taken)."""
    facilities = Facility.objects.in_bulk(set(facility_ids))
    missing: dict[int, str] = {}
    for pk, facility in facilities.items():
        for name in names:
            try:
                sequence_find(name, facility=facility)
            except SequenceNotDefined as exc:
                missing[pk] = str(exc)
                break
    return missing


def shipments_on_open_pickups(shipment_ids) -> set[int]:
    """Shipments with a unit on a reverse pickup that is open or complete (a customer return:
    the package cannot also come back as a courier return)."""
    return set(
        ReversePickupItem.objects.filter(
            order_item__shipment_id__in=list(shipment_ids),
            reverse_pickup__status__in=REVERSE_PICKUP_OPEN,
        ).values_list("order_item__shipment_id", flat=True)
    )
