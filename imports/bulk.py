"""The set-based writes of imports: stock added to many shelves at once, and the serviceability
table replaced at once. Each is one transaction; memory does not grow with the file."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from inventory.ledger import Ref, ledger_write
from inventory.models import Inventory, InventoryType, Serviceability, Shelf, StockReason
from inventory.services import lock_stock_rows
from inventory.signals import stock_added
from uniware.core.actors import Actor
from uniware.core.db import add_per_row, chunked

from .models import ImportJob

SERVICEABILITY_BATCH = 2000  # rows per INSERT


def stock_add_many(
    entries: Iterable[tuple[int, int, str, int]], *, actor=None, job: ImportJob | None = None
) -> list[int]:
    """Add stock to many shelves at once: entries of (shelf id, SKU id, inventory type,
    quantity). Missing stock rows are created; the rows are locked in primary-key order (the
    order every service uses) and raised by one UPDATE per 2,000 rows, with one IMPORT ledger
    row per stock row (the actor, and `job` as the reference). Good stock sends `stock_added`
    (`inventory.signals`) in the transaction: orders queues the re-allocation of units waiting
    for these SKUs, after the commit. Returns the stock row ids."""
    totals: Counter = Counter()
    for shelf_id, sku_id, kind, quantity in entries:
        if quantity <= 0:
            raise ValueError(f"Quantity to add must be positive, not {quantity}")
        totals[(shelf_id, sku_id, kind)] += quantity
    if not totals:
        return []
    shelf_ids = {k[0] for k in totals}
    gone = shelf_ids - set(Shelf.objects.filter(pk__in=shelf_ids).values_list("pk", flat=True))
    if gone:
        raise ValidationError(f"Shelves {sorted(gone)} no longer exist")
    with transaction.atomic():
        rows = lock_stock_rows(totals)
        by_row = {rows[key]: n for key, n in totals.items()}
        ids = sorted(by_row)
        now = timezone.now()
        for chunk in chunked(ids):
            deltas = {pk: by_row[pk] for pk in chunk}
            add_per_row(Inventory, deltas, ["quantity"], values={"updated_at": now})
        actor = Actor.of(actor)
        ref = Ref.of(job)
        ledger_write(
            [(pk, by_row[pk], 0, None, ref) for pk in ids],
            reason=StockReason.IMPORT,
            actor=actor,
            at=now,
        )
        good = sorted({k[1] for k in totals if k[2] == InventoryType.GOOD_INVENTORY})
        if good:
            stock_added.send(sender=Inventory, sku_ids=good, actor=actor)
    return ids


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
