"""Writing audit rows (StateChange) in bulk, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.utils import timezone

from .actors import Actor
from .models import StateChange


def _order_id(obj: models.Model) -> int | None:
    return getattr(obj, "audit_order_id", None)


def record_changes(changes: Iterable, *, transition: str, actor: Actor, reason: str = "", at=None):
    changes = list(changes)
    if not changes:
        return []
    at = at or timezone.now()
    content_type = ContentType.objects.get_for_model(type(changes[0].obj))
    rows = [
        StateChange(
            content_type=content_type,
            object_id=c.obj.pk,
            object_code=str(c.obj)[:100],
            order_id=_order_id(c.obj),
            transition=transition,
            from_state=c.from_state,
            to_state=c.to_state,
            user=actor.user,
            actor=actor.label[:100],
            reason=reason[:255],
            at=at,
        )
        for c in changes
    ]
    return _write(rows)


COPY_THRESHOLD = 200
_COPY_COLUMNS = (
    "content_type_id",
    "object_id",
    "object_code",
    "order_id",
    "transition",
    "from_state",
    "to_state",
    "user_id",
    "actor",
    "reason",
    "at",
)


def _write(rows: list[StateChange]) -> list[StateChange]:
    """Insert audit rows; large batches with COPY on PostgreSQL (3-4x faster than
    bulk_create, which spends most of its time building SQL). COPY rows get no primary key
    back, so callers must not rely on `pk` of what this returns."""
    if len(rows) < COPY_THRESHOLD or connection.vendor != "postgresql":
        return StateChange.objects.bulk_create(rows, batch_size=2000)
    sql = f"COPY {StateChange._meta.db_table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row([getattr(row, column) for column in _COPY_COLUMNS])
    return rows


def record_event(obj: models.Model, *, transition: str, actor: Actor, reason: str = "", state=""):
    """An audited action that is not a status change (hold, unhold, label ...)."""
    return record_events([obj], transition=transition, actor=actor, reason=reason, state=state)[0]


def record_events(
    objs: Iterable[models.Model], *, transition: str, actor: Actor, reason: str = "", state=""
) -> list[StateChange]:
    """`record_event` for many objects of one model in one statement (bulk hold ...)."""
    objs = list(objs)
    if not objs:
        return []
    content_type = ContentType.objects.get_for_model(type(objs[0]))
    at = timezone.now()
    rows = []
    for obj in objs:
        current = state or getattr(obj, "status", "")
        rows.append(
            StateChange(
                content_type=content_type,
                object_id=obj.pk,
                object_code=str(obj)[:100],
                order_id=_order_id(obj),
                transition=transition,
                from_state=current,
                to_state=current,
                user=actor.user,
                actor=actor.label[:100],
                reason=reason[:255],
                at=at,
            )
        )
    return _write(rows)
