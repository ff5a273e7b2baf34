"""The forward flow after allocation: picklist → receive → invoice (PACKED) → label
(READY_TO_SHIP) → manifest (MANIFESTED) → close manifest (DISPATCHED) → SHIPPED → DELIVERED,
and force dispatch.

Every service takes many objects, checks each one, does the work for the valid ones in a fixed
number of statements and reports the others in its `Outcome` with the reason. Rows are locked
in the order of `orders.locks`.
Each shipment transition (`apply_transitions` → `states_changed`) makes `notifications.receivers`
write the channel's status notification (and the dispatch push) in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory.ledger import Ref
from inventory.models import StockReason
from inventory.services import stock_consume, stock_lock_rows
from uniware.core.actors import Actor
from uniware.core.audit import record_changes
from uniware.core.db import bulk_set
from uniware.core.fsm import (
    Change,
    IllegalTransition,
    apply_transitions,
    check_transition,
    transition_allowed,
)
from uniware.core.models import SequenceName
from uniware.core.results import Outcome
from uniware.core.services import SequenceNotDefined, sequence_find, sequence_take

from ..locks import lock_items, lock_manifest, lock_shipments
from ..models import (
    CURRENT_SALE,
    Invoice,
    Manifest,
    ManifestStatus,
    OrderItem,
    OrderItemStatus,
    Picklist,
    PicklistDestination,
    PicklistItem,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from .invoicing import invoice_problems, issue_sale_invoices, skus_of
from .orders import orders_refresh_status

UNITS_BEFORE_DISPATCH = [
    OrderItemStatus.FULFILLABLE,
    OrderItemStatus.LOCATION_NOT_SERVICEABLE,
    OrderItemStatus.PICKING_FOR_STAGING,
    OrderItemStatus.PICKING_FOR_INVOICING,
    OrderItemStatus.MANIFESTED,
]


def _orders_of(shipments) -> dict:
    return {s.order_id: s.order for s in shipments}


def _units_by_shipment(shipments, **filters) -> dict[int, list[OrderItem]]:
    grouped: dict[int, list[OrderItem]] = defaultdict(list)
    if shipments:
        for unit in lock_items(shipment_id__in=[s.pk for s in shipments], **filters):
            grouped[unit.shipment_id].append(unit)
    return grouped


# --- Picklists --------------------------------------------------------------------------


def picklist_create(shipment_ids, *, destination: str, actor=None) -> Outcome:
    """Put shipments on picklists, one per facility. `outcome.created` holds the picklists.

    CREATED shipments go to STAGING or INVOICING; shipments whose units are staged (PICKED,
    units PICKING_FOR_STAGING) can go on an INVOICING picklist.
    """
    actor = Actor.of(actor)
    outcome = Outcome()
    if destination not in PicklistDestination.values:
        raise ValueError(f"Picklist destination {destination!r} is not STAGING or INVOICING")
    with transaction.atomic():
        shipments = lock_shipments(shipment_ids)
        units = _units_by_shipment(
            shipments, status__in=[OrderItemStatus.FULFILLABLE, OrderItemStatus.PICKING_FOR_STAGING]
        )
        ok = []
        for s in shipments:
            members = units[s.pk]
            if not transition_allowed(outcome, s, "pick"):
                continue
            if s.status == ShipmentStatus.PICKED and (
                destination != PicklistDestination.INVOICING
                or not members
                or any(u.status != OrderItemStatus.PICKING_FOR_STAGING for u in members)
            ):
                outcome.fail(s, "only staged shipments can go on a picklist again, to INVOICING")
            elif s.status == ShipmentStatus.CREATED and (
                not members or any(u.status != OrderItemStatus.FULFILLABLE for u in members)
            ):
                outcome.fail(s, "it has no fulfillable units to pick")
            else:
                ok.append(s)
        if not ok:
            return outcome
        shelves = dict(
            OrderItem.objects.filter(pk__in=[u.pk for s in ok for u in units[s.pk]]).values_list(
                "pk", "inventory__shelf_id"
            )
        )
        by_facility: dict[int, list[Shipment]] = defaultdict(list)
        for s in ok:
            by_facility[s.facility_id].append(s)
        unit_transition = (
            "pick_for_staging"
            if destination == PicklistDestination.STAGING
            else "pick_for_invoicing"
        )
        for members in by_facility.values():
            facility = members[0].facility
            code = sequence_take(SequenceName.PICKLIST, facility=facility)[0]
            picklist = Picklist.objects.create(
                code=code, facility=facility, destination=destination, created_by=actor.user
            )
            record_changes(
                [Change(picklist, "", picklist.status)], transition="create", actor=actor
            )
            PicklistItem.objects.bulk_create(
                [
                    PicklistItem(
                        picklist=picklist,
                        order_item=u,
                        shipment_id=s.pk,
                        sku_id=u.sku_id,
                        shelf_id=shelves.get(u.pk),
                    )
                    for s in members
                    for u in units[s.pk]
                ]
            )
            outcome.created.append(picklist)
        apply_transitions(ok, "pick", actor=actor)
        apply_transitions([u for s in ok for u in units[s.pk]], unit_transition, actor=actor)
        orders_refresh_status(_orders_of(ok), actor=actor)
        outcome.done = ok
    return outcome


def picklist_receive(picklist_ids, *, actor=None) -> Outcome:
    """The picked units reached the station: picklist RECEIVED, its shipments PICKED."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        picklists = list(
            Picklist.objects.select_for_update().filter(pk__in=list(picklist_ids)).order_by("pk")
        )
        ok = [p for p in picklists if transition_allowed(outcome, p, "receive")]
        if not ok:
            return outcome
        shipment_ids = PicklistItem.objects.filter(picklist__in=ok).values_list(
            "shipment_id", flat=True
        )
        shipments = [s for s in lock_shipments(shipment_ids) if s.status == ShipmentStatus.PICKING]
        apply_transitions(ok, "receive", actor=actor)
        apply_transitions(shipments, "receive", actor=actor)
        outcome.done = ok
    return outcome


