"""Status sync (seed 000) through the services, against the simulator over loopback HTTP.

Each test sets the channel's view in the simulator, runs a sync and checks our orders, units,
shipments, invoices, stock and audit trail, and the run's counts, report and errors. The same
scenarios run through a real Celery worker in `test_sync_integration.py`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels.adapters import adapter_for
from channels.models import Channel, RunOutcome, SyncError, SyncKind, SyncLease, SyncRun
from channels.sync import NOT_LIVE, pull_orders, resync_from, sync_selected, sync_status
from channels.sync.apply import OrderRow, apply_channel_orders
from channels.sync.runs import lease_take
from inventory.models import Inventory, Putaway, PutawayType
from orders.models import (
    Invoice,
    Order,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    ReversePickup,
    Shipment,
    ShipmentStatus,
)
from orders.services import (
    LineInput,
    OrderInput,
    order_create,
    orders_hold,
    shipments_force_dispatch,
    units_cancel,
)
from uniware.core.actors import Actor
from uniware.core.models import Sequence, StateChange

from .factories import FacilityFactory, ShelfFactory, SkuFactory
from .sync_helpers import advance, channel_order, mirror, point_at

pytest_plugins = ["tests.sync_fixtures"]
pytestmark = pytest.mark.dialects()  # every API; scenarios one cannot tell say which


def units(order) -> list[str]:
    return list(order.items.order_by("pk").values_list("status", flat=True))


def stock(world) -> tuple[int, int]:
    row = Inventory.objects.get(pk=world.inventory.pk)
    return row.quantity, row.blocked_quantity


def counts(run: SyncRun) -> tuple:
    return run.outcome, run.seen, run.changed, run.unchanged, run.failed


def two_line_order(world, order_id: str):
    return order_create(
        OrderInput(
            channel=world.channel,
            channel_order_id=order_id,
            ship_pincode="560001",
            lines=[
                LineInput(f"{order_id}-L1", world.sku.code, 1, "499.00"),
                LineInput(f"{order_id}-L2", world.sku.code, 1, "299.00"),
            ],
        )
    )


# --- DISPATCHED ---------------------------------------------------------------------------------


def test_dispatched_fulfillable_units_with_a_created_shipment_are_invoiced_and_dispatched(
    world, channel, sim, live
):
    order = world.order("FK-1", 2)
    shipment = order.shipments.get()
    assert (shipment.status, units(order), stock(world)) == (
        ShipmentStatus.CREATED,
        [OrderItemStatus.FULFILLABLE] * 2,
        (10, 2),
    )
    mirror(sim, order, status="DISPATCHED")

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    assert run.report == [["FLIPKART-FK-1", "CHANGED", "dispatched 2 units"]]
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert (shipment.status, order.status, units(order)) == (
        ShipmentStatus.DISPATCHED,
        OrderStatus.COMPLETE,
        [OrderItemStatus.DISPATCHED] * 2,
    )
    assert shipment.dispatched_at is not None
    invoice = Invoice.objects.get(shipment=shipment)
    assert (invoice.code, invoice.total_amount) == ("INV-WH1-000001", 998)
    assert stock(world) == (8, 0)  # the blocked units left the shelf
    change = StateChange.objects.get(object_id=shipment.pk, transition="dispatch_from_channel")
    assert change.actor == "task:status_sync:FLIPKART"
    assert change.reason == "FLIPKART says DISPATCHED (status sync)"
    assert (run.progress_done, run.progress_total, run.message.splitlines()[0]) == (
        1,
        1,
        "1 order(s) seen: 1 changed, 0 unchanged, 0 failed.",
    )


def test_dispatched_unfulfillable_units_get_a_shipment_and_are_dispatched(
    world, channel, sim, live
):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=0)
    order = world.order("FK-2", 2)
    assert units(order) == [OrderItemStatus.UNFULFILLABLE] * 2 and not order.shipments.exists()
    mirror(sim, order, status="DISPATCHED")

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    shipment = order.shipments.get()
    assert (shipment.status, shipment.facility, shipment.code) == (
        ShipmentStatus.DISPATCHED,
        world.facility,
        "SP-000001",
    )
    assert set(order.items.values_list("facility__code", "shipment_id")) == {("WH1", shipment.pk)}
    assert Invoice.objects.filter(shipment=shipment).count() == 1
    assert units(order) == [OrderItemStatus.DISPATCHED] * 2
    assert stock(world) == (0, 0)  # no stock was blocked, none is consumed
    history = StateChange.objects.filter(object_id=shipment.pk, content_type__model="shipment")
    assert list(history.order_by("pk").values_list("transition", "to_state")) == [
        ("create", ShipmentStatus.CREATED),
        ("dispatch_from_channel", ShipmentStatus.DISPATCHED),
    ]


@pytest.mark.parametrize("stage", ["PICKING", "PICKED", "PACKED", "READY_TO_SHIP", "MANIFESTED"])
def test_dispatched_for_units_further_along_is_a_force_dispatch(world, channel, sim, live, stage):
    order = world.order("FK-3", 1)
    shipment = order.shipments.get()
    advance(shipment, stage)
    mirror(sim, order, status="DISPATCHED")

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DISPATCHED and units(order) == [
        OrderItemStatus.DISPATCHED
    ]
    assert Invoice.objects.filter(shipment=shipment).count() == 1  # never invoiced twice
    assert stock(world) == (9, 0)
    # the picklist has nothing left to pick: closed, as after a force dispatch
    assert not Picklist.objects.filter(status__in=["CREATED", "RECEIVED"]).exists()


def test_a_missing_invoice_sequence_leaves_the_order_untouched_and_is_recorded(
    world, channel, sim, live
):
    wh2 = FacilityFactory(code="WH2", priority=2)
    wh2.shipping_providers.add(world.provider)
    Sequence.objects.create(name="INVOICE", facility=wh2, prefix="INV-WH2-")
    kurta = SkuFactory(code="KURTA", name="Kurta")
    Inventory.objects.create(facility=wh2, shelf=ShelfFactory(facility=wh2), sku=kurta, quantity=5)
    Sequence.objects.filter(name="INVOICE", facility=world.facility).delete()
    in_wh1 = world.order("FK-4", 1)
    in_wh2 = world.order("FK-5", 1, sku="KURTA")
    for order in (in_wh1, in_wh2):
        mirror(sim, order, status="DISPATCHED")
    changes_before = StateChange.objects.filter(order=in_wh1).count()

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.PARTIAL, 2, 1, 0, 1)
    in_wh1.refresh_from_db()
    assert in_wh1.status == OrderStatus.CREATED and units(in_wh1) == [OrderItemStatus.FULFILLABLE]
    assert in_wh1.shipments.get().status == ShipmentStatus.CREATED
    assert not Invoice.objects.filter(shipment__order=in_wh1).exists()
    assert stock(world) == (10, 1)
    assert StateChange.objects.filter(order=in_wh1).count() == changes_before
    error = SyncError.objects.get(run=run)
    assert (error.order, error.kind, error.message) == (
        in_wh1,
        "SEQUENCE",
        "Sequence INVOICE is not defined for facility WH1",
    )
    assert units(in_wh2) == [OrderItemStatus.DISPATCHED]  # the other order was not held up

    # once the sequence exists, the next run gets it right
    Sequence.objects.create(name="INVOICE", facility=world.facility, prefix="INV-WH1-")
    again = sync_status(channel, SyncKind.STATUS)
    assert counts(again) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    assert units(in_wh1) == [OrderItemStatus.DISPATCHED]


def test_running_a_sync_again_changes_nothing(world, channel, sim, live):
    order = world.order("FK-6", 2)
    mirror(sim, order, status="DISPATCHED")
    first = sync_selected([order.pk])[0]
    assert counts(first) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    before = (StateChange.objects.count(), Invoice.objects.count(), Shipment.objects.count())

    (second,) = sync_selected([order.pk])

    assert counts(second) == (RunOutcome.SUCCESS, 1, 0, 1, 0)
    assert second.report == [["FLIPKART-FK-6", "UNCHANGED", "in sync with the channel"]]
    assert (
        StateChange.objects.count(),
        Invoice.objects.count(),
        Shipment.objects.count(),
    ) == before
    assert stock(world) == (8, 0)


def test_a_partial_dispatch_moves_the_reported_units_into_a_shipment_of_their_own(
    world, channel, sim, live
):
    order = two_line_order(world, "FK-7")
    old = order.shipments.get()
    mirror(sim, order)
    sim.store.set_item_status("FLIPKART", "FK-7", "FK-7-L1", "DISPATCHED")

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    new = order.shipments.exclude(pk=old.pk).get()
    old.refresh_from_db()
    assert (new.status, new.parent_id, old.status) == (
        ShipmentStatus.DISPATCHED,
        old.pk,
        ShipmentStatus.CREATED,
    )
    assert dict(order.items.values_list("channel_order_item_id", "status")) == {
        "FK-7-L1": OrderItemStatus.DISPATCHED,
        "FK-7-L2": OrderItemStatus.FULFILLABLE,
    }
    assert Invoice.objects.get(shipment=new).total_amount == 499
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING


@pytest.mark.dialects(
    "contract"
)  # Amazon: Orders v0 gives no tracking number (the Easy Ship API does)
def test_channel_shipped_orders_take_the_channels_tracking_number(world, channel, sim, live):
    order = world.order("FK-8", 1, third_party_shipping=True)
    mirror(sim, order, status="DISPATCHED", courierName="Blue Dart", trackingNumber="AWB-42")
    sync_status(channel, SyncKind.STATUS)
    shipment = order.shipments.get()
    assert (shipment.status, shipment.tracking_number, shipment.shipping_provider) == (
        ShipmentStatus.DISPATCHED,
        "AWB-42",
        world.provider,  # found by its name
    )


def test_a_verified_pending_order_is_accepted_then_dispatched(world, channel, sim, live):
    order = world.order("FK-9", 1, pending_verification=True)
    assert (order.status, units(order)) == (
        OrderStatus.PENDING_VERIFICATION,
        [OrderItemStatus.CREATED],
    )
    mirror(sim, order, status="DISPATCHED")

    run = sync_status(channel, SyncKind.STATUS)

    assert run.report == [
        ["FLIPKART-FK-9", "CHANGED", "accepted (the channel verified it); dispatched 1 unit"]
    ]
    order.refresh_from_db()
    assert (order.status, units(order), stock(world)) == (
        OrderStatus.COMPLETE,
        [OrderItemStatus.DISPATCHED],
        (9, 0),
    )


def test_held_orders_follow_the_channel_but_unallocated_units_wait_for_release(
    world, channel, sim, live
):
    allocated = world.order("FK-10", 1)
    orders_hold([allocated.pk], reason="customer asked")
    never = world.order("FK-11", 1, on_hold=True)
    assert units(never) == [OrderItemStatus.CREATED]
    for order in (allocated, never):
        mirror(sim, order, status="DISPATCHED")

    run = sync_status(channel, SyncKind.STATUS)

    assert units(allocated) == [
        OrderItemStatus.DISPATCHED
    ]  # the goods left: the channel's word wins
    assert units(never) == [OrderItemStatus.CREATED]
    assert SyncError.objects.get(run=run).message == (
        "the order is on hold: release it so its units can be allocated"
    )


# --- conflicts, CANCELLED, DELIVERED, returns -------------------------------------------------


def test_a_conflict_changes_nothing_and_is_recorded_on_the_order(world, channel, sim, live):
    order = two_line_order(world, "FK-12")
    mirror(sim, order, status="DISPATCHED")
    first = order.items.get(channel_order_item_id="FK-12-L1")
    units_cancel([first.pk], reason="out of stock")

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.PARTIAL, 1, 0, 0, 1)
    first.refresh_from_db()
    assert first.status == OrderItemStatus.CANCELLED
    assert dict(order.items.values_list("channel_order_item_id", "status")) == {
        "FK-12-L1": OrderItemStatus.CANCELLED,
        # the unit that does not conflict follows the channel
        "FK-12-L2": OrderItemStatus.DISPATCHED,
    }
    error = SyncError.objects.get(run=run)
    assert (error.order, error.kind, error.message) == (
        order,
        "CONFLICT",
        "unit FK-12-L1-0: the channel says DISPATCHED but the unit is CANCELLED here",
    )
    assert run.report[0][1] == "FAILED" and "dispatched 1 unit" in run.report[0][2]


@pytest.mark.parametrize(
    "stage,putaway",
    [
        ("CREATED", None),
        ("PICKING", PutawayType.PUTAWAY_PICKLIST_ITEM),
        ("PACKED", PutawayType.PUTAWAY_CANCELLED_ITEM),
    ],
)
def test_cancelled_on_the_channel_is_cancelled_with_the_handling_of_its_stage(
    world, channel, sim, live, stage, putaway
):
    Sequence.objects.create(name="RETURN_INVOICE", prefix="CN-")
    order = world.order("FK-13", 1)
    shipment = order.shipments.get()
    if stage != "CREATED":
        advance(shipment, stage)
    mirror(sim, order, status="CANCELLED")

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    unit = order.items.get()
    assert (unit.status, unit.cancellation_reason) == (
        OrderItemStatus.CANCELLED,
        "Cancelled on FLIPKART (status sync)",
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    made = list(Putaway.objects.values_list("putaway_type", flat=True))
    assert made == ([putaway] if putaway else [])
    if stage == "CREATED":
        assert stock(world) == (10, 0)  # the block was released


def test_cancelled_after_we_dispatched_is_a_courier_return(world, channel, sim, live):
    order = world.order("FK-14", 1)
    shipment = order.shipments.get()
    shipments_force_dispatch([shipment.pk])
    mirror(sim, order, status="CANCELLED")
    resync_from(channel, SyncKind.STATUS, timezone.now() - timedelta(days=2))

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    shipment.refresh_from_db()
    unit = order.items.get()
    assert (shipment.status, unit.status, unit.cancellation_reason) == (
        ShipmentStatus.RETURN_EXPECTED,
        OrderItemStatus.DISPATCHED,
        "Cancelled on FLIPKART (status sync)",
    )


# Amazon: Amazon tells delivery only of Easy Ship orders
@pytest.mark.dialects("contract", "shopify")
def test_delivered_marks_shipment_and_units_delivered(world, channel, sim, live):
    order = world.order("FK-15", 2)
    shipments_force_dispatch([order.shipments.get().pk])
    mirror(sim, order, status="DELIVERED")

    run = sync_status(channel, SyncKind.DELIVERY)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    assert order.shipments.get().status == ShipmentStatus.DELIVERED
    assert units(order) == [OrderItemStatus.DELIVERED] * 2
    assert sync_status(channel, SyncKind.DELIVERY).seen == 0  # no longer in transit


# Amazon: Amazon tells delivery only of Easy Ship orders
@pytest.mark.dialects("contract", "shopify")
def test_delivered_before_we_dispatched_dispatches_and_delivers_in_one_step(
    world, channel, sim, live
):
    order = world.order("FK-16", 1)
    mirror(sim, order, status="DELIVERED")
    run = sync_status(channel, SyncKind.STATUS)
    assert run.report == [["FLIPKART-FK-16", "CHANGED", "dispatched 1 unit; delivered 1 unit"]]
    assert order.shipments.get().status == ShipmentStatus.DELIVERED and units(order) == [
        OrderItemStatus.DELIVERED
    ]


# Amazon: Amazon tells courier returns only of Easy Ship orders
@pytest.mark.dialects("contract", "shopify")
def test_courier_return_expects_the_shipment_back(world, channel, sim, live):
    order = world.order("FK-17", 1)
    shipments_force_dispatch([order.shipments.get().pk])
    mirror(sim, order, status="COURIER_RETURN")

    run = sync_status(channel, SyncKind.DELIVERY)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    assert order.shipments.get().status == ShipmentStatus.RETURN_EXPECTED
    assert units(order) == [OrderItemStatus.DISPATCHED]
    again = sync_selected([order.pk])[0]
    assert counts(again) == (RunOutcome.SUCCESS, 1, 0, 1, 0)


# Amazon: customer returns are not in the Orders API
@pytest.mark.dialects("contract", "shopify")
def test_return_requested_creates_one_reverse_pickup(world, channel, sim, live):
    order = world.order("FK-18", 1)
    shipments_force_dispatch([order.shipments.get().pk])
    mirror(sim, order, status="RETURN_REQUESTED", returnReason="Wrong size")

    run = sync_status(channel, SyncKind.RETURNS)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    assert run.report[0][2] == "delivered 1 unit; reverse pickup created for 1 unit"
    pickup = ReversePickup.objects.get(order=order)
    assert pickup.reason == "Return requested on FLIPKART: Wrong size"
    assert counts(sync_status(channel, SyncKind.RETURNS)) == (RunOutcome.SUCCESS, 1, 0, 1, 0)
    assert ReversePickup.objects.count() == 1


# --- gating, Amazon, isolation ------------------------------------------------------------


def test_status_syncs_refuse_until_the_tenant_is_live_but_order_pull_runs(world, channel, sim):
    order = world.order("FK-19", 1)
    mirror(sim, order, status="DISPATCHED")
    sim.store.put_orders("FLIPKART", [channel_order("FK-20", [("FK-20-1", "TSHIRT", 1)])])

    for kind in (SyncKind.STATUS, SyncKind.DELIVERY, SyncKind.RETURNS):
        run = sync_status(channel, kind)
        assert (run.outcome, run.message, run.seen) == (RunOutcome.REFUSED, NOT_LIVE, 0)
    (manual,) = sync_selected([order.pk])
    assert (manual.outcome, manual.message) == (RunOutcome.REFUSED, NOT_LIVE)
    from channels.tasks import sync_status as scheduled

    assert scheduled()["outcome"] == RunOutcome.REFUSED  # beat's call: one run, no channel
    assert SyncRun.objects.filter(channel=None, message=NOT_LIVE).count() == 1
    assert units(order) == [OrderItemStatus.FULFILLABLE]

    pulled = pull_orders(channel)
    assert pulled.outcome == RunOutcome.SUCCESS and pulled.changed == 1
    assert Order.objects.filter(channel_order_id="FK-20").exists()


def test_amazon_syncs_only_the_orders_it_ships(world, sim, live):
    amazon = Channel(code="AMAZON", name="Amazon", channel_type="AMAZON")
    amazon.apply_preset()
    amazon.save()
    point_at(amazon, sim)
    world.channel = amazon
    seller_ships = world.order("AMZ-1", 1)
    amazon_ships = world.order("AMZ-2", 1, third_party_shipping=True)
    for order in (seller_ships, amazon_ships):
        mirror(sim, order, status="DISPATCHED")

    run = sync_status(amazon, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    assert units(amazon_ships) == [OrderItemStatus.DISPATCHED] and units(seller_ships) == [
        OrderItemStatus.FULFILLABLE
    ]
    shipment = amazon_ships.shipments.get()
    assert shipment.tracking_number == "AWBAMZ-2-L1"  # the channel ships: its AWB
    (manual,) = sync_selected([seller_ships.pk, amazon_ships.pk])
    assert manual.report == [
        ["AMAZON-AMZ-1", "UNCHANGED", "not synced: AMAZON syncs only the orders it ships itself"],
        ["AMAZON-AMZ-2", "UNCHANGED", "in sync with the channel"],
    ]
    assert units(seller_ships) == [OrderItemStatus.FULFILLABLE]


def test_one_failing_order_never_stops_the_others(world, channel, sim, live, monkeypatch):
    from orders import services

    orders = [world.order(f"FK-2{n}", 1) for n in range(3)]
    for order in orders:
        mirror(sim, order, status="DISPATCHED")
    bad = orders[1].items.get().pk
    real = services.units_dispatch_from_channel

    def flaky(unit_ids, **kwargs):
        if bad in set(unit_ids):
            raise RuntimeError("disk on fire")
        return real(unit_ids, **kwargs)

    monkeypatch.setattr(services, "units_dispatch_from_channel", flaky)
    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.PARTIAL, 3, 2, 0, 1)
    assert [units(o) for o in orders] == [
        [OrderItemStatus.DISPATCHED],
        [OrderItemStatus.FULFILLABLE],
        [OrderItemStatus.DISPATCHED],
    ]
    error = SyncError.objects.get(run=run)
    assert (error.order, error.kind, error.message) == (orders[1], "ERROR", "disk on fire")


def test_an_order_the_channel_does_not_know_is_reported_unchanged(world, channel, sim, live):
    order = world.order("FK-30", 1)
    (run,) = sync_selected([order.pk])
    assert run.report == [["FLIPKART-FK-30", "UNCHANGED", "the channel does not know this order"]]


def test_the_queries_of_a_batch_do_not_grow_with_its_orders(world, channel, sim, live):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1000)

    def measure(prefix: str, n: int) -> int:
        orders = [world.order(f"{prefix}{i}", 1 + i % 2) for i in range(n)]
        for order in orders:
            mirror(sim, order, status="DISPATCHED")
        reply = adapter_for(channel).fetch_order_statuses([o.channel_order_id for o in orders])
        rows = [OrderRow(o.pk, o.code, o.channel_order_id, o.status) for o in orders]
        by_id = {o.id: o for o in reply.orders}
        actor = Actor.of("test")
        with CaptureQueriesContext(connection) as ctx:
            results = apply_channel_orders(rows, by_id, actor=actor, channel="FLIPKART")
        assert all(r.outcome == "CHANGED" for r in results)
        return len(ctx.captured_queries)

    few, many = measure("Q", 4), measure("R", 40)
    assert few == many, (few, many)
    assert many < 40


# --- lease and cursor --------------------------------------------------------------------------


def test_a_held_lease_refuses_a_second_run_and_an_expired_one_is_taken_over(
    world, channel, sim, live
):
    other = SyncRun.objects.create(
        task="t", kind=SyncKind.STATUS, channel=channel, trigger="SCHEDULE", outcome="RUNNING"
    )
    assert lease_take(channel, SyncKind.STATUS, str(other.pk)) == ""

    refused = sync_status(channel, SyncKind.STATUS)
    assert refused.outcome == RunOutcome.REFUSED
    assert refused.message.startswith(
        "Another “Status sync: dispatched and cancelled” run of channel FLIPKART is running: "
        f"run #{other.pk}"
    )

    SyncLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = sync_status(channel, SyncKind.STATUS)
    assert taken.outcome == RunOutcome.SUCCESS
    other.refresh_from_db()
    assert other.outcome == RunOutcome.ABANDONED
    assert SyncLease.objects.get(kind=SyncKind.STATUS).holder == ""  # released at the end


def test_our_cursor_moves_and_resync_from_reaches_back(world, channel, sim, live):
    done = world.order("FK-31", 1)
    shipments_force_dispatch([done.shipments.get().pk])
    mirror(sim, done, status="CANCELLED")  # the channel changed its mind after dispatch

    first = sync_status(channel, SyncKind.STATUS)
    assert first.seen == 0  # a COMPLETE order is not an open order
    cursor = channel.sync_cursors.get(kind=SyncKind.STATUS)
    assert first.created_at <= cursor.synced_up_to <= first.finished_at

    resync_from(channel, SyncKind.STATUS, timezone.now() - timedelta(days=3))
    second = sync_status(channel, SyncKind.STATUS)
    assert counts(second) == (RunOutcome.SUCCESS, 1, 1, 0, 0)
    assert done.shipments.get().status == ShipmentStatus.RETURN_EXPECTED
    cursor.refresh_from_db()
    assert cursor.resync_from is None and cursor.last_run == second
    with pytest.raises(ValueError, match="in the future"):
        resync_from(channel, SyncKind.STATUS, timezone.now() + timedelta(days=1))


def test_a_channel_that_stays_down_stops_the_run_and_says_so(
    world, channel, sim, live, monkeypatch
):
    from channels.sync import status

    monkeypatch.setattr(status, "APPLY_BATCH", 2)
    orders = [world.order(f"FK-4{n}", 1) for n in range(6)]
    for order in orders:
        mirror(sim, order, status="DISPATCHED")
    sim.store.add_fault({"kind": "error", "status": 503, "path": "/orders", "after": 1})

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.PARTIAL, 6, 2, 0, 4)
    assert [units(o) for o in orders[:3]] == [
        [OrderItemStatus.DISPATCHED],
        [OrderItemStatus.DISPATCHED],
        [OrderItemStatus.FULFILLABLE],
    ]
    lines = run.message.splitlines()
    assert lines[0].startswith(
        "Status sync stopped: Channel FLIPKART: get order status (2 orders from FK-42): "
        "gave up after 5 attempts, last: HTTP 503"
    )
    assert "2 order(s) not synced: the run stopped before them." in lines
    assert "4 request(s) retried (HTTP 503, HTTP 503, HTTP 503, HTTP 503)" in run.message
    assert SyncError.objects.filter(run=run, kind="CHANNEL").count() == 2  # the batch it asked
    assert channel.sync_cursors.get(kind=SyncKind.STATUS).synced_up_to is None


def test_answers_received_before_the_channel_stops_are_kept(world, channel, sim, live, monkeypatch):
    """A batch is asked in several requests; when a later one gives up, the orders already
    answered are applied, the failed request's orders get its error (naming their own
    request) and the orders never asked are counted as not synced."""
    from channels.sync import status

    monkeypatch.setattr(status, "APPLY_BATCH", 4)
    channel.status_batch_size = 2
    channel.save(update_fields=["status_batch_size"])
    orders = [world.order(f"FK-5{n}", 1) for n in range(6)]
    for order in orders:
        mirror(sim, order, status="DISPATCHED")
    sim.store.add_fault({"kind": "error", "status": 503, "path": "/orders", "after": 1})

    run = sync_status(channel, SyncKind.STATUS)

    assert counts(run) == (RunOutcome.PARTIAL, 6, 2, 0, 4)
    assert [units(o) for o in orders] == [[OrderItemStatus.DISPATCHED]] * 2 + [
        [OrderItemStatus.FULFILLABLE]
    ] * 4
    errors = SyncError.objects.filter(run=run).order_by("channel_order_id")
    assert [e.channel_order_id for e in errors] == ["FK-52", "FK-53"]
    assert all("(2 orders from FK-52)" in e.message for e in errors)
    assert "2 order(s) not synced: the run stopped before them." in run.message.splitlines()
