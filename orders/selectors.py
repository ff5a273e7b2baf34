"""Read-only queries for the admin and the dashboard (nothing here writes to the database).

Every function runs a fixed number of queries, whatever the size of the tables, and uses only
indexed lookups (exact codes, status indexes), so it stays fast on millions of orders.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.lookups import Exact
from django.utils import timezone

from channels.models import Channel
from inventory.models import Sku
from uniware.core.models import StateChange

from .models import (
    PHONE_DIGITS,
    Invoice,
    Manifest,
    ManifestStatus,
    Order,
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistItem,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)

SEARCH_LIMIT = 1000
HISTORY_LIMIT = 300

# --- Search: exact, indexed lookups ---------------------------------------------------------


def order_ids_for_term(term: str) -> list[int] | Q:
    """Orders a search term names, tried in this order: order code or channel order id
    (unique and indexed), SKU code (orders having a unit of it), tracking number (AWB) or
    shipment code, invoice number; then the customer (`customer_filter`: e-mail, phone,
    pincode or name). Each step is one indexed query; a SKU or customer match returns a
    filter, so the list pages it by its own index."""
    term = term.strip()
    if not term:
        return []
    codes = pasted_codes(term)
    if len(codes) > 1:  # a pasted list: orders, or the orders of shipments, it names
        shipments = Shipment.objects.filter(Q(code__in=codes) | Q(tracking_number__in=codes))
        return (
            Q(code__in=codes)
            | Q(channel_order_id__in=codes)
            | Q(pk__in=shipments.values("order_id"))
        )
    ids = list(
        Order.objects.filter(Q(code=term) | Q(channel_order_id=term))
        .order_by()
        .values_list("pk", flat=True)[:SEARCH_LIMIT]
    )
    if ids:
        return ids
    sku_id = Sku.objects.filter(code=term).values_list("pk", flat=True).first()
    if sku_id is not None:
        return Q(pk__in=OrderItem.objects.filter(sku_id=sku_id).values("order_id"))
    ids = list(
        Shipment.objects.filter(Q(tracking_number=term) | Q(code=term))
        .order_by()
        .values_list("order_id", flat=True)[:SEARCH_LIMIT]
    )
    if ids:
        return ids
    ids = list(Invoice.objects.filter(code=term).values_list("shipment__order_id", flat=True))
    return ids or customer_filter(term)


def customer_filter(term: str) -> Q | list:
    """The customer a term names, by its shape: an e-mail (has @), a phone (10 or more
    digits, with or without +91 / 0), a pincode (6 digits), else a name (3 characters or
    more, any part of it, case-insensitive). Each has its own index on Order (the name a
    trigram index, `pg_trgm`), so a search stays fast at millions of orders."""
    digits = re.sub(r"[\s\-()+]", "", term)
    if "@" in term:
        return Q(customer_email__iexact=term)
    if digits.isdigit() and len(digits) >= 10:
        return Q(Exact(PHONE_DIGITS, digits[-10:]))
    if term.isdigit() and len(term) == 6:
        return Q(ship_pincode=term)
    if len(term) >= 3:
        return Q(customer_name__icontains=term)
    return []


def order_search(term: str) -> Q:
    """A filter on Order for `order_ids_for_term`."""
    found = order_ids_for_term(term)
    return found if isinstance(found, Q) else Q(pk__in=found)


def shipment_search(term: str) -> Q:
    """Shipment code or tracking number, else the shipments of the orders the term names.
    A pasted list of codes (separated by spaces, commas or lines) finds each of them."""
    term = term.strip()
    codes = pasted_codes(term)
    if len(codes) > 1:
        return Q(code__in=codes) | Q(tracking_number__in=codes) | Q(order__code__in=codes)
    ids = list(
        Shipment.objects.filter(Q(code=term) | Q(tracking_number=term))
        .order_by()
        .values_list("pk", flat=True)[:SEARCH_LIMIT]
    )
    if ids:
        return Q(pk__in=ids)
    sku_id = Sku.objects.filter(code=term).values_list("pk", flat=True).first()
    if sku_id is not None:
        return Q(pk__in=OrderItem.objects.filter(sku_id=sku_id).values("shipment_id"))
    return _of_orders(order_ids_for_term(term))


def pasted_codes(term: str) -> list[str]:
    """The codes of a pasted list ("SP-1, SP-2\nSP-3"), at most SEARCH_LIMIT of them. A
    customer's name has spaces too: only a list of code-like words (each with a digit) is
    taken as codes."""
    words = [w for w in re.split(r"[\s,;]+", term) if w]
    if re.fullmatch(r"[+\d\s()-]+", term) and 10 <= len(re.sub(r"\D", "", term)) <= 13:
        return [term]  # a phone typed with spaces ("+91 98765 43210"), not three codes
    if len(words) > 1 and all(re.search(r"\d", w) for w in words):
        return list(dict.fromkeys(words))[:SEARCH_LIMIT]
    return [term]


def picklist_shipment_ids(picklist_ids: list[int]) -> list[int]:
    """The shipments on these picklists (one query), for "invoice all" and the like."""
    return list(
        PicklistItem.objects.filter(picklist_id__in=picklist_ids)
        .order_by("shipment_id")
        .values_list("shipment_id", flat=True)
        .distinct()
    )


def manifests_of(shipment_ids: list[int]) -> list[Manifest]:
    """The manifests these shipments are on (one query)."""
    return list(
        Manifest.objects.filter(
            pk__in=Shipment.objects.filter(pk__in=shipment_ids).values("manifest_id")
        ).order_by("pk")
    )


def unit_search(term: str) -> Q:
    """Units of a SKU code, else the units of the orders the term names."""
    term = term.strip()
    sku_id = Sku.objects.filter(code=term).values_list("pk", flat=True).first()
    if sku_id is not None:
        return Q(sku_id=sku_id)
    return _of_orders(order_ids_for_term(term))


def _of_orders(found: list[int] | Q) -> Q:
    """A filter on a model with an `order` for the orders `order_ids_for_term` found."""
    if isinstance(found, Q):
        return Q(order_id__in=Order.objects.filter(found).values("pk")[:SEARCH_LIMIT])
    return Q(order_id__in=found)


def picklist_search(term: str) -> Q:
    """Picklist code, else the picklists holding the shipments the term names."""
    term = term.strip()
    if Picklist.objects.filter(code=term).exists():
        return Q(code=term)
    shipments = Shipment.objects.filter(shipment_search(term)).values("pk")
    return Q(pk__in=PicklistItem.objects.filter(shipment_id__in=shipments).values("picklist_id"))


def manifest_search(term: str) -> Q:
    """Manifest code, else the manifests of the shipments the term names."""
    term = term.strip()
    if Manifest.objects.filter(code=term).exists():
        return Q(code=term)
    ids = Shipment.objects.filter(shipment_search(term), manifest__isnull=False).values(
        "manifest_id"
    )
    return Q(pk__in=ids)


def audit_search(term: str) -> Q:
    """State changes of the order, shipment, picklist or manifest a code names."""
    term = term.strip()
    for model in (Shipment, Picklist, Manifest):
        pk = model.objects.filter(code=term).values_list("pk", flat=True).first()
        if pk is not None:
            ct = ContentType.objects.get_for_model(model)
            return Q(content_type=ct, object_id=pk)
    return _of_orders(order_ids_for_term(term))


def _of_orders(found: list[int] | Q) -> Q:
    """A filter on a model with an `order` for the orders `order_ids_for_term` found."""
    if isinstance(found, Q):
        return Q(order_id__in=Order.objects.filter(found).values("pk")[:SEARCH_LIMIT])
    return Q(order_id__in=found)


# --- Order, shipment, picklist and manifest pages --------------------------------------------


def order_units(order: Order) -> list[OrderItem]:
    """The order's units with what the page shows, grouped-by-line order (one query)."""
    return list(
        OrderItem.objects.filter(order=order)
        .select_related("sku", "facility", "shipment", "inventory__shelf")
        .order_by("channel_order_item_id", "code", "pk")
    )


