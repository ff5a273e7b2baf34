"""Inventory a channel processes later (a feed): what was sent, and the processing reports read
by the next push runs (issue 17).

Amazon takes a large inventory update as a JSON_LISTINGS_FEED: the adapter's `post_inventory`
answers `PushReply.awaiting` (the feed id) instead of accepted or failed. The push then marks
the listings SENT and keeps an `InventoryFeed` with what each was sent (quantity and terms,
when they were computed). Every later push run of the channel starts by asking the adapter for
the report of each open feed (`inventory_report`, oldest first) and records it as it records a
direct answer (`listings.records`): accepted -> `pushed_*` (never over a newer push), failed ->
FAILED with the channel's message, sent again by the next run. A feed without a report after
`FEED_PATIENCE` is closed and its listings FAILED (sent again).

While a feed is open its listings are not sent again (`Push.in_flight`): the channel never
gets a newer quantity before an older one is processed. The out-of-stock lane runs every two
minutes, so a report is read within minutes of Amazon writing it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from channels.adapters import ChannelAuthError, ChannelError, ChannelUnavailable, PushReply

from .models import ChannelListing, InventoryFeed, listing_label
from .records import Row, record_accepted, record_failed, record_sent, sort_reply

FEED_PATIENCE = timedelta(hours=6)  # Amazon processes a feed in minutes; hours: it is lost


def record_submitted(push: Any, rows: list[Row], reference: str, computed_at: datetime) -> None:
    """The listings of one request the channel took as feed `reference`: SENT, and the feed
    kept open until its report is read."""
    InventoryFeed.objects.create(
        channel=push.channel,
        reference=reference[:100],
        run=push.run,
        computed_at=computed_at,
        entries=[[r.id, r.quantity, r.terms] for r in rows],
        size=len(rows),
    )
    code = push.channel.code
    answer = (
        f"Sent to {code} in feed {reference} (run #{push.run.pk}); "
        f"awaiting {code}'s processing report"
    )
    record_sent(rows, push, answer)
    push.in_flight |= {r.id for r in rows}
    push.submitted += len(rows)


def collect_reports(push: Any) -> str:
    """Record the reports of the channel's open feeds that are ready (two queries and one
    request or three per feed); why the run must stop, or "". Sets `push.in_flight` to the
    listings of the feeds still open."""
    feeds = list(
        InventoryFeed.objects.filter(channel=push.channel, closed_at__isnull=True).order_by("pk")
    )
    push.in_flight = set()
    for n, feed in enumerate(feeds):
        rows = _rows(feed)
        try:
            reply = push.adapter.inventory_report(feed.reference, [r.product_id for r in rows])
        except (ChannelUnavailable, ChannelAuthError) as exc:
            for later in feeds[n:]:
                push.in_flight |= {entry[0] for entry in later.entries}
            return f"Inventory push stopped: {exc}"
        except ChannelError as exc:  # this report only: asked again by the next run
            push.tally.problems.append(str(exc))
            reply = None
        except NotImplementedError as exc:  # the channel's type changed since: no report
            reply = PushReply("FAILED", error=f"{exc}; sent again")
        if reply is None and timezone.now() - feed.created_at > FEED_PATIENCE:
            hours = FEED_PATIENCE.total_seconds() / 3600
            why = f"no processing report of feed {feed.reference} after {hours:g} h"
            reply = PushReply("FAILED", error=f"{push.channel.code}: {why}; sent again")
        if reply is None:
            push.in_flight |= {r.id for r in rows}
            continue
        _record_report(push, feed, rows, reply)
    return ""


def _rows(feed: InventoryFeed) -> list[Row]:
    """The feed's listings in the order sent, with what each was sent (one query)."""
    names = {
        pk: (product, variant)
        for pk, product, variant in ChannelListing.objects.filter(
            pk__in=[entry[0] for entry in feed.entries]
        ).values_list("pk", "product_id", "variant_id")
    }
    rows = []
    for pk, quantity, terms in feed.entries:
        product, variant = names.get(pk, ("", ""))
        label = listing_label(product, variant)
        rows.append(Row(pk, label, product, variant, 0, 0, None, "SENT", quantity, terms))
    return rows


def _record_report(push: Any, feed: InventoryFeed, rows: list[Row], reply: PushReply) -> None:
    accepted: list[Row] = []
    failed: list[tuple[Row, str]] = []
    sort_reply(reply, rows, accepted, failed)
    code = push.channel.code
    answer = f"Accepted by {code} in feed {feed.reference} (run #{feed.run_id})"
    record_accepted(accepted, feed.computed_at, push, answer)
    record_failed(failed, push)
    feed.closed_at = timezone.now()
    feed.outcome = (
        f"{len(accepted)} accepted, {len(failed)} failed (read by run #{push.run.pk})"
        + (f": {reply.error}" if reply.error else "")
    )[:2000]
    feed.save(update_fields=["closed_at", "outcome"])
