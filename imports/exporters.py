"""Export rows of a filtered admin changelist, a chunk of records at a time.

The records are the changelist's own (its filters and search, rebuilt from the query string
with the registered ModelAdmin, in the web request or in a worker), read in primary-key order
by keyset pages of CHUNK ids; each chunk is a handful of `values()` queries, so memory stays
flat and the rows start flowing at once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.messages.storage.cookie import CookieStorage
from django.db.models import Count, QuerySet
from django.http import HttpRequest, QueryDict

from inventory.models import Inventory, Serviceability
from orders.models import CURRENT_SALE, Invoice, Order, OrderItem, Shipment

from .models import ExportKind
from .resources import (
    InventoryResource,
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


ORDER_FIELDS = [
    "pk",
    "code",
    "channel__code",
    "channel_order_id",
    "order_date",
    "payment_method",
    "status",
    "on_hold",
    "customer_name",
    "customer_phone",
    "customer_email",
    "ship_address_line1",
    "ship_address_line2",
    "ship_city",
    "ship_state",
    "ship_pincode",
    "ship_country",
    "created_at",
]


def order_line_rows(ids: list[int]) -> Iterator[dict]:
    orders = Order.objects.filter(pk__in=ids).order_by("pk").values(*ORDER_FIELDS)
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
        base = {
            "channel": order["channel__code"],
            "order_code": order["code"],
            "order_status": order["status"],
            **{k: order[k] for k in ORDER_FIELDS if "__" not in k and k != "pk"},
        }
        for line_id, members in lines.get(order["pk"], {}).items():
            sku, price, shipping = members[0][0], members[0][1], members[0][2]
            line_shipments = [shipments[m[5]] for m in members if m[5] in shipments]
            dispatched = [s[5] for s in line_shipments if s[5]]
            delivered = [s[6] for s in line_shipments if s[6]]
            yield {
                **base,
                "channel_line_id": line_id,
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
    for row in rows:
        out = {name: row[source] for name, source in UNIT_FIELDS.items()}
        out["invoice_number"] = invoices.get(row["shipment_id"], "")
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
}


def shipment_rows(ids: list[int]) -> Iterator[dict]:
    rows = (
        Shipment.objects.filter(pk__in=ids).order_by("pk").values("pk", *SHIPMENT_FIELDS.values())
    )
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
    for row in rows:
        out = {name: row[source] for name, source in SHIPMENT_FIELDS.items()}
        out["invoice_numbers"] = ", ".join(invoices.get(row["pk"], []))
        out["units"] = units.get(row["pk"], 0)
        yield out


def inventory_rows(ids: list[int]) -> Iterator[dict]:
    rows = (
        Inventory.objects.filter(pk__in=ids)
        .order_by("pk")
        .values(
            "facility__code",
            "shelf__code",
            "sku__code",
            "quantity",
            "inventory_type",
            "blocked_quantity",
            "updated_at",
        )
    )
    for row in rows:
        yield {
            "facility": row["facility__code"],
            "shelf": row["shelf__code"],
            "sku": row["sku__code"],
            "quantity": row["quantity"],
            "inventory_type": row["inventory_type"],
            "blocked_quantity": row["blocked_quantity"],
            "available": row["quantity"] - row["blocked_quantity"],
            "updated_at": row["updated_at"],
        }


def serviceability_rows(ids: list[int]) -> Iterator[dict]:
    rows = (
        Serviceability.objects.filter(pk__in=ids)
        .order_by("pk")
        .values("pincode", "payment_method", "shipping_provider__code", "priority")
    )
    for row in rows:
        yield {
            "pincode": row["pincode"],
            "payment_method": row["payment_method"],
            "shipping_provider": row["shipping_provider__code"],
            "priority": row["priority"],
        }


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