def order_invoices(order: Order) -> list[Invoice]:
    """The invoices and credit notes of the order's shipments, in issue order (one query)."""
    return list(Invoice.objects.filter(shipment__order=order).order_by("pk"))


def order_open_amount(order: Order):
    """What the order is worth after cancellations: its units not cancelled (one query)."""
    left = (
        OrderItem.objects.filter(order=order)
        .exclude(status=OrderItemStatus.CANCELLED)
        .aggregate(total=Sum(F("selling_price") + F("shipping_charges")))["total"]
    )
    return left or Decimal("0.00")


def order_shipments(order: Order) -> list[Shipment]:
    return list(
        Shipment.objects.filter(order=order)
        .select_related("facility", "shipping_provider", "manifest")
        .annotate(unit_count=Count("items"))
        .order_by("pk")
    )


def order_history(order: Order, limit: int = HISTORY_LIMIT) -> list[StateChange]:
    """Every state change of the order, its units and shipments, newest first (one query on
    the (order, at) index)."""
    return list(
        StateChange.objects.filter(order=order)
        .select_related("content_type")
        .order_by("-at", "-id")[:limit]
    )


def object_history(obj, limit: int = HISTORY_LIMIT) -> list[StateChange]:
    ct = ContentType.objects.get_for_model(type(obj))
    return list(
        StateChange.objects.filter(content_type=ct, object_id=obj.pk)
        .select_related("content_type")
        .order_by("-at", "-id")[:limit]
    )


