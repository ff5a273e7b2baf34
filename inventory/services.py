"""Stock movements. Callers hold row locks on the Inventory rows they pass (see
`stock_lock_available`); every write is one statement for the whole batch and the database's
check constraint refuses negative or over-blocked stock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F

from uniware.core.actors import Actor
from uniware.core.db import add_per_row

from .models import Inventory, InventoryType, Shelf, Sku


def stock_lock_available(sku_ids: Iterable[int]) -> list[Inventory]:
    """Lock the sellable stock rows of these SKUs in active facilities, in primary-key order
    (the fixed order every service uses, so two allocations cannot deadlock)."""
    return list(
        Inventory.objects.select_for_update(of=("self",))
        .filter(
            sku_id__in=set(sku_ids),
            inventory_type=InventoryType.GOOD_INVENTORY,
            facility__is_active=True,
            quantity__gt=F("blocked_quantity"),
        )
        .order_by("pk")
    )


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


def stock_block(counts: Counter) -> None:
    """Block n units of each row: {inventory_id: n}."""
    add_per_row(Inventory, counts, ["blocked_quantity"])


def stock_release(counts: Counter) -> None:
    """Unblock units that will not be dispatched (cancelled before picking)."""
    add_per_row(Inventory, counts, ["blocked_quantity"], sign=-1)


def stock_consume(counts: Counter) -> None:
    """Dispatched units leave the shelf: quantity and blocked quantity both go down."""
    add_per_row(Inventory, counts, ["quantity", "blocked_quantity"], sign=-1)


def stock_add(
    *,
    shelf: Shelf,
    sku: Sku,
    quantity: int,
    inventory_type: str = InventoryType.GOOD_INVENTORY,
    actor: Actor | None = None,
) -> Inventory:
    """Add stock to a shelf (inbound, adjustment). Waiting units are re-allocated after commit."""
    if quantity <= 0:
        raise ValueError(f"Quantity to add for SKU {sku.code} must be positive, not {quantity}")
    with transaction.atomic():
        row, _ = Inventory.objects.select_for_update().get_or_create(
            shelf=shelf,
            sku=sku,
            inventory_type=inventory_type,
            defaults={"facility_id": shelf.facility_id},
        )
        Inventory.objects.filter(pk=row.pk).update(quantity=F("quantity") + quantity)
        row.refresh_from_db()
        if inventory_type == InventoryType.GOOD_INVENTORY:
            transaction.on_commit(lambda: _reallocate_later([sku.pk]))
    return row


def _reallocate_later(sku_ids: list[int]) -> None:
    from orders.tasks import reallocate_unfulfillable

    try:
        reallocate_unfulfillable.delay(sku_ids=sku_ids)
    except Exception:  # broker down: the periodic re-allocation task catches up
        import logging

        logging.getLogger(__name__).warning("could not queue re-allocation", exc_info=True)
