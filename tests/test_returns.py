"""Return paths: courier returns (RTO) through return manifests or "mark returned", customer
returns (CIR) through reverse pickups, the three reship options and replacement — with
statuses, putaways, invoices and the exact stock of each shelf before and after; and the
transition tables of the new documents."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from inventory.models import Putaway, PutawayItem, PutawayStatus, PutawayType
from inventory.putaway import putaways_complete, putaways_discard
from orders.models import (
    Invoice,
    InvoiceType,
    Order,
    OrderItem,
    OrderItemStatus,
    OrderKind,
    OrderStatus,
    ReshipOption,
    ReturnManifest,
    ReturnManifestStatus,
    ReversePickup,
    ReversePickupStatus,
    ShipmentStatus,
)
from orders.services import (
    return_manifest_add_shipments,
    return_manifest_close,
    return_manifest_create,
    reverse_pickup_allocate_courier,
    reverse_pickup_create,
    reverse_pickups_cancel,
    reverse_pickups_complete,
    reverse_pickups_mark_not_received,
    shipments_expect_return,
    shipments_mark_returned,
    shipments_receive_return,
    units_cancel,
    units_replace,
    units_reship,
)
from uniware.core.actors import Actor
from uniware.core.fsm import IllegalTransition, apply_transition
from uniware.core.models import Sequence, StateChange, Traceability
from uniware.core.services import SequenceNotDefined

from .factories import FacilityFactory, ShelfFactory
from .returns_flow import (
    advance,
    fresh,
    return_invoice_sequence,
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
def commit(django_capture_on_commit_callbacks):
    """`with commit(): ...` runs what the services leave for after the commit (allocation
    of follow-up orders, re-allocation of waiting units)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def dispatched(world, coid: str = "FK-1", quantity: int = 1):
    order = world.order(coid, quantity)
    shipment = shipment_of(order)
    advance(shipment, ShipmentStatus.DISPATCHED)
    return order, fresh(shipment)


def item_traceability_rto(world, shipment):
    """Courier return received on a return manifest and closed: the pending putaway."""
    assert shipments_expect_return([shipment.pk], actor="test").ok
    manifest = return_manifest_create(facility=world.facility)
    assert return_manifest_add_shipments(manifest, [shipment.pk]).ok
    putaway = return_manifest_close(manifest).created[0]
    return manifest, putaway


# --- Courier returns -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", [ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED])
def test_expect_return_from_dispatched_or_shipped(world, stage):
    order = world.order("FK-1", 1)
    shipment = shipment_of(order)
    advance(shipment, stage)
    outcome = shipments_expect_return([shipment.pk], reason="door locked")
    assert outcome.ok and fresh(shipment).status == ShipmentStatus.RETURN_EXPECTED
    row = StateChange.objects.filter(transition="expect_return").get()
    assert row.reason == "door locked"
    assert order.items.get().status == OrderItemStatus.DISPATCHED  # units keep their forward status


@pytest.mark.parametrize(
    "stage", [ShipmentStatus.CREATED, ShipmentStatus.PACKED, ShipmentStatus.DELIVERED]
)
def test_expect_return_is_refused_before_dispatch_and_after_delivery(world, stage):
    order = world.order("FK-1", 1)
    shipment = shipment_of(order)
    if stage != ShipmentStatus.CREATED:
        advance(shipment, stage)
    [(label, why)] = shipments_expect_return([shipment.pk]).failed
    assert label == shipment.code and f"is {stage}: cannot expect return" in why


def test_rto_with_item_traceability_end_to_end(world):
    traceability(Traceability.ITEM)
    order, shipment = dispatched(world, quantity=2)
    assert stock() == {GOOD: (8, 0)}
    manifest, putaway = item_traceability_rto(world, shipment)
    assert fresh(manifest).status == ReturnManifestStatus.CLOSED
    assert putaway.putaway_type == PutawayType.PUTAWAY_COURIER_RETURNED_ITEMS
    assert putaway.item_count == 2
    [credit] = Invoice.objects.filter(invoice_type=InvoiceType.SALE_RETURN)
    assert credit.total_amount == Decimal("998.00")
    assert fresh(shipment).status == ShipmentStatus.RETURN_ACKNOWLEDGED
    assert stock() == {GOOD: (8, 0)}

    assert putaways_complete([putaway.pk]).ok
    assert fresh(shipment).status == ShipmentStatus.RETURNED
    assert stock() == {GOOD: (10, 0)}
    assert fresh(order).status == OrderStatus.COMPLETE


