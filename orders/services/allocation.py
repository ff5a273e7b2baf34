"""Allocation: block one unit of sellable stock per order item, in the first facility (by
priority) that has it, and group the allocated units into shipments per order and facility.

Set-based: for a batch of any size it runs a fixed number of queries (locks, stock,
serviceability, shipments, one UPDATE per kind of status change, audit rows). Stock rows are
locked before they are read, so concurrent allocations can never block the same unit twice;
the database's check constraint is the second line of defence.

Work that must wait for the caller's commit (follow-up orders, units waiting for stock that
came back) goes through `allocate_after_commit`, the one helper for it.

The units' `allocate` transitions send `states_changed`: `notifications.receivers` then tell
the channel the units joined a shipment (CREATED or LOCATION_NOT_SERVICEABLE).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from celery import Task
from django.db import transaction
from django.utils import timezone

from inventory.models import Facility, Serviceability
from inventory.services import sellable_stock, stock_block, stock_lock_available
from uniware.core.actors import Actor
from uniware.core.audit import record_changes
from uniware.core.db import build, bulk_set, insert_new, link
from uniware.core.fsm import Change, apply_transitions, transition_unsaved
from uniware.core.models import SequenceName
from uniware.core.services import sequence_take

from ..locks import lock_items, lock_orders
from ..models import OrderItem, OrderItemStatus, OrderStatus, Shipment, ShipmentStatus
from .orders import orders_refresh_status

log = logging.getLogger(__name__)

ALLOCATABLE = [OrderItemStatus.CREATED, OrderItemStatus.UNFULFILLABLE]


@dataclass
class AllocationResult:
    fulfillable: list[OrderItem] = field(default_factory=list)
    unfulfillable: list[OrderItem] = field(default_factory=list)
    not_serviceable: list[OrderItem] = field(default_factory=list)
    shipments: list[Shipment] = field(default_factory=list)


def _providers_by_route(facility_ids, routes) -> dict[tuple[int, str, str], int]:
    """Best (lowest priority number) provider per (facility, pincode, payment method)."""
    pincodes = {pincode for pincode, _ in routes}
    best: dict[tuple[int, str, str], tuple[int, int]] = {}
    rows = Serviceability.objects.filter(
        pincode__in=pincodes,
        shipping_provider__is_active=True,
        shipping_provider__facilities__in=facility_ids,
    ).values_list(
        "shipping_provider__facilities",
        "pincode",
        "payment_method",
        "priority",
        "shipping_provider_id",
    )
    for facility_id, pincode, method, priority, provider_id in rows:
        key = (facility_id, pincode, method)
        if key not in best or (priority, provider_id) < best[key]:
            best[key] = (priority, provider_id)
    return {key: provider for key, (_, provider) in best.items()}


def allocate_units(
    *,
    order_ids=None,
    unit_ids=None,
    sku_ids=None,
    actor: Actor | None = None,
    avoid: Mapping[int, int] | None = None,
) -> AllocationResult:
    """Allocate the CREATED and UNFULFILLABLE units of these orders (or these units).
    `avoid`: {unit id: stock row id} a unit must not take (it was not found there)."""
    actor = Actor.of(actor)
    result = AllocationResult()
    with transaction.atomic():
        scope = OrderItem.objects.filter(status__in=ALLOCATABLE)
        if order_ids is not None:
            scope = scope.filter(order_id__in=list(order_ids))
        if unit_ids is not None:
            scope = scope.filter(pk__in=list(unit_ids))
        if sku_ids is not None:
            scope = scope.filter(sku_id__in=list(sku_ids))
        # order_by(): the default ordering would make DISTINCT return one row per unit
        orders = lock_orders(scope.order_by().values_list("order_id", flat=True).distinct())
        eligible = [o.pk for o in orders.values() if may_allocate(o)]
        if not eligible:
            return result
        units = lock_items(
            pk__in=scope.filter(order_id__in=eligible).values("pk"), status__in=ALLOCATABLE
        )
        if not units:
            return result
        for unit in units:
            unit.order = orders[unit.order_id]
        result = _allocate(units, actor=actor, reuse_open_shipments=True, avoid=avoid)
        now = timezone.now()
        for name, group in _moves(result):
            apply_transitions(group, name, actor=actor, now=now)
        allocated = result.fulfillable + result.not_serviceable
        bulk_set(OrderItem, allocated, ["facility", "inventory", "shipment"])
        stock_block(allocated, actor=actor)
        orders_refresh_status(
            {pk: orders[pk] for pk in {u.order_id for u in allocated}}, actor=actor
        )
    return result


def allocate_new_units(
    units: list[OrderItem], *, actor: Actor
) -> tuple[AllocationResult, list[tuple[str, list[Change]]]]:
    """Allocate the units of orders created in this transaction, before the units are
    inserted: they are then written once, already allocated, instead of inserted and updated.
    The orders must be inserted (their shipments refer to them) and eligible (`may_allocate`).
    Returns the result and the transitions run, for the caller to record after inserting the
    units (`uniware.core.fsm.record_transitions`)."""
    if not units:
        return AllocationResult(), []
    result = _allocate(units, actor=actor, reuse_open_shipments=False)
    moves = [(name, transition_unsaved(group, name)) for name, group in _moves(result)]
    # the units get their keys here (the ledger names them); insert_new keeps them
    stock_block(result.fulfillable + result.not_serviceable, actor=actor)
    return result, moves


def may_allocate(order) -> bool:
    """Held orders and orders pending verification wait."""
    return not order.on_hold and order.status in (OrderStatus.CREATED, OrderStatus.PROCESSING)


def _moves(result: AllocationResult) -> list[tuple[str, list[OrderItem]]]:
    return [
        ("allocate", result.fulfillable),
        ("mark_not_serviceable", result.not_serviceable),
        ("mark_unfulfillable", result.unfulfillable),
    ]


def _allocate(
    units: list[OrderItem],
    *,
    actor: Actor,
    reuse_open_shipments: bool,
    avoid: Mapping[int, int] | None = None,
) -> AllocationResult:
    """Choose a stock row, a provider and a shipment for each unit (in memory; the shipments
    are created). Locks the stock rows; the caller blocks the allocated units' stock."""
    result = AllocationResult()
    facilities = list(Facility.objects.filter(is_active=True).order_by("priority", "pk"))
    stock = stock_lock_available(u.sku_id for u in units)
    available: dict[tuple[int, int], list] = defaultdict(list)  # (sku, facility) -> rows
    left = {row.pk: row.available for row in stock}
    for row in stock:
        available[(row.sku_id, row.facility_id)].append(row)

    orders = {u.order_id: u.order for u in units}
    rank = {pk: (-o.priority, o.order_date, pk) for pk, o in orders.items()}
    # urgent and old orders first; a stable sort keeps each order's units in their order
    units = sorted(units, key=lambda u: rank[u.order_id])
    allocated: list[OrderItem] = []
    avoid = avoid or {}
    for unit in units:
        for facility in facilities:
            shunned = avoid.get(unit.pk)
            rows = available[(unit.sku_id, facility.pk)]
            row = next((r for r in rows if left[r.pk] > 0 and r.pk != shunned), None)
            if row is not None:
                left[row.pk] -= 1
                unit.inventory_id, unit.facility_id = row.pk, facility.pk
                allocated.append(unit)
                break
        else:
            if unit.status == OrderItemStatus.CREATED:
                result.unfulfillable.append(unit)

    routes = {(o.ship_pincode, o.payment_method) for o in (orders[u.order_id] for u in allocated)}
    providers = _providers_by_route([f.pk for f in facilities], routes)
    for unit in allocated:
        order = orders[unit.order_id]
        provider = providers.get((unit.facility_id, order.ship_pincode, order.payment_method))
        unit._provider_id = provider
        if order.third_party_shipping or provider is not None:
            result.fulfillable.append(unit)
        else:
            result.not_serviceable.append(unit)

    result.shipments = _attach_shipments(
        allocated,
        orders,
        facilities={f.pk: f for f in facilities},
        actor=actor,
        reuse_open=reuse_open_shipments,
    )
    return result


