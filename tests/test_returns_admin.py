"""The cancellation, returns and putaway admin, through the test client as the roles that use
it (Returns Manager, Inbound Manager, Sales Manager) and roles that must be refused."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import Putaway, PutawayStatus, PutawayType
from orders.models import (
    Order,
    OrderItem,
    OrderItemStatus,
    OrderKind,
    ReturnManifest,
    ReversePickup,
    ReversePickupStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import reverse_pickup_create, shipments_expect_return, units_cancel
from uniware.core.models import Traceability

from .factories import UserFactory
from .returns_flow import (
    advance,
    fresh,
    return_invoice_sequence,
    shelf,
    shipment_of,
    stock,
    traceability,
)

GOOD = ("A1", "TSHIRT", "GOOD_INVENTORY")


@pytest.fixture
def world(world):
    return_invoice_sequence(world)
    return world


@pytest.fixture
def login(client):
    def as_role(*roles: str):
        client.force_login(UserFactory(roles=list(roles)))
        return client

    return as_role


def url(model, view: str = "changelist", *args) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def act(client, model, action: str, objs, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objs], "index": 0, **extra}
    return client.post(url(model), data, follow=True)


def confirm(client, model, action: str, objs, **fields):
    """Submit an action's intermediate page, as its form does."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objs], "confirm": "yes"}
    return client.post(url(model), {**data, **fields}, follow=True)


def texts(response) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", str(m).replace("<li>", " ")) for m in response.context["messages"]
    ]


def action_names(client, model) -> set[str]:
    response = client.get(url(model))
    if response.status_code != 200:
        return set()
    form = response.context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


def buttons(client, obj) -> list[str]:
    page = client.get(url(type(obj), "change", obj.pk))
    return [b["name"] for b in page.context["object_action_buttons"]]


def pending_putaway(world, coid="FK-1", quantity=1, stage=ShipmentStatus.PICKED) -> Putaway:
    order = world.order(coid, quantity)
    advance(shipment_of(order), stage)
    outcome = units_cancel(list(order.items.values_list("pk", flat=True)), reason="test")
    return outcome.created[0]


# --- Putaway work list ------------------------------------------------------------------------


def test_inbound_manager_sees_the_pending_work_list_per_facility_and_type(world, login):
    picked = pending_putaway(world, "FK-1", 2)
    invoiced = pending_putaway(world, "FK-2", 1, ShipmentStatus.PACKED)
    done = pending_putaway(world, "FK-3", 1)
    from inventory.putaway import putaways_complete

    putaways_complete([done.pk])
    client = login("Inbound Manager")
    response = client.get(url(Putaway))
    assert response.status_code == 200
    listed = [p.code for p in response.context["cl"].result_list]
    assert sorted(listed) == sorted([picked.code, invoiced.code])  # pending only by default
    work = response.context["work_list"]
    rows = [[re.sub(r"<[^>]+>", "", str(c)) for c in r.cells] for r in work.rows]
    assert rows == [  # sorted by facility, then type code
        ["WH1", PutawayType.PUTAWAY_CANCELLED_ITEM.label, "1", "1"],
        ["WH1", PutawayType.PUTAWAY_PICKLIST_ITEM.label, "1", "2"],
    ]
    link = str(work.rows[1].cells[2])
    assert "putaway_type__exact=PUTAWAY_PICKLIST_ITEM" in link
    assert f"facility__id__exact={world.facility.pk}" in link
    filtered = client.get(url(Putaway), {"putaway_type__exact": "PUTAWAY_PICKLIST_ITEM"})
    assert [p.code for p in filtered.context["cl"].result_list] == [picked.code]
    everything = client.get(url(Putaway), {"state": "all"}).context["cl"].result_list
    assert len(everything) == 3
    assert action_names(client, Putaway) == {"complete", "discard"}


