"""Amazon Easy Ship against its simulator on loopback: a packed Easy Ship shipment is booked
with Amazon when staff label it (handover slots, the package scheduled, Amazon's label from
the ZIP its pre-signed URL holds), and Amazon's label is printed instead of ours; a refusal
names the shipment and Amazon's reason, and the shipment waits, untouched.

Every request is checked by the simulator against `amazon_shapes` (`no_refused_requests`);
labels are read back with poppler's pdftotext.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels.adapters import ChannelRequestError, adapter_for
from orders.models import ChannelLabel, ShipmentStatus
from orders.printing import labels_pdf
from orders.services import shipments_label_with_channel
from simulator.native import amazon as sim_amazon

from .sync_helpers import advance, channel_order, mirror, native_requests
from .test_documents_render import _tools, pdf_text  # noqa: F401

pytest_plugins = ["tests.sync_fixtures"]
pytestmark = [pytest.mark.dialects("amazon"), pytest.mark.postgres]
CODE = "FLIPKART"  # the world's channel, here of type AMAZON_SP


def operations(sim) -> list[str]:
    return [r["amazonOperation"] for r in native_requests(sim, CODE, "amazon")]


@pytest.fixture
def no_refused_requests(sim):
    yield
    logged = native_requests(sim, CODE, "amazon")
    assert [r for r in logged if r["status"] in (400, 403, 429) and not r["fault"]] == []


def packed_easy_ship(world, sim, code: str, quantity: int = 1):
    """An Easy Ship order (Amazon ships it), mirrored on Amazon, its shipment PACKED here."""
    order = world.order(code, quantity, third_party_shipping=True)
    mirror(sim, order)
    shipment = order.shipments.get()
    advance(shipment, "PACKED")
    shipment.refresh_from_db()
    return order, shipment


def test_labelling_books_the_package_and_prints_amazons_label(
    world, channel, sim, no_refused_requests, tmp_path, admin_client
):
    order, shipment = packed_easy_ship(world, sim, "402-EZ-1", quantity=2)
    ours = world.order("402-SELF-1")  # a self-shipped order: our label, no booking
    mine = ours.shipments.get()
    advance(mine, "PACKED")

    outcome = shipments_label_with_channel([shipment.pk, mine.pk], actor="packer")

    assert outcome.ok, outcome.failed
    shipment.refresh_from_db()
    label = ChannelLabel.objects.get(shipment=shipment)
    assert shipment.status == ShipmentStatus.READY_TO_SHIP
    assert shipment.tracking_number == label.tracking_number
    assert shipment.tracking_number.startswith("AMZEZ")
    assert shipment.shipping_provider.code == "AMAZON_EASY_SHIP"
    assert label.handover.startswith("PICKUP ")
    assert operations(sim).count("createScheduledPackageBulk") == 1  # not for ours
    (request,) = [
        r for r in sim.store.requests(CODE) if r.get("amazonOperation") == "listHandoverSlots"
    ]
    assert request["status"] == 200

    text = pdf_text(labels_pdf([shipment.pk, mine.pk]), tmp_path)
    assert "AMAZON EASY SHIP" in text and f"AWB {shipment.tracking_number}" in text
    assert "Order 402-EZ-1" in text
    mine.refresh_from_db()
    assert mine.tracking_number in text  # ours, rendered by us, on its own page
    page = admin_client.get(reverse("admin:orders_shipment_change", args=[shipment.pk]))
    booked = f"Amazon Easy Ship, AWB {shipment.tracking_number}, PICKUP "
    assert booked in page.content.decode() and "its label is printed" in page.content.decode()


def test_a_refused_booking_names_the_shipment_and_leaves_it_packed(world, channel, sim):
    _, shipment = packed_easy_ship(world, sim, "402-EZ-2")
    sim_amazon.configure(sim.store, CODE, easyShipSlots=False)

    outcome = shipments_label_with_channel([shipment.pk], actor="packer")

    ((name, why),) = outcome.failed
    assert name == shipment.code
    assert "did not book it" in why and "TimeSlotNotAvailable" in why
    shipment.refresh_from_db()
    assert (shipment.status, shipment.tracking_number) == (ShipmentStatus.PACKED, "")
    assert not ChannelLabel.objects.exists()

    sim_amazon.configure(sim.store, CODE, easyShipSlots=True)  # staff label again later
    assert shipments_label_with_channel([shipment.pk], actor="packer").ok


def test_a_booking_whose_answer_was_lost_gets_its_tracking_and_says_where_the_label_is(
    world, channel, sim, no_refused_requests, tmp_path
):
    """Amazon scheduled the package but our record was lost: labelling again reads the
    tracking number back (getScheduledPackage); printing says the label is on Seller Central
    (no call gives it again) instead of printing ours, which Amazon's carrier cannot use."""
    from orders.printing import NotPrintable

    order, shipment = packed_easy_ship(world, sim, "402-EZ-3")
    first = adapter_for(channel).book_shipment(
        "402-EZ-3", [order.items.get().channel_order_item_id]
    )
    assert first.label_pdf.startswith(b"%PDF")

    assert shipments_label_with_channel([shipment.pk], actor="packer").ok

    shipment.refresh_from_db()
    assert shipment.tracking_number == first.tracking_number
    assert operations(sim).count("getScheduledPackage") == 1
    with pytest.raises(NotPrintable) as refused:
        labels_pdf([shipment.pk])
    assert f"shipment {shipment.code} was booked with its channel before" in str(refused.value)


