"""Putaway: the only way units that left the forward path come back into stock.

The stock model (`Inventory`):

- `quantity` counts units physically on a shelf row; `blocked_quantity` counts those of them
  allocated to units not yet dispatched. A picked unit stays counted (and blocked) on the row
  it was picked from until it is dispatched (`stock_consume`).
- A unit cancelled before it was picked gives its block back (`stock_release`): it never left
  the shelf, so there is nothing to put away.
- A unit cancelled after it was picked or invoiced leaves its row at cancel time, exactly as
  if dispatched (quantity and block both go down): it is in a tote or a packed box, not on a
  shelf. A dispatched unit left its row at dispatch.
- Either way, while its putaway is pending (CREATED) the unit is counted in no row: it can be
  neither allocated nor counted twice. Completing the putaway adds it, once, to the shelf and
  inventory type (GOOD/BAD) chosen; discarding it writes it off. Discarding moves no stock
  row (the unit left its row already), so it writes no ledger row: the putaway keeps the
  reason, its audit row the actor.
- A unit is on at most one putaway, ever (`PutawayItem.order_item` is one-to-one), so no path
  can bring it back twice.

So at any time: units on shelves + units on pending putaways = starting stock + stock added
− units dispatched and not returned − units written off (the property tests check this).

Services take many putaways, lock rows in the order of `orders.locks` (Putaway before
Order ... Inventory → Sequence) and run a fixed number of statements per call. What the
closing of a putaway means to orders (returns finished, units re-allocated) is done there,
on the `putaways_closed` signal (`inventory.signals`): this module does not import orders.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from uniware.core.actors import Actor
from uniware.core.audit import record_changes
from uniware.core.db import add_per_row, bulk_set
from uniware.core.fsm import Change, apply_transitions, transition_allowed
from uniware.core.models import SequenceName
from uniware.core.results import Outcome
from uniware.core.services import sequence_take

from .ledger import Ref, ledger_write
from .models import (
    PUTAWAY_INVENTORY_TYPES,
    Inventory,
    InventoryType,
    Putaway,
    PutawayItem,
    PutawayType,
    Shelf,
    StockReason,
)
from .services import lock_stock_rows
from .signals import putaways_closed

MAX_REASON = 255


# --- Stock rows -----------------------------------------------------------------------------


def stock_put(
    items: Sequence[PutawayItem], putaways: Iterable[Putaway], *, actor: Actor, now=None
) -> None:
    """Add each putaway item's unit to its (locked) row, `item.inventory_id`: one statement,
    and one PUTAWAY ledger row per unit naming the unit and its putaway."""
    now = now or timezone.now()
    counts = Counter(item.inventory_id for item in items)
    add_per_row(Inventory, counts, ["quantity"], values={"updated_at": now})
    refs = {p.pk: Ref.of(p) for p in putaways}
    ledger_write(
        ((i.inventory_id, 1, 0, i.order_item_id, refs[i.putaway_id]) for i in items),
        reason=StockReason.PUTAWAY,
        actor=actor,
        at=now,
    )


# --- Creating putaways (by the cancellation and returns services) ---------------------------


def putaways_create(
    groups: Mapping[tuple, Sequence],
    *,
    actor: Actor,
    return_manifest=None,
    reverse_pickup=None,
) -> list[Putaway]:
    """One CREATED putaway per group of units (locked `OrderItem`s). A group's key is
    (facility, type) or (facility, type, source), the source being the ReturnManifest or
    ReversePickup the units came back with (else `return_manifest` / `reverse_pickup`).

    Runs inside the caller's transaction, after its stock rows are locked (it takes PUTAWAY
    numbers: the Sequence comes last in the lock order). The caller checks first that the
    facility has a PUTAWAY sequence when it wants to report the failure per object.
    A fixed number of statements, whatever the number of groups and units."""
    groups = {key: list(units) for key, units in groups.items() if units}
    if not groups:
        return []
    for key in groups:
        if key[1] not in PutawayType.values:
            raise ValueError(
                f"Putaway type {key[1]!r} is not one of {', '.join(PutawayType.values)}"
            )
    inventory_ids = {u.inventory_id for units in groups.values() for u in units if u.inventory_id}
    origin = {
        pk: (shelf, facility)
        for pk, shelf, facility in Inventory.objects.filter(pk__in=inventory_ids).values_list(
            "pk", "shelf_id", "facility_id"
        )
    }
    by_facility: dict[int, list[tuple]] = defaultdict(list)
    for key in groups:
        by_facility[key[0].pk].append(key)
    now = timezone.now()
    made: list[tuple[Putaway, tuple]] = []
    for keys in by_facility.values():
        codes = sequence_take(SequenceName.PUTAWAY, facility=keys[0][0], count=len(keys))
        for key, code in zip(keys, codes, strict=True):
            source = key[2] if len(key) > 2 else None
            made.append(
                (
                    Putaway(
                        code=code,
                        facility=key[0],
                        putaway_type=key[1],
                        item_count=len(groups[key]),
                        return_manifest=source
                        if source is not None and source._meta.model_name == "returnmanifest"
                        else return_manifest,
                        reverse_pickup=source
                        if source is not None and source._meta.model_name == "reversepickup"
                        else reverse_pickup,
                        created_by=actor.user,
                        created_at=now,
                        updated_at=now,
                    ),
                    key,
                )
            )
    putaways = Putaway.objects.bulk_create([p for p, _ in made])
    items = []
    for putaway, key in made:
        for unit in groups[key]:
            shelf_id, facility_id = origin.get(unit.inventory_id, (None, None))
            items.append(
                PutawayItem(
                    putaway=putaway,
                    order_item_id=unit.pk,
                    sku_id=unit.sku_id,
                    suggested_shelf_id=shelf_id if facility_id == putaway.facility_id else None,
                )
            )
    PutawayItem.objects.bulk_create(items, batch_size=2000)
    record_changes(
        [Change(p, "", p.status) for p in putaways], transition="create", actor=actor, at=now
    )
    return putaways


# --- Completing and discarding --------------------------------------------------------------


def _lock_putaways(putaway_ids) -> list[Putaway]:
    return list(
        Putaway.objects.select_for_update(of=("self",))
        .filter(pk__in=set(putaway_ids))
        .select_related("facility")
        .order_by("pk")
    )


def _shelf_id(value) -> int | None:
    if value is None or value == "":
        return None
    return value.pk if isinstance(value, Shelf) else int(value)


def _check_type(value: str, where: str) -> str:
    if value not in PUTAWAY_INVENTORY_TYPES:
        allowed = " or ".join(PUTAWAY_INVENTORY_TYPES)
        raise ValidationError(
            {"inventory_type": f"{where}: inventory type {value!r} is not {allowed}"}
        )
    return value


def _in_a_packed_box(item: PutawayItem) -> bool:
    """The unit was cancelled after packing and its box is not re-packed yet."""
    shipment = item.order_item.shipment
    return bool(shipment and shipment.repack_reason)


def putaways_complete(
    putaway_ids,
    *,
    shelf: Shelf | int | None = None,
    inventory_type: str = InventoryType.GOOD_INVENTORY,
    placements: Mapping[int, tuple[Shelf | int | None, str | None]] | None = None,
    actor=None,
) -> Outcome:
    """Put the units of CREATED putaways on shelves: stock comes back, once.

    Each unit goes to, in this order of preference: its `placements[item id]` (shelf, type),
    `shelf`, the shelf it was picked from (`suggested_shelf`); as `inventory_type` unless its
    placement says otherwise (GOOD_INVENTORY or BAD_INVENTORY). A putaway with a unit that has
    no shelf, or a shelf of another facility, is refused as a whole with the reason.

    Sends `putaways_closed` (`inventory.signals`) in the transaction: orders makes the
    shipments of courier-returned putaways RETURNED and reships the units waiting for them;
    after the commit it allocates those reshipments (`outcome.created`) and re-allocates the
    units waiting for the SKUs put back as good stock."""
    actor = Actor.of(actor)
    outcome = Outcome()
    _check_type(inventory_type, "Putaway")
    default_shelf = _shelf_id(shelf)
    wanted = {
        int(item_id): (_shelf_id(where), kind or None)
        for item_id, (where, kind) in (placements or {}).items()
    }
    for item_id, (_, kind) in wanted.items():
        if kind:
            _check_type(kind, f"Putaway item {item_id}")
    with transaction.atomic():
        putaways = [
            p for p in _lock_putaways(putaway_ids) if transition_allowed(outcome, p, "complete")
        ]
        items = list(
            PutawayItem.objects.filter(putaway__in=putaways)
            .select_related("order_item__order", "order_item__shipment")
            .order_by("pk")
        )
        by_putaway: dict[int, list[PutawayItem]] = defaultdict(list)
        for item in items:
            by_putaway[item.putaway_id].append(item)
        shelf_ids = {default_shelf, *(w[0] for w in wanted.values())}
        shelf_ids |= {i.suggested_shelf_id for i in items}
        shelves = Shelf.objects.select_related("facility").in_bulk(
            [pk for pk in shelf_ids if pk is not None]
        )
        if default_shelf is not None and default_shelf not in shelves:
            raise ValidationError({"shelf": f"Shelf {default_shelf} does not exist"})
        ok: list[Putaway] = []
        targets: dict[int, tuple[int, str]] = {}
        for putaway in putaways:
            chosen = {}
            for item in by_putaway[putaway.pk]:
                where, kind = wanted.get(item.pk, (None, None))
                sid = where or default_shelf or item.suggested_shelf_id
                problem = _placement_problem(putaway, item, sid, shelves)
                if problem:
                    outcome.fail(putaway, problem)
                    break
                chosen[item.pk] = (sid, kind or inventory_type)
            else:  # every unit has a shelf
                targets.update(chosen)
                ok.append(putaway)
        outcome.created = complete_locked(ok, by_putaway, targets, actor=actor)
        outcome.done = ok
    return outcome


def _placement_problem(
    putaway: Putaway, item: PutawayItem, shelf_id: int | None, shelves: Mapping[int, Shelf]
) -> str:
    """Why the item's unit cannot go on this shelf ('' when it can)."""
    unit = f"unit {item.order_item.order.code}/{item.order_item.code}"
    if shelf_id is None:
        return f"{unit} has no shelf it came from in {putaway.facility}: choose one"
    if shelf_id not in shelves:
        return f"{unit}: shelf {shelf_id} does not exist"
    if shelves[shelf_id].facility_id != putaway.facility_id:
        return f"{unit}: shelf {shelves[shelf_id]} is not in facility {putaway.facility}"
    if _in_a_packed_box(item):
        box = item.order_item.shipment
        return f"{unit} is still in packed shipment {box}: confirm its re-packing"
    return ""


