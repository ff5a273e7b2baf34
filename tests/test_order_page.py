"""The order page tells the whole story (issue 15): units, shipments, invoices, returns,
notifications, sync errors and history, in that order; totals that follow cancellations; and
why an order waits in PENDING_VERIFICATION."""

from __future__ import annotations

from channels.models import RunTrigger, SyncError, SyncKind, SyncRun
from orders.models import Order, ShipmentStatus
from orders.services import units_cancel

from .test_admin import shipment_of, to_status, url


def titles(page) -> list[str]:
    return [t.title for t in page.context["related_tables"]]


def test_the_sections_follow_the_order_and_totals_follow_cancellations(world, admin_client):
    world.sku.inventory.update(quantity=10)
    order = world.order("FK-1", quantity=2)
    first, _ = order.items.order_by("pk")
    units_cancel([first.pk], reason="customer changed mind")
    to_status([shipment_of(order)], ShipmentStatus.PACKED)
    run = SyncRun.objects.create(
        task="t", kind=SyncKind.STATUS, channel=world.channel, trigger=RunTrigger.SCHEDULE
    )
    SyncError.objects.create(
        run=run, channel=world.channel, order=order, kind="CONFLICT", message="unit X: clash"
    )

    page = admin_client.get(url(Order, "change", order.pk))

    found = titles(page)
    assert found[:3] == ["Units", "Shipments", "Invoices"]
    assert found.index("Sync errors") < found.index("History") == len(found) - 1
    tables = {t.title: t for t in page.context["related_tables"]}
    [invoice_row] = tables["Invoices"].rows
    assert str(shipment_of(order).invoices.get().code) in str(invoice_row.cells[0])
    [error_row] = tables["Sync errors"].rows
    assert error_row.cells[3:] == ("unit X: clash", "open")
    html = page.content.decode()
    assert "998.00 INR ordered, 499.00 after cancellations" in html


def test_an_order_waiting_on_an_unmapped_listing_says_why(world, admin_client):
    order = world.order("FK-2")
    Order.objects.filter(pk=order.pk).update(
        status="PENDING_VERIFICATION",
        verification_reason="unmapped listing P-881/V-881-M on FLIPKART",
    )
    page = admin_client.get(url(Order, "change", order.pk))
    html = page.content.decode()
    assert "unmapped listing P-881/V-881-M on FLIPKART" in html
    assert "Sync errors" not in titles(page)  # no errors, no table
    assert "499.00 INR, nothing cancelled" in html
