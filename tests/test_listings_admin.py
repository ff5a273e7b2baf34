"""The listings admin (issue 16): the work lists (unmapped, failed, out of stock), "Map to
SKU…" releasing the orders that waited, the SKU page's listings, who may do what."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from listings.models import ChannelListing, PushStatus
from orders.models import OrderStatus
from orders.services import LineInput, OrderInput, orders_create

from .factories import UserFactory

LIST = reverse("admin:listings_channellisting_changelist")
TERMS = {"on_shelves": 20, "blocked": 5, "waiting": 1, "buffer": 2, "sellable": 12, "quantity": 12}


@pytest.fixture
def listings(world):
    c = world.channel
    return {
        "unmapped": ChannelListing.objects.create(channel=c, product_id="P-1", seller_sku="x"),
        "failed": ChannelListing.objects.create(
            channel=c,
            product_id="P-2",
            sku=world.sku,
            push_status=PushStatus.FAILED,
            push_answer="unknown product",
        ),
        "zero": ChannelListing.objects.create(
            channel=c,
            product_id="P-3",
            sku=world.sku,
            pushed_quantity=0,
            push_status=PushStatus.IN_SYNC,
        ),
        "fine": ChannelListing.objects.create(
            channel=c,
            product_id="P-4",
            sku=world.sku,
            pushed_quantity=12,
            pushed_terms=TERMS,
            push_status=PushStatus.IN_SYNC,
        ),
    }


def listed(client, **params) -> set[str]:
    page = client.get(LIST, params)
    assert page.status_code == 200
    return {item.product_id for item in page.context["cl"].result_list}


def test_the_work_lists_and_why_a_number_was_pushed(listings, client):
    client.force_login(UserFactory(roles=["Catalog Manager"]))
    assert listed(client, needs="unmapped") == {"P-1"}
    assert listed(client, needs="failed") == {"P-2"}
    assert listed(client, needs="out_of_stock") == {"P-3"}
    html = client.get(LIST).content.decode()
    assert "12 = 20 on shelves − 5 blocked − 1 waiting − 2 buffer" in html
    assert "unknown product" in html


def test_map_to_sku_releases_the_waiting_order(world, listings, client):
    [order] = orders_create(
        [
            OrderInput(
                channel=world.channel,
                channel_order_id="FK-9",
                ship_pincode="560001",
                lines=[LineInput("FK-9-L1", "", channel_product_id="P-1", unmapped=True)],
                pending_verification=True,
                verification_reason="unmapped listing P-1 on FLIPKART",
            )
        ]
    )
    assert order.items.get().sku is None
    client.force_login(UserFactory(roles=["Catalog Manager"]))
    data = {"action": "map_to_sku", ACTION_CHECKBOX_NAME: [listings["unmapped"].pk]}

    wrong = client.post(LIST, {**data, "confirm": "yes", "sku_code": "NOPE"})
    assert "No SKU &#x27;NOPE&#x27;." in wrong.content.decode()
    done = client.post(LIST, {**data, "confirm": "yes", "sku_code": "TSHIRT"}, follow=True)

    texts = [str(m) for m in done.context["messages"]]
    assert texts == ["Mapped 1 listing(s) to TSHIRT; released 1 order(s)."]
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED
    assert list(order.items.values_list("sku__code", "status")) == [("TSHIRT", "FULFILLABLE")]


def test_the_sku_page_shows_what_each_channel_was_told(world, listings, admin_client):
    page = admin_client.get(reverse("admin:inventory_sku_change", args=[world.sku.pk]))
    html = page.content.decode()
    assert "channel listings (what each channel was last told)" in html.lower()
    assert "12 (In sync)" in html and "P-4" in html


def test_a_new_buffer_is_pushed_with_the_next_run(listings, admin_client):
    fine = listings["fine"]
    url = reverse("admin:listings_channellisting_change", args=[fine.pk])
    admin_client.post(url, {"sync_enabled": "on", "buffer": "5"})
    fine.refresh_from_db()
    assert (fine.buffer, fine.push_status) == (5, PushStatus.PENDING)


def test_sales_views_and_pushes_but_does_not_map(listings, client):
    client.force_login(UserFactory(roles=["Sales Manager"]))
    page = client.get(LIST)
    actions = {name for name, _ in page.context["action_form"].fields["action"].choices if name}
    assert actions == {"push_inventory_now"}
    client.post(
        LIST,
        {
            "action": "map_to_sku",
            ACTION_CHECKBOX_NAME: [listings["unmapped"].pk],
            "confirm": "yes",
            "sku_code": "TSHIRT",
        },
    )
    assert ChannelListing.objects.get(pk=listings["unmapped"].pk).sku is None
