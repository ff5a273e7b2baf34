"""A Returns day in a real browser (issue 15): a parcel the courier brings back (RTO) is
received on a return manifest, the manifest closed, and its units put away, starting from the
role's home page. The test counts the clicks and prints them."""

from __future__ import annotations

import pytest

from inventory.models import Inventory, Putaway
from orders.models import OrderItemStatus, ShipmentStatus
from orders.services.returns.courier import shipments_expect_return

from .returns_flow import return_invoice_sequence
from .role_day import logged_in, role_user
from .sync_helpers import advance
from .test_browser import browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_courier_return_received_and_put_away(browser, world):  # noqa: F811
    from playwright.sync_api import expect

    return_invoice_sequence(world)  # the credit note of the return
    order = world.order("FK-RTO", 2)
    shipment = order.shipments.get()
    advance(shipment, "MANIFESTED")
    from orders.services import manifest_close

    manifest_close(shipment.manifest)
    assert shipments_expect_return([shipment.pk]).ok  # the courier says: RTO
    on_shelf = Inventory.objects.get(pk=world.inventory.pk).quantity
    clerk = role_user("Returns Manager", "returns-day")

    with browser() as ui:
        page, clicks = ui.page, logged_in(ui, clerk)

        tile = page.locator('[data-tile="returns_expected"]')
        expect(tile).to_have_attribute("data-count", "1")
        clicks.to_next_page(tile.locator("a.uw-tile-main"))
        clicks.tick(page.locator("#action-toggle"))
        clicks.choose("select[name='action']", "receive_return")
        clicks.to_next_page(page.locator("button[name='index']"))
        expect(page.locator("ul.messagelist li.success")).to_contain_text("Received 1 shipment")
        clicks.to_next_page(page.locator("ul.messagelist li.success a").last)  # the manifest
        clicks.to_next_page(page.locator("button[name='uw_action_close']"))
        clicks.to_next_page(page.locator("ul.messagelist li.success a").last)  # the putaway
        clicks.to_next_page(page.locator("button[name='uw_action_complete']"))
        clicks.to_next_page(page.locator("input[type=submit].default"))  # good, own shelves
        expect(page.locator("ul.messagelist li.success")).to_be_visible()
        ui.screenshot("role-day-returns-courier-return")
        problems = list(ui.problems)

    task_clicks = clicks.count
    print(f"\nclicks, a courier return received and put away (Returns): {task_clicks}")
    assert problems == []
    assert task_clicks <= 10
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.RETURNED
    assert set(order.items.values_list("status", flat=True)) == {OrderItemStatus.DISPATCHED}
    assert Putaway.objects.get().status == "COMPLETE"
    assert Inventory.objects.get(pk=world.inventory.pk).quantity == on_shelf + 2
