"""The notifications of shipments that changed state together (one transition of many).

A status notification per order with one entry per unit of its changed shipments (`IsReverse`
false). For SPLITTED / MERGED the units sit in the new shipments already, so those are
followed, and a second notification per order reports the new shipments' status (CREATED or
LOCATION_NOT_SERVICEABLE). A DISPATCHED shipment also makes a dispatch push (§6) when the
channel accepts them, unless the channel itself reported the dispatch.

Rows are built, not written: `notifications.receivers` writes them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Q

from inventory.models import ShippingProvider
from orders.models import CURRENT_SALE, Invoice, OrderItem, OrderKind
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

SPLIT_LIKE = ("SPLITTED", "MERGED")
# Per unit, after the key of its changed shipment: its order and channel, and the shipment it
# sits in now (the changed one, or after a split or merge its new one).
UNIT_FIELDS = (
    "order_id",
    "channel_order_item_id",
    "status",
    "order__channel_id",
    "order__channel_order_id",
    "order__channel__accepts_status_notifications",
    "order__channel__accepts_dispatch",
    "order__third_party_shipping",
    "shipment__code",
    "shipment__status",
    "shipment__courier_status",
)


@dataclass
class ChangedUnits:
    """The changed shipments' units that channels hear about, grouped per notification."""

    to_state: str
    # order -> (the change of the unit's shipment, the unit's channel item id)
    status: dict[int, list[tuple[Change, str]]] = field(default_factory=lambda: defaultdict(list))
    # (order, new shipment's status) -> (its code, item id, its courier status, parent's change)
    split: dict[tuple[int, str], list[tuple[str, str, str, Change]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # changed shipment -> the item ids of its dispatch push
    dispatched: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    orders: dict[int, tuple[int, str, bool]] = field(default_factory=dict)  # channel, id, ships
    order_of: dict[int, int] = field(default_factory=dict)  # changed shipment -> its order


def shipments_changed(transition: str, changes: list[Change]) -> list[Notification]:
    """The rows for shipments moved by one transition: status notifications, then the new
    shipments' after a split or merge, then dispatch pushes."""
    by_id = {c.obj.pk: c for c in changes}
    to_state = changes[0].to_state
    dispatch_push = to_state == "DISPATCHED" and transition != "dispatch_from_channel"
    rows = _unit_rows(list(by_id), to_state in SPLIT_LIKE, dispatch_push)
    if not rows:
        return []
    units = _group(rows, by_id, to_state, dispatch_push)
    tz = tenant_zone()
    return [
        *_status_notifications(units, tz),
        *_split_notifications(units, tz),
        *_dispatch_pushes(units, by_id, tz),
    ]


def _unit_rows(shipment_ids: list[int], split_like: bool, dispatch_push: bool) -> list[tuple]:
    """The units of the changed shipments on channel orders whose channel hears about them, in
    unit order, each keyed by its changed shipment (`UNIT_FIELDS` after the key)."""
    wanted = Q(order__channel__accepts_status_notifications=True)
    if dispatch_push:
        wanted |= Q(order__channel__accepts_dispatch=True)
    key = "shipment__parent_id" if split_like else "shipment_id"
    units = OrderItem.objects.filter(
        wanted, order__kind=OrderKind.NORMAL, **{f"{key}__in": shipment_ids}
    )
    return list(units.order_by("pk").values_list(key, *UNIT_FIELDS))


def _group(
    rows: list[tuple], by_id: dict[int, Change], to_state: str, dispatch_push: bool
) -> ChangedUnits:
    units = ChangedUnits(to_state)
    for (
        shipment_id,
        order_id,
        item_id,
        unit_status,
        channel_id,
        channel_order_id,
        notifies,
        accepts_dispatch,
        channel_ships,
        current_code,
        current_status,
        current_courier,
    ) in rows:
        units.orders[order_id] = (channel_id, channel_order_id, channel_ships)
        units.order_of[shipment_id] = order_id
        if unit_status == "CANCELLED" and to_state != "CANCELLED":
            continue  # cancelled before the shipment moved on: not part of it any more
        change = by_id[shipment_id]
        if notifies:
            units.status[order_id].append((change, item_id))
            if to_state in SPLIT_LIKE:
                units.split[(order_id, current_status)].append(
                    (current_code, item_id, current_courier, change)
                )
        if dispatch_push and accepts_dispatch:
            units.dispatched[shipment_id].append(item_id)
    return units


def _status_notifications(units: ChangedUnits, tz: ZoneInfo) -> list[Notification]:
    """Per order, its units' new status (the changed shipments')."""
    result = []
    for order_id, members in units.status.items():
        channel_id, channel_order_id, _ = units.orders[order_id]
        moment = max(moment_of(change.obj) for change, _ in members)
        updated = payloads.format_updated(moment, tz)
        entries = [
            payloads.forward_entry(
                item_id, change.to_state, getattr(change.obj, "courier_status", ""), updated
            )
            for change, item_id in members
        ]
        shipments = [change.obj for change, _ in members]
        result.append(
            shipment_status_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                status=units.to_state,
                entries=entries,
                changed_at=moment,
                source_codes=[s.code for s in shipments],
                source_id=shipments[0].pk if len({s.pk for s in shipments}) == 1 else None,
            )
        )
    return result


def _split_notifications(units: ChangedUnits, tz: ZoneInfo) -> list[Notification]:
    """After a split or merge, per order and status, the new shipments' status."""
    result = []
    for (order_id, status), members in units.split.items():
        channel_id, channel_order_id, _ = units.orders[order_id]
        moment = max(moment_of(change.obj) for *_, change in members)
        updated = payloads.format_updated(moment, tz)
        entries = [
            payloads.forward_entry(item_id, status, courier, updated)
            for _, item_id, courier, _ in members
        ]
        result.append(
            shipment_status_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                status=status,
                entries=entries,
                changed_at=moment,
                source_codes=[code for code, *_ in members],
            )
        )
    return result


