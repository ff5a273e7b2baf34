"""Step 3 of delivering the outbox (`notifications.delivery`): what an attempt does to its
notification, and recording results as they come, in small groups (`Recorder`), each in one
short transaction guarded by the claim token.

An AWAITING result (the channel took the push to process later: an Amazon feed) is no failure:
the notification stays PENDING with the channel's reference (`channel_ref`), asked about
again after the channel's `retry_after` (or AWAIT_DELAY); any other answer clears the
reference, so a retry sends the push again.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from channels.models import Channel
from uniware.core.db import copy_rows, copy_types

from .conf import conf
from .models import AttemptOutcome, Notification, NotificationAttempt, NotificationState

log = logging.getLogger(__name__)

# Results are recorded in groups of at most this many, or this old (seconds): the most a
# killed worker can have sent without recording, besides its requests in flight.
RECORD_EVERY = 20
RECORD_SECONDS = 0.25
REPLY_LIMIT = 2000  # characters of a reply kept per attempt
# How long to wait before asking again about a push the channel processes later, when it
# does not say (`Reply.retry_after`).
AWAIT_DELAY = 60.0


@dataclass
class Result:
    """One attempt, and what it does to its notification."""

    outcome: str
    started_at: datetime
    duration_ms: int
    units: int
    status: int | None = None
    reply: str = ""
    error: str = ""
    failed_ids: list[str] = field(default_factory=list)
    retry_after: float | None = None
    order_unknown: bool = False  # the channel does not know the order: retrying cannot help
    reference: str = ""  # AWAITING: what the channel calls the push it is processing


@dataclass
class Claim:
    token: str
    rows: list[Notification]
    channels: dict[int, Channel]
    deadline: float  # time.monotonic() after which no request may start


@dataclass
class DeliveryReport:
    batches: int = 0
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    awaiting: int = 0  # taken by the channel, its processing report not in yet
    failed: int = 0
    held_back: int = 0
    attempts: int = 0
    next_due: datetime | None = None
    more: bool = False  # stopped by the time budget with work left

    def as_dict(self) -> dict:
        return {
            "batches": self.batches,
            "claimed": self.claimed,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "awaiting": self.awaiting,
            "failed": self.failed,
            "held_back": self.held_back,
            "attempts": self.attempts,
            "next_due": self.next_due.isoformat() if self.next_due else None,
            "more": self.more,
        }


def backoff(n: int, base: float, retry_after: float | None = None) -> float:
    """Exponential back-off with jitter (half fixed, half random), at least Retry-After."""
    cap = float(conf("MAX_RETRY_DELAY"))
    delay = min(cap, base * (2 ** (min(n, 40) - 1))) * (0.5 + 0.5 * random.random())
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def apply_result(n: Notification, result: Result, channel: Channel, now: datetime) -> None:
    """The notification after this attempt (in memory)."""
    n.attempts += 1
    n.claimed_until, n.claim_token = None, ""
    if result.outcome == AttemptOutcome.SUCCESS:
        n.state, n.delivered_at, n.retry_item_ids, n.last_error = (
            NotificationState.DELIVERED,
            now,
            None,
            "",
        )
        return
    if result.outcome == AttemptOutcome.AWAITING:  # not a failure: ask again later
        n.awaits += 1
        n.channel_ref, n.last_error = result.reference, ""
        n.next_attempt_at = now + timedelta(seconds=result.retry_after or AWAIT_DELAY)
        return
    n.last_error = result.error or result.reply[:500]
    base = max(0.01, channel.retry_base_delay)
    if result.outcome != AttemptOutcome.TRANSIENT:
        n.channel_ref = ""  # the channel's answer is in: a retry sends the push again
    if result.outcome == AttemptOutcome.TRANSIENT:
        transient = n.attempts - n.rejections - n.awaits
        limit = int(conf("MAX_TRANSIENT_ATTEMPTS"))
        if limit and transient >= limit:
            n.state = NotificationState.FAILED
            n.last_error = f"gave up after {transient} transient failures, last: {n.last_error}"
            return
        delay = backoff(transient, base, result.retry_after)
    else:
        n.rejections += 1
        if result.failed_ids:
            n.retry_item_ids = result.failed_ids
        if result.order_unknown or n.rejections >= int(conf("MAX_REJECTIONS")):
            n.state = NotificationState.FAILED
            return
        delay = backoff(n.rejections, base)
    n.next_attempt_at = now + timedelta(seconds=delay)


UPDATED_FIELDS = [
    "state",
    "attempts",
    "awaits",
    "channel_ref",
    "rejections",
    "next_attempt_at",
    "claimed_until",
    "claim_token",
    "delivered_at",
    "retry_item_ids",
    "last_error",
]


class Recorder:
    """Records results in small groups as they come (see RECORD_EVERY)."""

    def __init__(self, batch: Claim, report: DeliveryReport) -> None:
        self.batch, self.report = batch, report
        self.rows = {n.pk: n for n in batch.rows}
        self.pending: dict[int, Result | None] = {}
        self.since = 0.0

    def __call__(self, pk: int | None, result: Result | None) -> None:
        if pk is not None:
            if not self.pending:
                self.since = time.monotonic()
            self.pending[pk] = result
        if len(self.pending) >= RECORD_EVERY or (
            self.pending and time.monotonic() - self.since >= RECORD_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            rows = [self.rows[pk] for pk in self.pending]
            record(self.batch, self.pending, self.report, rows=rows)
            self.pending = {}


def record(
    batch: Claim,
    results: dict[int, Result | None],
    report: DeliveryReport,
    *,
    rows: list[Notification] | None = None,
) -> None:
    """Write the results of `rows` (default: the whole batch) in one short transaction."""
    now = timezone.now()
    delivered, released, others = [], [], []
    attempts: list[tuple] = []
    for n in batch.rows if rows is None else rows:
        result = results.get(n.pk)
        if result is None:
            released.append(n.pk)
            report.held_back += 1
            continue
        attempts.append(  # ATTEMPT_COLUMNS
            (
                n.pk,
                n.attempts + 1,
                result.started_at,
                result.duration_ms,
                result.units,
                result.status,
                result.outcome,
                result.reply,
                result.error[:REPLY_LIMIT],
            )
        )
        if result.outcome == AttemptOutcome.SUCCESS:
            delivered.append(n.pk)
            report.delivered += 1
            continue
        apply_result(n, result, batch.channels[n.channel_id], now)
        others.append(n)
        if n.state == NotificationState.FAILED:
            report.failed += 1
            log.warning("notification %s failed: %s", n, n.last_error)
        elif result.outcome == AttemptOutcome.AWAITING:
            report.awaiting += 1
        else:
            report.retrying += 1
    report.attempts += len(attempts)
    mine = Q(claim_token=batch.token)
    with transaction.atomic():
        if delivered:
            count = Notification.objects.filter(mine, pk__in=delivered).update(
                state=NotificationState.DELIVERED,
                delivered_at=now,
                attempts=F("attempts") + 1,
                claimed_until=None,
                claim_token="",
                retry_item_ids=None,
                last_error="",
            )
            if count != len(delivered):
                log.error("%d delivered notifications had lost their claim", len(delivered) - count)
        if released:
            Notification.objects.filter(mine, pk__in=released).update(
                claimed_until=None, claim_token=""
            )
        if others:
            still = set(
                Notification.objects.filter(mine, pk__in=[n.pk for n in others]).values_list(
                    "pk", flat=True
                )
            )
            Notification.objects.bulk_update(
                [n for n in others if n.pk in still], UPDATED_FIELDS, batch_size=500
            )
        write_attempts(attempts)


ATTEMPT_COLUMNS = (
    "notification_id",
    "number",
    "started_at",
    "duration_ms",
    "units",
    "http_status",
    "outcome",
    "reply",
    "error",
)


def write_attempts(attempts: list[tuple]) -> None:
    """Insert attempt rows (values in `ATTEMPT_COLUMNS` order). On PostgreSQL by COPY even
    for a group of 20: a quarter of the CPU of bulk_create, which builds a model per row, then
    SQL with an array per column."""
    if not attempts:
        return
    if connection.vendor != "postgresql":
        NotificationAttempt.objects.bulk_create(
            [
                NotificationAttempt(**dict(zip(ATTEMPT_COLUMNS, row, strict=True)))
                for row in attempts
            ]
        )
        return
    meta = NotificationAttempt._meta
    fields = [meta.get_field(column) for column in ATTEMPT_COLUMNS]
    copy_rows(meta.db_table, ATTEMPT_COLUMNS, copy_types(fields), attempts)
