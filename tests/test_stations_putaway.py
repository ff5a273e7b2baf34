"""The putaway station on PostgreSQL: a putaway placed unit by unit on shelves scanned, GOOD
and BAD, completed as the user when the last unit is placed; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inventory.models import Inventory, Putaway, PutawayStatus
from orders.services import units_cancel
from stations.models import Station, StationKind
from stations.putaway import putaway_scan
from stations.scans import ScanError
from uniware.core.models import StateChange, Traceability

from .factories import SkuFactory, UserFactory
from .returns_flow import advance, shelf, shipment_of, traceability

pytestmark = pytest.mark.postgres


@pytest.fixture
def inbound(db):
    return UserFactory(username="inbound", roles=["Inbound Manager"])


def picked_putaway(world, quantity: int, order_code: str = "FK-1") -> Putaway:
    """A pending putaway of `quantity` units cancelled after picking."""
    order = world.order(order_code, quantity)
    advance(shipment_of(order), "PICKED")
    outcome = units_cancel(list(order.items.values_list("pk", flat=True)), reason="test")
    assert outcome.ok
    return outcome.created[0]


class Scanner:
    def __init__(self, user) -> None:
        self.user, self.now = user, timezone.now() - timedelta(hours=1)

    def __call__(self, *codes: str):
        for code in codes:
            self.now += timedelta(seconds=2)
            result = putaway_scan(self.user, code, now=self.now)
        return result

    def placed(self) -> list:
        return Station.objects.get(user=self.user, kind=StationKind.PUTAWAY).placed


def test_units_go_to_the_shelves_and_types_scanned(world, inbound):
    putaway = picked_putaway(world, 2)
    bad_shelf = shelf(world, "B1")
    scan = Scanner(inbound)
    assert scan(putaway.code).message == f"Putaway {putaway.code}: scan a shelf."
    assert scan("TSHIRT").error == ScanError.NOTHING_OPEN  # a shelf first
    assert scan("A1", "TSHIRT").message == "TSHIRT on A1 (GOOD); 1 to go."
    assert scan("BAD", "B1").outcome == "ok"
    done = scan("TSHIRT")
    assert done.outcome == "done", done
    putaway.refresh_from_db()
    assert putaway.status == PutawayStatus.COMPLETE
    rows = Inventory.objects.filter(sku=world.sku)
    assert {(r.shelf_id, r.inventory_type, r.quantity) for r in rows} == {
        (world.shelf.pk, "GOOD_INVENTORY", 9),
        (bad_shelf.pk, "BAD_INVENTORY", 1),
    }
    closing = StateChange.objects.get(object_code=putaway.code, transition="complete")
    assert closing.user == inbound
    assert scan(putaway.code).error == ScanError.WRONG_STATUS


def test_refused_putaway_scans_change_nothing(world, inbound, client):
    SkuFactory(code="MUG")
    putaway = picked_putaway(world, 2)
    scan = Scanner(inbound)
    assert scan("PA-NOBODY").error == ScanError.UNKNOWN_CODE
    scan(putaway.code, "A1", "TSHIRT")
    before = scan.placed()
    assert scan("MUG").error == ScanError.WRONG_ITEM
    assert scan("NOPE").error == ScanError.UNKNOWN_CODE
    assert scan.placed() == before
    assert scan("UNDO").message == "Last unit taken back." and scan.placed() == []
    client.force_login(inbound)
    page = client.get(reverse("admin:stations_station_putaway")).content.decode()
    assert f"Putaway {putaway.code}" in page and 'data-outcome="ok"' in page


def test_item_traceability_places_each_unit_by_its_code(world, inbound):
    traceability(Traceability.ITEM)
    putaway = picked_putaway(world, 2)
    first, second = putaway.items.select_related("order_item__order").order_by("pk")
    scan = Scanner(inbound)
    scan(putaway.code, "A1")
    assert scan("TSHIRT").error == ScanError.WRONG_ITEM
    unit = f"{first.order_item.order.code}/{first.order_item.code}"
    assert scan(unit).outcome == "ok"
    assert scan(unit).error == ScanError.EXTRA_UNIT
    last = f"{second.order_item.order.code}/{second.order_item.code}"
    assert scan(last).outcome == "done"


def test_a_sku_then_a_quantity_places_that_many_units(world, inbound):
    SkuFactory(code="MUG")
    putaway = picked_putaway(world, 4)
    scan = Scanner(inbound)
    scan(putaway.code, "A1")
    assert scan("QTY:2").error == ScanError.NOTHING_OPEN  # a SKU first
    assert scan("TSHIRT", "QTY:2").message == "TSHIRT ×2 on A1 (GOOD); 2 to go."
    assert scan("QTY:2").error == ScanError.NOTHING_OPEN  # one quantity per SKU scan
    assert scan("BAD", "TSHIRT", "QTY:9").error == ScanError.EXTRA_UNIT
    assert len(scan.placed()) == 3  # the refused quantity placed nothing
    assert scan("MUG").error == ScanError.WRONG_ITEM
    assert scan("QTY:x").error == ScanError.UNKNOWN_CODE
    assert scan("QTY:2").error == ScanError.NOTHING_OPEN  # the last scan was refused
    assert scan("TSHIRT").outcome == "done"
    putaway.refresh_from_db()
    assert putaway.status == PutawayStatus.COMPLETE
    kinds = sorted(putaway.items.values_list("inventory_type", flat=True))
    assert kinds == ["BAD_INVENTORY"] * 2 + ["GOOD_INVENTORY"] * 2


def test_a_quantity_that_places_the_last_units_completes_the_putaway(world, inbound):
    putaway = picked_putaway(world, 3)
    scan = Scanner(inbound)
    done = scan(putaway.code, "A1", "TSHIRT", "QTY:3")
    assert done.outcome == "done", done
    putaway.refresh_from_db()
    assert putaway.status == PutawayStatus.COMPLETE
    assert StateChange.objects.get(object_code=putaway.code, transition="complete").user == inbound


def test_item_traceability_takes_no_quantity(world, inbound):
    traceability(Traceability.ITEM)
    putaway = picked_putaway(world, 2)
    first = putaway.items.select_related("order_item__order").order_by("pk")[0]
    scan = Scanner(inbound)
    scan(putaway.code, "A1", f"{first.order_item.order.code}/{first.order_item.code}")
    assert scan("QTY:2").error == ScanError.WRONG_ITEM
    assert len(scan.placed()) == 1


def test_unit_and_quantity_scans_take_a_fixed_number_of_queries(world, inbound):
    """Whatever the putaway's size (no query per unit: the items' columns are all loaded)."""
    counts = []
    for quantity in (3, 6):
        putaway = picked_putaway(world, quantity, f"FK-{quantity}")
        scan = Scanner(inbound)
        scan("CANCEL", putaway.code, "A1")
        with CaptureQueriesContext(connection) as unit:
            scan("TSHIRT")
        with CaptureQueriesContext(connection) as qty:
            scan("QTY:2")
        counts.append((len(unit), len(qty)))
    assert counts[0] == counts[1], counts
