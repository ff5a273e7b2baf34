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
Order ... Inventory → Sequence) and run a fixed number of statements per call.
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

StockKey = tuple[int, int, str]  # (shelf id, SKU id, inventory type)
MAX_REASON = 255


# --- Stock rows -----------------------------------------------------------------------------


def lock_stock_rows(keys: Iterable[StockKey]) -> dict[StockKey, int]:
    """Get or create the stock rows for (shelf, SKU, type) and lock them in primary-key order.
    Returns {key: inventory id}. Three statements, whatever the number of rows."""
    keys = set(keys)
    if not keys:
        return {}
    shelf_ids = {k[0] for k in keys}
    facility_of = dict(Shelf.objects.filter(pk__in=shelf_ids).values_list("pk", "facility_id"))

    def existing() -> dict[StockKey, int]:
        rows = Inventory.objects.filter(
            shelf_id__in=shelf_ids,
            sku_id__in={k[1] for k in keys},
            inventory_type__in={k[2] for k in keys},
        ).values_list("shelf_id", "sku_id", "inventory_type", "pk")
        return {(shelf, sku, kind): pk for shelf, sku, kind, pk in rows}

    found = existing()
    missing = keys - set(found)
    if missing:
        Inventory.objects.bulk_create(
            [
                Inventory(
                    facility_id=facility_of[shelf],
                    shelf_id=shelf,
                    sku_id=sku,
                    inventory_type=kind,
                    quantity=0,
                )
                for shelf, sku, kind in sorted(missing)
            ],
            ignore_conflicts=True,  # made meanwhile by someone else: use theirs
        )
        found = existing()
    ids = {found[k] for k in keys}
    list(
        Inventory.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return {k: found[k] for k in keys}


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
    Courier-returned putaways finish their returns (shipments RETURNED, waiting reships go out).
    Units waiting for stock of these SKUs are re-allocated right after the commit."""
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
            problem = ""
            chosen = {}
            for item in by_putaway[putaway.pk]:
                where, kind = wanted.get(item.pk, (None, None))
                sid = where or default_shelf or item.suggested_shelf_id
                unit = f"unit {item.order_item.order.code}/{item.order_item.code}"
                if sid is None:
                    problem = f"{unit} has no shelf it came from in {putaway.facility}: choose one"
                elif sid not in shelves:
                    problem = f"{unit}: shelf {sid} does not exist"
                elif shelves[sid].facility_id != putaway.facility_id:
                    problem = f"{unit}: shelf {shelves[sid]} is not in facility {putaway.facility}"
                elif _in_a_packed_box(item):
                    box = item.order_item.shipment
                    problem = f"{unit} is still in packed shipment {box}: confirm its re-packing"
                if problem:
                    break
                chosen[item.pk] = (sid, kind or inventory_type)
            if problem:
                outcome.fail(putaway, problem)
                continue
            targets.update(chosen)
            ok.append(putaway)
        follow_ups = complete_locked(ok, by_putaway, targets, actor=actor)
        outcome.done = ok
        outcome.created = follow_ups
    return outcome


def complete_locked(
    putaways: list[Putaway],
    by_putaway: Mapping[int, list[PutawayItem]],
    targets: Mapping[int, tuple[int, str]],
    *,
    actor: Actor,
    finish_returns: bool = True,
    now=None,
) -> list:
    """Complete locked putaways whose every item has a target {item id: (shelf id, type)}.
    Returns the follow-up (reshipment) orders made for units waiting for their return."""
    if not putaways:
        return []
    now = now or timezone.now()
    follow_ups = _finish_returns(putaways, actor=actor) if finish_returns else []
    items = [i for p in putaways for i in by_putaway[p.pk]]
    rows = lock_stock_rows((targets[i.pk][0], i.sku_id, targets[i.pk][1]) for i in items)
    for item in items:
        shelf_id, kind = targets[item.pk]
        item.shelf_id, item.inventory_type = shelf_id, kind
        item.inventory_id = rows[(shelf_id, item.sku_id, kind)]
    stock_put(items, putaways, actor=actor, now=now)
    bulk_set(PutawayItem, items, ["shelf", "inventory_type", "inventory"])
    apply_transitions(putaways, "complete", actor=actor, values={"completed_at": now}, now=now)
    good_skus = {i.sku_id for i in items if i.inventory_type == InventoryType.GOOD_INVENTORY}
    _allocate_after_commit([o.pk for o in follow_ups], good_skus, actor)
    return follow_ups


def putaways_discard(putaway_ids, *, reason: str, actor=None) -> Outcome:
    """Write the units of CREATED putaways off: no stock comes back, the reason is kept.
    A courier-returned putaway still finishes its returns (shipments RETURNED)."""
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
        follow_ups = _finish_returns(putaways, actor=actor)
        now = timezone.now()
        apply_transitions(
            putaways,
            "discard",
            actor=actor,
            reason=reason,
            values={"discard_reason": reason, "completed_at": now},
            now=now,
        )
        _allocate_after_commit([o.pk for o in follow_ups], set(), actor)
        outcome.done = putaways
        outcome.created = follow_ups
    return outcome


def _finish_returns(putaways: list[Putaway], *, actor: Actor) -> list:
    courier = [p for p in putaways if p.putaway_type == PutawayType.PUTAWAY_COURIER_RETURNED_ITEMS]
    if not courier:
        return []
    from orders.services.returns.courier import returns_after_putaway

    return returns_after_putaway(courier, actor=actor)


def _allocate_after_commit(order_ids, sku_ids, actor: Actor) -> None:
    if order_ids or sku_ids:
        from orders.services.returns.common import allocate_after_commit

        allocate_after_commit(order_ids=order_ids, sku_ids=sku_ids, actor=actor)
