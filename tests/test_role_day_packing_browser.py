"""A packer's day at the station in a real browser (issue 15): from the role's home page to
the packing station (a link on it), then a picklist of three orders packed only by scanning
(the picklist, each unit, VALIDATE). The test counts clicks and scans and prints them: the
station takes no click once it is open."""

from __future__ import annotations

import pytest

from orders.models import Invoice, Picklist, PicklistStatus, Shipment, ShipmentStatus
from orders.services import picklist_create

from .role_day import logged_in, role_user
from .test_browser import browser  # noqa: F401 (the fixture)
from .test_stations_browser import wedge

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOUBLE_FIRE_MS = 1600  # the station ignores the same code scanned twice within 1.5 s


def test_a_picklist_packed_at_the_station_by_scanning(browser, world):  # noqa: F811
    orders = [world.order(f"FK-PACK-{n}", 1) for n in range(3)]
    shipments = [o.shipments.get() for o in orders]
    picklist = picklist_create([s.pk for s in shipments], destination="INVOICING").created[0]
    codes = sorted(s.code for s in shipments)
    packer = role_user("Pick and Pack", "packer-station")

    with browser() as ui:
        page, clicks = ui.page, logged_in(ui, packer)

        clicks.to_next_page(page.locator(".uw-stations a", has_text="Packing station"))
        scans = 1
        wedge(page, picklist.code, "ok", f"Picklist {picklist.code}")
        for n in range(len(shipments)):
            if n:
                page.wait_for_timeout(DOUBLE_FIRE_MS)
            wedge(page, "TSHIRT", "ok", "TSHIRT 1/1")
            last = n == len(shipments) - 1
            wedge(page, "VALIDATE", "done", "Picklist finished" if last else "packed, AWB")
            scans += 2
        ui.screenshot("role-day-pick-and-pack-station")
        problems = [p for p in ui.problems if "HTTP 40" not in p]

    task_clicks = clicks.count
    print(f"\nclicks, a picklist of 3 packed at the station (Pick and Pack): {task_clicks}")
    print(f"scans, the same: {scans}")
    assert problems == []
    assert task_clicks <= 1
    packed = Shipment.objects.filter(code__in=codes)
    assert set(packed.values_list("status", flat=True)) == {ShipmentStatus.READY_TO_SHIP}
    assert Invoice.objects.filter(shipment__in=packed).count() == 3
    assert Picklist.objects.get(pk=picklist.pk).status == PicklistStatus.CLOSED
