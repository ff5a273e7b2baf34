"""Amazon's Feeds API against its simulator on loopback: seller cancellations as order
acknowledgement feeds through the notification outbox, and inventory in bulk as a
JSON_LISTINGS_FEED whose processing report a later push run reads (issue 17).

Every request is checked by the simulator against `amazon_shapes`; `no_refused_requests`
asserts none was refused.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from channels.adapters import CANCEL_PUSH, adapter_for, read_push_reply
from channels.adapters.amazon_feeds import acknowledgement_feed, listings_feed
from inventory.services import stock_add
from listings.models import ChannelListing, InventoryFeed, PushStatus
from listings.push import push_inventory
from notifications.delivery import deliver_due
from notifications.models import (
    AttemptOutcome,
    Notification,
    NotificationState,
)
from orders.services import units_cancel
from simulator.native import amazon as sim_amazon
from simulator.native.amazon_shapes import LISTINGS_FEED
from simulator.native.shapes import problems

from .factories import SkuFactory
from .sync_helpers import mirror, native_requests

pytest_plugins = ["tests.sync_fixtures"]
pytestmark = [pytest.mark.dialects("amazon"), pytest.mark.postgres]
CODE = "FLIPKART"  # the world's channel, here of type AMAZON_SP


def operations(sim) -> list[str]:
    return [r["amazonOperation"] for r in native_requests(sim, CODE, "amazon")]


def uploads(sim) -> list[bytes]:
    """The documents the adapter uploaded, in order."""
    docs = sim_amazon.DIALECT.feeds.documents.values()
    mine = [d for d in docs if d["store"] == id(sim.store) and d["code"] == CODE]
    return [d["content"] for d in mine if not d["report"]]


@pytest.fixture
def no_refused_requests(sim):
    yield
    logged = native_requests(sim, CODE, "amazon")
    assert [r for r in logged if r["status"] in (400, 403, 429) and not r["fault"]] == []


def cancel_push(world, sim, code: str, quantity: int, cancel: int):
    """An order of one line of `quantity` on Amazon, `cancel` of its units cancelled by us."""
    order = world.order(code, quantity)
    mirror(sim, order)
    units = list(order.items.order_by("pk").values_list("pk", flat=True))[:cancel]
    units_cancel(units, reason="out of stock")
    return order


def due_now(order) -> None:
    Notification.objects.filter(order=order).update(next_attempt_at=timezone.now())


# --- seller cancellations ------------------------------------------------------------------


def test_a_cancel_goes_as_a_feed_and_the_outbox_reads_its_report(
    world, channel, sim, no_refused_requests
):
    channel.accepts_cancel, channel.accepts_status_notifications = True, False
    channel.save()
    order = cancel_push(world, sim, "AMZ-CXL", 2, 2)

    report = deliver_due()
    (n,) = Notification.objects.filter(order=order)
    assert (n.kind, n.state, n.awaits, report.awaiting) == (CANCEL_PUSH, "PENDING", 1, 1)
    assert n.channel_ref and n.next_attempt_at > timezone.now()
    assert n.attempt_log.get().outcome == AttemptOutcome.AWAITING
    assert sim.store.received(CODE, "cancels")["cancels"] == []  # not processed yet
    (xml,) = uploads(sim)
    ack = ElementTree.fromstring(xml).find("Message/OrderAcknowledgement")
    assert ack.findtext("AmazonOrderID") == "AMZ-CXL"
    assert ack.findtext("StatusCode") == "Failure"
    item = order.items.first().channel_order_item_id
    items = ack.findall("Item")
    assert [(i.findtext("AmazonOrderItemCode"), i.findtext("CancelReason")) for i in items] == [
        (item, "GeneralAdjustment")
    ]

    due_now(order)
    deliver_due()
    n.refresh_from_db()
    assert (n.state, n.attempts, n.rejections) == (NotificationState.DELIVERED, 2, 0)
    (cancel,) = sim.store.received(CODE, "cancels")["cancels"]
    assert cancel["body"]["orderItems"] == [{"orderItemId": item, "quantity": 2}]
    assert sim.store.get_order(CODE, "AMZ-CXL")["orderItems"][0]["status"] == "CANCELLED"
    assert operations(sim) == [
        "lwaToken",
        "getOrderItems",
        "createFeedDocument",
        "uploadDocument",
        "createFeed",
        "getFeed",
        "getFeedDocument",
        "downloadDocument",
    ]


def test_a_cancel_of_some_units_of_an_item_is_refused_before_anything_is_sent(
    world, channel, sim, no_refused_requests
):
    order = cancel_push(world, sim, "AMZ-PART", 2, 1)
    item = order.items.first().channel_order_item_id
    body = {"orderId": "AMZ-PART", "orderItems": [{"orderItemId": item, "quantity": 1}]}

    reply = adapter_for(channel).push_once(CANCEL_PUSH, "AMZ-PART", body, "cancel-1")

    verdict = read_push_reply(reply.text, channel=CODE, what="cancel")
    assert verdict.status == "FAILED" and not reply.awaiting
    assert verdict.failed == (
        (
            item,
            f"Amazon cancels whole order items: 1 of the 2 units of item {item} asked; "
            "cancel all of them, or none",
        ),
    )
    assert "createFeed" not in operations(sim)


def test_a_cancel_sent_again_after_amazon_cancelled_sends_no_second_feed(world, channel, sim):
    """The outbox's answer was lost after Amazon processed the feed: the push is sent again,
    finds the item cancelled on Amazon (QuantityOrdered 0) and succeeds without a feed."""
    order = cancel_push(world, sim, "AMZ-TWICE", 1, 1)
    item = order.items.first().channel_order_item_id
    body = {"orderId": "AMZ-TWICE", "orderItems": [{"orderItemId": item, "quantity": 1}]}
    adapter = adapter_for(channel)

    first = adapter.push_once(CANCEL_PUSH, "AMZ-TWICE", body, "k")
    done = adapter.push_once(CANCEL_PUSH, "AMZ-TWICE", body, "k", ref=first.awaiting)
    again = adapter.push_once(CANCEL_PUSH, "AMZ-TWICE", body, "k")

    assert first.awaiting and json.loads(done.text)["status"] == "SUCCESS"
    assert json.loads(again.text)["status"] == "SUCCESS" and not again.awaiting
    assert operations(sim).count("createFeed") == 1
    assert len(sim.store.received(CODE, "cancels")["cancels"]) == 1


def test_errors_in_the_report_fail_the_items_and_the_retry_sends_a_new_feed(
    world, channel, sim, no_refused_requests
):
    channel.accepts_cancel, channel.accepts_status_notifications = True, False
    channel.retry_base_delay = 30.0  # a refused push is not tried again within the round
    channel.save()
    order = cancel_push(world, sim, "AMZ-ERR", 1, 1)
    item = order.items.first().channel_order_item_id
    sim.store.add_fault(
        {"kind": "fail_items", "method": "POST", "path": "/orders/cancel", "count": 1}
    )
    sim_amazon.configure(sim.store, CODE, feedPolls=1)  # one getFeed answers IN_PROGRESS

    deliver_due()  # submitted
    due_now(order)
    deliver_due()  # still in progress
    n = Notification.objects.get(order=order)
    assert (n.state, n.awaits, n.rejections) == ("PENDING", 2, 0)
    due_now(order)
    deliver_due()  # the report: the item failed
    n.refresh_from_db()
    assert (n.state, n.rejections, n.channel_ref, n.retry_item_ids) == ("PENDING", 1, "", [item])
    assert "Amazon (feed " in n.last_error and "injected" in n.last_error.lower()

    sim_amazon.configure(sim.store, CODE, feedPolls=0)
    due_now(order)
    deliver_due()  # a new feed
    due_now(order)
    deliver_due()
    n.refresh_from_db()
    assert n.state == NotificationState.DELIVERED
    assert operations(sim).count("createFeed") == 2
    outcomes = list(n.attempt_log.values_list("outcome", flat=True))
    assert outcomes == ["AWAITING", "AWAITING", "FAILED", "AWAITING", "SUCCESS"]


def test_a_feed_amazon_ends_unprocessed_fails_the_push_with_the_reason(world, channel, sim):
    order = cancel_push(world, sim, "AMZ-FATAL", 1, 1)
    item = order.items.first().channel_order_item_id
    body = {"orderId": "AMZ-FATAL", "orderItems": [{"orderItemId": item, "quantity": 1}]}
    sim_amazon.configure(sim.store, CODE, feedEnd="FATAL")
    adapter = adapter_for(channel)

    first = adapter.push_once(CANCEL_PUSH, "AMZ-FATAL", body, "k")
    outcome = adapter.push_once(CANCEL_PUSH, "AMZ-FATAL", body, "k", ref=first.awaiting)

    verdict = read_push_reply(outcome.text, channel=CODE, what="cancel")
    assert verdict.status == "FAILED"
    assert f"Amazon ended feed {first.awaiting} as FATAL, unprocessed" in verdict.error


def test_the_acknowledgement_feed_escapes_what_it_names():
    xml = acknowledgement_feed("SELLER<&>", "403-1<2", ["item&1"], "NoInventory")
    root = ElementTree.fromstring(xml)
    assert root.findtext("Header/MerchantIdentifier") == "SELLER<&>"
    assert root.findtext("Message/OrderAcknowledgement/AmazonOrderID") == "403-1<2"
    assert root.findtext("Message/OrderAcknowledgement/Item/AmazonOrderItemCode") == "item&1"


# --- inventory in bulk ----------------------------------------------------------------------


def many_listings(world, channel, count: int) -> list[ChannelListing]:
    listings = []
    for n in range(count):
        sku = SkuFactory(code=f"FEED-{n:03d}")
        stock_add(shelf=world.shelf, sku=sku, quantity=n + 1)
        listings.append(
            ChannelListing.objects.create(channel=channel, product_id=sku.code, sku=sku)
        )
    return listings


def test_many_listings_go_as_one_feed_and_the_next_run_reads_its_report(
    world, channel, sim, no_refused_requests
):
    listings = many_listings(world, channel, 25)
    sim.store.add_fault(
        {
            "kind": "fail_items",
            "method": "POST",
            "path": "/updateInventory",
            "itemIds": ["FEED-003"],
            "count": 1,
        }
    )

    first = push_inventory(channel, full=True)

    assert first.outcome == "SUCCESS", first.message
    assert "25 sent in feeds FLIPKART processes later; 25 awaiting" in first.message
    statuses = set(ChannelListing.objects.values_list("push_status", flat=True))
    assert statuses == {PushStatus.SENT}
    assert sim.store.received(CODE, "inventory")["inventory"] == []
    (feed,) = InventoryFeed.objects.all()
    assert feed.closed_at is None and [e[0] for e in feed.entries] == [x.pk for x in listings]
    (document,) = uploads(sim)
    assert problems(json.loads(document), LISTINGS_FEED, "feed") == []

    second = push_inventory(channel)

    feed.refresh_from_db()
    assert feed.closed_at is not None and feed.outcome.startswith("24 accepted, 1 failed")
    rows = {x.product_id: x for x in ChannelListing.objects.all()}
    assert (rows["FEED-000"].push_status, rows["FEED-000"].pushed_quantity) == ("IN_SYNC", 1)
    assert rows["FEED-024"].pushed_quantity == 25
    assert f"in feed {feed.reference}" in rows["FEED-000"].push_answer
    assert rows["FEED-003"].push_attempts == 0  # failed in the report, accepted again
    assert (rows["FEED-003"].push_status, rows["FEED-003"].pushed_quantity) == ("IN_SYNC", 4)
    assert any("injected" in line[2].lower() for line in second.report if line[0] == "FEED-003")
    feed_record, again = sim.store.received(CODE, "inventory")["inventory"]
    assert len(feed_record["body"]["inventoryList"]) == 25
    # the failed one was sent again by the same run, alone: patchListingsItem, no feed
    assert [e["productId"] for e in again["body"]["inventoryList"]] == ["FEED-003"]
    assert operations(sim).count("createFeed") == 1
    assert operations(sim).count("patchListingsItem") == 1
    assert (second.failed, second.changed) == (1, 25)


def test_a_compressed_report_is_read_and_a_feed_without_one_is_given_up(world, channel, sim):
    """Amazon may gzip a report (getFeedDocument says so); a feed still unanswered after
    FEED_PATIENCE is closed and its listings FAILED, so the next run sends them again."""
    from datetime import timedelta

    from listings.feeds import FEED_PATIENCE

    many_listings(world, channel, 20)
    sim_amazon.configure(sim.store, CODE, gzipReports=True)
    push_inventory(channel, full=True)
    push_inventory(channel)
    assert set(ChannelListing.objects.values_list("push_status", flat=True)) == {"IN_SYNC"}

    sim_amazon.configure(sim.store, CODE, feedPolls=1000)  # Amazon never answers
    push_inventory(channel, full=True)
    lost = InventoryFeed.objects.get(closed_at__isnull=True)
    InventoryFeed.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - FEED_PATIENCE - timedelta(minutes=1)
    )
    run = push_inventory(channel)

    lost.refresh_from_db()
    assert lost.closed_at is not None and "no processing report" in lost.outcome
    assert (run.outcome, run.failed) == ("PARTIAL", 20)  # failed, then sent in a new feed
    assert all("no processing report of feed" in line[2] for line in run.report)
    assert InventoryFeed.objects.filter(closed_at__isnull=True).count() == 1  # sent again


def test_a_listing_in_an_open_feed_is_not_sent_again(world, channel, sim, no_refused_requests):
    many_listings(world, channel, 20)
    sim_amazon.configure(sim.store, CODE, feedPolls=5)
    push_inventory(channel, full=True)

    again = push_inventory(channel, full=True)

    assert operations(sim).count("createFeed") == 1
    assert operations(sim).count("getFeed") == 1
    assert "0 sent in feeds FLIPKART processes later; 20 awaiting" in again.message
    assert set(ChannelListing.objects.values_list("push_status", flat=True)) == {"SENT"}


def test_the_listings_feed_matches_amazons_shape():
    entries = [{"productId": "TSHIRT", "inventory": "7"}, {"productId": "MUG", "inventory": "0"}]
    feed = json.loads(listings_feed("SELLER", "PRODUCT", entries))
    assert problems(feed, LISTINGS_FEED, "feed") == []
    assert [(m["messageId"], m["sku"]) for m in feed["messages"]] == [(1, "TSHIRT"), (2, "MUG")]
    del feed["messages"][0]["sku"]
    assert problems(feed, LISTINGS_FEED, "feed") == ["feed.messages[0].sku: missing"]


def test_staff_see_the_feeds_awaiting_a_report(world, channel, sim, client, django_user_model):
    """A catalog manager reads which feeds Amazon has not answered yet, and what the others
    said; nobody may change them (the push writes them)."""
    from django.contrib.auth.models import Group
    from django.urls import reverse

    from uniware.core.roles import sync_roles

    many_listings(world, channel, 20)
    sim_amazon.configure(sim.store, CODE, feedPolls=5)
    push_inventory(channel, full=True)
    sync_roles()
    user = django_user_model.objects.create_user("cat", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Catalog Manager"))
    client.force_login(user)

    page = client.get(reverse("admin:listings_inventoryfeed_changelist")).content.decode()

    feed = InventoryFeed.objects.get()
    assert feed.reference in page and "Awaiting the channel&#x27;s report" in page
    assert ">20<" in page  # listings in it
    change = reverse("admin:listings_inventoryfeed_change", args=[feed.pk])
    assert client.post(change, {"outcome": "x"}).status_code == 403