def test_return_manifest_refusals(world):
    order, shipment = dispatched(world)
    other = FacilityFactory(code="WH2", priority=2)
    foreign = return_manifest_create(facility=other)
    manifest = return_manifest_create(facility=world.facility)
    [(_, why)] = return_manifest_add_shipments(manifest, [shipment.pk]).failed
    assert "is DISPATCHED: cannot acknowledge return" in why
    shipments_expect_return([shipment.pk])
    [(_, why)] = return_manifest_add_shipments(foreign, [shipment.pk]).failed
    assert why == "it was dispatched from WH1, not WH2"
    with pytest.raises(IllegalTransition, match="it has received no shipments"):
        return_manifest_close(manifest)
    assert return_manifest_add_shipments(manifest, [shipment.pk]).ok
    [(_, why)] = return_manifest_add_shipments(manifest, [shipment.pk]).failed
    assert "is RETURN_ACKNOWLEDGED" in why

    Sequence.objects.filter(name="RETURN_INVOICE").delete()
    with pytest.raises(SequenceNotDefined, match="RETURN_INVOICE is not defined for facility"):
        return_manifest_close(manifest)
    assert fresh(manifest).status == ReturnManifestStatus.CREATED
    assert not Putaway.objects.exists()

    return_invoice_sequence(world)
    return_manifest_close(manifest)
    with pytest.raises(IllegalTransition, match="only an open return manifest"):
        return_manifest_add_shipments(manifest, [shipment.pk])


def test_receive_return_opens_a_return_manifest_per_facility(world):
    _, first = dispatched(world, "FK-1")
    _, second = dispatched(world, "FK-2")
    shipments_expect_return([first.pk, second.pk])
    outcome = shipments_receive_return([first.pk, second.pk], actor="test")
    assert outcome.ok
    [manifest] = outcome.created
    assert set(manifest.items.values_list("shipment_id", flat=True)) == {first.pk, second.pk}
    assert ReturnManifest.objects.count() == 1


def test_discarding_a_courier_return_putaway_closes_the_return_without_stock(world):
    traceability(Traceability.ITEM)
    _, shipment = dispatched(world)
    _, putaway = item_traceability_rto(world, shipment)
    outcome = putaways_discard([putaway.pk], reason="crushed in transit")
    assert outcome.ok
    assert fresh(putaway).status == PutawayStatus.DISCARDED
    assert fresh(putaway).discard_reason == "crushed in transit"
    assert fresh(shipment).status == ShipmentStatus.RETURNED
    assert stock() == {GOOD: (9, 0)}


def test_mark_returned_into_a_chosen_shelf_as_bad_stock(world):
    _, shipment = dispatched(world)
    damaged = ShelfFactory(facility=world.facility, code="DMG")
    outcome = shipments_mark_returned(
        [shipment.pk], shelf=damaged, inventory_type="BAD_INVENTORY", actor="test"
    )
    assert outcome.ok
    assert stock() == {GOOD: (9, 0), ("DMG", "TSHIRT", "BAD_INVENTORY"): (1, 0)}
    with pytest.raises(ValidationError, match="not GOOD or BAD"):
        shipments_mark_returned([shipment.pk], inventory_type="QC_REJECTED")


def test_mark_returned_refuses_a_shelf_of_another_facility_and_missing_sequences(world):
    _, shipment = dispatched(world)
    elsewhere = ShelfFactory(facility=FacilityFactory(code="WH2", priority=2), code="B1")
    [(_, why)] = shipments_mark_returned([shipment.pk], shelf=elsewhere).failed
    assert why == "shelf WH2/B1 is not in facility WH1"
    Sequence.objects.filter(name="RETURN_INVOICE").delete()
    [(_, why)] = shipments_mark_returned([shipment.pk]).failed
    assert why == "Sequence RETURN_INVOICE is not defined for facility WH1"
    assert fresh(shipment).status == ShipmentStatus.DISPATCHED and stock() == {GOOD: (9, 0)}
    assert not Putaway.objects.exists()


