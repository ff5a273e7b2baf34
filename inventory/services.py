"""Stock movements. Callers hold row locks on the Inventory rows they pass (see
`stock_lock_available`); every write is one statement for the whole batch and the database's
check constraint refuses negative or over-blocked stock. Every function here writes the
movement's ledger rows (`inventory.ledger`) in the same transaction: callers pass the units
moved (or the reference), the reason and the actor."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from uniware.core.actors import Actor
from uniware.core.db import add_per_row, reserve_keys

from .ledger import NO_REF, Ref, ledger_write, ledger_write_units
from .models import Inventory, InventoryType, Shelf, Sku, StockReason
from .signals import stock_added

StockKey = tuple[int, int, str]  # (shelf id, SKU id, inventory type)


def sellable_stock():
    """Stock rows allocation may take from: good stock in active facilities, not all blocked."""
    return Inventory.objects.filter(
        inventory_type=InventoryType.GOOD_INVENTORY,
        facility__is_active=True,
        quantity__gt=F("blocked_quantity"),
    )


def stock_lock_available(sku_ids: Iterable[int]) -> list[Inventory]:
    """Lock the sellable stock rows of these SKUs, in primary-key order (the fixed order
    every service uses, so two allocations cannot deadlock)."""
    return list(
        sellable_stock()
        .select_for_update(of=("self",))
        .filter(sku_id__in=set(sku_ids))
        .order_by("pk")
    )


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


def stock_lock_rows(inventory_ids: Iterable[int]) -> None:
    """Lock these stock rows in primary-key order, before any Sequence row (the lock order of
    `orders.locks`), when a transaction will both number documents and move stock."""
    ids = {pk for pk in inventory_ids if pk is not None}
    if ids:
        list(
            Inventory.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )


def _move_units(
    units: Sequence, columns: list[str], sign: int, *, reason: str, actor, ref: Ref, note: str = ""
) -> None:
    """Move each unit's stock row by one (`columns`, `sign`) and write one ledger row per
    unit. Units without a stock row are skipped; a unit not inserted yet gets its key now."""
    units = [u for u in units if u.inventory_id]
    if not units:
        return
    unsaved = [u for u in units if u.pk is None]
    if unsaved:
        reserve_keys(type(unsaved[0]), unsaved)
    add_per_row(Inventory, Counter(u.inventory_id for u in units), columns, sign=sign)
    quantity = sign if "quantity" in columns else 0
    blocked = sign if "blocked_quantity" in columns else 0
    ledger_write_units(
        units,
        quantity=quantity,
        blocked=blocked,
        reason=reason,
        actor=Actor.of(actor),
        ref=ref,
        note=note,
    )


def stock_block(
    units: Sequence, *, actor=None, reason: str = StockReason.ALLOCATE, ref: Ref = NO_REF
) -> None:
    """Block one unit of each unit's stock row (`OrderItem`s with `inventory_id`)."""
    _move_units(units, ["blocked_quantity"], 1, reason=reason, actor=actor, ref=ref)


def stock_release(
    units: Sequence, *, actor=None, reason: str = StockReason.RELEASE, ref: Ref = NO_REF
) -> None:
    """Unblock units that will not be dispatched (cancelled before picking)."""
    _move_units(units, ["blocked_quantity"], -1, reason=reason, actor=actor, ref=ref)


def stock_consume(
    units: Sequence, *, reason: str, actor=None, ref: Ref = NO_REF, note: str = ""
) -> None:
    """Units leave the shelf (dispatched, cancelled once picked, or not found there at
    picking): quantity and blocked quantity both go down. `reason`: DISPATCH, FORCE_DISPATCH,
    CHANNEL_DISPATCH, CANCEL_PICKED or NOT_FOUND; `note`: why, in the staff's words."""
    _move_units(
        units,
        ["quantity", "blocked_quantity"],
        -1,
        reason=reason,
        actor=actor,
        ref=ref,
        note=note,
    )


def stock_add(
    *,
    shelf: Shelf,
    sku: Sku,
    quantity: int,
    inventory_type: str = InventoryType.GOOD_INVENTORY,
    actor: Actor | None = None,
    reason: str = StockReason.STOCK_ADD,
    note: str = "",
    ref: Ref = NO_REF,
) -> Inventory:
    """Add stock to a shelf (inbound, adjustment), with its ledger row (`reason`, `note`:
    why, and who). Good stock sends `stock_added` (`inventory.signals`) in the transaction:
    orders queues the re-allocation of units waiting for the SKU, after the commit."""
    if quantity <= 0:
        raise ValueError(f"Quantity to add for SKU {sku.code} must be positive, not {quantity}")
    with transaction.atomic():
        row, _ = Inventory.objects.select_for_update().get_or_create(
            shelf=shelf,
            sku=sku,
            inventory_type=inventory_type,
            defaults={"facility_id": shelf.facility_id},
        )
        Inventory.objects.filter(pk=row.pk).update(
            quantity=F("quantity") + quantity, updated_at=timezone.now()
        )
        ledger_write(
            [(row.pk, quantity, 0, None, ref)], reason=reason, actor=Actor.of(actor), note=note
        )
        row.refresh_from_db()
        if inventory_type == InventoryType.GOOD_INVENTORY:
            stock_added.send(sender=Inventory, sku_ids=[sku.pk], actor=Actor.of(actor))
    return row


class StockAdjustmentRefused(ValidationError):
    """A decrease that would leave fewer units than are blocked: nothing was changed."""


def stock_adjust(row: Inventory, *, delta: int, actor=None, note: str = "") -> Inventory:
    """Change a stock row's quantity by `delta` (what staff entered minus what they saw, so
    allocation or dispatch meanwhile is kept): an increase goes through `stock_add` (which
    sends `stock_added` for good stock), a decrease is one UPDATE that never leaves fewer
    units than are blocked. Either writes an ADJUSTMENT ledger row with the actor and `note`.
    Raises `StockAdjustmentRefused`, naming the row, when the blocked units refuse the
    decrease; nothing is changed then."""
    with transaction.atomic():
        current = Inventory.objects.select_for_update().select_related("sku", "shelf")
        current = current.get(pk=row.pk)
        if delta > 0:
            return stock_add(
                shelf=current.shelf,
                sku=current.sku,
                quantity=delta,
                inventory_type=current.inventory_type,
                actor=actor,
                reason=StockReason.ADJUSTMENT,
                note=note,
            )
        if delta < 0:
            if current.quantity + delta < current.blocked_quantity:
                raise StockAdjustmentRefused(
                    f"Stock of {current.sku} on {current.shelf} was not reduced by {-delta}: "
                    f"{current.blocked_quantity} of its {current.quantity} units are blocked "
                    "for orders. Nothing was changed; reload and try again."
                )
            Inventory.objects.filter(pk=current.pk).update(
                quantity=F("quantity") + delta, updated_at=timezone.now()
            )
            ledger_write(
                [(current.pk, delta, 0, None, NO_REF)],
                reason=StockReason.ADJUSTMENT,
                actor=Actor.of(actor),
                note=note,
            )
            current.refresh_from_db()
    return current
