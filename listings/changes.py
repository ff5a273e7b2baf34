"""Which listings' quantity may have changed since a push lane last looked (issue 16).

Every change of a listing's quantity leaves a row in one of two append-only logs:

- the stock ledger (`inventory.StockMovement`): allocation, release, dispatch, cancellation
  after picking, putaway, stock added, imports, adjustments: every write of `Inventory`;
- the audit trail (`uniware.core.StateChange`, rows with an order): units created (an order
  pulled or imported: more units waiting), cancelled before allocation, mapped to a SKU,
  accepted; none of those need move stock.

A lane's `InventoryCursor` keeps the last id it read of each. `scan` reads the rows past it,
takes their distinct SKUs (for audit rows: the SKUs of the units of their orders) and returns
the channel's sync-enabled listings of those SKUs, in one query whatever the number of rows;
it never scans the listings. A new cursor (a new channel or lane) has read nothing: its first
run recomputes every listing of the channel.

Ids are taken when a row is written but become visible when its transaction commits, so a
row can appear below ids already read (a long transaction: an import of many orders). The
cursor therefore moves only past rows older than `INVENTORY_SAFETY_SECONDS` (5 minutes by
default): each run re-reads the last minutes, which costs little because recomputing a
listing is idempotent (a listing whose quantity did not change is not pushed again). A
transaction that stays open longer than that after writing its rows could be missed: the
daily full push (`listings.tasks.push_inventory_full`) recomputes every listing and catches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from channels.models import Channel
from inventory.models import StockMovement
from orders.models import OrderItem
from uniware.core.models import StateChange

from .models import ChannelListing, InventoryCursor

SAFETY_SECONDS = 5 * 60  # default of INVENTORY_SAFETY_SECONDS


@dataclass(frozen=True)
class Scan:
    """What a lane found: the listings to recompute (None: every listing, the cursor is new)
    and how far the cursor may move once they are recomputed."""

    listing_ids: list[int] | None
    movement_to: int
    change_to: int


def safety_seconds() -> int:
    return int(getattr(settings, "INVENTORY_SAFETY_SECONDS", SAFETY_SECONDS))


def _safe_position(table: str, after: int, cutoff: datetime) -> int:
    """The last id the cursor may move to: just below the first row past `after` that is
    younger than `cutoff`, or the last row when every one is older."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT max(id), min(id) FILTER (WHERE at >= %s) FROM {table} WHERE id > %s",
            [cutoff, after],
        )
        last, first_recent = cursor.fetchone()
    if first_recent is not None:
        return max(after, first_recent - 1)
    return last if last is not None else after


def _changed_listing_ids(channel: Channel, movement_from: int, change_from: int) -> list[int]:
    """The channel's sync-enabled listings of the SKUs the rows past the cursor touched."""
    qn = connection.ops.quote_name
    listing = qn(ChannelListing._meta.db_table)
    moves = qn(StockMovement._meta.db_table)
    audit = qn(StateChange._meta.db_table)
    units = qn(OrderItem._meta.db_table)
    sql = (
        f"SELECT l.id FROM {listing} l WHERE l.channel_id = %s AND l.sync_enabled "
        f"AND l.sku_id IN ("
        f"  SELECT m.sku_id FROM {moves} m WHERE m.id > %s"
        f"  UNION"
        f"  SELECT u.sku_id FROM {audit} s JOIN {units} u ON u.order_id = s.order_id"
        f"  WHERE s.id > %s AND s.order_id IS NOT NULL AND u.sku_id IS NOT NULL"
        f") ORDER BY l.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [channel.pk, movement_from, change_from])
        return [row[0] for row in cursor.fetchall()]


def cursor_of(channel: Channel, lane: str) -> tuple[InventoryCursor, bool]:
    """The lane's cursor, and whether it was just made (has read nothing yet)."""
    return InventoryCursor.objects.get_or_create(channel=channel, lane=lane)


def scan(
    channel: Channel, lane: str, *, now: datetime | None = None
) -> tuple[InventoryCursor, Scan]:
    """The lane's cursor and the listings whose quantity may have changed past it. Five
    queries (cursor, two positions, the listings), whatever the number of rows read."""
    now = now or timezone.now()
    cursor, new = cursor_of(channel, lane)
    cutoff = now - timedelta(seconds=safety_seconds())
    moves = connection.ops.quote_name(StockMovement._meta.db_table)
    audit = connection.ops.quote_name(StateChange._meta.db_table)
    movement_to = _safe_position(moves, cursor.movement_id, cutoff)
    change_to = _safe_position(audit, cursor.change_id, cutoff)
    ids = None if new else _changed_listing_ids(channel, cursor.movement_id, cursor.change_id)
    return cursor, Scan(ids, movement_to, change_to)


def advance(cursor: InventoryCursor, found: Scan) -> None:
    """Move the cursor once every listing `found` named was recomputed (and its wanted
    quantity written, so what was not sent stays pending for the next run)."""
    InventoryCursor.objects.filter(pk=cursor.pk).update(
        movement_id=found.movement_to, change_id=found.change_to, updated_at=timezone.now()
    )
