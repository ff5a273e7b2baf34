"""Helpers for the cancellation, returns and putaway tests: moving shipments along the forward
flow with the services, and reading the exact stock of every shelf row."""

from __future__ import annotations

from inventory.models import Inventory, Shelf
from orders.models import Order, Picklist, PicklistStatus, Shipment, ShipmentStatus
from orders.services import (
    manifest_close,
    picklist_create,
    picklist_receive,
    shipments_deliver,
    shipments_generate_label,
    shipments_invoice,
    shipments_manifest,
    shipments_ship,
)
from uniware.core.models import Sequence, Tenant

FORWARD = [
    ShipmentStatus.PICKING,
    ShipmentStatus.PICKED,
    ShipmentStatus.PACKED,
    ShipmentStatus.READY_TO_SHIP,
    ShipmentStatus.MANIFESTED,
    ShipmentStatus.DISPATCHED,
    ShipmentStatus.SHIPPED,
    ShipmentStatus.DELIVERED,
]


def stock() -> dict[tuple[str, str, str], tuple[int, int]]:
    """{(shelf, SKU, inventory type): (quantity, blocked)} for every row with stock."""
    return {
        (shelf, sku, kind): (qty, blocked)
        for shelf, sku, kind, qty, blocked in Inventory.objects.values_list(
            "shelf__code", "sku__code", "inventory_type", "quantity", "blocked_quantity"
        )
        if qty or blocked
    }


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def shipment_of(order: Order) -> Shipment:
    return Shipment.objects.get(order=order)


def advance(shipments: list[Shipment] | Shipment, status: str) -> None:
    """Move CREATED shipments forward to `status` with the services (test set-up)."""
    if isinstance(shipments, Shipment):
        shipments = [shipments]
    ids = [s.pk for s in shipments]
    for step in FORWARD[: FORWARD.index(status) + 1]:
        if step == ShipmentStatus.PICKING:
            outcome = picklist_create(ids, destination="INVOICING", actor="test")
        elif step == ShipmentStatus.PICKED:
            outcome = picklist_receive(
                Picklist.objects.filter(status=PicklistStatus.CREATED).values_list("pk", flat=True),
                actor="test",
            )
        elif step == ShipmentStatus.PACKED:
            outcome = shipments_invoice(ids, actor="test")
        elif step == ShipmentStatus.READY_TO_SHIP:
            outcome = shipments_generate_label(ids, actor="test")
        elif step == ShipmentStatus.MANIFESTED:
            outcome = shipments_manifest(ids, actor="test")
        elif step == ShipmentStatus.DISPATCHED:
            manifests = {fresh(s).manifest for s in shipments}
            for manifest in manifests:
                outcome = manifest_close(manifest, actor="test")
        elif step == ShipmentStatus.SHIPPED:
            outcome = shipments_ship(ids, actor="test")
        else:
            outcome = shipments_deliver(ids, actor="test")
        assert not outcome.failed, (step, outcome.failed)
    assert {fresh(s).status for s in shipments} == {status}


def return_invoice_sequence(world) -> Sequence:
    return Sequence.objects.create(name="RETURN_INVOICE", facility=world.facility, prefix="CN-WH1-")


def traceability(level: str) -> None:
    tenant = Tenant.get()
    tenant.traceability = level
    tenant.save()


def shelf(world, code: str) -> Shelf:
    return Shelf.objects.get_or_create(facility=world.facility, code=code)[0]


def make_return_records(world) -> None:
    """A return manifest, a reverse pickup and putaways (for pages that list every model)."""
    from orders.services import (
        return_manifest_add_shipments,
        return_manifest_close,
        return_manifest_create,
        reverse_pickup_create,
        shipments_expect_return,
        units_cancel,
    )

    if not Sequence.objects.filter(name="RETURN_INVOICE").exists():
        return_invoice_sequence(world)
    returned = world.order("RET-1", 1)
    advance(shipment_of(returned), ShipmentStatus.DISPATCHED)
    shipments_expect_return([shipment_of(returned).pk])
    manifest = return_manifest_create(facility=world.facility)
    return_manifest_add_shipments(manifest, [shipment_of(returned).pk])
    return_manifest_close(manifest)
    customer = world.order("RET-2", 1)
    advance(shipment_of(customer), ShipmentStatus.DELIVERED)
    reverse_pickup_create([customer.items.get().pk], reason="defective")
    cancelled = world.order("RET-3", 1)
    advance(shipment_of(cancelled), ShipmentStatus.PICKED)
    units_cancel([cancelled.items.get().pk], reason="customer cancelled")
