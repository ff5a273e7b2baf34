"""The putaway station on PostgreSQL: a putaway placed unit by unit on shelves scanned, GOOD
and BAD, completed as the user when the last unit is placed; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
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


def picked_putaway(world, quantity: int) -> Putaway:
    """A pending putaway of `quantity` units cancelled after picking."""
    order = world.order("FK-1", quantity)
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