def complete_locked(
    putaways: list[Putaway],
    by_putaway: Mapping[int, list[PutawayItem]],
    targets: Mapping[int, tuple[int, str]],
    *,
    actor: Actor,
    now=None,
) -> list:
    """Complete locked putaways whose every item has a target {item id: (shelf id, type)}.
    Sends `putaways_closed` first, with the SKUs that come back as good stock (see
    `putaways_complete`); returns the orders its receivers made."""
    if not putaways:
        return []
    now = now or timezone.now()
    items = [i for p in putaways for i in by_putaway[p.pk]]
    good_skus = {i.sku_id for i in items if targets[i.pk][1] == InventoryType.GOOD_INVENTORY}
    follow_ups = _announce_closed(putaways, good_skus, actor=actor)
    rows = lock_stock_rows((targets[i.pk][0], i.sku_id, targets[i.pk][1]) for i in items)
    for item in items:
        shelf_id, kind = targets[item.pk]
        item.shelf_id, item.inventory_type = shelf_id, kind
        item.inventory_id = rows[(shelf_id, item.sku_id, kind)]
    stock_put(items, putaways, actor=actor, now=now)
    bulk_set(PutawayItem, items, ["shelf", "inventory_type", "inventory"])
    apply_transitions(putaways, "complete", actor=actor, values={"completed_at": now}, now=now)
    return follow_ups


