"""Dispatch units because their channel says they were dispatched (status sync, seed 000).

`units_dispatch_from_channel` takes the units of many orders and, per order, either dispatches
all of them or none (the order is reported with the reason and left untouched):

- a unit never allocated (CREATED) is allocated first; one that stays UNFULFILLABLE gets a
  shipment from the first active facility and is dispatched without stock;
- a FULFILLABLE or LOCATION_NOT_SERVICEABLE unit in a CREATED / LOCATION_NOT_SERVICEABLE
  shipment is dispatched with its blocked stock (units of that shipment the channel did not
  report move to nothing: the reported ones move to a shipment of their own);
- a unit further along (picking ... manifested) is dispatched as by force dispatch;
- the shipment is invoiced first when it has no invoice yet, so the facility's INVOICE sequence
  must exist: without it the order is refused with `Sequence INVOICE is not defined for
  facility X`, and so it is when a particular the invoice needs is missing (`Facility X has no
  GSTIN`, `SKU Y has no HSN code`: `orders.services.invoicing`).

Set-based: a fixed number of queries per call (about 30), whatever the number of orders.
Checks come first, then the writes for the orders that passed, so one bad order never stops
or half-changes the others. The steps, in the order `units_dispatch_from_channel` runs them:

1. lock (`_lock_rows`): Picklist → Order → Shipment → OrderItem, the order of `orders.locks`;
2. allocate the never-allocated units (`_allocate_never_allocated`), then lock the shipments
   and units allocation gave them: Shipment → OrderItem again, after allocation's Inventory
   rows, which is safe because their orders are held already (whoever else locks them
   takes the order first);
3. decide, refusing orders on the plan (`DispatchPlan.refuse`, first reason kept): which units
   (`_choose_units`), which shipments (`_choose_shipments`), whether they can be invoiced
   (`_refuse_uninvoiceable`);
4. write, for the orders that passed (`_dispatch`): Inventory rows locked, then Sequence rows
   (new shipment codes, invoice numbers), the last two of the lock order.

Side effect through a signal: the shipments' transitions send `states_changed`, and
`notifications.receivers` write their status notifications (no dispatch push: the channel
reported the dispatch itself).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inventory.models import Facility, ShippingProvider, StockReason
from inventory.services import stock_consume, stock_lock_rows
from uniware.core.actors import Actor
from uniware.core.audit import record_changes
from uniware.core.db import bulk_set
from uniware.core.fsm import Change, apply_transitions
from uniware.core.models import Sequence, SequenceName
from uniware.core.results import Outcome
from uniware.core.services import SequenceNotDefined, sequence_take

from ..locks import lock_orders
from ..models import (
    Order,
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    Shipment,
    ShipmentStatus,
)
from ..models.order import ITEM_DISPATCHABLE
from ..models.shipment import SHIPMENT_PRE_DISPATCH
from .allocation import allocate_units
from .fulfilment import _close_finished_picklists, _create_sale_invoices, _lock_open_picklists
from .invoicing import sale_invoice_problem, skus_of
from .orders import orders_refresh_status

DISPATCHABLE = set(ITEM_DISPATCHABLE)
ALREADY_DISPATCHED = {
    OrderItemStatus.DISPATCHED,
    OrderItemStatus.DELIVERED,
    OrderItemStatus.REPLACED,
    OrderItemStatus.RESHIPPED,
}
OPEN_SHIPMENT = {ShipmentStatus.CREATED, ShipmentStatus.LOCATION_NOT_SERVICEABLE}

MoveKey = tuple[int, int | None]  # (order id, the shipment the units leave, or None)


@dataclass
class DispatchOutcome(Outcome):
    """`done`: orders dispatched; `failed`: (order code, reason); `created`: new shipments;
    `unchanged`: orders whose units were all dispatched already (a repeated sync)."""

    unchanged: list[Any] = field(default_factory=list)


@dataclass
class Locked:
    """The rows this call holds locks on; `units` are the requested units and every unit
    sharing a shipment with them."""

    wanted: set[int]
    picklists: list[Picklist]
    orders: dict[int, Order]
    shipments: dict[int, Shipment]
    units: list[OrderItem]


@dataclass
class DispatchPlan:
    """What the call will do, decided before anything is written.

    `refused`: {order id: why}, the first reason given is the one reported; `todo`: the units
    of each order still to dispatch; `whole`: shipments dispatched as they are; `moving`: units
    that get a new shipment, from the facility of the one they leave (`default_facility` for
    units without one); `siblings`: by shipment, the units the channel did not report."""

    refused: dict[int, str] = field(default_factory=dict)
    todo: dict[int, list[OrderItem]] = field(default_factory=dict)
    whole: dict[int, Shipment] = field(default_factory=dict)
    moving: dict[MoveKey, list[OrderItem]] = field(default_factory=lambda: defaultdict(list))
    siblings: dict[int, list[OrderItem]] = field(default_factory=lambda: defaultdict(list))
    default_facility: Facility | None = None

    def refuse(self, order_id: int, why: str) -> None:
        self.refused.setdefault(order_id, why)

    def facility_of(self, key: MoveKey, shipments: dict[int, Shipment]) -> Facility:
        """The facility the new shipment of `moving[key]` ships from."""
        return self.default_facility if key[1] is None else shipments[key[1]].facility

    def left_behind(self, shipment_id: int, taken: set[int]) -> list[OrderItem]:
        """Units of the shipment that stay when the `taken` ones are dispatched."""
        return [u for u in self.siblings.get(shipment_id, []) if u.pk not in taken]


def units_dispatch_from_channel(
    unit_ids,
    *,
    actor=None,
    reason: str = "",
    tracking: dict[int, tuple[str, str]] | None = None,
) -> DispatchOutcome:
    """Dispatch these units as their channel says, order by order all or nothing.

    `tracking` maps an order id to the channel's (courier name, tracking number); they fill a
    dispatched shipment's provider and tracking number where it has none.
    """
    actor = Actor.of(actor)
    outcome = DispatchOutcome()
    wanted = set(unit_ids)
    if not wanted:
        return outcome
    with transaction.atomic():
        # Row locks in the order of orders.locks: Picklist → Order → Shipment → OrderItem
        # first; allocating re-locks the orders' Shipment → OrderItem rows it changed; the
        # writes lock Inventory, then Sequence.
        locked = _lock_rows(wanted)
        plan = DispatchPlan()
        _refuse_cancelled(locked, plan)
        _allocate_never_allocated(locked, plan, actor)
        _choose_units(locked, plan, outcome)
        _choose_shipments(locked, plan)
        _refuse_uninvoiceable(locked, plan)
        ok = _report_refusals(locked, plan, outcome)
        if ok:
            _dispatch(locked, plan, ok, outcome, actor, reason=reason, tracking=tracking or {})
    return outcome


# --- 1. Locks --------------------------------------------------------------------------------


def _lock_rows(wanted: set[int]) -> Locked:
    """Lock the rows the units belong to, in the order of `orders.locks`."""
    rows = list(OrderItem.objects.filter(pk__in=wanted).values_list("order_id", "shipment_id"))
    shipment_ids = {s for _, s in rows if s}
    picklists = _lock_open_picklists(shipment_ids)
    orders = lock_orders({o for o, _ in rows})
    locked = Locked(wanted, picklists, orders, {}, [])
    _lock_shipments_and_units(locked, shipment_ids)
    return locked


def _lock_shipments_and_units(locked: Locked, shipment_ids: set[int]) -> None:
    """Lock the shipments (their orders are locked already) and the units of `locked`."""
    locked.shipments = _lock_shipments(shipment_ids, locked.orders)
    locked.units = _lock_units(locked.wanted, shipment_ids)


def _lock_shipments(shipment_ids, orders: dict[int, Order]) -> dict[int, Shipment]:
    """Lock shipments whose orders the caller has locked already."""
    if not shipment_ids:
        return {}
    rows = (
        Shipment.objects.select_for_update(of=("self",))
        .filter(pk__in=set(shipment_ids))
        .select_related("facility")
        .order_by("pk")
    )
    shipments = {}
    for s in rows:
        s.order = orders[s.order_id]
        shipments[s.pk] = s
    return shipments


def _lock_units(unit_ids, shipment_ids) -> list[OrderItem]:
    """The requested units and every unit sharing a shipment with them, locked."""
    scope = Q(pk__in=set(unit_ids))
    if shipment_ids:
        scope |= Q(shipment_id__in=set(shipment_ids))
    return list(OrderItem.objects.select_for_update(of=("self",)).filter(scope).order_by("pk"))


# --- 2. Allocating the units never allocated -------------------------------------------------


def _allocate_never_allocated(locked: Locked, plan: DispatchPlan, actor: Actor) -> None:
    """Allocate the CREATED units first, if their order may be allocated and every facility
    they could land in can invoice; then lock the shipments allocation gave them."""
    never = [
        u for u in locked.units if u.pk in locked.wanted and u.status == OrderItemStatus.CREATED
    ]
    for unit in never:
        order = locked.orders[unit.order_id]
        if order.on_hold:
            plan.refuse(order.pk, "the order is on hold: release it so its units can be allocated")
        elif order.status == OrderStatus.PENDING_VERIFICATION:
            plan.refuse(order.pk, "the order is pending verification: accept it first")
    never = [u for u in never if u.order_id not in plan.refused]
    if not never:
        return
    active = list(Facility.objects.filter(is_active=True).order_by("priority", "pk"))
    own, tenant_wide = _facilities_with_invoice_sequence(f.pk for f in active)
    missing = [f for f in active if f.pk not in own and not tenant_wide]
    if missing:
        why = str(SequenceNotDefined(SequenceName.INVOICE, missing[0]))
        for unit in never:
            plan.refuse(unit.order_id, why)
        return
    allocate_units(unit_ids=[u.pk for u in never], actor=actor)
    shipment_ids = OrderItem.objects.filter(pk__in=locked.wanted).values_list(
        "shipment_id", flat=True
    )
    _lock_shipments_and_units(locked, {s for s in shipment_ids if s})


# --- 3. Deciding -----------------------------------------------------------------------------


def _refuse_cancelled(locked: Locked, plan: DispatchPlan) -> None:
    for order in locked.orders.values():
        if order.status == OrderStatus.CANCELLED:
            plan.refuse(order.pk, "the order is CANCELLED")


def _choose_units(locked: Locked, plan: DispatchPlan, outcome: DispatchOutcome) -> None:
    """Per order not refused yet, the units still to dispatch (`plan.todo`), or the refusal;
    orders with none left are `unchanged`."""
    requested: dict[int, list[OrderItem]] = defaultdict(list)
    for unit in locked.units:
        if unit.pk in locked.wanted:
            requested[unit.order_id].append(unit)
        elif unit.status != OrderItemStatus.CANCELLED:
            plan.siblings[unit.shipment_id].append(unit)
    for order_id, members in requested.items():
        if order_id in plan.refused:
            continue
        pending, why = _units_to_dispatch(members, locked.shipments)
        if not why and pending:
            why = _split_problem(pending, plan, locked.shipments)
        if why:
            plan.refuse(order_id, why)
        elif not pending:
            outcome.unchanged.append(locked.orders[order_id])
        else:
            plan.todo[order_id] = pending


def _units_to_dispatch(
    members: list[OrderItem], shipments: dict[int, Shipment]
) -> tuple[list[OrderItem], str]:
    """The units of one order not dispatched yet, or why the order cannot be dispatched."""
    pending = []
    for unit in members:
        if unit.status in ALREADY_DISPATCHED:
            continue
        if unit.status not in DISPATCHABLE:
            return [], f"unit {unit.code} is {unit.status}"
        shipment = shipments.get(unit.shipment_id) if unit.shipment_id else None
        if shipment is not None and shipment.status not in SHIPMENT_PRE_DISPATCH:
            return [], f"shipment {shipment.code} of unit {unit.code} is {shipment.status}"
        pending.append(unit)
    return pending, ""


def _split_problem(
    pending: list[OrderItem], plan: DispatchPlan, shipments: dict[int, Shipment]
) -> str:
    """Why these units cannot leave their shipment: only an open one may be split."""
    taken = {u.pk for u in pending}
    for shipment_id in {u.shipment_id for u in pending if u.shipment_id}:
        left = plan.left_behind(shipment_id, taken)
        shipment = shipments[shipment_id]
        if left and shipment.status not in OPEN_SHIPMENT:
            codes = ", ".join(u.code for u in left[:5])
            return (
                f"shipment {shipment.code} ({shipment.status}) also holds units the "
                f"channel has not reported dispatched ({codes}): split it first"
            )
    return ""


def _choose_shipments(locked: Locked, plan: DispatchPlan) -> None:
    """Where each unit ships from: its shipment kept whole (`plan.whole`), or a new one for
    units without a shipment or leaving an open one that keeps other units (`plan.moving`)."""
    if any(u.shipment_id is None for members in plan.todo.values() for u in members):
        plan.default_facility = (
            Facility.objects.filter(is_active=True).order_by("priority", "pk").first()
        )
    for order_id, members in plan.todo.items():
        taken = {u.pk for u in members}
        for unit in members:
            if unit.shipment_id is None:
                if plan.default_facility is None:
                    plan.refuse(order_id, "no active facility to ship its unfulfillable units from")
                    break
                plan.moving[(order_id, None)].append(unit)
            elif plan.left_behind(unit.shipment_id, taken):
                plan.moving[(order_id, unit.shipment_id)].append(unit)
            else:
                plan.whole[unit.shipment_id] = locked.shipments[unit.shipment_id]


def _refuse_uninvoiceable(locked: Locked, plan: DispatchPlan) -> None:
    """Refuse the orders whose shipments could not be invoiced: no INVOICE sequence for the
    facility, or a particular the sale invoice needs (CGST Rule 46) missing."""
    moving = [key for key in plan.moving if key[0] not in plan.refused]
    needed = {s.facility_id for s in plan.whole.values()}
    needed |= {plan.facility_of(key, locked.shipments).pk for key in moving}
    own, tenant_wide = _facilities_with_invoice_sequence(needed)
    for shipment in plan.whole.values():
        if shipment.facility_id not in own and not tenant_wide:
            plan.refuse(
                shipment.order_id, str(SequenceNotDefined(SequenceName.INVOICE, shipment.facility))
            )
    for key in plan.moving:
        facility = plan.facility_of(key, locked.shipments)
        if facility.pk not in own and not tenant_wide:
            plan.refuse(key[0], str(SequenceNotDefined(SequenceName.INVOICE, facility)))
    skus = skus_of(plan.todo)
    invoicing_from = [(s.order_id, s.facility) for s in plan.whole.values()]
    moving = [key for key in plan.moving if key[0] not in plan.refused]
    invoicing_from += [(key[0], plan.facility_of(key, locked.shipments)) for key in moving]
    for order_id, facility in invoicing_from:
        why = sale_invoice_problem(facility, locked.orders[order_id], plan.todo[order_id], skus)
        if why:
            plan.refuse(order_id, why)


def _facilities_with_invoice_sequence(facility_ids: Iterable[int]) -> tuple[set[int], bool]:
    """(facilities with their own INVOICE sequence, whether a tenant-wide one exists)."""
    rows = Sequence.objects.filter(
        Q(facility_id__in=set(facility_ids)) | Q(facility__isnull=True),
        name=SequenceName.INVOICE,
    ).values_list("facility_id", flat=True)
    own = set(rows)
    return {f for f in own if f is not None}, None in own


def _report_refusals(
    locked: Locked, plan: DispatchPlan, outcome: DispatchOutcome
) -> dict[int, list[OrderItem]]:
    """Report the refused orders; the units of the others, by order, are dispatched."""
    for order_id, why in plan.refused.items():
        if order_id in locked.orders:
            outcome.fail(locked.orders[order_id], why)
    return {oid: members for oid, members in plan.todo.items() if oid not in plan.refused}


# --- 4. Writing, for the orders that passed --------------------------------------------------


def _dispatch(
    locked: Locked,
    plan: DispatchPlan,
    ok: dict[int, list[OrderItem]],
    outcome: DispatchOutcome,
    actor: Actor,
    *,
    reason: str,
    tracking: dict[int, tuple[str, str]],
) -> None:
    """Give the moving units their new shipments, label, invoice and dispatch the shipments,
    dispatch the units and consume their stock."""
    whole = [s for s in plan.whole.values() if s.order_id in ok]
    moving = {key: members for key, members in plan.moving.items() if key[0] in ok}
    dispatching = [u for members in ok.values() for u in members]
    # stock rows before any sequence row: the lock order of orders.locks
    stock_lock_rows(u.inventory_id for u in dispatching)
    now = timezone.now()
    outcome.created = _move_to_new_shipments(locked, plan, moving, actor, reason, now)
    targets = sorted([*whole, *outcome.created], key=lambda s: s.pk)
    _label(targets, tracking)
    invoicing = Outcome()
    invoiced = _create_sale_invoices(targets, invoicing)
    if invoicing.failed or len(invoiced) != len(targets):
        # checked above: only sequences deleted meanwhile get here; undo everything
        raise SequenceNotDefined(SequenceName.INVOICE, targets[0].facility)
    apply_transitions(
        targets,
        "dispatch_from_channel",
        actor=actor,
        reason=reason,
        values={"dispatched_at": now},
        now=now,
    )
    apply_transitions(dispatching, "dispatch", actor=actor, reason=reason, now=now)
    stock_consume(dispatching, reason=StockReason.CHANNEL_DISPATCH, actor=actor)
    _close_finished_picklists(locked.picklists, actor=actor)
    orders_refresh_status({oid: locked.orders[oid] for oid in ok}, actor=actor, reason=reason)
    outcome.done = [locked.orders[oid] for oid in ok]


def _move_to_new_shipments(
    locked: Locked,
    plan: DispatchPlan,
    moving: dict[MoveKey, list[OrderItem]],
    actor: Actor,
    reason: str,
    now,
) -> list[Shipment]:
    """Create a CREATED shipment per (order, shipment left) and move the units into it."""
    new_shipments: list[Shipment] = []
    by_facility: dict[int, list[Shipment]] = defaultdict(list)
    for key, members in moving.items():
        order_id, old_id = key
        old = locked.shipments.get(old_id) if old_id else None
        facility = plan.facility_of(key, locked.shipments)
        shipment = Shipment(
            order_id=order_id,
            facility=facility,
            status=ShipmentStatus.CREATED,
            shipping_provider_id=old.shipping_provider_id if old else None,
            tracking_number="",
            parent_id=old_id,
            created_at=now,
            updated_at=now,
        )
        shipment.order = locked.orders[order_id]
        new_shipments.append(shipment)
        by_facility[facility.pk].append(shipment)
        for unit in members:
            unit.shipment = shipment
            if unit.facility_id is None:
                unit.facility_id = facility.pk
    _number_shipments(by_facility, locked, plan)
    Shipment.objects.bulk_create(new_shipments, batch_size=1000)
    record_changes(
        [Change(s, "", s.status) for s in new_shipments],
        transition="create",
        actor=actor,
        reason=reason,
        at=now,
    )
    moved = [u for members in moving.values() for u in members]
    for unit in moved:
        unit.shipment_id = unit.shipment.pk
    bulk_set(OrderItem, moved, ["shipment", "facility"])
    return new_shipments


def _number_shipments(
    by_facility: dict[int, list[Shipment]], locked: Locked, plan: DispatchPlan
) -> None:
    """Codes from each facility's SHIPMENT sequence (one call per facility)."""
    facilities = {s.facility_id: s.facility for s in locked.shipments.values()}
    if plan.default_facility is not None:
        facilities[plan.default_facility.pk] = plan.default_facility
    for facility_id, members in by_facility.items():
        codes = sequence_take(
            SequenceName.SHIPMENT, facility=facilities[facility_id], count=len(members)
        )
        for shipment, code in zip(members, codes, strict=True):
            shipment.code = code


def _label(shipments: list[Shipment], tracking: dict[int, tuple[str, str]]) -> None:
    """Fill the channel's tracking number and courier where a shipment has none."""
    providers = _providers_by_courier(c for c, _ in tracking.values())
    labelled = []
    for shipment in shipments:
        courier, number = tracking.get(shipment.order_id, ("", ""))
        touched = False
        if number and not shipment.tracking_number:
            shipment.tracking_number = number[:60]
            touched = True
        provider = providers.get((courier or "").strip().upper())
        if provider and not shipment.shipping_provider_id:
            shipment.shipping_provider_id = provider
            touched = True
        if touched:
            labelled.append(shipment)
    bulk_set(Shipment, labelled, ["tracking_number", "shipping_provider"])


def _providers_by_courier(names) -> dict[str, int]:
    """Shipping providers the channel's courier names refer to (by code or name)."""
    names = {n.strip().upper() for n in names if n and n.strip()}
    if not names:
        return {}
    found: dict[str, int] = {}
    for pk, code, name in ShippingProvider.objects.values_list("pk", "code", "name"):
        for key in (code.upper(), name.upper()):
            if key in names:
                found.setdefault(key, pk)
    return found