def test_complete_on_an_intermediate_page_unit_by_unit(world, login):
    putaway = pending_putaway(world, "FK-1", 2)
    first, second = putaway.items.order_by("pk")
    shelf(world, "DMG")
    client = login("Inbound Manager")
    assert buttons(client, putaway) == ["complete", "discard"]

    page = act(client, Putaway, "complete", [putaway])
    assert page.templates[0].name == "admin/uniware/action_form.html"
    assert len(page.context["rows"]) == 2
    assert f'name="type_{first.pk}"' in page.content.decode()
    assert stock() == {GOOD: (8, 0)}  # nothing happens before confirming

    bad_shelf = confirm(
        client, Putaway, "complete", [putaway], inventory_type="GOOD_INVENTORY", shelf_code="ZZ"
    )
    assert "No shelf &#x27;ZZ&#x27; in WH1." in bad_shelf.content.decode()
    assert fresh(putaway).status == PutawayStatus.CREATED
    # a unit's own wrong shelf is shown in its row, not lost (issue 15)
    bad_row = confirm(
        client,
        Putaway,
        "complete",
        [putaway],
        inventory_type="GOOD_INVENTORY",
        **{f"type_{second.pk}": "BAD_INVENTORY", f"shelf_{second.pk}": "NOPE"},
    )
    html = bad_row.content.decode()
    assert "Please correct the error below." in html
    row = html[
        html.index(f'name="shelf_{second.pk}"') - 400 : html.index(f'name="shelf_{second.pk}"')
    ]
    assert 'class="errors"' in row and "No shelf &#x27;NOPE&#x27; in WH1." in row
    assert fresh(putaway).status == PutawayStatus.CREATED

    response = confirm(
        client,
        Putaway,
        "complete",
        [putaway],
        inventory_type="GOOD_INVENTORY",
        shelf_code="",
        **{f"type_{second.pk}": "BAD_INVENTORY", f"shelf_{second.pk}": "DMG"},
    )
    assert texts(response) == [f"Completed 1 putaway: {putaway.code}."]
    assert fresh(putaway).status == PutawayStatus.COMPLETE
    assert stock() == {GOOD: (9, 0), ("DMG", "TSHIRT", "BAD_INVENTORY"): (1, 0)}
    page = client.get(url(Putaway, "change", putaway.pk)).content.decode()
    order = first.order_item.order
    assert url(Order, "change", order.pk) in page  # each unit links to its order page


def test_returns_manager_discards_with_a_reason(world, login):
    putaway = pending_putaway(world)
    client = login("Returns Manager")
    page = act(client, Putaway, "discard", [putaway])
    assert "reason" in page.context["form"].fields
    empty = confirm(client, Putaway, "discard", [putaway], reason="")
    assert empty.context["form"].errors
    response = confirm(client, Putaway, "discard", [putaway], reason="lost in the warehouse")
    assert texts(response) == [f"Discarded 1 putaway: {putaway.code}."]
    assert fresh(putaway).discard_reason == "lost in the warehouse"
    assert stock() == {GOOD: (9, 0)}


@pytest.mark.parametrize("role", ["Pick and Pack", "Sales Manager", "Catalog Manager"])
def test_roles_without_the_permission_cannot_complete_or_discard(world, login, role):
    putaway = pending_putaway(world)
    client = login(role)
    assert not ({"complete", "discard"} & action_names(client, Putaway))
    confirm(client, Putaway, "complete", [putaway], inventory_type="GOOD_INVENTORY")
    confirm(client, Putaway, "discard", [putaway], reason="x")
    assert fresh(putaway).status == PutawayStatus.CREATED
    assert stock() == {GOOD: (9, 0)}


def test_putaway_changelist_queries_do_not_grow_with_rows(world, admin_client):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url(Putaway), {"state": "all"}).status_code == 200
        return len(queries)

    pending_putaway(world, "FK-1")
    few = count()
    for k in range(2, 7):
        pending_putaway(world, f"FK-{k}")
    assert count() == few


# --- Cancelling from the order and unit pages -------------------------------------------------


def test_sales_manager_cancels_an_order_with_a_reason(world, login):
    order = world.order("FK-1", 2)
    client = login("Sales Manager")
    assert "cancel_orders" in buttons(client, order)
    page = act(client, Order, "cancel_orders", [order])
    assert page.context["form"].fields["reason"].max_length == 100
    too_long = confirm(client, Order, "cancel_orders", [order], reason="x" * 101)
    assert too_long.context["form"].errors["reason"]
    assert fresh(order).status == "CREATED"

    back = url(Order, "change", order.pk)
    response = confirm(
        client, Order, "cancel_orders", [order], reason="customer asked", _return_to=back
    )
    assert response.redirect_chain[-1][0] == back
    assert texts(response) == [f"Cancelled 1 order: {order.code}."]
    assert fresh(order).status == "CANCELLED"
    assert set(order.items.values_list("cancellation_reason", flat=True)) == {"customer asked"}
    assert stock() == {GOOD: (10, 0)}


