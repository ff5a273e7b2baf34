"""Mapping channel listings to our SKUs (issue 16).

The order pull maps every channel line through its listing (`map_lines`): an existing listing
gives its SKU (a listing staff mapped wins over the SKU text the channel sends); a new one is
created, and mapped automatically only when the channel's seller SKU is exactly one of our
SKU codes (marketplaces' seller SKUs usually are ours). Otherwise nothing is guessed: the
order waits in PENDING_VERIFICATION with the reason "unmapped listing P-881/V-881-M on
FLIPKART", its units without a SKU, until staff map the listing (`map_listings`, in bulk or
one by one): then its units get the SKU and the order is accepted and allocated
(`release_waiting_orders`), unless the channel itself has not verified it yet.

A line without a productId is keyed by its seller SKU text (some channels only send that).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels.models import Channel
from inventory.models import Sku
from orders.locks import lock_orders
from orders.models import Order, OrderItem, OrderItemStatus, OrderStatus
from orders.services import order_accept
from uniware.core.actors import Actor
from uniware.core.audit import record_events

from .models import ChannelListing, PushStatus

UNMAPPED = "unmapped listing"
CHANNEL_WAITS = "the channel has not verified it yet"
Key = tuple[str, str]  # (product id, variant id)


def listing_key(product_id: str, variant_id: str, seller_sku: str) -> Key:
    return (product_id or seller_sku, variant_id if product_id else "")


def unmapped_reason(listings: Iterable[ChannelListing], channel: Channel) -> str:
    """ "unmapped listing P-881/V-881-M on FLIPKART, unmapped listing P-9 on FLIPKART"."""
    labels = sorted({listing.label for listing in listings})
    return ", ".join(f"{UNMAPPED} {label} on {channel.code}" for label in labels)


def map_lines(channel: Channel, items: Iterable) -> dict[Key, ChannelListing]:
    """The listing of each channel line (`ChannelOrderItem`s), made when new: three queries
    for a page of orders, whatever its size."""
    wanted: dict[Key, object] = {}
    for item in items:
        key = listing_key(item.product_id, item.variant_id, item.sku)
        if key[0]:
            wanted.setdefault(key, item)
    found = _listings(channel, set(wanted))
    missing = {key: item for key, item in wanted.items() if key not in found}
    if missing:
        _create(channel, missing)
        found.update(_listings(channel, set(missing)))
    return found


def _listings(channel: Channel, keys: set[Key]) -> dict[Key, ChannelListing]:
    if not keys:
        return {}
    rows = ChannelListing.objects.filter(
        channel=channel, product_id__in={product for product, _ in keys}
    ).select_related("sku")
    return {(r.product_id, r.variant_id): r for r in rows if (r.product_id, r.variant_id) in keys}


def _create(channel: Channel, missing: dict[Key, object]) -> None:
    """New listings; auto-mapped when the seller SKU is exactly one of our codes. A pull
    running at the same time may make the same ones: the unique key keeps one."""
    texts = {item.sku for item in missing.values() if item.sku}
    skus = dict(Sku.objects.filter(code__in=texts).values_list("code", "pk"))
    now = timezone.now()
    new = []
    for (product_id, variant_id), item in missing.items():
        sku_id = skus.get(item.sku)
        new.append(
            ChannelListing(
                channel=channel,
                product_id=product_id[:100],
                variant_id=variant_id[:100],
                seller_sku=item.sku[:100],
                title=item.title[:255],
                sku_id=sku_id,
                auto_mapped=sku_id is not None,
                mapped_at=now if sku_id else None,
                push_status=PushStatus.NEVER,
            )
        )
    ChannelListing.objects.bulk_create(new, ignore_conflicts=True)


@dataclass
class MapResult:
    listings: int = 0
    released: list[str] = field(default_factory=list)  # order codes accepted
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (order code, why)


def map_listings(listings, sku: Sku, *, actor=None) -> MapResult:
    """Map listings to a SKU (staff, in bulk or one by one) and release the orders that
    waited on them. Locks the listings, then (releasing) the orders, as orders/locks.py."""
    actor = Actor.of(actor)
    ids = sorted({listing.pk for listing in listings})
    if not ids:
        raise ValidationError("No listing chosen.")
    with transaction.atomic():
        rows = list(ChannelListing.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        ChannelListing.objects.filter(pk__in=ids).update(
            sku=sku,
            auto_mapped=False,
            mapped_by=actor.user,
            mapped_at=timezone.now(),
            push_status=PushStatus.PENDING,
        )
    for row in rows:
        row.sku, row.sku_id = sku, sku.pk
    result = release_waiting_orders(rows, actor=actor)
    result.listings = len(rows)
    return result


def release_waiting_orders(listings: list[ChannelListing], *, actor=None) -> MapResult:
    """Give the SKU of these (mapped) listings to the units waiting on them, then accept
    each order left with no unmapped unit whose channel has verified it. Set-based: one
    query finds the orders, one locks them, one UPDATE gives the units their SKU."""
    actor = Actor.of(actor)
    result = MapResult()
    mapped = [listing for listing in listings if listing.sku_id]
    if not mapped:
        return result
    with transaction.atomic():
        order_ids = _waiting_order_ids(mapped)
        if not order_ids:
            return result
        orders = lock_orders(order_ids)
        _give_skus(mapped, order_ids)
        still = set(
            OrderItem.objects.filter(order_id__in=order_ids, sku__isnull=True).values_list(
                "order_id", flat=True
            )
        )
        labels = ", ".join(sorted(f"{m.label} → {m.sku.code}" for m in mapped))
        record_events(
            orders.values(), transition="map_listing", actor=actor, reason=f"mapped {labels}"
        )
    for order_id in sorted(order_ids):
        _release_one(orders[order_id], order_id in still, actor, result)
    return result


def _release_one(order: Order, unmapped_left: bool, actor: Actor, result: MapResult) -> None:
    if order.status != OrderStatus.PENDING_VERIFICATION:
        return
    if unmapped_left:
        result.waiting.append((order.code, "other listings of it are still unmapped"))
        return
    if CHANNEL_WAITS in order.verification_reason or not order.verification_reason:
        Order.objects.filter(pk=order.pk).update(verification_reason=CHANNEL_WAITS)
        result.waiting.append((order.code, CHANNEL_WAITS))
        return
    try:
        order_accept(order, actor=actor)
    except ValidationError as exc:
        result.waiting.append((order.code, "; ".join(exc.messages)))
    else:
        result.released.append(order.code)


def _waiting_units(mapped: list[ChannelListing]):
    """The units without a SKU whose order's channel line is one of these listings (the
    partial index `item_unmapped_idx` holds only units without a SKU)."""
    match = reduce(
        or_,
        (
            Q(
                order__channel_id=m.channel_id,
                channel_product_id=m.product_id,
                variant_id=m.variant_id,
            )
            for m in mapped
        ),
    )
    return OrderItem.objects.filter(match, sku__isnull=True, status=OrderItemStatus.CREATED)


def _waiting_order_ids(mapped: list[ChannelListing]) -> list[int]:
    return sorted(set(_waiting_units(mapped).values_list("order_id", flat=True)))


def _give_skus(mapped: list[ChannelListing], order_ids: list[int]) -> None:
    """Each waiting unit of these orders gets its listing's SKU: one UPDATE per SKU (a
    staff mapping names one)."""
    sku_of = {(m.channel_id, m.product_id, m.variant_id): m.sku_id for m in mapped}
    units = _waiting_units(mapped).filter(order_id__in=order_ids)
    updates = defaultdict(list)
    for pk, *key in units.values_list(
        "pk", "order__channel_id", "channel_product_id", "variant_id"
    ):
        updates[sku_of[tuple(key)]].append(pk)
    for sku_id, unit_ids in updates.items():
        OrderItem.objects.filter(pk__in=unit_ids).update(sku_id=sku_id)


def channel_verified(order_id: int) -> bool:
    """The channel verified a waiting order: only its unmapped listings hold it now. True
    while one of its units still has no SKU (the caller leaves it waiting)."""
    waits = OrderItem.objects.filter(order_id=order_id, sku__isnull=True).exists()
    if waits:
        order = Order.objects.get(pk=order_id)
        reason = order.verification_reason.replace(f"; {CHANNEL_WAITS}", "")
        if reason != order.verification_reason:
            Order.objects.filter(pk=order_id).update(verification_reason=reason)
    return waits


def listings_import(rows: list[dict], *, actor=None) -> None:
    """Create or update listings from a file's rows (`imports.importers.listings`), a batch
    at a time: one bulk upsert of the plain fields, then `map_listings` per SKU named, so the
    orders waiting on a listing are released as when staff map it by hand."""
    now = timezone.now()
    ChannelListing.objects.bulk_create(
        [
            ChannelListing(
                channel_id=row["channel_id"],
                product_id=row["product_id"],
                variant_id=row["variant_id"],
                seller_sku=row["seller_sku"],
                sync_enabled=row["sync_enabled"],
                buffer=row["buffer"],
                push_status=PushStatus.PENDING,
                created_at=now,
                updated_at=now,
            )
            for row in rows
        ],
        update_conflicts=True,
        unique_fields=["channel", "product_id", "variant_id"],
        update_fields=["seller_sku", "sync_enabled", "buffer", "push_status", "updated_at"],
    )
    by_sku: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        if row.get("sku_id"):
            by_sku[row["sku_id"]].append((row["channel_id"], row["product_id"], row["variant_id"]))
    for sku in Sku.objects.filter(pk__in=list(by_sku)):
        keys = by_sku[sku.pk]
        match = reduce(or_, (Q(channel_id=c, product_id=p, variant_id=v) for c, p, v in keys))
        changed = list(ChannelListing.objects.filter(match).exclude(sku=sku))
        if changed:
            map_listings(changed, sku, actor=actor)