def _attach_shipments(
    units: list[OrderItem],
    orders: dict,
    *,
    facilities: dict[int, Facility],
    actor: Actor,
    reuse_open: bool,
) -> list[Shipment]:
    """Put units into a shipment per (order, facility, serviceable): an open one of the same
    kind if the order has it (`reuse_open`: new orders have none), else a new one. A
    shipment never mixes orders."""
    if not units:
        return []
    groups: dict[tuple[int, int, bool], list[OrderItem]] = defaultdict(list)
    for unit in units:
        serviceable = orders[unit.order_id].third_party_shipping or unit._provider_id is not None
        groups[(unit.order_id, unit.facility_id, serviceable)].append(unit)
    open_shipments = {}
    if reuse_open:
        for s in Shipment.objects.filter(
            order_id__in={k[0] for k in groups},
            status__in=[ShipmentStatus.CREATED, ShipmentStatus.LOCATION_NOT_SERVICEABLE],
        ).order_by("pk"):
            key = (s.order_id, s.facility_id, s.status == ShipmentStatus.CREATED)
            open_shipments.setdefault(key, s)
    new: list[Shipment] = []
    by_facility: dict[int, list[Shipment]] = defaultdict(list)
    now = timezone.now()
    for key, members in groups.items():
        order_id, facility_id, serviceable = key
        if key not in open_shipments:
            shipment = open_shipments[key] = build(
                Shipment,
                order_id=order_id,
                facility_id=facility_id,
                status=ShipmentStatus.CREATED
                if serviceable
                else ShipmentStatus.LOCATION_NOT_SERVICEABLE,
                shipping_provider_id=members[0]._provider_id,
            )
            new.append(shipment)
            by_facility[facility_id].append(shipment)
    for facility_id, shipments in by_facility.items():
        codes = sequence_take(
            SequenceName.SHIPMENT, facility=facilities[facility_id], count=len(shipments)
        )
        for shipment, code in zip(shipments, codes, strict=True):
            shipment.code = code
    insert_new(Shipment, new, now=now)
    for key, members in groups.items():
        for unit in members:
            link(unit, "shipment", open_shipments[key])
    record_changes([Change(s, "", s.status) for s in new], transition="create", actor=actor, at=now)
    return new


