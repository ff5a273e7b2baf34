"""The set-based writes of imports: stock added to many shelves at once, and the serviceability
table replaced at once. Each is one transaction; memory does not grow with the file."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from inventory.ledger import Ref, ledger_write
from inventory.models import Inventory, InventoryType, Serviceability, Shelf, StockReason
from orders.tasks import reallocate_unfulfillable
from uniware.core.actors import Actor
from uniware.core.db import add_per_row, chunked

from .models import ImportJob

log = logging.getLogger(__name__)

SERVICEABILITY_BATCH = 2000  # rows per INSERT


def stock_add_many(
    entries: Iterable[tuple[int, int, str, int]], *, actor=None, job: ImportJob | None = None
) -> list[int]:
    """Add stock to many shelves at once: entries of (shelf id, SKU id, inventory type,
    quantity). Missing stock rows are created; the rows are locked in primary-key order (the
    order every service uses) and raised by one UPDATE per 2,000 rows, with one IMPORT ledger
    row per stock row (the actor, and `job` as the reference). Units waiting for these SKUs
    are re-allocated after commit. Returns the stock row ids."""
    totals: Counter = Counter()
    for shelf_id, sku_id, kind, quantity in entries:
        if quantity <= 0:
            raise ValueError(f"Quantity to add must be positive, not {quantity}")
        totals[(shelf_id, sku_id, kind)] += quantity
    if not totals:
        return []
    shelves = dict(
        Shelf.objects.filter(pk__in={k[0] for k in totals}).values_list("pk", "facility_id")
    )
    gone = {k[0] for k in totals} - set(shelves)
    if gone:
        raise ValidationError(f"Shelves {sorted(gone)} no longer exist")
    with transaction.atomic():

        def existing() -> dict[tuple[int, int, str], int]:
            rows = Inventory.objects.filter(
                shelf_id__in={k[0] for k in totals},
                sku_id__in={k[1] for k in totals},
                inventory_type__in={k[2] for k in totals},
            ).values_list("shelf_id", "sku_id", "inventory_type", "pk")
            return {(s, k, t): pk for s, k, t, pk in rows}

        found = existing()
        missing = [key for key in totals if key not in found]
        if missing:
            Inventory.objects.bulk_create(
                [
                    Inventory(
                        shelf_id=s, sku_id=k, inventory_type=t, facility_id=shelves[s], quantity=0
                    )
                    for s, k, t in missing
                ],
                ignore_conflicts=True,  # created meanwhile by someone else: we add to theirs
            )
            found = existing()
        by_row = {found[key]: n for key, n in totals.items()}
        ids = sorted(by_row)
        list(Inventory.objects.select_for_update().filter(pk__in=ids).order_by("pk").values("pk"))
        now = timezone.now()
        for chunk in chunked(ids):
            deltas = {pk: by_row[pk] for pk in chunk}
            add_per_row(Inventory, deltas, ["quantity"], values={"updated_at": now})
        ref = Ref.of(job)
        ledger_write(
            [(pk, by_row[pk], 0, None, ref) for pk in ids],
            reason=StockReason.IMPORT,
            actor=Actor.of(actor),
            at=now,
        )
        good = sorted({k[1] for k in totals if k[2] == InventoryType.GOOD_INVENTORY})
        if good:
            transaction.on_commit(lambda: _reallocate_later(good))
    return ids


def _reallocate_later(sku_ids: list[int]) -> None:
    try:
        reallocate_unfulfillable.delay(sku_ids=sku_ids)
    except Exception:  # broker down: the periodic re-allocation catches up
        log.warning("could not queue re-allocation after a stock import", exc_info=True)


def serviceability_replace(rows: Iterable[dict], *, actor=None) -> int:
    """Replace every serviceability row with `rows` (as Uniware's upload does: send all the
    pincodes), in one transaction, so allocation sees the old rows or the new ones, never a
    mix or an empty table. Rows are inserted as they come (memory stays flat). Returns the
    number of rows replaced."""
    with transaction.atomic():
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":  # two uploads at once: one after the other
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('serviceability_replace'))")
        replaced, _ = Serviceability.objects.all().delete()
        batch: list[Serviceability] = []
        for row in rows:
            batch.append(Serviceability(**row))
            if len(batch) >= SERVICEABILITY_BATCH:
                Serviceability.objects.bulk_create(batch)
                batch = []
        if batch:
            Serviceability.objects.bulk_create(batch)
    return replaced
