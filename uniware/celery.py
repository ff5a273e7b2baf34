"""The Celery app. Tasks are thin wrappers around services (see each app's tasks.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")

app = Celery("uniware")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _connect_tenant_zone() -> None:
    """Tasks read and write dates in the tenant's zone, as requests do (uniware.core.zones)."""
    from celery.signals import task_postrun, task_prerun

    from uniware.core.zones import activate_tenant_zone, deactivate_zone

    task_prerun.connect(activate_tenant_zone, weak=False, dispatch_uid="uniware.tenant_zone")
    task_postrun.connect(deactivate_zone, weak=False, dispatch_uid="uniware.tenant_zone_off")


_connect_tenant_zone()


def _drop_broken_connection(task=None, **kwargs) -> None:
    """Before each task, close a database connection that broke or outlived CONN_MAX_AGE
    (the connection was terminated, PostgreSQL restarted). Celery's own check is skipped for
    CELERY_DB_REUSE_MAX tasks, so without this one dead connection fails every task after it.
    Not for eager tasks: they run inside the caller's transaction."""
    from django.db import close_old_connections

    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


def _connect_connection_check() -> None:
    from celery.signals import task_prerun

    task_prerun.connect(_drop_broken_connection, weak=False, dispatch_uid="uniware.db_check")


_connect_connection_check()
