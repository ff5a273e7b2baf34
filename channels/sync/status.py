"""Status sync: ask the channel for the current state of our orders and follow it (seed 000).

Which orders each kind asks about (Amazon-like channels: only the orders they ship):

| kind      | schedule | orders                                                          |
|-----------|----------|-----------------------------------------------------------------|
| STATUS    | 40 min   | open orders (pending verification, created, processing)         |
| DELIVERY  | daily    | orders with a shipment DISPATCHED or SHIPPED (in transit)        |
| RETURNS   | daily    | orders with a shipment dispatched in the last `return_window_days` |
| SELECTED  | manual   | the orders staff selected                                        |

plus, after "re-sync from", every order of the channel dated from then. Whatever the kind, the
answer goes through the one reconciliation table. Orders are handled in batches of
`APPLY_BATCH`: the channel is asked in requests of `status_batch_size` ids, then the batch is
applied set-based (`apply.apply_channel_orders`) and committed, the run's counts and progress
are written and the lease renewed. While a batch is applied, the next one is already being
fetched (one thread), so the channel's latency and the database work overlap.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from orders.models import Order, OrderStatus, Shipment, ShipmentStatus
from uniware.core.actors import Actor

from ..adapters import (
    ChannelAdapter,
    ChannelAuthError,
    ChannelError,
    ChannelUnavailable,
    OrdersReply,
    adapter_for,
)
from ..models import Channel, RunTrigger, SyncErrorKind, SyncKind, SyncRun
from .apply import OrderResult, OrderRow, apply_channel_orders
from .runs import (
    LeaseLost,
    Tally,
    cursor_advance,
    cursor_of,
    fail,
    finish,
    lease_release,
    lease_renew,
    lease_take,
    new_run,
    refusal,
    refuse,
    start,
)

log = logging.getLogger(__name__)

APPLY_BATCH = 1000  # orders per transaction: about 1 s of row locks, 42 queries
TASKS = {
    SyncKind.STATUS: "channels.tasks.sync_status",
    SyncKind.DELIVERY: "channels.tasks.sync_deliveries",
    SyncKind.RETURNS: "channels.tasks.sync_returns",
    SyncKind.SELECTED: "channels.tasks.sync_selected_orders",
}
OPEN = [OrderStatus.PENDING_VERIFICATION, OrderStatus.CREATED, OrderStatus.PROCESSING]
IN_TRANSIT = [ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED]


def candidates(channel: Channel, kind: str, *, resync_from=None, now=None) -> list[OrderRow]:
    """The orders a scheduled sync of this kind asks the channel about, oldest first."""
    now = now or timezone.now()
    if kind == SyncKind.STATUS:
        scope = Q(status__in=OPEN)
    elif kind == SyncKind.DELIVERY:
        scope = Q(Exists(Shipment.objects.filter(order=OuterRef("pk"), status__in=IN_TRANSIT)))
    elif kind == SyncKind.RETURNS:
        since = now - timedelta(days=channel.return_window_days)
        shipped = Shipment.objects.filter(
            order=OuterRef("pk"),
            status__in=[*IN_TRANSIT, ShipmentStatus.DELIVERED],
            dispatched_at__gte=since,
        )
        scope = Q(Exists(shipped))
    else:
        raise ValueError(f"{kind} is not a scheduled status sync")
    if resync_from is not None:
        scope |= Q(order_date__gte=resync_from)
    orders = Order.objects.filter(channel=channel).filter(scope)
    if channel.status_sync_channel_shipped_only:
        orders = orders.filter(third_party_shipping=True)
    rows = orders.order_by("pk").values_list("pk", "code", "channel_order_id", "status")
    return [OrderRow(*row) for row in rows]


def sync_status(
    channel: Channel,
    kind: str,
    *,
    run: SyncRun | None = None,
    trigger: str = RunTrigger.SCHEDULE,
    user=None,
    order_ids: list[int] | None = None,
) -> SyncRun:
    """One status-sync run of `kind` for the channel (SELECTED: of `order_ids`); returns the
    finished run, also when refused (not live, switched off, another run holds the lease)."""
    if kind == SyncKind.SELECTED and order_ids is None:
        order_ids = list((run.params if run else {}).get("order_ids", []))
    params = {"order_ids": order_ids} if kind == SyncKind.SELECTED and run is None else None
    run = run or new_run(kind, channel, task=TASKS[kind], trigger=trigger, user=user, params=params)
    why = refusal(kind, channel)
    if why:
        return refuse(run, why)
    holder = str(run.pk)
    leased = kind != SyncKind.SELECTED  # staff's syncs never wait for the schedule's
    if leased:
        busy = lease_take(channel, kind, holder)
        if busy:
            label = SyncKind(kind).label
            return refuse(
                run, f"Another “{label}” run of channel {channel.code} is running: {busy}"
            )
    try:
        return _sync(run, channel, kind, holder, order_ids, leased)
    except Exception as exc:
        log.exception("status sync run %s of %s failed", run.pk, channel.code)
        return fail(run, f"Status sync stopped by an unexpected error: {exc!r}")
    finally:
        if leased:
            lease_release(channel, kind, holder)


def _selected(channel: Channel, order_ids: list[int], tally: Tally) -> list[OrderRow]:
    rows = list(
        Order.objects.filter(channel=channel, pk__in=order_ids)
        .order_by("pk")
        .values_list("pk", "code", "channel_order_id", "status", "third_party_shipping")
    )
    if not channel.status_sync_channel_shipped_only:
        return [OrderRow(*row[:4]) for row in rows]
    why = f"not synced: {channel.code} syncs only the orders it ships itself"
    skipped = [
        OrderResult(pk, code, coid, reasons=[why])
        for pk, code, coid, _, third_party in rows
        if not third_party
    ]
    tally.add(skipped)
    return [OrderRow(*row[:4]) for row in rows if row[4]]


def _fetch(adapter: ChannelAdapter, batch: list[OrderRow]) -> OrdersReply:
    return adapter.fetch_order_statuses([row.channel_order_id for row in batch])


def _sync(run, channel, kind, holder, order_ids, leased) -> SyncRun:
    begun = timezone.now()
    cursor = cursor_of(channel, kind) if leased else None
    tally = Tally(run, report_all=run.trigger == RunTrigger.MANUAL)
    if kind == SyncKind.SELECTED:
        rows = _selected(channel, order_ids or [], tally)
    else:
        rows = candidates(channel, kind, resync_from=cursor.resync_from, now=begun)
        run.window_from, run.window_to = cursor.resync_from, begun
        run.save(update_fields=["window_from", "window_to"])
    start(run, total=len(rows) + tally.seen)
    tally.flush()
    actor = Actor.of(f"task:{kind.lower()}_sync:{channel.code}")
    adapter = adapter_for(channel)
    batches = [rows[i : i + APPLY_BATCH] for i in range(0, len(rows), APPLY_BATCH)]
    stopped = ""
    # One thread asks the channel for the next batch while this one applies the current.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sync-{channel.code}") as pool:
        pending: Future | None = pool.submit(_fetch, adapter, batches[0]) if batches else None
        for n, batch in enumerate(batches):
            future, pending = pending, None
            try:
                reply = future.result()
            except ChannelError as exc:
                tally.channel_failed(str(exc), [(r.id, r.code, r.channel_order_id) for r in batch])
                if isinstance(exc, ChannelAuthError | ChannelUnavailable):
                    left = sum(len(b) for b in batches[n + 1 :])
                    stopped = f"Status sync stopped: {exc}"
                    if left:  # counted, not one error row each: the next run tries again
                        tally.not_tried(left)
                    break
                reply = None
            if reply is not None and reply.stopped:
                # the channel stopped answering part way: apply what it answered, then stop
                _apply(batch, reply, tally, actor, channel.code)
                left = len(reply.not_asked) + sum(len(b) for b in batches[n + 1 :])
                stopped = f"Status sync stopped: {reply.stopped}"
                if left:
                    tally.not_tried(left)
                tally.flush()
                break
            if n + 1 < len(batches):
                pending = pool.submit(_fetch, adapter, batches[n + 1])
            if reply is not None:
                _apply(batch, reply, tally, actor, channel.code)
            tally.retries = adapter.stats.retries
            tally.flush()
            if leased:
                try:
                    lease_renew(channel, kind, holder)
                except LeaseLost as exc:
                    stopped = f"Status sync stopped: {exc}"
                    break
        if pending is not None:
            pending.cancel()
    stats = adapter.take_stats()
    tally.retries = stats.retries
    if leased and not stopped and not tally.problems:
        cursor_advance(cursor, begun, run)
    summary = (
        f"{tally.seen} order(s) seen: {tally.changed} changed, {tally.unchanged} unchanged, "
        f"{tally.failed} failed."
    )
    return finish(tally, summary=summary, stopped=stopped, extra=stats.summary())


def _apply(batch: list[OrderRow], reply: OrdersReply, tally: Tally, actor, channel: str) -> None:
    """Apply one batch in one transaction; orders the channel did not answer properly get
    the error and wait for the next run."""
    by_id = {o.id: o for o in reply.orders}
    bad = {oid: (SyncErrorKind.MALFORMED, why) for oid, why in reply.problems}
    bad |= {oid: (SyncErrorKind.CHANNEL, why) for oid, why in reply.unanswered.items()}
    tally.problems += dict.fromkeys(reply.unanswered.values())
    unasked = set(reply.not_asked)  # counted by the caller as not tried
    batch = [r for r in batch if r.channel_order_id not in unasked]
    rows = [r for r in batch if r.channel_order_id not in bad]
    skipped = []
    for r in batch:
        if r.channel_order_id in bad:
            result = OrderResult(r.id, r.code, r.channel_order_id)
            result.error(*bad[r.channel_order_id])
            skipped.append(result)
    with transaction.atomic():
        results = apply_channel_orders(rows, by_id, actor=actor, channel=channel)
        tally.add([*results, *skipped])
