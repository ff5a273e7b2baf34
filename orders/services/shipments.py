"""Splitting and merging the shipments of one order (before picking)."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from uniware.core.actors import Actor
from uniware.core.audit import record_changes
from uniware.core.db import bulk_set
from uniware.core.fsm import Change, IllegalTransition, apply_transitions, check_transition
from uniware.core.models import SequenceName
from uniware.core.services import sequence_take

from ..locks import lock_items, lock_shipments
from ..models import OrderItemStatus, PicklistItem, Shipment


def _new_shipments_like(template: Shipment, count: int, *, actor: Actor) -> list[Shipment]:
    now = timezone.now()
    codes = sequence_take(SequenceName.SHIPMENT, facility=template.facility, count=count)
    shipments = Shipment.objects.bulk_create(
        [
            Shipment(
                code=code,
                order_id=template.order_id,
                facility_id=template.facility_id,
                status=template.status,
                shipping_provider_id=template.shipping_provider_id,
                parent=template,
                created_at=now,
                updated_at=now,
            )
            for code in codes
        ]
    )
    record_changes([Change(s, "", s.status) for s in shipments], transition="create", actor=actor)
    return shipments


def shipment_split(shipment: Shipment, groups: list[list[int]], *, actor=None) -> list[Shipment]:
    """Split a shipment into one new shipment per group of unit ids; units not named in any
    group form one more shipment. The original becomes SPLITTED. A PICKED shipment (a short
    pick found at packing) splits too: its new shipments are PICKED, on the same picklist."""
    actor = Actor.of(actor)
    with transaction.atomic():
        shipment = lock_shipments([shipment.pk])[0]
        check_transition(shipment, "split")
        units = [u for u in lock_items(shipment=shipment) if u.status != OrderItemStatus.CANCELLED]
        by_id = {u.pk: u for u in units}
        named = [uid for group in groups for uid in group]
        unknown = set(named) - set(by_id)
        if unknown:
            raise IllegalTransition(shipment, "split", f"units {sorted(unknown)} are not in it")
        if len(named) != len(set(named)):
            raise IllegalTransition(shipment, "split", "a unit is named in two groups")
        rest = [u.pk for u in units if u.pk not in set(named)]
        parts = [g for g in [*groups, rest] if g]
        if len(parts) < 2:
            raise IllegalTransition(
                shipment, "split", "a split needs at least two non-empty groups"
            )
        new = _new_shipments_like(shipment, len(parts), actor=actor)
        moved = []
        for target, group in zip(new, parts, strict=True):
            for uid in group:
                by_id[uid].shipment = target
                moved.append(by_id[uid])
        bulk_set(type(moved[0]), moved, ["shipment"])
        _follow_on_picklists(moved)
        apply_transitions([shipment], "split", actor=actor)
    return new


def _follow_on_picklists(units: list) -> None:
    """A picked shipment's units keep their picklist lines, now naming their new shipment
    (one UPDATE per new shipment; nothing for a shipment not yet picked)."""
    by_shipment: dict[int, list[int]] = defaultdict(list)
    for unit in units:
        by_shipment[unit.shipment_id].append(unit.pk)
    for shipment_id, unit_ids in by_shipment.items():
        PicklistItem.objects.filter(order_item_id__in=unit_ids).update(shipment_id=shipment_id)


def shipments_merge(shipment_ids, *, actor=None) -> Shipment:
    """Merge shipments of one order and facility (all CREATED, or all not serviceable) into
    one new shipment; the originals become MERGED."""
    actor = Actor.of(actor)
    with transaction.atomic():
        shipments = lock_shipments(shipment_ids)
        if len(shipments) < 2:
            raise ValueError("Select at least two shipments to merge")
        first = shipments[0]
        for s in shipments:
            check_transition(s, "merge")
            if s.order_id != first.order_id:
                raise IllegalTransition(
                    s, "merge", f"it belongs to order {s.order}, not {first.order}"
                )
            if s.facility_id != first.facility_id or s.status != first.status:
                raise IllegalTransition(
                    s, "merge", f"it differs from {first} in facility or status"
                )
        target = _new_shipments_like(first, 1, actor=actor)[0]
        units = lock_items(shipment_id__in=[s.pk for s in shipments])
        for u in units:
            u.shipment = target
        if units:
            bulk_set(type(units[0]), units, ["shipment"])
        apply_transitions(shipments, "merge", actor=actor)
    return target