def shipment_history(shipment: Shipment, limit: int = HISTORY_LIMIT) -> list[StateChange]:
    """The shipment's own changes and its units' (one query on the order's history)."""
    ct_shipment = ContentType.objects.get_for_model(Shipment)
    ct_unit = ContentType.objects.get_for_model(OrderItem)
    unit_ids = OrderItem.objects.filter(shipment=shipment).values("pk")
    return list(
        StateChange.objects.filter(order_id=shipment.order_id)
        .filter(
            Q(content_type=ct_shipment, object_id=shipment.pk)
            | Q(content_type=ct_unit, object_id__in=unit_ids)
        )
        .select_related("content_type")
        .order_by("-at", "-id")[:limit]
    )


def shipment_units(shipment: Shipment) -> list[OrderItem]:
    return list(
        OrderItem.objects.filter(shipment=shipment)
        .select_related("sku", "inventory__shelf")
        .order_by("channel_order_item_id", "code", "pk")
    )


def picklist_items(picklist: Picklist) -> list[PicklistItem]:
    """By shelf code, then SKU (the page sorts shelves naturally, `printing.walk_key`)."""
    return list(
        PicklistItem.objects.filter(picklist=picklist)
        .select_related("shelf", "sku", "order_item", "shipment", "shipment__order")
        .order_by("shelf__code", "sku__code", "pk")
    )


def manifest_shipments(manifest: Manifest) -> list[Shipment]:
    return list(
        Shipment.objects.filter(manifest=manifest)
        .select_related("order")
        .annotate(unit_count=Count("items"))
        .order_by("pk")
    )


def orders_with_waiting_units(order_ids) -> set[int]:
    """Which of these orders still have units waiting for stock (CREATED or UNFULFILLABLE)."""
    return set(
        OrderItem.objects.filter(
            order_id__in=list(order_ids),
            status__in=[OrderItemStatus.CREATED, OrderItemStatus.UNFULFILLABLE],
        )
        .order_by()
        .values_list("order_id", flat=True)
        .distinct()
    )


# --- Dashboard ---------------------------------------------------------------------------

DASHBOARD_CACHE_KEY = "uniware:dashboard:v1"
DASHBOARD_TTL_SECONDS = 30
WAITING_SHIPMENT_STATUSES = [
    ShipmentStatus.CREATED,
    ShipmentStatus.LOCATION_NOT_SERVICEABLE,
    ShipmentStatus.PICKING,
    ShipmentStatus.PICKED,
    ShipmentStatus.PACKED,
    ShipmentStatus.READY_TO_SHIP,
    ShipmentStatus.MANIFESTED,
]


@dataclass
class DashboardFigures:
    """What the admin's front page shows; plain data so it can be cached."""

    orders_by_status: dict[str, int] = field(default_factory=dict)
    orders_by_channel: list[tuple[int, str, int]] = field(default_factory=list)  # id, code, n
    orders_on_hold: int = 0
    shipments_by_status: dict[str, int] = field(default_factory=dict)
    units_by_status: dict[str, int] = field(default_factory=dict)
    picklists_to_receive: int = 0
    manifests_open: int = 0
    computed_at: object = None

    @property
    def orders_total(self) -> int:
        return sum(self.orders_by_status.values())


