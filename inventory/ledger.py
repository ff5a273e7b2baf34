"""The stock ledger: one `StockMovement` per change of a stock row, and the check against it.

Every write of `Inventory.quantity` or `blocked_quantity` goes through the stock functions
(`inventory.services.stock_block` / `stock_release` / `stock_consume` / `stock_add` /
`stock_adjust`, `inventory.putaway.stock_put`, `imports.bulk.stock_add_many`), and each of
them calls `ledger_write` in the same transaction as its UPDATE, so no path can move stock
without a ledger row and a rolled-back movement leaves none. So, per stock row:

    quantity = Σ quantity_change,   blocked_quantity = Σ blocked_change

which `stock_drift` (and `manage.py check_stock`) verifies with one GROUP BY.

Granularity: unit-driven movements (allocation, release, dispatch, cancellation, putaway) write
one row per unit, naming it, so a unit's whole stock history can be read back; stock arrivals
(inbound, import, adjustment) one row per stock row. Rows are plain tuples written by COPY on
PostgreSQL (as the audit rows): an import of 100,000 lines writes ~118,000 of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models.signals import post_save
from django.utils import timezone

from uniware.core.actors import Actor
from uniware.core.db import copy_rows, copy_types

from .models import Inventory, StockMovement, StockReason

COPY_THRESHOLD = 200
_COLUMNS = (
    "inventory_id",
    "facility_id",
    "shelf_id",
    "sku_id",
    "inventory_type",
    "quantity_change",
    "blocked_change",
    "reason",
    "order_item_id",
    "reference_kind",
    "reference_id",
    "reference_code",
    "note",
    "user_id",
    "actor",
    "at",
)


@dataclass(frozen=True)
class Ref:
    """The document a movement belongs to: a putaway, a manifest, an import job ..."""

    kind: str = ""
    id: int | None = None
    code: str = ""

    @classmethod
    def of(cls, obj) -> Ref:
        if obj is None:
            return NO_REF
        return cls(obj._meta.model_name, obj.pk, str(obj)[:100])


NO_REF = Ref()

# (inventory id, quantity change, blocked change, unit id or None, reference)
Move = tuple[int, int, int, int | None, Ref]


def ledger_write(
    moves: Iterable[Move], *, reason: str, actor: Actor, note: str = "", at=None
) -> int:
    """Write one ledger row per move (in the caller's transaction, after its UPDATE). The
    stock rows' facility, shelf, SKU and type are read in one query. Returns the row count."""
    moves = [m for m in moves if m[1] or m[2]]
    if not moves:
        return 0
    if reason not in StockReason.values:
        raise ValueError(f"Stock movement reason {reason!r} is not one of {StockReason.values}")
    at = at or timezone.now()
    actor = Actor.of(actor)
    user = actor.user.pk if actor.user is not None else None
    label, note = actor.label[:100], note[:255]
    rows = Inventory.objects.filter(pk__in={m[0] for m in moves}).values_list(
        "pk", "facility_id", "shelf_id", "sku_id", "inventory_type"
    )
    where = {pk: rest for pk, *rest in rows}
    tuples = [
        (inv, *where[inv], dq, db, reason, unit, ref.kind, ref.id, ref.code, note, user, label, at)
        for inv, dq, db, unit, ref in moves
    ]
    return _write(tuples)


def ledger_write_units(
    units: Sequence,
    *,
    quantity: int,
    blocked: int,
    reason: str,
    actor: Actor,
    ref=NO_REF,
    note: str = "",
) -> int:
    """One ledger row per unit (an `OrderItem` with `inventory_id` and a key): each moved its
    row by `quantity` and `blocked`."""
    return ledger_write(
        ((u.inventory_id, quantity, blocked, u.pk, ref) for u in units if u.inventory_id),
        reason=reason,
        actor=actor,
        note=note,
    )


def _write(rows: list[tuple]) -> int:
    """COPY on PostgreSQL for a batch worth it; else one INSERT run for every row
    (`executemany`: one statement to prepare, however many rows)."""
    meta = StockMovement._meta
    if len(rows) >= COPY_THRESHOLD and connection.vendor == "postgresql":
        by_column = {f.column: f for f in meta.concrete_fields}
        fields = [by_column[column] for column in _COLUMNS]
        copy_rows(meta.db_table, _COLUMNS, copy_types(fields), rows)
        return len(rows)
    qn = connection.ops.quote_name
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(c) for c in _COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
    )
    at = _COLUMNS.index("at")
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(*row[:at], adapt(row[at]), *row[at + 1 :]) for row in rows])
    return len(rows)


