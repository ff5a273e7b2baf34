"""Set-based writes that Django's ORM does slowly.

`bulk_set` writes a different value per row with one statement per batch
(`UPDATE ... FROM (VALUES ...)` on PostgreSQL), where `bulk_update`'s CASE expressions spend
most of their time building SQL (see shared performance notes: ~4,500 rows/s against ~40,000).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models

BATCH = 2000


def bulk_set(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write `fields` of every object in `objs` (already set in memory)."""
    if not objs:
        return 0
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
