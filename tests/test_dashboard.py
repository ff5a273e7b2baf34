"""The admin's front page: a warehouse dashboard with counts per status, channel and step."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import Order, OrderItem, Shipment, ShipmentStatus
from orders.selectors import DASHBOARD_CACHE_KEY, dashboard_figures
from orders.services import orders_hold, picklist_create, shipments_manifest

from .factories import ChannelFactory, SkuFactory, UserFactory
from .test_admin import to_status

INDEX = "/admin/"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def bars(html: str) -> dict[str, int]:
    """{label: count} of every bar on the page."""
    return {
        label: int(count)
        for label, count in re.findall(r'data-label="([^"]+)" data-count="(\d+)"', html)
    }


def bar_link(html: str, label: str) -> str:
    row = re.search(rf'data-label="{re.escape(label)}".*?</tr>', html, re.S).group(0)
    match = re.search(r'href="([^"]+)"', row)
    return match.group(1).replace("&amp;", "&") if match else ""


@pytest.fixture
def warehouse(world):
    """Orders at every step on two channels: 4 shipments to pick (one of a held order),
    1 picking, 1 to label, 1 to manifest, 1 manifested, 1 unfulfillable unit, 1 not
    serviceable."""
    orders = [world.order(f"FK-{i}") for i in range(1, 8)]
    shipments = [Shipment.objects.get(order=o) for o in orders]
    to_status(shipments[6:7], ShipmentStatus.MANIFESTED)
    to_status(shipments[5:6], ShipmentStatus.READY_TO_SHIP)
    to_status(shipments[4:5], ShipmentStatus.PACKED)
    assert not picklist_create([shipments[3].pk], destination="STAGING").failed
    SkuFactory(code="MUG")
    world.order("FK-8", sku="MUG")  # no stock: unfulfillable
    world.order("FK-9", pincode="999999")  # nobody delivers there
    orders_hold([orders[0].pk])
    amazon = ChannelFactory(code="AMAZON")
    world.channel = amazon
    world.order("AZ-1")
    return world


def test_dashboard_shows_work_waiting_per_step(warehouse, admin_client):
    html = admin_client.get(INDEX).content.decode()
    counts = bars(html)
    assert counts["To pick"] == 4  # FK-1 (held), FK-2, FK-3 and AZ-1
    assert counts["Picklists to receive"] == 1
    assert counts["Being picked"] == 1
    assert counts["To invoice"] == 0
    assert counts["To label"] == 1
    assert counts["To manifest"] == 1
    assert counts["On open manifests"] == 1
    assert counts["Open manifests to close"] == 1
    assert counts["Unfulfillable units"] == 1
    assert counts["Not serviceable units"] == 1
    assert counts["Orders on hold"] == 1
    assert counts["Created"] == 6 and counts["Processing"] == 4 and counts["Complete"] == 0
    assert counts["FLIPKART"] == 9 and counts["AMAZON"] == 1
    # The normal app list is still below.
    assert html.index("uw-dashboard") < html.index('class="app-orders')


def test_to_pick_count_matches_the_shipments_it_links_to(warehouse, admin_client):
    html = admin_client.get(INDEX).content.decode()
    link = bar_link(html, "To pick")
    assert link == reverse("admin:orders_shipment_changelist") + "?status__exact=CREATED"
    listed = admin_client.get(link).context["cl"].result_list
    assert len(listed) == bars(html)["To pick"]
    assert {s.status for s in listed} == {ShipmentStatus.CREATED}


@pytest.mark.parametrize(
    ("label", "model", "expected"),
    [
        ("Unfulfillable units", OrderItem, {"FK-8-L1-0"}),
        ("Not serviceable units", OrderItem, {"FK-9-L1-0"}),
        ("Orders on hold", Order, {"FLIPKART-FK-1"}),
        ("AMAZON", Order, {"AMAZON-AZ-1"}),
        ("Processing", Order, {"FLIPKART-FK-4", "FLIPKART-FK-5", "FLIPKART-FK-6", "FLIPKART-FK-7"}),
    ],
)
def test_every_bar_links_to_what_it_counts(warehouse, admin_client, label, model, expected):
    html = admin_client.get(INDEX).content.decode()
    listed = admin_client.get(bar_link(html, label)).context["cl"].result_list
    assert {str(obj) for obj in listed} == expected
    assert bars(html)[label] == len(expected)


def test_charts_are_css_bars_scaled_to_the_largest(warehouse, admin_client):
    html = admin_client.get(INDEX).content.decode()
    assert "<script" not in html.split('id="uw-dashboard"')[1].split("</div>\n</div>")[0]
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from a CDN
    widths = re.findall(r'class="uw-bar"><span style="width:([\d.]+)%', html)
    assert "100.0" in widths and "0.0" in widths
    assert 'class="uw-strip"' in html


def test_figures_are_cached_for_a_short_while(warehouse, admin_client):
    admin_client.get(INDEX)
    assert cache.get(DASHBOARD_CACHE_KEY) is not None
    with CaptureQueriesContext(connection) as ctx:
        html = admin_client.get(INDEX).content.decode()
    assert not [q for q in ctx.captured_queries if "orders_" in q["sql"]]
    warehouse.order("AZ-2")  # on AMAZON
    assert bars(admin_client.get(INDEX).content.decode())["AMAZON"] == bars(html)["AMAZON"] == 1
    cache.delete(DASHBOARD_CACHE_KEY)
    assert bars(admin_client.get(INDEX).content.decode())["AMAZON"] == 2


def test_dashboard_queries_do_not_grow_with_orders(world, admin_client):
    counts = []
    for batch in (2, 12):
        for i in range(batch):
            world.order(f"N-{batch}-{i}")
        cache.clear()
        with CaptureQueriesContext(connection) as ctx:
            admin_client.get(INDEX)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    assert dashboard_figures().orders_total == 14


def test_roles_see_links_only_to_lists_they_may_view(warehouse, client):
    client.force_login(UserFactory(roles=["Sales Manager"]))
    html = client.get(INDEX).content.decode()
    assert bars(html)["Open manifests to close"] == 1
    assert bar_link(html, "Open manifests to close") == ""  # Sales Manager: no manifests
    assert bar_link(html, "Orders on hold")

    client.force_login(UserFactory(roles=["Catalog Manager"]))
    html = client.get(INDEX).content.decode()
    assert 'id="uw-dashboard"' not in html  # no orders to look at
    assert "app-inventory" in html


def test_dashboard_on_an_empty_system(db, admin_client):
    html = admin_client.get(INDEX).content.decode()
    assert bars(html)["To pick"] == 0
    assert "0 orders in all" in html


def test_manifesting_moves_a_shipment_between_bars(warehouse, admin_client):
    shipment = Shipment.objects.get(status=ShipmentStatus.READY_TO_SHIP)
    shipments_manifest([shipment.pk])
    cache.clear()
    html = admin_client.get(INDEX).content.decode()
    assert bars(html)["To manifest"] == 0
    assert bars(html)["On open manifests"] == 2
    assert bars(html)["Open manifests to close"] == 1
