"""The audit of administration: who changed roles, users, channel credentials and settings.

Receivers of the model signals (pre_save/post_save, post_delete, m2m_changed) write one
`AdminAuditEvent` per change, in the transaction of the change, so a change made anywhere (the
admin, the shell, a management command, a migration's role sync) is recorded and a rolled-back
one is not. Watched (`WATCHED`): users (fields, password, groups, permissions), groups and
their permissions, channels (credentials and settings), the tenant, sequences and
django-celery-beat's periodic tasks and their schedules.

- Who: `AuditActorMiddleware` puts the request in a context variable; the user is read from
  it only when something is recorded. Outside a request it is "system", or what a command or
  task names with `acting_as("command:rotate_secrets")`.
- What: per field old → new; secret fields (a user's password hash, a channel's password)
  only as "set", "changed" or "removed". Fields that change by themselves (last login,
  `updated_at`, beat's run counters) are not watched, so a login or a beat tick records
  nothing.
- Loading fixtures (`raw` saves) is not recorded: it is a data load, not an administration.
"""

from __future__ import annotations

import contextvars
import datetime
import decimal
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

log = logging.getLogger(__name__)

SYSTEM = "system"
_acting: contextvars.ContextVar[Any] = contextvars.ContextVar("audit_actor", default=None)


@dataclass(frozen=True)
class Watch:
    """A model whose changes are audited: every concrete field but `ignore`; `secrets` shown
    only as set/changed/removed."""

    ignore: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


WATCHED: dict[str, Watch] = {
    "auth.user": Watch(ignore=("last_login", "date_joined"), secrets=("password",)),
    "auth.group": Watch(),
    "channels.channel": Watch(ignore=("updated_at",), secrets=("password",)),
    "core.tenant": Watch(ignore=("updated_at",)),
    "core.sequence": Watch(),
    "django_celery_beat.periodictask": Watch(
        ignore=("last_run_at", "total_run_count", "date_changed", "no_changes")
    ),
    "django_celery_beat.intervalschedule": Watch(),
    "django_celery_beat.crontabschedule": Watch(),
}


# --- who ------------------------------------------------------------------------------------


class AuditActorMiddleware:
    """Makes the request's user the actor of whatever the request changes (after
    AuthenticationMiddleware; the user is resolved only when an event is written)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _acting.set(request)
        try:
            return self.get_response(request)
        finally:
            _acting.reset(token)


@contextmanager
def acting_as(who: Any) -> Iterator[None]:
    """Name the actor of the changes made inside (a user, or a label like "command:x")."""
    token = _acting.set(who)
    try:
        yield
    finally:
        _acting.reset(token)


def current_actor() -> tuple[Any, str]:
    """(user or None, label) of whoever is acting now."""
    who = _acting.get()
    if isinstance(who, HttpRequest):
        user = getattr(who, "user", None)
        if user is not None and user.is_authenticated:
            return user, user.get_username()
        return None, "anonymous"
    if isinstance(who, str):
        return None, who
    if who is not None and getattr(who, "pk", None):
        return who, who.get_username()
    return None, SYSTEM


# --- what -----------------------------------------------------------------------------------


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def _fields(model: type[models.Model], watch: Watch) -> list[models.Field]:
    return [
        f for f in model._meta.concrete_fields if not f.primary_key and f.name not in watch.ignore
    ]


def _plain(value: Any) -> Any:
    """A JSON-safe form of a field value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | datetime.timedelta):
        return str(value)
    if isinstance(value, list | tuple | dict):
        return value
    return str(value)


def _related(field: models.Field, pk: Any) -> Any:
    """A foreign key shown as its object's name (falls back to the id)."""
    if pk is None or not field.is_relation:
        return _plain(pk)
    obj = field.related_model._base_manager.filter(pk=pk).first()
    return str(obj) if obj is not None else pk


def _secret_change(old: Any, new: Any) -> str:
    if not old and new:
        return "set"
    if old and not new:
        return "removed"
    return "changed"


def _diff(instance: models.Model, watch: Watch) -> dict[str, Any]:
    """Field → [old, new] (secrets: "set"/"changed"/"removed") against the stored row."""
    fields = _fields(type(instance), watch)
    names = [f.attname for f in fields]
    old = type(instance)._base_manager.filter(pk=instance.pk).values(*names).first()
    if old is None:
        return {}
    changes: dict[str, Any] = {}
    for field in fields:
        before, after = old[field.attname], getattr(instance, field.attname)
        if before == after:
            continue
        if field.name in watch.secrets:
            changes[field.name] = _secret_change(before, after)
        else:
            changes[field.name] = [_related(field, before), _related(field, after)]
    return changes


def _snapshot(instance: models.Model, watch: Watch) -> dict[str, Any]:
    """What a new object starts with (secrets: "set"/"not set")."""
    result: dict[str, Any] = {}
    for field in _fields(type(instance), watch):
        value = getattr(instance, field.attname)
        if field.name in watch.secrets:
            result[field.name] = "set" if value else "not set"
        else:
            result[field.name] = _related(field, value)
    return result