def test_cancelling_units_reports_per_unit_and_links_the_putaway(world, login):
    order = world.order("FK-1", 2)
    advance(shipment_of(order), ShipmentStatus.PICKED)
    first, second = order.items.order_by("pk")
    client = login("Sales Manager")
    response = confirm(client, OrderItem, "cancel_units", [first], reason="one unit less")
    [message] = texts(response)
    assert message.startswith(f"Cancelled 1 unit: {order.code}/{first.code}. Created PA-")
    again = confirm(client, OrderItem, "cancel_units", [first], reason="again")
    assert texts(again) == [
        f"Could not cancel 1 unit: {order.code}/{first.code}: unit is CANCELLED: nothing left "
        "to cancel"
    ]
    assert fresh(second).status == OrderItemStatus.PICKING_FOR_INVOICING


@pytest.mark.parametrize("role", ["Pick and Pack", "Returns Manager", "Inbound Manager"])
def test_roles_that_cannot_cancel(world, login, role):
    order = world.order("FK-1", 1)
    client = login(role)
    assert "cancel_orders" not in action_names(client, Order)
    assert "cancel_units" not in action_names(client, OrderItem)
    confirm(client, Order, "cancel_orders", [order], reason="x")
    assert fresh(order).status == "CREATED"


# --- Courier returns from the shipment and order pages ---------------------------------------


def test_returns_manager_expects_and_marks_a_return_from_the_shipment_page(world, login):
    order = world.order("FK-1", 1)
    shipment = shipment_of(order)
    advance(shipment, ShipmentStatus.DISPATCHED)
    client = login("Returns Manager")
    assert buttons(client, shipment) == ["expect_return", "mark_returned"]
    response = act(client, Shipment, "expect_return", [shipment])
    assert texts(response) == [f"Expecting the return of 1 shipment: {shipment.code}."]
    assert fresh(shipment).status == ShipmentStatus.RETURN_EXPECTED
    assert buttons(client, fresh(shipment)) == ["receive_return", "mark_returned"]

    shelf(world, "RET")
    page = act(client, Shipment, "mark_returned", [shipment])
    assert page.templates[0].name == "admin/uniware/action_form.html"
    response = confirm(
        client,
        Shipment,
        "mark_returned",
        [shipment],
        inventory_type="BAD_INVENTORY",
        shelf_code="RET",
    )
    assert texts(response) == [f"Marked returned 1 shipment: {shipment.code}."]
    assert fresh(shipment).status == ShipmentStatus.RETURNED
    assert stock() == {GOOD: (9, 0), ("RET", "TSHIRT", "BAD_INVENTORY"): (1, 0)}


def test_mark_returned_from_the_order_page(world, login):
    order = world.order("FK-1", 1)
    advance(shipment_of(order), ShipmentStatus.SHIPPED)
    client = login("Returns Manager")
    assert "mark_orders_returned" in buttons(client, order)
    response = confirm(
        client, Order, "mark_orders_returned", [order], inventory_type="GOOD_INVENTORY"
    )
    assert texts(response) == [f"Marked returned 1 shipment: {shipment_of(order).code}."]
    assert stock() == {GOOD: (10, 0)}
    tables = {
        t.title: t for t in client.get(url(Order, "change", order.pk)).context["related_tables"]
    }
    assert "Returns" in tables and "Units on putaways" in tables
    assert "Courier return" in str(tables["Returns"].rows[0].cells[1])


def test_item_traceability_receive_close_and_put_away(world, login):
    traceability(Traceability.ITEM)
    order = world.order("FK-1", 1)
    shipment = shipment_of(order)
    advance(shipment, ShipmentStatus.DISPATCHED)
    shipments_expect_return([shipment.pk])
    client = login("Returns Manager")
    assert buttons(client, fresh(shipment)) == ["receive_return"]  # no mark returned
    response = act(client, Shipment, "receive_return", [shipment])
    manifest = ReturnManifest.objects.get()
    assert texts(response)[0].startswith(f"Received 1 shipment: {shipment.code}. Created")
    assert buttons(client, manifest) == ["receive_shipments", "close"]
    response = act(client, ReturnManifest, "close", [manifest])
    putaway = Putaway.objects.get()
    assert putaway.putaway_type == PutawayType.PUTAWAY_COURIER_RETURNED_ITEMS
    assert putaway.code in texts(response)[0]
    response = confirm(
        client, Putaway, "complete", [putaway], inventory_type="GOOD_INVENTORY", shelf_code=""
    )
    assert fresh(shipment).status == ShipmentStatus.RETURNED and stock() == {GOOD: (10, 0)}


