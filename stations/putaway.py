"""The putaway station: scan a putaway, then a shelf, then each unit put on it; GOOD or BAD
switches the inventory type of the units scanned next. When the last unit is placed the
putaway is completed (`inventory.putaway.putaways_complete`, as the user) with exactly the
shelf and type each unit was scanned to. Placements live on the station until then, so
nothing moves in stock before the whole putaway is placed; UNDO takes the last one back.
A unit is its own code `<order code>/<unit code>` with ITEM traceability, else its SKU's
barcode or code (the first unplaced unit of that SKU), which `QTY:<n>` scanned next turns
into n units of that SKU (not with ITEM traceability: there each unit is scanned).
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inventory.models import InventoryType, Putaway, PutawayItem, PutawayStatus, Shelf, Sku
from inventory.putaway import putaways_complete
from uniware.core.models import Tenant, Traceability

from .models import Station, StationKind
from .scans import (
    CANCEL,
    UNDO,
    ScanError,
    ScanResult,
    is_double_fire,
    lock_station,
    remember,
    repeat_ignored,
)

GOOD, BAD = "GOOD", "BAD"
QTY = "QTY:"  # QTY:<n> after a SKU scan: n units of it
TYPES = {GOOD: InventoryType.GOOD_INVENTORY, BAD: InventoryType.BAD_INVENTORY}
STATE_FIELDS = ("putaway", "shelf", "inventory_type", "placed")
ITEM_COLUMNS = (
    "putaway_id",
    "sku__code",
    "sku__barcode",
    "sku__name",
    "order_item__code",
    "order_item__order__code",
    "suggested_shelf__code",
)


def putaway_scan(user, code: str, *, now: datetime | None = None) -> ScanResult:
    """Handle one scan at the user's putaway station."""
    code, now = code.strip(), now or timezone.now()
    with transaction.atomic():
        station = lock_station(user, StationKind.PUTAWAY, "putaway", "shelf")
        if is_double_fire(station, code, now):
            return repeat_ignored(station, code)
        before = {f: _value(station, f) for f in STATE_FIELDS}
        result = _handle(station, code, user)
        changed = [f for f in STATE_FIELDS if _value(station, f) != before[f]]
        remember(station, code, now, result, *changed)
    return result


def _value(station: Station, field: str):
    value = getattr(station, f"{field}_id" if field in ("putaway", "shelf") else field)
    return list(value) if isinstance(value, list) else value


def _handle(station: Station, code: str, user) -> ScanResult:
    if code == CANCEL:
        _reset(station, None)
        return ScanResult.ok("Station cleared; the putaway stays pending.")
    if station.putaway_id is None:
        return _start(station, code)
    if code in TYPES:
        station.inventory_type = TYPES[code]
        return ScanResult.ok(f"Next units go in as {code}.")
    if code == UNDO:
        if not station.placed:
            return ScanResult.refuse(ScanError.NOTHING_OPEN, "Nothing to undo.")
        station.placed = station.placed[:-1]
        return ScanResult.ok("Last unit taken back.")
    if not code:
        return ScanResult.refuse(ScanError.NOTHING_OPEN, "Scan a shelf or a unit.")
    if code.startswith(QTY):
        return _quantity(station, code, user)
    shelf = Shelf.objects.filter(facility_id=station.putaway.facility_id, code=code).first()
    if shelf is not None:
        station.shelf = shelf
        return ScanResult.ok(f"Shelf {shelf.code}: scan the units for it.")
    if station.shelf_id is None:
        return ScanResult.refuse(ScanError.NOTHING_OPEN, f"{code}: scan a shelf first.")
    return _place(station, code, user)


def _reset(station: Station, putaway: Putaway | None) -> None:
    station.putaway, station.shelf, station.placed = putaway, None, []
    station.inventory_type = InventoryType.GOOD_INVENTORY


def _start(station: Station, code: str) -> ScanResult:
    putaway = Putaway.objects.filter(code=code).first()
    if putaway is None:
        return ScanResult.refuse(ScanError.UNKNOWN_CODE, f"{code}: no putaway has this code.")
    if putaway.status != PutawayStatus.CREATED:
        return ScanResult.refuse(
            ScanError.WRONG_STATUS, f"Putaway {putaway.code} is {putaway.status}."
        )
    _reset(station, putaway)
    return ScanResult.ok(f"Putaway {putaway.code}: scan a shelf.")


