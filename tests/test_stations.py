"""The scan stations' services on PostgreSQL: packing a picklist shipment by shipment, every
typed refusal (which changes nothing), the double-fire window, resuming from the server's
state, two stations racing for one shipment, and the manifest handover station."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inventory.models import Sku
from orders.models import (
    Invoice,
    Manifest,
    ManifestStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import orders_cancel, orders_hold, orders_unhold, picklist_create, units_cancel
from stations.handover import manifest_scan
from stations.models import Station, StationKind
from stations.scans import ScanError
from stations.services import packing_scan
from uniware.core.models import StateChange, Tenant, Traceability

from .factories import ProviderFactory, SkuFactory, UserFactory

pytestmark = pytest.mark.postgres


class Clock:
    """Scan times 2 s apart (outside the double-fire window) unless asked otherwise."""

    def __init__(self) -> None:
        self.now = timezone.now() - timedelta(hours=1)  # a real request later is no repeat

    def tick(self, seconds: float = 2.0):
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def packer(db):
    return UserFactory(username="packer", roles=["Pick and Pack"])


@pytest.fixture
def clock():
    return Clock()


def picklist_of(world, *quantities: int) -> tuple[Picklist, list[Shipment]]:
    """One order per quantity (shipments in pk order) on a new INVOICING picklist."""
    orders = [world.order(f"FK-{n}", q) for n, q in enumerate(quantities, 1)]
    shipments = [Shipment.objects.get(order=o) for o in orders]
    outcome = picklist_create([s.pk for s in shipments], destination="INVOICING", actor="test")
    assert outcome.ok, outcome.failed
    return outcome.created[0], shipments


def station(user, kind=StationKind.PACKING) -> Station:
    return Station.objects.get(user=user, kind=kind)


def scan(user, clock, *codes: str, seconds: float = 2.0):
    results = [packing_scan(user, code, now=clock.tick(seconds)) for code in codes]
    return results[-1]


def test_packing_a_picklist_invoices_and_labels_each_shipment_as_the_user(world, packer, clock):
    picklist, (first, second) = picklist_of(world, 2, 1)
    result = scan(packer, clock, picklist.code)
    assert result.outcome == "ok", result
    assert Picklist.objects.get(pk=picklist.pk).status == PicklistStatus.RECEIVED
    assert station(packer).shipment_id == first.pk

    assert scan(packer, clock, "TSHIRT").message == "TSHIRT 1/2; 1 to go."
    refused = scan(packer, clock, "VALIDATE")
    assert (refused.outcome, refused.error) == ("error", ScanError.INCOMPLETE)
    assert Shipment.objects.get(pk=first.pk).status == ShipmentStatus.PICKED
    assert "All scanned" in scan(packer, clock, "TSHIRT").message

    done = scan(packer, clock, "")  # Enter on the empty input validates
    assert done.outcome == "done", done
    packed = Shipment.objects.get(pk=first.pk)
    assert packed.status == ShipmentStatus.READY_TO_SHIP and packed.tracking_number
    assert Invoice.objects.filter(shipment=packed).count() == 1
    changes = StateChange.objects.filter(
        object_id=packed.pk, to_state__in=["PACKED", "READY_TO_SHIP"]
    )
    assert {(c.to_state, c.user_id) for c in changes} == {
        ("PACKED", packer.pk),
        ("READY_TO_SHIP", packer.pk),
    }
    assert (station(packer).shipment_id, station(packer).printable_id) == (second.pk, first.pk)

    last = scan(packer, clock, "TSHIRT", "VALIDATE")
    assert last.outcome == "done" and "Picklist finished" in last.message
    assert Shipment.objects.get(pk=second.pk).status == ShipmentStatus.READY_TO_SHIP
    assert Picklist.objects.get(pk=picklist.pk).status == PicklistStatus.CLOSED
    assert station(packer).picklist_id is None
    assert station(packer).message == last.message


def test_a_sku_barcode_or_a_shipment_code_is_scanned(world, packer, clock):
    Sku.objects.filter(pk=world.sku.pk).update(barcode="8901234567890")
    _, (first, second) = picklist_of(world, 1, 1)
    assert scan(packer, clock, second.code).outcome == "ok"
    assert station(packer).shipment_id == second.pk
    assert scan(packer, clock, "8901234567890").message.startswith("TSHIRT 1/1")


def _state(user, shipment):
    s = station(user)
    return s.shipment_id, list(s.ticked), Shipment.objects.get(pk=shipment.pk).status


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("NO-SUCH-CODE", ScanError.UNKNOWN_CODE),
        ("MUG", ScanError.WRONG_ITEM),
        ("TSHIRT", ScanError.EXTRA_UNIT),
    ],
)
def test_a_refused_unit_scan_changes_nothing(world, packer, clock, code, error):
    SkuFactory(code="MUG", name="Mug")
    picklist, [shipment] = picklist_of(world, 1)
    scan(packer, clock, picklist.code, "TSHIRT")
    before = _state(packer, shipment)
    result = scan(packer, clock, code)
    assert (result.outcome, result.error) == ("error", error), result
    assert _state(packer, shipment) == before
    assert station(packer).error == error


def test_held_and_cancelled_orders_are_refused(world, packer, clock):
    picklist, [shipment] = picklist_of(world, 1)
    scan(packer, clock, picklist.code)
    assert orders_hold([shipment.order_id], reason="address check").ok
    held = scan(packer, clock, "TSHIRT")
    assert held.error == ScanError.ON_HOLD and station(packer).ticked == []
    assert orders_unhold([shipment.order_id]).ok
    assert orders_cancel([shipment.order_id], reason="customer").ok
    cancelled = scan(packer, clock, "VALIDATE")
    assert cancelled.error == ScanError.CANCELLED
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.CANCELLED
    assert scan(packer, clock, "CANCEL").outcome == "ok"
    assert station(packer).shipment_id is None
    nothing = scan(packer, clock, "VALIDATE")
    assert nothing.error == ScanError.NOTHING_OPEN


def test_a_cancelled_unit_of_a_live_shipment_is_refused(world, packer, clock):
    picklist, [shipment] = picklist_of(world, 2)
    scan(packer, clock, picklist.code, "TSHIRT")
    [untouched] = shipment.items.exclude(pk__in=station(packer).ticked)
    assert units_cancel([untouched.pk], reason="customer").ok
    assert scan(packer, clock, "TSHIRT").error == ScanError.CANCELLED
    assert scan(packer, clock, "VALIDATE").outcome == "done"  # the live unit ships


def test_item_traceability_scans_each_units_own_code(world, packer, clock):
    Tenant.objects.filter(pk=1).update(traceability=Traceability.ITEM)
    picklist, [shipment] = picklist_of(world, 2)
    scan(packer, clock, picklist.code)
    assert scan(packer, clock, "TSHIRT").error == ScanError.WRONG_ITEM
    first, second = shipment.items.order_by("pk")
    order_code = shipment.order.code
    assert scan(packer, clock, f"{order_code}/{first.code}").outcome == "ok"
    assert scan(packer, clock, f"{order_code}/{first.code}").error == ScanError.EXTRA_UNIT
    assert scan(packer, clock, f"{order_code}/NOPE").error == ScanError.UNKNOWN_CODE
    assert scan(packer, clock, f"{order_code}/{second.code}").outcome == "ok"
    assert station(packer).ticked == [first.pk, second.pk]


def test_a_double_fire_is_ignored_a_later_scan_counts(world, packer, clock):
    picklist, _ = picklist_of(world, 3)
    scan(packer, clock, picklist.code, "TSHIRT")
    repeat = scan(packer, clock, "TSHIRT", seconds=0.3)
    assert repeat.message.startswith("Repeat scan of TSHIRT ignored")
    assert len(station(packer).ticked) == 1
    assert scan(packer, clock, "TSHIRT", seconds=1.6).message == "TSHIRT 2/3; 1 to go."


def test_a_refresh_resumes_from_the_servers_state(world, packer, clock, client):
    picklist, [shipment] = picklist_of(world, 2)
    scan(packer, clock, picklist.code, "TSHIRT")
    client.force_login(packer)
    page = client.get(reverse("admin:stations_station_packing")).content.decode()
    assert f"Shipment {shipment.code}" in page
    assert page.count("✓") == 1 and 'data-outcome="ok"' in page
    response = client.post(reverse("admin:stations_station_packing"), {"scan": "TSHIRT"})
    assert response.status_code == 303  # a plain form post: back to the page, no re-scan
    assert len(station(packer).ticked) == 2


def test_every_unit_scan_takes_the_same_number_of_queries(world, packer, clock):
    picklist, _ = picklist_of(world, 1, 4)
    scan(packer, clock, picklist.code)
    counts = []
    for code in ["TSHIRT", "VALIDATE", "TSHIRT", "TSHIRT", "NOPE", "TSHIRT"]:
        with CaptureQueriesContext(connection) as queries:
            scan(packer, clock, code)
        counts.append(len(queries))
    tick, _, tick2, tick3, unknown, tick4 = counts
    assert tick == tick2 == tick3 == tick4 <= 8, counts
    assert unknown == tick + 1, counts  # the one look-up that tells unknown from wrong


def test_the_database_refuses_two_packing_stations_one_shipment(world, packer, clock):
    picklist, [shipment] = picklist_of(world, 1)
    scan(packer, clock, picklist.code)
    other = UserFactory(username="other", roles=["Pick and Pack"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Station.objects.create(user=other, kind=StationKind.PACKING, shipment=shipment)


@pytest.mark.django_db(transaction=True)
def test_two_stations_racing_for_one_shipment_only_one_gets_it(world):
    picklist, [shipment] = picklist_of(world, 1)
    users = [UserFactory(username=f"packer{n}", roles=["Pick and Pack"]) for n in range(2)]
    start, results = threading.Barrier(2), {}

    def race(user) -> None:
        try:
            start.wait()
            results[user.pk] = packing_scan(user, picklist.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holders = Station.objects.filter(shipment=shipment)
    assert holders.count() == 1
    loser = next(u for u in users if u.pk != holders.get().user_id)
    assert results[loser.pk].error == ScanError.NOTHING_OPEN, results


# --- The manifest handover station -------------------------------------------------------


@pytest.fixture
def handler(db):
    return UserFactory(username="handler", roles=["Warehouse Manager"])


def ready_parcels(world, packer, clock, *quantities: int) -> list[Shipment]:
    picklist, shipments = picklist_of(world, *quantities)
    scan(packer, clock, picklist.code)
    for shipment in shipments:
        units = shipment.items.count()
        scan(packer, clock, *["TSHIRT"] * units, "VALIDATE")
    return [Shipment.objects.get(pk=s.pk) for s in shipments]


def hand_over(user, clock, code: str, seconds: float = 2.0):
    return manifest_scan(user, code, now=clock.tick(seconds))


def test_handing_over_parcels_and_closing_the_manifest(world, packer, handler, clock, client):
    first, second = ready_parcels(world, packer, clock, 1, 1)
    assert hand_over(handler, clock, "CLOSE").error == ScanError.NOTHING_OPEN
    opened = hand_over(handler, clock, first.tracking_number)
    manifest = Manifest.objects.get()
    assert opened.outcome == "ok" and opened.message.endswith("1 parcel(s).")
    assert hand_over(handler, clock, first.tracking_number, 0.2).message.startswith("Repeat")
    again = hand_over(handler, clock, first.tracking_number)
    assert again.error == ScanError.WRONG_STATUS
    assert hand_over(handler, clock, second.code).message.endswith("2 parcel(s).")
    assert hand_over(handler, clock, "AWB-NOBODY").error == ScanError.UNKNOWN_CODE
    closed = hand_over(handler, clock, "CLOSE")
    assert closed.outcome == "done", closed
    assert Manifest.objects.get().status == ManifestStatus.CLOSED
    assert set(Shipment.objects.values_list("status", flat=True)) == {ShipmentStatus.DISPATCHED}
    assert station(handler, StationKind.MANIFEST).handed_over_id == manifest.pk
    assert (
        StateChange.objects.filter(object_id=manifest.pk, transition="close").get().user == handler
    )
    client.force_login(handler)
    sheet = client.get(reverse("admin:stations_station_print", args=["handover", manifest.pk]))
    assert sheet["Content-Type"] == "application/pdf" and sheet.content.startswith(b"%PDF")


def test_handover_refuses_other_routes_held_and_unready_parcels(world, packer, handler, clock):
    first, held, other = ready_parcels(world, packer, clock, 1, 1, 1)
    courier = ProviderFactory(code="DELHIVERY")
    world.facility.shipping_providers.add(courier)
    Shipment.objects.filter(pk=other.pk).update(shipping_provider=courier)
    assert hand_over(handler, clock, first.tracking_number).outcome == "ok"
    refused = hand_over(handler, clock, other.tracking_number)
    assert refused.error == ScanError.OTHER_ROUTE, refused
    assert orders_hold([held.order_id], reason="fraud check").ok
    assert hand_over(handler, clock, held.tracking_number).error == ScanError.ON_HOLD
    assert Shipment.objects.get(pk=other.pk).manifest_id is None
    assert Shipment.objects.get(pk=held.pk).status == ShipmentStatus.READY_TO_SHIP
    fresh = world.order("FK-9", 1)
    assert hand_over(handler, clock, fresh.shipments.get().code).error == ScanError.WRONG_STATUS
    assert list(Shipment.objects.filter(manifest__isnull=False)) == [first]


def test_the_command_sheet_scans_as_the_command_words(packer, client, tmp_path, require_services):
    try:
        from .test_documents_render import decode_page
    except ImportError:
        require_services("Pillow or pyzbar is missing")
    client.force_login(packer)
    sheet = client.get(reverse("admin:stations_station_commands"))
    assert sheet["Content-Type"] == "application/pdf"
    try:
        found = decode_page(sheet.content, tmp_path)
    except (FileNotFoundError, OSError):
        require_services("pdftoppm or zbar is missing (poppler-utils, libzbar0)")
    assert sorted(found) == ["BAD", "CANCEL", "CLOSE", "GOOD", "SPLIT", "UNDO", "VALIDATE"]


def test_a_shipment_another_station_holds_is_refused(world, packer, clock):
    picklist, (first, second) = picklist_of(world, 1, 1)
    scan(packer, clock, picklist.code)
    other = UserFactory(username="other", roles=["Pick and Pack"])
    refused = scan(other, clock, first.code)
    assert (refused.error, station(other).picklist_id) == (ScanError.WRONG_STATUS, None)
    assert scan(other, clock, picklist.code).outcome == "ok"
    assert station(other).shipment_id == second.pk