def dashboard_figures(*, fresh: bool = False) -> DashboardFigures:
    """The dashboard's figures, cached for `DASHBOARD_TTL_SECONDS` so the admin's front page
    costs six grouped queries at most twice a minute, however many orders there are."""
    if not fresh:
        cached = cache.get(DASHBOARD_CACHE_KEY)
        if cached is not None:
            return cached
    figures = compute_dashboard_figures()
    cache.set(DASHBOARD_CACHE_KEY, figures, DASHBOARD_TTL_SECONDS)
    return figures


def compute_dashboard_figures() -> DashboardFigures:
    figures = DashboardFigures(computed_at=timezone.now())
    by_channel: dict[int, int] = defaultdict(int)
    # 1. Orders by (channel, status, on hold): one parallel scan of the orders table, the only
    #    query that grows with it (~170 ms per million orders on the 2-core machine).
    open_statuses = {OrderStatus.PENDING_VERIFICATION, OrderStatus.CREATED, OrderStatus.PROCESSING}
    rows = (
        Order.objects.order_by()
        .values_list("channel_id", "status", "on_hold")
        .annotate(n=Count("pk"))
    )
    for channel_id, status, on_hold, n in rows:
        figures.orders_by_status[status] = figures.orders_by_status.get(status, 0) + n
        by_channel[channel_id] += n
        if on_hold and status in open_statuses:
            figures.orders_on_hold += n
    # 2. Channel codes (a small table).
    codes = dict(Channel.objects.values_list("pk", "code"))
    figures.orders_by_channel = sorted(
        ((pk, codes.get(pk, str(pk)), n) for pk, n in by_channel.items()),
        key=lambda row: (-row[2], row[1]),
    )
    # 3. Shipments waiting for a step (status index; delivered ones are not read).
    figures.shipments_by_status = dict(
        Shipment.objects.filter(status__in=WAITING_SHIPMENT_STATUSES)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    # 4. Units that need attention (status index).
    figures.units_by_status = dict(
        OrderItem.objects.filter(
            status__in=[OrderItemStatus.UNFULFILLABLE, OrderItemStatus.LOCATION_NOT_SERVICEABLE]
        )
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    # 5. and 6. Picklists to receive, open manifests (small tables).
    figures.picklists_to_receive = Picklist.objects.filter(status=PicklistStatus.CREATED).count()
    figures.manifests_open = Manifest.objects.filter(status=ManifestStatus.CREATED).count()
    return figures


# --- Orders already there (order creation, imports) -------------------------------------------


def orders_existing(keys: set[tuple[int, str]], codes: set[str]) -> list[tuple[int, str, str]]:
    """(channel id, channel order id, code) of the orders that have one of these (channel,
    channel order id) keys or codes. One indexed query for thousands of keys; on PostgreSQL
    the keys travel as two JSON documents (json.dumps is C; psycopg adapts Python lists to
    arrays value by value, which cost more than the query)."""
    if not keys and not codes:
        return []
    if connection.vendor != "postgresql":
        return list(
            Order.objects.filter(
                Q(code__in=list(codes))
                | Q(
                    channel_id__in={k[0] for k in keys},
                    channel_order_id__in={k[1] for k in keys},
                )
            ).values_list("channel_id", "channel_order_id", "code")
        )
    table = Order._meta.db_table
    sql = (
        f"SELECT channel_id, channel_order_id, code FROM {table} "
        "WHERE code IN (SELECT jsonb_array_elements_text(%s::jsonb)) "
        f"UNION SELECT o.channel_id, o.channel_order_id, o.code FROM {table} o "
        "JOIN jsonb_to_recordset(%s::jsonb) AS k(channel_id bigint, channel_order_id text) "
        "ON o.channel_id = k.channel_id AND o.channel_order_id = k.channel_order_id"
    )
    pairs = [{"channel_id": c, "channel_order_id": o} for c, o in keys]
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(list(codes)), json.dumps(pairs)])
        return cursor.fetchall()
