"""The Django admin, through the test client, as staff users of each relevant role.

Bulk actions are POSTed to the changelists as a browser does (`action` + `_selected_action`);
each test checks the resulting statuses and the per-object messages.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_fsm import ConcurrentTransition

from channels.models import Channel
from inventory.models import Facility, Inventory, Serviceability, Shelf, Sku
from orders.models import (
    Invoice,
    Manifest,
    ManifestStatus,
    Order,
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import (
    LineInput,
    OrderInput,
    order_create,
    picklist_create,
    picklist_receive,
    shipments_generate_label,
    shipments_invoice,
    shipments_manifest,
)
from uniware.core.admin_utils import FastCountPaginator
from uniware.core.models import Sequence, StateChange, Tenant

from .factories import ChannelFactory, SkuFactory, UserFactory
from .returns_flow import make_return_records
from .sync_helpers import make_sync_records

# --- Helpers --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def login(client):
    """`login("Pick and Pack")` → the test client, logged in as a staff user of that role."""

    def as_role(*roles: str):
        client.force_login(UserFactory(roles=list(roles)))
        return client

    return as_role


def url(model, view: str = "changelist", *args) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def act(client, model, action: str, objs, **extra):
    """POST a bulk action to the changelist, as the action bar does."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objs], "index": 0, **extra}
    return client.post(url(model), data, follow=True)


def texts(response) -> list[str]:
    """The messages shown, as plain text."""
    return [
        re.sub(r"<[^>]+>", "", str(m).replace("<li>", " ")) for m in response.context["messages"]
    ]


def action_names(client, model) -> set[str]:
    response = client.get(url(model))
    assert response.status_code == 200
    form = response.context["action_form"]
    if form is None:  # no action the user may run
        return set()
    return {name for name, _ in form.fields["action"].choices if name}


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def shipment_of(order: Order) -> Shipment:
    return Shipment.objects.get(order=order)


def to_status(shipments: list[Shipment], status: str) -> None:
    """Move shipments along the forward flow with the services (test set-up)."""
    ids = [s.pk for s in shipments]
    steps = [
        ShipmentStatus.PICKING,
        ShipmentStatus.PICKED,
        ShipmentStatus.PACKED,
        ShipmentStatus.READY_TO_SHIP,
        ShipmentStatus.MANIFESTED,
    ]
    for step in steps[: steps.index(status) + 1]:
        if step == ShipmentStatus.PICKING:
            outcome = picklist_create(ids, destination="INVOICING")
        elif step == ShipmentStatus.PICKED:
            outcome = picklist_receive(
                Picklist.objects.filter(status=PicklistStatus.CREATED).values_list("pk", flat=True)
            )
        elif step == ShipmentStatus.PACKED:
            outcome = shipments_invoice(ids)
        elif step == ShipmentStatus.READY_TO_SHIP:
            outcome = shipments_generate_label(ids)
        else:
            outcome = shipments_manifest(ids)
        assert not outcome.failed, outcome.failed
    assert {fresh(s).status for s in shipments} == {status}


# --- Registration ---------------------------------------------------------------------------

REGISTERED = {
    "core.tenant",
    "core.sequence",
    "core.statechange",
    "core.adminauditevent",
    "inventory.facility",
    "inventory.shelf",
    "inventory.sku",
    "inventory.inventory",
    "inventory.shippingprovider",
    "inventory.serviceability",
    "channels.channel",
    "channels.syncrun",
    "channels.syncerror",
    "channels.synccursor",
    "channels.synclease",
    "orders.order",
    "orders.orderitem",
    "orders.shipment",
    "orders.invoice",
    "orders.picklist",
    "orders.manifest",
    "orders.returnmanifest",
    "orders.reversepickup",
    "inventory.putaway",
    "inventory.stockmovement",
}


def test_every_model_is_registered():
    from django.contrib import admin

    ours = {
        f"{m._meta.app_label}.{m._meta.model_name}"
        for m in admin.site._registry
        if m._meta.app_label in {"core", "inventory", "channels", "orders"}
    }
    assert ours == REGISTERED


def test_every_changelist_and_change_page_renders(world, admin_client):
    order = world.order("FK-1", 2)
    to_status([shipment_of(order)], ShipmentStatus.MANIFESTED)
    make_sync_records(world.channel, order)
    make_return_records(world)
    from django.apps import apps

    for label in sorted(REGISTERED):
        model = apps.get_model(label)
        response = admin_client.get(url(model), follow=True)
        assert response.status_code == 200, label
        obj = model.objects.first()
        assert obj is not None, label
        assert admin_client.get(url(model, "change", obj.pk)).status_code == 200, label


# --- The forward flow, by role ---------------------------------------------------------------


