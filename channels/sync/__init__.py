"""Order pull and status sync from channels (seed 000).

    pull_orders(channel)                     # new orders, created once and allocated
    sync_status(channel, SyncKind.STATUS)    # a scheduled status sync of one channel
    sync_selected(order_ids, user=...)       # the admin's "Sync status from channel"
    resync_from(channel, kind, moment)       # the next run of that kind reaches back to moment

Each returns the `SyncRun`(s) it recorded. The Celery tasks (`channels.tasks`) are thin
wrappers around these.
"""

from __future__ import annotations

from collections import defaultdict

from orders.models import Order

from ..models import Channel, RunTrigger, SyncKind, SyncRun
from .pull import pull_orders
from .runs import NOT_LIVE, new_run, refusal, refuse, resync_from
from .status import TASKS, candidates, sync_status

__all__ = [
    "NOT_LIVE",
    "candidates",
    "plan_selected",
    "pull_orders",
    "resync_from",
    "run_selected",
    "sync_selected",
    "sync_status",
]


def plan_selected(order_ids, *, user=None, task: str = "") -> list[SyncRun]:
    """QUEUED runs, one per channel of the selected orders, each holding its order ids
    (a run that cannot start is recorded REFUSED right away)."""
    by_channel: dict[int, list[int]] = defaultdict(list)
    for pk, channel_id in Order.objects.filter(pk__in=list(order_ids)).values_list(
        "pk", "channel_id"
    ):
        by_channel[channel_id].append(pk)
    runs = []
    for channel in Channel.objects.filter(pk__in=list(by_channel)).order_by("code"):
        ids = sorted(by_channel[channel.pk])
        run = new_run(
            SyncKind.SELECTED,
            channel,
            task=task or TASKS[SyncKind.SELECTED],
            trigger=RunTrigger.MANUAL,
            user=user,
            params={"order_ids": ids},
        )
        run.progress_total = len(ids)
        run.save(update_fields=["progress_total"])
        why = refusal(SyncKind.SELECTED, channel)
        if why:
            refuse(run, why)
        runs.append(run)
    return runs


def sync_selected(order_ids, *, user=None, task: str = "") -> list[SyncRun]:
    """Sync the selected orders now, channel by channel; the finished runs."""
    runs = plan_selected(order_ids, user=user, task=task)
    return [run_selected(run) for run in runs]


def run_selected(run: SyncRun) -> SyncRun:
    if run.is_finished:
        return run
    return sync_status(run.channel, SyncKind.SELECTED, run=run)
