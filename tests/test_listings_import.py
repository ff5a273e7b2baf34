"""Channel listings by file (issue 16), like orders: created or updated by (channel, product
id, variant id), errors by row without blocking the others, a SKU given maps the listing and
releases its waiting orders; the export imports back as it is."""

# ruff: noqa: F811  (pytest fixtures imported from tests.importing are parameters)
from __future__ import annotations

from listings.models import ChannelListing, PushStatus
from orders.models import OrderStatus
from orders.services import LineInput, OrderInput, orders_create

from .factories import UserFactory
from .importing import checked, csv_bytes, imported, media, report_rows  # noqa: F401
from .test_exports import read_csv, start_url

HEADER = ["channel", "product_id", "variant_id", "seller_sku", "sku", "sync_enabled", "buffer"]


def waiting_order(world):
    [order] = orders_create(
        [
            OrderInput(
                channel=world.channel,
                channel_order_id="FK-9",
                ship_pincode="560001",
                lines=[
                    LineInput(
                        "FK-9-L1", "", channel_product_id="P-1", variant_id="V-1", unmapped=True
                    )
                ],
                pending_verification=True,
                verification_reason="unmapped listing P-1/V-1 on FLIPKART",
            )
        ]
    )
    return order


def test_a_file_creates_updates_and_maps_and_bad_rows_are_named(world, media):
    ChannelListing.objects.create(channel=world.channel, product_id="P-1", variant_id="V-1")
    order = waiting_order(world)
    catalog = UserFactory(roles=["Catalog Manager"])
    rows = [
        {
            "channel": "FLIPKART",
            "product_id": "P-1",
            "variant_id": "V-1",
            "sku": "TSHIRT",
            "buffer": "2",
        },
        {"channel": "FLIPKART", "product_id": "P-2", "sync_enabled": "no"},
        {"channel": "NOPE", "product_id": "P-3"},
        {"channel": "FLIPKART", "product_id": "P-4", "sku": "NO-SUCH"},
        {"channel": "FLIPKART", "product_id": "P-5", "buffer": "-1"},
    ]
    job = checked(csv_bytes(rows, HEADER), catalog, kind="LISTINGS", name="listings.csv")
    assert (job.new_count, job.invalid_count) == (2, 3)

    job = imported(job, catalog, valid_only=True)

    assert job.created_count == 2
    assert {tuple(r[:2]) for r in report_rows(job)} == {
        ("4", "channel"),
        ("5", "sku"),
        ("6", "buffer"),
    }
    first = ChannelListing.objects.get(product_id="P-1")
    assert (first.sku, first.buffer, first.mapped_by) == (world.sku, 2, catalog)
    second = ChannelListing.objects.get(product_id="P-2")
    assert (second.sku, second.sync_enabled, second.push_status) == (
        None,
        False,
        PushStatus.PENDING,
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED  # released by the mapping
    assert not ChannelListing.objects.filter(product_id__in=["P-3", "P-4", "P-5"]).exists()


def test_the_export_imports_back_as_it_is(world, client, media):
    ChannelListing.objects.create(
        channel=world.channel,
        product_id="P-7",
        variant_id="V-7",
        sku=world.sku,
        buffer=3,
        pushed_quantity=7,
        push_status=PushStatus.IN_SYNC,
        pushed_terms={
            "on_shelves": 10,
            "blocked": 0,
            "waiting": 0,
            "buffer": 3,
            "sellable": 7,
            "quantity": 7,
        },
    )
    catalog = UserFactory(roles=["Catalog Manager"])
    client.force_login(catalog)
    response = client.post(start_url("LISTINGS"))
    [row] = read_csv(response)
    assert (row["product_id"], row["sku"], row["buffer"], row["sync_enabled"]) == (
        "P-7",
        "TSHIRT",
        "3",
        "yes",
    )
    assert row["why"] == "7 = 10 on shelves − 0 blocked − 0 waiting − 3 buffer"
    content = csv_bytes([row], list(row))
    job = imported(checked(content, catalog, kind="LISTINGS", name="listings.csv"), catalog)
    assert (job.created_count, job.error_count) == (1, 0)
    assert ChannelListing.objects.get().buffer == 3
