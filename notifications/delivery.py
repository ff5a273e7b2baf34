"""Delivering the outbox: claim due notifications, send them, record every attempt.

    report = deliver_due()          # what the Celery task and the sweeper run

One round (`deliver_batch`):

1. **Claim** (a short transaction): due PENDING notifications whose order has no earlier
   notification still open that this worker cannot send now, `SELECT ... FOR UPDATE SKIP
   LOCKED`, then a per-order check against the order's open notifications (so a row another
   worker is claiming at the same instant is never overtaken), then `claimed_until` and a
   claim token are written. A claim is a lease: a crashed worker's rows are due again when
   it expires, and a sender starts no request with less than the request timeout left on
   it, so two workers never send the same notification at once.
2. **Send**, outside any transaction: orders spread over a few threads, each with its channel
   adapter (`adapter_for`: one kept-alive connection and token per thread and channel), each
   order's notifications in `id` order in one thread, one try each (`push_once`); the first
   one that is not delivered holds back the order's later ones (released unsent), other
   orders go on.
3. **Record** as results come in, not at the end of the batch: every `RECORD_EVERY`
   results or `RECORD_SECONDS`, whichever comes first, a short transaction writes one UPDATE
   for the delivered, one for the released, a bulk update for the rest, one COPY of the
   attempts; all guarded by the claim token. A worker killed mid-batch has sent at most
   that group plus its requests in flight without recording them: those (and only those)
   are sent again, with the same Idempotency-Key, once the claim expires.

Outcomes: SUCCESS delivered; FAILED / PARTIAL_SUCCESS keep only the failed items for the next
attempt; 429, 5xx, timeouts and connection errors are retried with exponential back-off and
jitter (at least `Retry-After`) without limit by default; 4xx and malformed replies (and
failed items) count as refusals, and after `MAX_REJECTIONS` of them the notification is
FAILED, visibly, holding back its order until retried or discarded in the admin. Retries wait
in the row (`next_attempt_at`), not in the broker.

Queries: a fixed number per batch (about eight for up to BATCH_SIZE notifications).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from channels.adapters import (
    ChannelError,
    ChannelReplyError,
    ChannelUnavailable,
    Reply,
    adapter_for,
    read_push_reply,
)
from channels.models import Channel
from uniware.core.faultpoints import pause_point

from .conf import conf
from .models import (
    OPEN_STATES,
    AttemptOutcome,
    Notification,
    NotificationKind,
    NotificationState,
)
from .payloads import entries_to_send
from .pickups import resolve_pending_payloads
from .recording import (
    RECORD_SECONDS,
    REPLY_LIMIT,
    Claim,
    DeliveryReport,
    Recorder,
    Result,
)

log = logging.getLogger(__name__)

PENDING = NotificationState.PENDING
LEASE_MARGIN = 5.0  # seconds kept free at the end of a lease
# Requests one attempt may make: the token, the push, and after a 401 both again; an Amazon
# cancellation feed: the token, the order's items, the feed document, its upload, the feed.
ATTEMPT_REQUESTS = 6
NO_ID = 2**63 - 1
KIND_NAMES = {kind.value: kind.label.lower() for kind in NotificationKind}  # in messages


# --- 1. claim -------------------------------------------------------------------------------


def claim(limit: int | None = None, *, now: datetime | None = None) -> Claim | None:
    limit = limit or conf("BATCH_SIZE")
    now = now or timezone.now()
    lease = float(conf("LEASE_SECONDS"))
    token = uuid.uuid4().hex
    # The order's first open notification that cannot go now (failed, in back-off, or being
    # sent): rows from it on wait. A correlated LIMIT 1 subquery on the partial index of open
    # rows, per candidate; a NOT EXISTS anti-join is planned as a nested loop over every
    # blocked row instead (quadratic when many wait, e.g. while a channel is down).
    first_blocking = (
        Notification.objects.filter(order_id=OuterRef("order_id"), state__in=OPEN_STATES)
        .filter(
            Q(state=NotificationState.FAILED)
            | Q(next_attempt_at__gt=now)
            | Q(claimed_until__gt=now)
        )
        .order_by("id")
        .values("id")[:1]
    )
    with transaction.atomic():
        candidates = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(state=PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .alias(blocked_from=Coalesce(Subquery(first_blocking), Value(NO_ID)))
            .filter(id__lt=F("blocked_from"))
            .order_by("id")[:limit]
        )
        if not candidates:
            return None
        taken = _in_order_prefixes(candidates)
        if not taken:
            return Claim(token, [], {}, 0.0)
        Notification.objects.filter(pk__in=[n.pk for n in taken]).update(
            claimed_until=now + timedelta(seconds=lease), claim_token=token
        )
        resolve = [n for n in taken if n.payload is None]
        if resolve:
            resolve_pending_payloads(resolve)
            Notification.objects.bulk_update(resolve, ["payload", "unit_count"])
    channels = Channel.objects.in_bulk({n.channel_id for n in taken})
    # the longest one attempt can take: ATTEMPT_REQUESTS, each waiting up to the timeout (a
    # kept-alive connection found closed is reopened at once, within its request)
    timeout = max((c.request_timeout for c in channels.values()), default=30.0)
    deadline = time.monotonic() + lease - ATTEMPT_REQUESTS * timeout - LEASE_MARGIN
    for n in taken:
        n.claim_token = token
    return Claim(token, taken, channels, deadline)


def _in_order_prefixes(candidates: list[Notification]) -> list[Notification]:
    """Per order, the candidates that continue the order's open notifications from the first
    one without a gap (a gap is a row that is not ours to send now)."""
    by_id = {n.pk: n for n in candidates}
    top = max(by_id)
    open_rows = (
        Notification.objects.filter(
            order_id__in={n.order_id for n in candidates}, state__in=OPEN_STATES, id__lte=top
        )
        .order_by("id")
        .values_list("order_id", "id")
    )
    stopped: set[int] = set()
    taken = []
    for order_id, pk in open_rows:
        if order_id in stopped:
            continue
        if pk in by_id:
            taken.append(by_id[pk])
        else:
            stopped.add(order_id)
    return taken


# --- 2. send --------------------------------------------------------------------------------

_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Threads that live as long as the process (their pooled connections with them); a
    forked worker process makes its own."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            threads = max(1, int(conf("SEND_THREADS")))
            _pool = (os.getpid(), ThreadPoolExecutor(threads, thread_name_prefix="notify"))
        return _pool[1]


def send(batch: Claim, emit=None) -> dict[int, Result | None]:
    """Send the claimed notifications; None for those held back unsent. `emit(pk, result)` is
    called (in this thread) as each result is known."""
    emit = emit or (lambda pk, result: None)
    lanes_count = max(1, int(conf("SEND_THREADS")))
    per_order: dict[int, list[Notification]] = defaultdict(list)
    for n in batch.rows:
        per_order[n.order_id].append(n)
    lanes: list[list[list[Notification]]] = [[] for _ in range(lanes_count)]
    for i, rows in enumerate(per_order.values()):
        lanes[i % lanes_count].append(rows)
    lanes = [lane for lane in lanes if lane]
    results: dict[int, Result | None] = {}

    def got(pk: int | None, result: Result | None) -> None:
        if pk is not None:  # None: a tick (a group waiting may be recorded)
            results[pk] = result
        emit(pk, result)

    if len(lanes) == 1:
        _send_lane(lanes[0], batch, got)
        return results
    # Lanes send in threads; this thread takes their results as they come (and records them:
    # the database connection is this thread's), and ticks itself when none comes for a while.
    done: queue.SimpleQueue = queue.SimpleQueue()

    def put(pk: int | None, result: Result | None) -> None:
        if pk is not None:  # a lane's tick would only wake this thread for nothing
            done.put((pk, result))

    futures = [_executor().submit(_send_lane, lane, batch, put) for lane in lanes]
    expected = sum(len(rows) for lane in lanes for rows in lane)
    while len(results) < expected:
        try:
            got(*done.get(timeout=RECORD_SECONDS))
        except queue.Empty:
            got(None, None)
        failed = next((f.exception() for f in futures if f.done() and f.exception()), None)
        if failed is not None:
            raise failed
    return results


def _send_lane(orders: list[list[Notification]], batch: Claim, emit) -> None:
    for rows in orders:
        held = False
        for n in rows:
            if held or time.monotonic() > batch.deadline:
                emit(n.pk, None)
                continue
            emit(None, None)  # record what waits before a request that may be slow
            pause_point("notification_send")
            result = send_one(n, batch.channels[n.channel_id])
            pause_point("notification_sent")  # sent, not yet recorded: the worst moment
            emit(n.pk, result)
            held = result.outcome != AttemptOutcome.SUCCESS


def send_one(n: Notification, channel: Channel) -> Result:
    """One attempt: one try of the push through the channel's adapter (this thread's, with
    its pooled connections and token), its reply classified."""
    body = entries_to_send(n.payload or {"orderItems": []}, n.retry_item_ids)
    units = len(body.get("orderItems") or ())
    started, clock = timezone.now(), time.perf_counter()

    def done(outcome: str, **kwargs) -> Result:
        ms = int((time.perf_counter() - clock) * 1000)
        return Result(outcome, started, ms, units, **kwargs)

    if not units:
        return done(AttemptOutcome.REJECTED, error="nothing to send: no units")
    try:
        adapter = adapter_for(channel)
        reply = adapter.push_once(
            n.kind, n.channel_order_id, body, n.idempotency_key, ref=n.channel_ref
        )
    except ChannelUnavailable as exc:  # authenticating failed, for now
        return done(AttemptOutcome.TRANSIENT, error=str(exc))
    except (ChannelError, NotImplementedError) as exc:  # no base URL, credentials refused ...
        return done(AttemptOutcome.REJECTED, error=str(exc))
    except Exception as exc:  # a bug must not leave the batch claimed: record it, go on
        log.exception("sending notification %s failed", n.pk)
        return done(AttemptOutcome.REJECTED, error=f"unexpected error: {exc!r}"[:500])
    return classify(reply, n, channel, done)


def classify(reply: Reply, n: Notification, channel: Channel, done) -> Result:
    """The outcome of a reply (channel-api.md conventions)."""
    text = reply.text[:REPLY_LIMIT]
    if reply.awaiting:
        return done(
            AttemptOutcome.AWAITING,
            status=reply.status,
            reply=text,
            reference=reply.awaiting,
            retry_after=reply.retry_after,
        )
    if not reply.ok:
        return done(
            AttemptOutcome.TRANSIENT if reply.transient else AttemptOutcome.REJECTED,
            status=reply.status,
            reply=text,
            error=reply.error,
            retry_after=reply.retry_after,
        )
    what = f"{KIND_NAMES[n.kind]} #{n.pk} of order {n.channel_order_id}"
    try:
        verdict = read_push_reply(reply.text, channel=channel.code, what=what)
    except ChannelReplyError as exc:
        return done(AttemptOutcome.MALFORMED, status=reply.status, reply=text, error=str(exc))
    if verdict.ok:
        return done(AttemptOutcome.SUCCESS, status=reply.status, reply=text)
    sent_body = entries_to_send(n.payload or {}, n.retry_item_ids)
    sent = {e.get("orderItemId") for e in sent_body.get("orderItems") or ()}
    failed = verdict.failed
    failed_ids = sorted({item_id for item_id, _ in failed if item_id in sent}) or sorted(sent)
    outcome = (
        AttemptOutcome.PARTIAL if verdict.status == "PARTIAL_SUCCESS" else AttemptOutcome.FAILED
    )
    messages = "; ".join(f"{i}: {m}" for i, m in failed if m) or verdict.error
    if verdict.order_unknown:
        messages = unknown_order_text(n, channel, messages)
    kwargs = {"failed_ids": failed_ids, "order_unknown": verdict.order_unknown}
    return done(outcome, status=reply.status, reply=text, error=messages, **kwargs)


def unknown_order_text(n: Notification, channel: Channel, said: str) -> str:
    """Why a notification the channel cannot place is FAILED at once, and what staff do."""
    return (
        f"{channel.code} does not know order {n.channel_order_id} ({said}). The order was "
        f"not pulled from {channel.code}, or the channel is misconfigured (its base URL or "
        "account points at another shop). Retrying cannot help: fix the channel and retry, "
        "or discard the notification."
    )


# --- rounds ---------------------------------------------------------------------------------


def deliver_batch(report: DeliveryReport, limit: int | None = None) -> bool:
    """One claim-send-record round; False when nothing was due."""
    batch = claim(limit)
    if batch is None:
        return False
    report.batches += 1
    if not batch.rows:  # everything due was being claimed by someone else this instant
        return False
    report.claimed += len(batch.rows)
    recorder = Recorder(batch, report)
    send(batch, recorder)
    recorder.flush()
    return True


def deliver_due(
    *, time_budget: float | None = None, max_batches: int | None = None, limit: int | None = None
) -> DeliveryReport:
    """Deliver everything due, batch after batch, until nothing is due (or the budget is
    spent: `more` is then set). `next_due` says when the next retry falls due."""
    report = DeliveryReport()
    started = time.monotonic()
    while deliver_batch(report, limit):
        if max_batches is not None and report.batches >= max_batches:
            report.more = True
            break
        if time_budget is not None and time.monotonic() - started > time_budget:
            report.more = True
            break
    report.next_due = next_due()
    return report


def next_due(now: datetime | None = None) -> datetime | None:
    """When the next back-off ends. Rows due already are either being sent, or held back by
    an earlier one (which has its own time), or FAILED-blocked (waiting for staff)."""
    now = now or timezone.now()
    rows = Notification.objects.filter(state=PENDING, next_attempt_at__gt=now)
    return rows.aggregate(at=Min("next_attempt_at"))["at"]
