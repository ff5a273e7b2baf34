"""Cancellation by stage (domain.md, seed 001): one test per row of the table, asserting
statuses, putaways, invoices and the exact stock on each shelf before and after; then the
reason, whole-order cancellation, refusals, audit rows and the query count."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import Inventory, Putaway, PutawayStatus, PutawayType
from inventory.putaway import putaways_complete
from orders.models import (
    Invoice,
    InvoiceType,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import (
    orders_cancel,
    return_manifest_add_shipments,
    return_manifest_close,
    return_manifest_create,
    shipments_mark_returned,
    units_cancel,
    units_cancelled,
)
from uniware.core.models import Sequence, StateChange, Traceability

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
REASON = "customer changed their mind"


@pytest.fixture
def world(world):
    return_invoice_sequence(world)
    return world


def units(order):
    return list(order.items.order_by("pk"))


def statuses(order) -> list[str]:
    return list(order.items.order_by("pk").values_list("status", flat=True))


# --- Row 1: before invoicing, not on a picklist: release the blocked stock -----------------


def test_fulfillable_unit_releases_its_block_and_its_shipment_is_cancelled(world):
    order = world.order("FK-1", 1)
    assert stock() == {GOOD: (10, 1)}

    outcome = units_cancel([u.pk for u in units(order)], reason=REASON, actor="test")

    assert outcome.ok and [u.code for u in outcome.done] == ["FK-1-L1-0"]
    assert outcome.created == []  # no putaway, no invoice: the unit never left the shelf
    assert stock() == {GOOD: (10, 0)}
    assert statuses(order) == [OrderItemStatus.CANCELLED]
    assert order.items.get().cancellation_reason == REASON
    assert shipment_of(order).status == ShipmentStatus.CANCELLED
    assert fresh(order).status == OrderStatus.CANCELLED
    assert not Putaway.objects.exists() and not Invoice.objects.exists()


def test_unfulfillable_unit_has_nothing_to_release(world):
    waiting = world.order("FK-1", 11)  # 10 in stock: one unit waits
    assert stock() == {GOOD: (10, 10)}
    unfulfillable = waiting.items.get(status=OrderItemStatus.UNFULFILLABLE)

    assert units_cancel([unfulfillable.pk], reason=REASON).ok

    assert stock() == {GOOD: (10, 10)}  # it had nothing blocked
    assert fresh(unfulfillable).status == OrderItemStatus.CANCELLED
    assert fresh(waiting).status == OrderStatus.CREATED  # ten units still live
    assert shipment_of(waiting).status == ShipmentStatus.CREATED


def test_not_serviceable_unit_releases_its_block(world):
    order = world.order("FK-1", 1, pincode="110001")
    unit = order.items.get()
    assert unit.status == OrderItemStatus.LOCATION_NOT_SERVICEABLE and stock() == {GOOD: (10, 1)}
    assert units_cancel([unit.pk], reason=REASON).ok
    assert stock() == {GOOD: (10, 0)}
    assert shipment_of(order).status == ShipmentStatus.CANCELLED
    assert fresh(order).status == OrderStatus.CANCELLED


def test_cancelling_one_unit_of_two_keeps_the_shipment(world):
    order = world.order("FK-1", 2)
    first, second = units(order)
    assert units_cancel([first.pk], reason=REASON).ok
    assert stock() == {GOOD: (10, 1)}
    assert statuses(order) == [OrderItemStatus.CANCELLED, OrderItemStatus.FULFILLABLE]
    assert shipment_of(order).status == ShipmentStatus.CREATED
    assert fresh(order).status == OrderStatus.CREATED


def test_released_stock_goes_to_a_waiting_unit_after_commit(
    world, django_capture_on_commit_callbacks
):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    first = world.order("FK-1", 1)
    second = world.order("FK-2", 1)
    assert second.items.get().status == OrderItemStatus.UNFULFILLABLE
    with django_capture_on_commit_callbacks(execute=True):
        assert units_cancel([first.items.get().pk], reason=REASON).ok
    assert second.items.get().status == OrderItemStatus.FULFILLABLE
    assert stock() == {GOOD: (1, 1)}


# --- Row 2: before invoicing, on a picklist: PUTAWAY_PICKLIST_ITEM -------------------------


@pytest.mark.parametrize("stage", [ShipmentStatus.PICKING, ShipmentStatus.PICKED])
def test_picked_unit_goes_on_a_picklist_putback(world, stage):
    order = world.order("FK-1", 1)
    advance(shipment_of(order), stage)
    assert stock() == {GOOD: (10, 1)}  # picked units stay counted on their shelf row

    outcome = units_cancel([order.items.get().pk], reason=REASON)

    assert outcome.ok
    [putaway] = outcome.created
    assert putaway.putaway_type == PutawayType.PUTAWAY_PICKLIST_ITEM
    assert putaway.status == PutawayStatus.CREATED and putaway.code == "PA-000001"
    assert putaway.facility == world.facility and putaway.item_count == 1
    [item] = putaway.items.all()
    assert item.order_item_id == order.items.get().pk and item.suggested_shelf == world.shelf
    # The unit left its shelf row (it is in a tote); it comes back only through the putaway.
    assert stock() == {GOOD: (9, 0)}
    assert statuses(order) == [OrderItemStatus.CANCELLED]
    assert shipment_of(order).status == ShipmentStatus.CANCELLED
    assert fresh(order).status == OrderStatus.CANCELLED
    assert not Invoice.objects.exists()
    assert Picklist.objects.get().status == PicklistStatus.CLOSED  # nothing left to pick

    assert putaways_complete([putaway.pk], actor="test").ok
    assert stock() == {GOOD: (10, 0)}
    assert fresh(putaway).status == PutawayStatus.COMPLETE
    again = putaways_complete([putaway.pk], actor="test")
    assert again.failed and "is COMPLETE" in again.failed[0][1]
    assert stock() == {GOOD: (10, 0)}, "never twice"


def test_staged_unit_also_goes_on_a_picklist_putback(world):
    from orders.services import picklist_create, picklist_receive

    order = world.order("FK-1", 1)
    [picklist] = picklist_create([shipment_of(order).pk], destination="STAGING").created
    picklist_receive([picklist.pk])
    assert order.items.get().status == OrderItemStatus.PICKING_FOR_STAGING
    outcome = units_cancel([order.items.get().pk], reason=REASON)
    assert [p.putaway_type for p in outcome.created] == [PutawayType.PUTAWAY_PICKLIST_ITEM]
    assert stock() == {GOOD: (9, 0)}


# --- Row 3: after invoicing, before dispatch: PUTAWAY_CANCELLED_ITEM + sale return invoice --


@pytest.mark.parametrize(
    "stage", [ShipmentStatus.PACKED, ShipmentStatus.READY_TO_SHIP, ShipmentStatus.MANIFESTED]
)
def test_invoiced_unit_is_put_away_and_its_invoice_reversed(world, stage):
    order = world.order("FK-1", 1)
    shipment = shipment_of(order)
    advance(shipment, stage)
    sale = Invoice.objects.get(invoice_type=InvoiceType.SALE)
    assert stock() == {GOOD: (10, 1)}

    outcome = units_cancel([order.items.get().pk], reason=REASON, actor="test")

    assert outcome.ok
    putaway, credit = outcome.created
    assert putaway.putaway_type == PutawayType.PUTAWAY_CANCELLED_ITEM
    assert (credit.invoice_type, credit.code, credit.reverses) == (
        InvoiceType.SALE_RETURN,
        "CN-WH1-000001",
        sale,
    )
    assert credit.total_amount == Decimal("499.00") == sale.total_amount
    assert credit.shipment == shipment and credit.facility == world.facility
    assert stock() == {GOOD: (9, 0)}
    assert fresh(shipment).status == ShipmentStatus.CANCELLED
    assert fresh(order).status == OrderStatus.CANCELLED

    damaged = shelf(world, "DMG")
    assert putaways_complete(
        [putaway.pk], shelf=damaged, inventory_type="BAD_INVENTORY", actor="test"
    ).ok
    assert stock() == {GOOD: (9, 0), ("DMG", "TSHIRT", "BAD_INVENTORY"): (1, 0)}


def test_cancelling_part_of_an_invoiced_shipment_reverses_only_that_part(world):
    order = world.order("FK-1", 3)
    shipment = shipment_of(order)
    advance(shipment, ShipmentStatus.PACKED)
    first = units(order)[0]

    outcome = units_cancel([first.pk], reason=REASON)

    putaway, credit = outcome.created
    assert credit.total_amount == Decimal("499.00")
    assert Invoice.objects.get(invoice_type="SALE").total_amount == Decimal("1497.00")
    assert fresh(shipment).status == ShipmentStatus.PACKED  # two units still go, once re-packed
    assert fresh(shipment).repack_reason == f"take out cancelled unit(s) {first.code}"
    assert stock() == {GOOD: (9, 2)}
    advance_rest = [fresh(shipment)]
    from orders.services import shipments_force_dispatch, shipments_repacked

    assert not shipments_force_dispatch([s.pk for s in advance_rest]).ok
    assert shipments_repacked([shipment.pk]).ok
    assert shipments_force_dispatch([s.pk for s in advance_rest]).ok
    assert stock() == {GOOD: (7, 0)}
    assert statuses(order) == [
        OrderItemStatus.CANCELLED,
        OrderItemStatus.DISPATCHED,
        OrderItemStatus.DISPATCHED,
    ]
    assert fresh(order).status == OrderStatus.COMPLETE
    assert putaways_complete([putaway.pk]).ok
    assert stock() == {GOOD: (8, 0)}


def test_missing_return_invoice_sequence_refuses_and_changes_nothing(world):
    Sequence.objects.filter(name="RETURN_INVOICE").delete()
    order = world.order("FK-1", 1)
    advance(shipment_of(order), ShipmentStatus.PACKED)
    before = (stock(), StateChange.objects.count(), list(Sequence.objects.values()))

    outcome = units_cancel([order.items.get().pk], reason=REASON)

    assert outcome.done == [] and outcome.created == []
    assert outcome.failed == [
        ("FLIPKART-FK-1/FK-1-L1-0", "Sequence RETURN_INVOICE is not defined for facility WH1")
    ]
    assert (stock(), StateChange.objects.count(), list(Sequence.objects.values())) == before
    assert statuses(order) == [OrderItemStatus.PICKING_FOR_INVOICING]
    assert not Putaway.objects.exists()
    assert Invoice.objects.filter(invoice_type="SALE_RETURN").count() == 0


def test_missing_putaway_sequence_refuses_a_picked_unit(world):
    Sequence.objects.filter(name="PUTAWAY").delete()
    order = world.order("FK-1", 1)
    other = world.order("FK-2", 1)
    advance(shipment_of(order), ShipmentStatus.PICKED)
    outcome = units_cancel([order.items.get().pk, other.items.get().pk], reason=REASON)
    assert [u.code for u in outcome.done] == ["FK-2-L1-0"]  # not picked: no putaway needed
    assert outcome.failed == [
        ("FLIPKART-FK-1/FK-1-L1-0", "Sequence PUTAWAY is not defined for facility WH1")
    ]
    assert stock() == {GOOD: (10, 1)}


# --- Row 4: after dispatch, ITEM traceability: return manifest, then putaway ---------------


def test_dispatched_unit_with_item_traceability_comes_back_through_a_return_manifest(world):
    traceability(Traceability.ITEM)
    order = world.order("FK-1", 1)
    shipment = shipment_of(order)
    advance(shipment, ShipmentStatus.DISPATCHED)
    assert stock() == {GOOD: (9, 0)}

    outcome = units_cancel([order.items.get().pk], reason=REASON, by_channel=True)

    assert outcome.ok and outcome.created == []
    unit = order.items.get()
    assert unit.status == OrderItemStatus.DISPATCHED and unit.cancellation_reason == REASON
    assert fresh(shipment).status == ShipmentStatus.RETURN_EXPECTED
    assert fresh(order).status == OrderStatus.COMPLETE  # returns do not reopen it
    assert stock() == {GOOD: (9, 0)}
    refused = shipments_mark_returned([shipment.pk])
    assert "return manifest" in refused.failed[0][1]

    manifest = return_manifest_create(facility=world.facility, actor="test")
    assert manifest.code == "RMF-000002"  # MF-000001 dispatched it: one MANIFEST sequence
    assert return_manifest_add_shipments(manifest, [shipment.pk]).ok
    assert fresh(shipment).status == ShipmentStatus.RETURN_ACKNOWLEDGED
    assert stock() == {GOOD: (9, 0)}
    closed = return_manifest_close(manifest)
    putaway, credit = closed.created
    assert putaway.putaway_type == PutawayType.PUTAWAY_COURIER_RETURNED_ITEMS
    assert putaway.return_manifest == manifest
    assert credit.invoice_type == InvoiceType.SALE_RETURN and credit.total_amount == 499
    assert stock() == {GOOD: (9, 0)}  # still only on the putaway

    assert putaways_complete([putaway.pk]).ok
    assert fresh(shipment).status == ShipmentStatus.RETURNED
    assert stock() == {GOOD: (10, 0)}


# --- Row 5: after dispatch, SKU/NONE traceability: marked RETURNED from the order page -----


@pytest.mark.parametrize("level", [Traceability.SKU, Traceability.NONE])
def test_dispatched_unit_with_sku_traceability_is_completed_by_mark_returned(world, level):
    traceability(level)
    order = world.order("FK-1", 2)
    shipment = shipment_of(order)
    advance(shipment, ShipmentStatus.SHIPPED)
    assert stock() == {GOOD: (8, 0)}

    assert units_cancel([units(order)[0].pk], reason=REASON).ok
    assert fresh(shipment).status == ShipmentStatus.RETURN_EXPECTED
    assert stock() == {GOOD: (8, 0)}

    outcome = shipments_mark_returned([shipment.pk], actor="test")

    assert outcome.ok
    putaway, credit = outcome.created
    assert putaway.putaway_type == PutawayType.PUTAWAY_RECEIVED_RETURNS
    assert putaway.status == PutawayStatus.COMPLETE and putaway.item_count == 2
    assert credit.total_amount == Decimal("998.00")  # the whole package came back
    assert fresh(shipment).status == ShipmentStatus.RETURNED
    assert stock() == {GOOD: (10, 0)}
    again = shipments_mark_returned([shipment.pk])
    assert again.failed and stock() == {GOOD: (10, 0)}


# --- Reasons, refusals, whole orders ---------------------------------------------------------


def test_reason_is_required_and_at_most_100_characters(world):
    order = world.order("FK-1", 1)
    with pytest.raises(ValidationError, match="reason is required"):
        units_cancel([order.items.get().pk], reason="  ")
    with pytest.raises(ValidationError, match="101 characters long; at most 100"):
        units_cancel([order.items.get().pk], reason="x" * 101)
    assert units_cancel([order.items.get().pk], reason="x" * 100).ok


def test_cancelling_again_changes_nothing(world):
    order = world.order("FK-1", 1)
    unit = order.items.get()
    assert units_cancel([unit.pk], reason=REASON, by_channel=True).ok
    audit = StateChange.objects.count()
    again = units_cancel([unit.pk], reason=REASON, by_channel=True)
    assert again.done == [] and again.failed == [
        ("FLIPKART-FK-1/FK-1-L1-0", "unit is CANCELLED: nothing left to cancel")
    ]
    assert StateChange.objects.count() == audit and stock() == {GOOD: (10, 0)}


def test_delivered_and_returning_units_are_refused(world):
    order = world.order("FK-1", 1)
    advance(shipment_of(order), ShipmentStatus.DELIVERED)
    [(_, why)] = units_cancel([order.items.get().pk], reason=REASON).failed
    assert why == "unit is DELIVERED: a customer return needs a reverse pickup"
    other = world.order("FK-2", 1)
    advance(shipment_of(other), ShipmentStatus.DISPATCHED)
    assert units_cancel([other.items.get().pk], reason=REASON).ok
    [(_, why)] = units_cancel([other.items.get().pk], reason=REASON).failed
    assert "is already RETURN_EXPECTED" in why


def test_orders_cancel_handles_every_stage_of_an_order(world):
    from orders.services import LineInput, OrderInput, order_create, picklist_create

    order = order_create(
        OrderInput(
            channel=world.channel,
            channel_order_id="FK-9",
            ship_pincode="560001",
            lines=[LineInput("L1", "TSHIRT", 2, "100"), LineInput("L2", "TSHIRT", 1, "50")],
        )
    )
    shipment = shipment_of(order)
    picklist_create([shipment.pk], destination="INVOICING")
    assert stock() == {GOOD: (10, 3)}

    outcome = orders_cancel([order.pk], reason=REASON, actor="test")

    assert outcome.done == [order] and outcome.ok
    assert statuses(order) == [OrderItemStatus.CANCELLED] * 3
    assert fresh(order).status == OrderStatus.CANCELLED
    [putaway] = outcome.created
    assert putaway.item_count == 3
    assert stock() == {GOOD: (7, 0)}
    assert orders_cancel([order.pk], reason=REASON).failed == [
        ("FLIPKART-FK-9", "order is CANCELLED: no unit left to cancel")
    ]


def test_orders_cancel_is_all_or_nothing_per_order(world):
    Sequence.objects.filter(name="RETURN_INVOICE").delete()
    order = world.order("FK-1", 2)
    fine = world.order("FK-2", 1)
    advance(shipment_of(order), ShipmentStatus.PACKED)
    outcome = orders_cancel([order.pk, fine.pk], reason=REASON)
    assert outcome.done == [fine]
    [(label, why)] = outcome.failed
    assert label == "FLIPKART-FK-1" and why.count("RETURN_INVOICE is not defined") == 2
    assert statuses(order) == [OrderItemStatus.PICKING_FOR_INVOICING] * 2
    assert statuses(fine) == [OrderItemStatus.CANCELLED]
    assert stock() == {GOOD: (10, 2)}


def test_order_with_dispatched_and_pending_units(world):
    order = world.order("FK-1", 1)
    advance(shipment_of(order), ShipmentStatus.DISPATCHED)
    from orders.services import LineInput, OrderInput, order_create

    mixed = order_create(
        OrderInput(
            channel=world.channel,
            channel_order_id="FK-2",
            ship_pincode="560001",
            lines=[LineInput("L1", "TSHIRT", 1, "100")],
        )
    )
    advance(shipment_of(mixed), ShipmentStatus.DISPATCHED)
    outcome = orders_cancel([order.pk, mixed.pk], reason=REASON)
    assert outcome.ok and set(outcome.done) == {order, mixed}
    assert set(Shipment.objects.values_list("status", flat=True)) == {
        ShipmentStatus.RETURN_EXPECTED
    }
    assert fresh(order).status == OrderStatus.COMPLETE


# --- Audit, signal and set-based work ----------------------------------------------------


def test_audit_rows_and_signal(world):
    user = UserFactory(username="sales1")
    order = world.order("FK-1", 1)
    received = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    units_cancelled.connect(listener)
    try:
        units_cancel([order.items.get().pk], reason=REASON, actor=user, by_channel=False)
    finally:
        units_cancelled.disconnect(listener)
    [sent] = received
    assert sent["by_channel"] is False and sent["reason"] == REASON
    assert [u.code for u in sent["units"]] == ["FK-1-L1-0"]
    rows = StateChange.objects.filter(order=order, transition="cancel").order_by("pk")
    assert [(r.from_state, r.to_state, r.actor, r.reason) for r in rows] == [
        (OrderItemStatus.FULFILLABLE, OrderItemStatus.CANCELLED, "sales1", REASON),
        (
            ShipmentStatus.CREATED,
            ShipmentStatus.CANCELLED,
            "sales1",
            f"all its units were cancelled: {REASON}",
        ),
        (OrderStatus.CREATED, OrderStatus.CANCELLED, "sales1", REASON),
    ]


@pytest.mark.parametrize(
    "stage",
    [
        ShipmentStatus.CREATED,
        ShipmentStatus.PICKED,
        ShipmentStatus.PACKED,
        ShipmentStatus.DISPATCHED,
    ],
)
def test_queries_do_not_grow_with_units(world, stage):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=100)

    def cancel(n: int, coid: str) -> int:
        order = world.order(coid, n)
        if stage != ShipmentStatus.CREATED:
            advance(shipment_of(order), stage)
        ids = [u.pk for u in units(order)]
        with CaptureQueriesContext(connection) as queries:
            assert units_cancel(ids, reason=REASON).ok
        return len(queries)

    assert cancel(2, "FK-1") == cancel(20, "FK-2")
