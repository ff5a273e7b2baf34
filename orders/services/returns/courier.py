"""Courier returns (RTO): the courier brings a dispatched package back, whole.

- `shipments_expect_return`: DISPATCHED/SHIPPED → RETURN_EXPECTED (a cancellation after
  dispatch does the same);
- ITEM traceability: received on a return manifest (`return_manifest_add_shipments`,
  `shipments_receive_return`: RETURN_ACKNOWLEDGED); `return_manifest_close` issues the sale
  return invoices and a `PUTAWAY_COURIER_RETURNED_ITEMS` putaway, whose completion
  (`returns_after_putaway`) makes the shipments RETURNED;
- SKU/NONE traceability: `shipments_mark_returned` does it all at once.
"""

from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from inventory.models import Facility, Inventory, InventoryType, PutawayItem, PutawayType, Shelf
from inventory.putaway import complete_locked, putaways_create
from inventory.services import lock_stock_rows
from uniware.core.actors import Actor
from uniware.core.audit import record_changes
from uniware.core.fsm import (
    Change,
    IllegalTransition,
    apply_transitions,
    check_transition,
    transition_allowed,
)
from uniware.core.models import SequenceName
from uniware.core.results import Outcome
from uniware.core.services import sequence_find, sequence_take

from ...locks import lock_items, lock_return_manifest, lock_shipments
from ...models import (
    Order,
    OrderItem,
    ReturnManifest,
    ReturnManifestItem,
    ReturnManifestStatus,
    Shipment,
    ShipmentStatus,
)
from ...models.shipment import traceability_known
from ..allocation import allocate_after_commit
from ..invoicing import issue_credit_notes
from .common import (
    IN_PACKAGE,
    clean_reason,
    missing_sequences,
    shipments_on_open_pickups,
    unit_label,
)
from .follow_ups import reship_waiting_units


def _units_in_packages(shipments) -> dict[int, list[OrderItem]]:
    """{shipment id: its units that travelled in the package}, locked."""
    grouped: dict[int, list[OrderItem]] = defaultdict(list)
    if shipments:
        for unit in lock_items(shipment_id__in=[s.pk for s in shipments], status__in=IN_PACKAGE):
            grouped[unit.shipment_id].append(unit)
    return grouped


def _lock_courier_returnable(shipment_ids, transition: str, outcome: Outcome) -> list[Shipment]:
    """Lock the shipments; those that may take `transition` and have no unit on a customer
    return (the outcome says why of the others)."""
    shipments = lock_shipments(shipment_ids)
    busy = shipments_on_open_pickups([s.pk for s in shipments])
    ok = []
    for s in shipments:
        if s.pk in busy:
            outcome.fail(s, "a unit of it is on a reverse pickup (customer return)")
        elif transition_allowed(outcome, s, transition):
            ok.append(s)
    return ok


def shipments_expect_return(shipment_ids, *, actor=None, reason: str = "") -> Outcome:
    """The courier is bringing dispatched shipments back (RTO): RETURN_EXPECTED."""
    actor = Actor.of(actor)
    outcome = Outcome()
    reason = clean_reason(reason, required=False) or "courier return"
    with transaction.atomic():
        ok = _lock_courier_returnable(shipment_ids, "expect_return", outcome)
        apply_transitions(ok, "expect_return", actor=actor, reason=reason)
        outcome.done = ok
    return outcome


# --- Mark returned (SKU/NONE traceability) ----------------------------------------------------


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
    to be reshipped go out. Completing the putaway sends `putaways_closed`: units waiting for
    the SKUs put back as good stock are re-allocated after the commit (`orders.receivers`).
    Needs the PUTAWAY and RETURN_INVOICE sequences of the facility."""
    actor = Actor.of(actor)
    outcome = Outcome()
    if inventory_type not in (InventoryType.GOOD_INVENTORY, InventoryType.BAD_INVENTORY):
        raise ValidationError(
            {"inventory_type": f"Inventory type {inventory_type!r} is not GOOD or BAD"}
        )
    with transaction.atomic(), traceability_known():
        candidates = _lock_courier_returnable(shipment_ids, "mark_returned", outcome)
        units = _units_in_packages(candidates)
        ok, target_shelf = _choose_shelves(candidates, units, shelf, outcome)
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
        complete_locked(putaways, items, targets, actor=actor, now=now)
        apply_transitions(ok, "mark_returned", actor=actor, reason="marked returned", now=now)
        follow_ups = reship_waiting_units(ok, actor=actor)
        allocate_after_commit(order_ids=[o.pk for o in follow_ups], actor=actor)
        outcome.done = ok
        outcome.created = [*putaways, *invoices, *follow_ups]
    return outcome


def _choose_shelves(
    candidates: list[Shipment], units, shelf: Shelf | None, outcome: Outcome
) -> tuple[list[Shipment], dict[int, int]]:
    """The shipments that can go back into stock, and {unit id: shelf id}: `shelf`, or the
    shelf each unit was picked from, in the shipment's facility. A shipment whose facility
    lacks a sequence or a shelf for one of its units is refused whole."""
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
        chosen: dict[int, int] = {}
        for unit in units[s.pk]:
            sid = shelf.pk if shelf else origin.get(unit.inventory_id)
            if sid is None or shelf_facility.get(sid) != s.facility_id:
                outcome.fail(
                    s,
                    f"unit {unit_label(unit, orders)} has no shelf it came from in "
                    f"{s.facility}: choose a shelf",
                )
                break
            chosen[unit.pk] = sid
        else:  # every unit has a shelf
            target_shelf.update(chosen)
            ok.append(s)
    return ok, target_shelf


def returns_after_putaway(putaways, *, actor: Actor) -> list[Order]:
    """A courier-returned putaway was completed or discarded: its RETURN_ACKNOWLEDGED
    shipments are RETURNED and units waiting for the return are reshipped. Called on the
    `putaways_closed` signal (`orders.receivers`), with the putaways locked (Putaway comes
    before Order)."""
    shipment_ids = set(
        PutawayItem.objects.filter(putaway__in=putaways).values_list(
            "order_item__shipment_id", flat=True
        )
    )
    shipments = [
        s for s in lock_shipments(shipment_ids) if s.status == ShipmentStatus.RETURN_ACKNOWLEDGED
    ]
    apply_transitions(shipments, "complete_return", actor=actor, reason="putaway done")
    return reship_waiting_units(shipments, actor=actor)


# --- Return manifests (ITEM traceability) -----------------------------------------------------


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
            elif transition_allowed(outcome, s, "acknowledge_return"):
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
        shipments = [
            s for s in lock_shipments(ids) if s.status == ShipmentStatus.RETURN_ACKNOWLEDGED
        ]
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
