"""Writing notifications in the transaction of the change they report (transactional outbox).

Receivers, connected in `NotificationsConfig.ready()`:

- `states_changed` of **Shipment** (every transition): a status notification per order with one
  entry per unit of its changed shipments (`IsReverse` false); for SPLITTED / MERGED the units
  now sit in the new shipments, so those are followed, and a second notification reports the
  new shipments' status (CREATED or LOCATION_NOT_SERVICEABLE). A DISPATCHED shipment also
  makes a dispatch push (§6) when the channel accepts them, unless the channel itself reported
  the dispatch.
- `states_changed` of **OrderItem** for `allocate` / `mark_not_serviceable` from CREATED or
  UNFULFILLABLE: the units joined a shipment (new or open), so the channel hears CREATED (or
  LOCATION_NOT_SERVICEABLE) for them. Shipment creation itself is audited without a signal,
  and the units are linked to their shipment only after it, so this is where the creation
  becomes visible with its units, and it also covers units added to an open shipment.
- `states_changed` of **ReversePickup**: a notification with `IsReverse` true; the courier
  fields only with COURIER_ALLOCATED.
- `post_save` of a new **ReversePickup** (its creation sends no signal): a CREATED
  notification whose units are read when it is first sent (the pickup's units are saved
  right after it and never change).
- `units_cancelled` (not by the channel): a cancel push (§5) when the channel accepts them.

Only channels that accept them get notifications (`accepts_status_notifications`,
`accepts_cancel`, `accepts_dispatch`), and only for channel orders (reshipment and replacement
orders are unknown to the channel). Set-based: per signal one query for the units of every
changed object, one for the tenant's time zone when something is written, one bulk insert.
After commit a delivery task is queued (once per transaction); if that fails (broker down) the
sweeper delivers later.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.utils import timezone

from uniware.core.fsm import states_changed
from uniware.core.zones import tenant_zone

from . import payloads
from .models import Notification, NotificationKind, NotificationState, SourceKind

log = logging.getLogger(__name__)

SPLIT_LIKE = ("SPLITTED", "MERGED")
ALLOCATING = {"allocate", "mark_not_serviceable"}
NEWLY_ALLOCATED = {"CREATED", "UNFULFILLABLE"}
NORMAL_ORDER = "NORMAL"
INSERT_BATCH = 1000
COPY_THRESHOLD = 200


def connect() -> None:
    from orders.models import ReversePickup
    from orders.services.cancellation import units_cancelled

    states_changed.connect(on_states_changed, dispatch_uid="notifications.outbox.states")
    units_cancelled.connect(on_units_cancelled, dispatch_uid="notifications.outbox.cancel")
    post_save.connect(
        on_reverse_pickup_saved, sender=ReversePickup, dispatch_uid="notifications.outbox.pickup"
    )


def new_notification(
    *,
    channel_id: int,
    order_id: int,
    channel_order_id: str,
    kind: str,
    event: str,
    payload: dict | None,
    unit_count: int,
    changed_at,
    source_kind: str,
    source_codes: Iterable[str] = (),
    source_id: int | None = None,
    is_reverse: bool = False,
) -> Notification:
    codes = list(dict.fromkeys(source_codes))
    code = ", ".join(codes)
    if len(code) > 255:
        code = f"{code[:230]}… ({len(codes)} in all)"
    return Notification(
        channel_id=channel_id,
        order_id=order_id,
        channel_order_id=channel_order_id,
        kind=kind,
        event=event,
        is_reverse=is_reverse,
        payload=payload,
        unit_count=unit_count,
        changed_at=changed_at,
        next_attempt_at=changed_at,
        source_kind=source_kind,
        source_id=source_id,
        source_code=code,
        state=NotificationState.PENDING,
        idempotency_key=uuid.uuid4().hex,
    )


def write(rows: list[Notification]) -> list[Notification]:
    """Insert the rows in the caller's transaction and queue delivery for after commit.
    Big batches go by COPY on PostgreSQL (a manifest of 10,000 shipments: bulk_create spends
    seconds building SQL and escaping arrays); rows inserted so get no primary key back."""
    if not rows:
        return rows
    if len(rows) < COPY_THRESHOLD or connection.vendor != "postgresql":
        Notification.objects.bulk_create(rows, batch_size=INSERT_BATCH)
    else:
        _copy(rows)
    kick_after_commit()
    return rows


def _copy(rows: list[Notification]) -> None:
    now = timezone.now()
    fields = [f for f in Notification._meta.concrete_fields if not f.primary_key]
    json_fields = {f.attname for f in fields if isinstance(f, models.JSONField)}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(Notification._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            row.created_at = row.created_at or now
            values = []
            for f in fields:
                value = getattr(row, f.attname)
                if f.attname in json_fields and value is not None:
                    value = json.dumps(value)
                values.append(value)
            copy.write_row(values)


# --- delivery after commit ---------------------------------------------------------------


def kick() -> None:
    """Queue a delivery task; never raises (the sweeper delivers what this could not queue)."""
    from .tasks import deliver

    try:
        deliver.apply_async(retry=False)
    except Exception:
        log.warning("could not queue notification delivery; the sweeper will", exc_info=True)


def kick_after_commit() -> None:
    """`kick` once per transaction, however many signals wrote notifications. A callback
    still registered covers this one too: the savepoints it was registered in were either
    released, or are still open and so enclose this point (rolling one back would drop
    these notifications with it); a rolled-back savepoint has dropped its callbacks."""
    conn = transaction.get_connection()
    if conn.in_atomic_block and any(func is kick for _, func, _ in conn.run_on_commit):
        return
    transaction.on_commit(kick, robust=True)


# --- receivers ------------------------------------------------------------------------------


def on_states_changed(sender, transition: str, changes, **kwargs) -> None:
    from orders.models import OrderItem, ReversePickup, Shipment

    if not changes:
        return
    if sender is Shipment:
        shipments_changed(transition, changes)
    elif sender is ReversePickup:
        reverse_pickups_changed(changes)
    elif sender is OrderItem and transition in ALLOCATING:
        units_allocated(changes)


def _moment(obj) -> object:
    return getattr(obj, "updated_at", None) or timezone.now()


def shipments_changed(transition: str, changes) -> list[Notification]:
    from orders.models import OrderItem

    by_id = {c.obj.pk: c for c in changes}
    to_state = changes[0].to_state
    split_like = to_state in SPLIT_LIKE
    dispatch_push = to_state == "DISPATCHED" and transition != "dispatch_from_channel"
    wanted = Q(order__channel__accepts_status_notifications=True)
    if dispatch_push:
        wanted |= Q(order__channel__accepts_dispatch=True)
    if split_like:  # the units have moved to the new shipments (children) already
        units = OrderItem.objects.filter(shipment__parent_id__in=list(by_id))
        key = "shipment__parent_id"
    else:
        units = OrderItem.objects.filter(shipment_id__in=list(by_id))
        key = "shipment_id"
    rows = list(
        units.filter(wanted, order__kind=NORMAL_ORDER)
        .order_by("pk")
        .values_list(
            key,
            "order_id",
            "channel_order_item_id",
            "status",
            "order__channel_id",
            "order__channel_order_id",
            "order__channel__accepts_status_notifications",
            "order__channel__accepts_dispatch",
            "order__third_party_shipping",
            "shipment_id",
            "shipment__code",
            "shipment__status",
            "shipment__courier_status",
        )
    )
    if not rows:
        return []
    tz = tenant_zone()
    status_entries: dict[int, list] = defaultdict(list)
    child_entries: dict[tuple[int, str], list] = defaultdict(list)
    dispatched: dict[int, list] = defaultdict(list)
    orders: dict[int, tuple] = {}
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
        _current_id,
        current_code,
        current_status,
        current_courier,
    ) in rows:
        orders[order_id] = (channel_id, channel_order_id, channel_ships)
        change = by_id[shipment_id]
        if unit_status == "CANCELLED" and to_state != "CANCELLED":
            continue  # cancelled before the shipment moved on: not part of it any more
        if notifies:
            status_entries[order_id].append((change, item_id))
            if split_like:
                child_entries[(order_id, current_status)].append(
                    (current_code, item_id, current_courier, change)
                )
        if dispatch_push and accepts_dispatch:
            dispatched[shipment_id].append(item_id)

    notifications = []
    for order_id, members in status_entries.items():
        channel_id, channel_order_id, _ = orders[order_id]
        moment = max(_moment(change.obj) for change, _ in members)
        updated = payloads.format_updated(moment, tz)
        entries = [
            payloads.forward_entry(
                item_id, change.to_state, getattr(change.obj, "courier_status", ""), updated
            )
            for change, item_id in members
        ]
        shipments = [change.obj for change, _ in members]
        notifications.append(
            new_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                kind=NotificationKind.STATUS,
                event=to_state,
                payload=payloads.status_body(entries),
                unit_count=len(entries),
                changed_at=moment,
                source_kind=SourceKind.SHIPMENT,
                source_codes=[s.code for s in shipments],
                source_id=shipments[0].pk if len({s.pk for s in shipments}) == 1 else None,
            )
        )
    for (order_id, status), members in child_entries.items():
        channel_id, channel_order_id, _ = orders[order_id]
        moment = max(_moment(change.obj) for *_, change in members)
        updated = payloads.format_updated(moment, tz)
        entries = [
            payloads.forward_entry(item_id, status, courier, updated)
            for _, item_id, courier, _ in members
        ]
        notifications.append(
            new_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                kind=NotificationKind.STATUS,
                event=status,
                payload=payloads.status_body(entries),
                unit_count=len(entries),
                changed_at=moment,
                source_kind=SourceKind.SHIPMENT,
                source_codes=[code for code, *_ in members],
            )
        )
    if dispatched:
        notifications += _dispatch_pushes(dispatched, by_id, orders, rows, tz)
    return write(notifications)


def _dispatch_pushes(dispatched, by_id, orders, rows, tz) -> list[Notification]:
    """§6 per dispatched shipment; `selfShipping` (provider, dispatch date, invoice, tracking
    number) when the seller ships it."""
    from inventory.models import ShippingProvider
    from orders.models import CURRENT_SALE, Invoice

    order_of = {row[0]: row[1] for row in rows}
    self_shipped = [pk for pk in dispatched if not orders[order_of[pk]][2]]
    invoices: dict[int, tuple] = {}
    providers: dict[int, str] = {}
    if self_shipped:
        for shipment_id, code, created in Invoice.objects.filter(
            CURRENT_SALE, shipment_id__in=self_shipped
        ).values_list("shipment_id", "code", "created_at"):
            invoices[shipment_id] = (code, created)
        provider_ids = {by_id[pk].obj.shipping_provider_id for pk in self_shipped} - {None}
        if provider_ids:
            providers = dict(
                ShippingProvider.objects.filter(pk__in=provider_ids).values_list("pk", "name")
            )
    result = []
    for shipment_id, item_ids in dispatched.items():
        shipment = by_id[shipment_id].obj
        order_id = order_of[shipment_id]
        channel_id, channel_order_id, channel_ships = orders[order_id]
        moment = getattr(shipment, "dispatched_at", None) or _moment(shipment)
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


def units_allocated(changes) -> list[Notification]:
    """Units that joined a shipment (allocation): CREATED / LOCATION_NOT_SERVICEABLE."""
    from orders.models import Order, Shipment

    units = [c.obj for c in changes if c.from_state in NEWLY_ALLOCATED and c.obj.shipment_id]
    if not units or not _channels_notified():
        return []
    orders = {
        pk: (channel_id, channel_order_id)
        for pk, channel_id, channel_order_id in Order.objects.filter(
            pk__in={u.order_id for u in units},
            kind=NORMAL_ORDER,
            channel__accepts_status_notifications=True,
        ).values_list("pk", "channel_id", "channel_order_id")
    }
    units = [u for u in units if u.order_id in orders]
    if not units:
        return []
    # allocation links the units to their shipments in memory before it saves the links
    cached: dict[int, Shipment] = {}
    missing = set()
    for unit in units:
        shipment = unit._state.fields_cache.get("shipment")
        if shipment is not None and shipment.pk == unit.shipment_id:
            cached[unit.shipment_id] = shipment
        else:
            missing.add(unit.shipment_id)
    if missing:
        cached.update(Shipment.objects.in_bulk(missing))
    tz = tenant_zone()
    groups: dict[tuple[int, str], list] = defaultdict(list)
    for unit in units:
        shipment = cached[unit.shipment_id]
        groups[(unit.order_id, shipment.status)].append((unit, shipment))
    notifications = []
    for (order_id, status), members in groups.items():
        channel_id, channel_order_id = orders[order_id]
        moment = max(_moment(unit) for unit, _ in members)
        updated = payloads.format_updated(moment, tz)
        entries = [
            payloads.forward_entry(unit.channel_order_item_id, status, s.courier_status, updated)
            for unit, s in members
        ]
        shipments = {s.pk: s for _, s in members}
        notifications.append(
            new_notification(
                channel_id=channel_id,
                order_id=order_id,
                channel_order_id=channel_order_id,
                kind=NotificationKind.STATUS,
                event=status,
                payload=payloads.status_body(entries),
                unit_count=len(entries),
                changed_at=moment,
                source_kind=SourceKind.SHIPMENT,
                source_codes=[s.code for s in shipments.values()],
                source_id=next(iter(shipments)) if len(shipments) == 1 else None,
            )
        )
    return write(notifications)


def _channels_notified() -> bool:
    """Whether any channel takes status notifications: a tiny query that spares allocating
    thousands of units (an import) the query of their orders when none does."""
    from channels.models import Channel

    return Channel.objects.filter(accepts_status_notifications=True).exists()


def reverse_pickups_changed(changes) -> list[Notification]:
    from orders.models import ReversePickupItem

    by_id = {c.obj.pk: c for c in changes}
    rows = list(
        ReversePickupItem.objects.filter(
            reverse_pickup_id__in=list(by_id),
            order_item__order__kind=NORMAL_ORDER,
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
        notifications.append(
            reverse_notification(
                pickup_id=pickup_id,
                pickup_code=pickup.code,
                order_id=order_id,
                channel_id=channel_id,
                channel_order_id=channel_order_id,
                status=change.to_state,
                item_ids=[item_id for _, item_id, _, _ in members],
                moment=_moment(pickup),
                tz=tz,
                courier=(pickup.courier_name, pickup.courier_code, pickup.return_awb),
            )
        )
    return write(notifications)


def reverse_body(
    item_ids: list[str], status: str, moment, tz, courier: tuple[str, str, str] = ("", "", "")
) -> dict:
    updated = payloads.format_updated(moment, tz)
    name, code, awb = courier
    return payloads.status_body(
        [
            payloads.reverse_entry(
                item_id, status, updated, courier_name=name, courier_code=code, return_awb=awb
            )
            for item_id in item_ids
        ]
    )


def reverse_notification(
    *,
    pickup_id,
    pickup_code,
    order_id,
    channel_id,
    channel_order_id,
    status,
    item_ids,
    moment,
    tz,
    courier,
) -> Notification:
    return new_notification(
        channel_id=channel_id,
        order_id=order_id,
        channel_order_id=channel_order_id,
        kind=NotificationKind.STATUS,
        event=status,
        payload=reverse_body(item_ids, status, moment, tz, courier),
        unit_count=len(item_ids),
        changed_at=moment,
        source_kind=SourceKind.REVERSE_PICKUP,
        source_codes=[pickup_code],
        source_id=pickup_id,
        is_reverse=True,
    )


def on_reverse_pickup_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """A new reverse pickup (CREATED): its units are saved after it, so the payload is built
    when the notification is first sent (`resolve_pending_payloads`)."""
    if not created or raw:
        return
    from orders.models import Order

    row = (
        Order.objects.filter(
            pk=instance.order_id, kind=NORMAL_ORDER, channel__accepts_status_notifications=True
        )
        .values_list("channel_id", "channel_order_id")
        .first()
    )
    if row is None:
        return
    channel_id, channel_order_id = row
    write(
        [
            new_notification(
                channel_id=channel_id,
                order_id=instance.order_id,
                channel_order_id=channel_order_id,
                kind=NotificationKind.STATUS,
                event=instance.status,
                payload=None,
                unit_count=0,
                changed_at=instance.created_at or timezone.now(),
                source_kind=SourceKind.REVERSE_PICKUP,
                source_codes=[instance.code],
                source_id=instance.pk,
                is_reverse=True,
            )
        ]
    )


def resolve_pending_payloads(notifications: list[Notification]) -> None:
    """Build the payloads left empty at write time (reverse pickup creation), in place; the
    caller saves them. A pickup without units (none saved) gets an empty payload and is then
    discarded by the sender as having nothing to say."""
    from orders.models import ReversePickupItem

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
        n.payload = reverse_body(ids, n.event, n.changed_at, tz)
        n.unit_count = len(ids)


def on_units_cancelled(sender, units, reason: str = "", by_channel: bool = False, **kwargs):
    """The seller cancelled units: tell channels that accept cancel pushes (§5)."""
    from orders.models import Order

    if by_channel or not units:
        return
    orders = {
        pk: (channel_id, channel_order_id)
        for pk, channel_id, channel_order_id in Order.objects.filter(
            pk__in={u.order_id for u in units}, kind=NORMAL_ORDER, channel__accepts_cancel=True
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
    write(notifications)
