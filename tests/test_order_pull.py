"""Order pull from the simulator over loopback: new orders are created once, with one unit per
ordered unit, and allocated; the window, our cursor and re-sync from a date; bad orders are
reported one by one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import RunOutcome, SyncError, SyncKind
from channels.sync import pull_orders, resync_from
from channels.sync.runs import lease_take
from orders.models import Order, OrderItemStatus, OrderStatus

from .sync_helpers import channel_order

pytest_plugins = ["tests.sync_fixtures"]
pytestmark = pytest.mark.dialects()  # every API (tests that need the contract say so)


RECENT = 0.01  # days: changed within the overlap an incremental pull reads again


def put(sim, *orders) -> None:
    sim.store.put_orders("FLIPKART", list(orders))


def summary(run) -> tuple:
    return run.outcome, run.seen, run.changed, run.unchanged, run.failed


def test_new_orders_are_created_with_their_units_and_allocated(world, channel, sim, dialect):
    channel.page_size = 2
    channel.save()
    put(sim, *[channel_order(f"OD-{n}", [(f"OD-{n}-1", "TSHIRT", 2)]) for n in range(5)])
    cod = channel_order("OD-9", [("OD-9-1", "TSHIRT", 1)], payment="COD")
    cod["shippingAddress"].update(addressLine1="12 MG Road", phone="9876543210")
    put(sim, cod)

    run = pull_orders(channel)

    assert summary(run) == (RunOutcome.SUCCESS, 6, 6, 0, 0)
    assert Order.objects.count() == 6
    order = Order.objects.get(channel_order_id="OD-0")
    assert (order.code, order.item_count, order.status, order.total_amount) == (
        "FLIPKART-OD-0",
        2,
        OrderStatus.CREATED,
        998,
    )
    assert list(order.items.values_list("code", "status")) == [
        ("OD-0-1-0", OrderItemStatus.FULFILLABLE),
        ("OD-0-1-1", OrderItemStatus.FULFILLABLE),
    ]
    assert order.shipments.count() == 1
    cod_order = Order.objects.get(channel_order_id="OD-9")
    assert (cod_order.payment_method, cod_order.ship_address_line1, cod_order.customer_phone) == (
        "COD",
        "12 MG Road",
        "9876543210",
    )
    if dialect == "contract":  # a native API pages by its own size
        pages = [r for r in sim.store.requests("FLIPKART") if "pageNumber" in r["query"]]
        assert len(pages) == 4  # 2 + 2 + 2 + an empty page
    assert ("FLIPKART-OD-0", "CHANGED", "created with 2 units") in map(tuple, run.report)


def test_a_second_pull_creates_nothing_twice(world, channel, sim):
    # changed minutes ago: an incremental pull (Amazon) lists it again too
    put(sim, channel_order("OD-1", [("OD-1-1", "TSHIRT", 1)], days_ago=RECENT))
    pull_orders(channel)
    again = pull_orders(channel)
    assert summary(again) == (RunOutcome.SUCCESS, 1, 0, 1, 0)
    assert Order.objects.filter(channel_order_id="OD-1").count() == 1


def test_bad_orders_are_reported_one_by_one_and_the_others_created(world, channel, sim, dialect):
    put(
        sim,
        channel_order("OD-1", [("OD-1-1", "TSHIRT", 1)]),
        channel_order("OD-2", [("OD-2-1", "NO-SUCH-SKU", 1)]),
        channel_order("OD-3", [("OD-3-1", "TSHIRT", 1)], pincode=""),
    )

    run = pull_orders(channel)

    assert summary(run) == (RunOutcome.PARTIAL, 3, 2, 0, 1)
    errors = dict(SyncError.objects.filter(run=run).values_list("channel_order_id", "message"))
    assert errors == {"OD-3": "the shipping address has no pincode"}
    # a SKU nobody knows is not an error: its listing waits to be mapped (issue 16)
    waiting = Order.objects.get(channel_order_id="OD-2")
    listing = {"amazon": "NO-SUCH-SKU/P-NO-SUCH-SKU"}.get(dialect, "P-NO-SUCH-SKU/V-NO-SUCH-SKU")
    assert (waiting.status, waiting.verification_reason) == (
        OrderStatus.PENDING_VERIFICATION,
        f"unmapped listing {listing} on FLIPKART",  # Amazon's: seller SKU / ASIN
    )


def test_cancelled_units_are_not_created(world, channel, sim):
    partly = channel_order("OD-1", [("OD-1-1", "TSHIRT", 3), ("OD-1-2", "TSHIRT", 1)])
    put(sim, partly)
    sim.store.set_item_status("FLIPKART", "OD-1", "OD-1-1", "CANCELLED", cancelledQuantity=1)
    sim.store.set_item_status("FLIPKART", "OD-1", "OD-1-2", "CANCELLED")

    pull_orders(channel)

    order = Order.objects.get(channel_order_id="OD-1")
    assert list(order.items.values_list("code", flat=True)) == ["OD-1-1-0", "OD-1-1-1"]


def test_pending_verification_orders_are_created_pending_and_accepted_later(world, channel, sim):
    put(sim, channel_order("OD-1", [("OD-1-1", "TSHIRT", 1)], order_status="PENDING_VERIFICATION"))
    first = pull_orders(channel)
    order = Order.objects.get()
    assert order.status == OrderStatus.PENDING_VERIFICATION
    assert first.report == [
        ["FLIPKART-OD-1", "CHANGED", "created with 1 unit (pending verification)"]
    ]
    assert list(order.items.values_list("status", flat=True)) == [OrderItemStatus.CREATED]

    sim.store.apply_changes("FLIPKART", [{"orderId": "OD-1", "orderStatus": "CREATED"}])
    second = pull_orders(channel)

    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED
    assert list(order.items.values_list("status", flat=True)) == [OrderItemStatus.FULFILLABLE]
    assert second.report == [["FLIPKART-OD-1", "CHANGED", "accepted (the channel verified it)"]]


def test_the_window_the_cursor_and_resync_from(world, channel, sim):
    put(
        sim,
        channel_order("OD-OLD", [("OD-OLD-1", "TSHIRT", 1)], days_ago=20),
        channel_order("OD-NEW", [("OD-NEW-1", "TSHIRT", 1)], days_ago=1),
    )
    first = pull_orders(channel)
    assert list(Order.objects.values_list("channel_order_id", flat=True)) == ["OD-NEW"]
    assert first.window_to - first.window_from == timedelta(days=15)
    cursor = channel.sync_cursors.get(kind=SyncKind.ORDER_PULL)
    assert cursor.synced_up_to == first.window_to

    # a beat stopped for 20 days leaves no gap: the window reaches back to our cursor
    cursor.synced_up_to = timezone.now() - timedelta(days=20, minutes=5)
    cursor.save()
    second = pull_orders(channel)
    assert second.window_from < timezone.now() - timedelta(days=20)
    assert Order.objects.filter(channel_order_id="OD-OLD").exists()

    Order.objects.filter(channel_order_id="OD-OLD").delete()
    resync_from(channel, SyncKind.ORDER_PULL, timezone.now() - timedelta(days=25))
    third = pull_orders(channel)
    assert third.changed == 1 and Order.objects.filter(channel_order_id="OD-OLD").exists()
    cursor.refresh_from_db()
    assert cursor.resync_from is None


def test_a_failed_pull_keeps_the_cursor_and_says_why(world, channel, sim):
    put(sim, channel_order("OD-1", [("OD-1-1", "TSHIRT", 1)]))
    sim.store.add_fault({"kind": "error", "status": 500, "path": "/orders"})

    run = pull_orders(channel)

    assert run.outcome == RunOutcome.FAILED
    assert run.message.startswith("Order pull stopped: Channel FLIPKART: ")
    assert "gave up after 5 attempts, last: HTTP 500" in run.message.splitlines()[0]
    assert "4 request(s) retried (HTTP 500" in run.message and run.retries == 4
    assert channel.sync_cursors.get(kind=SyncKind.ORDER_PULL).synced_up_to is None


def test_bad_credentials_are_reported(world, channel, sim):
    channel.password = "wrong"
    channel.save()
    run = pull_orders(channel)
    assert run.outcome == RunOutcome.FAILED
    assert "Channel FLIPKART: authentication failed: the channel refused" in run.message


def test_a_pull_already_running_refuses_the_second(world, channel, sim):
    assert lease_take(channel, SyncKind.ORDER_PULL, "999") == ""
    run = pull_orders(channel)
    assert run.outcome == RunOutcome.REFUSED
    assert run.message.startswith("Another order pull of channel FLIPKART is running: run #999")


@pytest.mark.parametrize(
    "change,message",
    [
        ({"sync_enabled": False}, "Sync is switched off for channel FLIPKART"),
        ({"is_enabled": False}, "Channel FLIPKART is disabled"),
        ({"base_url": ""}, "Channel FLIPKART has no base URL configured"),
    ],
)
def test_switched_off_channels_are_refused(world, channel, sim, change, message):
    for name, value in change.items():
        setattr(channel, name, value)
    channel.save()
    run = pull_orders(channel)
    assert (run.outcome, run.message) == (RunOutcome.REFUSED, message)


def test_a_pull_raced_by_another_creates_each_order_once(world, channel, sim, monkeypatch):
    """When another pull creates an order between our check and our insert, the database's
    unique (channel, channel order id) decides: ours reports it as created meanwhile."""
    from channels.sync import pull as pull_module

    put(
        sim,
        channel_order("OD-1", [("OD-1-1", "TSHIRT", 1)], days_ago=RECENT),
        channel_order("OD-2", [("OD-2-1", "TSHIRT", 1)], days_ago=RECENT),
    )
    pull_orders(channel)
    Order.objects.filter(channel_order_id="OD-2").delete()
    monkeypatch.setattr(
        pull_module, "existing_orders", lambda channel, ids: {}
    )  # checked too early

    run = pull_orders(channel)

    assert summary(run) == (RunOutcome.SUCCESS, 2, 1, 1, 0)
    assert Order.objects.filter(channel_order_id="OD-1").count() == 1
    assert Order.objects.filter(channel_order_id="OD-2").count() == 1


def test_the_demo_channels_pull_and_sync_from_the_seeded_simulator(db, monkeypatch):
    """What `make demo` shows: load_demo points its channels at the simulator, which
    `--seed-demo` filled; the pull brings its orders in and, once live, the status sync
    follows the channel (first order DISPATCHED, second CANCELLED)."""
    from django.core.management import call_command

    from channels.models import Channel
    from channels.sync import sync_status
    from simulator import SimulatorServer
    from uniware.core.models import Tenant

    with SimulatorServer(port=0, seed_demo=True) as sim:
        monkeypatch.setenv("CHANNEL_SIMULATOR_URL", sim.url)
        call_command("load_demo", orders=5, seed=3, allow_known_passwords=True)  # DEBUG is off
        channels = {c.code: c for c in Channel.objects.all()}
        assert channels["AMAZON"].status_sync_channel_shipped_only
        assert channels["FLIPKART"].base_url == f"{sim.url}/ch/FLIPKART"
        runs = [pull_orders(c) for c in channels.values()]
        assert [(r.channel.code, r.outcome, r.changed) for r in runs] == [
            ("AMAZON", RunOutcome.SUCCESS, 6),  # its 2 channel-shipped ones are not CREATED
            ("FLIPKART", RunOutcome.SUCCESS, 4),  # the DISPATCHED and CANCELLED ones are not
            ("MYSHOP", RunOutcome.SUCCESS, 4),
            ("PAYTM", RunOutcome.SUCCESS, 4),
        ]
        tenant = Tenant.get()
        tenant.is_live = True
        tenant.save()
        flipkart = channels["FLIPKART"]
        sim.store.set_item_status("FLIPKART", "FLIPKART-1003", None, "CANCELLED")
        run = sync_status(flipkart, SyncKind.STATUS)
        assert run.outcome == RunOutcome.SUCCESS, run.message
        cancelled = Order.objects.get(channel=flipkart, channel_order_id="FLIPKART-1003")
        assert cancelled.status == OrderStatus.CANCELLED