def test_pick_and_pack_takes_a_shipment_from_picklist_to_dispatch(world, login):
    order = world.order("FK-1", 2)
    shipment = shipment_of(order)
    client = login("Pick and Pack")

    response = act(client, Shipment, "pick_for_invoicing", [shipment])
    assert fresh(shipment).status == ShipmentStatus.PICKING
    picklist = Picklist.objects.get()
    assert f"Put on a picklist for invoicing 1 shipment: {shipment.code}" in texts(response)[0]
    assert picklist.code in texts(response)[0]

    response = act(client, Picklist, "receive", [picklist])
    assert fresh(picklist).status == PicklistStatus.RECEIVED
    assert fresh(shipment).status == ShipmentStatus.PICKED
    assert texts(response) == [f"Received 1 picklist: {picklist.code}."]

    response = act(client, Shipment, "invoice", [shipment])
    assert fresh(shipment).status == ShipmentStatus.PACKED
    assert Invoice.objects.get(shipment=shipment).code == "INV-WH1-000001"
    assert texts(response) == [f"Invoiced 1 shipment: {shipment.code}."]
    assert fresh(picklist).status == PicklistStatus.CLOSED

    response = act(client, Shipment, "generate_label", [shipment])
    assert fresh(shipment).status == ShipmentStatus.READY_TO_SHIP
    assert fresh(shipment).tracking_number.startswith("BLUEDART")

    response = act(client, Shipment, "add_to_manifest", [shipment])
    manifest = Manifest.objects.get()
    assert fresh(shipment).status == ShipmentStatus.MANIFESTED
    assert fresh(shipment).manifest == manifest
    assert manifest.code in texts(response)[0]

    response = act(client, Manifest, "close", [manifest])
    assert fresh(manifest).status == ManifestStatus.CLOSED
    assert fresh(shipment).status == ShipmentStatus.DISPATCHED
    assert fresh(order).status == OrderStatus.COMPLETE
    assert set(order.items.values_list("status", flat=True)) == {OrderItemStatus.DISPATCHED}
    assert texts(response) == [f"Closed 1 manifest: {manifest.code} (1 shipment dispatched)."]
    assert fresh(world.inventory).quantity == 8

    # Shipped and delivered need the Warehouse Manager's deliver permission.
    assert "mark_shipped" not in action_names(client, Shipment)
    client = login("Warehouse Manager")
    act(client, Shipment, "mark_shipped", [shipment])
    assert fresh(shipment).status == ShipmentStatus.SHIPPED
    response = act(client, Shipment, "mark_delivered", [shipment])
    assert fresh(shipment).status == ShipmentStatus.DELIVERED
    assert set(order.items.values_list("status", flat=True)) == {OrderItemStatus.DELIVERED}
    assert texts(response) == [f"Marked delivered 1 shipment: {shipment.code}."]


def test_staging_picklist_then_invoicing_picklist(world, login):
    shipment = shipment_of(world.order("FK-1"))
    client = login("Pick and Pack")
    act(client, Shipment, "pick_for_staging", [shipment])
    staged = Picklist.objects.get()
    assert staged.destination == "STAGING"
    act(client, Picklist, "receive", [staged])
    assert fresh(shipment).status == ShipmentStatus.PICKED
    response = act(client, Shipment, "invoice", [shipment])
    assert fresh(shipment).status == ShipmentStatus.PICKED
    assert "staged units need an INVOICING picklist" in texts(response)[0]
    act(client, Shipment, "pick_for_invoicing", [shipment])
    assert fresh(shipment).status == ShipmentStatus.PICKING
    assert Picklist.objects.count() == 2


def test_invoice_reports_each_shipment_that_failed_and_why(world, login):
    """Two facilities; WH2 has no INVOICE sequence: its shipment fails with the reason, the
    other one is invoiced."""
    wh2 = Facility.objects.create(code="WH2", name="Second", priority=2)
    wh2.shipping_providers.add(world.provider)
    shelf2 = Shelf.objects.create(facility=wh2, code="B1")
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    Inventory.objects.create(facility=wh2, shelf=shelf2, sku=world.sku, quantity=5)
    first, second = world.order("FK-1"), world.order("FK-2")
    ok, bad = shipment_of(first), shipment_of(second)
    assert (ok.facility.code, bad.facility.code) == ("WH1", "WH2")
    to_status([ok, bad], ShipmentStatus.PICKED)

    response = act(login("Pick and Pack"), Shipment, "invoice", [ok, bad])

    assert (fresh(ok).status, fresh(bad).status) == (ShipmentStatus.PACKED, ShipmentStatus.PICKED)
    assert not Invoice.objects.filter(shipment=bad).exists()
    success, failure = texts(response)
    assert success == f"Invoiced 1 shipment: {ok.code}."
    assert "Could not invoice 1 shipment" in failure
    assert f"{bad.code}: Sequence INVOICE is not defined for facility WH2" in failure


def test_an_illegal_step_is_reported_per_object_not_a_500(world, login):
    created = shipment_of(world.order("FK-1"))
    picked = shipment_of(world.order("FK-2"))
    to_status([picked], ShipmentStatus.PICKED)
    response = act(login("Pick and Pack"), Shipment, "generate_label", [created, picked])
    assert response.status_code == 200
    failure = texts(response)[0]
    assert "Could not label 2 shipments" in failure
    assert f"{created.code}: Shipment {created.code} is CREATED: cannot mark ready to ship" in (
        failure
    )
    assert (
        fresh(created).status == ShipmentStatus.CREATED
        and fresh(picked).status == ShipmentStatus.PICKED
    )


def test_a_concurrent_change_becomes_an_error_message(world, login, monkeypatch):
    shipment = shipment_of(world.order("FK-1"))

    def raced(*args, **kwargs):
        raise ConcurrentTransition("Shipments changed by someone else; nothing was changed")

    monkeypatch.setattr("orders.admin.shipments.shipments_invoice", raced)
    response = act(login("Pick and Pack"), Shipment, "invoice", [shipment])
    assert response.status_code == 200
    assert texts(response) == ["Shipments changed by someone else; nothing was changed"]


