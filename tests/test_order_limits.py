"""An order that does not fit the columns is refused by `orders_create`, naming the order, the
line and the field; an order pull records it and goes on (issue 11: one malformed channel
order used to stop all order intake of its channel on PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from channels.models import RunOutcome, SyncCursor, SyncError, SyncKind
from channels.sync import pull_orders
from orders.models import Order
from orders.services import LineInput, OrderInput, orders_create

from .sync_helpers import channel_order

pytest_plugins = ["tests.sync_fixtures"]


def spec(world, order_id="OD-1", *, quantity=1, price="499.00", **kwargs) -> OrderInput:
    kwargs.setdefault("ship_pincode", "560001")
    return OrderInput(
        channel=world.channel,
        channel_order_id=order_id,
        lines=[LineInput(f"{order_id[:20]}-L1", "TSHIRT", quantity, price)],
        **kwargs,
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"order_id": "X" * 95},
            r"Order X+: code 'FLIPKART-X+\.\.\.' is 104 characters, at most 100",
        ),
        (
            {"price": "12345678901.00"},
            r"line .*: selling_price '12345678901.00' is too large",
        ),
        ({"price": "10.005"}, r"selling_price '10.005' has more than 2 decimals"),
        ({"quantity": 10_000_000}, r"quantity 10,000,000 is more than 1,000 units per line"),
        ({"customer_name": "A" * 201}, r"customer_name 'A+\.\.\.' is 201 characters, at most 200"),
        ({"ship_pincode": "5" * 11}, r"ship_pincode '5+' is 11 characters, at most 10"),
        ({"priority": 40_000}, r"priority 40000 is not in -32768..32767"),
    ],
)
def test_a_value_beyond_its_column_is_refused_by_name(world, changes, message):
    changes = dict(changes)
    order_id = changes.pop("order_id", "OD-1")
    kwargs = {k: changes.pop(k) for k in ("quantity", "price") if k in changes}
    with pytest.raises(ValidationError, match=message):
        orders_create([spec(world, order_id, **kwargs, **changes)])
    assert not Order.objects.exists()


def test_the_total_is_checked_against_its_column(world):
    lines = [LineInput(f"L{n}", "TSHIRT", 1000, "9999999999.00") for n in range(2)]
    with pytest.raises(ValidationError, match="total_amount .* is too large"):
        orders_create(
            [
                OrderInput(
                    channel=world.channel,
                    channel_order_id="BIG",
                    ship_pincode="560001",
                    lines=lines,
                )
            ]
        )


def test_values_at_the_limits_are_accepted(world):
    order_id = "Y" * (100 - len("FLIPKART-"))
    (order,) = orders_create([spec(world, order_id, quantity=3, price="9999999999.99")])
    assert len(order.code) == 100
    assert Order.objects.get(pk=order.pk).items.count() == 3
    assert Order.objects.get(pk=order.pk).items.first().selling_price == Decimal("9999999999.99")


def test_a_pull_records_malformed_orders_creates_the_others_and_advances(world, channel, sim):
    good = channel_order("OD-GOOD", [("OD-GOOD-1", "TSHIRT", 1)])
    long_id = channel_order("Z" * 120, [("Z-1", "TSHIRT", 1)])
    huge_quantity = channel_order("OD-QTY", [("OD-QTY-1", "TSHIRT", 10_000_000)])
    pricey = channel_order("OD-PRICE", [("OD-PRICE-1", "TSHIRT", 1)])
    pricey["orderItems"][0]["sellingPrice"] = "1000000000000.00"
    sim.store.put_orders("FLIPKART", [good, long_id, huge_quantity, pricey])

    run = pull_orders(channel)

    assert run.outcome == RunOutcome.PARTIAL, run.message
    assert (run.changed, run.failed) == (1, 3)
    assert Order.objects.filter(channel_order_id="OD-GOOD").exists()
    errors = {e.channel_order_id[:10]: e.message for e in SyncError.objects.filter(run=run)}
    assert "is 129 characters, at most 100" in errors["Z" * 10]
    assert "quantity 10,000,000 is more than 1,000 units per line" in errors["OD-QTY"]
    assert "OD-PRICE-1: sellingPrice '1000000000000.00' is too large" in errors["OD-PRICE"]
    cursor = SyncCursor.objects.get(channel=channel, kind=SyncKind.ORDER_PULL)
    assert cursor.synced_up_to == run.window_to
    # nothing the channel sent is lost: the refused orders keep their data, listed for staff
    kept = SyncError.objects.get(run=run, channel_order_id="OD-QTY").data
    assert kept["id"] == "OD-QTY" and kept["orderItems"][0]["quantity"] == 10_000_000
    assert SyncError.objects.get(run=run, channel_order_id="Z" * 100).data["id"] == "Z" * 120


def test_refused_channel_orders_are_listed_with_their_data(world, channel, sim, admin_client):
    from django.urls import reverse

    sim.store.put_orders("FLIPKART", [channel_order("OD-QTY", [("Q-1", "TSHIRT", 10_000_000)])])
    pull_orders(channel)
    url = reverse("admin:channels_syncerror_changelist") + "?not_created=1"
    assert "OD-QTY" in admin_client.get(url).content.decode()
    error = SyncError.objects.get(channel_order_id="OD-QTY")
    page = admin_client.get(reverse("admin:channels_syncerror_change", args=[error.pk]))
    assert "10000000" in page.content.decode()


def test_the_add_order_form_shows_a_value_beyond_its_column_next_to_its_field(world, admin_client):
    from django.urls import reverse

    from .test_admin import _add_data

    data = _add_data(world, lines="TSHIRT, 1, 123456789012.00", priority=99999)
    response = admin_client.post(reverse("admin:orders_order_add"), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["lines"] == [
        "Line 1 ('TSHIRT, 1, 123456789012.00'): unit price '123456789012.00' is too large"
    ]
    data = _add_data(world, priority=99999)
    errors = admin_client.post(reverse("admin:orders_order_add"), data).context["form"].errors
    assert errors["priority"] == ["Order WEB-100: priority 99999 is not in -32768..32767"]
    assert not Order.objects.exists()
