"""The Shopify adapter against its contract simulator on loopback: what only Shopify has (the
query-cost bucket, GraphQL errors, fulfillment orders, whole-order cancels, compare-and-set
inventory, unknown enum values). The scenarios every channel shares run against Shopify too
(`dialects` in test_order_pull.py, test_status_sync.py, test_sync_integration.py).

The simulator checks every operation's variables against `shopify_shapes`;
`no_refused_requests` asserts none was refused or throttled unless a test meant it.
"""

from __future__ import annotations

import pytest

from channels.adapters import CANCEL_PUSH, DISPATCH_PUSH, adapter_for, read_push_reply
from channels.models import RunOutcome, SyncError
from channels.sync import pull_orders
from orders.models import Order
from simulator.native import shopify as sim_shopify

from .sync_helpers import channel_order, native_requests

pytest_plugins = ["tests.sync_fixtures"]
pytestmark = pytest.mark.dialects("shopify")
CODE = "FLIPKART"  # the world's channel, here of type SHOPIFY


def shopify_requests(sim, operation: str | None = None) -> list[dict]:
    return native_requests(sim, CODE, "shopify", operation)


@pytest.fixture
def no_refused_requests(sim):
    yield
    bad = [r for r in shopify_requests(sim) if r.get("invalid") or r.get("throttled")]
    assert bad == []


def push(adapter, kind: str, order_id: str, body: dict):
    reply = adapter.push_once(kind, order_id, body, f"{kind}-{order_id}")
    return read_push_reply(reply.text, channel=CODE, what=kind)


# --- cost limits ---------------------------------------------------------------------------------


def test_the_adapter_waits_for_the_cost_bucket_instead_of_being_throttled(
    world, channel, sim, no_refused_requests
):
    """An orders page costs 152 points; with a bucket of 160 refilled at 300 a second, each
    page after the first waits for the refill (half a second) rather than being refused."""
    sim_shopify.configure(sim.store, CODE, maximumAvailable=160, restoreRate=300)
    orders = [channel_order(f"SH-{n}", [(f"SH-{n}-1", "TSHIRT", 1)]) for n in range(120)]
    sim.store.put_orders(CODE, orders)
    world.inventory.quantity = 200
    world.inventory.save()
    slept = []
    adapter = adapter_for(channel)
    adapter.sleep = lambda s: (slept.append(s), __import__("time").sleep(s))

    run = pull_orders(channel)

    assert (run.outcome, run.changed) == (RunOutcome.SUCCESS, 120)
    assert len(shopify_requests(sim, "Orders")) == 3  # 50 + 50 + 20
    assert len(slept) == 2 and all(0.3 < s < 0.6 for s in slept)


def test_a_throttled_query_waits_and_is_tried_again(world, channel, sim):
    sim_shopify.configure(sim.store, CODE, maximumAvailable=200, restoreRate=400)
    key = sim_shopify.bucket_key(sim.store, CODE)
    sim_shopify.DIALECT.bucket.spend(key, 190, 200, 400)  # another app spent the bucket
    sim.store.put_orders(CODE, [channel_order("SH-1", [("SH-1-1", "TSHIRT", 1)])])

    run = pull_orders(channel)

    assert (run.outcome, run.changed, run.retries) == (RunOutcome.SUCCESS, 1, 1)
    assert [r.get("throttled", False) for r in shopify_requests(sim, "Orders")] == [True, False]


def test_a_wrong_access_token_is_reported(world, channel, sim):
    channel.password = "shpat_wrong"
    channel.save()
    run = pull_orders(channel)
    assert run.outcome == RunOutcome.FAILED
    assert "authentication failed: the channel refused the access token" in run.message
    assert "shpat_wrong" not in run.message


# --- orders --------------------------------------------------------------------------------------