# --- Permissions ----------------------------------------------------------------------------


def test_pick_and_pack_can_invoice_but_cannot_force_dispatch(world, login):
    shipment = shipment_of(world.order("FK-1"))
    client = login("Pick and Pack")
    names = action_names(client, Shipment)
    assert {"invoice", "generate_label", "pick_for_invoicing", "add_to_manifest"} <= names
    assert not {"force_dispatch", "merge", "split", "mark_delivered"} & names

    response = act(client, Shipment, "force_dispatch", [shipment])  # POSTed anyway
    assert fresh(shipment).status == ShipmentStatus.CREATED
    assert texts(response) == ["No action selected."]


def test_warehouse_manager_can_force_dispatch(world, login):
    shipment = shipment_of(world.order("FK-1", 2))
    response = act(login("Warehouse Manager"), Shipment, "force_dispatch", [shipment])
    assert fresh(shipment).status == ShipmentStatus.DISPATCHED
    assert texts(response) == [f"Dispatched 1 shipment: {shipment.code}."]
    assert Invoice.objects.filter(shipment=shipment).exists()  # invoiced on the way
    change = StateChange.objects.get(object_code=shipment.code, transition="force_dispatch")
    assert change.reason == "force dispatched from the admin"
    assert change.actor.startswith("user")


def test_force_dispatch_with_item_traceability_refuses_unpacked_shipments(world, login):
    Tenant.objects.filter(pk=1).update(traceability="ITEM")
    shipment = shipment_of(world.order("FK-1"))
    response = act(login("Warehouse Manager"), Shipment, "force_dispatch", [shipment])
    assert fresh(shipment).status == ShipmentStatus.CREATED
    assert "with ITEM traceability only PACKED" in texts(response)[0]


def test_sales_manager_holds_orders_but_cannot_close_manifests(world, login):
    order = world.order("FK-1")
    shipment = shipment_of(order)
    to_status([shipment], ShipmentStatus.MANIFESTED)
    manifest = Manifest.objects.get()
    client = login("Sales Manager")

    assert {"hold", "unhold", "allocate", "accept"} <= action_names(client, Order)
    response = act(client, Order, "hold", [order])
    assert fresh(order).on_hold is True
    assert texts(response) == [f"Put on hold 1 order: {order.code}."]

    assert client.get(url(Manifest)).status_code == 403
    response = client.post(url(Manifest), {"action": "close", ACTION_CHECKBOX_NAME: [manifest.pk]})
    assert response.status_code == 403
    assert fresh(manifest).status == ManifestStatus.CREATED
    assert fresh(shipment).status == ShipmentStatus.MANIFESTED


def test_pick_and_pack_cannot_hold_or_allocate_orders(world, login):
    order = world.order("FK-1")
    client = login("Pick and Pack")
    assert action_names(client, Order) == set()
    response = act(client, Order, "hold", [order])  # POSTed anyway: shown the list, no change
    assert response.status_code == 200
    assert fresh(order).on_hold is False
    assert texts(response) == []


def test_catalog_manager_sees_no_orders(world, login):
    client = login("Catalog Manager")
    assert client.get(url(Order)).status_code == 403
    assert client.get(url(Sku)).status_code == 200


# --- Order actions --------------------------------------------------------------------------


def _order(world, coid: str, *lines: tuple[str, int], allocate=True, **kwargs) -> Order:
    return order_create(
        OrderInput(
            channel=world.channel,
            channel_order_id=coid,
            ship_pincode=kwargs.pop("pincode", "560001"),
            lines=[LineInput(f"{coid}-{n}", sku, qty, "100") for n, (sku, qty) in enumerate(lines)],
            **kwargs,
        ),
        allocate=allocate,
    )


def test_allocate_reports_per_order(world, login):
    SkuFactory(code="MUG", name="Mug")  # no stock anywhere
    ready = _order(world, "A-1", ("TSHIRT", 2), allocate=False)
    no_stock = _order(world, "A-2", ("MUG", 1), allocate=False)
    held = _order(world, "A-3", ("TSHIRT", 1), allocate=False, on_hold=True)
    far = _order(world, "A-4", ("TSHIRT", 1), allocate=False, pincode="999999")
    done = world.order("A-5")

    response = act(login("Sales Manager"), Order, "allocate", [ready, no_stock, held, far, done])

    assert set(ready.items.values_list("status", flat=True)) == {OrderItemStatus.FULFILLABLE}
    assert no_stock.items.get().status == OrderItemStatus.UNFULFILLABLE
    assert held.items.get().status == OrderItemStatus.CREATED
    assert far.items.get().status == OrderItemStatus.LOCATION_NOT_SERVICEABLE
    success, failure = texts(response)
    assert success == f"Allocated 1 order: {ready.code} (2 fulfillable)."
    assert f"{no_stock.code}: no stock in any facility (1 unfulfillable)" in failure
    assert f"{held.code}: the order is on hold; unhold it first" in failure
    assert f"{far.code}: stock blocked but no shipping provider serves" in failure
    assert f"{done.code}: no units are waiting for allocation" in failure


