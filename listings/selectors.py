"""Queries of listings for the admin (nothing here writes)."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from inventory.models import Sku
from orders.models import OrderItem

from .models import ChannelListing

SUGGESTIONS = 5


def waiting_orders_count():
    """An annotation: how many orders wait on a listing (their units without a SKU)."""
    units = (
        OrderItem.objects.filter(
            sku__isnull=True,
            order__channel_id=OuterRef("channel_id"),
            channel_product_id=OuterRef("product_id"),
            variant_id=OuterRef("variant_id"),
        )
        .order_by()
        .values("channel_product_id")
        .annotate(n=Count("order_id", distinct=True))
        .values("n")
    )
    return Coalesce(Subquery(units, output_field=IntegerField()), 0)


def unmapped_listings() -> QuerySet[ChannelListing]:
    """Listings without a SKU, with `waiting_orders`: the work list of staff who map."""
    return (
        ChannelListing.objects.filter(sku__isnull=True)
        .select_related("channel")
        .annotate(waiting_orders=waiting_orders_count())
    )


def listing_suggestions(listing: ChannelListing) -> list[Sku]:
    """Up to five SKUs the listing may be: the seller SKU as a code (any case), codes that
    contain it or it contains, then names sharing the title's words (two queries)."""
    text = (listing.seller_sku or listing.product_id).strip()
    found: list[Sku] = []
    if text:
        found = list(
            Sku.objects.filter(
                Q(code__iexact=text) | Q(code__icontains=text) | Q(barcode=text)
            ).order_by("code")[:SUGGESTIONS]
        )
    words = [w for w in (listing.title or "").replace(",", " ").split() if len(w) >= 3][:4]
    if len(found) < SUGGESTIONS and words:
        by_name = Q()
        for word in words:
            by_name &= Q(name__icontains=word)
        more = Sku.objects.filter(by_name).exclude(pk__in=[s.pk for s in found]).order_by("code")
        found += list(more[: SUGGESTIONS - len(found)])
    return found
