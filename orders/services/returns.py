"""Returns: courier returns (RTO) through return manifests or "mark returned", customer
returns (CIR) through reverse pickups, reshipment and replacement.

- Courier return: shipment DISPATCHED/SHIPPED → RETURN_EXPECTED (`shipments_expect_return`,
  or a cancellation after dispatch). With ITEM traceability it is received on a return
  manifest (RETURN_ACKNOWLEDGED); closing the manifest issues the sale return invoices and a
  `PUTAWAY_COURIER_RETURNED_ITEMS` putaway, whose completion makes the shipment RETURNED.
  With SKU/NONE traceability `shipments_mark_returned` does it all at once: RETURNED, a sale
  return invoice, and a `PUTAWAY_RECEIVED_RETURNS` putaway completed on the spot.
- A courier return covers the whole package: every unit dispatched in it comes back.
- Customer return: `reverse_pickup_create` → courier allocated → COMPLETE (a
  `PUTAWAY_REVERSE_PICKUP_ITEM` putaway and a sale return invoice) or NOT_RECEIVED;
  cancelled only as a whole.
- Reship (seed 001's three options) and replacement make a new, linked order
  (`Order.kind`, `Order.source_order`, `OrderItem.source_item`), allocated after the commit.
- Every closed return reverses the shipment's sale invoice for its units with a sale return
  invoice (RETURN_INVOICE sequence of the facility); when that sequence is missing the
  operation is refused for that shipment or pickup and nothing of it changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from inventory.models import Facility, Inventory, InventoryType, PutawayItem, PutawayType, Shelf
from inventory.putaway import complete_locked, lock_stock_rows, putaways_create
from uniware.core.actors import Actor
from uniware.core.audit import record_changes, record_events
from uniware.core.db import bulk_set
from uniware.core.fsm import Change, IllegalTransition, apply_transitions, check_transition
from uniware.core.models import SequenceName
from uniware.core.results import Outcome
from uniware.core.services import SequenceNotDefined, sequence_find, sequence_take

from ..locks import (
    lock_items,
    lock_orders,
    lock_return_manifest,
    lock_reverse_pickups,
    lock_shipments,
)
from ..models import (
    Order,
    OrderItem,
    OrderItemStatus,
    OrderKind,
    ReshipOption,
    ReturnManifest,
    ReturnManifestItem,
    ReturnManifestStatus,
    ReversePickup,
    ReversePickupItem,
    Shipment,
    ShipmentStatus,
)
from ..models.returns import REVERSE_PICKUP_OPEN
from ..models.shipment import traceability_known
from .invoicing import issue_credit_notes
from .orders import LineInput, OrderInput, orders_create

S = OrderItemStatus
SS = ShipmentStatus
RETURN_PATH = [SS.RETURN_EXPECTED, SS.RETURN_ACKNOWLEDGED, SS.RETURNED]
# Units that travel in a dispatched package (and so come back with a courier return).
IN_PACKAGE = [S.DISPATCHED, S.RESHIPPED, S.REPLACED]
CUSTOMER_RETURNABLE_UNITS = [S.DISPATCHED, S.DELIVERED, S.REPLACED]
CUSTOMER_RETURNABLE_SHIPMENTS = [SS.DISPATCHED, SS.SHIPPED, SS.DELIVERED]
MAX_REASON = 255


def unit_label(unit: OrderItem, orders: dict[int, Order] | None = None) -> str:
    """`<order code>/<unit code>`: unit codes repeat across orders."""
    order = (orders or {}).get(unit.order_id) or unit.order
    return f"{order.code}/{unit.code}"


def _check(outcome: Outcome, obj, transition: str) -> bool:
    try:
        check_transition(obj, transition)
    except IllegalTransition as exc:
        outcome.fail(obj, exc)
        return False
    return True


def _reason(reason: str, *, required: bool = True, limit: int = MAX_REASON) -> str:
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


def allocate_after_commit(*, order_ids=(), sku_ids=(), actor: Actor) -> None:
    """Allocate follow-up orders and re-allocate units waiting for these SKUs once the
    transaction has committed, in transactions of their own (their locks come earlier in the
    lock order than those the caller holds). A failure is logged; the periodic re-allocation
    task retries waiting units."""
    order_ids, sku_ids = list(order_ids), list(sku_ids)
    if not (order_ids or sku_ids):
        return

    def run() -> None:
        from .allocation import allocate_units, reallocate_waiting_units

        if order_ids:
            allocate_units(order_ids=order_ids, actor=actor)
        if sku_ids:
            reallocate_waiting_units(sku_ids=sku_ids, actor=actor)

    transaction.on_commit(run, robust=True)


# --- Follow-up orders (reshipment, replacement) ------------------------------------------


def create_follow_up_orders(units: list[OrderItem], *, kind: str, actor: Actor) -> list[Order]:
    """One new order per original order for these units (same lines, prices, address),
    coded `<original>-RS<n>` (reshipment) or `<original>-R<n>` (replacement) and linked
    both ways. Not allocated here: callers use `allocate_after_commit`."""
    if not units:
        return []
    sources = Order.objects.in_bulk({u.order_id for u in units})
    channel_codes = dict(
        Order.objects.filter(pk__in=list(sources)).values_list("pk", "channel__code")
    )
    sku_codes = dict(
        OrderItem.objects.filter(pk__in=[u.pk for u in units]).values_list("pk", "sku__code")
    )
    taken = dict(
        Order.objects.filter(source_order_id__in=list(sources), kind=kind)
        .values_list("source_order_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    suffix = "RS" if kind == OrderKind.RESHIPMENT else "R"
    by_order: dict[int, list[OrderItem]] = defaultdict(list)
    for unit in sorted(units, key=lambda u: (u.order_id, u.channel_order_item_id, u.code)):
        by_order[unit.order_id].append(unit)
    inputs, plan = [], []
    for order_id, members in by_order.items():
        src = sources[order_id]
        lines: dict[str, list[OrderItem]] = defaultdict(list)
        for unit in members:
            lines[unit.channel_order_item_id].append(unit)
        inputs.append(
            OrderInput(
                channel=channel_codes[order_id],
                channel_order_id=f"{src.channel_order_id}-{suffix}{taken.get(order_id, 0) + 1}",
                lines=[
                    LineInput(
                        channel_order_item_id=line_id,
                        sku=sku_codes[group[0].pk],
                        quantity=len(group),
                        selling_price=group[0].selling_price,
                        shipping_charges=group[0].shipping_charges,
                        title=group[0].title,
                        channel_product_id=group[0].channel_product_id,
                        variant_id=group[0].variant_id,
                    )
                    for line_id, group in lines.items()
                ],
                ship_pincode=src.ship_pincode,
                payment_method=src.payment_method,
                third_party_shipping=src.third_party_shipping,
                priority=src.priority,
                currency=src.currency,
                customer_name=src.customer_name,
                customer_email=src.customer_email,
                customer_phone=src.customer_phone,
                ship_address_line1=src.ship_address_line1,
                ship_address_line2=src.ship_address_line2,
                ship_city=src.ship_city,
                ship_state=src.ship_state,
                ship_country=src.ship_country,
                billing_address=src.billing_address,
            )
        )
        plan.append((src, lines))
    new_orders = orders_create(inputs, actor=actor, allocate=False)
    for order, (src, _) in zip(new_orders, plan, strict=True):
        order.source_order, order.kind = src, kind
    bulk_set(Order, new_orders, ["source_order", "kind"])
    new_units: dict[tuple[int, str], list[OrderItem]] = defaultdict(list)
    for unit in OrderItem.objects.filter(order__in=new_orders).order_by("pk"):
        new_units[(unit.order_id, unit.channel_order_item_id)].append(unit)
    linked = []
    for order, (_, lines) in zip(new_orders, plan, strict=True):
        for line_id, group in lines.items():
            for new, old in zip(new_units[(order.pk, line_id)], group, strict=True):
                new.source_item_id = old.pk
                linked.append(new)
    bulk_set(OrderItem, linked, ["source_item"])
    return new_orders


# --- Courier returns ------------------------------------------------------------------------


def _units_in_packages(shipments) -> dict[int, list[OrderItem]]:
    grouped: dict[int, list[OrderItem]] = defaultdict(list)
    if shipments:
        for unit in lock_items(shipment_id__in=[s.pk for s in shipments], status__in=IN_PACKAGE):
            grouped[unit.shipment_id].append(unit)
    return grouped


def shipments_on_open_pickups(shipment_ids) -> set[int]:
    """Shipments with a unit on a reverse pickup that is open or complete (a customer return:
    the package cannot also come back as a courier return)."""
    return set(
        ReversePickupItem.objects.filter(
            order_item__shipment_id__in=list(shipment_ids),
            reverse_pickup__status__in=REVERSE_PICKUP_OPEN,
        ).values_list("order_item__shipment_id", flat=True)
    )


def shipments_expect_return(shipment_ids, *, actor=None, reason: str = "") -> Outcome:
    """The courier is bringing dispatched shipments back (RTO): RETURN_EXPECTED."""
    actor = Actor.of(actor)
    outcome = Outcome()
    reason = _reason(reason, required=False) or "courier return"
    with transaction.atomic():
        shipments = lock_shipments(shipment_ids)
        busy = shipments_on_open_pickups([s.pk for s in shipments])
        ok = []
        for s in shipments:
            if s.pk in busy:
                outcome.fail(s, "a unit of it is on a reverse pickup (customer return)")
            elif _check(outcome, s, "expect_return"):
                ok.append(s)
        apply_transitions(ok, "expect_return", actor=actor, reason=reason)
        outcome.done = ok
    return outcome


def shipments_mark_returned(
    shipment_ids,
    *,
    actor=None,
    shelf: Shelf | None = None,
    inventory_type: str = InventoryType.GOOD_INVENTORY,
) -> Outcome:
    """SKU/NONE traceability: complete courier returns from the order page.

    DISPATCHED, SHIPPED or RETURN_EXPECTED shipments become RETURNED; their units go back on
    a `PUTAWAY_RECEIVED_RETURNS` putaway completed on the spot (into `shelf`, or each unit's
    own shelf, as `inventory_type`); a sale return invoice reverses each sale; units waiting
    to be reshipped go out. Needs the PUTAWAY and RETURN_INVOICE sequences of the facility."""
    actor = Actor.of(actor)
    outcome = Outcome()
    if inventory_type not in (InventoryType.GOOD_INVENTORY, InventoryType.BAD_INVENTORY):
        raise ValidationError(
            {"inventory_type": f"Inventory type {inventory_type!r} is not GOOD or BAD"}
        )
    with transaction.atomic(), traceability_known():
        shipments = lock_shipments(shipment_ids)
        busy = shipments_on_open_pickups([s.pk for s in shipments])
        candidates = []
        for s in shipments:
            if s.pk in busy:
                outcome.fail(s, "a unit of it is on a reverse pickup (customer return)")
            elif _check(outcome, s, "mark_returned"):
                candidates.append(s)
        units = _units_in_packages(candidates)
        origin = dict(
            Inventory.objects.filter(
                pk__in={u.inventory_id for g in units.values() for u in g if u.inventory_id}
            ).values_list("pk", "shelf_id")
        )
        shelf_facility = dict(
            Shelf.objects.values_list("pk", "facility_id").filter(
                pk__in={*origin.values(), *([shelf.pk] if shelf else [])}
            )
        )
        missing = missing_sequences(
            {s.facility_id for s in candidates},
            [SequenceName.PUTAWAY, SequenceName.RETURN_INVOICE],
        )
        ok: list[Shipment] = []
        target_shelf: dict[int, int] = {}
        orders = {s.order_id: s.order for s in candidates}
        for s in candidates:
            if s.facility_id in missing:
                outcome.fail(s, missing[s.facility_id])
                continue
            if shelf is not None and shelf.facility_id != s.facility_id:
                outcome.fail(s, f"shelf {shelf} is not in facility {s.facility}")
                continue
            chosen, problem = {}, ""
            for unit in units[s.pk]:
                sid = shelf.pk if shelf else origin.get(unit.inventory_id)
                if sid is None or shelf_facility.get(sid) != s.facility_id:
                    problem = (
                        f"unit {unit_label(unit, orders)} has no shelf it came from in "
                        f"{s.facility}: choose a shelf"
                    )
                    break
                chosen[unit.pk] = sid
            if problem:
                outcome.fail(s, problem)
                continue
            target_shelf.update(chosen)
            ok.append(s)
        returned = [u for s in ok for u in units[s.pk]]
        lock_stock_rows((target_shelf[u.pk], u.sku_id, inventory_type) for u in returned)
        groups: dict[tuple, list[OrderItem]] = defaultdict(list)
        for s in ok:
            groups[(s.facility, PutawayType.PUTAWAY_RECEIVED_RETURNS)] += units[s.pk]
        putaways = putaways_create(groups, actor=actor)
        items: dict[int, list[PutawayItem]] = defaultdict(list)
        for item in PutawayItem.objects.filter(putaway__in=putaways).order_by("pk"):
            items[item.putaway_id].append(item)
        targets = {
            item.pk: (target_shelf[item.order_item_id], inventory_type)
            for group in items.values()
            for item in group
        }
        invoices = issue_credit_notes({s.pk: units[s.pk] for s in ok})
        now = timezone.now()
        complete_locked(putaways, items, targets, actor=actor, finish_returns=False, now=now)
        apply_transitions(ok, "mark_returned", actor=actor, reason="marked returned", now=now)
        follow_ups = reship_waiting_units(ok, actor=actor)
        allocate_after_commit(order_ids=[o.pk for o in follow_ups], actor=actor)
        outcome.done = ok
        outcome.created = [*putaways, *invoices, *follow_ups]
    return outcome


def returns_after_putaway(putaways, *, actor: Actor) -> list[Order]:
    """A courier-returned putaway was completed or discarded: its RETURN_ACKNOWLEDGED
    shipments are RETURNED and units waiting for the return are reshipped. Called by
    `inventory.putaway` with the putaways locked (Putaway comes before Order)."""
    shipment_ids = set(
        PutawayItem.objects.filter(putaway__in=putaways).values_list(
            "order_item__shipment_id", flat=True
        )
    )
    shipments = [s for s in lock_shipments(shipment_ids) if s.status == SS.RETURN_ACKNOWLEDGED]
    apply_transitions(shipments, "complete_return", actor=actor, reason="putaway done")
    return reship_waiting_units(shipments, actor=actor)


def reship_waiting_units(shipments, *, actor: Actor) -> list[Order]:
    """Reship the units of these (locked, now returned) shipments that wait for their return
    ("wait for return & reship"). Returns the reshipment orders (allocate after commit)."""
    if not shipments:
        return []
    units = lock_items(
        shipment_id__in=[s.pk for s in shipments],
        status=S.DISPATCHED,
        reship_option=ReshipOption.WAIT_FOR_RETURN,
    )
    apply_transitions(units, "reship", actor=actor, reason="return received: reshipped")
    return create_follow_up_orders(units, kind=OrderKind.RESHIPMENT, actor=actor)


# --- Return manifests -----------------------------------------------------------------------


def return_manifest_create(
    *, facility: Facility, shipping_provider=None, comments: str = "", actor=None
) -> ReturnManifest:
    """Open a return manifest; its code is `R` + a number of the MANIFEST sequence."""
    actor = Actor.of(actor)
    with transaction.atomic():
        code = "R" + sequence_take(SequenceName.MANIFEST, facility=facility)[0]
        manifest = ReturnManifest.objects.create(
            code=code,
            facility=facility,
            shipping_provider=shipping_provider,
            comments=comments,
            created_by=actor.user,
        )
        record_changes([Change(manifest, "", manifest.status)], transition="create", actor=actor)
    return manifest


def return_manifest_add_shipments(manifest: ReturnManifest, shipment_ids, *, actor=None) -> Outcome:
    """Receive RETURN_EXPECTED shipments of the manifest's facility: RETURN_ACKNOWLEDGED."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        manifest = lock_return_manifest(manifest.pk)
        if manifest.status != ReturnManifestStatus.CREATED:
            raise IllegalTransition(
                manifest, "add_shipments", "only an open return manifest receives shipments"
            )
        ok = []
        for s in lock_shipments(shipment_ids):
            if s.facility_id != manifest.facility_id:
                outcome.fail(s, f"it was dispatched from {s.facility}, not {manifest.facility}")
            elif _check(outcome, s, "acknowledge_return"):
                ok.append(s)
        ReturnManifestItem.objects.bulk_create(
            [ReturnManifestItem(return_manifest=manifest, shipment=s) for s in ok]
        )
        apply_transitions(
            ok, "acknowledge_return", actor=actor, reason=f"received on {manifest.code}"
        )
        outcome.done = ok
    return outcome