def test_hold_unhold_and_their_refusals(world, login):
    order = world.order("FK-1")
    client = login("Sales Manager")
    act(client, Order, "hold", [order])
    response = act(client, Order, "hold", [order])
    assert f"{order.code}: already on hold" in texts(response)[0]
    # A held order's shipment cannot be picked.
    response = act(login("Warehouse Manager"), Shipment, "pick_for_invoicing", [shipment_of(order)])
    assert "the order is on hold" in texts(response)[0]
    response = act(client, Order, "unhold", [order])
    assert fresh(order).on_hold is False
    assert texts(response) == [f"Released 1 order: {order.code}."]


def test_accept_pending_verification_orders(world, login):
    pending = world.order("FK-1", pending_verification=True)
    created = world.order("FK-2")
    assert pending.status == OrderStatus.PENDING_VERIFICATION
    response = act(login("Sales Manager"), Order, "accept", [pending, created])
    assert fresh(pending).status == OrderStatus.CREATED
    assert pending.items.get().status == OrderItemStatus.FULFILLABLE
    success, failure = texts(response)
    assert success == f"Accepted (and allocated) 1 order: {pending.code}."
    assert f"{created.code}: Order {created.code} is CREATED: cannot accept" in failure


# --- Shipment actions: split, merge, manifests ------------------------------------------------


def test_split_a_shipment_on_an_intermediate_page_then_merge_back(world, login):
    order = world.order("FK-1", 3)
    shipment = shipment_of(order)
    units = list(order.items.order_by("pk"))
    client = login("Warehouse Manager")

    page = act(client, Shipment, "split", [shipment])
    assert page.status_code == 200
    assert f'name="group_{units[0].pk}"' in page.content.decode()
    response = act(
        client,
        Shipment,
        "split",
        [shipment],
        confirm_split="yes",
        **{f"group_{units[0].pk}": "1", f"group_{units[1].pk}": "2", f"group_{units[2].pk}": "2"},
    )
    assert fresh(shipment).status == ShipmentStatus.SPLITTED
    parts = list(Shipment.objects.filter(parent=shipment).order_by("pk"))
    assert [p.items.count() for p in parts] == [1, 2]
    assert texts(response) == [f"Split {shipment.code} into {parts[0].code}, {parts[1].code}."]

    response = act(client, Shipment, "merge", parts)
    merged = Shipment.objects.get(order=order, status=ShipmentStatus.CREATED)
    assert merged.items.count() == 3
    assert {fresh(p).status for p in parts} == {ShipmentStatus.MERGED}
    assert f"Merged {parts[0].code}, {parts[1].code} into {merged.code}." in texts(response)[0]


def test_split_refuses_a_single_group_and_merge_needs_one_order(world, login):
    first = shipment_of(world.order("FK-1", 2))
    second = shipment_of(world.order("FK-2"))
    client = login("Warehouse Manager")
    units = list(first.items.all())
    response = act(
        client,
        Shipment,
        "split",
        [first],
        confirm_split="yes",
        **{f"group_{u.pk}": "1" for u in units},
    )
    assert fresh(first).status == ShipmentStatus.CREATED
    assert "a split needs at least two non-empty groups" in texts(response)[0]
    response = act(client, Shipment, "merge", [first, second])
    assert {fresh(first).status, fresh(second).status} == {ShipmentStatus.CREATED}
    assert "Merge: " in texts(response)[0] and "belongs to order" in texts(response)[0]


def test_manifest_add_form_close_refusal_remove_and_discard(world, login):
    shipment = shipment_of(world.order("FK-1"))
    to_status([shipment], ShipmentStatus.READY_TO_SHIP)
    client = login("Pick and Pack")
    response = client.post(
        url(Manifest, "add"),
        {
            "facility": world.facility.pk,
            "channel": world.channel.pk,
            "shipping_provider": world.provider.pk,
            "comments": "evening pickup",
        },
        follow=True,
    )
    manifest = Manifest.objects.get()
    assert manifest.code == "MF-000001" and manifest.comments == "evening pickup"
    assert StateChange.objects.filter(object_code=manifest.code, transition="create").exists()

    response = act(client, Manifest, "close", [manifest])  # empty
    assert fresh(manifest).status == ManifestStatus.CREATED
    assert (
        f"{manifest.code}: Manifest {manifest.code} is CREATED: cannot close" in texts(response)[0]
    )

    act(client, Shipment, "add_to_manifest", [shipment])
    assert fresh(shipment).manifest_id == manifest.pk
    response = act(client, Manifest, "discard", [manifest])
    assert fresh(manifest).status == ManifestStatus.CREATED
    assert "it still has shipments" in texts(response)[0]

    response = act(client, Shipment, "remove_from_manifest", [shipment])
    assert (
        fresh(shipment).status == ShipmentStatus.READY_TO_SHIP
        and fresh(shipment).manifest_id is None
    )
    response = act(client, Manifest, "discard", [manifest])
    assert fresh(manifest).status == ManifestStatus.DISCARDED
    assert texts(response) == [f"Discarded 1 manifest: {manifest.code}."]


def test_closing_a_manifest_with_a_held_order_is_refused(world, login):
    order = world.order("FK-1")
    to_status([shipment_of(order)], ShipmentStatus.MANIFESTED)
    Order.objects.filter(pk=order.pk).update(on_hold=True)
    manifest = Manifest.objects.get()
    response = act(login("Warehouse Manager"), Manifest, "close", [manifest])
    assert fresh(manifest).status == ManifestStatus.CREATED
    assert "orders on hold" in texts(response)[0]


