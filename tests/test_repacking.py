"""A packed box that loses a unit waits for re-packing; nothing cancelled leaves in a box
(issue 11: a cancelled unit used to be dispatched in its box while its putaway asked
someone to shelve it)."""

from __future__ import annotations

import pytest
from django.db.models import Q

from inventory.models import Inventory, Putaway
from inventory.putaway import putaways_complete
from orders.models import (
    Invoice,
    InvoiceType,
    Manifest,
    OrderItemStatus,
    ShipmentStatus,
)
from orders.services import (
    manifest_close,
    shipments_force_dispatch,
    shipments_manifest,
    shipments_repacked,
    units_cancel,
)
from uniware.core.fsm import IllegalTransition
from uniware.core.models import StateChange

from .returns_flow import advance, fresh, return_invoice_sequence, shipment_of


@pytest.fixture
def manifested(world):
    return_invoice_sequence(world)
    order = world.order("RP-1", 2)
    shipment = shipment_of(order)
    advance(shipment, ShipmentStatus.MANIFESTED)
    return order, fresh(shipment)


def test_a_manifested_box_that_loses_a_unit_leaves_its_manifest_and_waits(world, manifested):
    order, shipment = manifested
    manifest = shipment.manifest
    gone, kept = order.items.order_by("code")

    outcome = units_cancel([gone.pk], reason="customer cancelled", by_channel=True)

    assert outcome.ok, outcome.failed
    shipment = fresh(shipment)
    assert (shipment.status, shipment.manifest_id) == (ShipmentStatus.READY_TO_SHIP, None)
    assert shipment.repack_reason == f"take out cancelled unit(s) {gone.code}"
    assert (fresh(gone).status, fresh(kept).status) == (
        OrderItemStatus.CANCELLED,
        OrderItemStatus.PICKING_FOR_INVOICING,
    )
    assert StateChange.objects.filter(transition="wait_for_repacking").count() == 1
    with pytest.raises(IllegalTransition, match="it has no shipments"):
        manifest_close(manifest)


def test_nothing_moves_a_box_on_before_its_re_packing_is_confirmed(world, manifested):
    order, shipment = manifested
    gone = order.items.order_by("code").first()
    units_cancel([gone.pk], reason="customer cancelled")

    refused = shipments_manifest([shipment.pk])
    assert not refused.done and "waits for re-packing" in refused.failed[0][1]
    forced = shipments_force_dispatch([shipment.pk], reason="courier waiting")
    assert not forced.done and "waits for re-packing" in forced.failed[0][1]
    putaway = Putaway.objects.get()
    tried = putaways_complete([putaway.pk], shelf=world.shelf)
    assert not tried.done
    assert (
        f"is still in packed shipment {shipment.code}: confirm its re-packing"
        in (tried.failed[0][1])
    )


def test_confirming_the_re_packing_re_invoices_and_lets_the_box_go(world, manifested):
    order, shipment = manifested
    gone, kept = order.items.order_by("code")
    old = Invoice.objects.get(shipment=shipment, invoice_type=InvoiceType.SALE)
    units_cancel([gone.pk], reason="customer cancelled")

    outcome = shipments_repacked([shipment.pk], actor="packer")

    assert outcome.ok and outcome.done == [shipment]
    assert fresh(shipment).repack_reason == ""
    old.refresh_from_db()
    assert old.superseded_at is not None
    current = Invoice.objects.get(
        Q(shipment=shipment, invoice_type=InvoiceType.SALE, superseded_at__isnull=True)
    )
    assert current.total_amount == kept.selling_price + kept.shipping_charges
    reversals = Invoice.objects.filter(reverses=old, invoice_type=InvoiceType.SALE_RETURN)
    assert sorted(r.total_amount for r in reversals) == sorted(
        [gone.selling_price + gone.shipping_charges, kept.selling_price + kept.shipping_charges]
    )
    assert shipments_manifest([shipment.pk]).ok
    manifest = Manifest.objects.get(status="CREATED")
    assert manifest_close(manifest).ok
    assert (fresh(kept).status, fresh(gone).status) == (
        OrderItemStatus.DISPATCHED,
        OrderItemStatus.CANCELLED,
    )
    putaway = Putaway.objects.get()
    assert putaways_complete([putaway.pk], shelf=world.shelf).ok
    row = Inventory.objects.get(pk=world.inventory.pk)
    assert (row.quantity, row.blocked_quantity) == (9, 0)  # 10 - 1 dispatched


def test_confirming_a_box_that_does_not_wait_is_refused(world, manifested):
    _, shipment = manifested
    outcome = shipments_repacked([shipment.pk])
    assert outcome.failed == [(shipment.code, "it does not wait for re-packing")]


def test_manifest_close_refuses_a_box_waiting_for_re_packing_naming_it(world, manifested):
    _, shipment = manifested
    type(shipment).objects.filter(pk=shipment.pk).update(repack_reason="take out X-1")
    with pytest.raises(IllegalTransition, match=f"{shipment.code} \\(take out X-1\\)"):
        manifest_close(shipment.manifest)


def test_a_box_that_loses_every_unit_is_cancelled_not_re_packed(world, manifested):
    order, shipment = manifested
    units_cancel(list(order.items.values_list("pk", flat=True)), reason="customer cancelled")
    shipment = fresh(shipment)
    assert shipment.status == ShipmentStatus.CANCELLED and shipment.repack_reason == ""
    assert putaways_complete([Putaway.objects.get().pk], shelf=world.shelf).ok
