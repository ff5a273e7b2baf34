"""The Amazon Selling Partner API adapter against its contract simulator on loopback: what only
Amazon has (Login with Amazon, restricted data, the two-minute listing lag, slices and rate
limits, unknown statuses, Easy Ship, confirmShipment, patchListingsItem). The scenarios every
channel shares run against Amazon too (`dialects` in test_order_pull.py, test_status_sync.py).

Every request the adapter sends is checked by the simulator against `amazon_shapes` (a
mismatch is a 400 InvalidInput); `no_refused_requests` asserts none was refused.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from channels.adapters import DISPATCH_PUSH, adapter_for, forget_adapters, read_push_reply
from channels.models import RunOutcome, SyncError, SyncKind
from channels.sync import pull_orders, sync_status
from orders.models import Order, OrderItemStatus, ShipmentStatus
from orders.services import shipments_force_dispatch
from simulator.native import amazon as sim_amazon
from simulator.native.amazon_shapes import CONFIRM_SHIPMENT
from simulator.native.shapes import problems

from .sync_helpers import channel_order, iso, mirror, native_requests

pytest_plugins = ["tests.sync_fixtures"]
pytestmark = pytest.mark.dialects("amazon")
CODE = "FLIPKART"  # the world's channel, here of type AMAZON_SP


def amazon_requests(sim, operation: str | None = None) -> list[dict]:
    return native_requests(sim, CODE, "amazon", operation)


@pytest.fixture
def no_refused_requests(sim):
    """No request of the test was refused for its shape (400) or throttled (429)."""
    yield
    refused = [r for r in amazon_requests(sim) if r["status"] in (400, 429) and not r["fault"]]
    assert refused == []


def real_limits(channel, sim, **plans) -> None:
    """Amazon's listing lag and usage plans as Amazon has them (or as given), both sides."""
    rates = {op: list(plan) for op, plan in sim_amazon.shapes.USAGE_PLANS.items()}
    rates.update({op: list(plan) for op, plan in plans.items()})
    sim_amazon.configure(sim.store, CODE, lagSeconds=120, rates=rates)
    seller = uuid.uuid4().hex  # a bucket of its own in Redis
    sim_amazon.configure(sim.store, CODE, sellerId=seller)
    settings = {**channel.api_settings, "rate_limits": rates, "seller_id": seller}
    settings.pop("listing_lag_seconds")
    channel.api_settings = settings
    channel.save()
    forget_adapters()


# --- Login with Amazon and restricted data -------------------------------------------------------


def test_the_access_token_is_kept_and_bought_again_when_refused(
    world, channel, sim, no_refused_requests
):
    sim.store.put_orders(CODE, [channel_order("AMZ-1", [("AMZ-1-1", "TSHIRT", 1)])])
    pull_orders(channel)
    pull_orders(channel)
    assert len(amazon_requests(sim, "lwaToken")) == 1  # one login serves both runs
    sim.store.expire_tokens(CODE)
    sim.store.put_orders(CODE, [channel_order("AMZ-2", [("AMZ-2-1", "TSHIRT", 1)], days_ago=0.01)])
    run = pull_orders(channel)  # AMZ-2's lines need the access token (orders take the RDT)
    assert run.outcome == RunOutcome.SUCCESS
    assert len(amazon_requests(sim, "lwaToken")) == 2
    assert [r["status"] for r in amazon_requests(sim, "createRestrictedDataToken")] == [200]


def test_a_wrong_refresh_token_is_reported_without_the_secret(world, channel, sim):
    channel.refresh_token = "Atzr|Zebra-wrong"
    channel.save()
    run = pull_orders(channel)
    assert run.outcome == RunOutcome.FAILED
    assert "authentication failed: the channel refused" in run.message
    assert "invalid_grant" not in run.message or "Zebra" not in run.message
    assert "Zebra" not in run.message


def test_addresses_come_with_the_restricted_data_token_only(world, channel, sim):
    order = channel_order("AMZ-1", [("AMZ-1-1", "TSHIRT", 1)])
    order["shippingAddress"].update(addressLine1="12 MG Road", phone="9876543210")
    sim.store.put_orders(CODE, [order])
    pull_orders(channel)
    created = Order.objects.get(channel_order_id="AMZ-1")
    assert (created.ship_address_line1, created.customer_phone) == ("12 MG Road", "9876543210")
    orders = [r for r in amazon_requests(sim, "getOrders")]
    assert all(r.get("rdt") == ["buyerInfo", "shippingAddress"] for r in orders)


