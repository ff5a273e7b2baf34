"""Writing audit rows (StateChange) in bulk, in the caller's transaction.

Rows are built as plain tuples (no model instances): large batches go in by COPY on
PostgreSQL, 3-4x faster than bulk_create, which spends most of its time building SQL.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.utils import timezone

from .actors import Actor
from .db import copy_rows, copy_types
from .models import StateChange

COPY_THRESHOLD = 200
_COLUMNS = (
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


def _order_id(obj: models.Model) -> int | None:
    return getattr(obj, "audit_order_id", None)


def record_changes(
    changes: Iterable, *, transition: str, actor: Actor, reason: str = "", at=None
) -> int:
    """One audit row per `Change` (objects of one model). Returns the number of rows."""
    changes = list(changes)
    if not changes:
        return 0
    at = at or timezone.now()
    content_type = ContentType.objects.get_for_model(type(changes[0].obj)).pk
    user = actor.user.pk if actor.user is not None else None
    label, reason = actor.label[:100], reason[:255]
    rows = [
        (
            content_type,
            c.obj.pk,
            str(c.obj)[:100],
            _order_id(c.obj),
            transition,
            c.from_state,
            c.to_state,
            user,
            label,
            reason,
            at,
        )
        for c in changes
    ]
    return _write(rows)


def _write(rows: list[tuple]) -> int:
    """Insert audit rows (tuples in the order of `_COLUMNS`)."""
    if len(rows) < COPY_THRESHOLD or connection.vendor != "postgresql":
        StateChange.objects.bulk_create(
            [StateChange(**dict(zip(_COLUMNS, row, strict=True))) for row in rows],
            batch_size=2000,
        )
        return len(rows)
    meta = StateChange._meta
    by_column = {f.column: f for f in meta.concrete_fields}
    fields = [by_column[column] for column in _COLUMNS]
    copy_rows(meta.db_table, _COLUMNS, copy_types(fields), rows)
    return len(rows)


def record_event(obj: models.Model, *, transition: str, actor: Actor, reason: str = "", state=""):
    """An audited action that is not a status change (hold, unhold, label ...)."""
    return record_events([obj], transition=transition, actor=actor, reason=reason, state=state)


def record_events(
    objs: Iterable[models.Model], *, transition: str, actor: Actor, reason: str = "", state=""
) -> int:
    """`record_event` for many objects of one model in one statement (bulk hold ...): the
    row's from and to state are the object's current status (or `state`)."""
    from .fsm import Change

    changes = []
    for obj in objs:
        current = state or getattr(obj, "status", "")
        changes.append(Change(obj, current, current))
    return record_changes(changes, transition=transition, actor=actor, reason=reason)
