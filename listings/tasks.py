"""Celery tasks of the inventory push (queue "sync"): thin wrappers around `listings.push`.

Beat calls each without arguments (`manage.py setup_periodic_tasks`); it then queues one task per
channel that takes inventory pushes, so a channel that is slow or down holds up nobody:

- `push_inventory`: the listings whose quantity changed (every 10 minutes);
- `push_inventory_zero`: the out-of-stock fast path (every 2 minutes);
- `push_inventory_full`: every listing (daily).

A task given a `run_id` runs the QUEUED run staff created from the admin ("push inventory
now", on listings or on a channel), once: a second copy of the message finds it no longer
QUEUED. While a scheduled push of the channel holds the lease, it waits (re-queued with a
countdown) instead of being refused at once.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from channels.models import Channel, RunOutcome, SyncKind, SyncLease, SyncRun

from .models import InventoryLane
from .push import push_inventory as push

LEASE_WAIT_SECONDS = 15  # between two looks at a busy lease (staff's push waits for it)
LEASE_WAIT_TRIES = 40


def _result(run: SyncRun) -> dict:
    return {"run": run.pk, "outcome": run.outcome, "changed": run.changed, "failed": run.failed}


def pushing_channels() -> list[int]:
    """The channels whose inventory is pushed: enabled, syncing, taking inventory, with a URL."""
    channels = Channel.objects.filter(
        is_enabled=True, sync_enabled=True, accepts_inventory=True
    ).exclude(base_url="")
    return list(channels.order_by("pk").values_list("pk", flat=True))


def _fan_out(task) -> dict:
    ids = pushing_channels()
    for channel_id in ids:
        task.delay(channel_id=channel_id)
    return {"queued": ids}


def _lease_busy(channel_id: int) -> bool:
    return (
        SyncLease.objects.filter(
            channel_id=channel_id, kind=SyncKind.INVENTORY, expires_at__gt=timezone.now()
        )
        .exclude(holder="")
        .exists()
    )


def _claim(run_id: int) -> SyncRun | None:
    """The QUEUED run, now RUNNING and ours; None when another copy of the task has it."""
    now = timezone.now()
    if not SyncRun.objects.filter(pk=run_id, outcome=RunOutcome.QUEUED).update(
        outcome=RunOutcome.RUNNING, started_at=now, heartbeat_at=now
    ):
        return None
    return SyncRun.objects.select_related("channel", "requested_by").get(pk=run_id)


def _queued_run(task, run_id: int) -> dict:
    run = SyncRun.objects.filter(pk=run_id).only("channel_id", "outcome").first()
    if run is None or run.outcome != RunOutcome.QUEUED:
        return {"run": run_id, "outcome": "not claimed"}
    if _lease_busy(run.channel_id) and task.request.retries < LEASE_WAIT_TRIES:
        raise task.retry(countdown=LEASE_WAIT_SECONDS)
    run = _claim(run_id)
    if run is None:
        return {"run": run_id, "outcome": "not claimed"}
    params = run.params or {}
    return _result(
        push(
            run.channel,
            lane=params.get("lane", InventoryLane.CHANGED),
            full=bool(params.get("full")),
            listing_ids=params.get("listing_ids"),
            actor=run.requested_by,
            run=run,
            trigger=run.trigger,
        )
    )


@shared_task(bind=True, name="listings.tasks.push_inventory", max_retries=None)
def push_inventory(self, channel_id: int | None = None, run_id: int | None = None) -> dict:
    """Push the listings whose quantity changed (every 10 minutes), or staff's QUEUED run."""
    if run_id is not None:
        return _queued_run(self, run_id)
    if channel_id is None:
        return _fan_out(push_inventory)
    channel = Channel.objects.get(pk=channel_id)
    return _result(push(channel, lane=InventoryLane.CHANGED, actor="task:inventory_push"))


@shared_task(name="listings.tasks.push_inventory_zero")
def push_inventory_zero(channel_id: int | None = None) -> dict:
    """The out-of-stock fast path: listings that dropped to 0 (every 2 minutes)."""
    if channel_id is None:
        return _fan_out(push_inventory_zero)
    channel = Channel.objects.get(pk=channel_id)
    return _result(push(channel, lane=InventoryLane.ZERO, actor="task:inventory_push_zero"))


@shared_task(name="listings.tasks.push_inventory_full")
def push_inventory_full(channel_id: int | None = None) -> dict:
    """Every enabled mapped listing, whatever was pushed before (daily)."""
    if channel_id is None:
        return _fan_out(push_inventory_full)
    channel = Channel.objects.get(pk=channel_id)
    return _result(push(channel, full=True, actor="task:inventory_push_full"))