_table_ready = False


def _can_record() -> bool:
    """False while the audit table does not exist yet (signals fired during migrate)."""
    global _table_ready
    if not _table_ready:
        from .models import AdminAuditEvent

        _table_ready = AdminAuditEvent._meta.db_table in connection.introspection.table_names()
    return _table_ready


def record(obj: models.Model, action: str, changes: dict[str, Any]) -> None:
    """Write one audit event about `obj` (skipped with a warning before the table exists)."""
    from .models import AdminAuditEvent

    if not _can_record():
        log.warning("audit table missing: not recorded: %s %s", action, _label(type(obj)))
        return
    user, label = current_actor()
    deleted_self = action == "deleted" and isinstance(obj, get_user_model())
    if user is not None and deleted_self and user.pk == obj.pk:
        user = None  # the row is gone: keep the name only
    AdminAuditEvent.objects.create(
        at=timezone.now(),
        actor_user=user,
        actor=label[:150],
        object_type=_label(type(obj)),
        object_id=str(obj.pk or "")[:64],
        object_repr=str(obj)[:200],
        action=action,
        changes=changes,
    )


# --- receivers ------------------------------------------------------------------------------


def _watch_of(sender: Any) -> Watch | None:
    return WATCHED.get(_label(sender)) if isinstance(sender, type) else None


def before_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    watch = _watch_of(sender)
    instance._audit_changes = None
    if watch is None or raw or instance.pk is None:
        return
    if update_fields is not None:
        watched = {f.name for f in _fields(sender, watch)} | {
            f.attname for f in _fields(sender, watch)
        }
        if not watched & set(update_fields):
            return  # e.g. a login writing last_login only
    instance._audit_changes = _diff(instance, watch)


def after_save(sender, instance, created=False, raw=False, **kwargs) -> None:
    watch = _watch_of(sender)
    if watch is None or raw:
        return
    if created:
        record(instance, "created", _snapshot(instance, watch))
        return
    changes = getattr(instance, "_audit_changes", None)
    instance._audit_changes = None
    if changes:
        record(instance, "changed", changes)


def after_delete(sender, instance, **kwargs) -> None:
    if _watch_of(sender) is not None:
        record(instance, "deleted", {})


def _relations() -> dict[type[models.Model], str]:
    """The audited many-to-many tables → the name of the relation."""
    user_model = get_user_model()
    group_model = apps.get_model("auth", "Group")
    return {
        user_model.groups.through: "groups",
        user_model.user_permissions.through: "user_permissions",
        group_model.permissions.through: "permissions",
    }


def _names(model: type[models.Model], pks) -> list[str]:
    """Readable names of related objects: permissions as app_label.codename."""
    rows = model._base_manager.filter(pk__in=pks)
    if model._meta.label_lower == "auth.permission":
        rows = rows.select_related("content_type")
        return sorted(f"{p.content_type.app_label}.{p.codename}" for p in rows)
    return sorted(str(obj) for obj in rows)


def m2m_change(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    relation = _relations().get(sender)
    if relation is None:
        return
    if action == "pre_clear":  # remember what is about to go
        instance._audit_cleared = list(_current(instance, relation, reverse, model))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set, instance._audit_cleared = getattr(instance, "_audit_cleared", None), None
    if not pk_set:
        return
    verb = "added" if action == "post_add" else "removed"
    if not reverse:
        record(instance, f"{relation} {verb}", {relation: {verb: _names(model, pk_set)}})
        return
    # e.g. group.user_set.add(user): one event per user, naming the group
    (name,) = _names(type(instance), [instance.pk])
    for owner in model._base_manager.filter(pk__in=pk_set).order_by("pk"):
        record(owner, f"{relation} {verb}", {relation: {verb: [name]}})


def _current(instance: models.Model, relation: str, reverse: bool, model) -> Iterator[Any]:
    """The pks on the other side of the relation now (before a clear)."""
    if reverse:
        rows = model._base_manager.filter(**{relation: instance.pk})
    else:
        rows = getattr(instance, relation).all()
    return iter(rows.values_list("pk", flat=True))


def connect() -> None:
    """Connect the receivers to the watched models only (CoreConfig.ready): other saves,
    and there are millions, never reach them."""
    for label in WATCHED:
        try:
            model = apps.get_model(label)
        except LookupError:  # an app not installed (django-celery-beat is optional)
            continue
        uid = f"admin_audit.{label}"
        pre_save.connect(before_save, sender=model, dispatch_uid=uid)
        post_save.connect(after_save, sender=model, dispatch_uid=uid)
        post_delete.connect(after_delete, sender=model, dispatch_uid=uid)
    for through in _relations():
        m2m_changed.connect(m2m_change, sender=through, dispatch_uid=f"admin_audit.{through}")
