"""The admin in a real browser: one order from allocation to dispatch, only by clicking.

Playwright drives Debian's Chromium (`/usr/bin/chromium`, installed by `.ci/run`; Playwright's
own browser downloads are never used) against pytest-django's `live_server`. Without Chromium
or the `playwright` package the test is skipped with the reason; with `REQUIRE_SERVICES=1`
(CI) it fails instead, so a green CI means the clicks really happened.

The test touches the database only before the browser starts and after it stops. While
Playwright's sync API runs, an asyncio loop counts as running in this thread, and Django then
keeps a *second* database connection for this thread (asgiref's thread-critical `Local` turns
into a context variable) that nobody closes: PostgreSQL then refuses to drop the test
database. So the codes of the shipment, picklist and manifest are read from the pages, and an
ORM call inside the `with` block fails loudly (Django's SynchronousOnlyOperation).

On SQLite the test database is in memory; `live_server` shares the test's connection with the
server thread, so both see the same rows (no file database needed).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache

from inventory.models import Inventory
from orders.models import (
    Manifest,
    ManifestStatus,
    Order,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import LineInput, OrderInput, order_create

from .factories import UserFactory, make_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # the longest any one step may take; the whole flow takes ~9 s
PASSWORD = "Kx7!browser-test-pass"
STOCK, UNITS = 10, 2


def chromium_path() -> str | None:
    """Debian's Chromium: /usr/bin/chromium, or `chromium` on PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@dataclass