def test_without_the_personal_data_role_orders_wait_for_an_address(
    world, channel, sim, monkeypatch
):
    refuse = sim_amazon.error(403, "Unauthorized", "Access to requested resource is denied.")
    monkeypatch.setattr(sim_amazon.DIALECT, "op_createRestrictedDataToken", lambda r: refuse)
    sim.store.put_orders(CODE, [channel_order("AMZ-1", [("AMZ-1-1", "TSHIRT", 1)])])
    run = pull_orders(channel)
    assert run.failed == 1 and not Order.objects.exists()
    error = SyncError.objects.get(run=run)
    assert (error.channel_order_id, error.message) == (
        "AMZ-1",
        "the shipping address has no pincode",
    )


# --- order pull --------------------------------------------------------------------------------


def test_nothing_changed_in_the_last_two_minutes_is_skipped(world, channel, sim):
    """Amazon lists nothing changed in the last two minutes: the pull asks up to 2 min 30 s
    ago and its cursor stops there, so the order changed a minute ago comes with the next."""
    real_limits(channel, sim)
    minute_ago = iso(timezone.now() - timedelta(minutes=1))
    order = channel_order("AMZ-NEW", [("AMZ-NEW-1", "TSHIRT", 1)])
    order["orderDate"] = order["orderItems"][0]["updated"] = minute_ago
    sim.store.put_orders(CODE, [order])

    first = pull_orders(channel)
    assert first.outcome == RunOutcome.SUCCESS and not Order.objects.exists()
    assert timezone.now() - first.window_to >= timedelta(minutes=2, seconds=29)
    cursor = channel.sync_cursors.get(kind=SyncKind.ORDER_PULL)
    assert cursor.synced_up_to == first.window_to

    # three minutes later (the order's times moved back instead of waiting)
    later = iso(timezone.now() - timedelta(minutes=3))
    order["orderDate"] = order["orderItems"][0]["updated"] = later
    sim.store.put_orders(CODE, [order])
    second = pull_orders(channel)
    assert second.changed == 1 and Order.objects.filter(channel_order_id="AMZ-NEW").exists()
    assert second.window_from == first.window_to - timedelta(minutes=30)  # from the cursor
    assert [r for r in amazon_requests(sim) if r["status"] == 400] == []


def test_unknown_statuses_and_amazon_fulfilled_orders(world, channel, sim, no_refused_requests):
    odd = channel_order("AMZ-ODD", [("AMZ-ODD-1", "TSHIRT", 1)])
    odd["amazon"] = {"OrderStatus": "PendingSomethingNew"}
    afn = channel_order("AMZ-AFN", [("AMZ-AFN-1", "TSHIRT", 1)])
    afn["amazon"] = {"FulfillmentChannel": "AFN"}
    fine = channel_order("AMZ-OK", [("AMZ-OK-1", "TSHIRT", 2)])
    sim.store.put_orders(CODE, [odd, afn, fine])

    run = pull_orders(channel)

    assert (run.outcome, run.changed, run.failed) == (RunOutcome.PARTIAL, 1, 1)
    assert list(Order.objects.values_list("channel_order_id", flat=True)) == ["AMZ-OK"]
    error = SyncError.objects.get(run=run)
    assert error.channel_order_id == "AMZ-ODD"
    assert "OrderStatus 'PendingSomethingNew' is not one we handle" in error.message
    # lines were asked only for the order we create; AFN was never listed (MFN only)
    asked = [r["path"] for r in amazon_requests(sim, "getOrderItems")]
    assert asked == ["/orders/v0/orders/AMZ-OK/orderItems"]
    assert Order.objects.get().total_amount == 998  # Amazon's line price: both units
    ok = Order.objects.get()  # Amazon's LatestShipDate (the simulator: 2 days after purchase)
    assert ok.dispatch_by - ok.order_date == timedelta(days=2)


def test_a_listing_of_many_pages_reads_each_order_once(world, channel, sim, no_refused_requests):
    orders = [channel_order(f"AMZ-{n:03}", [(f"AMZ-{n:03}-1", "TSHIRT", 1)]) for n in range(250)]
    sim.store.put_orders(CODE, orders)
    world.inventory.quantity = 300
    world.inventory.save()

    run = pull_orders(channel)

    assert (run.outcome, run.changed) == (RunOutcome.SUCCESS, 250)
    pages = amazon_requests(sim, "getOrders")
    assert len(pages) == 3  # 100 + 100 + 50, by NextToken
    assert ["NextToken" in p["query"] for p in pages] == [False, True, True]
    assert len(amazon_requests(sim, "getOrderItems")) == 250  # once per order
    assert channel.sync_cursors.get(kind=SyncKind.ORDER_PULL).resume == {}


