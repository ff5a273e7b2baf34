"""Receiving a picklist with units not found on their shelves (short picks, "item not found").

`picklist_receive_partial` receives one CREATED picklist as `picklist_receive` does (picklist
RECEIVED, its PICKING shipments PICKED), except for the units reported not found:

- each leaves its shipment and its picklist line, and its stock row loses it: quantity and
  block both go down by one, a NOT_FOUND row in the stock ledger naming the unit, the
  picklist and the staff's reason (the shelf held fewer than the books said; if the unit
  turns up later, staff add it back as stock);
- the unit becomes UNFULFILLABLE (`OrderItem.mark_not_found`), the reason in its history;
- `then=REALLOCATE`: it is allocated again at once, never from the stock row it was not found
  on, so from another shelf or facility when one has stock (else it waits as UNFULFILLABLE);
  `then=UNFULFILLABLE`: it waits, like any unfulfillable unit, for the re-allocation that runs
  when stock arrives.

A shipment left with no unit is CANCELLED with the reason. Its units left it before it moved,
so the channel hears no cancellation of them: the units the channel knows of are not
cancelled, they are in a new shipment (allocation's own notification) or waiting.

One transaction, rows locked in the order of `orders.locks` (picklist, orders, shipments,
units, stock rows, then the SHIPMENT sequence for re-allocation), a fixed number of queries
whatever the number of units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from inventory.ledger import Ref
from inventory.models import StockReason
from inventory.services import sellable_stock, stock_consume, stock_lock_rows
from uniware.core.actors import Actor
from uniware.core.fsm import apply_transitions, check_transition

from ..locks import lock_items, lock_picklist, lock_shipments
from ..models import (
    OrderItem,
    OrderItemStatus,
    Picklist,
    PicklistItem,
    Shipment,
    ShipmentStatus,
)
from ..selectors import picklist_shipment_ids
from .allocation import allocate_units
from .fulfilment import _close_finished_picklists

MAX_REASON = 100
LineKey = tuple[int | None, int]  # (shelf id, SKU id): one line of the walk
PICKING_UNITS = [OrderItemStatus.PICKING_FOR_STAGING, OrderItemStatus.PICKING_FOR_INVOICING]


class NotFoundThen(models.TextChoices):
    """What becomes of a unit not found on its shelf."""

    REALLOCATE = "REALLOCATE", "back to allocation"
    UNFULFILLABLE = "UNFULFILLABLE", "marked unfulfillable"


@dataclass(frozen=True)
class PickLine:
    """Shelf + SKU × quantity of a picklist: its live (not cancelled) units, most urgent
    order first, so the last ones are the first given up when some are not found."""

    shelf_id: int | None
    sku_id: int
    shelf_code: str
    sku_code: str
    sku_name: str
    unit_ids: tuple[int, ...]

    @property
    def key(self) -> LineKey:
        return (self.shelf_id, self.sku_id)

    @property
    def quantity(self) -> int:
        return len(self.unit_ids)

    def __str__(self) -> str:
        return f"Shelf {self.shelf_code or '—'}, SKU {self.sku_code}"


@dataclass
class PartialReceipt:
    """What `picklist_receive_partial` did."""

    picklist: Picklist
    then: str
    not_found: list[OrderItem] = field(default_factory=list)
    received: list[Shipment] = field(default_factory=list)  # PICKED with the units found
    emptied: list[Shipment] = field(default_factory=list)  # CANCELLED: nothing was found
    reallocated: list[OrderItem] = field(default_factory=list)  # in a shipment again
    new_shipments: list[Shipment] = field(default_factory=list)

    @property
    def waiting(self) -> list[OrderItem]:
        """The units not found that are UNFULFILLABLE now."""
        again = {u.pk for u in self.reallocated}
        return [u for u in self.not_found if u.pk not in again]


def picklist_lines(picklist_id: int) -> list[PickLine]:
    """The picklist's live lines in walk order (natural order of shelf codes, then SKU):
    one query."""
    from ..printing import walk_key  # printing imports the services: not at the top

    rows = (
        PicklistItem.objects.filter(picklist_id=picklist_id)
        .exclude(order_item__status=OrderItemStatus.CANCELLED)
        .values_list(
            "order_item_id",
            "shelf_id",
            "sku_id",
            "shelf__code",
            "sku__code",
            "sku__name",
            "order_item__order__priority",
            "order_item__order__order_date",
            "order_item__order_id",
        )
    )
    grouped: dict[LineKey, list[tuple]] = {}
    for unit_id, shelf_id, sku_id, shelf, sku, name, priority, date, order_id in rows:
        urgency = (-priority, date, order_id, unit_id)  # allocation's order
        grouped.setdefault((shelf_id, sku_id), []).append((urgency, unit_id, shelf, sku, name))
    lines = []
    for (shelf_id, sku_id), members in grouped.items():
        members.sort()
        _, _, shelf, sku, name = members[0]
        ids = tuple(unit_id for _, unit_id, *_ in members)
        lines.append(PickLine(shelf_id, sku_id, shelf or "", sku, name, ids))
    return sorted(lines, key=lambda line: (walk_key(line.shelf_code), line.sku_code))


def choose_not_found(
    lines: list[PickLine], counts: Mapping[LineKey, int], unit_ids: Iterable[int] = ()
) -> list[int]:
    """The units given up: those named, then per line the last `counts[line]` (the least
    urgent orders). Raises `ValidationError` naming the line for a count it cannot give."""
    by_key = {line.key: line for line in lines}
    named = set(unit_ids)
    strangers = named - {pk for line in lines for pk in line.unit_ids}
    if strangers:
        raise ValidationError(
            f"Units {sorted(strangers)} are not on this picklist, or were cancelled meanwhile"
        )
    chosen = set(named)
    for key, count in counts.items():
        line = by_key.get(key)
        if count < 0:
            raise ValidationError(f"{line or key}: a not-found quantity cannot be negative")
        if not count:
            continue
        if line is None:
            raise ValidationError(f"Shelf/SKU {key} is not a line of this picklist")
        if count > line.quantity:
            raise ValidationError(
                f"{line}: {count} not found, but the picklist has only {line.quantity} "
                "to pick there"
            )
        rest = [pk for pk in reversed(line.unit_ids) if pk not in named]
        chosen.update(rest[:count])
    return sorted(chosen)


def check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the units were not found"})
    if len(reason) > MAX_REASON:
        raise ValidationError({"reason": f"The reason is longer than {MAX_REASON} characters"})
    return reason


def picklist_receive_partial(
    picklist_id: int,
    *,
    not_found: Mapping[LineKey, int] | None = None,
    not_found_units: Iterable[int] = (),
    reason: str,
    then: str = NotFoundThen.REALLOCATE,
    actor=None,
) -> PartialReceipt:
    """Receive a CREATED picklist whose units were not all found on their shelves (module
    docstring). `not_found`: {(shelf id, SKU id): quantity} per line, as staff count them;
    `not_found_units`: units by id (a scanner that knows them). All or nothing: a count above
    a line's quantity, a unit not on the picklist or a picklist not CREATED raises
    (`ValidationError` naming the line, `IllegalTransition`) and nothing changes."""
    actor = Actor.of(actor)
    reason = check_reason(reason)
    if then not in NotFoundThen.values:
        raise ValueError(f"then={then!r}: expected one of {NotFoundThen.values}")
    with transaction.atomic():
        picklist = lock_picklist(picklist_id)
        check_transition(picklist, "receive")
        lines = picklist_lines(picklist.pk)
        missing = choose_not_found(lines, not_found or {}, not_found_units)
        if not missing:
            raise ValidationError("No unit is marked not found: receive the picklist instead")
        shipments = {s.pk: s for s in lock_shipments(picklist_shipment_ids([picklist.pk]))}
        units = lock_items(pk__in=missing)
        _check_units(units, shipments)
        receipt = PartialReceipt(picklist, then, not_found=units)
        came_from = _give_up(picklist, units, then=then, reason=reason, actor=actor)
        left = {shipment_id for _, shipment_id in came_from.values()}
        what = f"{_summary(lines, missing)}, {NotFoundThen(then).label}: {reason}"
        _receive_rest(receipt, shipments, left, what=what, reason=reason, actor=actor)
        if then == NotFoundThen.REALLOCATE:
            rows = {pk: row for pk, (row, _) in came_from.items()}
            result = allocate_units(unit_ids=missing, actor=actor, avoid=rows)
            receipt.reallocated = result.fulfillable + result.not_serviceable
            receipt.new_shipments = result.shipments
        _close_finished_picklists([picklist], actor=actor)
    return receipt


def _summary(lines: list[PickLine], missing: list[int]) -> str:
    """`3 not found (A1 TSHIRT × 2, B2 MUG × 1)`, for the picklist's history."""
    chosen = set(missing)
    counts = [(line, len(chosen.intersection(line.unit_ids))) for line in lines]
    parts = ", ".join(f"{line.shelf_code or '—'} {line.sku_code} × {n}" for line, n in counts if n)
    return f"{len(missing)} not found ({parts})"