OPEN_PICKLIST = [PicklistStatus.CREATED, PicklistStatus.RECEIVED]


def _lock_open_picklists(shipment_ids, statuses=OPEN_PICKLIST) -> list[Picklist]:
    """Lock the open picklists these shipments are on (picklists come first in the lock
    order of `orders.locks`)."""
    ids = PicklistItem.objects.filter(
        shipment_id__in=list(shipment_ids), picklist__status__in=statuses
    ).values_list("picklist_id", flat=True)
    return list(
        Picklist.objects.select_for_update()
        .filter(pk__in=set(ids), status__in=statuses)
        .order_by("pk")
    )


def _close_finished_picklists(picklists: list[Picklist], *, actor: Actor) -> None:
    """Close (locked) open picklists none of whose shipments still waits to be picked or
    invoiced: all invoiced, dispatched or cancelled."""
    if not picklists:
        return
    waiting = set(
        PicklistItem.objects.filter(
            picklist__in=picklists,
            shipment__status__in=[
                ShipmentStatus.PICKING,
                ShipmentStatus.PICKED,
                ShipmentStatus.PENDING_CUSTOMIZATION,
                ShipmentStatus.CUSTOMIZATION_COMPLETE,
            ],
        ).values_list("picklist_id", flat=True)
    )
    done = [p for p in picklists if p.pk not in waiting and p.status in OPEN_PICKLIST]
    apply_transitions(done, "close", actor=actor)


# --- Invoicing --------------------------------------------------------------------------


def _create_sale_invoices(shipments: list[Shipment], outcome: Outcome) -> list[Shipment]:
    """Invoice shipments (order and facility loaded) that have no current sale invoice, with
    numbers from each facility's INVOICE sequence. Shipments whose facility has no usable
    sequence, or that lack a particular Rule 46 requires, fail with the reason, untouched.
    Returns the shipments that have an invoice now."""
    invoiced = set(
        Invoice.objects.filter(CURRENT_SALE, shipment__in=shipments).values_list(
            "shipment_id", flat=True
        )
    )
    todo = [s for s in shipments if s.pk not in invoiced]
    units: dict[int, list[OrderItem]] = defaultdict(list)
    for unit in OrderItem.objects.filter(shipment__in=todo).exclude(
        status=OrderItemStatus.CANCELLED
    ):
        units[unit.shipment_id].append(unit)
    skus = skus_of(units)
    refused = invoice_problems(todo, units, skus)
    for facility in {s.facility for s in todo}:
        try:
            sequence_find(SequenceName.INVOICE, facility=facility)
        except SequenceNotDefined as exc:
            refused.update({s.pk: str(exc) for s in todo if s.facility_id == facility.pk})
    for s in todo:
        if s.pk in refused:
            outcome.fail(s, refused[s.pk])
    issue_sale_invoices([s for s in todo if s.pk not in refused], units, skus)
    return [s for s in shipments if s.pk in invoiced or s.pk not in refused]


