"""A Pick and Pack day in a real browser (issue 15): a batch of 20 orders from picklist to
dispatch, only by clicking, starting from the role's home page. The test counts every click
(and every choice in a select) and prints the count: the issue's walk-through took about 106
clicks for the same batch, ticking codes by eye on mixed lists."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache

from orders.models import Manifest, ManifestStatus, Order, Shipment, ShipmentStatus

from .factories import UserFactory, make_world
from .test_browser import PASSWORD, browser, expect_success  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
BATCH = 20


class Clicks:
    """Clicks staff make, counted: a click or a choice in a select is one."""

    def __init__(self, page) -> None:
        self.page, self.count = page, 0

    def to_next_page(self, locator) -> None:
        self.count += 1
        with self.page.expect_navigation(wait_until="load"):
            locator.click()

    def choose(self, selector: str, value: str) -> None:
        self.count += 1
        self.page.select_option(selector, value)

    def tick(self, locator) -> None:
        self.count += 1
        locator.check()


def test_a_batch_of_twenty_from_picklist_to_dispatch(browser):  # noqa: F811 (the fixture)
    from playwright.sync_api import expect

    cache.clear()
    world = make_world(stock=BATCH + 5)
    for n in range(BATCH):
        world.order(f"FK-DAY-{n}")
    packer = UserFactory(username="packer-day")
    packer.groups.add(Group.objects.get(name="Pick and Pack"))
    packer.set_password(PASSWORD)
    packer.save()

    with browser() as ui:
        page, clicks = ui.page, Clicks(ui.page)
        page.goto(f"{ui.base_url}/admin/", wait_until="load")
        page.fill("#id_username", packer.username)
        page.fill("#id_password", PASSWORD)
        clicks.to_next_page(page.locator("#login-form [type=submit]"))
        logged_in = clicks.count

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

    batch_clicks = clicks.count - logged_in
    print(f"\nclicks, pick → dispatch of {BATCH} orders (Pick and Pack): {batch_clicks}")
    assert problems == []
    assert batch_clicks <= 12  # the walk-through: about 106
    assert set(Shipment.objects.values_list("status", flat=True)) == {ShipmentStatus.DISPATCHED}
    assert Manifest.objects.get().status == ManifestStatus.CLOSED
    assert Order.objects.filter(status="COMPLETE").count() == BATCH
    assert re.match(r"^MF-", Manifest.objects.get().code)
