"""Work in batches from the picklist that drives it (issue 15): invoice, label and manifest
all its shipments from the picklist; the page lists shelf + SKU × quantity in walk order and
marks shipments of held orders; the shipments list filters by picklist and takes a pasted
list of codes; "add to manifest" names every manifest it used."""

from __future__ import annotations

import pytest

from inventory.models import Inventory, Shelf
from orders.models import Manifest, Order, Picklist, Shipment, ShipmentStatus
from orders.services import orders_hold

from .factories import SkuFactory
from .test_admin import act, fresh, shipment_of, texts, to_status, url


@pytest.fixture
def picked(world):
    world.sku.inventory.update(quantity=50)
    mug = SkuFactory(code="MUG", name="Mug")
    shelf = Shelf.objects.create(facility=world.facility, code="B2")
    Inventory.objects.create(facility=world.facility, shelf=shelf, sku=mug, quantity=5)
    orders = [world.order(f"FK-{n}", quantity=1 + n % 2) for n in range(3)]
    orders.append(world.order("FK-3", sku="MUG"))
    shipments = [shipment_of(o) for o in orders]
    to_status(shipments, ShipmentStatus.PICKED)
    return Picklist.objects.get(), orders, shipments


def test_the_picklist_page_walks_shelf_by_sku_and_marks_held_orders(picked, admin_client):
    picklist, orders, shipments = picked
    orders_hold([orders[1].pk], reason="customer called")

    page = admin_client.get(url(Picklist, "change", picklist.pk))

    walk, listed = page.context["related_tables"][:2]
    assert walk.title == "To pick, in walk order"
    assert [list(r.cells) for r in walk.rows] == [
        ["A1", "TSHIRT", "Red T-shirt", 4],
        ["B2", "MUG", "Mug", 1],
    ]
    assert [r.cells[0] for r in listed.rows] and len(listed.rows) == 4
    held = {str(r.cells[0]): str(r.cells[2]) for r in listed.rows}
    assert (
        "ORDER ON HOLD"
        in held[f'<a href="{url(Shipment, "change", shipments[1].pk)}">{shipments[1].code}</a>']
    )
    assert sum("ORDER ON HOLD" in v for v in held.values()) == 1
    assert f"?picklist={picklist.pk}" in str(listed.note)


def test_the_walk_takes_shelf_a9_before_a10(world, admin_client):
    """Shelves in natural order, as the printed picklist walks them (not A10 before A9)."""
    for code, sku in (("A10", "BAG"), ("A9", "CAP")):
        shelf = Shelf.objects.create(facility=world.facility, code=code)
        Inventory.objects.create(facility=world.facility, shelf=shelf, sku=SkuFactory(code=sku))
        Inventory.objects.filter(shelf=shelf).update(quantity=5)
    shipments = [shipment_of(world.order(f"W-{sku}", sku=sku)) for sku in ("BAG", "CAP")]
    to_status(shipments, ShipmentStatus.PICKING)

    page = admin_client.get(url(Picklist, "change", Picklist.objects.get().pk))

    walk = page.context["related_tables"][0]
    assert [r.cells[0] for r in walk.rows] == ["A9", "A10"]


def test_invoice_label_and_manifest_all_its_shipments_from_the_picklist(picked, admin_client):
    picklist, orders, shipments = picked

    invoiced = act(admin_client, Picklist, "invoice_all", [picklist])
    assert texts(invoiced)[0].startswith("Invoiced 4 shipments:")
    labelled = act(admin_client, Picklist, "label_all", [picklist])
    assert texts(labelled)[0].startswith("Labelled 4 shipments:")
    manifested = act(admin_client, Picklist, "manifest_all", [picklist])

    manifest = Manifest.objects.get()
    [message] = texts(manifested)
    assert message.startswith("Added to a manifest 4 shipments:")
    assert message.endswith(f"Manifests: {manifest.code} (new).")
    assert f'href="{url(Manifest, "change", manifest.pk)}"' in manifested.content.decode()
    assert {fresh(s).status for s in shipments} == {ShipmentStatus.MANIFESTED}


def test_a_second_add_names_the_existing_manifest(world, admin_client):
    world.sku.inventory.update(quantity=50)
    first, second = (shipment_of(world.order(f"FK-{n}")) for n in range(2))
    to_status([first], ShipmentStatus.MANIFESTED)
    to_status([second], ShipmentStatus.READY_TO_SHIP)
    manifest = Manifest.objects.get()

    response = act(admin_client, Shipment, "add_to_manifest", [second])

    assert texts(response)[0].endswith(f"Manifests: {manifest.code}.")  # not "(new)"
    assert fresh(second).manifest_id == manifest.pk


def test_the_shipments_list_filters_by_picklist_and_takes_a_pasted_list(picked, admin_client):
    picklist, orders, shipments = picked
    by_picklist = admin_client.get(url(Shipment), {"picklist": picklist.pk})
    assert {s.pk for s in by_picklist.context["cl"].result_list} == {s.pk for s in shipments}

    pasted = f"{shipments[0].code}, {shipments[2].code}\n{orders[3].code}"
    found = admin_client.get(url(Shipment), {"q": pasted}).context["cl"].result_list
    assert sorted(s.pk for s in found) == sorted(
        [shipments[0].pk, shipments[2].pk, shipments[3].pk]
    )
    orders_found = admin_client.get(url(Order), {"q": pasted}).context["cl"].result_list
    assert sorted(o.pk for o in orders_found) == sorted([orders[0].pk, orders[2].pk, orders[3].pk])
