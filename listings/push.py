"""The inventory push: tell each channel the quantity each of its listings may sell (issue 16).

One run (`SyncRun` of kind INVENTORY) per channel and push, under the channel's INVENTORY
lease, so at most one push per channel runs at a time, whatever the lane or trigger:

- lane CHANGED (every 10 minutes): the listings `listings.changes.scan` found past the lane's
  cursor, plus every listing not IN_SYNC (never pushed, pending, failed: retried each run);
  those whose quantity differs from what the channel last accepted (or not accepted yet) are
  sent.
- lane ZERO (every 2 minutes, the out-of-stock fast path): the same candidates, but only the
  listings whose quantity is now 0 and whose pushed quantity is not are sent; the others are
  left PENDING for the CHANGED lane.
- full (daily, and "push inventory now" on a channel): every enabled mapped listing, sent
  whatever the channel last accepted (it corrects what the channel changed on its side).
- `listing_ids` ("push inventory now" on listings): those listings, sent.

Listings are handled in chunks of `COMPUTE_BATCH`, each under the lease and just before it is
sent: the inputs are loaded set-based (`quantity.load_inputs`), each listing's quantity and
terms computed (`quantity.listing_quantity`) and written as `wanted_*` in one statement
(a listing that now differs from what was pushed becomes PENDING), then the due ones go to
the channel in requests of `inventory_batch_size` through the adapter (which retries 429, 5xx
and timeouts with back-off) and the answers are recorded in two statements: accepted ->
`pushed_*` and IN_SYNC; named in the reply's failed list (or the whole request refused) ->
FAILED with the reason, retried by the next run. A fixed number of queries per chunk.

A channel that processes large updates later (Amazon's JSON_LISTINGS_FEED) answers a feed id
instead: the request's listings become SENT, and every later run of the channel first reads
the reports of its open feeds (`listings.feeds`); a listing in an open feed is not sent again.

Order of quantities. Pushes of a channel never overlap (the lease, renewed before each chunk:
a run that lost it stops before sending), each quantity is computed just before it is sent,
and `pushed_at` is the moment the quantity was computed: the record of a push never replaces
a newer one (`pushed_at` only moves forward). A channel that stays down (or refuses our
credentials) stops its run, FAILED (PARTIAL when some listings were accepted before), and
leaves the lane's cursor where it was; other channels run in their own tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from channels.adapters import (
    ChannelAdapter,
    ChannelAuthError,
    ChannelError,
    ChannelUnavailable,
    adapter_for,
)
from channels.models import Channel, RunTrigger, SyncKind, SyncRun
from channels.sync.runs import (
    LeaseLost,
    Tally,
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
from inventory.models import Facility
from uniware.core.actors import Actor

from . import changes, feeds
from .models import ChannelListing, InventoryLane, PushStatus, listing_label
from .quantity import ListingRule, listing_quantity, load_inputs, served_facilities
from .records import Row, json_terms, record_accepted, record_failed, sort_reply

log = logging.getLogger(__name__)

COMPUTE_BATCH = 2000  # listings computed, sent and recorded per chunk (under one lease renewal)
TASKS = {  # the task each kind of push runs as (`listings.tasks`)
    InventoryLane.CHANGED: "listings.tasks.push_inventory",
    InventoryLane.ZERO: "listings.tasks.push_inventory_zero",
    "FULL": "listings.tasks.push_inventory_full",
}
TABLE = ChannelListing._meta.db_table


@dataclass
class Push:
    """What one run works with."""

    channel: Channel
    run: SyncRun
    lane: str
    send_all: bool  # full and on-demand pushes send every listing, changed or not
    facilities: dict[int, list[int]]
    facility_code: str
    adapter: ChannelAdapter
    tally: Tally
    holder: str
    requests: int = 0
    computed: int = 0
    unchanged: int = 0
    submitted: int = 0  # sent in feeds the channel processes later
    in_flight: set[int] = field(default_factory=set)  # listings of open feeds: not sent again


def inventory_refusal(channel: Channel) -> str:
    """Why the channel's inventory may not be pushed now ("" when it may)."""
    if not channel.accepts_inventory:
        return f"Channel {channel.code} does not accept inventory pushes"
    if connection.vendor != "postgresql":  # the demo's SQLite: refused, not a crash a run
        return (
            "The inventory push needs PostgreSQL (set DATABASE_URL): it writes the listings "
            "set-based, with PostgreSQL's arrays"
        )
    return refusal(SyncKind.INVENTORY, channel)