def shipments_invoice(shipment_ids, *, actor=None) -> Outcome:
    """Invoice picked shipments and mark them PACKED; closes picklists that are done."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        shipment_ids = list(shipment_ids)
        picklists = _lock_open_picklists(shipment_ids, [PicklistStatus.RECEIVED])
        shipments = lock_shipments(shipment_ids)
        units = _units_by_shipment(shipments)
        ready = []
        for s in shipments:
            if not transition_allowed(outcome, s, "pack"):
                continue
            active = [u for u in units[s.pk] if u.status != OrderItemStatus.CANCELLED]
            if not active or any(u.status != OrderItemStatus.PICKING_FOR_INVOICING for u in active):
                outcome.fail(
                    s,
                    "its units are not picked for invoicing "
                    "(staged units need an INVOICING picklist)",
                )
                continue
            ready.append(s)
        ok = _create_sale_invoices(ready, outcome)
        apply_transitions(ok, "pack", actor=actor)
        _close_finished_picklists(picklists, actor=actor)
        outcome.done = ok
    return outcome


# --- Labels -----------------------------------------------------------------------------


def shipments_generate_label(
    shipment_ids, *, actor=None, tracking_numbers: dict[int, str] | None = None
) -> Outcome:
    """Assign the tracking number (AWB) and mark packed shipments READY_TO_SHIP.

    Without a courier integration the AWB is `<provider code><shipment id, 10 digits>`, unless
    staff or the channel (third-party shipping) supplied one.
    """
    actor = Actor.of(actor)
    outcome = Outcome()
    tracking_numbers = tracking_numbers or {}
    with transaction.atomic():
        shipments = lock_shipments(shipment_ids)
        ok = []
        for s in shipments:
            if s.status != ShipmentStatus.PACKED:
                transition_allowed(outcome, s, "mark_ready_to_ship")
                continue
            given = tracking_numbers.get(s.pk) or s.tracking_number
            if s.order.third_party_shipping and not (given and s.shipping_provider_id):
                outcome.fail(
                    s, "the channel ships this order and has not sent provider and tracking number"
                )
                continue
            if not s.shipping_provider_id:
                outcome.fail(s, "no shipping provider serves this pincode and payment method")
                continue
            s.tracking_number = given or f"{s.shipping_provider.code}{s.pk:010d}"
            if transition_allowed(outcome, s, "mark_ready_to_ship"):
                ok.append(s)
        bulk_set(Shipment, ok, ["tracking_number"])
        apply_transitions(ok, "mark_ready_to_ship", actor=actor)
        outcome.done = ok
    return outcome


# --- Manifests --------------------------------------------------------------------------


class ManifestAlreadyOpen(ValidationError):
    """The route (facility, channel, provider) has an open manifest already."""


def open_manifest_of(facility_id: int, channel_id: int, provider_id: int) -> Manifest | None:
    """The open manifest of a route (facility, channel, provider): at most one exists."""
    return Manifest.objects.filter(
        facility_id=facility_id,
        channel_id=channel_id,
        shipping_provider_id=provider_id,
        status=ManifestStatus.CREATED,
    ).first()


def manifest_create(
    *, facility, channel, shipping_provider, actor=None, comments: str = ""
) -> Manifest:
    """Open a manifest; refused while the route already has an open one (the database's
    `one_open_manifest_per_route` constraint is the last word between two packers)."""
    actor = Actor.of(actor)
    try:
        with transaction.atomic():
            code = sequence_take(SequenceName.MANIFEST, facility=facility)[0]
            manifest = Manifest.objects.create(
                code=code,
                facility=facility,
                channel=channel,
                shipping_provider=shipping_provider,
                comments=comments,
                created_by=actor.user,
            )
            record_changes(
                [Change(manifest, "", manifest.status)], transition="create", actor=actor
            )
    except IntegrityError as exc:
        existing = open_manifest_of(facility.pk, channel.pk, shipping_provider.pk)
        if existing is None:
            raise
        raise ManifestAlreadyOpen(
            f"Manifest {existing.code} is already open for {channel} / {shipping_provider} "
            f"at {facility}: add the shipments to it, or close it first"
        ) from exc
    return manifest


def manifest_add_shipments(manifest: Manifest, shipment_ids, *, actor=None) -> Outcome:
    """Add READY_TO_SHIP shipments of the manifest's facility, channel and provider."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        manifest = lock_manifest(manifest.pk)
        if manifest.status != ManifestStatus.CREATED:
            raise IllegalTransition(
                manifest, "add_shipments", "only an open manifest takes shipments"
            )
        shipments = lock_shipments(shipment_ids)
        ok = []
        for s in shipments:
            if s.facility_id != manifest.facility_id:
                outcome.fail(
                    s, f"it ships from {s.facility}, the manifest from {manifest.facility}"
                )
            elif s.order.channel_id != manifest.channel_id:
                outcome.fail(s, f"its order is from another channel than {manifest.channel}")
            elif s.shipping_provider_id != manifest.shipping_provider_id:
                outcome.fail(
                    s, f"its provider is {s.shipping_provider}, not {manifest.shipping_provider}"
                )
            elif transition_allowed(outcome, s, "add_to_manifest"):
                ok.append(s)
        units = _units_by_shipment(ok, status=OrderItemStatus.PICKING_FOR_INVOICING)
        for s in ok:
            s.manifest = manifest
        bulk_set(Shipment, ok, ["manifest"])
        apply_transitions(ok, "add_to_manifest", actor=actor)
        apply_transitions([u for s in ok for u in units[s.pk]], "manifest", actor=actor)
        outcome.done = ok
    return outcome