def test_recheck_serviceability(world, login):
    order = world.order("FK-1", pincode="400001")
    shipment = shipment_of(order)
    assert shipment.status == ShipmentStatus.LOCATION_NOT_SERVICEABLE
    client = login("Warehouse Manager")
    response = act(client, Shipment, "recheck_serviceability", [shipment])
    assert "still no provider" in texts(response)[0]
    Serviceability.objects.create(
        shipping_provider=world.provider, pincode="400001", payment_method="PREPAID"
    )
    response = act(client, Shipment, "recheck_serviceability", [shipment])
    assert fresh(shipment).status == ShipmentStatus.CREATED
    assert texts(response) == [f"Serviceable again 1 shipment: {shipment.code}."]


# --- Adding an order ------------------------------------------------------------------------


def _add_data(world, **overrides) -> dict:
    data = {
        "channel": world.channel.pk,
        "channel_order_id": "WEB-100",
        "payment_method": "COD",
        "priority": 0,
        "customer_name": "Asha Rao",
        "ship_address_line1": "12 MG Road",
        "ship_city": "Bengaluru",
        "ship_state": "KA",
        "ship_pincode": "560001",
        "lines": "TSHIRT, 2, 499.00\nTSHIRT,1,10,40",
        "allocate": "on",
    }
    data.update(overrides)
    return data


def test_add_order_creates_it_through_the_service_with_units(world, login):
    client = login("Sales Manager")
    assert client.get(url(Order, "add")).status_code == 200
    response = client.post(url(Order, "add"), _add_data(world), follow=True)
    order = Order.objects.get(channel_order_id="WEB-100")
    assert response.redirect_chain[-1][0] == url(Order, "change", order.pk)
    assert order.code == "FLIPKART-WEB-100" and order.item_count == 3
    assert order.payment_method == "COD" and order.customer_name == "Asha Rao"
    assert order.total_amount == Decimal("499.00") * 2 + Decimal("50.00")
    units = list(order.items.order_by("code"))
    assert [u.code for u in units] == ["WEB-100-1-0", "WEB-100-1-1", "WEB-100-2-0"]
    assert {u.status for u in units} == {OrderItemStatus.FULFILLABLE}
    assert f"Order {order.code} created with 3 units" in texts(response)[0]
    assert StateChange.objects.filter(order=order, transition="create").count() == 5  # +shipment


def test_add_order_names_the_line_and_field_of_each_error(world, login):
    client = login("Sales Manager")
    lines = "TSHIRT, 2, 499\nFOO, 1, 10\nTSHIRT, two, 10\nTSHIRT, 1\nTSHIRT, 1, -5\nTSHIRT, 5000, 1"
    response = client.post(url(Order, "add"), _add_data(world, lines=lines))
    assert response.status_code == 200
    errors = response.context["form"].errors["lines"]
    assert errors == [
        "Line 2: unknown SKU code 'FOO'",
        "Line 3 ('TSHIRT, two, 10'): quantity 'two' is not a positive whole number",
        "Line 4 ('TSHIRT, 1'): expected 'SKU code, quantity, unit price[, shipping charges]', "
        "got 2 fields",
        "Line 5 ('TSHIRT, 1, -5'): unit price '-5' is negative",
        "Line 6 ('TSHIRT, 5000, 1'): quantity 5000 is more than 1000 units",
    ]
    assert not Order.objects.exists()


def test_add_order_refuses_a_duplicate_and_a_bad_pincode(world, login):
    world.order("WEB-100")
    client = login("Sales Manager")
    response = client.post(url(Order, "add"), _add_data(world, ship_pincode="56"))
    form = response.context["form"]
    assert form.errors["channel_order_id"] == [
        "Channel FLIPKART already has order WEB-100 (FLIPKART-WEB-100)."
    ]
    assert form.errors["ship_pincode"] == ["Pincode '56' must be 6 digits."]
    assert Order.objects.count() == 1


def test_add_order_needs_the_add_permission(world, login):
    client = login("Pick and Pack")
    assert client.get(url(Order, "add")).status_code == 403
    assert client.post(url(Order, "add"), _add_data(world)).status_code == 403
    assert not Order.objects.exists()


# --- Pages ------------------------------------------------------------------------------------


def test_order_page_shows_units_by_line_shipments_and_history(world, login):
    order = _order(world, "FK-9", ("TSHIRT", 2), ("TSHIRT", 1))
    shipment = shipment_of(order)
    act(login("Sales Manager"), Order, "hold", [order])
    client = login("Pick and Pack")  # view only
    page = client.get(url(Order, "change", order.pk)).content.decode()
    tables = {
        t.title: t for t in client.get(url(Order, "change", order.pk)).context["related_tables"]
    }
    assert list(tables) == ["Units", "Shipments", "Invoices", "History"]
    groups = [r for r in tables["Units"].rows if r.group]
    assert len(groups) == 2 and "FK-9-0" in str(groups[0].cells[0])
    assert len(tables["Units"].rows) == 2 + 3
    assert shipment.code in page and url(Shipment, "change", shipment.pk) in page
    history = tables["History"].rows
    assert history[0].cells[2] == "hold"  # newest first
    assert len(history) == StateChange.objects.filter(order=order).count()
    assert "FULFILLABLE" in page and "order item" in page


