"""Cancelling units and orders, with the handling each unit's stage requires (domain.md,
"Cancellation by stage"; seed 001):

| stage of the unit                      | handling here                                          |
|----------------------------------------|--------------------------------------------------------|
| before invoicing, not on a picklist    | CANCELLED; its blocked stock is released               |
| before invoicing, on a picklist        | CANCELLED; `PUTAWAY_PICKLIST_ITEM` putaway              |
| after invoicing, before dispatch       | CANCELLED; `PUTAWAY_CANCELLED_ITEM` putaway; sale      |
|                                        | return invoice reversing it; a packed shipment that    |
|                                        | keeps other units waits for re-packing (`repacking`)   |
| after dispatch                         | a courier return: shipment RETURN_EXPECTED, the unit   |
|                                        | stays DISPATCHED with its cancellation reason; then a  |
|                                        | return manifest (ITEM) or "mark returned" (SKU/NONE)   |

Stock (see `inventory.putaway` for the whole model): a unit not yet picked never left its
shelf, so releasing the block is all; a picked or invoiced unit leaves its shelf row at cancel
time (quantity and block both go down, as at dispatch) and comes back only when its putaway
completes — so it is never counted twice, and never counted while it sits in a tote.

A shipment whose units are all cancelled is CANCELLED; picklists left with nothing to pick are
closed; order statuses are derived again. `units_cancelled` is sent for the cancelled units
(with `by_channel`) so the channel integration can tell the channel — or not, when the channel
itself cancelled.

Side effects through signals, in the same transaction: `units_cancelled` makes
`notifications.receivers` write the cancel push (when staff cancelled), and the units' and
shipments' transitions (`apply_transitions` → `states_changed`) their status notifications.
"""

from __future__ import annotations

from collections import defaultdict
from enum import Enum

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from inventory.models import PutawayType, StockReason
from inventory.putaway import putaways_create
from inventory.services import stock_consume, stock_lock_rows, stock_release
from uniware.core.actors import Actor
from uniware.core.audit import record_events
from uniware.core.fsm import apply_transitions, can_transition
from uniware.core.models import SequenceName
from uniware.core.results import Outcome

from ..locks import lock_items, lock_orders, lock_shipments
from ..models import (
    CURRENT_SALE,
    Invoice,
    Order,
    OrderItem,
    OrderItemStatus,
    ShipmentStatus,
)
from ..models.order import ITEM_BLOCKING_STOCK
from .allocation import allocate_after_commit
from .fulfilment import _close_finished_picklists, _lock_open_picklists
from .invoicing import issue_credit_notes
from .orders import orders_refresh_status
from .repacking import wait_for_repacking
from .returns.common import (
    RETURN_PATH,
    missing_sequences,
    shipments_on_open_pickups,
    unit_label,
)

MAX_REASON = 100  # the API's cancellationReason (uniware-research §8)

# Sent after units are cancelled (inside the transaction): sender=OrderItem, units=[...],
# reason=str, by_channel=bool, actor=Actor. `units` includes dispatched units that became
# courier returns.
units_cancelled = Signal()


class Stage(Enum):
    RELEASE = "before invoicing, not on a picklist"
    PICKLIST = "before invoicing, on a picklist"
    INVOICED = "after invoicing, before dispatch"
    DISPATCHED = "after dispatch"


PICKED = [
    OrderItemStatus.PICKING_FOR_STAGING,
    OrderItemStatus.PICKING_FOR_INVOICING,
    OrderItemStatus.MANIFESTED,
]
FINISHED = [
    OrderItemStatus.CANCELLED,
    OrderItemStatus.DELIVERED,
    OrderItemStatus.REPLACED,
    OrderItemStatus.RESHIPPED,
]


def check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A cancellation reason is required"})
    if len(reason) > MAX_REASON:
        raise ValidationError(
            {
                "reason": f"The cancellation reason is {len(reason)} characters long; "
                f"at most {MAX_REASON}"
            }
        )
    return reason


def units_cancel(unit_ids, *, reason: str, actor=None, by_channel: bool = False) -> Outcome:
    """Cancel units, each with the handling of its stage (module docstring).

    `outcome.done` holds the units cancelled (or turned into courier returns), `created` the
    putaways and sale return invoices, `failed` each refused unit as `<order>/<unit>` with
    the reason: already cancelled or finished (`"unit is CANCELLED: ..."`), already a courier
    return, on a reverse pickup, or a missing PUTAWAY / RETURN_INVOICE sequence (nothing of
    that unit changes)."""
    return _cancel(list(unit_ids), reason=reason, actor=actor, by_channel=by_channel)