def test_unknown_statuses_are_recorded_and_the_others_created(
    world, channel, sim, no_refused_requests
):
    odd = channel_order("SH-ODD", [("SH-ODD-1", "TSHIRT", 1)])
    odd["shopify"] = {"displayFulfillmentStatus": "AWAITING_SOMETHING_NEW"}
    cod = channel_order("SH-COD", [("SH-COD-1", "TSHIRT", 2)], payment="COD")
    sim.store.put_orders(CODE, [odd, cod])

    run = pull_orders(channel)

    assert (run.outcome, run.changed, run.failed) == (RunOutcome.PARTIAL, 1, 1)
    error = SyncError.objects.get(run=run)
    assert error.channel_order_id == "SH-ODD"
    assert "displayFulfillmentStatus 'AWAITING_SOMETHING_NEW' is not one we handle" in error.message
    order = Order.objects.get()
    assert (order.channel_order_id, order.payment_method, order.item_count) == ("SH-COD", "COD", 2)


# --- pushes --------------------------------------------------------------------------------------


def test_a_dispatch_creates_a_fulfillment_with_tracking(world, channel, sim, no_refused_requests):
    sim.store.put_orders(CODE, [channel_order("SH-D", [("SH-D-1", "TSHIRT", 2)])])
    adapter = adapter_for(channel)
    body = {
        "orderItems": [{"orderItemId": "SH-D-1", "quantity": 2}],
        "selfShipping": {"deliveryPartner": "Blue Dart", "trackingId": "AWB77"},
    }

    too_many = {**body, "orderItems": [{"orderItemId": "SH-D-1", "quantity": 3}]}
    refused = push(adapter, DISPATCH_PUSH, "SH-D", too_many)
    assert refused.status == "FAILED" and "SH-D-1 has nothing left to fulfil" in refused.error

    assert push(adapter, DISPATCH_PUSH, "SH-D", body).ok
    (record,) = sim.store.received(CODE, "dispatches")["dispatches"]
    assert record["body"]["trackingInfo"] == {"company": "Blue Dart", "number": "AWB77"}
    assert record["body"]["orderItems"] == [{"orderItemId": "SH-D-1", "quantity": 2}]
    assert push(adapter, DISPATCH_PUSH, "SH-D", body).ok  # again: fulfilled, nothing sent
    assert len(sim.store.received(CODE, "dispatches")["dispatches"]) == 1
    unknown = push(adapter, DISPATCH_PUSH, "SH-NONE", body)
    assert unknown.status == "FAILED" and unknown.order_unknown


def test_a_cancel_cancels_the_whole_order_only(world, channel, sim, no_refused_requests):
    sim.store.put_orders(
        CODE, [channel_order("SH-C", [("SH-C-1", "TSHIRT", 2), ("SH-C-2", "TSHIRT", 1)])]
    )
    adapter = adapter_for(channel)
    part = {"orderId": "SH-C", "orderItems": [{"orderItemId": "SH-C-1", "quantity": 2}]}
    refused = push(adapter, CANCEL_PUSH, "SH-C", part)
    assert refused.status == "FAILED" and "Shopify cancels whole orders only" in refused.error
    assert sim.store.received(CODE, "cancels")["cancels"] == []

    whole = {**part, "orderItems": [*part["orderItems"], {"orderItemId": "SH-C-2", "quantity": 1}]}
    assert push(adapter, CANCEL_PUSH, "SH-C", whole).ok
    (record,) = sim.store.received(CODE, "cancels")["cancels"]
    assert record["body"]["orderId"] == "SH-C" and record["response"]["status"] == "SUCCESS"


def test_inventory_is_set_with_compare_and_set(world, channel, sim, no_refused_requests):
    sim_shopify.set_available(sim.store, CODE, "V-TSHIRT", "1", 5)
    adapter = adapter_for(channel)
    entry = {
        "productId": "P-TSHIRT",
        "variantId": "V-TSHIRT",
        "inventory": "7",
        "facilityCode": "WH1",
    }

    assert adapter.post_inventory([entry], key="k1").ok
    assert sim_shopify.available(sim.store, CODE, "V-TSHIRT", "1") == 7
    (sent,) = shopify_requests(sim, "InventorySet")
    assert sent["status"] == 200