def test_a_run_out_of_rate_limit_budget_leaves_its_page_and_the_next_goes_on(
    world, channel, sim, no_refused_requests
):
    """getOrderItems at 4 a second (burst 5) and runs of 1 s: each run creates a few orders
    and leaves its paging token on the cursor; the next one goes on from that page; no order
    twice, no call over the limit (the simulator would answer 429)."""
    real_limits(channel, sim, getOrders=(50, 50), getOrderItems=(4, 5))
    channel.api_settings = {**channel.api_settings, "run_budget_seconds": 1}
    channel.save()
    forget_adapters()
    start = timezone.now() - timedelta(days=2)
    orders = []
    for n in range(24):
        order = channel_order(f"AMZ-{n:02}", [(f"AMZ-{n:02}-1", "TSHIRT", 1)])
        order["orderDate"] = order["orderItems"][0]["updated"] = iso(start + timedelta(hours=n))
        orders.append(order)
    sim.store.put_orders(CODE, orders)
    world.inventory.quantity = 30
    world.inventory.save()
    sim_amazon.configure(sim.store, CODE, pageSize=4)  # small pages: many slices

    runs, resumes = [], []
    while Order.objects.count() < 24 and len(runs) < 15:
        runs.append(pull_orders(channel))
        resumes.append(channel.sync_cursors.get(kind=SyncKind.ORDER_PULL).resume)
    assert any(r.get("next_token") for r in resumes[:-1]) and resumes[-1] == {}
    pages = amazon_requests(sim, "getOrders")
    assert len(pages) <= 24 / 4 + len(runs)  # each page, and one page again per stopped run

    assert Order.objects.count() == 24 and len(runs) > 2
    stopped = [r for r in runs if r.outcome != RunOutcome.SUCCESS]
    assert stopped and all("rate limit for getOrderItems" in r.message for r in stopped)
    assert "the next run goes on from here" in stopped[0].message
    assert runs[-1].outcome == RunOutcome.SUCCESS
    assert len(amazon_requests(sim, "getOrderItems")) == 24  # each order's lines once


def test_workers_share_one_bucket_per_seller_and_operation(world, channel, sim):
    """Two threads (two workers' adapters) asking for lines at once stay within one plan
    together: the simulator, holding the same plan, never answers 429."""
    real_limits(channel, sim, getOrderItems=(10, 6))  # Amazon's plan (burst 6; ours 4: slack
    # for requests that reach it bunched on a busy machine)
    plans = {**channel.api_settings["rate_limits"], "getOrderItems": [10, 4]}
    channel.api_settings = {**channel.api_settings, "rate_limits": plans}  # ours a bit less
    channel.save()
    sim.store.put_orders(CODE, [channel_order("AMZ-1", [("AMZ-1-1", "TSHIRT", 1)])])
    calls, started = [], time.monotonic()

    def ask() -> None:
        adapter = adapter_for(channel)
        adapter._start_budget()
        for _ in range(10):
            adapter._lines("AMZ-1", lambda item: "CREATED", {})
            calls.append(time.monotonic())
        forget_adapters()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    elapsed = time.monotonic() - started
    assert len(calls) == 20
    assert elapsed >= (20 - 4) / 10  # the burst, then under 10 a second: one bucket for both
    assert [r for r in amazon_requests(sim, "getOrderItems") if r["status"] == 429] == []


def test_a_429_is_retried_after_back_off(world, channel, sim):
    sim.store.put_orders(CODE, [channel_order("AMZ-1", [("AMZ-1-1", "TSHIRT", 1)])])
    sim.store.add_fault({"kind": "rate_limit", "retryAfter": 0, "path": "/orders", "count": 2})
    run = pull_orders(channel)
    assert (run.outcome, run.changed, run.retries) == (RunOutcome.SUCCESS, 1, 2)
    statuses = [r["status"] for r in amazon_requests(sim, "getOrders")]
    assert statuses == [429, 429, 200]


# --- status sync: Easy Ship (the orders Amazon ships) -----------------------------------------


@pytest.mark.parametrize(
    "easy_ship,ours",
    [
        ("Delivered", (OrderItemStatus.DELIVERED, ShipmentStatus.DELIVERED)),
        ("ReturningToSeller", (OrderItemStatus.DISPATCHED, ShipmentStatus.RETURN_EXPECTED)),
    ],
)
def test_easy_ship_orders_follow_amazon_to_delivery_or_back(
    world, channel, sim, live, easy_ship, ours, no_refused_requests
):
    order = world.order("AMZ-ES", 1, third_party_shipping=True)
    shipments_force_dispatch([order.shipments.get().pk])
    contract = {"Delivered": "DELIVERED", "ReturningToSeller": "COURIER_RETURN"}[easy_ship]
    mirror(sim, order, status=contract)
    listed = sim_amazon.amazon_order(
        sim.store.get_order(CODE, "AMZ-ES"), sim_amazon.DEFAULTS, set()
    )
    assert listed["EasyShipShipmentStatus"] == easy_ship

    run = sync_status(channel, SyncKind.DELIVERY)

    assert (run.outcome, run.changed) == (RunOutcome.SUCCESS, 1), run.message
    assert (order.items.get().status, order.shipments.get().status) == ours