def orders_cancel(order_ids, *, reason: str, actor=None, by_channel: bool = False) -> Outcome:
    """Cancel every unit of these orders that is not finished (cancelled, delivered,
    replaced, reshipped or already coming back). An order is cancelled whole or not at all:
    if one of its units is refused (say a missing sequence), none of it changes and the order
    is reported with the reasons. `outcome.done` holds the orders."""
    order_ids = list(order_ids)
    unit_ids = list(OrderItem.objects.filter(order_id__in=order_ids).values_list("pk", flat=True))
    outcome = _cancel(
        unit_ids, reason=reason, actor=actor, by_channel=by_channel, order_ids=order_ids
    )
    return outcome


def _stage(unit: OrderItem, shipment, invoiced: set[int], busy: set[int]) -> Stage | str:
    """The unit's stage, or why it cannot be cancelled."""
    if unit.status in FINISHED:
        if unit.status == OrderItemStatus.DELIVERED:
            return "unit is DELIVERED: a customer return needs a reverse pickup"
        return f"unit is {unit.status}: nothing left to cancel"
    if unit.status == OrderItemStatus.DISPATCHED:
        if shipment is None:
            return "unit is DISPATCHED without a shipment"
        if shipment.status in RETURN_PATH:
            return f"unit is DISPATCHED and shipment {shipment} is already {shipment.status}"
        if shipment.status not in (ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED):
            return f"unit is DISPATCHED and shipment {shipment} is {shipment.status}"
        if shipment.pk in busy:
            return f"a unit of shipment {shipment} is on a reverse pickup (customer return)"
        return Stage.DISPATCHED
    if shipment is not None and shipment.pk in invoiced:
        return Stage.INVOICED
    if unit.status in PICKED:
        return Stage.PICKLIST
    return Stage.RELEASE


# Reasons that only say the unit is done with: `orders_cancel` skips such units silently.
def _is_finished(why: str) -> bool:
    return why.startswith("unit is ")


def _cancel(unit_ids, *, reason, actor, by_channel, order_ids=None) -> Outcome:
    actor = Actor.of(actor)
    reason = check_reason(reason)
    outcome = Outcome()
    with transaction.atomic():
        rows = list(
            OrderItem.objects.filter(pk__in=unit_ids).values_list("order_id", "shipment_id")
        )
        shipment_ids = {s for _, s in rows if s}
        picklists = _lock_open_picklists(shipment_ids)
        orders = lock_orders({o for o, _ in rows} | set(order_ids or []))
        shipments = {s.pk: s for s in lock_shipments(shipment_ids)}
        units = lock_items(pk__in=unit_ids)
        invoiced = set(
            Invoice.objects.filter(CURRENT_SALE, shipment_id__in=list(shipments)).values_list(
                "shipment_id", flat=True
            )
        )
        busy = shipments_on_open_pickups(
            {u.shipment_id for u in units if u.status == OrderItemStatus.DISPATCHED}
        )
        plan: dict[Stage, list[OrderItem]] = defaultdict(list)
        refused: list[tuple[OrderItem, str]] = []
        for unit in units:
            unit.order = orders[unit.order_id]
            shipment = shipments.get(unit.shipment_id) if unit.shipment_id else None
            if unit.shipment_id and shipment is None:
                refused.append((unit, "its shipment changed meanwhile; try again"))
                continue
            stage = _stage(unit, shipment, invoiced, busy)
            if isinstance(stage, str):
                refused.append((unit, stage))
            else:
                plan[stage].append(unit)

        # Putaways need the PUTAWAY sequence, sale return invoices RETURN_INVOICE.
        needs = {
            Stage.PICKLIST: [SequenceName.PUTAWAY],
            Stage.INVOICED: [SequenceName.PUTAWAY, SequenceName.RETURN_INVOICE],
        }
        for stage, names in needs.items():
            missing = missing_sequences(
                {shipments[u.shipment_id].facility_id for u in plan[stage]}, names
            )
            if missing:
                kept = []
                for unit in plan[stage]:
                    why = missing.get(shipments[unit.shipment_id].facility_id)
                    if why:
                        refused.append((unit, why))
                    else:
                        kept.append(unit)
                plan[stage] = kept

        if order_ids is not None:
            _whole_orders_only(plan, refused, orders, outcome)
        else:
            for unit, why in refused:
                outcome.fail(unit_label(unit, orders), why)

        done = _execute(plan, shipments, reason=reason, actor=actor, outcome=outcome)
        _close_finished_picklists(picklists, actor=actor)
        touched = {u.order_id for u in done}
        orders_refresh_status({pk: orders[pk] for pk in touched}, actor=actor, reason=reason)
        if done:
            units_cancelled.send(
                sender=OrderItem, units=done, reason=reason, by_channel=by_channel, actor=actor
            )
        if order_ids is None:
            outcome.done = done
        else:
            outcome.done = [orders[pk] for pk in sorted(touched)]
    return outcome


