"""Set-based writes that Django's ORM does slowly, and the contract they come with.

`bulk_set` writes a different value per row with one statement per batch
(`UPDATE ... FROM (VALUES ...)` on PostgreSQL), where `bulk_update`'s CASE expressions spend
most of their time building SQL (see shared performance notes: ~4,500 rows/s against ~40,000).
`build` and `insert_new` create new rows about ten times faster than `Model(**kwargs)` and
`bulk_create` (COPY on PostgreSQL), for the paths that create orders by the thousand;
`add_per_row` moves counters and `copy_rows` appends log rows (audit, stock ledger, delivery
attempts) the same way.

The contract. `build` makes instances without `Model.__init__`, and the writes go past
`save()`, so Django's `pre_init`/`post_init` and `pre_save`/`post_save` signals are never
sent for these rows (as for `bulk_create` and `QuerySet.update`, but here on the hot paths
of whole domains). Work that must follow a change of these models therefore belongs in the
service that makes the change (as the audit trail, the stock ledger and the outbox do), never
in a receiver, which would silently miss most changes. `FAST_WRITE_MODELS` lists every model
written this way: the fast paths refuse any other (so the list stays complete), and
tests/test_db_contract.py fails when a receiver of those four signals is connected to one
(`contract_violations`), except the few listed with the reason they are harmless.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

from django.apps import apps
from django.db import connection, models
from django.db.models import signals
from django.db.models.base import ModelState
from django.utils import timezone

M = TypeVar("M", bound=models.Model)

BATCH = 2000

# Every model the fast paths below write, with the receivers of SKIPPED_SIGNALS it may have
# and why they are harmless; the writers, for whoever changes one.
FAST_WRITE_MODELS: dict[str, tuple[str, ...]] = {
    # orders_create (build, insert_new); return orders (bulk_set)
    "orders.Order": (),
    # orders_create (build, insert_new); allocation, channel dispatch, shipment split and
    # merge, serviceability, returns (bulk_set)
    "orders.OrderItem": (),
    # allocation (build, insert_new); fulfilment, repacking, channel dispatch (bulk_set)
    "orders.Shipment": (),
    # stock moves of allocation, dispatch, putaway, imports (add_per_row). Its receiver writes
    # the opening ledger row of a stock row *created* with stock: the fast paths never create
    # one, and every move they make writes its own ledger rows.
    "inventory.Inventory": ("inventory.ledger._opening_on_create",),
    "inventory.PutawayItem": (),  # putaway (bulk_set)
    "inventory.StockMovement": (),  # the stock ledger (copy_rows)
    "core.StateChange": (),  # the audit trail of state changes (copy_rows)
    "notifications.NotificationAttempt": (),  # outbox delivery (copy_rows)
}
SKIPPED_SIGNALS = ("pre_init", "post_init", "pre_save", "post_save")
_listed: set[type[models.Model]] = set()
_by_table: dict[str, type[models.Model]] = {}


def require_listed(model: type[models.Model]) -> None:
    """Refuse a model that is not in FAST_WRITE_MODELS (its receivers would be skipped
    unchecked)."""
    if model in _listed:
        return
    if model._meta.label not in FAST_WRITE_MODELS:
        raise TypeError(
            f"{model._meta.label} is not in uniware.core.db.FAST_WRITE_MODELS: list it there "
            "before writing it with the fast paths (see the module docstring)"
        )
    _listed.add(model)


def contract_violations() -> list[str]:
    """The receivers of SKIPPED_SIGNALS connected to a listed model (directly or to every
    sender) and not listed as harmless, as "label: signal receiver". Needs the app registry
    ready (receivers are connected in the apps' ready())."""
    found = []
    for label, allowed in FAST_WRITE_MODELS.items():
        model = apps.get_model(label)
        for name in SKIPPED_SIGNALS:
            signal = getattr(signals, name)
            if not signal.has_listeners(model):
                continue
            sync, async_ = signal._live_receivers(model)  # Django offers no public listing
            for receiver in [*sync, *async_]:
                where = f"{receiver.__module__}.{getattr(receiver, '__qualname__', receiver)}"
                if where not in allowed:
                    found.append(f"{label}: {name} {where}")
    return found


def bulk_set(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write `fields` of every object in `objs` (already set in memory)."""
    if not objs:
        return 0
    require_listed(model)
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_update(objs, fields, batch_size=500)
    meta = model._meta
    cols = [meta.get_field(name) for name in fields]
    qn = connection.ops.quote_name
    pk = meta.pk
    row_sql = "(" + ", ".join(f"%s::{f.db_type(connection)}" for f in [pk, *cols]) + ")"
    names = ", ".join(qn(f.column) for f in [pk, *cols])
    set_sql = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in cols)
    total = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), BATCH):
            batch = objs[start : start + BATCH]
            params: list = []
            for obj in batch:
                params.append(obj.pk)
                for f in cols:
                    params.append(f.get_db_prep_save(getattr(obj, f.attname), connection))
            sql = (
                f"UPDATE {qn(meta.db_table)} AS t SET {set_sql} "
                f"FROM (VALUES {', '.join([row_sql] * len(batch))}) AS v({names}) "
                f"WHERE t.{qn(pk.column)} = v.{qn(pk.column)}"
            )
            cursor.execute(sql, params)
            total += cursor.rowcount
    return total


def chunked(items: Sequence, size: int = BATCH):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Inserting new rows fast ------------------------------------------------------------------
#
# Creating orders is the hot path of imports and channel pulls: tens of thousands of orders,
# units, shipments and audit rows a minute. Model.__init__ with keyword arguments costs about
# 15 µs a row and bulk_create spends most of its time building SQL; `build` and `insert_new`
# do the same work in about a tenth of the time (COPY on PostgreSQL, as the performance notes
# measured: ~113,000 rows/s against ~32,000 for bulk_create).


class _Blueprint:
    """What `build` needs of a model: its concrete fields' defaults, computed once."""

    def __init__(self, model: type[models.Model]) -> None:
        self.fixed: dict[str, object] = {}
        self.computed: list[tuple[str, object]] = []  # callable defaults (dict, uuid ...)
        for f in model._meta.concrete_fields:
            if f.has_default() and callable(f.default):
                self.computed.append((f.attname, f.default))
            else:
                self.fixed[f.attname] = f.get_default()
        self.relations = {f.name for f in model._meta.concrete_fields if f.is_relation}


_blueprints: dict[type[models.Model], _Blueprint] = {}


def build(model: type[M], **values) -> M:
    """A new, unsaved instance, as `model(**values)` makes it (defaults for the rest), without
    Model.__init__'s per-keyword work (and its pre_init/post_init signals). `values` are
    attribute names (`order_id`, or `order` for a related object)."""
    blueprint = _blueprints.get(model)
    if blueprint is None:
        require_listed(model)
        blueprint = _blueprints[model] = _Blueprint(model)
    obj = model.__new__(model)
    obj._state = ModelState()
    state = obj.__dict__
    state.update(blueprint.fixed)
    for name, default in blueprint.computed:
        state[name] = default()
    related = [name for name in values if name not in state]
    for name in related:
        if name not in blueprint.relations:
            raise TypeError(f"{model.__name__}() got an unexpected keyword argument {name!r}")
    for name in related:  # a related object: its key, and the object in the cache
        link(obj, name, values.pop(name))
    state.update(values)
    return obj


def link(obj: models.Model, name: str, related: models.Model | None) -> None:
    """`obj.<name> = related` for a foreign key `name`: the related object's key into
    `<name>_id` and the object into the cache. The descriptor's checks (instance type,
    database router) cost about 3 µs a call: a second for 100,000 order lines. Also for
    setting the key after the related object got it (`insert_new`), keeping the cache."""
    field = obj._meta.get_field(name)
    if related is not None and not isinstance(related, field.related_model):
        raise ValueError(f"{type(obj).__name__}.{name} must be a {field.related_model.__name__}")
    obj.__dict__[field.attname] = None if related is None else related.pk
    obj._state.fields_cache[name] = related


_sequences: dict[type[models.Model], str] = {}  # model -> its primary key's sequence


def insert_new(model: type[models.Model], objs: Sequence[models.Model], *, now=None) -> None:
    """INSERT new instances and give them their primary keys, like `bulk_create`.

    On PostgreSQL the keys are taken from the table's sequence in one query and the rows go
    in by COPY. `auto_now`/`auto_now_add` fields get `now`. Errors (a duplicate key, say)
    arrive as Django's IntegrityError, as from bulk_create."""
    if not objs:
        return
    require_listed(model)
    now = now or timezone.now()
    meta = model._meta
    fields = meta.concrete_fields
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            for obj in objs:
                setattr(obj, f.attname, now)
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=1000)
        return
    reserve_keys(model, objs)
    # JSON needs Django's adapter (the field's encoder); psycopg writes the rest as it is
    json_fields = [i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
    names = [f.attname for f in fields]
    from_dict = operator.itemgetter(*names)  # no descriptor call per attribute
    from_attributes = operator.attrgetter(*names)  # a deferred field is loaded

    def rows():
        for obj in objs:
            try:
                row = from_dict(obj.__dict__)
            except KeyError:
                row = from_attributes(obj)
            if json_fields:
                row = list(row)
                for i in json_fields:
                    row[i] = fields[i].get_db_prep_save(row[i], connection)
            yield row

    copy_rows(meta.db_table, [f.column for f in fields], copy_types(fields), rows())
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def reserve_keys(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Give the objects without a primary key theirs before they are inserted (`insert_new`
    and `bulk_create` keep a key that is set), for rows that others must refer to first (the
    stock ledger names units allocated before they are written). PostgreSQL: from the
    table's sequence, in one query. Elsewhere (SQLite, development and tests): the keys after
    the largest used; SQLite has one writer at a time, so call it after this transaction
    has written (the caller's orders are inserted before their units)."""
    new = [obj for obj in objs if obj.pk is None]
    if not new:
        return
    meta = model._meta
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if model not in _sequences:
                cursor.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", [meta.db_table, meta.pk.column]
                )
                _sequences[model] = cursor.fetchone()[0]
            cursor.execute(
                "SELECT array(SELECT nextval(%s::regclass) FROM generate_series(1, %s))",
                [_sequences[model], len(new)],
            )
            keys = cursor.fetchone()[0]
        else:
            qn = connection.ops.quote_name
            cursor.execute(f"SELECT MAX({qn(meta.pk.column)}) FROM {qn(meta.db_table)}")
            last = cursor.fetchone()[0] or 0
            if connection.vendor == "sqlite":  # AUTOINCREMENT never reuses a deleted key
                cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [meta.db_table])
                found = cursor.fetchone()
                last = max(last, found[0] if found else 0)
            keys = range(last + 1, last + 1 + len(new))
    for obj, key in zip(new, keys, strict=True):
        obj.pk = key


def add_per_row(
    model: type[models.Model],
    counts: dict[int, int],
    columns: Sequence[str],
    *,
    sign: int = 1,
    values: dict | None = None,
) -> int:
    """`column = column ± n` with each row's own n ({pk: n}), for every column, in one
    statement; `values` are set as they are. PostgreSQL joins the rows to two arrays
    (`unnest`), which stays fast for thousands of rows where a CASE per row does not."""
    if not counts:
        return 0
    require_listed(model)
    op = "+" if sign > 0 else "-"
    if connection.vendor != "postgresql":
        delta = models.Case(
            *[models.When(pk=pk, then=models.Value(n)) for pk, n in counts.items()],
            default=models.Value(0),
            output_field=models.IntegerField(),
        )
        changes = {c: models.F(c) + delta if sign > 0 else models.F(c) - delta for c in columns}
        return model._default_manager.filter(pk__in=list(counts)).update(
            **changes, **(values or {})
        )
    meta = model._meta
    qn = connection.ops.quote_name
    sets = [
        f"{qn(meta.get_field(c).column)} = t.{qn(meta.get_field(c).column)} {op} v.n"
        for c in columns
    ]
    params: list = []
    for name, value in (values or {}).items():
        field = meta.get_field(name)
        sets.append(f"{qn(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {', '.join(sets)} "
        f"FROM unnest(%s::bigint[], %s::integer[]) AS v(id, n) "
        f"WHERE t.{qn(meta.pk.column)} = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, list(counts), list(counts.values())])
        return cursor.rowcount


def copy_types(fields: Sequence[models.Field]) -> list[str]:
    """PostgreSQL type names of these fields, for `copy_rows`."""
    return [re.sub(r"\(.*\)", "", f.db_type(connection)).strip() for f in fields]


def copy_rows(
    table: str, columns: Sequence[str], types: Sequence[str], rows: Iterable[Sequence]
) -> None:
    """COPY rows into a table in PostgreSQL's binary format: nothing to format or parse as
    text on either side (about 25 % faster than text COPY for audit rows). Errors arrive as
    Django's (IntegrityError ...)."""
    if not _by_table:
        _by_table.update({m._meta.db_table: m for m in apps.get_models()})
    if table not in _by_table:
        raise TypeError(f"copy_rows: no model has the table {table!r}")
    require_listed(_by_table[table])
    qn = connection.ops.quote_name
    sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in columns)}) FROM STDIN (FORMAT BINARY)"
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