def test_order_page_queries_do_not_grow_with_units(world, admin_client):
    small = _order(world, "S-1", ("TSHIRT", 1))
    big = _order(world, "S-2", ("TSHIRT", 2), ("TSHIRT", 3))
    counts = []
    for order in (small, big):
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url(Order, "change", order.pk)).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_shipment_manifest_and_picklist_pages_show_their_parts(world, admin_client):
    order = world.order("FK-1", 2)
    shipment = shipment_of(order)
    to_status([shipment], ShipmentStatus.MANIFESTED)
    invoice = Invoice.objects.get()
    page = admin_client.get(url(Shipment, "change", shipment.pk))
    tables = {t.title: t for t in page.context["related_tables"]}
    assert list(tables) == ["Units", "Invoices", "History"]
    assert len([r for r in tables["Units"].rows if not r.group]) == 2
    assert invoice.code in page.content.decode()
    transitions = {row.cells[2] for row in tables["History"].rows}
    assert {"pick", "receive", "pack", "mark ready to ship", "add to manifest"} <= transitions

    manifest = Manifest.objects.get()
    page = admin_client.get(url(Manifest, "change", manifest.pk))
    assert shipment.code in page.content.decode() and order.code in page.content.decode()

    picklist = Picklist.objects.get()
    page = admin_client.get(url(Picklist, "change", picklist.pk))
    walk = page.context["related_tables"][0]  # SKU × quantity per shelf, not a row per unit
    assert [row.cells for row in walk.rows] == [("A1", "TSHIRT", "Red T-shirt", 2)]


def test_status_fields_cannot_be_edited(world, admin_client):
    order = world.order("FK-1")
    shipment = shipment_of(order)
    page = admin_client.get(url(Order, "change", order.pk))
    assert "status" not in page.context["adminform"].form.fields
    data = {
        "customer_name": "New Name",
        "customer_email": "",
        "customer_phone": "",
        "ship_address_line1": "",
        "ship_address_line2": "",
        "ship_city": "",
        "ship_state": "",
        "priority": 5,
        "status": "COMPLETE",
        "on_hold": "on",
    }
    admin_client.post(url(Order, "change", order.pk), data)
    order = fresh(order)
    assert (order.status, order.on_hold) == (OrderStatus.CREATED, False)
    assert (order.customer_name, order.priority) == ("New Name", 5)

    page = admin_client.get(url(Shipment, "change", shipment.pk))
    assert set(page.context["adminform"].form.fields) == {
        "shipping_provider",
        "tracking_number",
        "courier_status",
    }
    admin_client.post(
        url(Shipment, "change", shipment.pk),
        {
            "shipping_provider": world.provider.pk,
            "tracking_number": "AWB1",
            "courier_status": "",
            "status": "DISPATCHED",
        },
    )
    assert (fresh(shipment).status, fresh(shipment).tracking_number) == (
        ShipmentStatus.CREATED,
        "AWB1",
    )


def test_saving_an_order_form_does_not_overwrite_a_newer_status(world, admin_client):
    """The form was loaded before a service moved the order on: saving it keeps the status."""
    order = world.order("FK-1")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PROCESSING)
    from django.contrib import admin as django_admin

    from orders.admin.orders import OrderAdmin

    model_admin = OrderAdmin(Order, django_admin.site)
    stale = Order.objects.get(pk=order.pk)
    stale.status = OrderStatus.CREATED  # as loaded a minute ago
    form_class = model_admin.get_form(None, stale, change=True, fields=["priority"])
    form = form_class({"priority": 3}, instance=stale)
    assert form.is_valid()
    model_admin.save_model(None, form.save(commit=False), form, change=True)
    assert (fresh(order).status, fresh(order).priority) == (OrderStatus.PROCESSING, 3)


def test_invoices_and_state_changes_are_read_only(world, admin_client):
    shipment = shipment_of(world.order("FK-1"))
    to_status([shipment], ShipmentStatus.PACKED)
    invoice = Invoice.objects.get()
    change = StateChange.objects.first()
    for obj in (invoice, change):
        assert admin_client.get(url(type(obj), "add")).status_code == 403
        page = admin_client.get(url(type(obj), "change", obj.pk))
        assert page.status_code == 200 and page.context["has_change_permission"] is False
        assert admin_client.post(url(type(obj), "change", obj.pk), {}).status_code == 403
        assert (
            admin_client.post(url(type(obj), "delete", obj.pk), {"post": "yes"}).status_code == 403
        )
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_tenant_is_a_singleton_edited_in_place(db, admin_client):
    response = admin_client.get(url(Tenant), follow=True)
    assert response.redirect_chain[-1][0] == url(Tenant, "change", 1)
    assert admin_client.get(url(Tenant, "add")).status_code == 403
    data = {"name": "Acme", "is_live": "on", "traceability": "ITEM", "time_zone": "Asia/Dubai"}
    admin_client.post(url(Tenant, "change", 1), data)
    tenant = Tenant.get()
    assert (tenant.name, tenant.is_live, tenant.traceability, tenant.time_zone) == (
        "Acme",
        True,
        "ITEM",
        "Asia/Dubai",
    )
    response = admin_client.post(url(Tenant, "change", 1), {**data, "time_zone": "Mars/Base"})
    assert "time_zone" in response.context["adminform"].form.errors
    assert admin_client.post(url(Tenant, "delete", 1), {"post": "yes"}).status_code == 403
    assert Tenant.objects.count() == 1