def test_return_manifest_add_form_and_scanning(world, login):
    first = world.order("FK-1", 1)
    second = world.order("FK-2", 1)
    advance([shipment_of(first), shipment_of(second)], ShipmentStatus.DISPATCHED)
    shipments_expect_return([shipment_of(first).pk])
    client = login("Returns Manager")
    response = client.post(
        url(ReturnManifest, "add"),
        {"facility": world.facility.pk, "shipping_provider": "", "comments": "evening van"},
        follow=True,
    )
    assert response.status_code == 200
    manifest = ReturnManifest.objects.get()
    assert manifest.code.startswith("RMF-") and manifest.comments == "evening van"

    awb = shipment_of(first).tracking_number
    scan = f"{awb}\n{shipment_of(second).code}, NOPE"
    response = confirm(client, ReturnManifest, "receive_shipments", [manifest], codes=scan)
    [done, failed] = texts(response)
    assert done == f"Received 1 shipment: {shipment_of(first).code}."
    assert f"{shipment_of(second).code}: Shipment {shipment_of(second).code} is DISPATCHED" in (
        failed
    )
    assert "NOPE: no shipment has this code or AWB" in failed
    assert shipment_of(first).status == ShipmentStatus.RETURN_ACKNOWLEDGED


# --- Reverse pickups, reship, replace ---------------------------------------------------------


def test_reverse_pickup_from_the_order_page_to_complete(world, login):
    order = world.order("FK-1", 2)
    advance(shipment_of(order), ShipmentStatus.DELIVERED)
    client = login("Returns Manager")
    assert "create_order_reverse_pickup" in buttons(client, order)
    response = confirm(client, Order, "create_order_reverse_pickup", [order], reason="wrong colour")
    pickup = ReversePickup.objects.get()
    assert texts(response) == [f"Created reverse pickup {pickup.code} for 2 units."]
    assert buttons(client, pickup) == ["allocate_courier", "cancel"]
    missing = confirm(client, ReversePickup, "allocate_courier", [pickup], return_awb="R1")
    assert "Name the courier" in missing.content.decode()
    confirm(
        client,
        ReversePickup,
        "allocate_courier",
        [pickup],
        courier_name="Delhivery",
        courier_code="DEL",
        return_awb="R1",
    )
    assert fresh(pickup).status == ReversePickupStatus.COURIER_ALLOCATED
    response = act(client, ReversePickup, "complete", [pickup])
    putaway = Putaway.objects.get()
    assert putaway.putaway_type == PutawayType.PUTAWAY_REVERSE_PICKUP_ITEM
    assert texts(response)[0].startswith(f"Completed 1 reverse pickup: {pickup.code}.")
    page = client.get(url(Order, "change", order.pk))
    titles = [t.title for t in page.context["related_tables"]]
    assert "Returns" in titles and "Units on putaways" in titles


def test_reverse_pickup_cancel_needs_a_reason_and_sales_cannot(world, login):
    order = world.order("FK-1", 1)
    advance(shipment_of(order), ShipmentStatus.DISPATCHED)
    pickup = reverse_pickup_create([order.items.get().pk], reason="defective")
    assert "cancel" not in action_names(login("Sales Manager"), ReversePickup)
    client = login("Returns Manager")
    confirm(client, ReversePickup, "cancel", [pickup], reason="")
    assert fresh(pickup).status == ReversePickupStatus.CREATED
    confirm(client, ReversePickup, "cancel", [pickup], reason="customer kept it")
    assert fresh(pickup).status == ReversePickupStatus.CANCELLED


