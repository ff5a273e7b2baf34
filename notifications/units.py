"""The notifications of units that changed outside a shipment transition: units allocated to a
shipment (CREATED / LOCATION_NOT_SERVICEABLE) and units the seller cancelled (a cancel push,
§5). Rows are built, not written: `notifications.receivers` writes them.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from channels.models import Channel
from orders.models import Order, OrderItem, OrderKind, Shipment
from uniware.core.fsm import Change
from uniware.core.zones import tenant_zone

from . import payloads
from .models import (
    Notification,
    NotificationKind,
    SourceKind,
    moment_of,
    new_notification,
    shipment_status_notification,
)

NEWLY_ALLOCATED = {"CREATED", "UNFULFILLABLE"}


def units_allocated(changes: list[Change]) -> list[Notification]:
    """Units that joined a shipment (allocation) from CREATED or UNFULFILLABLE: per order and
    shipment status, their status (CREATED / LOCATION_NOT_SERVICEABLE)."""
    units = [c.obj for c in changes if c.from_state in NEWLY_ALLOCATED and c.obj.shipment_id]
    if not units or not _channels_notified():
        return []
    orders = {
        pk: (channel_id, channel_order_id)
        for pk, channel_id, channel_order_id in Order.objects.filter(
            pk__in={u.order_id for u in units},
            kind=OrderKind.NORMAL,
            channel__accepts_status_notifications=True,
        ).values_list("pk", "channel_id", "channel_order_id")
    }
    units = [u for u in units if u.order_id in orders]
    if not units:
        return []
    shipments = _shipments_of(units)
    tz = tenant_zone()
    groups: dict[tuple[int, str], list] = defaultdict(list)
    for unit in units:
        shipment = shipments[unit.shipment_id]
        groups[(unit.order_id, shipment.status)].append((unit, shipment))
    notifications = []
    for (order_id, status), members in groups.items():
        channel_id, channel_order_id = orders[order_id]
        moment = max(moment_of(unit) for unit, _ in members)
        updated = payloads.format_updated(moment, tz)
        entries = [
            payloads.forward_entry(unit.channel_order_item_id, status, s.courier_status, updated)
            for unit, s in members
        ]
        distinct = {s.pk: s for _, s in members}
        notifications.append(
            shipment_status_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                status=status,
                entries=entries,
                changed_at=moment,
                source_codes=[s.code for s in distinct.values()],
                source_id=next(iter(distinct)) if len(distinct) == 1 else None,
            )
        )
    return notifications


def _shipments_of(units: list[OrderItem]) -> dict[int, Shipment]:
    """The units' shipments: allocation links them in memory before it saves the links, so
    those are read from the units, the others in one query."""
    found: dict[int, Shipment] = {}
    missing = set()
    for unit in units:
        shipment = unit._state.fields_cache.get("shipment")
        if shipment is not None and shipment.pk == unit.shipment_id:
            found[unit.shipment_id] = shipment
        else:
            missing.add(unit.shipment_id)
    if missing:
        found.update(Shipment.objects.in_bulk(missing))
    return found


def _channels_notified() -> bool:
    """Whether any channel takes status notifications: a tiny query that spares allocating
    thousands of units (an import) the query of their orders when none does."""
    return Channel.objects.filter(accepts_status_notifications=True).exists()


def cancel_pushes(units: list[OrderItem]) -> list[Notification]:
    """Per order whose channel accepts cancel pushes, one for the units the seller cancelled."""
    orders = {
        pk: (channel_id, channel_order_id)
        for pk, channel_id, channel_order_id in Order.objects.filter(
            pk__in={u.order_id for u in units}, kind=OrderKind.NORMAL, channel__accepts_cancel=True
        ).values_list("pk", "channel_id", "channel_order_id")
    }
    per_order: dict[int, list] = defaultdict(list)
    for unit in sorted(units, key=lambda u: u.pk):
        if unit.order_id in orders:
            per_order[unit.order_id].append(unit)
    now = timezone.now()
    notifications = []
    for order_id, members in per_order.items():
        channel_id, channel_order_id = orders[order_id]
        body = payloads.cancel_body(
            channel_order_id,
            [(u.channel_order_item_id, u.channel_product_id, u.variant_id) for u in members],
        )
        notifications.append(
            new_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                kind=NotificationKind.CANCEL,
                event="CANCELLED",
                payload=body,
                unit_count=len(members),
                changed_at=now,
                source_kind=SourceKind.UNITS,
                source_codes=[u.code for u in members],
            )
        )
    return notifications