def shipments_manifest(shipment_ids, *, actor=None) -> Outcome:
    """Add shipments to the open manifest of their facility, channel and provider, opening
    one where there is none (what staff want from a bulk "add to manifest")."""
    actor = Actor.of(actor)
    outcome = Outcome()
    groups: dict[tuple, list[int]] = defaultdict(list)
    rows = Shipment.objects.filter(pk__in=list(shipment_ids)).values_list(
        "pk", "facility_id", "order__channel_id", "shipping_provider_id", "code", "status"
    )
    for pk, facility_id, channel_id, provider_id, code, status in rows:
        if status != ShipmentStatus.READY_TO_SHIP or provider_id is None:
            outcome.fail(
                code,
                f"shipment is {status}: only READY_TO_SHIP shipments with a provider "
                "can be manifested",
            )
            continue
        groups[(facility_id, channel_id, provider_id)].append(pk)
    for route, ids in groups.items():
        outcome.merge(_manifest_route(route, ids, actor=actor))
    return outcome


class _NothingAdded(Exception):
    """Rolls back a manifest opened for shipments that were all refused."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def _manifest_route(route: tuple[int, int, int], ids: list[int], *, actor: Actor) -> Outcome:
    """Add shipments of one route to its open manifest, opening it when there is none. Two
    packers racing: the loser's insert meets the constraint and it takes the winner's
    manifest. A manifest opened here and left empty (every shipment refused) is not kept."""
    facility_id, channel_id, provider_id = route
    for _ in range(2):
        manifest = open_manifest_of(facility_id, channel_id, provider_id)
        if manifest is not None:
            return manifest_add_shipments(manifest, ids, actor=actor)
        try:
            with transaction.atomic():
                manifest = _open_route(route, actor)
                added = manifest_add_shipments(manifest, ids, actor=actor)
                if not added.done:
                    raise _NothingAdded(added)
                added.created.append(manifest)
                return added
        except _NothingAdded as nothing:
            return nothing.outcome
        except ManifestAlreadyOpen:
            continue  # another packer opened it meanwhile: add to theirs
    raise ValidationError("could not open or find the route's manifest; try again")


def _open_route(route: tuple[int, int, int], actor: Actor) -> Manifest:
    from channels.models import Channel
    from inventory.models import Facility, ShippingProvider

    facility_id, channel_id, provider_id = route
    return manifest_create(
        facility=Facility.objects.get(pk=facility_id),
        channel=Channel.objects.get(pk=channel_id),
        shipping_provider=ShippingProvider.objects.get(pk=provider_id),
        actor=actor,
    )


def manifest_remove_shipments(manifest: Manifest, shipment_ids, *, actor=None) -> Outcome:
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        manifest = lock_manifest(manifest.pk)
        if manifest.status != ManifestStatus.CREATED:
            raise IllegalTransition(manifest, "remove_shipments", "the manifest is not open")
        shipments = lock_shipments(shipment_ids)
        ok = []
        for s in shipments:
            if s.manifest_id != manifest.pk:
                outcome.fail(s, f"it is not on manifest {manifest}")
            elif transition_allowed(outcome, s, "remove_from_manifest"):
                ok.append(s)
        units = _units_by_shipment(ok, status=OrderItemStatus.MANIFESTED)
        for s in ok:
            s.manifest = None
        bulk_set(Shipment, ok, ["manifest"])
        apply_transitions(ok, "remove_from_manifest", actor=actor)
        apply_transitions([u for s in ok for u in units[s.pk]], "unmanifest", actor=actor)
        outcome.done = ok
    return outcome


def manifest_close(manifest: Manifest, *, actor=None) -> Outcome:
    """Close the manifest: its shipments and units are DISPATCHED and their stock leaves the
    shelves. One statement per kind of write, whatever the manifest's size."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        manifest = lock_manifest(manifest.pk)
        check_transition(manifest, "close")
        candidates = Shipment.objects.filter(manifest=manifest, status=ShipmentStatus.MANIFESTED)
        # Re-check once locked: one may have been force-dispatched or removed meanwhile.
        shipments = [
            s
            for s in lock_shipments(candidates.values_list("pk", flat=True))
            if s.status == ShipmentStatus.MANIFESTED and s.manifest_id == manifest.pk
        ]
        if not shipments:
            raise IllegalTransition(manifest, "close", "it has no shipments")
        held = [s.code for s in shipments if s.order.on_hold]
        if held:
            raise IllegalTransition(
                manifest, "close", f"orders on hold: {', '.join(held[:10])}; remove or unhold them"
            )
        unpacked = [f"{s.code} ({s.repack_reason})" for s in shipments if s.repack_reason]
        if unpacked:
            raise IllegalTransition(
                manifest, "close", f"shipments wait for re-packing: {'; '.join(unpacked[:10])}"
            )
        units = [
            u
            for group in _units_by_shipment(shipments, status=OrderItemStatus.MANIFESTED).values()
            for u in group
        ]
        now = timezone.now()
        apply_transitions(
            shipments, "dispatch", actor=actor, values={"dispatched_at": now}, now=now
        )
        apply_transitions(units, "dispatch", actor=actor, now=now)
        stock_consume(units, reason=StockReason.DISPATCH, actor=actor, ref=Ref.of(manifest))
        apply_transitions([manifest], "close", actor=actor, values={"closed_at": now}, now=now)
        orders_refresh_status(_orders_of(shipments), actor=actor)
        outcome.done = shipments
    return outcome


