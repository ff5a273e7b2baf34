"""A partial shipment at the packing station: never a silent short-ship. SPLIT, scanned by a
user who may split shipments in the admin, splits the units not scanned off through
`orders.services.shipment_split` (audited as that user); anyone else is told a supervisor
must confirm, and nothing changes."""

from __future__ import annotations

import pytest

from orders.models import OrderItem, Shipment, ShipmentStatus
from stations.models import Station, StationKind
from stations.scans import ScanError
from uniware.core.models import StateChange

from .factories import UserFactory
from .test_stations import Clock, picklist_of, scan, station

pytestmark = pytest.mark.postgres


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def packer(db):
    return UserFactory(username="packer", roles=["Pick and Pack"])


@pytest.fixture
def lead(db):
    return UserFactory(username="lead", roles=["Warehouse Manager"])


def test_without_the_split_permission_a_supervisor_must_confirm(world, packer, clock):
    picklist, [shipment] = picklist_of(world, 2)
    scan(packer, clock, picklist.code, "TSHIRT")
    before = (station(packer).shipment_id, list(station(packer).ticked))
    refused = scan(packer, clock, "SPLIT")
    assert (refused.outcome, refused.error) == ("error", ScanError.SUPERVISOR_NEEDED)
    assert "supervisor" in refused.message
    assert (station(packer).shipment_id, list(station(packer).ticked)) == before
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.PICKED
    assert Shipment.objects.filter(parent=shipment).count() == 0
    incomplete = scan(packer, clock, "VALIDATE")
    assert incomplete.error == ScanError.INCOMPLETE and "SPLIT" in incomplete.message


def test_split_with_nothing_missing_or_nothing_scanned_is_refused(world, lead, clock):
    picklist, [shipment] = picklist_of(world, 1)
    assert scan(lead, clock, picklist.code, "SPLIT").error == ScanError.NOTHING_OPEN
    assert scan(lead, clock, "TSHIRT", "SPLIT").error == ScanError.NOTHING_OPEN
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.PICKED


def test_a_short_pick_is_split_at_packing_and_the_scanned_units_packed(world, lead, clock):
    """A picked shipment with a unit missing: the supervisor's SPLIT keeps the scanned unit at
    the station in a new PICKED shipment (on the same picklist) and puts the missing one in
    another; VALIDATE then invoices, packs and labels only what was scanned."""
    picklist, [shipment] = picklist_of(world, 2)
    scan(lead, clock, picklist.code, "TSHIRT")
    [scanned_unit] = station(lead).ticked

    result = scan(lead, clock, "SPLIT")

    assert result.outcome == "ok", result
    held = station(lead).shipment
    missing = OrderItem.objects.exclude(pk=scanned_unit).get(order=shipment.order).shipment
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.SPLITTED
    assert (held.status, missing.status) == (ShipmentStatus.PICKED, ShipmentStatus.PICKED)
    assert held.parent_id == missing.parent_id == shipment.pk
    lines = dict(picklist.items.values_list("order_item_id", "shipment_id"))
    assert lines[scanned_unit] == held.pk and set(lines.values()) == {held.pk, missing.pk}
    packed = scan(lead, clock, "VALIDATE")
    assert packed.outcome == "done", packed
    assert Shipment.objects.get(pk=held.pk).status == ShipmentStatus.READY_TO_SHIP
    assert Shipment.objects.get(pk=missing.pk).status == ShipmentStatus.PICKED
    split = StateChange.objects.get(object_id=shipment.pk, to_state=ShipmentStatus.SPLITTED)
    assert split.user_id == lead.pk


def test_a_supervisors_split_keeps_the_scanned_units_at_the_station(world, lead, clock):
    """On a shipment the service splits, the scanned unit goes into one new shipment, held by
    the station, and the missing one into another; the split is audited as the supervisor."""
    order = world.order("FK-9", 2)
    shipment = Shipment.objects.get(order=order)
    assert shipment.status == ShipmentStatus.CREATED
    first, second = OrderItem.objects.filter(shipment=shipment).order_by("pk")
    Station.objects.create(
        user=lead, kind=StationKind.PACKING, shipment=shipment, ticked=[first.pk]
    )

    result = scan(lead, clock, "SPLIT")
    assert result.outcome == "ok", result
    held = station(lead)
    assert held.shipment_id != shipment.pk and held.ticked == [first.pk]
    assert list(OrderItem.objects.filter(shipment_id=held.shipment_id)) == [first]
    rest = OrderItem.objects.get(pk=second.pk).shipment
    assert rest.pk not in (shipment.pk, held.shipment_id) and rest.parent_id == shipment.pk
    assert rest.code in result.message and held.shipment.code in result.message
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.SPLITTED
    split = StateChange.objects.get(object_id=shipment.pk, to_state=ShipmentStatus.SPLITTED)
    assert split.user_id == lead.pk
