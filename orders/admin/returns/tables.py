"""What the change pages show of returns: the putaways of a return manifest or pickup, and on
the order page its returns, the units on putaways and its follow-up orders."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count
from django.utils.html import format_html

from inventory.models import PutawayItem
from uniware.core.admin_utils import Table, link, status_badge

from ...models import Order, ReversePickup, ReversePickupItem, Shipment
from ...services.returns.common import RETURN_PATH
from ..common import when


def putaways_table(putaways) -> Table:
    table = Table(
        "Putaways",
        ["Putaway", "Type", "Status", "Facility", "Units", "Created", "Done"],
        empty="No putaways.",
    )
    for p in putaways.select_related("facility").order_by("pk"):
        table.add(
            link(p),
            p.get_putaway_type_display(),
            status_badge(p.status, p.get_status_display()),
            p.facility.code,
            p.item_count,
            when(p.created_at),
            when(p.completed_at),
        )
    return table


def order_return_tables(order: Order, request=None) -> list[Table]:
    """Returns, putaways and follow-up orders of an order, the tables that have rows (a
    fixed number of queries). A section of the order page (`OrderAdmin.sections`)."""
    item_rows = PutawayItem.objects.filter(order_item__order=order).select_related(
        "putaway", "order_item", "shelf"
    )
    tables = [
        _returns_table(order, item_rows),
        _putaway_units_table(item_rows),
        _follow_ups_table(order),
    ]
    # Shown only when there is something to show: most orders are never returned.
    return [t for t in tables if t.rows or t.note]


def _returns_table(order: Order, item_rows) -> Table:
    """Courier returns (shipments on the return path), then customer returns (pickups)."""
    returns = Table(
        "Returns",
        ["Return", "Kind", "Status", "Units", "Courier / AWB", "Putaway"],
        empty="No returns.",
    )
    courier = (
        Shipment.objects.filter(order=order, status__in=RETURN_PATH)
        .select_related("return_manifest_item__return_manifest")
        .annotate(unit_count=Count("items"))
        .order_by("pk")
    )
    putaway_of_unit = {i.order_item_id: i for i in item_rows}
    putaway_of_shipment = {i.order_item.shipment_id: i.putaway for i in item_rows}
    for s in courier:
        manifest = getattr(getattr(s, "return_manifest_item", None), "return_manifest", None)
        returns.add(
            format_html(
                "{} {}", link(s), format_html("(on {})", link(manifest)) if manifest else ""
            ),
            "Courier return (RTO)",
            status_badge(s.status),
            s.unit_count,
            s.tracking_number or "—",
            link(putaway_of_shipment.get(s.pk)),
        )
    pickups = ReversePickup.objects.filter(order=order).annotate(n=Count("items")).order_by("pk")
    members: dict[int, list[int]] = defaultdict(list)
    for pickup_id, unit_id in ReversePickupItem.objects.filter(
        reverse_pickup__order=order
    ).values_list("reverse_pickup_id", "order_item_id"):
        members[pickup_id].append(unit_id)
    for p in pickups:
        putaway = next(
            (putaway_of_unit[u].putaway for u in members[p.pk] if u in putaway_of_unit), None
        )
        returns.add(
            link(p),
            "Customer return (reverse pickup)",
            status_badge(p.status),
            p.n,
            f"{p.courier_name or p.courier_code} {p.return_awb}".strip() or "—",
            link(putaway),
        )
    return returns


def _putaway_units_table(item_rows) -> Table:
    table = Table(
        "Units on putaways",
        ["Unit", "Putaway", "Type", "Status", "Shelf", "Inventory type"],
        empty="No unit of this order is on a putaway.",
    )
    for item in sorted(item_rows, key=lambda i: i.pk):
        table.add(
            item.order_item.code,
            link(item.putaway),
            item.putaway.get_putaway_type_display(),
            status_badge(item.putaway.status, item.putaway.get_status_display()),
            item.shelf.code if item.shelf_id else "—",
            item.inventory_type or "—",
        )
    return table


def _follow_ups_table(order: Order) -> Table:
    """Its reshipment and replacement orders, and the order it follows up (if it does)."""
    table = Table("Reshipment and replacement orders", ["Order", "Kind", "Status"], empty="")
    for o in Order.objects.filter(source_order=order).order_by("pk"):
        table.add(link(o), o.get_kind_display(), status_badge(o.status))
    if order.source_order_id:
        table.note = format_html(
            "This {} follows up order {}.",
            order.get_kind_display().lower(),
            link(Order.objects.get(pk=order.source_order_id)),
        )
    return table