def test_a_sale_between_read_and_write_is_read_again_once(world, channel, sim, monkeypatch):
    """Compare-and-set: the shop sold one between our read and our write; we read again and
    set. When it keeps changing, that listing fails with Shopify's message, the others go."""
    sim_shopify.set_available(sim.store, CODE, "V-TSHIRT", "1", 5)
    sim_shopify.set_available(sim.store, CODE, "V-MUG", "1", 2)
    real = sim_shopify.ShopifyDialect.op_InventoryLevels
    sales = {"V-TSHIRT": 2}  # reads of TSHIRT followed by a sale

    def read_then_sell(self, request, variables):
        data = real(self, request, variables)
        for node in data["nodes"]:
            variant = node["id"].rsplit("/", 1)[-1]
            if sales.get(variant):
                sales[variant] -= 1
                now = sim_shopify.available(request.store, CODE, variant, "1")
                sim_shopify.set_available(request.store, CODE, variant, "1", now - 1)
        return data

    monkeypatch.setattr(sim_shopify.ShopifyDialect, "op_InventoryLevels", read_then_sell)
    adapter = adapter_for(channel)
    entries = [
        {"productId": "P-TSHIRT", "variantId": "V-TSHIRT", "inventory": "9", "facilityCode": "WH1"},
        {"productId": "P-MUG", "variantId": "V-MUG", "inventory": "4", "facilityCode": "WH1"},
    ]

    reply = adapter.post_inventory(entries, key="k2")

    assert reply.status == "PARTIAL_SUCCESS"
    assert [p for p, _ in reply.failed] == ["P-TSHIRT"]
    assert "does not match the current quantity (3)" in reply.failed[0][1]
    assert sim_shopify.available(sim.store, CODE, "V-MUG", "1") == 4
    assert sim_shopify.available(sim.store, CODE, "V-TSHIRT", "1") == 3  # the shop's, untouched

    sales["V-TSHIRT"] = 1  # one sale only: the second read is current
    assert adapter.post_inventory(entries[:1], key="k3").ok
    assert sim_shopify.available(sim.store, CODE, "V-TSHIRT", "1") == 9


def test_the_outbox_fulfils_a_dispatched_shipment_and_pushes_a_cancel(
    world, channel, sim, no_refused_requests
):
    """Through the notification outbox: a manifest closed makes a dispatch push, a seller's
    cancel of a whole order a cancel push; both reach the shop as its own mutations."""
    from notifications.delivery import deliver_due
    from notifications.models import Notification, NotificationKind, NotificationState
    from orders.services import manifest_close, units_cancel

    from .sync_helpers import advance, mirror

    channel.accepts_dispatch = channel.accepts_cancel = True
    channel.accepts_status_notifications = False
    channel.save()
    shipped = world.order("SH-OUT", 1)
    mirror(sim, shipped)
    advance(shipped.shipments.get(), "MANIFESTED")
    manifest_close(shipped.shipments.get().manifest)
    cancelled = world.order("SH-CXL", 2)
    mirror(sim, cancelled)
    units_cancel(cancelled.items.values_list("pk", flat=True), reason="customer called")

    deliver_due()

    rows = Notification.objects.order_by("pk")
    assert [(n.kind, n.state) for n in rows] == [
        (NotificationKind.DISPATCH, NotificationState.DELIVERED),
        (NotificationKind.CANCEL, NotificationState.DELIVERED),
    ]
    (dispatch,) = sim.store.received(CODE, "dispatches")["dispatches"]
    assert dispatch["body"]["trackingInfo"]["number"] == shipped.shipments.get().tracking_number
    (cancel,) = sim.store.received(CODE, "cancels")["cancels"]
    assert cancel["body"]["orderId"] == "SH-CXL"
    operations = [r["shopifyOperation"] for r in shopify_requests(sim)]
    assert operations.index("OrderStatuses") < operations.index("OrderCancel")  # whole order?