REALLOCATE_BATCH = 5000  # orders per transaction


def reallocate_waiting_units(*, sku_ids=None, actor: Actor | None = None) -> AllocationResult:
    """Retry UNFULFILLABLE units (after stock arrives, or periodically).

    Only units whose SKU has sellable stock now are looked at, oldest order first, batch after
    batch until the stock or the waiting units run out: orders that cannot be filled (no
    stock anywhere, held, pending verification) never hold back newer ones that can.
    """
    actor = actor or "task:reallocate"
    total = AllocationResult()
    while True:
        order_ids = _waiting_orders_with_stock(sku_ids)
        if not order_ids:
            return total
        result = allocate_units(order_ids=order_ids, sku_ids=sku_ids, actor=actor)
        total.fulfillable += result.fulfillable
        total.not_serviceable += result.not_serviceable
        total.shipments += result.shipments
        if not (result.fulfillable or result.not_serviceable):
            return total  # what stock there is went to others meanwhile


def _waiting_orders_with_stock(sku_ids) -> list[int]:
    in_stock = sellable_stock().values("sku_id")
    scope = OrderItem.objects.filter(
        status=OrderItemStatus.UNFULFILLABLE,
        sku_id__in=in_stock,
        order__on_hold=False,
        order__status__in=(OrderStatus.CREATED, OrderStatus.PROCESSING),
    )
    if sku_ids is not None:
        scope = scope.filter(sku_id__in=list(sku_ids))
    oldest_first = scope.order_by("order_id").values_list("order_id", flat=True).distinct()
    return list(oldest_first[:REALLOCATE_BATCH])


def allocate_after_commit(
    *,
    order_ids: Iterable[int] = (),
    sku_ids: Iterable[int] = (),
    actor: Actor,
    worker: Task | None = None,
) -> None:
    """Once the transaction has committed, allocate the orders `order_ids` (follow-ups it
    made) and re-allocate the units waiting for `sku_ids`, each in a transaction of its own:
    their locks come earlier in the lock order (`orders.locks`) than those the caller holds.

    `worker`: the Celery task that re-allocates waiting units
    (`orders.tasks.reallocate_unfulfillable`, which imports this module, hence passed in), to
    re-allocate in a worker instead, when stock arrives from staff or an import and the request
    should not wait. A failure, or a broker that is down, is logged: the periodic
    re-allocation task retries waiting units."""
    order_ids, sku_ids = list(order_ids), sorted(set(sku_ids))
    if not (order_ids or sku_ids):
        return

    def run() -> None:
        if order_ids:
            allocate_units(order_ids=order_ids, actor=actor)
        if sku_ids and worker is None:
            reallocate_waiting_units(sku_ids=sku_ids, actor=actor)
        elif sku_ids:
            try:
                worker.delay(sku_ids=sku_ids)
            except Exception:  # broker down: the periodic re-allocation task catches up
                log.warning("could not queue the re-allocation of waiting units", exc_info=True)

    transaction.on_commit(run, robust=True)