# --- Customer returns: reverse pickups -------------------------------------------------------


def test_reverse_pickup_lifecycle_to_complete(world):
    order, shipment = dispatched(world, quantity=2)
    shipment_id = shipment.pk
    from orders.services import shipments_deliver

    shipments_deliver([shipment.pk])
    first, second = order.items.order_by("pk")
    assert stock() == {GOOD: (8, 0)}

    pickup = reverse_pickup_create([first.pk], reason="wrong size", actor="test")

    assert (pickup.code, pickup.status, pickup.facility) == (
        "RP-000001",
        ReversePickupStatus.CREATED,
        world.facility,
    )
    assert pickup.order == order and [i.order_item for i in pickup.items.all()] == [first]
    with pytest.raises(IllegalTransition, match="is CREATED: cannot complete"):
        apply_transition(fresh(pickup), "complete", actor=Actor.of("test"))
    with pytest.raises(ValidationError, match="return AWB is missing"):
        reverse_pickup_allocate_courier(
            pickup, courier_name="Delhivery", courier_code="DEL", return_awb=" "
        )
    reverse_pickup_allocate_courier(
        pickup, courier_name="Delhivery", courier_code="DEL", return_awb="RAWB1"
    )
    pickup = fresh(pickup)
    assert (pickup.status, pickup.courier_name, pickup.courier_code, pickup.return_awb) == (
        ReversePickupStatus.COURIER_ALLOCATED,
        "Delhivery",
        "DEL",
        "RAWB1",
    )
    assert stock() == {GOOD: (8, 0)}

    outcome = reverse_pickups_complete([pickup.pk], actor="test")

    assert outcome.ok and fresh(pickup).status == ReversePickupStatus.COMPLETE
    putaway, credit = outcome.created
    assert putaway.putaway_type == PutawayType.PUTAWAY_REVERSE_PICKUP_ITEM
    assert putaway.reverse_pickup == pickup and putaway.item_count == 1
    assert (credit.invoice_type, credit.total_amount, credit.shipment_id) == (
        InvoiceType.SALE_RETURN,
        Decimal("499.00"),
        shipment_id,
    )
    assert stock() == {GOOD: (8, 0)}  # back only when the putaway completes
    assert putaways_complete([putaway.pk]).ok
    assert stock() == {GOOD: (9, 0)}
    assert (
        fresh(first).status == OrderItemStatus.DELIVERED
        and fresh(second).status == OrderItemStatus.DELIVERED
    )
    assert fresh(shipment).status == ShipmentStatus.DELIVERED
    with pytest.raises(ValidationError, match="already on reverse pickup RP-000001"):
        reverse_pickup_create([first.pk], reason="again")


def test_reverse_pickup_not_received_then_a_new_one(world):
    order, _ = dispatched(world)
    unit = order.items.get()
    pickup = reverse_pickup_create([unit.pk], reason="defective")
    [(_, why)] = reverse_pickups_mark_not_received([pickup.pk]).failed
    assert "is CREATED: cannot mark not received" in why
    reverse_pickup_allocate_courier(pickup, courier_name="", courier_code="DEL", return_awb="R1")
    assert reverse_pickups_mark_not_received([pickup.pk], reason="customer absent").ok
    assert fresh(pickup).status == ReversePickupStatus.NOT_RECEIVED
    again = reverse_pickup_create([unit.pk], reason="defective")
    assert again.code == "RP-000002"
    assert stock() == {GOOD: (9, 0)} and not Putaway.objects.exists()


def test_reverse_pickup_is_cancelled_only_whole_and_needs_a_reason(world):
    order, _ = dispatched(world, quantity=2)
    pickup = reverse_pickup_create([u.pk for u in order.items.all()], reason="defective")
    with pytest.raises(ValidationError, match="reason is required"):
        reverse_pickups_cancel([pickup.pk], reason="")
    assert reverse_pickups_cancel([pickup.pk], reason="customer kept it").ok
    assert fresh(pickup).status == ReversePickupStatus.CANCELLED
    [(_, why)] = reverse_pickups_complete([pickup.pk]).failed
    assert "is CANCELLED: cannot complete" in why


