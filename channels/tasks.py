"""Celery tasks (queue "sync"): thin wrappers around `channels.sync`.

Beat calls each task without arguments; it then queues one task per channel that syncs, so
channels run side by side and a slow one holds up nobody. A task given a `run_id` runs the
QUEUED run staff created from the admin (which shows its progress), once: a second copy of
the message (Redis gives a message back when its worker died, or after the visibility timeout)
finds the run no longer QUEUED and does nothing. Status syncs refuse while the tenant is not
live: beat's call records that once, as a run without a channel. `reap_runs` ends the runs
whose worker died.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .models import Channel, RunOutcome, RunTrigger, SyncKind, SyncRun
from .sync import NOT_LIVE, run_selected
from .sync import pull_orders as pull
from .sync import sync_status as status_sync
from .sync.runs import new_run, refusal, refuse
from .sync.runs import reap_runs as reap


def _result(run: SyncRun) -> dict:
    return {"run": run.pk, "outcome": run.outcome, "changed": run.changed, "failed": run.failed}


NOT_CLAIMED = {"run": None, "outcome": "not claimed"}


def _claim(run_id: int) -> SyncRun | None:
    """The QUEUED run, now RUNNING and ours; None when another copy of the task has it."""
    now = timezone.now()
    if not SyncRun.objects.filter(pk=run_id, outcome=RunOutcome.QUEUED).update(
        outcome=RunOutcome.RUNNING, started_at=now, heartbeat_at=now
    ):
        return None
    return SyncRun.objects.select_related("channel").get(pk=run_id)


def _fan_out(task, kind: str) -> list[int]:
    """Queue `task` for every channel that syncs this kind; returns their ids."""
    channels = Channel.objects.filter(is_enabled=True, sync_enabled=True).exclude(base_url="")
    if kind != SyncKind.ORDER_PULL:
        channels = channels.filter(supports_status_sync=True)
    ids = list(channels.order_by("pk").values_list("pk", flat=True))
    for channel_id in ids:
        task.delay(channel_id=channel_id)
    return ids


def _status(task, kind: str, channel_id: int | None, run_id: int | None) -> dict:
    if run_id is not None:
        run = _claim(run_id)
        return _result(status_sync(run.channel, kind, run=run)) if run else NOT_CLAIMED
    if channel_id is None:
        if refusal(kind, None) == NOT_LIVE:
            run = new_run(kind, None, task=task.name, trigger=RunTrigger.SCHEDULE)
            return _result(refuse(run, NOT_LIVE))
        return {"queued": _fan_out(task, kind)}
    return _result(status_sync(Channel.objects.get(pk=channel_id), kind))


@shared_task(name="channels.tasks.pull_orders")
def pull_orders(channel_id: int | None = None, run_id: int | None = None) -> dict:
    """Order pull (every 10 minutes by default)."""
    if run_id is not None:
        run = _claim(run_id)
        return _result(pull(run.channel, run=run)) if run else NOT_CLAIMED
    if channel_id is None:
        return {"queued": _fan_out(pull_orders, SyncKind.ORDER_PULL)}
    return _result(pull(Channel.objects.get(pk=channel_id)))


@shared_task(name="channels.tasks.sync_status")
def sync_status(channel_id: int | None = None, run_id: int | None = None) -> dict:
    """Dispatched/cancelled status sync of open orders (every 40 minutes by default)."""
    return _status(sync_status, SyncKind.STATUS, channel_id, run_id)


@shared_task(name="channels.tasks.sync_deliveries")
def sync_deliveries(channel_id: int | None = None, run_id: int | None = None) -> dict:
    """Delivered/returned status sync of shipments in transit (daily by default)."""
    return _status(sync_deliveries, SyncKind.DELIVERY, channel_id, run_id)


@shared_task(name="channels.tasks.sync_returns")
def sync_returns(channel_id: int | None = None, run_id: int | None = None) -> dict:
    """Return sync of orders dispatched in the last 30 days (daily by default)."""
    return _status(sync_returns, SyncKind.RETURNS, channel_id, run_id)


@shared_task(name="channels.tasks.sync_selected_orders")
def sync_selected_orders(run_id: int) -> dict:
    """The admin's "Sync status from channel" for a large selection (one run per channel)."""
    run = _claim(run_id)
    return _result(run_selected(run)) if run else NOT_CLAIMED


@shared_task(name="channels.tasks.reap_runs")
def reap_runs() -> dict:
    """End the runs whose worker died (every minute: uniware.core.schedule)."""
    return {"abandoned": reap()}