def test_inventory_blocked_quantity_is_read_only_and_protected(world, login):
    world.order("FK-1", 3)  # blocks 3 of 10
    row = fresh(world.inventory)
    assert row.blocked_quantity == 3
    client = login("Warehouse Manager")
    page = client.get(url(Inventory, "change", row.pk))
    assert set(page.context["adminform"].form.fields) == {"quantity", "reason"}
    response = client.post(url(Inventory, "change", row.pk), {"quantity": 2})
    assert response.context["adminform"].form.errors["quantity"] == [
        "Stock of TSHIRT on WH1/A1: 3 units are blocked for orders, so the quantity cannot go "
        "below 3."
    ]
    client.post(url(Inventory, "change", row.pk), {"quantity": 4, "blocked_quantity": 0})
    assert (fresh(row).quantity, fresh(row).blocked_quantity) == (4, 3)
    client.post(url(Inventory, "change", row.pk), {"quantity": 12})
    assert fresh(row).quantity == 12
    # New stock goes through stock_add (facility from the shelf).
    mug = SkuFactory(code="MUG", name="Mug")
    client.post(
        url(Inventory, "add"),
        {"shelf": world.shelf.pk, "sku": mug.pk, "inventory_type": "GOOD_INVENTORY", "quantity": 7},
    )
    added = Inventory.objects.get(sku=mug)
    assert (added.facility, added.quantity, added.blocked_quantity) == (world.facility, 7, 0)


def test_sequence_edit_keeps_numbers_taken_meanwhile(world, admin_client):
    seq = Sequence.objects.get(name="INVOICE", facility=world.facility)
    page = admin_client.get(url(Sequence, "change", seq.pk))
    assert "next_value" not in page.context["adminform"].form.fields  # set when adding only
    Sequence.objects.filter(pk=seq.pk).update(next_value=42)  # an invoice run meanwhile
    admin_client.post(
        url(Sequence, "change", seq.pk),
        {
            "name": "INVOICE",
            "facility": world.facility.pk,
            "prefix": "WH1/",
            "next_value": 1,
            "padding": 6,
        },
    )
    assert (fresh(seq).prefix, fresh(seq).next_value) == ("WH1/", 42)
    response = admin_client.post(
        url(Sequence, "add"),
        {
            "name": "MANIFEST",
            "facility": world.facility.pk,
            "prefix": "M1-",
            "next_value": 500,
            "padding": 4,
        },
    )
    assert response.status_code == 302
    assert Sequence.objects.get(name="MANIFEST", facility=world.facility).format(500) == "M1-0500"


# --- Changelists: search, filters, speed -----------------------------------------------------


def _listed(client, model, **params) -> list[str]:
    response = client.get(url(model), params)
    assert response.status_code == 200
    return [str(obj) for obj in response.context["cl"].result_list]


def test_order_search_uses_exact_codes_sku_and_tracking_number(world, admin_client):
    mug = SkuFactory(code="MUG", name="Mug")
    Inventory.objects.create(facility=world.facility, shelf=world.shelf, sku=mug, quantity=5)
    first = world.order("FK-1")
    second = world.order("FK-2", sku="MUG")
    other = ChannelFactory(code="AMAZON")
    third = order_create(
        OrderInput(
            channel=other,
            channel_order_id="FK-1",
            ship_pincode="560001",
            lines=[LineInput("x", "TSHIRT")],
        )
    )
    shipment = shipment_of(second)
    to_status([shipment], ShipmentStatus.READY_TO_SHIP)
    tracking = fresh(shipment).tracking_number

    assert _listed(admin_client, Order, q="FLIPKART-FK-1") == [first.code]
    assert _listed(admin_client, Order, q=" FK-1 ") == [third.code, first.code]
    assert _listed(admin_client, Order, q="MUG") == [second.code]
    assert _listed(admin_client, Order, q=tracking) == [second.code]
    assert _listed(admin_client, Order, q="FK") == []  # exact only, no icontains scan
    assert _listed(admin_client, Shipment, q=tracking) == [shipment.code]
    assert _listed(admin_client, Shipment, q="FLIPKART-FK-2") == [shipment.code]
    assert _listed(admin_client, OrderItem, q="MUG") == [second.items.get().code]
    assert _listed(admin_client, Picklist, q=shipment.code) == [Picklist.objects.get().code]
    assert _listed(admin_client, Invoice, q=tracking) == [Invoice.objects.get().code]
    audit = admin_client.get(url(StateChange), {"q": shipment.code}).context["cl"].result_list
    assert {c.object_code for c in audit} == {shipment.code} and len(audit) == 5


def test_order_filters(world, admin_client):
    wh2 = Facility.objects.create(code="WH2", name="Second", priority=2)
    shelf2 = Shelf.objects.create(facility=wh2, code="B1")
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    Inventory.objects.create(facility=wh2, shelf=shelf2, sku=world.sku, quantity=5)
    first, second = world.order("FK-1"), world.order("FK-2")
    amazon = ChannelFactory(code="AMAZON")
    third = order_create(
        OrderInput(
            channel=amazon,
            channel_order_id="AZ-1",
            ship_pincode="560001",
            lines=[LineInput("x", "TSHIRT")],
        )
    )
    Order.objects.filter(pk=first.pk).update(status=OrderStatus.PROCESSING)
    Order.objects.filter(pk=third.pk).update(order_date="2020-01-01T00:00Z")

    assert _listed(admin_client, Order, status__exact="PROCESSING") == [first.code]
    assert _listed(admin_client, Order, channel__id__exact=amazon.pk) == [third.code]
    assert _listed(admin_client, Order, facility=wh2.pk) == [third.code, second.code]
    assert _listed(admin_client, Order, order_date_range="7d") == [second.code, first.code]
    assert _listed(admin_client, Order, on_hold__exact=1) == []