def putaway_items(putaway_id: int) -> list[PutawayItem]:
    """The putaway's units (one query), with only the columns a scan and the page read: a
    putaway is read twice per scan, and whole order rows would cost more than the query."""
    return list(
        PutawayItem.objects.filter(putaway_id=putaway_id)
        .select_related("sku", "order_item__order", "suggested_shelf")
        .only(*ITEM_COLUMNS)
        .order_by("sku__code", "pk")
    )


def _matches(item: PutawayItem, code: str, item_traceability: bool) -> bool:
    if item_traceability:
        return code == f"{item.order_item.order.code}/{item.order_item.code}"
    return code in (item.sku.code, item.sku.barcode)


def _place(station: Station, code: str, user) -> ScanResult:
    items = putaway_items(station.putaway_id)
    item_traceability = Tenant.get().traceability == Traceability.ITEM
    matching = [i for i in items if _matches(i, code, item_traceability)]
    if not matching:
        known = Sku.objects.filter(Q(code=code) | Q(barcode=code)).exists()
        error = ScanError.WRONG_ITEM if known else ScanError.UNKNOWN_CODE
        return ScanResult.refuse(error, f"{code} is not on putaway {station.putaway.code}.")
    placed = {item_id for item_id, _, _ in station.placed}
    todo = [i for i in matching if i.pk not in placed]
    if not todo:
        return ScanResult.refuse(ScanError.EXTRA_UNIT, f"{code}: all of it are placed already.")
    return _put(station, items, todo[:1], user)


def _put(
    station: Station, items: list[PutawayItem], units: list[PutawayItem], user, count: int = 1
) -> ScanResult:
    """Place these units on the station's shelf as its type (`count`: how many the scan
    stands for); complete the putaway when none is left (a refused completion takes them
    back: the scan changes nothing)."""
    before = list(station.placed)
    station.placed = [*before, *([u.pk, station.shelf_id, station.inventory_type] for u in units)]
    left = len(items) - len(station.placed)
    kind = "BAD" if station.inventory_type == InventoryType.BAD_INVENTORY else "GOOD"
    if left:
        times = f" ×{count}" if count > 1 else ""
        return ScanResult.ok(
            f"{units[0].sku.code}{times} on {station.shelf.code} ({kind}); {left} to go."
        )
    result = _complete(station, user)
    if result.error:
        station.placed = before
    return result


def _quantity(station: Station, code: str, user) -> ScanResult:
    """`QTY:<n>` right after a SKU scan: that scan counts for n units, so n - 1 more unplaced
    units of the SKU go on the same shelf as the same type. All or nothing."""
    wanted = code[len(QTY) :]
    if not wanted.isdigit() or int(wanted) < 1:
        return ScanResult.refuse(ScanError.UNKNOWN_CODE, f"{code}: QTY needs a whole number.")
    if Tenant.get().traceability == Traceability.ITEM:
        return ScanResult.refuse(
            ScanError.WRONG_ITEM, "ITEM traceability: scan each unit's own code, no quantity."
        )
    items = putaway_items(station.putaway_id)
    by_id = {i.pk: i for i in items}
    last = by_id.get(station.placed[-1][0]) if station.placed else None
    if last is None or station.error or not _matches(last, station.last_code, False):
        return ScanResult.refuse(ScanError.NOTHING_OPEN, "Scan a SKU first, then its quantity.")
    placed = {item_id for item_id, _, _ in station.placed}
    todo = [i for i in items if i.sku_id == last.sku_id and i.pk not in placed]
    more = int(wanted) - 1
    if more > len(todo):
        return ScanResult.refuse(
            ScanError.EXTRA_UNIT,
            f"{code}: only {len(todo) + 1} of {last.sku.code} left on the putaway. Count again.",
        )
    if not more:
        return ScanResult.ok(f"{last.sku.code}: 1 placed.")
    return _put(station, items, todo[:more], user, int(wanted))


def _complete(station: Station, user) -> ScanResult:
    """Every unit placed: complete the putaway with those placements, as the user."""
    placements = {item_id: (shelf_id, kind) for item_id, shelf_id, kind in station.placed}
    try:
        outcome = putaways_complete([station.putaway_id], placements=placements, actor=user)
    except ValidationError as exc:
        return ScanResult.refuse(ScanError.REFUSED, "; ".join(exc.messages))
    if not outcome.ok:
        reasons = "; ".join(reason for _, reason in outcome.failed)
        return ScanResult.refuse(ScanError.REFUSED, f"Not completed: {reasons}")
    done = station.putaway.code
    _reset(station, None)
    return ScanResult.done(f"Putaway {done} complete: stock is back on the shelves.")