def test_reverse_pickup_refusals_name_each_unit(world):
    waiting = world.order("FK-1", 1)
    order, shipment = dispatched(world, "FK-2")
    other, _ = dispatched(world, "FK-3")
    with pytest.raises(ValidationError) as caught:
        reverse_pickup_create([waiting.items.get().pk], reason="x")
    assert "Unit FLIPKART-FK-1/FK-1-L1-0 is FULFILLABLE" in str(caught.value)
    with pytest.raises(ValidationError, match="units of one order, not FLIPKART-FK-2, FLIPKART"):
        reverse_pickup_create([order.items.get().pk, other.items.get().pk], reason="x")
    shipments_expect_return([shipment.pk])
    with pytest.raises(ValidationError, match="its shipment is RETURN_EXPECTED"):
        reverse_pickup_create([order.items.get().pk], reason="x")
    with pytest.raises(ValidationError, match="reason is required"):
        reverse_pickup_create([other.items.get().pk], reason="")


def test_a_unit_on_a_reverse_pickup_cannot_also_come_back_by_courier(world):
    order, shipment = dispatched(world)
    reverse_pickup_create([order.items.get().pk], reason="defective")
    [(_, why)] = shipments_expect_return([shipment.pk]).failed
    assert why == "a unit of it is on a reverse pickup (customer return)"
    [(_, why)] = units_cancel([order.items.get().pk], reason="channel cancel").failed
    assert "is on a reverse pickup" in why
    assert fresh(shipment).status == ShipmentStatus.DISPATCHED


def test_reverse_pickup_complete_needs_the_return_invoice_sequence(world):
    order, _ = dispatched(world)
    pickup = reverse_pickup_create([order.items.get().pk], reason="defective")
    reverse_pickup_allocate_courier(pickup, courier_name="X", courier_code="X", return_awb="R")
    Sequence.objects.filter(name="RETURN_INVOICE").delete()
    [(label, why)] = reverse_pickups_complete([pickup.pk]).failed
    assert (label, why) == (
        "RP-000001",
        "Sequence RETURN_INVOICE is not defined for facility WH1",
    )
    assert (
        fresh(pickup).status == ReversePickupStatus.COURIER_ALLOCATED
        and not Putaway.objects.exists()
    )


# --- Reship ----------------------------------------------------------------------------------


def test_reship_wait_for_return_goes_out_when_the_return_is_put_away(world, commit):
    traceability(Traceability.ITEM)
    order, shipment = dispatched(world)
    unit = order.items.get()
    shipments_expect_return([shipment.pk])
    assert stock() == {GOOD: (9, 0)}

    outcome = units_reship([unit.pk], option=ReshipOption.WAIT_FOR_RETURN, actor="test")

    assert outcome.ok and outcome.created == []
    unit = fresh(unit)
    assert (
        unit.status == OrderItemStatus.DISPATCHED
        and unit.reship_option == ReshipOption.WAIT_FOR_RETURN
    )
    [(_, why)] = units_reship([unit.pk], option=ReshipOption.WAIT_FOR_RETURN).failed
    assert why == "it already waits for its return to be reshipped"

    manifest = return_manifest_create(facility=world.facility)
    return_manifest_add_shipments(manifest, [shipment.pk])
    putaway = return_manifest_close(manifest).created[0]
    assert fresh(unit).status == OrderItemStatus.DISPATCHED
    with commit():
        done = putaways_complete([putaway.pk], actor="test")
    assert done.ok
    assert fresh(unit).status == OrderItemStatus.RESHIPPED
    [reship] = done.created
    reship = fresh(reship)
    assert reship.code == "FLIPKART-FK-1-RS1" and reship.channel_order_id == "FK-1-RS1"
    assert (reship.kind, reship.source_order) == (OrderKind.RESHIPMENT, order)
    new_unit = reship.items.get()
    assert new_unit.source_item == unit and new_unit.status == OrderItemStatus.FULFILLABLE
    assert new_unit.selling_price == unit.selling_price
    # the returned unit is back on the shelf, and the reshipment blocked one unit
    assert stock() == {GOOD: (10, 1)}