def push_inventory(
    channel: Channel,
    *,
    lane: str = InventoryLane.CHANGED,
    full: bool = False,
    listing_ids: Iterable[int] | None = None,
    actor: Actor | None = None,
    run: SyncRun | None = None,
    trigger: str = RunTrigger.SCHEDULE,
) -> SyncRun:
    """One inventory push of the channel (see the module docstring); returns the finished
    run, also when refused (switched off, no inventory, another push holds the lease)."""
    actor = Actor.of(actor)
    ids = sorted(set(listing_ids)) if listing_ids is not None else None
    if run is None:
        params = {"lane": lane, "full": full}
        if ids is not None:
            params["listing_ids"] = ids
        task = TASKS["FULL" if full else lane]
        run = new_run(
            SyncKind.INVENTORY, channel, task=task, trigger=trigger, user=actor.user, params=params
        )
    why = inventory_refusal(channel)
    if why:
        return refuse(run, why)
    holder = str(run.pk)
    busy = lease_take(channel, SyncKind.INVENTORY, holder)
    if busy:
        return refuse(run, f"Another inventory push of channel {channel.code} is running: {busy}")
    try:
        return _run(channel, run, holder, lane=lane, full=full, ids=ids)
    except Exception as exc:
        log.exception("inventory push run %s of %s failed", run.pk, channel.code)
        return fail(run, f"Inventory push stopped by an unexpected error: {exc!r}")
    finally:
        lease_release(channel, SyncKind.INVENTORY, holder)


def _candidates(channel: Channel, lane: str, full: bool, ids: list[int] | None):
    """(listing ids to recompute, the lane's cursor and scan to advance, or None)."""
    listings = ChannelListing.objects.filter(
        channel=channel, sync_enabled=True, sku__isnull=False
    ).order_by("pk")
    if ids is not None:
        return list(listings.filter(pk__in=ids).values_list("pk", flat=True)), None
    if full:
        return list(listings.values_list("pk", flat=True)), None
    cursor, found = changes.scan(channel, lane)
    if found.listing_ids is None:
        return list(listings.values_list("pk", flat=True)), (cursor, found)
    # plus the listings not in sync: never pushed, pending, failed (the partial index)
    unsynced = listings.filter(~Q(push_status=PushStatus.IN_SYNC)).values_list("pk", flat=True)
    return sorted(set(found.listing_ids) | set(unsynced)), (cursor, found)


def _run(channel, run, holder, *, lane, full, ids) -> SyncRun:
    ids_to_do, lane_cursor = _candidates(channel, lane, full, ids)
    facilities = served_facilities([channel])
    if not facilities[channel.pk]:
        return finish_empty(run, f"No active facility serves channel {channel.code}")
    code = Facility.objects.get(pk=facilities[channel.pk][0]).code
    tally = Tally(run, report_all=run.trigger == RunTrigger.MANUAL)
    start(run, total=len(ids_to_do))
    push = Push(
        channel=channel,
        run=run,
        lane=lane,
        send_all=full or ids is not None,
        facilities=facilities,
        facility_code=code,
        adapter=adapter_for(channel),
        tally=tally,
        holder=holder,
    )
    stopped = feeds.collect_reports(push)  # earlier feeds' reports first; none: nothing sent
    for begin in range(0, 0 if stopped else len(ids_to_do), COMPUTE_BATCH):
        try:
            lease_renew(channel, SyncKind.INVENTORY, holder)
        except LeaseLost as exc:
            stopped = f"Inventory push stopped: {exc}"
            break
        stopped = _chunk(push, ids_to_do[begin : begin + COMPUTE_BATCH])
        tally.flush(progress=push.computed)
        if stopped:
            break
    if not stopped and lane_cursor is not None:
        changes.advance(*lane_cursor)
    stats = push.adapter.take_stats()
    tally.retries = stats.retries
    summary = (
        f"{push.computed} listing(s) computed, {tally.changed} accepted by {channel.code}, "
        f"{tally.failed} failed, {push.unchanged} unchanged, in {push.requests} request(s)."
    )
    if push.submitted or push.in_flight:
        summary += (
            f" {push.submitted} sent in feeds {channel.code} processes later; "
            f"{len(push.in_flight)} awaiting a processing report."
        )
    return finish(tally, summary=summary, stopped=stopped, extra=stats.summary())


def finish_empty(run: SyncRun, why: str) -> SyncRun:
    start(run)
    return finish(Tally(run), summary="", stopped=why)


