"""The transactional outbox: notifications are inserted in the transaction of the change they
report, and their delivery is queued for after its commit.

    admin / task / import -> service -> transition (signal states_changed, units_cancelled)
        -> notifications.receivers -> builders (shipments, units, pickups) -> write()
        -> after commit: kick() -> Celery task -> notifications.delivery -> channel adapter

The services that cause notifications only send their signals; the receivers
(`notifications.receivers`) build the rows and call `write`. One delivery task is queued per
transaction however many signals wrote; if that fails (broker down) the sweeper delivers later.
"""

from __future__ import annotations

import json
import logging

from django.db import connection, models, transaction
from django.utils import timezone

from .models import Notification
from .tasks import deliver

log = logging.getLogger(__name__)

INSERT_BATCH = 1000
COPY_THRESHOLD = 200


def write(rows: list[Notification]) -> list[Notification]:
    """Insert the rows in the caller's transaction and queue delivery for after commit.
    Big batches go by COPY on PostgreSQL (a manifest of 10,000 shipments: bulk_create spends
    seconds building SQL and escaping arrays); rows inserted so get no primary key back."""
    if not rows:
        return rows
    if len(rows) < COPY_THRESHOLD or connection.vendor != "postgresql":
        Notification.objects.bulk_create(rows, batch_size=INSERT_BATCH)
    else:
        _copy(rows)
    kick_after_commit()
    return rows


def _copy(rows: list[Notification]) -> None:
    now = timezone.now()
    fields = [f for f in Notification._meta.concrete_fields if not f.primary_key]
    json_fields = {f.attname for f in fields if isinstance(f, models.JSONField)}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(Notification._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            row.created_at = row.created_at or now
            values = []
            for f in fields:
                value = getattr(row, f.attname)
                if f.attname in json_fields and value is not None:
                    value = json.dumps(value)
                values.append(value)
            copy.write_row(values)


# --- delivery after commit ---------------------------------------------------------------


def kick() -> None:
    """Queue a delivery task; never raises (the sweeper delivers what this could not queue)."""
    try:
        deliver.apply_async(retry=False)
    except Exception:
        log.warning("could not queue notification delivery; the sweeper will", exc_info=True)


def kick_after_commit() -> None:
    """`kick` once per transaction, however many signals wrote notifications. A callback
    still registered covers this one too: the savepoints it was registered in were either
    released, or are still open and so enclose this point (rolling one back would drop
    these notifications with it); a rolled-back savepoint has dropped its callbacks."""
    conn = transaction.get_connection()
    if conn.in_atomic_block and any(func is kick for _, func, _ in conn.run_on_commit):
        return
    transaction.on_commit(kick, robust=True)