def test_reship_wait_for_return_after_the_return_reships_at_once(world, commit):
    order, shipment = dispatched(world)
    shipments_mark_returned([shipment.pk])
    assert stock() == {GOOD: (10, 0)}
    with commit():
        outcome = units_reship([order.items.get().pk], option=ReshipOption.WAIT_FOR_RETURN)
    [reship] = outcome.created
    assert order.items.get().status == OrderItemStatus.RESHIPPED
    assert fresh(reship).items.get().status == OrderItemStatus.FULFILLABLE
    assert stock() == {GOOD: (10, 1)}


def test_wait_for_return_then_mark_returned_reships(world, commit):
    order, shipment = dispatched(world)
    shipments_expect_return([shipment.pk])
    units_reship([order.items.get().pk], option=ReshipOption.WAIT_FOR_RETURN)
    with commit():
        outcome = shipments_mark_returned([shipment.pk])
    reship = [o for o in outcome.created if isinstance(o, Order)]
    assert len(reship) == 1 and order.items.get().status == OrderItemStatus.RESHIPPED
    assert stock() == {GOOD: (10, 1)}


def test_reship_immediately_and_expect_return(world, commit):
    traceability(Traceability.ITEM)
    order, shipment = dispatched(world)
    shipments_expect_return([shipment.pk])
    with commit():
        outcome = units_reship([order.items.get().pk], option=ReshipOption.RESHIP_EXPECT_RETURN)
    [reship] = outcome.created
    assert order.items.get().status == OrderItemStatus.RESHIPPED
    assert order.items.get().reship_option == ReshipOption.RESHIP_EXPECT_RETURN
    assert fresh(shipment).status == ShipmentStatus.RETURN_EXPECTED  # the return goes on
    assert stock() == {GOOD: (9, 1)}
    manifest = return_manifest_create(facility=world.facility)
    return_manifest_add_shipments(manifest, [shipment.pk])
    putaway = return_manifest_close(manifest).created[0]
    assert putaway.item_count == 1  # the RESHIPPED unit is in the returning package
    assert putaways_complete([putaway.pk]).ok
    assert stock() == {GOOD: (10, 1)}
    assert fresh(shipment).status == ShipmentStatus.RETURNED
    assert Order.objects.filter(source_order=order).count() == 1


def test_reship_immediately_and_dont_expect_return(world, commit):
    order, shipment = dispatched(world, quantity=2)
    first, second = order.items.order_by("pk")
    shipments_expect_return([shipment.pk])
    [(_, why)] = units_reship([first.pk], option=ReshipOption.RESHIP_NO_RETURN).failed
    assert why.startswith(f"the whole package {shipment.code} is written off")

    with commit():
        outcome = units_reship([first.pk, second.pk], option=ReshipOption.RESHIP_NO_RETURN)

    assert outcome.ok
    reship, credit = outcome.created
    assert fresh(reship).items.count() == 2 and credit.total_amount == Decimal("998.00")
    assert fresh(shipment).status == ShipmentStatus.RETURNED
    assert not Putaway.objects.exists()  # nothing comes back
    assert stock() == {GOOD: (8, 2)}
    assert StateChange.objects.filter(transition="write_off_return").count() == 1


def test_dont_expect_return_is_refused_once_the_package_is_received(world):
    traceability(Traceability.ITEM)
    order, shipment = dispatched(world)
    shipments_expect_return([shipment.pk])
    shipments_receive_return([shipment.pk])
    [(_, why)] = units_reship([order.items.get().pk], option=ReshipOption.RESHIP_NO_RETURN).failed
    assert "was already received back: choose another option" in why


def test_reship_refusals(world):
    order, shipment = dispatched(world)
    unit = order.items.get()
    [(label, why)] = units_reship([unit.pk], option=ReshipOption.RESHIP_EXPECT_RETURN).failed
    assert label == "FLIPKART-FK-1/FK-1-L1-0"
    assert why == "its shipment is DISPATCHED: mark it as a courier return first"
    units_cancel([unit.pk], reason="channel cancelled")
    [(_, why)] = units_reship([unit.pk], option=ReshipOption.RESHIP_EXPECT_RETURN).failed
    assert why == "it was cancelled after dispatch (channel cancelled)"
    with pytest.raises(ValidationError, match="Reship option 'SOON'"):
        units_reship([unit.pk], option="SOON")
    pending = world.order("FK-2", 1)
    [(_, why)] = units_reship([pending.items.get().pk], option="RESHIP_EXPECT_RETURN").failed
    assert why == "unit is FULFILLABLE: only dispatched units come back"


