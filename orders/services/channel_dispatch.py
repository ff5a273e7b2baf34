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
or half-changes the others.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inventory.models import Facility, ShippingProvider, Sku, StockReason
from inventory.services import stock_consume, stock_lock_rows
from uniware.core.actors import Actor
from uniware.core.audit import record_changes
from uniware.core.db import bulk_set
from uniware.core.fsm import Change, apply_transitions
from uniware.core.models import Sequence, SequenceName
from uniware.core.results import Outcome
from uniware.core.services import SequenceNotDefined, sequence_take

from ..locks import lock_orders
from ..models import Order, OrderItem, OrderItemStatus, OrderStatus, Shipment, ShipmentStatus
from ..models.shipment import SHIPMENT_PRE_DISPATCH
from .allocation import allocate_units
from .fulfilment import _close_finished_picklists, _create_sale_invoices, _lock_open_picklists
from .invoicing import sale_invoice_problem
from .orders import orders_refresh_status

S = OrderItemStatus
SS = ShipmentStatus
DISPATCHABLE = {
    S.UNFULFILLABLE,
    S.FULFILLABLE,
    S.LOCATION_NOT_SERVICEABLE,
    S.PICKING_FOR_STAGING,
    S.PICKING_FOR_INVOICING,
    S.MANIFESTED,
}
ALREADY_DISPATCHED = {S.DISPATCHED, S.DELIVERED, S.REPLACED, S.RESHIPPED}
OPEN_SHIPMENT = {SS.CREATED, SS.LOCATION_NOT_SERVICEABLE}


@dataclass
class DispatchOutcome(Outcome):
    """`done`: orders dispatched; `failed`: (order code, reason); `created`: new shipments;
    `unchanged`: orders whose units were all dispatched already (a repeated sync)."""

    unchanged: list[Any] = field(default_factory=list)


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


