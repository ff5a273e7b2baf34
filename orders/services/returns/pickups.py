"""Customer returns (CIR): a reverse pickup collects dispatched or delivered units of one order
and brings them back to the facility that shipped them.

CREATED → COURIER_ALLOCATED (`reverse_pickup_allocate_courier`) → COMPLETE
(`reverse_pickups_complete`: a `PUTAWAY_REVERSE_PICKUP_ITEM` putaway and a sale return
invoice) or NOT_RECEIVED; cancelled only as a whole.

The pickup's creation (`post_save`) and each of its transitions (`states_changed`) make
`notifications.receivers` write a reverse status notification (`IsReverse`) to the channel.
"""

from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from inventory.models import PutawayType
from inventory.putaway import putaways_create
from uniware.core.actors import Actor
from uniware.core.audit import record_changes
from uniware.core.fsm import Change, apply_transitions, transition_allowed
from uniware.core.models import SequenceName
from uniware.core.results import Outcome
from uniware.core.services import sequence_take

from ...locks import lock_items, lock_orders, lock_reverse_pickups, lock_shipments
from ...models import Order, OrderItem, ReversePickup, ReversePickupItem, Shipment
from ...models.returns import REVERSE_PICKUP_OPEN
from ..invoicing import issue_credit_notes
from .common import (
    CUSTOMER_RETURNABLE_SHIPMENTS,
    CUSTOMER_RETURNABLE_UNITS,
    clean_reason,
    missing_sequences,
    unit_label,
)


def reverse_pickup_create(unit_ids, *, reason: str, actor=None) -> ReversePickup:
    """A customer return of dispatched or delivered units of one order, back to the facility
    that shipped them. Raises ValidationError naming each unit that cannot be returned."""
    actor = Actor.of(actor)
    reason = clean_reason(reason)
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
        _refuse_several_orders({o for _, o, _ in rows})
        orders = lock_orders({o for _, o, _ in rows})  # serialises pickups of its units
        shipments = {s.pk: s for s in lock_shipments(s for _, _, s in rows if s)}
        units = lock_items(pk__in=unit_ids)
        errors = _pickup_refusals(units, shipments, orders)
        if errors:
            raise ValidationError({"units": errors})
        facilities = {shipments[u.shipment_id].facility for u in units}
        if len(facilities) > 1:
            names = ", ".join(sorted(f.code for f in facilities))
            raise ValidationError(
                {"units": f"The units were shipped from {names}: one pickup per facility"}
            )
        facility = facilities.pop()
        code = sequence_take(SequenceName.REVERSE_PICKUP, facility=facility)[0]
        pickup = ReversePickup.objects.create(
            code=code,
            order=next(iter(orders.values())),
            facility=facility,
            reason=reason,
            created_by=actor.user,
        )
        ReversePickupItem.objects.bulk_create(
            [ReversePickupItem(reverse_pickup=pickup, order_item=u) for u in units]
        )
        record_changes(
            [Change(pickup, "", pickup.status)], transition="create", actor=actor, reason=reason
        )
    return pickup


def _refuse_several_orders(order_ids: set[int]) -> None:
    if len(order_ids) > 1:
        codes = sorted(Order.objects.filter(pk__in=order_ids).values_list("code", flat=True))
        raise ValidationError(
            {"units": f"A reverse pickup returns units of one order, not {', '.join(codes)}"}
        )


def _pickup_refusals(
    units: list[OrderItem], shipments: dict[int, Shipment], orders: dict[int, Order]
) -> list[str]:
    """Why each of these (locked) units cannot go on a new reverse pickup."""
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
    return errors


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
        pickups = [
            p
            for p in lock_reverse_pickups(pickup_ids)
            if transition_allowed(outcome, p, "complete")
        ]
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
    return _close_pickups(pickup_ids, "cancel", actor=actor, reason=clean_reason(reason))


def _close_pickups(pickup_ids, name: str, *, actor, reason: str) -> Outcome:
    actor = Actor.of(actor)
    outcome = Outcome()
    reason = clean_reason(reason, required=False)
    with transaction.atomic():
        ok = [p for p in lock_reverse_pickups(pickup_ids) if transition_allowed(outcome, p, name)]
        apply_transitions(
            ok, name, actor=actor, reason=reason, values={"closed_at": timezone.now()}
        )
        outcome.done = ok
    return outcome