class Ui:
    """The browser tab, the live server's address, and what went wrong on the way."""

    page: Any
    base_url: str
    shots: Path
    problems: list[str] = field(default_factory=list)

    def record_response(self, response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.problems.append(f"HTTP {response.status} {response.url}")

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser(
    live_server, require_services, tmp_path: Path
) -> Callable[[], AbstractContextManager[Ui]]:
    """`with browser() as ui:` a fresh headless Chromium (new profile, new context) on the
    live server, recording every JavaScript error and failed response so the test can assert
    the admin had none. Skips (fails in CI) without Chromium or Playwright."""
    executable = chromium_path()
    if executable is None:
        require_services("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        require_services("the playwright package is not installed (pip install -e '.[dev]')")

    @contextmanager
    def open_browser() -> Iterator[Ui]:
        playwright = sync_playwright().start()
        try:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(WAIT_MS)
            context.set_default_navigation_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            page = context.new_page()
            ui = Ui(page, live_server.url, tmp_path)
            page.on("pageerror", lambda exc: ui.problems.append(f"JavaScript error: {exc}"))
            page.on("response", ui.record_response)
            try:
                yield ui
            finally:
                context.close()
                chromium.close()
        finally:
            playwright.stop()

    return open_browser


def click_to_next_page(page, locator) -> None:
    """Click something that loads a new page, and wait until that page has loaded."""
    with page.expect_navigation(wait_until="load"):
        locator.click()


def expect_success(page, text: str) -> None:
    """The page shows a success message containing `text`, and no error or warning."""
    from playwright.sync_api import expect

    expect(page.locator("ul.messagelist li.success").filter(has_text=text)).to_have_count(1)
    expect(page.locator("ul.messagelist li.error, ul.messagelist li.warning")).to_have_count(0)


def expect_status(page, status) -> None:
    """The change page's status badge: the status, or its label ("Closed") on the pages that
    show labels."""
    from playwright.sync_api import expect

    shown = "|".join(re.escape(s) for s in {status.value, status.label})
    expect(page.locator(".field-status_badge .uw-status")).to_have_text(re.compile(f"^({shown})$"))


def action_button(page, name: str):
    return page.locator(f"button[name='uw_action_{name}']")


def code_of(locator, pattern: str) -> str:
    """The text of a link that names a record (waiting for it), checked against `pattern`."""
    from playwright.sync_api import expect

    expect(locator).to_have_text(re.compile(pattern))
    return locator.inner_text().strip()


def test_one_order_from_allocation_to_dispatch_by_clicking(browser):
    from playwright.sync_api import expect

    cache.clear()  # the dashboard's figures, cached by earlier tests
    world = make_world(stock=STOCK)
    order = order_create(
        OrderInput(
            channel=world.channel,
            channel_order_id="FK-BROWSER-1",
            ship_pincode="560001",
            payment_method="PREPAID",
            lines=[LineInput("FK-BROWSER-1-L1", world.sku.code, UNITS, "499.00")],
        ),
        allocate=False,
    )
    assert order.status == OrderStatus.CREATED and not order.shipments.exists()
    user = UserFactory(username="wh-manager")
    user.groups.add(Group.objects.get(name="Warehouse Manager"))
    user.set_password(PASSWORD)
    user.save()

    with browser() as ui:
        page = ui.page
        try:
            # Log in through the admin's login form.
            page.goto(f"{ui.base_url}/admin/", wait_until="load")
            expect(page).to_have_url(re.compile(r"/admin/login/"))
            page.fill("#id_username", user.username)
            page.fill("#id_password", PASSWORD)
            click_to_next_page(page, page.locator("#login-form [type=submit]"))
            expect(page.locator("#user-tools")).to_contain_text("wh-manager")
            ui.screenshot("0-dashboard")

            # Orders list: select the order, run "allocate" from the action bar.
            click_to_next_page(page, page.locator(".app-orders .model-order th a"))
            page.locator(f"input.action-select[value='{order.pk}']").check()
            page.select_option("select[name='action']", "allocate")
            click_to_next_page(page, page.locator("button[name='index']"))
            expect_success(page, f"Allocated 1 order: {order.code} ({UNITS} fulfillable).")
            ui.screenshot("1-orders-allocated")

            # Order page → its shipment → picklist for invoicing.
            click_to_next_page(page, page.get_by_role("link", name=order.code, exact=True))
            shipment_code = code_of(page.locator("#uw-shipments tbody a"), r"^SP-\d+$")
            click_to_next_page(page, page.locator("#uw-shipments tbody a"))
            expect_status(page, ShipmentStatus.CREATED)
            click_to_next_page(page, action_button(page, "pick_for_invoicing"))
            expect_success(page, f"Put on a picklist for invoicing 1 shipment: {shipment_code}.")
            expect_status(page, ShipmentStatus.PICKING)

            # The message links the new picklist: receive it, then back to the shipment.
            created = page.locator("ul.messagelist li.success a")
            picklist_code = code_of(created, r"^PL-\d+$")
            click_to_next_page(page, created)
            click_to_next_page(page, action_button(page, "receive"))
            expect_success(page, f"Received 1 picklist: {picklist_code}.")
            expect_status(page, PicklistStatus.RECEIVED)
            walk = page.locator("#uw-to-pick-in-walk-order tbody tr")
            expect(walk).to_have_count(1)  # one SKU on one shelf: one row, with its quantity
            expect(walk.locator("td").nth(3)).to_have_text(str(UNITS))
            items = page.locator("#uw-shipments").get_by_role("link", name=shipment_code)
            expect(items).to_have_count(1)
            click_to_next_page(page, items.first)

            # Invoice, label, manifest: one button each, offered only in the right status.
            expect_status(page, ShipmentStatus.PICKED)
            click_to_next_page(page, action_button(page, "invoice"))
            expect_success(page, f"Invoiced 1 shipment: {shipment_code}.")
            expect_status(page, ShipmentStatus.PACKED)
            expect(page.locator("#uw-invoices tbody a")).to_have_text(re.compile(r"^INV-WH1-"))
            click_to_next_page(page, action_button(page, "generate_label"))
            expect_success(page, f"Labelled 1 shipment: {shipment_code}.")
            expect_status(page, ShipmentStatus.READY_TO_SHIP)
            expect(action_button(page, "invoice")).to_have_count(0)
            click_to_next_page(page, action_button(page, "add_to_manifest"))
            expect_success(page, f"Added to a manifest 1 shipment: {shipment_code}.")
            expect_status(page, ShipmentStatus.MANIFESTED)
            ui.screenshot("2-shipment-manifested")

            # The message links the new manifest: close it (dispatches the shipment).
            created = page.locator("ul.messagelist li.success a")
            manifest_code = code_of(created, r"^MF-\d+$")
            click_to_next_page(page, created)
            click_to_next_page(page, action_button(page, "close"))
            expect_success(page, f"Closed 1 manifest: {manifest_code} (1 shipment dispatched).")
            expect_status(page, ManifestStatus.CLOSED)
            expect(action_button(page, "close")).to_have_count(0)
            ui.screenshot("3-manifest-closed")

            # Back to the order: COMPLETE, its shipment and units DISPATCHED.
            shipments = page.locator("#uw-shipments")
            click_to_next_page(page, shipments.get_by_role("link", name=order.code))
            expect_status(page, OrderStatus.COMPLETE)
            row = page.locator("#uw-shipments tbody tr").filter(has_text=shipment_code)
            expect(row.locator(".uw-status")).to_have_text(ShipmentStatus.DISPATCHED)
            units = page.locator("#uw-units tbody tr:not(.uw-group) .uw-status")
            expect(units).to_have_text([OrderItemStatus.DISPATCHED] * UNITS)
            expect(action_button(page, "allocate")).to_have_count(0)
        finally:
            with contextlib.suppress(Exception):  # never hide the failure itself
                print(f"\nscreenshot of the last page: {ui.screenshot('final-page')}")
        problems = list(ui.problems)

    assert problems == []

    # The database agrees with what the pages showed.
    order.refresh_from_db()
    shipment = Shipment.objects.get(code=shipment_code)
    assert shipment.order_id == order.pk
    assert order.status == OrderStatus.COMPLETE
    assert shipment.status == ShipmentStatus.DISPATCHED and shipment.dispatched_at is not None
    assert shipment.tracking_number
    assert set(order.items.values_list("status", flat=True)) == {OrderItemStatus.DISPATCHED}
    assert Picklist.objects.get(code=picklist_code).status == PicklistStatus.CLOSED
    manifest = Manifest.objects.get(code=manifest_code)
    assert manifest.status == ManifestStatus.CLOSED and shipment.manifest_id == manifest.pk
    assert shipment.invoices.count() == 1
    stock = Inventory.objects.get(pk=world.inventory.pk)
    assert (stock.quantity, stock.blocked_quantity) == (STOCK - UNITS, 0)
    assert Order.objects.count() == Shipment.objects.count() == 1  # nothing made by accident
