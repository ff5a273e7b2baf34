"""Search orders by the customer (issue 15): e-mail, phone, pincode, any part of the name, and
by invoice number, each through its own index (the name's is a trigram index on PostgreSQL),
in a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import Order, OrderItem, Shipment, ShipmentStatus
from orders.selectors import customer_filter, order_search

from .test_admin import fresh, shipment_of, to_status

LIST = reverse("admin:orders_order_changelist")


@pytest.fixture
def orders(world):
    world.sku.inventory.update(quantity=20)
    return [
        world.order(
            "FK-1",
            customer_name="Asha Verma",
            customer_email="Asha.Verma@example.com",
            customer_phone="9876543210",
            pincode="560001",
        ),
        world.order(
            "FK-2",
            customer_name="Ravi Kumar",
            customer_email="ravi@example.com",
            customer_phone="+91 98450 11111",
            pincode="560001",
        ),
        world.order("FK-3", customer_name="Sashank Rao", pincode="110001"),
    ]


def listed(client, term: str) -> list[str]:
    page = client.get(LIST, {"q": term})
    assert page.status_code == 200
    return sorted(o.channel_order_id for o in page.context["cl"].result_list)


@pytest.mark.parametrize(
    "term, found",
    [
        ("asha.verma@EXAMPLE.com", ["FK-1"]),  # e-mail, any case
        ("9876543210", ["FK-1"]),  # phone as typed
        ("+91 98765 43210", ["FK-1"]),  # with the country code and spaces
        ("09845011111", ["FK-2"]),  # a stored "+91 ..." phone, typed with a 0
        ("560001", ["FK-1", "FK-2"]),  # pincode
        ("verma", ["FK-1"]),  # any part of the name, any case
        ("ASH", ["FK-1", "FK-3"]),  # Asha, Sashank
        ("as", []),  # under three characters: no name scan
        ("nobody", []),
    ],
)
def test_the_order_list_finds_orders_by_their_customer(orders, admin_client, term, found):
    assert listed(admin_client, term) == found


def test_phone_typed_with_spaces_matches_a_phone_stored_with_them(orders):
    found = Order.objects.filter(order_search("+91 98450 11111"))
    assert [o.channel_order_id for o in found] == ["FK-2"]


def test_invoice_number_and_awb_find_the_order_shipments_and_units(orders, admin_client):
    shipment = shipment_of(orders[1])
    to_status([shipment], ShipmentStatus.READY_TO_SHIP)
    invoice = shipment.invoices.get()
    awb = fresh(shipment).tracking_number
    assert listed(admin_client, invoice.code) == ["FK-2"]
    assert listed(admin_client, awb) == ["FK-2"]
    shipments = admin_client.get(reverse("admin:orders_shipment_changelist"), {"q": "Ravi"})
    assert [s.pk for s in shipments.context["cl"].result_list] == [shipment.pk]
    units = admin_client.get(reverse("admin:orders_orderitem_changelist"), {"q": "560001"})
    expected = OrderItem.objects.filter(order__in=orders[:2]).values_list("pk", flat=True)
    assert {u.pk for u in units.context["cl"].result_list} == set(expected)
    assert Shipment.objects.filter(order=orders[1]).count() == 1


def test_each_search_is_a_fixed_number_of_queries(orders, admin_client):
    counts = {}
    for term in ["verma", "560001", "9876543210", "ravi@example.com"]:
        with CaptureQueriesContext(connection) as queries:
            listed(admin_client, term)
        counts[term] = len(queries)
    assert len(set(counts.values())) == 1, counts  # the same steps, whichever field matched


@pytest.mark.postgres
@pytest.mark.parametrize(
    "term, index",
    [
        ("verma", "order_name_trgm_idx"),
        ("+91 98765 43210", "order_phone_idx"),
        ("Asha@Example.com", "order_email_idx"),
        ("560001", "order_pincode_idx"),
    ],
)
def test_each_customer_search_can_use_its_index(orders, term, index):
    """The index must match the expression Django sends, or the search scans at 1M rows."""
    sql, params = Order.objects.filter(customer_filter(term)).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
