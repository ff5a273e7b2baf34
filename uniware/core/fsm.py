"""Applying django-fsm transitions to one object or to thousands, with an audit row each.

Transitions are declared on the models with `django_fsm.transition` (sources, target,
guards). Services never assign a status: they call `apply_transition(s)`, which

1. checks each object against the declared sources and guards, raising `IllegalTransition`
   naming the object, its status and the transition (nothing is changed),
2. runs the transition method (which only changes the object in memory),
3. writes the new states with one UPDATE per (from, to) pair, guarded by the old state, so a
   concurrent change that slipped past the caller's row locks is caught, not overwritten,
4. records one `StateChange` per object and sends `states_changed` (for the outbox).

It must run inside `transaction.atomic()`; callers lock the rows first (`select_for_update`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from .actors import Actor
from .results import Outcome

STATUS_FIELD = "status"
UPDATE_CHUNK = 5000

# Sent after every batch of transitions with `sender=model, transition=name, changes=[Change]`,
# inside the transaction: receivers write in the same transaction (transactional outbox).
states_changed = Signal()


class IllegalTransition(TransitionNotAllowed):
    """A transition the object's current state or guards do not allow."""

    def __init__(self, obj: models.Model, transition: str, why: str = "") -> None:
        self.obj = obj
        self.transition = transition
        self.status = getattr(obj, STATUS_FIELD, "")
        label = obj._meta.verbose_name.capitalize()
        message = f"{label} {obj} is {self.status}: cannot {transition.replace('_', ' ')}"
        if why:
            message += f" ({why})"
        super().__init__(message, object=obj)


@dataclass
class Change:
    obj: models.Model
    from_state: str
    to_state: str


def guard(hint: str):
    """Mark a django-fsm condition with the words shown when it fails."""

    def decorate(func):
        func.hint = hint
        return func

    return decorate


def check_transition(obj: models.Model, name: str) -> None:
    """Raise IllegalTransition unless `obj.<name>()` may run now."""
    method = getattr(obj, name)
    meta = method._django_fsm
    state = getattr(obj, STATUS_FIELD)
    if not meta.has_transition(state):
        raise IllegalTransition(obj, name)
    failed = [
        getattr(cond, "hint", cond.__name__)
        for cond in meta.get_transition(state).conditions
        if not cond(obj)
    ]
    if failed:
        raise IllegalTransition(obj, name, "; ".join(failed))


def transition_allowed(outcome: Outcome, obj: models.Model, name: str) -> bool:
    """Whether `obj.<name>()` may run now; if not, `obj` goes to `outcome.failed` with the
    reason. Bulk services check each object this way and go on with the others."""
    try:
        check_transition(obj, name)
    except IllegalTransition as exc:
        outcome.fail(obj, exc)
        return False
    return True


def can_transition(obj: models.Model, name: str) -> bool:
    try:
        check_transition(obj, name)
    except IllegalTransition:
        return False
    return True


def apply_transition(
    obj: models.Model, name: str, *, actor: Actor, reason: str = "", **kwargs: Any
) -> Change:
    return apply_transitions([obj], name, actor=actor, reason=reason, **kwargs)[0]


def apply_transitions(
    objs: Sequence[models.Model],
    name: str,
    *,
    actor: Actor,
    reason: str = "",
    values: dict[str, Any] | None = None,
    now=None,
    **kwargs: Any,
) -> list[Change]:
    """Run transition `name` on every object, all or nothing.

    `values` are extra columns written with the status (the same value for every object,
    e.g. a timestamp). The caller holds row locks on `objs`.
    """
    if not objs:
        return []
    now = now or timezone.now()
    model = type(objs[0])
    for obj in objs:
        check_transition(obj, name)
    columns = dict(values or {})
    if hasattr(objs[0], "updated_at"):
        columns["updated_at"] = now
    saved = [(obj, {f: getattr(obj, f) for f in (STATUS_FIELD, *columns)}) for obj in objs]
    try:
        # A savepoint: when one group's UPDATE finds a stale row, the groups written before it
        # are undone too, even if the caller catches the error and goes on.
        with transaction.atomic():
            return _apply(objs, name, model, columns, actor, reason, now, kwargs)
    except Exception:
        for obj, fields in saved:  # the objects in memory show the database again
            for field, value in fields.items():
                setattr(obj, field, value)
        raise


def _apply(objs, name, model, columns, actor, reason, now, kwargs) -> list[Change]:
    changes = _run(objs, name, kwargs)
    for obj in objs:
        for field, value in columns.items():
            setattr(obj, field, value)
    grouped: dict[tuple[str, str], list[int]] = defaultdict(list)
    for change in changes:
        grouped[(change.from_state, change.to_state)].append(change.obj.pk)
    for (before, after), ids in grouped.items():
        for start in range(0, len(ids), UPDATE_CHUNK):
            chunk = ids[start : start + UPDATE_CHUNK]
            updated = model._default_manager.filter(pk__in=chunk, **{STATUS_FIELD: before}).update(
                **{STATUS_FIELD: after}, **columns
            )
            if updated != len(chunk):
                raise ConcurrentTransition(
                    f"{model._meta.verbose_name_plural.capitalize()} changed by someone else "
                    f"while moving {before} → {after} ({name}); nothing was changed, try again"
                )
    record_transitions(changes, name, actor=actor, reason=reason, now=now)
    return changes


def _run(objs, name, kwargs) -> list[Change]:
    """Run the transition methods (which change the objects in memory only)."""
    changes = []
    for obj in objs:
        before = getattr(obj, STATUS_FIELD)
        getattr(obj, name)(**kwargs)
        changes.append(Change(obj, before, getattr(obj, STATUS_FIELD)))
    return changes


def transition_unsaved(objs: Sequence[models.Model], name: str, **kwargs: Any) -> list[Change]:
    """Check and run transition `name` on objects this transaction is about to INSERT (rows
    created and moved on at once: a new order's units allocated before they are written).
    Nothing is written: the caller inserts the objects with their new state, then calls
    `record_transitions` with the changes, exactly as `apply_transitions` would have."""
    for obj in objs:
        check_transition(obj, name)
    return _run(objs, name, kwargs)


def record_transitions(
    changes: list[Change], name: str, *, actor: Actor, reason: str = "", now=None
) -> None:
    """The audit rows of applied transitions, and `states_changed` (the outbox listens)."""
    if not changes:
        return
    from .audit import record_changes

    record_changes(changes, transition=name, actor=actor, reason=reason, at=now)
    states_changed.send(sender=type(changes[0].obj), transition=name, changes=changes)


def states_of(objs: Iterable[models.Model]) -> set[str]:
    return {getattr(o, STATUS_FIELD) for o in objs}
