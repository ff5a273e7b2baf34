"""A packed box that loses a unit waits for re-packing (issue 11).

A unit cancelled after its shipment was invoiced (by staff or by the channel's sync) is still
in the packed box. If the box went out as it is, the cancelled unit would be dispatched while
its putaway asks someone to shelve it: physical and system stock would part ways. So:

1. At cancellation (`wait_for_repacking`, called by `units_cancel`), a PACKED, READY_TO_SHIP or
   MANIFESTED shipment that keeps other units is marked "waits for re-packing" (naming the
   units to take out) and, when manifested, taken off its open manifest (units back to
   PICKING_FOR_INVOICING). Its shipment guards then refuse manifesting, manifest close and
   force dispatch, naming the reason; the cancelled unit's putaway cannot be completed yet.
2. Staff take the units out and confirm (`shipments_repacked`): the shipment's sale invoice,
   which still counts the cancelled units, is re-issued: a sale return invoice reverses it
   for the units that stay (the cancelled ones were reversed at cancellation), it is marked
   superseded, and a new sale invoice counts what the box now holds. The putaway can then be
   completed: it holds a real unit.

A shipment whose units are all cancelled is CANCELLED instead (the whole box is unpacked).
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from uniware.core.actors import Actor
from uniware.core.audit import record_events
from uniware.core.db import bulk_set
from uniware.core.fsm import apply_transitions
from uniware.core.models import SequenceName
from uniware.core.results import Outcome

from ..locks import lock_shipments
from ..models import CURRENT_SALE, Invoice, OrderItem, OrderItemStatus, Shipment, ShipmentStatus
from .invoicing import invoice_problems, issue_credit_notes, issue_sale_invoices
from .returns.common import missing_sequences

PACKED_OR_LATER = (ShipmentStatus.PACKED, ShipmentStatus.READY_TO_SHIP, ShipmentStatus.MANIFESTED)


def wait_for_repacking(
    shipments: list[Shipment], cancelled: list[OrderItem], *, actor: Actor, reason: str, now
) -> list[Shipment]:
    """Mark locked packed shipments that lost `cancelled` units (and keep others) as waiting
    for re-packing; take manifested ones off their manifest. Returns the shipments marked."""
    codes: dict[int, list[str]] = defaultdict(list)
    for unit in cancelled:
        codes[unit.shipment_id].append(unit.code)
    marked = [s for s in shipments if s.status in PACKED_OR_LATER and codes.get(s.pk)]
    if not marked:
        return []
    for shipment in marked:
        taken_out = ", ".join(sorted(codes[shipment.pk]))
        shipment.repack_reason = f"take out cancelled unit(s) {taken_out}"[:255]
    manifested = [s for s in marked if s.status == ShipmentStatus.MANIFESTED]
    if manifested:
        units = OrderItem.objects.filter(
            shipment__in=manifested, status=OrderItemStatus.MANIFESTED
        ).order_by("pk")
        apply_transitions(list(units), "unmanifest", actor=actor, reason=reason, now=now)
        apply_transitions(manifested, "remove_from_manifest", actor=actor, reason=reason, now=now)
        for shipment in manifested:
            shipment.manifest = None
    bulk_set(Shipment, marked, ["repack_reason", "manifest"])
    record_events(marked, transition="wait_for_repacking", actor=actor, reason=reason)
    return marked


def shipments_repacked(shipment_ids, *, actor=None) -> Outcome:
    """Staff took the cancelled units out of these boxes: re-invoice what they now hold and
    let them go on (manifest, dispatch); the cancelled units' putaways can be completed."""
    actor = Actor.of(actor)
    outcome = Outcome()
    with transaction.atomic():
        shipments = lock_shipments(shipment_ids)
        waiting = []
        for shipment in shipments:
            if not shipment.repack_reason:
                outcome.fail(shipment, "it does not wait for re-packing")
            else:
                waiting.append(shipment)
        needed = [SequenceName.INVOICE, SequenceName.RETURN_INVOICE]
        refused = missing_sequences({s.facility_id for s in waiting}, needed)
        refused = {s.pk: refused[s.facility_id] for s in waiting if s.facility_id in refused}
        staying = _staying_units(waiting)
        refused.update(invoice_problems([s for s in waiting if s.pk not in refused], staying))
        for shipment in waiting:
            if shipment.pk in refused:
                outcome.fail(shipment, refused[shipment.pk])
        ready = [s for s in waiting if s.pk not in refused]
        if not ready:
            return outcome
        _reinvoice(ready, {s.pk: staying[s.pk] for s in ready}, outcome)
        for shipment in ready:
            shipment.repack_reason = ""
        bulk_set(Shipment, ready, ["repack_reason"])
        record_events(ready, transition="repacked", actor=actor)
        outcome.done = ready
    return outcome


def _staying_units(shipments: list[Shipment]) -> dict[int, list[OrderItem]]:
    staying: dict[int, list[OrderItem]] = defaultdict(list)
    for unit in OrderItem.objects.filter(shipment__in=shipments).exclude(
        status=OrderItemStatus.CANCELLED
    ):
        staying[unit.shipment_id].append(unit)
    return staying


def _reinvoice(shipments: list[Shipment], staying: dict, outcome: Outcome) -> None:
    """Reverse the current sale invoice for the units that stay, supersede it, and issue a
    new one for them (the cancelled units were reversed when they were cancelled)."""
    outcome.created += issue_credit_notes(staying)
    Invoice.objects.filter(CURRENT_SALE, shipment__in=shipments).update(
        superseded_at=timezone.now()
    )
    outcome.created += issue_sale_invoices(shipments, staying)
