"""The notifications of reverse pickups (`IsReverse` true; the courier fields only with
COURIER_ALLOCATED). A new pickup's CREATED notification is written without its units, which
are saved after it, and its payload is built when it is first sent
(`resolve_pending_payloads`, called by the delivery's claim).

Rows are built, not written: `notifications.receivers` writes them.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from orders.models import Order, OrderKind, ReversePickup, ReversePickupItem
from uniware.core.fsm import Change
from uniware.core.zones import tenant_zone

from . import payloads
from .models import Notification, NotificationKind, SourceKind, moment_of, new_notification


def reverse_pickups_changed(changes: list[Change]) -> list[Notification]:
    """Per pickup on a channel order whose channel hears about it, its units' new status."""
    by_id = {c.obj.pk: c for c in changes}
    rows = list(
        ReversePickupItem.objects.filter(
            reverse_pickup_id__in=list(by_id),
            order_item__order__kind=OrderKind.NORMAL,
            order_item__order__channel__accepts_status_notifications=True,
        )
        .order_by("order_item_id")
        .values_list(
            "reverse_pickup_id",
            "order_item__order_id",
            "order_item__channel_order_item_id",
            "order_item__order__channel_id",
            "order_item__order__channel_order_id",
        )
    )
    if not rows:
        return []
    tz = tenant_zone()
    per_pickup: dict[int, list] = defaultdict(list)
    for pickup_id, order_id, item_id, channel_id, channel_order_id in rows:
        per_pickup[pickup_id].append((order_id, item_id, channel_id, channel_order_id))
    notifications = []
    for pickup_id, members in per_pickup.items():
        change = by_id[pickup_id]
        pickup = change.obj
        order_id, _, channel_id, channel_order_id = members[0]
        moment = moment_of(pickup)
        item_ids = [item_id for _, item_id, _, _ in members]
        courier = (pickup.courier_name, pickup.courier_code, pickup.return_awb)
        notifications.append(
            new_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                kind=NotificationKind.STATUS,
                event=change.to_state,
                payload=payloads.reverse_body(item_ids, change.to_state, moment, tz, courier),
                unit_count=len(item_ids),
                changed_at=moment,
                source_kind=SourceKind.REVERSE_PICKUP,
                source_codes=[pickup.code],
                source_id=pickup_id,
                is_reverse=True,
            )
        )
    return notifications


def pickup_created(pickup: ReversePickup) -> list[Notification]:
    """A new reverse pickup (CREATED) on a channel order whose channel hears about it: its
    notification, payload to come (its units are saved after it)."""
    row = (
        Order.objects.filter(
            pk=pickup.order_id,
            kind=OrderKind.NORMAL,
            channel__accepts_status_notifications=True,
        )
        .values_list("channel_id", "channel_order_id")
        .first()
    )
    if row is None:
        return []
    channel_id, channel_order_id = row
    return [
        new_notification(
            channel_id=channel_id,
            order_id=pickup.order_id,
            channel_order_id=channel_order_id,
            kind=NotificationKind.STATUS,
            event=pickup.status,
            payload=None,
            unit_count=0,
            changed_at=pickup.created_at or timezone.now(),
            source_kind=SourceKind.REVERSE_PICKUP,
            source_codes=[pickup.code],
            source_id=pickup.pk,
            is_reverse=True,
        )
    ]


def resolve_pending_payloads(notifications: list[Notification]) -> None:
    """Build the payloads left empty at write time (reverse pickup creation), in place; the
    caller saves them. A pickup without units (none saved) gets an empty payload and is then
    discarded by the sender as having nothing to say."""
    pending = [n for n in notifications if n.payload is None]
    if not pending:
        return
    items: dict[int, list[str]] = defaultdict(list)
    for pickup_id, item_id in (
        ReversePickupItem.objects.filter(reverse_pickup_id__in={n.source_id for n in pending})
        .order_by("order_item_id")
        .values_list("reverse_pickup_id", "order_item__channel_order_item_id")
    ):
        items[pickup_id].append(item_id)
    tz = tenant_zone()
    for n in pending:
        ids = items.get(n.source_id, [])
        n.payload = payloads.reverse_body(ids, n.event, n.changed_at, tz)
        n.unit_count = len(ids)
