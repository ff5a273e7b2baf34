"""Channel listings in the order pull (issue 16): lines are mapped through listings; a new
listing is auto-mapped only when the seller SKU is exactly our code; otherwise the order
waits in PENDING_VERIFICATION naming the listing, and mapping it releases (accepts and
allocates) every order that waited on it, and only those."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from channels.models import SyncError
from channels.sync import pull_orders, resync_from
from channels.sync.pull import release_if_mapped_meanwhile
from inventory.models import Inventory
from listings.models import ChannelListing
from listings.selectors import listing_suggestions, unmapped_listings
from listings.services import CHANNEL_WAITS, map_listings
from orders.models import Order, OrderItemStatus, OrderStatus
from orders.services import order_accept
from uniware.core.models import StateChange

from .factories import SkuFactory, UserFactory
from .sync_helpers import channel_order

pytest_plugins = ["tests.sync_fixtures"]


def line(order_id, n, sku, product, variant, quantity=1) -> dict:
    return {
        "orderItemId": f"{order_id}-{n}",
        "sku": sku,
        "quantity": quantity,
        "productId": product,
        "variantId": variant,
        "title": "Blue mug, large",
    }


def order(order_id, *lines, **kwargs) -> dict:
    raw = channel_order(order_id, [], **kwargs)
    raw["orderItems"] = [
        {**item, "sellingPrice": "499.00", "status": "CREATED", "updated": raw["orderDate"]}
        for item in lines
    ]
    return raw


def put(sim, *orders) -> None:
    sim.store.put_orders("FLIPKART", list(orders))


def units(o: Order) -> list[tuple]:
    return list(o.items.order_by("pk").values_list("sku__code", "status"))


@pytest.fixture
def mug(world):
    sku = SkuFactory(code="MUG-BLUE-L", name="Blue mug, large")
    Inventory.objects.create(facility=world.facility, shelf=world.shelf, sku=sku, quantity=10)
    return sku


def test_a_seller_sku_that_is_our_code_maps_the_new_listing(world, channel, sim):
    put(sim, order("OD-1", line("OD-1", 1, "TSHIRT", "P-1", "V-1")))
    pull_orders(channel)
    listing = ChannelListing.objects.get(product_id="P-1")
    assert (listing.sku, listing.auto_mapped, listing.seller_sku) == (world.sku, True, "TSHIRT")
    created = Order.objects.get(channel_order_id="OD-1")
    assert created.status == OrderStatus.CREATED and created.verification_reason == ""
    assert units(created) == [("TSHIRT", OrderItemStatus.FULFILLABLE)]


def test_an_unmapped_listing_holds_the_order_until_staff_map_it(world, channel, sim, mug):
    put(
        sim,
        order("OD-1", line("OD-1", 1, "fk-mug-xl", "P-881", "V-881-M", 2)),
        order("OD-2", line("OD-2", 1, "fk-mug-xl", "P-881", "V-881-M")),
        order("OD-3", line("OD-3", 1, "other", "P-9", "V-9"), line("OD-3", 2, "TSHIRT", "P-1", "")),
    )
    run = pull_orders(channel)
    assert not SyncError.objects.filter(run=run).exists()  # waiting is not an error
    first = Order.objects.get(channel_order_id="OD-1")
    assert (first.status, first.verification_reason) == (
        OrderStatus.PENDING_VERIFICATION,
        "unmapped listing P-881/V-881-M on FLIPKART",
    )
    assert units(first) == [(None, "CREATED"), (None, "CREATED")]
    with pytest.raises(ValidationError, match="waits for its channel listing to be mapped"):
        order_accept(first)
    work = {(w.product_id, w.waiting_orders) for w in unmapped_listings()}
    assert work == {("P-881", 2), ("P-9", 1)}
    listing = ChannelListing.objects.get(product_id="P-881")
    assert listing_suggestions(listing)[0] == mug  # by the title's words

    staff = UserFactory(roles=["Catalog Manager"])
    result = map_listings([listing], mug, actor=staff)

    assert (result.listings, sorted(result.released)) == (1, ["FLIPKART-OD-1", "FLIPKART-OD-2"])
    first.refresh_from_db()
    assert (first.status, first.verification_reason) == (OrderStatus.CREATED, "")
    assert units(first) == [("MUG-BLUE-L", "FULFILLABLE")] * 2
    third = Order.objects.get(channel_order_id="OD-3")  # another listing: still waiting
    assert third.status == OrderStatus.PENDING_VERIFICATION
    assert third.verification_reason == "unmapped listing P-9/V-9 on FLIPKART"
    listing.refresh_from_db()
    assert (listing.mapped_by, listing.auto_mapped) == (staff, False)
    assert StateChange.objects.filter(
        order_id=first.pk, transition="map_listing", reason__contains="P-881/V-881-M → MUG-BLUE-L"
    ).exists()


def test_a_listing_mapped_to_another_sku_wins_over_the_sku_text(world, channel, sim, mug):
    ChannelListing.objects.create(channel=channel, product_id="P-7", variant_id="V-7", sku=mug)
    put(sim, order("OD-1", line("OD-1", 1, "TSHIRT", "P-7", "V-7")))
    pull_orders(channel)
    assert units(Order.objects.get(channel_order_id="OD-1")) == [("MUG-BLUE-L", "FULFILLABLE")]


def test_a_channel_pending_order_stays_pending_until_the_channel_verifies_it(
    world, channel, sim, mug
):
    raw = order("OD-1", line("OD-1", 1, "x", "P-5", "V-5"), order_status="PENDING_VERIFICATION")
    put(sim, raw)
    pull_orders(channel)
    waiting = Order.objects.get(channel_order_id="OD-1")
    assert waiting.verification_reason == f"unmapped listing P-5/V-5 on FLIPKART; {CHANNEL_WAITS}"

    result = map_listings([ChannelListing.objects.get(product_id="P-5")], mug)

    assert result.released == [] and result.waiting == [("FLIPKART-OD-1", CHANNEL_WAITS)]
    waiting.refresh_from_db()
    assert waiting.status == OrderStatus.PENDING_VERIFICATION
    assert units(waiting) == [("MUG-BLUE-L", "CREATED")]
    sim.store.apply_changes("FLIPKART", [{"orderId": "OD-1", "orderStatus": "CREATED"}])
    resync_from(channel, "ORDER_PULL", waiting.order_date.replace(year=2000))
    pull_orders(channel)
    waiting.refresh_from_db()
    assert (waiting.status, units(waiting)) == (
        OrderStatus.CREATED,
        [("MUG-BLUE-L", "FULFILLABLE")],
    )


def test_verified_by_the_channel_while_unmapped_waits_only_for_the_mapping(
    world, channel, sim, mug
):
    put(sim, order("OD-1", line("OD-1", 1, "x", "P-5", "V-5"), order_status="PENDING_VERIFICATION"))
    pull_orders(channel)
    sim.store.apply_changes("FLIPKART", [{"orderId": "OD-1", "orderStatus": "CREATED"}])
    waiting = Order.objects.get(channel_order_id="OD-1")
    resync_from(channel, "ORDER_PULL", waiting.order_date.replace(year=2000))
    run = pull_orders(channel)
    assert not SyncError.objects.filter(run=run).exists()
    waiting.refresh_from_db()
    assert waiting.verification_reason == "unmapped listing P-5/V-5 on FLIPKART"
    assert map_listings([ChannelListing.objects.get(product_id="P-5")], mug).released == [
        "FLIPKART-OD-1"
    ]


def test_a_listing_mapped_while_the_pull_ran_releases_its_new_orders(world, channel, sim, mug):
    put(sim, order("OD-1", line("OD-1", 1, "x", "P-5", "V-5")))
    pull_orders(channel)
    listing = ChannelListing.objects.get(product_id="P-5")
    stale = {("P-5", "V-5"): ChannelListing.objects.get(pk=listing.pk)}  # read as unmapped
    ChannelListing.objects.filter(pk=listing.pk).update(sku=mug)  # staff, meanwhile

    release_if_mapped_meanwhile(stale, actor="test")

    assert Order.objects.get(channel_order_id="OD-1").status == OrderStatus.CREATED
