"""Export rows of a filtered admin changelist, a chunk of records at a time.

The records are the changelist's own (its filters and search, rebuilt from the query string
with the registered ModelAdmin, in the web request or in a worker), read in primary-key order
by keyset pages of CHUNK ids; each chunk is a handful of `values()` queries, so memory stays
flat and the rows start flowing at once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.messages.storage.cookie import CookieStorage
from django.db.models import Count, QuerySet
from django.http import HttpRequest, QueryDict

from inventory.models import Inventory, Serviceability
from listings.models import ChannelListing
from listings.quantity import explain
from orders.models import CURRENT_SALE, Invoice, Order, OrderItem, Shipment

from .models import ExportKind
from .resources import (
    ORDER_LEVEL,
    InventoryResource,
    ListingResource,
    OrderLineResource,
    ServiceabilityResource,
    ShipmentResource,
    UnitResource,
)

CHUNK = 1000


def changelist_queryset(model, user, query: str) -> QuerySet:
    """The records the user sees in the model's changelist with these filters and search.
    Raises `IncorrectLookupParameters` for filters the changelist refuses."""
    request = HttpRequest()
    request.method = "GET"
    request.GET = QueryDict(query or "")
    request.user = user
    request.META = {"SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    request.COOKIES = {}
    request._messages = CookieStorage(request)  # the changelist may add a message
    model_admin = admin.site._registry[model]
    changelist = model_admin.get_changelist_instance(request)
    return changelist.get_queryset(request)


def id_chunks(queryset: QuerySet, size: int = CHUNK) -> Iterator[list[int]]:
    """Primary keys of the queryset in ascending order, `size` at a time (keyset paging: no
    OFFSET, no long-open cursor)."""
    base = queryset.order_by("pk").values_list("pk", flat=True)
    last = 0
    while True:
        ids = list(base.filter(pk__gt=last)[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def _sale_invoices(shipment_ids) -> dict[int, str]:
    return dict(
        Invoice.objects.filter(CURRENT_SALE, shipment_id__in=shipment_ids).values_list(
            "shipment_id", "code"
        )
    )


def _joined(values) -> str:
    seen = []
    for v in values:
        if v and v not in seen:
            seen.append(v)
    return ", ".join(str(v) for v in seen)


def _statuses(statuses: list[str]) -> str:
    counts = Counter(statuses)
    if len(counts) == 1:
        return statuses[0]
    return ", ".join(f"{n} {status}" for status, n in counts.items())


# An order's values: those of the file's order columns (each column's attribute is an Order
# field), and those of the export-only columns read from the order itself.
ORDER_VALUES = [
    "pk",
    "channel__code",
    *(c.attribute for c in ORDER_LEVEL if c.name != "channel"),
    "code",
    "status",
    "on_hold",
    "created_at",
]


def order_line_rows(ids: list[int]) -> Iterator[dict]:
    """One row per order line: the order's values, the line's, and what became of its units
    (keys: the resource's attributes)."""
    orders = Order.objects.filter(pk__in=ids).order_by("pk").values(*ORDER_VALUES)
    lines = _order_lines(ids)
    shipments = {
        row[0]: row
        for row in Shipment.objects.filter(order_id__in=ids).values_list(
            "pk",
            "code",
            "status",
            "tracking_number",
            "shipping_provider__code",
            "dispatched_at",
            "delivered_at",
        )
    }
    invoices = _sale_invoices(list(shipments))
    for order in orders:
        order["channel"] = order.pop("channel__code")
        for line_id, members in lines.get(order["pk"], {}).items():
            sku, price, shipping = members[0][0], members[0][1], members[0][2]
            line_shipments = [shipments[m[5]] for m in members if m[5] in shipments]
            dispatched = [s[5] for s in line_shipments if s[5]]
            delivered = [s[6] for s in line_shipments if s[6]]
            yield {
                **order,
                "channel_order_item_id": line_id,
                "sku": sku,
                "quantity": len(members),
                "selling_price": price,
                "shipping_charges": shipping,
                "line_status": _statuses([m[3] for m in members]),
                "facility": _joined(m[4] for m in members),
                "shipments": _joined(s[1] for s in line_shipments),
                "shipment_status": _joined(s[2] for s in line_shipments),
                "invoice_numbers": _joined(invoices.get(s[0]) for s in line_shipments),
                "tracking_numbers": _joined(s[3] for s in line_shipments),
                "shipping_provider": _joined(s[4] for s in line_shipments),
                "dispatched_at": max(dispatched) if dispatched else None,
                "delivered_at": max(delivered) if delivered else None,
            }


def _order_lines(ids: list[int]) -> dict[int, dict[str, list]]:
    """Order id -> channel line id -> its units (SKU, prices, status, facility, shipment)."""
    units = (
        OrderItem.objects.filter(order_id__in=ids)
        .order_by("order_id", "pk")
        .values_list(
            "order_id",
            "channel_order_item_id",
            "sku__code",
            "selling_price",
            "shipping_charges",
            "status",
            "facility__code",
            "shipment_id",
        )
    )
    lines: dict[int, dict[str, list]] = defaultdict(dict)
    for order_id, line_id, *rest in units:
        lines[order_id].setdefault(line_id, []).append(rest)
    return lines


UNIT_FIELDS = {
    "unit": "code",
    "order_code": "order__code",
    "channel": "order__channel__code",
    "channel_order_id": "order__channel_order_id",
    "channel_line_id": "channel_order_item_id",
    "sku": "sku__code",
    "status": "status",
    "facility": "facility__code",
    "shelf": "inventory__shelf__code",
    "shipment": "shipment__code",
    "shipment_status": "shipment__status",
    "shipment_id": "shipment_id",
    "tracking_number": "shipment__tracking_number",
    "shipping_provider": "shipment__shipping_provider__code",
    "selling_price": "selling_price",
    "shipping_charges": "shipping_charges",
    "order_date": "order__order_date",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "dispatched_at": "shipment__dispatched_at",
    "delivered_at": "shipment__delivered_at",
    "cancellation_reason": "cancellation_reason",
}


def unit_rows(ids: list[int]) -> Iterator[dict]:
    rows = list(OrderItem.objects.filter(pk__in=ids).order_by("pk").values(*UNIT_FIELDS.values()))
    invoices = _sale_invoices({r["shipment_id"] for r in rows if r["shipment_id"]})
    for out in _renamed(rows, UNIT_FIELDS):
        out["invoice_number"] = invoices.get(out["shipment_id"], "")
        yield out


SHIPMENT_FIELDS = {
    "shipment": "code",
    "order_code": "order__code",
    "channel": "order__channel__code",
    "channel_order_id": "order__channel_order_id",
    "status": "status",
    "facility": "facility__code",
    "shipping_provider": "shipping_provider__code",
    "tracking_number": "tracking_number",
    "manifest": "manifest__code",
    "courier_status": "courier_status",
    "created_at": "created_at",
    "dispatched_at": "dispatched_at",
    "delivered_at": "delivered_at",
    "pk": "pk",
}


def shipment_rows(ids: list[int]) -> Iterator[dict]:
    rows = Shipment.objects.filter(pk__in=ids).order_by("pk").values(*SHIPMENT_FIELDS.values())
    invoices: dict[int, list[str]] = defaultdict(list)
    for shipment_id, code in (
        Invoice.objects.filter(shipment_id__in=ids)
        .order_by("pk")
        .values_list("shipment_id", "code")
    ):
        invoices[shipment_id].append(code)
    units = dict(
        OrderItem.objects.filter(shipment_id__in=ids)
        .order_by()
        .values_list("shipment_id")
        .annotate(n=Count("pk"))
    )
    for out in _renamed(rows, SHIPMENT_FIELDS):
        out["invoice_numbers"] = ", ".join(invoices.get(out["pk"], []))
        out["units"] = units.get(out["pk"], 0)
        yield out


INVENTORY_FIELDS = {
    "facility": "facility__code",
    "shelf": "shelf__code",
    "sku": "sku__code",
    "quantity": "quantity",
    "inventory_type": "inventory_type",
    "blocked_quantity": "blocked_quantity",
    "updated_at": "updated_at",
}


def inventory_rows(ids: list[int]) -> Iterator[dict]:
    rows = Inventory.objects.filter(pk__in=ids).order_by("pk").values(*INVENTORY_FIELDS.values())
    for out in _renamed(rows, INVENTORY_FIELDS):
        out["available"] = out["quantity"] - out["blocked_quantity"]
        yield out


SERVICEABILITY_FIELDS = {
    "pincode": "pincode",
    "payment_method": "payment_method",
    "shipping_provider": "shipping_provider__code",
    "priority": "priority",
}


def serviceability_rows(ids: list[int]) -> Iterator[dict]:
    rows = Serviceability.objects.filter(pk__in=ids).order_by("pk")
    yield from _renamed(rows.values(*SERVICEABILITY_FIELDS.values()), SERVICEABILITY_FIELDS)


LISTING_FIELDS = {
    "channel": "channel__code",
    "product_id": "product_id",
    "variant_id": "variant_id",
    "seller_sku": "seller_sku",
    "sku": "sku__code",
    "sync_enabled": "sync_enabled",
    "buffer": "buffer",
    "pushed_quantity": "pushed_quantity",
    "why": "pushed_terms",
    "pushed_at": "pushed_at",
    "push_status": "push_status",
}


def listing_rows(ids: list[int]) -> Iterator[dict]:
    """A listing and what its channel was last told, with why (the terms in words); the
    file imports back as it is (the export-only columns are ignored)."""
    rows = ChannelListing.objects.filter(pk__in=ids).order_by("pk")
    for out in _renamed(rows.values(*LISTING_FIELDS.values()), LISTING_FIELDS):
        out["sync_enabled"] = "yes" if out["sync_enabled"] else "no"
        out["why"] = explain(out["why"])
        out["sku"] = out["sku"] or ""
        yield out


def _renamed(rows: Iterable[dict], fields: dict[str, str]) -> Iterator[dict]:
    """Rows of `values()` keyed by the export's columns (`fields`: column -> lookup)."""
    for row in rows:
        yield {name: row[lookup] for name, lookup in fields.items()}


@dataclass(frozen=True)
class ExportSpec:
    model: type
    resource: type
    rows: Callable[[list[int]], Iterator[dict]]
    noun: str


EXPORTS = {
    ExportKind.ORDERS: ExportSpec(Order, OrderLineResource, order_line_rows, "order"),
    ExportKind.UNITS: ExportSpec(OrderItem, UnitResource, unit_rows, "unit"),
    ExportKind.SHIPMENTS: ExportSpec(Shipment, ShipmentResource, shipment_rows, "shipment"),
    ExportKind.INVENTORY: ExportSpec(Inventory, InventoryResource, inventory_rows, "stock row"),
    ExportKind.SERVICEABILITY: ExportSpec(
        Serviceability, ServiceabilityResource, serviceability_rows, "serviceability row"
    ),
    ExportKind.LISTINGS: ExportSpec(ChannelListing, ListingResource, listing_rows, "listing"),
}


def export_rows(
    kind: str, user, query: str, *, progress: Callable[[int], None] | None = None
) -> tuple[list[str], Iterator[list], list[int]]:
    """Header, a lazy stream of rows, and a counter of the records read so far."""
    spec = EXPORTS[kind]
    queryset = changelist_queryset(spec.model, user, query)
    return rows_of(spec, queryset, progress=progress)


def rows_of(spec: ExportSpec, queryset: QuerySet, *, progress=None):
    resource = spec.resource()
    counter = [0]

    def generate() -> Iterator[list]:
        for ids in id_chunks(queryset):
            yield from resource.rows(spec.rows(ids))
            counter[0] += len(ids)
            if progress is not None:
                progress(counter[0])

    return resource.export_headers(), generate(), counter