def manifest_discard(manifest: Manifest, *, actor=None) -> Manifest:
    actor = Actor.of(actor)
    with transaction.atomic():
        manifest = lock_manifest(manifest.pk)
        if manifest.shipments.filter(status=ShipmentStatus.MANIFESTED).exists():
            raise IllegalTransition(
                manifest, "discard", "it still has shipments; remove them first"
            )
        apply_transitions([manifest], "discard", actor=actor)
    return manifest


# --- Dispatch outside a manifest, and after --------------------------------------------


def shipments_force_dispatch(shipment_ids, *, actor=None, reason: str = "") -> Outcome:
    """Dispatch without closing a manifest (uniware-research §6.2). Invoices first where the
    shipment has no invoice yet, so it needs the INVOICE sequence."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        shipment_ids = list(shipment_ids)
        picklists = _lock_open_picklists(shipment_ids)
        shipments = lock_shipments(shipment_ids)
        allowed = [s for s in shipments if transition_allowed(outcome, s, "force_dispatch")]
        by_shipment = _units_by_shipment(allowed, status__in=UNITS_BEFORE_DISPATCH)
        # stock rows before the INVOICE sequence: the lock order of orders.locks
        stock_lock_rows(u.inventory_id for group in by_shipment.values() for u in group)
        ok = _create_sale_invoices(allowed, outcome)
        units = [u for s in ok for u in by_shipment[s.pk]]
        now = timezone.now()
        apply_transitions(
            ok, "force_dispatch", actor=actor, reason=reason, values={"dispatched_at": now}, now=now
        )
        apply_transitions(units, "dispatch", actor=actor, reason=reason, now=now)
        stock_consume(units, reason=StockReason.FORCE_DISPATCH, actor=actor)
        _close_finished_picklists(picklists, actor=actor)
        orders_refresh_status(_orders_of(ok), actor=actor)
        outcome.done = ok
    return outcome


def shipments_ship(shipment_ids, *, actor=None) -> Outcome:
    """The courier has picked the dispatched shipments up (in transit)."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        shipments = lock_shipments(shipment_ids)
        ok = [s for s in shipments if transition_allowed(outcome, s, "ship")]
        apply_transitions(ok, "ship", actor=actor)
        outcome.done = ok
    return outcome


def shipments_deliver(shipment_ids, *, actor=None) -> Outcome:
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        shipments = lock_shipments(shipment_ids)
        ok = [s for s in shipments if transition_allowed(outcome, s, "deliver")]
        units = [
            u for g in _units_by_shipment(ok, status=OrderItemStatus.DISPATCHED).values() for u in g
        ]
        now = timezone.now()
        apply_transitions(ok, "deliver", actor=actor, values={"delivered_at": now}, now=now)
        apply_transitions(units, "deliver", actor=actor, now=now)
        outcome.done = ok
    return outcome