def putaways_discard(putaway_ids, *, reason: str, actor=None) -> Outcome:
    """Write the units of CREATED putaways off: no stock comes back, the reason is kept.
    Sends `putaways_closed` (`inventory.signals`) in the transaction: a courier-returned
    putaway still finishes its returns (shipments RETURNED, waiting units reshipped, the
    reshipments allocated after the commit and reported as created)."""
    actor = Actor.of(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the putaway is discarded"})
    if len(reason) > MAX_REASON:
        raise ValidationError(
            {"reason": f"The reason is {len(reason)} characters long; at most {MAX_REASON}"}
        )
    outcome = Outcome()
    with transaction.atomic():
        putaways = [
            p for p in _lock_putaways(putaway_ids) if transition_allowed(outcome, p, "discard")
        ]
        follow_ups = _announce_closed(putaways, set(), actor=actor)
        now = timezone.now()
        apply_transitions(
            putaways,
            "discard",
            actor=actor,
            reason=reason,
            values={"discard_reason": reason, "completed_at": now},
            now=now,
        )
        outcome.done = putaways
        outcome.created = follow_ups
    return outcome


def _announce_closed(putaways: list[Putaway], sellable_sku_ids: set[int], *, actor: Actor) -> list:
    """Send `putaways_closed`; the orders its receivers made."""
    if not putaways:
        return []
    replies = putaways_closed.send(
        sender=Putaway, putaways=putaways, sellable_sku_ids=sellable_sku_ids, actor=actor
    )
    return [order for _, made in replies for order in made or ()]