def test_filter_choices_never_scan_the_orders_table(world, admin_client):
    world.order("FK-1")
    with CaptureQueriesContext(connection) as ctx:
        admin_client.get(url(Order))
    sql = [q["sql"] for q in ctx.captured_queries]
    assert not [s for s in sql if "DISTINCT" in s.upper() and "orders_order" in s]
    assert not [s for s in sql if "LIKE" in s.upper()]


def _orders(world, n: int, start: int = 0) -> None:
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1000)
    for i in range(start, start + n):
        world.order(f"Q-{i}")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"status__exact": "CREATED"},
        {"channel__id__exact": "1", "status__exact": "CREATED"},
        {"q": "FLIPKART-Q-3"},
        {"q": "TSHIRT"},
        {"order_date_range": "today"},
    ],
    ids=["unfiltered", "status", "channel+status", "code", "sku", "today"],
)
def test_order_changelist_queries_do_not_grow_with_orders(world, admin_client, params):
    params = {**params}
    if "channel__id__exact" in params:
        params["channel__id__exact"] = str(world.channel.pk)
    counts = []
    for n in (5, 35):
        _orders(world, n, start=len(counts) * 5)
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(url(Order), params)
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert Order.objects.count() == 40
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("model", [Shipment, OrderItem, StateChange, Picklist, Manifest, Invoice])
def test_other_big_changelists_do_not_query_per_row(world, admin_client, model):
    counts = []
    for n in (3, 12):
        _orders(world, n, start=len(counts) * 3)
        to_status(
            list(Shipment.objects.filter(status=ShipmentStatus.CREATED)), ShipmentStatus.MANIFESTED
        )
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url(model)).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_filtered_count_is_capped(world, admin_client, monkeypatch):
    """A filter matching many rows counts at most `count_cap + 1` of them and says "+"."""
    from orders.admin.orders import OrderAdmin

    monkeypatch.setattr(FastCountPaginator, "count_cap", 3)
    monkeypatch.setattr(OrderAdmin, "list_per_page", 2)
    _orders(world, 6)
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(url(Order), {"status__exact": "CREATED"})
    cl = response.context["cl"]
    assert (cl.result_count, cl.paginator.count_is_capped, cl.paginator.num_pages) == (3, True, 2)
    html = response.content.decode()
    assert "3+ results" in html and "3+</span>" in html
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "LIMIT 4" in counts[0]
    # Unfiltered on SQLite (no estimate): the same bounded count, no result count in the form.
    response = admin_client.get(url(Order))
    assert response.context["cl"].result_count == 3
    assert "results" not in response.content.decode().split('id="changelist-search"')[1][:600]


@pytest.mark.postgres
def test_unfiltered_count_is_postgres_estimate(world, admin_client, monkeypatch):
    _orders(world, 30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    monkeypatch.setattr(FastCountPaginator, "estimate_from", 10)
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(url(Order))
    sql = [q["sql"] for q in ctx.captured_queries]
    assert any("reltuples" in s for s in sql)
    assert not [s for s in sql if "COUNT(" in s.upper() and "orders_order" in s]
    assert response.context["cl"].result_count == 30
    assert "about 30" in response.content.decode()
    # Filtered: an exact (capped) count, not the estimate.
    response = admin_client.get(url(Order), {"status__exact": "PROCESSING"})
    assert response.context["cl"].result_count == 0


def test_channel_model_is_listed(db, admin_client):
    Channel.objects.create(code="SHOPIFY", name="Shopify")
    assert _listed(admin_client, Channel, q="SHOPIFY") == ["SHOPIFY"]


def test_change_pages_offer_the_actions_that_fit_as_buttons(world, login):
    order = _order(world, "B-1", ("TSHIRT", 1), allocate=False)
    client = login("Sales Manager")
    page = client.get(url(Order, "change", order.pk))
    buttons = [b["name"] for b in page.context["object_action_buttons"]]
    assert buttons == ["allocate", "hold", "cancel_orders"]

    back = url(Order, "change", order.pk)
    response = client.post(
        url(Order),
        {"action": "allocate", ACTION_CHECKBOX_NAME: order.pk, "index": 0, "_return_to": back},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == back
    assert texts(response) == [f"Allocated 1 order: {order.code} (1 fulfillable)."]
    assert order.items.get().status == OrderItemStatus.FULFILLABLE

    shipment = shipment_of(order)
    client = login("Pick and Pack")
    page = client.get(url(Shipment, "change", shipment.pk))
    names = [b["name"] for b in page.context["object_action_buttons"]]
    assert names == ["pick_for_invoicing", "pick_for_staging"]  # no split, no force dispatch
    response = client.post(
        url(Shipment),
        {
            "action": "pick_for_invoicing",
            ACTION_CHECKBOX_NAME: shipment.pk,
            "index": 0,
            "_return_to": "https://evil.example/",
        },
    )
    assert response.status_code == 302 and response["Location"].startswith("/admin/")
    page = client.get(url(Shipment, "change", shipment.pk))
    assert [b["name"] for b in page.context["object_action_buttons"]] == []  # PICKING
