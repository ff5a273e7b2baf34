"""The scan stations in a real browser, driven the way a keyboard-wedge scanner drives them:
the code's characters, then Enter, into the focused input. On a desktop and a 360×640
handheld viewport: a picklist packed end to end (typed refusals, a double fire, a refresh
mid-shipment), the invoice and label PDFs, then the parcels handed over and the manifest
closed. The set-up of `test_browser` (Debian's Chromium, no ORM call while the browser
runs) is reused."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import connections

from orders.models import (
    Invoice,
    Manifest,
    ManifestStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import (
    orders_cancel,
    orders_hold,
    orders_unhold,
    picklist_create,
    units_cancel,
)
from uniware.core.models import StateChange

from .factories import ProviderFactory, SkuFactory, UserFactory, make_world
from .returns_flow import advance, shelf, shipment_of
from .test_browser import PASSWORD, Ui, browser  # noqa: F401 (the fixture)
from .test_fulfilment import to_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "handheld": {"width": 360, "height": 640}}


def wedge(page, code: str, outcome: str, text: str) -> None:
    """Type `code` and Enter into the focused page, as a scanner does; expect the outcome."""
    from playwright.sync_api import expect

    expect(page.locator("input[name=scan]")).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    shown = page.locator("[data-outcome]")
    expect(shown).to_contain_text(text)
    expect(shown).to_have_attribute("data-outcome", outcome)


def expect_pdf(page, selector: str) -> None:
    """The print link answers a PDF (fetched with the page's session)."""
    href = page.locator(selector).evaluate("link => link.href")
    response = page.request.get(href)
    assert response.ok and response.headers["content-type"] == "application/pdf", href
    assert response.body().startswith(b"%PDF")


def login(ui, username: str, path: str) -> None:
    page = ui.page
    page.goto(f"{ui.base_url}{path}", wait_until="load")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation(wait_until="load"):
        page.locator("#login-form [type=submit]").click()


def refused_parcels(world) -> list[Shipment]:
    """Ready parcels the handover refuses: one on hold, one of another provider; and a
    cancelled shipment."""
    parcels = [Shipment.objects.get(order=world.order(f"FK-{n}", 1)) for n in (7, 8, 9)]
    to_ready(parcels[:2])
    held, other, cancelled = parcels
    assert orders_hold([held.order_id], reason="address check").ok
    courier = ProviderFactory(code="DELHIVERY")
    world.facility.shipping_providers.add(courier)
    Shipment.objects.filter(pk=other.pk).update(shipping_provider=courier)
    assert orders_cancel([cancelled.order_id], reason="customer").ok
    return [Shipment.objects.get(pk=p.pk) for p in parcels]


def between_scans(change: Callable[[], object]) -> object:
    """Change the data while the browser runs: in a thread of its own, which has no asyncio
    loop (see `test_browser`), and whose connection is closed after, so the test database
    can still be dropped. The live server sees the change at the next scan (committed)."""

    def run():
        try:
            return change()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def expect_error(page, error: str) -> None:
    assert page.locator("[data-outcome]").get_attribute("data-error") == error


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_pack_a_picklist_and_hand_it_over_by_scanning(browser, viewport):  # noqa: F811
    cache.clear()
    world = make_world(stock=10)
    SkuFactory(code="MUG", name="Mug")
    orders = [world.order("FK-1", 2), world.order("FK-2", 1)]
    first, second = (Shipment.objects.get(order=o) for o in orders)
    created = picklist_create([first.pk, second.pk], destination="INVOICING", actor="test")
    picklist = created.created[0]
    awb = f"{world.provider.code}{first.pk:010d}"  # the AWB labelling will assign
    held, other, cancelled = refused_parcels(world)
    user = UserFactory(username="packer", roles=["Pick and Pack"])
    user.set_password(PASSWORD)
    user.save()

    with browser() as ui:
        page = ui.page
        page.set_viewport_size(VIEWPORTS[viewport])
        login(ui, "packer", "/admin/stations/station/packing/")
        wedge(page, picklist.code, "ok", f"Picklist {picklist.code}")
        wedge(page, "NOPE-123", "error", "nobody knows this code")
        assert page.locator("[data-outcome]").get_attribute("data-error") == "UNKNOWN_CODE"
        wedge(page, "MUG", "error", f"not in shipment {first.code}")
        wedge(page, "TSHIRT", "ok", "TSHIRT 1/2; 1 to go.")
        wedge(page, "TSHIRT", "ok", "Repeat scan of TSHIRT ignored")  # double fire
        page.reload(wait_until="load")  # a refresh mid-shipment: the server has the state
        assert page.locator(".units li.ticked").count() == 1
        wedge(page, "", "error", "1 unit(s) still to scan")
        page.wait_for_timeout(1600)  # past the double-fire window
        wedge(page, "TSHIRT", "ok", "All scanned")
        page.wait_for_timeout(1600)
        wedge(page, "TSHIRT", "error", "scanned already")
        assert no_horizontal_scroll(page)
        ui.screenshot(f"packing-{viewport}")
        wedge(page, "VALIDATE", "done", f"Shipment {first.code} packed, AWB {awb}")
        expect_pdf(page, ".prints a:has-text('Invoice')")
        expect_pdf(page, ".prints a:has-text('Label')")
        wedge(page, "TSHIRT", "ok", "TSHIRT 1/1")
        wedge(page, "", "done", "Picklist finished")

        page.goto(f"{ui.base_url}/admin/stations/station/manifest/", wait_until="load")
        wedge(page, awb, "ok", "1 parcel(s)")
        wedge(page, "NOPE-123", "error", "no shipment has this AWB")
        wedge(page, held.tracking_number, "error", "is on hold")
        wedge(page, other.tracking_number, "error", "CLOSE it first")
        assert page.locator("[data-outcome]").get_attribute("data-error") == "OTHER_ROUTE"
        wedge(page, cancelled.code, "error", "is cancelled")
        wedge(page, first.code, "error", "is MANIFESTED: only READY_TO_SHIP")
        wedge(page, second.code, "ok", "2 parcel(s)")
        wedge(page, "CLOSE", "done", "2 parcel(s) dispatched")
        expect_pdf(page, ".prints a:has-text('Handover sheet')")
        assert no_horizontal_scroll(page)
        ui.screenshot(f"manifest-{viewport}")
        problems = [p for p in ui.problems if not re.search(r"HTTP 40[34] ", p)]

    assert problems == []
    shipped = Shipment.objects.filter(pk__in=[first.pk, second.pk])
    assert set(shipped.values_list("status", flat=True)) == {ShipmentStatus.DISPATCHED}
    assert Shipment.objects.get(pk=held.pk).status == ShipmentStatus.READY_TO_SHIP
    assert Shipment.objects.get(pk=other.pk).manifest_id is None
    assert Picklist.objects.get(pk=picklist.pk).status == PicklistStatus.CLOSED
    assert Manifest.objects.get().status == ManifestStatus.CLOSED
    assert Invoice.objects.filter(shipment__in=[first, second]).count() == 2


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_put_away_by_scanning(browser, viewport):  # noqa: F811
    world = make_world(stock=10)
    shelf(world, "B1")
    order = world.order("FK-1", 2)
    advance(shipment_of(order), "PICKED")
    [putaway] = units_cancel(list(order.items.values_list("pk", flat=True)), reason="x").created
    user = UserFactory(username="inbound", roles=["Inbound Manager"])
    user.set_password(PASSWORD)
    user.save()

    with browser() as ui:
        page = ui.page
        page.set_viewport_size(VIEWPORTS[viewport])
        login(ui, "inbound", "/admin/stations/station/putaway/")
        wedge(page, putaway.code, "ok", "scan a shelf")
        wedge(page, "TSHIRT", "error", "scan a shelf first")
        wedge(page, "A1", "ok", "Shelf A1")
        wedge(page, "TSHIRT", "ok", "1 to go")
        wedge(page, "BAD", "ok", "as BAD")
        wedge(page, "B1", "ok", "Shelf B1")
        wedge(page, "TSHIRT", "done", f"Putaway {putaway.code} complete")
        assert no_horizontal_scroll(page)
        problems = [p for p in ui.problems if not re.search(r"HTTP 40[34] ", p)]

    assert problems == []
    putaway.refresh_from_db()
    assert putaway.status == "COMPLETE"
    kinds = putaway.items.values_list("shelf__code", "inventory_type")
    assert sorted(kinds) == [("A1", "GOOD_INVENTORY"), ("B1", "BAD_INVENTORY")]


def test_two_stations_never_pack_one_shipment(browser):  # noqa: F811
    world = make_world(stock=10)
    orders = [world.order("FK-1", 1), world.order("FK-2", 1)]
    first, second = (Shipment.objects.get(order=o) for o in orders)
    picklist = picklist_create([first.pk, second.pk], destination="INVOICING", actor="t").created[0]
    for name in ("packer-a", "packer-b"):
        user = UserFactory(username=name, roles=["Pick and Pack"])
        user.set_password(PASSWORD)
        user.save()

    with browser() as ui:
        login(ui, "packer-a", "/admin/stations/station/packing/")
        other = Ui(ui.page.context.browser.new_context().new_page(), ui.base_url, ui.shots)
        login(other, "packer-b", "/admin/stations/station/packing/")
        wedge(ui.page, picklist.code, "ok", "scan the units")
        expect_holding(ui.page, first.code)
        wedge(other.page, first.code, "error", "another station has it")
        wedge(other.page, picklist.code, "ok", "scan the units")
        expect_holding(other.page, second.code)
        wedge(other.page, "TSHIRT", "ok", "All scanned")
        wedge(ui.page, "TSHIRT", "ok", "All scanned")
        wedge(other.page, "", "done", f"Shipment {second.code} packed")
        wedge(ui.page, "", "done", f"Shipment {first.code} packed")
        other.page.context.close()
        problems = [p for p in ui.problems if not re.search(r"HTTP 40[34] ", p)]

    assert problems == []
    shipments = Shipment.objects.filter(pk__in=[first.pk, second.pk])
    assert set(shipments.values_list("status", flat=True)) == {ShipmentStatus.READY_TO_SHIP}
    changes = StateChange.objects.filter(to_state="READY_TO_SHIP").order_by("object_code")
    assert [c.user.username for c in changes] == ["packer-a", "packer-b"]


def expect_holding(page, code: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#panel h2")).to_contain_text(f"Shipment {code}")


def test_held_cancelled_and_incomplete_shipments_are_refused_at_packing(browser):  # noqa: F811
    """The order is held, then released, then cancelled between scans (as staff elsewhere
    would): each refusal is typed, a refresh resumes the shipment, nothing ships short."""
    world = make_world(stock=10)
    orders = [world.order("FK-1", 2), world.order("FK-2", 1)]
    first, second = (Shipment.objects.get(order=o) for o in orders)
    picklist = picklist_create([first.pk, second.pk], destination="INVOICING", actor="t").created[0]
    user = UserFactory(username="packer", roles=["Pick and Pack"])
    user.set_password(PASSWORD)
    user.save()

    with browser() as ui:
        page = ui.page
        page.set_viewport_size(VIEWPORTS["handheld"])
        login(ui, "packer", "/admin/stations/station/packing/")
        wedge(page, picklist.code, "ok", "scan the units")
        expect_holding(page, first.code)
        between_scans(lambda: orders_hold([first.order_id], reason="address check"))
        wedge(page, "TSHIRT", "error", "is on hold")
        expect_error(page, "ON_HOLD")
        between_scans(lambda: orders_unhold([first.order_id]))
        page.wait_for_timeout(1600)  # past the double-fire window
        wedge(page, "TSHIRT", "ok", "TSHIRT 1/2; 1 to go.")
        page.reload(wait_until="load")  # mid-shipment: the server has the state
        expect_holding(page, first.code)
        assert page.locator(".units li.ticked").count() == 1
        assert page.locator("[data-outcome]").get_attribute("data-outcome") == "ok"
        wedge(page, "VALIDATE", "error", "1 unit(s) still to scan")
        expect_error(page, "INCOMPLETE")
        wedge(page, "SPLIT", "error", "needs a supervisor")
        expect_error(page, "SUPERVISOR_NEEDED")
        between_scans(lambda: orders_cancel([first.order_id], reason="customer"))
        wedge(page, "TSHIRT", "error", "was cancelled")
        expect_error(page, "CANCELLED")
        wedge(page, "CANCEL", "ok", "Station cleared")
        wedge(page, picklist.code, "ok", "scan the units")
        expect_holding(page, second.code)
        wedge(page, "TSHIRT", "ok", "All scanned")
        wedge(page, "", "done", f"Shipment {second.code} packed")
        assert no_horizontal_scroll(page)
        problems = [p for p in ui.problems if not re.search(r"HTTP 40[34] ", p)]

    assert problems == []
    assert Shipment.objects.get(pk=first.pk).status == ShipmentStatus.CANCELLED
    assert Shipment.objects.get(pk=second.pk).status == ShipmentStatus.READY_TO_SHIP
    assert not Invoice.objects.filter(shipment=first).exists()