def _facilities_with_invoice_sequence(facility_ids) -> tuple[set[int], bool]:
    """(facilities with their own INVOICE sequence, whether a tenant-wide one exists)."""
    rows = Sequence.objects.filter(
        Q(facility_id__in=set(facility_ids)) | Q(facility__isnull=True),
        name=SequenceName.INVOICE,
    ).values_list("facility_id", flat=True)
    own = set(rows)
    return {f for f in own if f is not None}, None in own


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
    tracking = tracking or {}
    wanted = set(unit_ids)
    if not wanted:
        return outcome
    with transaction.atomic():
        rows = list(OrderItem.objects.filter(pk__in=wanted).values_list("order_id", "shipment_id"))
        known_shipments = {s for _, s in rows if s}
        picklists = _lock_open_picklists(known_shipments)
        orders = lock_orders({o for o, _ in rows})
        refused: dict[int, str] = {}

        def refuse(order_id: int, why: str) -> None:
            refused.setdefault(order_id, why)

        for order in orders.values():
            if order.status == OrderStatus.CANCELLED:
                refuse(order.pk, "the order is CANCELLED")
        shipments = _lock_shipments(known_shipments, orders)
        units = _lock_units(wanted, known_shipments)

        # Units never allocated: allocate them first, if their order may be allocated and
        # every facility they could land in can invoice.
        never = [u for u in units if u.pk in wanted and u.status == S.CREATED]
        for unit in never:
            order = orders[unit.order_id]
            if order.on_hold:
                refuse(order.pk, "the order is on hold: release it so its units can be allocated")
            elif order.status == OrderStatus.PENDING_VERIFICATION:
                refuse(order.pk, "the order is pending verification: accept it first")
        never = [u for u in never if u.order_id not in refused]
        if never:
            active = list(Facility.objects.filter(is_active=True).order_by("priority", "pk"))
            own, tenant_wide = _facilities_with_invoice_sequence(f.pk for f in active)
            missing = [f for f in active if f.pk not in own and not tenant_wide]
            if missing:
                why = str(SequenceNotDefined(SequenceName.INVOICE, missing[0]))
                for unit in never:
                    refuse(unit.order_id, why)
            else:
                allocate_units(unit_ids=[u.pk for u in never], actor=actor)
                known_shipments = {
                    s
                    for s in OrderItem.objects.filter(pk__in=wanted).values_list(
                        "shipment_id", flat=True
                    )
                    if s
                }
                shipments = _lock_shipments(known_shipments, orders)
                units = _lock_units(wanted, known_shipments)

        # --- checks, per order -------------------------------------------------------------
        requested: dict[int, list[OrderItem]] = defaultdict(list)
        siblings: dict[int, list[OrderItem]] = defaultdict(list)  # by shipment
        for unit in units:
            if unit.pk in wanted:
                requested[unit.order_id].append(unit)
            elif unit.status != S.CANCELLED:
                siblings[unit.shipment_id].append(unit)
        todo: dict[int, list[OrderItem]] = {}
        for order_id, members in requested.items():
            if order_id in refused:
                continue
            pending = []
            for unit in members:
                if unit.status in ALREADY_DISPATCHED:
                    continue
                if unit.status not in DISPATCHABLE:
                    refuse(order_id, f"unit {unit.code} is {unit.status}")
                    break
                shipment = shipments.get(unit.shipment_id) if unit.shipment_id else None
                if shipment is not None and shipment.status not in SHIPMENT_PRE_DISPATCH:
                    refuse(
                        order_id,
                        f"shipment {shipment.code} of unit {unit.code} is {shipment.status}",
                    )
                    break
                pending.append(unit)
            if order_id in refused:
                continue
            if not pending:
                outcome.unchanged.append(orders[order_id])
                continue
            taken = {u.pk for u in pending}
            for shipment_id in {u.shipment_id for u in pending if u.shipment_id}:
                left = [u for u in siblings.get(shipment_id, []) if u.pk not in taken]
                shipment = shipments[shipment_id]
                if left and shipment.status not in OPEN_SHIPMENT:
                    codes = ", ".join(u.code for u in left[:5])
                    refuse(
                        order_id,
                        f"shipment {shipment.code} ({shipment.status}) also holds units the "
                        f"channel has not reported dispatched ({codes}): split it first",
                    )
            if order_id not in refused:
                todo[order_id] = pending

        # Where each shipment will come from: kept whole, or new for units without one or
        # moving out of an open shipment that keeps other units.
        default_facility = None
        if any(u.shipment_id is None for members in todo.values() for u in members):
            default_facility = (
                Facility.objects.filter(is_active=True).order_by("priority", "pk").first()
            )
        whole: dict[int, Shipment] = {}
        moving: dict[tuple[int, int | None], list[OrderItem]] = defaultdict(list)
        for order_id, members in todo.items():
            taken = {u.pk for u in members}
            for unit in members:
                if unit.shipment_id is None:
                    if default_facility is None:
                        refuse(order_id, "no active facility to ship its unfulfillable units from")
                        break
                    moving[(order_id, None)].append(unit)
                    continue
                left = [u for u in siblings.get(unit.shipment_id, []) if u.pk not in taken]
                if left:
                    moving[(order_id, unit.shipment_id)].append(unit)
                else:
                    whole[unit.shipment_id] = shipments[unit.shipment_id]

        def facility_of(key: tuple[int, int | None]) -> Facility:
            return default_facility if key[1] is None else shipments[key[1]].facility

        needed = {s.facility_id for s in whole.values()} | {
            facility_of(key).pk for key in moving if key[0] not in refused
        }
        own, tenant_wide = _facilities_with_invoice_sequence(needed)
        facilities = {s.facility_id: s.facility for s in shipments.values()}
        if default_facility is not None:
            facilities[default_facility.pk] = default_facility
        for shipment in whole.values():
            if shipment.facility_id not in own and not tenant_wide:
                refuse(
                    shipment.order_id,
                    str(SequenceNotDefined(SequenceName.INVOICE, shipment.facility)),
                )
        for key in moving:
            facility = facility_of(key)
            if facility.pk not in own and not tenant_wide:
                refuse(key[0], str(SequenceNotDefined(SequenceName.INVOICE, facility)))
        # the particulars the sale invoices need (CGST Rule 46), refused like a sequence
        skus = Sku.objects.in_bulk({u.sku_id for members in todo.values() for u in members})
        invoicing_from = [(s.order_id, s.facility) for s in whole.values()]
        invoicing_from += [(key[0], facility_of(key)) for key in moving if key[0] not in refused]
        for order_id, facility in invoicing_from:
            why = sale_invoice_problem(facility, orders[order_id], todo[order_id], skus)
            if why:
                refuse(order_id, why)

        for order_id, why in refused.items():
            if order_id in orders:
                outcome.fail(orders[order_id], why)
        ok = {oid: members for oid, members in todo.items() if oid not in refused}
        if not ok:
            return outcome
        whole = {pk: s for pk, s in whole.items() if s.order_id in ok}
        moving = {key: members for key, members in moving.items() if key[0] in ok}
        dispatching = [u for members in ok.values() for u in members]

        # --- writes, for the orders that passed ------------------------------------------
        # stock rows before any sequence row: the lock order of orders.locks
        stock_lock_rows(u.inventory_id for u in dispatching)
        now = timezone.now()
        new_shipments: list[Shipment] = []
        by_facility: dict[int, list[Shipment]] = defaultdict(list)
        for key, members in moving.items():
            order_id, old_id = key
            old = shipments.get(old_id) if old_id else None
            facility = facility_of(key)
            shipment = Shipment(
                order_id=order_id,
                facility=facility,
                status=SS.CREATED,
                shipping_provider_id=old.shipping_provider_id if old else None,
                tracking_number="",
                parent_id=old_id,
                created_at=now,
                updated_at=now,
            )
            shipment.order = orders[order_id]
            new_shipments.append(shipment)
            by_facility[facility.pk].append(shipment)
            for unit in members:
                unit.shipment = shipment
                if unit.facility_id is None:
                    unit.facility_id = facility.pk
        for facility_id, members in by_facility.items():
            codes = sequence_take(
                SequenceName.SHIPMENT, facility=facilities[facility_id], count=len(members)
            )
            for shipment, code in zip(members, codes, strict=True):
                shipment.code = code
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
        outcome.created = new_shipments

        targets = sorted([*whole.values(), *new_shipments], key=lambda s: s.pk)
        providers = _providers_by_courier(c for c, _ in tracking.values())
        labelled = []
        for shipment in targets:
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
        _close_finished_picklists(picklists, actor=actor)
        orders_refresh_status({oid: orders[oid] for oid in ok}, actor=actor, reason=reason)
        outcome.done = [orders[oid] for oid in ok]
    return outcome