def shipments_receive_return(shipment_ids, *, actor=None) -> Outcome:
    """Receive courier returns on the open return manifest of their facility, opening one
    where there is none."""
    actor = Actor.of(actor)
    outcome = Outcome()
    by_facility: dict[int, list[int]] = defaultdict(list)
    for pk, facility_id in Shipment.objects.filter(pk__in=list(shipment_ids)).values_list(
        "pk", "facility_id"
    ):
        by_facility[facility_id].append(pk)
    for facility_id, ids in sorted(by_facility.items()):
        manifest = (
            ReturnManifest.objects.filter(
                facility_id=facility_id, status=ReturnManifestStatus.CREATED
            )
            .order_by("-pk")
            .first()
        )
        if manifest is None:
            manifest = return_manifest_create(
                facility=Facility.objects.get(pk=facility_id), actor=actor
            )
            outcome.created.append(manifest)
        outcome.merge(return_manifest_add_shipments(manifest, ids, actor=actor))
    return outcome


def return_manifest_close(manifest: ReturnManifest, *, actor=None) -> Outcome:
    """Receiving is done: the manifest is CLOSED, the sale invoices of its shipments are
    reversed and all its units go on one `PUTAWAY_COURIER_RETURNED_ITEMS` putaway (completing
    it makes the shipments RETURNED). Needs the PUTAWAY and RETURN_INVOICE sequences."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        manifest = lock_return_manifest(manifest.pk)
        check_transition(manifest, "close")
        ids = ReturnManifestItem.objects.filter(return_manifest=manifest).values_list(
            "shipment_id", flat=True
        )
        shipments = [s for s in lock_shipments(ids) if s.status == SS.RETURN_ACKNOWLEDGED]
        if not shipments:
            raise IllegalTransition(manifest, "close", "it has received no shipments")
        for name in (SequenceName.PUTAWAY, SequenceName.RETURN_INVOICE):
            sequence_find(name, facility=manifest.facility)
        units = _units_in_packages(shipments)
        putaways = putaways_create(
            {
                (manifest.facility, PutawayType.PUTAWAY_COURIER_RETURNED_ITEMS): [
                    u for s in shipments for u in units[s.pk]
                ]
            },
            actor=actor,
            return_manifest=manifest,
        )
        invoices = issue_credit_notes({s.pk: units[s.pk] for s in shipments})
        apply_transitions([manifest], "close", actor=actor, values={"closed_at": timezone.now()})
        outcome.done = shipments
        outcome.created = [*putaways, *invoices]
    return outcome


# --- Reship and replace ---------------------------------------------------------------------


def units_reship(unit_ids, *, option: str, actor=None, reason: str = "") -> Outcome:
    """Reship courier-returned units (DISPATCHED, shipment RETURN_EXPECTED /
    RETURN_ACKNOWLEDGED / RETURNED) with one of seed 001's options:

    - WAIT_FOR_RETURN: reshipped when the return is received (now, if it already is);
    - RESHIP_EXPECT_RETURN: reshipped now; the return goes on as usual;
    - RESHIP_NO_RETURN: reshipped now; the return is closed without goods (shipment
      RETURNED, no stock, sale return invoice). The package comes back whole or not at all,
      so all its dispatched units must be named; refused once it has been received.

    A reshipped unit is RESHIPPED and a reshipment order (`<order>-RS<n>`) is made for it,
    allocated after the commit. Units cancelled after dispatch are not reshipped."""
    actor = Actor.of(actor)
    if option not in ReshipOption.values:
        raise ValidationError(
            {"option": f"Reship option {option!r} is not one of {', '.join(ReshipOption.values)}"}
        )
    reason = _reason(reason, required=False) or ReshipOption(option).label
    outcome = Outcome()
    with transaction.atomic():
        unit_ids = list(unit_ids)
        rows = list(
            OrderItem.objects.filter(pk__in=unit_ids).values_list("order_id", "shipment_id")
        )
        orders = lock_orders(o for o, _ in rows)
        shipments = {s.pk: s for s in lock_shipments(s for _, s in rows if s)}
        expected = [pk for pk, s in shipments.items() if s.status == SS.RETURN_EXPECTED]
        # the named units and their packages' other units, locked together in pk order
        locked = list(
            OrderItem.objects.select_for_update(of=("self",))
            .filter(Q(pk__in=list(unit_ids)) | Q(shipment_id__in=expected, status__in=IN_PACKAGE))
            .order_by("pk")
        )
        named = set(unit_ids)
        units = [u for u in locked if u.pk in named]
        package: dict[int, list[OrderItem]] = defaultdict(list)
        for unit in locked:
            if unit.shipment_id in expected and unit.status in IN_PACKAGE:
                package[unit.shipment_id].append(unit)
        now_units, wait_units, write_off = [], [], {}
        for unit in units:
            label = unit_label(unit, orders)
            s = shipments.get(unit.shipment_id)
            if unit.status != S.DISPATCHED:
                outcome.fail(label, f"unit is {unit.status}: only dispatched units come back")
            elif unit.cancellation_reason:
                outcome.fail(label, f"it was cancelled after dispatch ({unit.cancellation_reason})")
            elif s is None or s.status not in RETURN_PATH:
                status = s.status if s else "not shipped"
                outcome.fail(label, f"its shipment is {status}: mark it as a courier return first")
            elif option == ReshipOption.WAIT_FOR_RETURN and s.status != SS.RETURNED:
                if unit.reship_option == ReshipOption.WAIT_FOR_RETURN:
                    outcome.fail(label, "it already waits for its return to be reshipped")
                else:
                    wait_units.append(unit)
            elif option == ReshipOption.RESHIP_NO_RETURN and s.status == SS.RETURN_ACKNOWLEDGED:
                outcome.fail(
                    label, f"shipment {s} was already received back: choose another option"
                )
            elif option == ReshipOption.RESHIP_NO_RETURN and s.status == SS.RETURN_EXPECTED:
                left = [u for u in package[s.pk] if u.status == S.DISPATCHED and u.pk not in named]
                if left:
                    outcome.fail(
                        label,
                        f"the whole package {s} is written off: name its other units too "
                        f"({', '.join(u.code for u in left)})",
                    )
                else:
                    write_off.setdefault(s.pk, s)
                    now_units.append(unit)
            else:
                now_units.append(unit)
        missing = missing_sequences(
            {s.facility_id for s in write_off.values()}, [SequenceName.RETURN_INVOICE]
        )
        for s in [s for s in write_off.values() if s.facility_id in missing]:
            del write_off[s.pk]
            for unit in [u for u in now_units if u.shipment_id == s.pk]:
                now_units.remove(unit)
                outcome.fail(unit_label(unit, orders), missing[s.facility_id])
        now = timezone.now()
        if wait_units:
            OrderItem.objects.filter(pk__in=[u.pk for u in wait_units]).update(
                reship_option=ReshipOption.WAIT_FOR_RETURN, updated_at=now
            )
            record_events(wait_units, transition="request_reship", actor=actor, reason=reason)
        apply_transitions(
            now_units, "reship", actor=actor, reason=reason, values={"reship_option": option}
        )
        follow_ups = create_follow_up_orders(now_units, kind=OrderKind.RESHIPMENT, actor=actor)
        invoices = issue_credit_notes(
            {pk: [u for u in package[pk] if u.status in IN_PACKAGE] for pk in write_off}
        )
        apply_transitions(
            list(write_off.values()), "write_off_return", actor=actor, reason=reason, now=now
        )
        allocate_after_commit(order_ids=[o.pk for o in follow_ups], actor=actor)
        outcome.done = [*now_units, *wait_units]
        outcome.created = [*follow_ups, *invoices]
    return outcome


def units_replace(unit_ids, *, reason: str = "", actor=None) -> Outcome:
    """Replace dispatched or delivered units: they become REPLACED and a replacement order
    (`<order>-R<n>`, same SKU and prices) is made for them, allocated after the commit. The
    customer sends the original back with a reverse pickup."""
    actor = Actor.of(actor)
    reason = _reason(reason, required=False) or "replacement"
    outcome = Outcome()
    with transaction.atomic():
        rows = list(
            OrderItem.objects.filter(pk__in=list(unit_ids)).values_list("order_id", "shipment_id")
        )
        orders = lock_orders(o for o, _ in rows)
        shipments = {s.pk: s for s in lock_shipments(s for _, s in rows if s)}
        ok = []
        for unit in lock_items(pk__in=list(unit_ids)):
            label = unit_label(unit, orders)
            s = shipments.get(unit.shipment_id)
            if unit.cancellation_reason:
                outcome.fail(label, f"it was cancelled ({unit.cancellation_reason})")
            elif s is not None and s.status in RETURN_PATH:
                outcome.fail(label, f"shipment {s} is a courier return ({s.status}): reship it")
            else:
                try:
                    check_transition(unit, "replace")
                except IllegalTransition:
                    outcome.fail(
                        label, f"unit is {unit.status}: only dispatched units are replaced"
                    )
                    continue
                ok.append(unit)
        apply_transitions(ok, "replace", actor=actor, reason=reason)
        follow_ups = create_follow_up_orders(ok, kind=OrderKind.REPLACEMENT, actor=actor)
        allocate_after_commit(order_ids=[o.pk for o in follow_ups], actor=actor)
        outcome.done = ok
        outcome.created = follow_ups
    return outcome


# --- Reverse pickups (customer returns) ---------------------------------------------------


def reverse_pickup_create(unit_ids, *, reason: str, actor=None) -> ReversePickup:
    """A customer return of dispatched or delivered units of one order, back to the facility
    that shipped them. Raises ValidationError naming each unit that cannot be returned."""
    actor = Actor.of(actor)
    reason = _reason(reason)
    unit_ids = list(unit_ids)
    if not unit_ids:
        raise ValidationError({"units": "Name at least one unit to return"})
    with transaction.atomic():
        rows = list(
            OrderItem.objects.filter(pk__in=unit_ids).values_list("pk", "order_id", "shipment_id")
        )
        unknown = set(unit_ids) - {pk for pk, _, _ in rows}
        if unknown:
            raise ValidationError({"units": f"Unknown units: {sorted(unknown)}"})
        order_ids = {o for _, o, _ in rows}
        if len(order_ids) > 1:
            codes = sorted(Order.objects.filter(pk__in=order_ids).values_list("code", flat=True))
            raise ValidationError(
                {"units": f"A reverse pickup returns units of one order, not {', '.join(codes)}"}
            )
        orders = lock_orders(order_ids)  # the order lock serialises pickups of its units
        shipments = {s.pk: s for s in lock_shipments(s for _, _, s in rows if s)}
        units = lock_items(pk__in=unit_ids)
        open_pickups = dict(
            ReversePickupItem.objects.filter(
                order_item__in=units, reverse_pickup__status__in=REVERSE_PICKUP_OPEN
            ).values_list("order_item_id", "reverse_pickup__code")
        )
        errors = []
        for unit in units:
            label = f"Unit {unit_label(unit, orders)}"
            s = shipments.get(unit.shipment_id)
            if unit.status not in CUSTOMER_RETURNABLE_UNITS:
                errors.append(f"{label} is {unit.status}: only dispatched units can be returned")
            elif s is None or s.status not in CUSTOMER_RETURNABLE_SHIPMENTS:
                status = s.status if s else "missing"
                errors.append(f"{label}: its shipment is {status}, not dispatched or delivered")
            elif unit.cancellation_reason:
                errors.append(f"{label} was cancelled after dispatch: it comes back by courier")
            elif unit.pk in open_pickups:
                errors.append(f"{label} is already on reverse pickup {open_pickups[unit.pk]}")
        if errors:
            raise ValidationError({"units": errors})
        facilities = {shipments[u.shipment_id].facility for u in units}
        if len(facilities) > 1:
            names = ", ".join(sorted(f.code for f in facilities))
            raise ValidationError(
                {"units": f"The units were shipped from {names}: one pickup per facility"}
            )
        facility = facilities.pop()
        order = next(iter(orders.values()))
        code = sequence_take(SequenceName.REVERSE_PICKUP, facility=facility)[0]
        pickup = ReversePickup.objects.create(
            code=code, order=order, facility=facility, reason=reason, created_by=actor.user
        )
        ReversePickupItem.objects.bulk_create(
            [ReversePickupItem(reverse_pickup=pickup, order_item=u) for u in units]
        )
        record_changes(
            [Change(pickup, "", pickup.status)], transition="create", actor=actor, reason=reason
        )
    return pickup


def reverse_pickup_allocate_courier(
    pickup: ReversePickup,
    *,
    courier_name: str,
    courier_code: str,
    return_awb: str,
    actor=None,
) -> ReversePickup:
    """Record the courier collecting the units (seed 003's reversePickupCourierName/Code and
    returnAwb): COURIER_ALLOCATED."""
    actor = Actor.of(actor)
    values = {
        "courier_name": (courier_name or "").strip(),
        "courier_code": (courier_code or "").strip(),
        "return_awb": (return_awb or "").strip(),
    }
    where = f"Reverse pickup {pickup}"
    if not (values["courier_name"] or values["courier_code"]):
        raise ValidationError({"courier_name": f"{where}: name the courier (name or code)"})
    if not values["return_awb"]:
        raise ValidationError({"return_awb": f"{where}: the return AWB is missing"})
    for name, limit in (("courier_name", 100), ("courier_code", 40), ("return_awb", 60)):
        if len(values[name]) > limit:
            raise ValidationError({name: f"{where}: {name} is longer than {limit} characters"})
    with transaction.atomic():
        pickup = lock_reverse_pickups([pickup.pk])[0]
        apply_transitions(
            [pickup],
            "allocate_courier",
            actor=actor,
            reason=f"{values['courier_name'] or values['courier_code']} {values['return_awb']}",
            values=values,
        )
    return pickup


def reverse_pickups_complete(pickup_ids, *, actor=None) -> Outcome:
    """The units arrived back at the return facility: COMPLETE, a
    `PUTAWAY_REVERSE_PICKUP_ITEM` putaway per pickup and a sale return invoice per shipment.
    A pickup whose facility lacks the PUTAWAY or RETURN_INVOICE sequence is refused."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        pickups = [p for p in lock_reverse_pickups(pickup_ids) if _check(outcome, p, "complete")]
        missing = missing_sequences(
            {p.facility_id for p in pickups}, [SequenceName.PUTAWAY, SequenceName.RETURN_INVOICE]
        )
        ok = []
        for p in pickups:
            if p.facility_id in missing:
                outcome.fail(p, missing[p.facility_id])
            else:
                ok.append(p)
        members: dict[int, list[int]] = defaultdict(list)
        for pickup_id, unit_id in ReversePickupItem.objects.filter(
            reverse_pickup__in=ok
        ).values_list("reverse_pickup_id", "order_item_id"):
            members[pickup_id].append(unit_id)
        units = {u.pk: u for u in lock_items(pk__in=[i for ids in members.values() for i in ids])}
        groups = {
            (p.facility, PutawayType.PUTAWAY_REVERSE_PICKUP_ITEM, p): [
                units[i] for i in members[p.pk]
            ]
            for p in ok
        }
        putaways = putaways_create(groups, actor=actor)  # one per pickup
        by_shipment: dict[int, list[OrderItem]] = defaultdict(list)
        for returned in groups.values():
            for unit in returned:
                by_shipment[unit.shipment_id].append(unit)
        invoices = issue_credit_notes(by_shipment)
        apply_transitions(ok, "complete", actor=actor, values={"closed_at": timezone.now()})
        outcome.done = ok
        outcome.created = [*putaways, *invoices]
    return outcome


def reverse_pickups_mark_not_received(pickup_ids, *, actor=None, reason: str = "") -> Outcome:
    """The courier did not bring the units back: NOT_RECEIVED (a new pickup may be made)."""
    return _close_pickups(pickup_ids, "mark_not_received", actor=actor, reason=reason)


def reverse_pickups_cancel(pickup_ids, *, reason: str, actor=None) -> Outcome:
    """Cancel whole pickups (CREATED or COURIER_ALLOCATED); partial cancellation does not
    exist."""
    return _close_pickups(pickup_ids, "cancel", actor=actor, reason=_reason(reason))


def _close_pickups(pickup_ids, name: str, *, actor, reason: str) -> Outcome:
    actor = Actor.of(actor)
    outcome = Outcome()
    reason = _reason(reason, required=False)
    with transaction.atomic():
        ok = [p for p in lock_reverse_pickups(pickup_ids) if _check(outcome, p, name)]
        apply_transitions(
            ok, name, actor=actor, reason=reason, values={"closed_at": timezone.now()}
        )
        outcome.done = ok
    return outcome