def _whole_orders_only(plan, refused, orders: dict[int, Order], outcome: Outcome) -> None:
    """`orders_cancel`: drop every unit of an order that has a refused unit (other than
    finished ones); report orders with nothing to cancel."""
    blocked: dict[int, list[str]] = defaultdict(list)
    for unit, why in refused:
        if not _is_finished(why):
            blocked[unit.order_id].append(f"{unit.code}: {why}")
    planned = {u.order_id for units in plan.values() for u in units}
    for stage in list(plan):
        plan[stage] = [u for u in plan[stage] if u.order_id not in blocked]
    for pk, order in sorted(orders.items()):
        if pk in blocked:
            outcome.fail(order, "; ".join(blocked[pk]))
        elif pk not in planned:
            outcome.fail(order, f"order is {order.status}: no unit left to cancel")


def _execute(plan, shipments, *, reason: str, actor: Actor, outcome: Outcome) -> list[OrderItem]:
    release, picked, invoiced = plan[Stage.RELEASE], plan[Stage.PICKLIST], plan[Stage.INVOICED]
    returning = plan[Stage.DISPATCHED]
    before_dispatch = [*release, *picked, *invoiced]
    freed = [u for u in release if u.inventory_id and u.status in ITEM_BLOCKING_STOCK]
    taken = [u for u in [*picked, *invoiced] if u.inventory_id]
    # stock rows before the PUTAWAY / RETURN_INVOICE sequences (the lock order)
    stock_lock_rows(u.inventory_id for u in [*freed, *taken])
    now = timezone.now()
    apply_transitions(
        before_dispatch,
        "cancel",
        actor=actor,
        reason=reason,
        values={"cancellation_reason": reason},
        now=now,
    )
    stock_release(freed, actor=actor)
    stock_consume(taken, reason=StockReason.CANCEL_PICKED, actor=actor)

    groups: dict[tuple, list[OrderItem]] = defaultdict(list)
    for kind, units in (
        (PutawayType.PUTAWAY_PICKLIST_ITEM, picked),
        (PutawayType.PUTAWAY_CANCELLED_ITEM, invoiced),
    ):
        for unit in units:
            groups[(shipments[unit.shipment_id].facility, kind)].append(unit)
    outcome.created += putaways_create(groups, actor=actor)
    by_shipment: dict[int, list[OrderItem]] = defaultdict(list)
    for unit in invoiced:
        by_shipment[unit.shipment_id].append(unit)
    outcome.created += issue_credit_notes(by_shipment)

    if returning:
        OrderItem.objects.filter(pk__in=[u.pk for u in returning]).update(
            cancellation_reason=reason, updated_at=now
        )
        for unit in returning:
            unit.cancellation_reason = reason
        record_events(returning, transition="cancel_after_dispatch", actor=actor, reason=reason)
        back = sorted({u.shipment_id for u in returning})
        apply_transitions(
            [shipments[pk] for pk in back],
            "expect_return",
            actor=actor,
            reason=f"cancelled after dispatch: {reason}",
            now=now,
        )

    emptied = {u.shipment_id for u in before_dispatch if u.shipment_id}
    still_used = set(
        OrderItem.objects.filter(shipment_id__in=emptied)
        .exclude(status=OrderItemStatus.CANCELLED)
        .values_list("shipment_id", flat=True)
    )
    packed_and_kept = sorted({u.shipment_id for u in invoiced} & still_used)
    wait_for_repacking(
        [shipments[pk] for pk in packed_and_kept], invoiced, actor=actor, reason=reason, now=now
    )
    apply_transitions(
        [
            shipments[pk]
            for pk in sorted(emptied - still_used)
            if can_transition(shipments[pk], "cancel")
        ],
        "cancel",
        actor=actor,
        reason=f"all its units were cancelled: {reason}",
        now=now,
    )
    if freed:
        sku_ids = {u.sku_id for u in freed}
        allocate_after_commit(sku_ids=sku_ids, actor=actor)
    return [*before_dispatch, *returning]