def _chunk(push: Push, ids: list[int]) -> str:
    """Compute, write, send and record one chunk; why the run must stop, or ""."""
    rows, computed_at = _compute(push, ids)
    _write_wanted(rows, computed_at)
    push.computed += len(rows)
    due = [row for row in rows if _due(push, row)]
    push.unchanged += len(rows) - len(due)
    accepted: list[Row] = []
    failed: list[tuple[Row, str]] = []
    stopped = ""
    size = push.channel.inventory_batch_size
    for begin in range(0, len(due), size):
        batch = due[begin : begin + size]
        stopped = _send(push, batch, accepted, failed, computed_at)
        if stopped:
            left = len(due) - begin - len(batch)
            if left:
                push.tally.problems.append(f"{left} listing(s) not sent: the run stopped.")
            break
    record_accepted(accepted, computed_at, push)
    record_failed(failed, push)
    return stopped


def _compute(push: Push, ids: list[int]) -> tuple[list[Row], datetime]:
    """The chunk's listings with their quantity and terms, computed now (three queries)."""
    fields = ("pk", "product_id", "variant_id", "sku_id", "buffer", "pushed_quantity")
    listings = ChannelListing.objects.filter(pk__in=ids, sku__isnull=False).order_by("pk")
    rows = [
        Row(pk, listing_label(p, v), p, v, sku, buf, pushed, status)
        for pk, p, v, sku, buf, pushed, status in listings.values_list(*fields, "push_status")
    ]
    computed_at = timezone.now()
    inputs = load_inputs({r.sku_id for r in rows}, push.facilities)
    channel = push.channel
    for row in rows:
        rule = ListingRule(row.buffer, channel.inventory_zero_at_or_below)
        row.quantity, row.terms = listing_quantity(inputs[channel.pk, row.sku_id], rule)
    return rows, computed_at


def _due(push: Push, row: Row) -> bool:
    """Whether the listing is sent by this run (never while a feed with it is open)."""
    if row.id in push.in_flight:
        return False
    if push.send_all:
        return True
    if push.lane == InventoryLane.ZERO:
        return row.quantity == 0 and row.pushed != 0
    return row.status in (PushStatus.FAILED, PushStatus.NEVER) or row.pushed != row.quantity


def _write_wanted(rows: list[Row], at: datetime) -> None:
    """`wanted_*` of the chunk in one statement (only rows whose terms changed); a listing
    whose wanted quantity now differs from what the channel accepted becomes PENDING, one
    that came back to it IN_SYNC (FAILED and NEVER stay until a push succeeds)."""
    if not rows:
        return
    sql = (
        f"UPDATE {TABLE} AS t SET wanted_quantity = v.q, wanted_terms = v.terms, "
        "wanted_at = %s, updated_at = %s, push_status = CASE "
        "  WHEN t.push_status = 'IN_SYNC' AND t.pushed_quantity IS DISTINCT FROM v.q "
        "    THEN 'PENDING' "
        "  WHEN t.push_status = 'PENDING' AND t.pushed_quantity = v.q THEN 'IN_SYNC' "
        "  ELSE t.push_status END "
        "FROM unnest(%s::bigint[], %s::integer[], %s::jsonb[]) AS v(id, q, terms) "
        "WHERE t.id = v.id AND t.wanted_terms IS DISTINCT FROM v.terms"
    )
    params = [
        at,
        at,
        [r.id for r in rows],
        [r.quantity for r in rows],
        [json_terms(r.terms) for r in rows],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _entry(push: Push, row: Row) -> dict:
    return {
        "productId": row.product_id,
        "variantId": row.variant_id,
        "inventory": str(row.quantity),
        "facilityCode": push.facility_code,
    }


def _send(push: Push, batch: list[Row], accepted: list, failed: list, at: datetime) -> str:
    """One request; sorts its listings into accepted and failed (or records them sent, when
    the channel processes them later); why to stop, or ""."""
    push.requests += 1
    key = f"inventory-{push.run.pk}-{push.requests}"
    try:
        reply = push.adapter.post_inventory([_entry(push, r) for r in batch], key=key)
    except (ChannelUnavailable, ChannelAuthError) as exc:
        failed += [(row, str(exc)) for row in batch]
        return f"Inventory push stopped: {exc}"
    except ChannelError as exc:  # this request only (refused, malformed reply): go on
        failed += [(row, str(exc)) for row in batch]
        push.tally.problems.append(str(exc))
        return ""
    if reply.awaiting:
        feeds.record_submitted(push, batch, reply.awaiting, at)
        return ""
    sort_reply(reply, batch, accepted, failed)
    return ""
