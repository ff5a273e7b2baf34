"""A Pick and Pack day in a real browser (issue 15): a batch of 20 orders from picklist to
dispatch, only by clicking, starting from the role's home page. The test counts every click
(and every choice in a select) and prints the count: the issue's walk-through took about 106
clicks for the same batch, ticking codes by eye on mixed lists."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache

from orders.models import Manifest, ManifestStatus, Order, Shipment, ShipmentStatus

from .factories import make_world
from .role_day import logged_in, role_user
from .test_browser import browser, expect_success  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BATCH = 20


def test_a_batch_of_twenty_from_picklist_to_dispatch(browser):  # noqa: F811 (the fixture)
    from playwright.sync_api import expect

    cache.clear()
    world = make_world(stock=BATCH + 5)
    for n in range(BATCH):
        world.order(f"FK-DAY-{n}")
    packer = role_user("Pick and Pack", "packer-day")

    with browser() as ui:
        page, clicks = ui.page, logged_in(ui, packer)

        tile = page.locator('[data-tile="to_pick"]')
        expect(tile).to_have_attribute("data-count", str(BATCH))
        clicks.to_next_page(tile.locator("a.uw-tile-main"))
        clicks.tick(page.locator("#action-toggle"))  # all 20 on the page
        clicks.choose("select[name='action']", "pick_for_invoicing")
        clicks.to_next_page(page.locator("button[name='index']"))
        expect_success(page, f"Put on a picklist for invoicing {BATCH} shipments")

        clicks.to_next_page(page.locator("ul.messagelist li.success a"))  # the new picklist
        clicks.to_next_page(page.locator("button[name='uw_action_receive']"))
        clicks.to_next_page(page.locator("button[name='uw_action_invoice_all']"))
        expect_success(page, f"Invoiced {BATCH} shipments")
        clicks.to_next_page(page.locator("button[name='uw_action_label_all']"))
        expect_success(page, f"Labelled {BATCH} shipments")
        clicks.to_next_page(page.locator("button[name='uw_action_manifest_all']"))
        expect_success(page, f"Added to a manifest {BATCH} shipments")
        clicks.to_next_page(page.locator("ul.messagelist li.success a").last)  # the manifest
        clicks.to_next_page(page.locator("button[name='uw_action_close']"))
        expect_success(page, f"({BATCH} shipments dispatched)")
        ui.screenshot("role-day-pick-and-pack")
        problems = list(ui.problems)

    batch_clicks = clicks.count
    print(f"\nclicks, pick → dispatch of {BATCH} orders (Pick and Pack): {batch_clicks}")
    assert problems == []
    assert batch_clicks <= 12  # the walk-through: about 106
    assert set(Shipment.objects.values_list("status", flat=True)) == {ShipmentStatus.DISPATCHED}
    assert Manifest.objects.get().status == ManifestStatus.CLOSED
    assert Order.objects.filter(status="COMPLETE").count() == BATCH
    assert re.match(r"^MF-", Manifest.objects.get().code)
