"""The notification outbox's pushes against every API a channel may speak (issue 17): the
channel contract, Amazon's SP-API and Shopify's Admin API, one scenario each, parametrised
(`@pytest.mark.dialects`, tests/sync_fixtures.py). Amazon and Shopify take no status
notifications: their scenarios are the dispatch and cancel pushes. What each API does its
own way (Amazon's cancellation feed, Shopify's whole-order cancel) is in their own tests.
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from notifications.delivery import deliver_due
from notifications.models import Notification, NotificationKind, NotificationState
from orders.services import manifest_close, units_cancel

from .sync_helpers import advance, mirror

pytest_plugins = ["tests.sync_fixtures"]
pytestmark = [pytest.mark.dialects(), pytest.mark.postgres]
CODE = "FLIPKART"


def deliver_until_done(order, rounds: int = 5) -> list[Notification]:
    """Deliver the order's notifications, asking again at once about those the channel
    processes later (Amazon's feeds), as the outbox does a minute later."""
    for _ in range(rounds):
        deliver_due()
        waiting = Notification.objects.filter(order=order, state=NotificationState.PENDING)
        if not waiting.exists():
            break
        waiting.update(next_attempt_at=timezone.now())
    return list(Notification.objects.filter(order=order).order_by("pk"))


def accepted(sim, kind: str) -> list[dict]:
    """The channel's records of `kind` it accepted (not refused, not dropped as repeats)."""
    return [r for r in sim.store.received(CODE, kind)[kind] if r["response"]["status"] == "SUCCESS"]


@pytest.fixture
def pushes_only(channel):
    channel.accepts_dispatch = channel.accepts_cancel = True
    channel.accepts_status_notifications = False
    channel.save()
    return channel


def test_a_dispatch_reaches_the_channel_once_after_a_server_error(world, pushes_only, sim):
    order = world.order("OUT-1", 1)
    mirror(sim, order)
    shipment = order.shipments.get()
    advance(shipment, "MANIFESTED")
    sim.store.add_fault({"kind": "error", "status": 503, "path": "/orders/dispatch", "count": 1})
    manifest_close(shipment.manifest)

    (n,) = deliver_until_done(order)
    assert (n.kind, n.state) == (NotificationKind.DISPATCH, NotificationState.DELIVERED)
    outcomes = list(n.attempt_log.order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["TRANSIENT", "SUCCESS"]

    Notification.objects.filter(pk=n.pk).update(state=NotificationState.PENDING)
    deliver_until_done(order)  # delivered again (a lost answer): the channel ships once
    (record,) = accepted(sim, "dispatches")
    shipment.refresh_from_db()
    assert shipment.tracking_number in json.dumps(record["body"])  # each API names it its way
    assert [e["orderItemId"] for e in record["body"]["orderItems"]] == [
        order.items.get().channel_order_item_id
    ]


def test_a_whole_order_cancelled_by_the_seller_reaches_the_channel_once(world, pushes_only, sim):
    order = world.order("CXL-1", 2)
    mirror(sim, order)
    assert units_cancel(order.items.values_list("pk", flat=True), reason="out of stock").ok

    (n,) = deliver_until_done(order)
    assert (n.kind, n.state) == (NotificationKind.CANCEL, NotificationState.DELIVERED)

    Notification.objects.filter(pk=n.pk).update(state=NotificationState.PENDING, channel_ref="")
    (again,) = deliver_until_done(order)  # sent again: nothing is cancelled twice
    assert again.state == NotificationState.DELIVERED
    (record,) = accepted(sim, "cancels")
    assert record["body"]["orderId"] == "CXL-1"
    line = order.items.first().channel_order_item_id
    assert [(e["orderItemId"], e["quantity"]) for e in record["body"]["orderItems"]] == [(line, 2)]