# --- Replacement -----------------------------------------------------------------------------


def test_replacement_makes_a_linked_order(world, commit):
    order, shipment = dispatched(world, quantity=2)
    from orders.services import shipments_deliver

    shipments_deliver([shipment.pk])
    first, second = order.items.order_by("pk")
    with commit():
        outcome = units_replace([first.pk], reason="defective", actor="test")
    [replacement] = outcome.created
    replacement = fresh(replacement)
    assert (
        fresh(first).status == OrderItemStatus.REPLACED
        and fresh(second).status == OrderItemStatus.DELIVERED
    )
    assert replacement.code == "FLIPKART-FK-1-R1" and replacement.kind == OrderKind.REPLACEMENT
    assert replacement.source_order == order
    assert replacement.items.get().source_item == first
    assert replacement.items.get().status == OrderItemStatus.FULFILLABLE
    assert stock() == {GOOD: (8, 1)}
    assert fresh(order).status == OrderStatus.COMPLETE
    with commit():
        [second_replacement] = units_replace([second.pk]).created
    assert fresh(second_replacement).code == "FLIPKART-FK-1-R2"
    # the customer sends the replaced original back with a reverse pickup
    pickup = reverse_pickup_create([first.pk], reason="replaced: send the old one back")
    assert pickup.items.get().order_item == first


def test_replacement_refusals(world):
    pending = world.order("FK-1", 1)
    [(_, why)] = units_replace([pending.items.get().pk]).failed
    assert why == "unit is FULFILLABLE: only dispatched units are replaced"
    order, shipment = dispatched(world, "FK-2")
    shipments_expect_return([shipment.pk])
    [(_, why)] = units_replace([order.items.get().pk]).failed
    assert why == f"shipment {shipment.code} is a courier return (RETURN_EXPECTED): reship it"


# --- A unit comes back at most once ----------------------------------------------------------


def test_a_unit_cannot_be_on_two_putaways(world):
    order = world.order("FK-1", 1)
    advance(shipment_of(order), ShipmentStatus.PICKED)
    [putaway] = units_cancel([order.items.get().pk], reason="x").created
    with pytest.raises(IntegrityError), transaction.atomic():
        PutawayItem.objects.create(putaway=putaway, order_item=order.items.get(), sku=world.sku)


# --- The transition tables of the new documents ---------------------------------------------

NEW_TRANSITIONS = {
    ReturnManifest: {"close": (["CREATED"], "CLOSED")},
    ReversePickup: {
        "allocate_courier": ([ReversePickupStatus.CREATED], ReversePickupStatus.COURIER_ALLOCATED),
        "complete": ([ReversePickupStatus.COURIER_ALLOCATED], ReversePickupStatus.COMPLETE),
        "mark_not_received": (
            [ReversePickupStatus.COURIER_ALLOCATED],
            ReversePickupStatus.NOT_RECEIVED,
        ),
        "cancel": (
            [ReversePickupStatus.CREATED, ReversePickupStatus.COURIER_ALLOCATED],
            ReversePickupStatus.CANCELLED,
        ),
    },
    Putaway: {
        "complete": ([PutawayStatus.CREATED], PutawayStatus.COMPLETE),
        "discard": ([PutawayStatus.CREATED], PutawayStatus.DISCARDED),
    },
}


def test_new_status_values_are_those_of_domain_md():
    assert ReversePickupStatus.values == [
        "CREATED",
        "COURIER_ALLOCATED",
        "COMPLETE",
        "NOT_RECEIVED",
        "CANCELLED",
    ]
    assert PutawayStatus.values == ["CREATED", "COMPLETE", "DISCARDED"]
    assert ReturnManifestStatus.values == ["CREATED", "CLOSED"]
    assert PutawayType.values == [
        "PUTAWAY_PICKLIST_ITEM",
        "PUTAWAY_CANCELLED_ITEM",
        "PUTAWAY_COURIER_RETURNED_ITEMS",
        "PUTAWAY_RECEIVED_RETURNS",
        "PUTAWAY_REVERSE_PICKUP_ITEM",
    ]