def test_an_order_amazon_does_not_ship_is_not_booked(world, channel, sim):
    sim.store.put_orders(CODE, [channel_order("402-SELF", [("402-SELF-1", "TSHIRT", 1)])])

    with pytest.raises(ChannelRequestError) as refused:
        adapter_for(channel).book_shipment("402-SELF", ["402-SELF-1"])
    assert "ResourceNotFound" in str(refused.value)


def test_a_long_selection_books_what_fits_in_the_request_and_names_the_rest(
    world, channel, sim, monkeypatch
):
    """Booking is about a call a second: one request books for BOOKING_SECONDS at most (a
    web server would cut it off), and names the shipments left to label again."""
    from orders.services import channel_labels

    shipments = [packed_easy_ship(world, sim, f"402-EZ-L{n}")[1] for n in range(3)]
    monkeypatch.setattr(channel_labels, "BOOKING_SECONDS", 0.0)  # time is up after the first

    outcome = shipments_label_with_channel([s.pk for s in shipments], actor="packer")

    assert [s.code for s in outcome.done] == [shipments[0].code]
    assert [name for name, _ in outcome.failed] == [s.code for s in shipments[1:]]
    assert all("label it again" in why for _, why in outcome.failed)
    assert shipments_label_with_channel([s.pk for s in shipments[1:]], actor="packer").done


def test_the_packing_station_labels_an_easy_ship_package_with_amazons_awb(world, channel, sim):
    """At the packing station the last scan invoices, books with Amazon and labels: the
    packer reads Amazon's AWB on the screen, as for any other shipment."""
    from orders.services import picklist_create

    from .factories import UserFactory
    from .test_stations import Clock, scan

    order = world.order("402-EZ-PS", third_party_shipping=True)
    mirror(sim, order)
    shipment = order.shipments.get()
    outcome = picklist_create([shipment.pk], destination="INVOICING", actor="test")
    packer, clock = UserFactory(username="packer", roles=["Pick and Pack"]), Clock()

    scan(packer, clock, outcome.created[0].code, "TSHIRT")
    done = scan(packer, clock, "VALIDATE")

    shipment.refresh_from_db()
    assert done.outcome == "done", done
    assert shipment.status == ShipmentStatus.READY_TO_SHIP
    assert shipment.tracking_number.startswith("AMZEZ")
    assert f"AWB {shipment.tracking_number}" in done.message
    assert ChannelLabel.objects.filter(shipment=shipment).exists()
