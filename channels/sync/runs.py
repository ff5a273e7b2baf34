"""The bookkeeping every sync shares: its run row, the go-live gate, the lease and the cursor.

- A run (`SyncRun`) is created QUEUED, becomes RUNNING, and ends SUCCESS, PARTIAL (some orders
  failed), FAILED (the run itself could not go on), REFUSED (gate or lease) or ABANDONED (its
  worker died and the lease expired). Its counts and progress are written as it goes.
- The lease (`SyncLease`) is one row per channel and kind, taken in a short transaction under
  a row lock when free or expired, renewed after every batch and released at the end. A
  second worker or a duplicated beat finds it held and records a refusal. Applying is
  idempotent besides, so even a lease lost to a stalled worker cannot apply anything twice.
- A run whose worker died is ended ABANDONED by `reap_runs` (task `channels.tasks.reap_runs`,
  every minute): a leased run once its lease has expired (SYNC_LEASE_SECONDS), a run without
  a lease (staff's selected orders) once it has written no progress for SYNC_STALE_SECONDS.
- The cursor (`SyncCursor`) is our own "synced up to" per channel and kind, moved only when a
  window was fully fetched; staff move it back with "re-sync from".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from uniware.core.models import Tenant

from ..models import (
    SCHEDULED_KINDS,
    STATUS_SYNC_KINDS,
    Channel,
    RunOutcome,
    RunTrigger,
    SyncCursor,
    SyncError,
    SyncKind,
    SyncLease,
    SyncRun,
)
from .errors import errors_resolve

log = logging.getLogger(__name__)

NOT_LIVE = "Sync not allowed as Tenant is not Live yet"
LEASE_SECONDS = 15 * 60  # default of SYNC_LEASE_SECONDS: renewed after every batch
STALE_SECONDS = 15 * 60  # default of SYNC_STALE_SECONDS: a lease-less run without progress
REPORT_LIMIT = 2000  # per-order report lines kept on a run


def new_run(
    kind: str,
    channel: Channel | None,
    *,
    task: str,
    trigger: str = RunTrigger.SCHEDULE,
    user=None,
    params: dict | None = None,
) -> SyncRun:
    return SyncRun.objects.create(
        kind=kind,
        channel=channel,
        task=task,
        trigger=trigger,
        requested_by=user if getattr(user, "pk", None) else None,
        params=params or {},
    )


def refusal(kind: str, channel: Channel | None) -> str:
    """Why this sync may not run now ("" when it may)."""
    if kind in STATUS_SYNC_KINDS and not Tenant.get().is_live:
        return NOT_LIVE
    if channel is None:
        return ""
    if not channel.is_enabled:
        return f"Channel {channel.code} is disabled"
    if not channel.sync_enabled:
        return f"Sync is switched off for channel {channel.code}"
    if kind in STATUS_SYNC_KINDS and not channel.supports_status_sync:
        return f"Channel {channel.code} does not support status sync"
    if not channel.base_url:
        return f"Channel {channel.code} has no base URL configured"
    return ""


def refuse(run: SyncRun, message: str) -> SyncRun:
    now = timezone.now()
    run.outcome, run.message = RunOutcome.REFUSED, message
    run.started_at = run.started_at or now
    run.finished_at = now
    run.save(update_fields=["outcome", "message", "started_at", "finished_at"])
    log.info("sync run %s refused: %s", run.pk, message)
    return run


def start(run: SyncRun, *, total: int = 0) -> None:
    now = timezone.now()
    run.outcome, run.started_at, run.progress_total = RunOutcome.RUNNING, now, total
    run.heartbeat_at = now
    run.save(update_fields=["outcome", "started_at", "progress_total", "heartbeat_at"])


# --- counts and errors ----------------------------------------------------------------------


# A channel order id too long for our columns is refused at creation (orders.services.limits);
# its error row keeps the start of it (the whole order is in the error's data).
ID_SHOWN = SyncError._meta.get_field("channel_order_id").max_length


@dataclass
class Tally:
    """What a run did so far; `flush` writes counts and progress in one UPDATE."""

    run: SyncRun
    seen: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    retries: int = 0
    problems: list[str] = field(default_factory=list)  # run-level: channel calls that failed
    report: list[list[str]] = field(default_factory=list)
    report_all: bool = False

    def add(self, results) -> None:
        """Count per-order results (`apply.OrderResult`), record their errors and resolve
        the open errors of the orders that synced cleanly this time."""
        results = list(results)
        errors = []
        for r in results:
            self.seen += 1
            outcome = r.outcome
            if outcome == "CHANGED":
                self.changed += 1
            elif outcome == "UNCHANGED":
                self.unchanged += 1
            else:
                self.failed += 1
            if (self.report_all or outcome != "UNCHANGED") and len(self.report) < REPORT_LIMIT:
                self.report.append([r.code or r.channel_order_id, outcome, r.detail])
            for kind, message in r.errors:
                errors.append(
                    SyncError(
                        run=self.run,
                        channel_id=self.run.channel_id,
                        order_id=r.order_id,
                        channel_order_id=r.channel_order_id[:ID_SHOWN],
                        kind=kind,
                        message=message,
                        data=r.data,
                    )
                )
        SyncError.objects.bulk_create(errors, batch_size=1000)
        if self.run.channel_id is not None:
            errors_resolve(self.run, results)

    def channel_failed(self, message: str, orders: list[tuple[int | None, str, str]]) -> None:
        """A channel call failed for these (order id, code, channel order id): each gets the
        error, the run keeps the message."""
        from .apply import OrderResult

        self.problems.append(message)
        results = []
        for order_id, code, channel_order_id in orders:
            result = OrderResult(order_id, code, channel_order_id)
            result.error("CHANNEL", message)
            results.append(result)
        self.add(results)

    def not_tried(self, count: int) -> None:
        """Orders a stopped run never asked about: failed, without an error row each."""
        self.seen += count
        self.failed += count
        self.problems.append(f"{count} order(s) not synced: the run stopped before them.")

    def flush(self, progress: int | None = None) -> None:
        fields = {
            "seen": self.seen,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "retries": self.retries,
            "progress_done": self.seen if progress is None else progress,
            "heartbeat_at": timezone.now(),
        }
        SyncRun.objects.filter(pk=self.run.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.run, name, value)


def finish(tally: Tally, *, summary: str, stopped: str = "", extra: str = "") -> SyncRun:
    """End the run: SUCCESS, PARTIAL or FAILED, with a message a person can act on."""
    run = tally.run
    tally.flush()
    if stopped:
        outcome = RunOutcome.PARTIAL if tally.changed or tally.unchanged else RunOutcome.FAILED
    elif tally.failed or tally.problems:
        outcome = RunOutcome.PARTIAL
    else:
        outcome = RunOutcome.SUCCESS
    parts = [stopped, summary, *dict.fromkeys(tally.problems), extra]
    run.outcome = outcome
    run.message = "\n".join(p for p in parts if p)[:20000]
    run.finished_at = timezone.now()
    run.report = tally.report
    run.save(update_fields=["outcome", "message", "finished_at", "report"])
    return run


def fail(run: SyncRun, message: str) -> SyncRun:
    """The run broke on something unexpected (a bug, the database): say so, keep counts."""
    run.outcome, run.message = RunOutcome.FAILED, message[:20000]
    run.finished_at = timezone.now()
    run.save(update_fields=["outcome", "message", "finished_at"])
    return run


# --- lease ----------------------------------------------------------------------------------


class LeaseLost(Exception):
    """Another run took the lease (ours had expired): stop before doing more."""


def lease_seconds() -> int:
    return int(getattr(settings, "SYNC_LEASE_SECONDS", LEASE_SECONDS))


def lease_take(channel: Channel, kind: str, holder: str, seconds: int | None = None) -> str:
    """Take the lease of (channel, kind) for `holder`; "" when taken, else who holds it."""
    seconds = seconds or lease_seconds()
    SyncLease.objects.get_or_create(channel=channel, kind=kind)
    now = timezone.now()
    with transaction.atomic():
        lease = SyncLease.objects.select_for_update().get(channel=channel, kind=kind)
        held = lease.holder and lease.holder != holder
        if held and lease.expires_at and lease.expires_at > now:
            until = timezone.localtime(lease.expires_at).strftime("%H:%M:%S")
            return f"run #{lease.holder} (lease until {until})"
        stale = lease.holder if held else ""
        lease.holder, lease.acquired_at, lease.expires_at = (
            holder,
            now,
            now + timedelta(seconds=seconds),
        )
        lease.save(update_fields=["holder", "acquired_at", "expires_at"])
        if stale.isdigit():
            SyncRun.objects.filter(pk=int(stale), outcome=RunOutcome.RUNNING).update(
                outcome=RunOutcome.ABANDONED,
                finished_at=now,
                message=f"Abandoned: its lease expired and run #{holder} took over.",
            )
    return ""


def lease_renew(channel: Channel, kind: str, holder: str, seconds: int | None = None) -> None:
    seconds = seconds or lease_seconds()
    renewed = SyncLease.objects.filter(channel=channel, kind=kind, holder=holder).update(
        expires_at=timezone.now() + timedelta(seconds=seconds)
    )
    if not renewed:
        raise LeaseLost(f"run #{holder} lost the {kind} lease of channel {channel.code}")


def lease_release(channel: Channel, kind: str, holder: str) -> None:
    SyncLease.objects.filter(channel=channel, kind=kind, holder=holder).update(
        holder="", expires_at=None
    )


# --- runs whose worker died ---------------------------------------------------------------


def reap_runs(now: datetime | None = None) -> list[int]:
    """End ABANDONED the RUNNING runs whose worker died; returns their ids.

    A leased run is dead once it no longer holds a live lease (its worker renews the lease
    after every batch; the lease is freed too, so a worker that was only stalled stops at its
    next renewal). A run without a lease (staff's selected orders) is dead once it has written
    no progress for SYNC_STALE_SECONDS. Nothing is undone: every batch it applied was
    committed whole; the orders it had not reached are synced by the next run."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=int(getattr(settings, "SYNC_STALE_SECONDS", STALE_SECONDS)))
    live = set(
        SyncLease.objects.filter(expires_at__gt=now).exclude(holder="").values_list("holder")
    )
    reaped = []
    running = SyncRun.objects.filter(outcome=RunOutcome.RUNNING).only(
        "pk", "kind", "channel_id", "heartbeat_at", "started_at", "created_at"
    )
    for run in running:
        beat = run.heartbeat_at or run.started_at or run.created_at
        if run.kind in SCHEDULED_KINDS:
            if (str(run.pk),) in live:
                continue
            why = "its worker stopped and its lease expired"
        elif beat > stale:
            continue
        else:
            why = "its worker stopped (no progress for a while)"
        last = timezone.localtime(beat).strftime("%Y-%m-%d %H:%M:%S")
        message = (
            f"Abandoned: {why}; last progress at {last}. What it applied stays; the orders it "
            "had not reached are synced by the next run."
        )
        if SyncRun.objects.filter(pk=run.pk, outcome=RunOutcome.RUNNING).update(
            outcome=RunOutcome.ABANDONED, finished_at=now, message=message
        ):
            SyncLease.objects.filter(holder=str(run.pk), expires_at__lte=now).update(
                holder="", expires_at=None
            )
            reaped.append(run.pk)
            log.warning("sync run %s abandoned: %s", run.pk, why)
    return reaped


# --- cursor ---------------------------------------------------------------------------------


def cursor_of(channel: Channel, kind: str) -> SyncCursor:
    cursor, _ = SyncCursor.objects.get_or_create(channel=channel, kind=kind)
    return cursor


def cursor_advance(cursor: SyncCursor, up_to: datetime, run: SyncRun) -> None:
    """Move the cursor; a "re-sync from" staff set during the run stays for the next one."""
    SyncCursor.objects.filter(pk=cursor.pk).update(synced_up_to=up_to, last_run=run, resume={})
    SyncCursor.objects.filter(pk=cursor.pk, resync_from=cursor.resync_from).update(resync_from=None)


def cursor_resume_point(
    cursor: SyncCursor, up_to: datetime | None, resume: dict | None, run: SyncRun
) -> None:
    """A run part way (it may still stop) has read everything up to `up_to` and, when the
    adapter says so, goes on at `resume` (a paging token). A re-sync in progress moves its
    start; otherwise the cursor moves forward (never back)."""
    rows = SyncCursor.objects.filter(pk=cursor.pk)
    if resume is not None and resume != cursor.resume:
        rows.update(resume=resume, last_run=run)
        cursor.resume = resume
    if up_to is None:
        return
    if cursor.resync_from:
        rows.filter(resync_from=cursor.resync_from).update(resync_from=up_to, last_run=run)
        cursor.resync_from = up_to
    elif not cursor.synced_up_to or up_to > cursor.synced_up_to:
        rows.update(synced_up_to=up_to, last_run=run)
        cursor.synced_up_to = up_to


def resync_from(channel: Channel, kind: str, moment: datetime) -> SyncCursor:
    """Make the next `kind` run of the channel cover orders from `moment` again."""
    if kind not in (SyncKind.ORDER_PULL, SyncKind.STATUS, SyncKind.DELIVERY, SyncKind.RETURNS):
        raise ValueError(f"{kind} syncs have no cursor to move back")
    if moment > timezone.now():
        raise ValueError(f"Re-sync from {moment:%Y-%m-%d %H:%M} is in the future")
    cursor = cursor_of(channel, kind)
    SyncCursor.objects.filter(pk=cursor.pk).update(resync_from=moment)
    cursor.refresh_from_db()
    return cursor


def bump(run: SyncRun, **counts: int) -> None:
    """Add to a run's counters in the database (F expressions: safe from several threads)."""
    SyncRun.objects.filter(pk=run.pk).update(**{k: F(k) + v for k, v in counts.items()})


def queue_after_commit(run: SyncRun, task) -> None:
    """Send a QUEUED run's Celery task once the transaction commits; a broker that is down
    fails the run, saying so, instead of leaving it queued for ever."""

    def send() -> None:
        try:
            task.delay(run_id=run.pk)
        except Exception as exc:  # noqa: BLE001 (the broker is down: say so on the run)
            SyncRun.objects.filter(pk=run.pk, outcome=RunOutcome.QUEUED).update(
                outcome=RunOutcome.FAILED,
                finished_at=timezone.now(),
                message=f"Could not queue the task: {exc}",
            )

    transaction.on_commit(send)