@pytest.mark.parametrize("model", list(NEW_TRANSITIONS), ids=lambda m: m.__name__)
def test_the_new_transition_tables(model):
    field = model._meta.get_field("status")
    assert field.editable is False
    declared = {(t.name, t.source, t.target) for t in field.get_all_transitions(model)}
    assert declared == {
        (name, source, target)
        for name, (sources, target) in NEW_TRANSITIONS[model].items()
        for source in sources
    }


_codes = itertools.count(1)


def _document(world, model, status):
    n = next(_codes)
    if model is ReturnManifest:
        return ReturnManifest.objects.create(code=f"RM-{n}", facility=world.facility, status=status)
    if model is Putaway:
        return Putaway.objects.create(
            code=f"PA-T{n}",
            facility=world.facility,
            putaway_type="PUTAWAY_PICKLIST_ITEM",
            status=status,
        )
    order = world.order(f"T-{n}", 1)
    return ReversePickup.objects.create(
        code=f"RP-T{n}", order=order, facility=world.facility, reason="x", status=status
    )


@pytest.mark.parametrize(
    "model, name, status",
    [
        (model, name, value)
        for model, table in NEW_TRANSITIONS.items()
        for name in table
        for value, _ in model._meta.get_field("status").choices
    ],
    ids=str,
)
def test_every_transition_from_every_status(world, model, name, status):
    obj = _document(world, model, status)
    sources, target = NEW_TRANSITIONS[model][name]
    if status in sources:
        change = apply_transition(obj, name, actor=Actor.of("test"), reason="t")
        assert (change.from_state, change.to_state) == (status, target)
        assert type(obj).objects.get(pk=obj.pk).status == target
        row = StateChange.objects.get(object_id=obj.pk, transition=name)
        expected_order = obj.order_id if model is ReversePickup else None
        assert (row.to_state, row.order_id) == (target, expected_order)
    else:
        with pytest.raises(IllegalTransition, match=f"is {status}: cannot"):
            apply_transition(obj, name, actor=Actor.of("test"))
        assert type(obj).objects.get(pk=obj.pk).status == status


def test_units_are_not_touched_by_a_new_order_item_field_by_hand():
    for name in ("source_item", "reship_option"):
        assert OrderItem._meta.get_field(name).editable is False
    for name in ("source_order", "kind"):
        assert Order._meta.get_field(name).editable is False


# --- Set-based: the number of queries does not grow with the objects ------------------------


def _queries(fn) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        outcome = fn()
    assert outcome.ok, outcome.failed
    return len(queries)


def _dispatched_shipments(world, prefix: str, n: int) -> list[int]:
    from orders.models import Shipment
    from orders.services import shipments_force_dispatch

    orders = [world.order(f"{prefix}-{k}", 2) for k in range(n)]
    ids = list(Shipment.objects.filter(order__in=orders).values_list("pk", flat=True))
    assert shipments_force_dispatch(ids).ok
    return ids


def test_courier_return_services_do_not_query_per_shipment(world):
    from inventory.models import Inventory

    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=100)
    few, many = _dispatched_shipments(world, "A", 2), _dispatched_shipments(world, "B", 8)
    assert _queries(lambda: shipments_expect_return(few)) == _queries(
        lambda: shipments_expect_return(many)
    )
    assert _queries(lambda: shipments_mark_returned(few)) == _queries(
        lambda: shipments_mark_returned(many)
    )


def test_reverse_pickup_completion_does_not_query_per_pickup(world):
    from inventory.models import Inventory

    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=100)

    def pickups(prefix: str, n: int) -> list[int]:
        ids = []
        for k in range(n):
            order, _ = dispatched(world, f"{prefix}-{k}", 2)
            pickup = reverse_pickup_create(
                list(order.items.values_list("pk", flat=True)), reason="x"
            )
            reverse_pickup_allocate_courier(
                pickup, courier_name="C", courier_code="C", return_awb="R"
            )
            ids.append(pickup.pk)
        return ids

    few, many = pickups("A", 2), pickups("B", 6)
    assert _queries(lambda: reverse_pickups_complete(few)) == _queries(
        lambda: reverse_pickups_complete(many)
    )
    assert Putaway.objects.filter(reverse_pickup__isnull=False).count() == 8