def test_reship_and_replace_from_the_units_list(world, login, django_capture_on_commit_callbacks):
    returned = world.order("FK-1", 1)
    delivered = world.order("FK-2", 1)
    advance([shipment_of(returned), shipment_of(delivered)], ShipmentStatus.DISPATCHED)
    from orders.services import shipments_deliver

    shipments_deliver([shipment_of(delivered).pk])
    shipments_expect_return([shipment_of(returned).pk])
    client = login("Returns Manager")
    assert {"reship_units", "replace_units", "create_unit_reverse_pickup"} <= action_names(
        client, OrderItem
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(
            client,
            OrderItem,
            "reship_units",
            [returned.items.get()],
            option="RESHIP_EXPECT_RETURN",
        )
    reship = Order.objects.get(kind=OrderKind.RESHIPMENT)
    assert texts(response)[0].startswith("Reshipped (or waiting for their return) 1 unit")
    assert reship.code in texts(response)[0]
    assert reship.items.get().status == OrderItemStatus.FULFILLABLE
    with django_capture_on_commit_callbacks(execute=True):
        confirm(client, OrderItem, "replace_units", [delivered.items.get()], reason="broken")
    replacement = Order.objects.get(kind=OrderKind.REPLACEMENT)
    assert delivered.items.get().status == OrderItemStatus.REPLACED
    tables = {
        t.title: t for t in client.get(url(Order, "change", delivered.pk)).context["related_tables"]
    }
    assert replacement.code in str(tables["Reshipment and replacement orders"].rows[0].cells[0])
    follow = client.get(url(Order, "change", replacement.pk)).context["related_tables"]
    assert any(delivered.code in str(t.note) for t in follow)


@pytest.mark.parametrize("role", ["Sales Manager", "Pick and Pack", "Inbound Manager"])
def test_roles_without_return_permissions(world, login, role):
    order = world.order("FK-1", 1)
    shipment = shipment_of(order)
    advance(shipment, ShipmentStatus.DISPATCHED)
    client = login(role)
    names = action_names(client, Shipment) | action_names(client, OrderItem)
    assert not names & {"expect_return", "mark_returned", "reship_units", "replace_units"}
    act(client, Shipment, "expect_return", [shipment])
    assert fresh(shipment).status == ShipmentStatus.DISPATCHED
    assert not ({"close", "receive_shipments"} & action_names(client, ReturnManifest))


def test_order_page_queries_do_not_grow_with_returned_units(world, admin_client):
    def count(quantity: int, coid: str) -> int:
        order = world.order(coid, quantity)
        advance(shipment_of(order), ShipmentStatus.DELIVERED)
        reverse_pickup_create(list(order.items.values_list("pk", flat=True)), reason="x")
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url(Order, "change", order.pk)).status_code == 200
        return len(queries)

    assert count(1, "FK-1") == count(5, "FK-2")


# --- Roles ------------------------------------------------------------------------------------

ROLE_RETURN_PERMISSIONS = {
    "Returns Manager": (
        {
            "orders.return_shipment",
            "orders.add_returnmanifest",
            "orders.close_returnmanifest",
            "orders.add_reversepickup",
            "orders.change_reversepickup",
            "orders.complete_reversepickup",
            "orders.reship_orderitem",
            "orders.replace_orderitem",
            "inventory.view_putaway",
            "inventory.complete_putaway",
            "inventory.discard_putaway",
        },
        {"orders.cancel_order", "inventory.delete_putaway", "orders.delete_reversepickup"},
    ),
    "Inbound Manager": (
        {"inventory.view_putaway", "inventory.complete_putaway", "inventory.discard_putaway"},
        {"orders.return_shipment", "orders.cancel_order", "orders.reship_orderitem"},
    ),
    "Sales Manager": (
        {"orders.cancel_order"},
        {
            "orders.return_shipment",
            "orders.complete_reversepickup",
            "orders.reship_orderitem",
            "inventory.complete_putaway",
        },
    ),
    "Pick and Pack": (
        set(),
        {
            "orders.cancel_order",
            "orders.return_shipment",
            "orders.close_returnmanifest",
            "inventory.complete_putaway",
        },
    ),
    "Warehouse Manager": (
        {
            "orders.cancel_order",
            "orders.return_shipment",
            "orders.complete_reversepickup",
            "orders.reship_orderitem",
            "inventory.complete_putaway",
        },
        {"inventory.delete_putaway"},
    ),
}


@pytest.mark.parametrize("role", list(ROLE_RETURN_PERMISSIONS))
def test_roles_get_the_return_permissions(db, role):
    user = UserFactory(roles=[role])
    has, has_not = ROLE_RETURN_PERMISSIONS[role]
    assert {p for p in has if not user.has_perm(p)} == set()
    assert {p for p in has_not if user.has_perm(p)} == set()