# --- Rows created with stock ------------------------------------------------------------------


def _opening_on_create(sender, instance: Inventory, created: bool, raw: bool, **kwargs) -> None:
    """A stock row created with stock by `Inventory.objects.create` (fixtures, the demo data)
    gets an OPENING movement, so the ledger explains it too. The services create their rows
    empty and add through the stock functions; `bulk_create` sends no signal."""
    if created and not raw and (instance.quantity or instance.blocked_quantity):
        ledger_write(
            [(instance.pk, instance.quantity, instance.blocked_quantity, None, NO_REF)],
            reason=StockReason.OPENING,
            actor=Actor.of("system"),
            note="stock row created with stock",
        )


def connect_signals() -> None:
    post_save.connect(_opening_on_create, sender=Inventory, dispatch_uid="ledger_opening")


# --- The check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    inventory_id: int
    label: str  # facility / shelf / SKU / type
    stored: tuple[int, int]  # (quantity, blocked) in Inventory; (0, 0) for a deleted row
    ledger: tuple[int, int]  # the sums of the ledger


_DRIFT_SQL = """
SELECT COALESCE(i.id, l.inventory_id), i.quantity, i.blocked_quantity, l.q, l.b
FROM {inventory} i
FULL OUTER JOIN (
    SELECT inventory_id, SUM(quantity_change) AS q, SUM(blocked_change) AS b
    FROM {ledger} GROUP BY inventory_id
) l ON l.inventory_id = i.id
WHERE COALESCE(i.quantity, 0) <> COALESCE(l.q, 0)
   OR COALESCE(i.blocked_quantity, 0) <> COALESCE(l.b, 0)
ORDER BY 1
"""


def stock_drift() -> list[Drift]:
    """Every stock row whose quantity or blocked quantity differs from the sum of its ledger
    rows (also ledger rows of a deleted stock row). One GROUP BY over the ledger, joined to
    the stock table in the database: nothing but the drifting rows comes back."""
    qn = connection.ops.quote_name
    sql = _DRIFT_SQL.format(
        inventory=qn(Inventory._meta.db_table), ledger=qn(StockMovement._meta.db_table)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        found = cursor.fetchall()
    if not found:
        return []
    labels = _labels([pk for pk, *_ in found])
    return [
        Drift(
            inventory_id=pk,
            label=labels.get(pk, f"stock row {pk} (deleted)"),
            stored=(q or 0, b or 0),
            ledger=(int(lq or 0), int(lb or 0)),
        )
        for pk, q, b, lq, lb in found
    ]


def _labels(inventory_ids: list[int]) -> dict[int, str]:
    """facility / shelf / SKU / type of these rows, from the stock table or, for a deleted
    row, from its latest ledger row."""
    labels = {}
    rows = Inventory.objects.filter(pk__in=inventory_ids).values_list(
        "pk", "facility__code", "shelf__code", "sku__code", "inventory_type"
    )
    for pk, facility, shelf, sku, kind in rows:
        labels[pk] = f"{facility} / {shelf} / {sku} / {kind}"
    gone = [pk for pk in inventory_ids if pk not in labels]
    for pk in gone:
        last = StockMovement.objects.filter(inventory_id=pk).order_by("-id").first()
        if last is not None:
            labels[pk] = (
                f"stock row {pk} (deleted): facility {last.facility_id} / shelf "
                f"{last.shelf_id} / SKU {last.sku_id} / {last.inventory_type}"
            )
    return labels