def _dispatch_pushes(
    units: ChangedUnits, by_id: dict[int, Change], tz: ZoneInfo
) -> list[Notification]:
    """§6 per dispatched shipment; `selfShipping` (provider, dispatch date, invoice, tracking
    number) when the seller ships it."""
    self_shipped = [pk for pk in units.dispatched if not units.orders[units.order_of[pk]][2]]
    invoices, providers = _self_shipping_facts(self_shipped, by_id)
    result = []
    for shipment_id, item_ids in units.dispatched.items():
        shipment = by_id[shipment_id].obj
        order_id = units.order_of[shipment_id]
        channel_id, channel_order_id, channel_ships = units.orders[order_id]
        moment = getattr(shipment, "dispatched_at", None) or moment_of(shipment)
        self_shipping = None
        if not channel_ships:
            invoice_code, invoice_date = invoices.get(shipment_id, ("", None))
            self_shipping = {
                "deliveryPartner": providers.get(shipment.shipping_provider_id, ""),
                "dispatchDate": payloads.iso(moment, tz),
                "invoiceNumber": invoice_code,
                "invoiceDate": payloads.iso(invoice_date, tz) if invoice_date else "",
                "trackingId": shipment.tracking_number or "",
            }
        result.append(
            new_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                kind=NotificationKind.DISPATCH,
                event="DISPATCHED",
                payload=payloads.dispatch_body(item_ids, self_shipping),
                unit_count=len(item_ids),
                changed_at=moment,
                source_kind=SourceKind.SHIPMENT,
                source_codes=[shipment.code],
                source_id=shipment.pk,
            )
        )
    return result


def _self_shipping_facts(
    shipment_ids: list[int], by_id: dict[int, Change]
) -> tuple[dict[int, tuple[str, datetime]], dict[int, str]]:
    """The current sale invoice (code, date) of each shipment the seller ships, and the names
    of their shipping providers: two queries, none when there are no such shipments."""
    if not shipment_ids:
        return {}, {}
    invoices = {
        shipment_id: (code, created)
        for shipment_id, code, created in Invoice.objects.filter(
            CURRENT_SALE, shipment_id__in=shipment_ids
        ).values_list("shipment_id", "code", "created_at")
    }
    provider_ids = {by_id[pk].obj.shipping_provider_id for pk in shipment_ids} - {None}
    providers = {}
    if provider_ids:
        providers = dict(
            ShippingProvider.objects.filter(pk__in=provider_ids).values_list("pk", "name")
        )
    return invoices, providers