def _check_units(units: list[OrderItem], shipments: dict[int, Shipment]) -> None:
    """Each unit still waits on the picklist: picking, in a PICKING shipment of it."""
    for unit in units:
        shipment = shipments.get(unit.shipment_id)
        if unit.status not in PICKING_UNITS or shipment is None:
            raise ValidationError(f"Unit {unit.code} is {unit.status}: it is not being picked")
        if shipment.status != ShipmentStatus.PICKING:
            raise ValidationError(
                f"Unit {unit.code}: its shipment {shipment} is {shipment.status}, not PICKING"
            )


def _give_up(
    picklist: Picklist, units: list[OrderItem], *, then: str, reason: str, actor: Actor
) -> dict[int, tuple[int | None, int]]:
    """Write the units off their stock rows (NOT_FOUND), take them off the picklist and out
    of their shipments: UNFULFILLABLE, with the reason in their history. Locks the stock rows
    (with, for re-allocation, the SKUs' sellable rows) in one pk-ordered statement. Returns
    {unit id: (the stock row, the shipment) it left}."""
    rows = {u.inventory_id for u in units if u.inventory_id}
    if then == NotFoundThen.REALLOCATE:
        skus = {u.sku_id for u in units}
        rows |= set(sellable_stock().filter(sku_id__in=skus).values_list("pk", flat=True))
    stock_lock_rows(rows)
    stock_consume(
        units, reason=StockReason.NOT_FOUND, actor=actor, ref=Ref.of(picklist), note=reason
    )
    PicklistItem.objects.filter(picklist=picklist, order_item__in=units).delete()
    came_from = {u.pk: (u.inventory_id, u.shipment_id) for u in units}
    apply_transitions(
        units,
        "mark_not_found",
        actor=actor,
        reason=f"not found on picklist {picklist}, {NotFoundThen(then).label}: {reason}",
        values={"shipment_id": None, "inventory_id": None, "facility_id": None},
    )
    return came_from


def _receive_rest(
    receipt: PartialReceipt,
    shipments: dict[int, Shipment],
    left: set[int],
    *,
    what: str,
    reason: str,
    actor: Actor,
) -> None:
    """The picklist RECEIVED; its PICKING shipments PICKED, or CANCELLED when no unit is left
    in them (`left`: the shipments units left; they left first, so no notification of the
    cancel names them)."""
    still_used = set(
        OrderItem.objects.filter(shipment_id__in=left)
        .exclude(status=OrderItemStatus.CANCELLED)
        .values_list("shipment_id", flat=True)
    )
    picking = [s for s in shipments.values() if s.status == ShipmentStatus.PICKING]
    receipt.received = [s for s in picking if s.pk not in left or s.pk in still_used]
    receipt.emptied = [s for s in picking if s.pk in left and s.pk not in still_used]
    now = timezone.now()
    apply_transitions([receipt.picklist], "receive", actor=actor, reason=what, now=now)
    apply_transitions(receipt.received, "receive", actor=actor, now=now)
    apply_transitions(
        receipt.emptied,
        "cancel",
        actor=actor,
        reason=f"none of its units was found on picklist {receipt.picklist}: {reason}",
        now=now,
    )