# --- pushes --------------------------------------------------------------------------------------


def test_a_dispatch_push_confirms_the_shipment(world, channel, sim):
    order = world.order("AMZ-D", 2)
    mirror(sim, order)
    adapter = adapter_for(channel)
    body = {
        "orderItems": [{"orderItemId": "AMZ-D-L1", "quantity": 2}],
        "selfShipping": {
            "deliveryPartner": "Blue Dart",
            "dispatchDate": iso(timezone.now()),
            "invoiceNumber": "INV-1",
            "invoiceDate": iso(timezone.now()),
            "trackingId": "AWB123",
        },
    }

    reply = adapter.push_once(DISPATCH_PUSH, "AMZ-D", body, "dispatch-AMZ-D-1")
    assert read_push_reply(reply.text, channel=CODE, what="dispatch").ok
    again = adapter.push_once(DISPATCH_PUSH, "AMZ-D", body, "dispatch-AMZ-D-1")
    assert read_push_reply(again.text, channel=CODE, what="dispatch").ok  # same package

    (record,) = sim.store.received(CODE, "dispatches")["dispatches"]
    assert record["body"]["selfShipping"]["trackingId"] == "AWB123"
    assert record["body"]["orderItems"] == [{"orderItemId": "AMZ-D-L1", "quantity": 2}]
    sent = amazon_requests(sim, "confirmShipment")
    assert [(r["path"], r["status"]) for r in sent] == [
        ("/orders/v0/orders/AMZ-D/shipmentConfirmation", 204)
    ] * 2

    bad = {**body, "orderItems": [{"orderItemId": "NOT-IN-ORDER", "quantity": 1}]}
    refused = read_push_reply(
        adapter.push_once(DISPATCH_PUSH, "AMZ-D", bad, "dispatch-AMZ-D-2").text,
        channel=CODE,
        what="dispatch",
    )
    assert refused.status == "FAILED" and "NOT-IN-ORDER" in refused.error


def test_the_confirm_shipment_request_matches_amazons_shape():
    from channels.adapters.amazon_orders import confirm_shipment

    shipping = {
        "deliveryPartner": "Delhivery",
        "trackingId": "AWB9",
        "dispatchDate": "2026-12-01T10:00:00+05:30",
    }
    body = {"orderItems": [{"orderItemId": "L1", "quantity": 1}]}
    request = confirm_shipment("A21TJRUUN4KGV", body, shipping, "key-1")
    assert problems(request, CONFIRM_SHIPMENT) == []
    assert request["packageDetail"]["packageReferenceId"].isdigit()
    assert confirm_shipment("A21TJRUUN4KGV", body, shipping, "key-1") == request
    missing = confirm_shipment("A21TJRUUN4KGV", body, {**shipping, "trackingId": ""}, "k")
    assert problems(missing, CONFIRM_SHIPMENT) == ["body.packageDetail.trackingNumber: empty"]


def test_inventory_goes_to_the_listings_items_api(world, channel, sim, no_refused_requests):
    adapter = adapter_for(channel)
    reply = adapter.post_inventory(
        [
            {"productId": "TSHIRT", "variantId": "B0ASIN", "inventory": "7", "facilityCode": "WH1"},
            {"productId": "MUG", "variantId": "B0MUG", "inventory": "0", "facilityCode": "WH1"},
        ]
    )
    assert reply.ok
    calls = amazon_requests(sim, "patchListingsItem")
    seller = channel.api_settings["seller_id"]
    assert [c["path"] for c in calls] == [
        f"/listings/2021-08-01/items/{seller}/TSHIRT",
        f"/listings/2021-08-01/items/{seller}/MUG",
    ]
    levels = {
        e["body"]["inventoryList"][0]["productId"]: e["body"]["inventoryList"][0]["inventory"]
        for e in sim.store.received(CODE, "inventory")["inventory"]
    }
    assert levels == {"TSHIRT": "7", "MUG": "0"}


def test_the_channel_settings_name_what_is_missing(db):
    from django.core.exceptions import ValidationError

    from channels.models import Channel

    channel = Channel(code="AMZ", name="Amazon", channel_type="AMAZON_SP", api_settings={})
    with pytest.raises(ValidationError) as refused:
        channel.clean()
    text = str(refused.value)
    assert "Channel AMZ: API settings need 'marketplace_id'" in text and "'seller_id'" in text
