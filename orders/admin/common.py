"""Read-only tables shown on the change pages of orders, shipments, picklists and manifests."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from uniware.core.admin_utils import Table, changelist_url, link, status_badge
from uniware.core.models import StateChange

from .. import selectors
from ..models import Invoice, Manifest, OrderItem, OrderStatus, Picklist, Shipment
from ..printing import walk_key


def when(value) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


def history_table(rows: list[StateChange], *, more_url: str = "") -> Table:
    table = Table(
        "History",
        ["When", "Object", "Transition", "Status", "By", "Reason"],
        empty="No state changes recorded.",
    )
    for change in rows:
        kind = change.content_type.model_class()
        kind_name = kind._meta.verbose_name if kind else change.content_type.model
        if change.from_state == change.to_state:
            status = status_badge(change.to_state)
        else:
            moved = f"{change.from_state or '∅'} → {change.to_state}"
            status = status_badge(change.to_state, moved)
        table.add(
            when(change.at),
            format_html("{} <span class='quiet'>{}</span>", change.object_code, kind_name),
            change.transition.replace("_", " "),
            status,
            change.actor,
            change.reason or "",
        )
    if len(rows) >= selectors.HISTORY_LIMIT and more_url:
        table.note = format_html(
            'Showing the latest {} changes. <a href="{}">See all</a>.',
            selectors.HISTORY_LIMIT,
            more_url,
        )
    return table


def units_by_line_table(units: Iterable[OrderItem], *, title: str = "Units") -> Table:
    """Units grouped under their channel line (a line of quantity 3 is three units)."""
    table = Table(
        title,
        ["Unit", "Status", "Facility", "Shelf", "Shipment", "Price", "Note"],
        empty="No units.",
    )
    lines: dict[str, list[OrderItem]] = {}
    for unit in units:
        lines.setdefault(unit.channel_order_item_id, []).append(unit)
    for line_id, members in lines.items():
        first = members[0]
        table.add(
            format_html(
                "Line <strong>{}</strong> · SKU <strong>{}</strong> {} · {} × {}",
                line_id,
                first.sku.code if first.sku_id else "unmapped listing",
                first.title or (first.sku.name if first.sku_id else first.channel_product_id),
                len(members),
                first.selling_price,
            ),
            group=True,
        )
        for unit in members:
            table.add(
                unit.code,
                status_badge(unit.status),
                unit.facility.code if unit.facility_id else "—",
                unit.inventory.shelf.code if unit.inventory_id else "—",
                link(unit.shipment) if unit.shipment_id else "—",
                unit.selling_price,
                unit.cancellation_reason,
            )
    return table


def shipments_table(shipments: Iterable[Shipment], *, show_order: bool = False) -> Table:
    columns = ["Shipment", "Status", "Facility", "Provider", "Tracking number", "Units"]
    if show_order:
        columns = ["Shipment", "Order", "Status", "Tracking number", "Units"]
    table = Table("Shipments", columns, empty="No shipments yet.")
    for s in shipments:
        if show_order:
            table.add(
                link(s),
                link(s.order),
                status_badge(s.status),
                s.tracking_number or "—",
                s.unit_count,
            )
        else:
            table.add(
                link(s),
                status_badge(s.status),
                s.facility.code,
                s.shipping_provider.code if s.shipping_provider_id else "—",
                s.tracking_number or "—",
                s.unit_count,
            )
    return table


def invoices_table(invoices: Iterable[Invoice]) -> Table:
    table = Table("Invoices", ["Number", "Type", "Amount", "Date"], empty="Not invoiced yet.")
    for invoice in invoices:
        table.add(
            link(invoice, invoice.code),
            invoice.get_invoice_type_display(),
            invoice.total_amount,
            when(invoice.created_at),
        )
    return table


def invoice_lines_table(invoice: Invoice) -> Table:
    """The invoice's lines as issued: what its PDF prints (CGST + SGST, or IGST)."""
    table = Table(
        "Lines",
        [
            "#",
            "Description",
            "HSN",
            "Qty",
            "Unit price",
            "Taxable",
            "CGST",
            "SGST",
            "IGST",
            "Cess",
            "Total",
        ],
        empty="No lines (issued before GST data was kept).",
    )
    for line in invoice.lines.order_by("position"):
        table.add(
            line.position,
            line.description,
            line.hsn,
            line.quantity,
            line.unit_price,
            line.taxable_value,
            *(
                f"{amount} ({rate.normalize():f} %)" if amount else "—"
                for rate, amount in (
                    (line.cgst_rate, line.cgst),
                    (line.sgst_rate, line.sgst),
                    (line.igst_rate, line.igst),
                    (line.cess_rate, line.cess),
                )
            ),
            line.total,
        )
    return table


def shipment_tables(shipment: Shipment) -> list[Table]:
    more = changelist_url(StateChange, order__id__exact=shipment.order_id)
    return [
        units_by_line_table(selectors.shipment_units(shipment)),
        invoices_table(shipment.invoices.order_by("pk")),
        history_table(selectors.shipment_history(shipment), more_url=more),
    ]


def picklist_tables(picklist: Picklist) -> list[Table]:
    """What to pick, shelf by shelf in walk order (SKU × quantity, not a row per unit), then
    its shipments, each marked when its order is held or cancelled."""
    items = selectors.picklist_items(picklist)
    walk = Table("To pick, in walk order", ["Shelf", "SKU", "Name", "Quantity"], empty="No items.")
    counts: dict[tuple[str, str], list] = {}
    for item in items:
        shelf = item.shelf.code if item.shelf_id else "—"
        counts.setdefault((shelf, item.sku.code), [item.sku.name, 0])[1] += 1
    for (shelf, sku), (name, quantity) in sorted(
        counts.items(), key=lambda pair: (walk_key(pair[0][0]), pair[0][1])
    ):
        walk.add(shelf, sku, name, quantity)
    shipments = {item.shipment_id: item.shipment for item in items}
    table = Table("Shipments", ["Shipment", "Order", "Status"], empty="No shipments.")
    for shipment in shipments.values():
        table.add(link(shipment), link(shipment.order), shipment_state(shipment))
    table.note = format_html(
        '<a href="{}">Open these {} shipments in the shipments list</a>',
        changelist_url(Shipment, picklist=picklist.pk),
        len(shipments),
    )
    return [walk, table, history_table(selectors.object_history(picklist))]


def shipment_state(shipment: Shipment):
    """A shipment's status with what will make actions refuse it: its order on hold or
    cancelled, or re-packing needed (the order must be loaded with it)."""
    badges = [status_badge(shipment.status)]
    if shipment.repack_reason:
        badges.append(status_badge("ON_HOLD", "RE-PACK"))
    if shipment.order.on_hold:
        badges.append(status_badge("ON_HOLD", "ORDER ON HOLD"))
    if shipment.order.status == OrderStatus.CANCELLED:
        badges.append(status_badge("CANCELLED", "ORDER CANCELLED"))
    return format_html_join(" ", "{}", ((b,) for b in badges))


def manifest_tables(manifest: Manifest) -> list[Table]:
    return [
        shipments_table(selectors.manifest_shipments(manifest), show_order=True),
        history_table(selectors.object_history(manifest)),
    ]
