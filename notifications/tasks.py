"""Celery tasks (queue "notifications"): thin wrappers around `notifications.delivery`."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from .conf import conf
from .delivery import DeliveryReport, deliver_due

log = logging.getLogger(__name__)


def _eager() -> bool:
    return bool(deliver.app.conf.task_always_eager)


def _follow_up(report: DeliveryReport) -> None:
    """Queue the next round: now when the time budget ran out with work left, or when the
    next back-off ends if that comes before the sweeper's next run (countdowns stay far
    below the broker's visibility timeout; longer waits are the sweeper's)."""
    if _eager():
        return  # eager (no broker): a countdown would run at once, over and over
    if report.more:
        deliver.apply_async()
        return
    if report.next_due is None:
        return
    wait = (report.next_due - timezone.now()).total_seconds()
    if wait < float(conf("SWEEP_INTERVAL")):
        deliver.apply_async(countdown=max(0.0, wait) + 0.05)


@shared_task(name="notifications.tasks.deliver")
def deliver() -> dict:
    """Deliver what is due: queued after every commit that wrote notifications."""
    report = deliver_due(time_budget=float(conf("TASK_TIME_BUDGET")))
    _follow_up(report)
    return report.as_dict()


@shared_task(name="notifications.tasks.sweep")
def sweep() -> dict:
    """Periodic safety net: deliver anything left behind (broker down at commit, a worker
    lost mid-batch, back-offs longer than a task waits)."""
    report = deliver_due(time_budget=float(conf("TASK_TIME_BUDGET")))
    if report.claimed:
        log.info("notification sweep: %s", report.as_dict())
    _follow_up(report)
    return report.as_dict()
