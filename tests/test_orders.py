"""Order creation (units per quantity, validation), the derived order status, hold and accept."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from orders.models import Order, OrderItem, OrderItemStatus, OrderStatus, Shipment
from orders.services import (
    LineInput,
    OrderInput,
    determine_order_status,
    order_accept,
    order_create,
    orders_create,
    orders_hold,
    orders_refresh_status,
    orders_unhold,
)
from uniware.core.actors import Actor
from uniware.core.fsm import IllegalTransition
from uniware.core.models import StateChange

from .factories import ChannelFactory, SkuFactory


def spec(world, channel_order_id="FK-1", lines=None, **kwargs) -> OrderInput:
    kwargs.setdefault("ship_pincode", "560001")
    return OrderInput(
        channel=kwargs.pop("channel", world.channel),
        channel_order_id=channel_order_id,
        lines=lines or [LineInput("L1", "TSHIRT", 1, "499.00")],
        **kwargs,
    )


def stock(world) -> tuple[int, int]:
    world.inventory.refresh_from_db()
    return world.inventory.quantity, world.inventory.blocked_quantity


# --- creation ----------------------------------------------------------------------------


def test_one_unit_per_quantity_with_line_codes(world):
    SkuFactory(code="MUG")
    order = order_create(
        spec(
            world,
            lines=[
                LineInput("L1", "TSHIRT", 3, "499.00", shipping_charges="20"),
                LineInput("L2", "MUG", 1, Decimal("150.50")),
            ],
        ),
        actor="task:order_pull",
    )
    units = list(
        order.items.order_by("pk").values_list(
            "code", "channel_order_item_id", "sku__code", "selling_price", "shipping_charges"
        )
    )
    assert units == [
        ("L1-0", "L1", "TSHIRT", Decimal("499.00"), Decimal("20.00")),
        ("L1-1", "L1", "TSHIRT", Decimal("499.00"), Decimal("20.00")),
        ("L1-2", "L1", "TSHIRT", Decimal("499.00"), Decimal("20.00")),
        ("L2-0", "L2", "MUG", Decimal("150.50"), Decimal("0.00")),
    ]
    assert order.code == "FLIPKART-FK-1" and order.item_count == 4
    assert order.total_amount == Decimal("1707.50")
    assert order.items.first().title == "Red T-shirt"
    created = StateChange.objects.filter(transition="create", order=order, actor="task:order_pull")
    assert created.count() == 1 + 4 + 1, "the order, its units, the TSHIRT shipment"
    statuses = list(order.items.order_by("pk").values_list("status", flat=True))
    assert statuses == [OrderItemStatus.FULFILLABLE] * 3 + [OrderItemStatus.UNFULFILLABLE], (
        "no MUG in stock"
    )


def test_channel_may_be_given_by_code(world):
    order = order_create(spec(world, channel="FLIPKART"))
    assert order.channel == world.channel


def test_create_without_allocation_leaves_units_created(world):
    order = order_create(spec(world), allocate=False)
    assert list(order.items.values_list("status", flat=True)) == [OrderItemStatus.CREATED]
    assert stock(world) == (10, 0)


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"channel": "NOPE"}, "channel", "unknown channel 'NOPE'"),
        ({"ship_pincode": ""}, "ship_pincode", "the shipping pincode is missing"),
        ({"payment_method": "CARD"}, "payment_method", "payment method 'CARD' is not COD"),
        ({"lines": []}, "lines", "needs at least one line"),
        ({"lines": [LineInput("L1", "NOPE", 1)]}, "sku", "line L1: unknown SKU 'NOPE'"),
        ({"lines": [LineInput("L1", "TSHIRT", 0)]}, "quantity", "quantity 0 must be"),
        ({"lines": [LineInput("L1", "TSHIRT", -2)]}, "quantity", "quantity -2 must be"),
        ({"lines": [LineInput("L1", "TSHIRT", 1.5)]}, "quantity", "quantity 1.5 must be"),
        ({"lines": [LineInput("L1", "TSHIRT", "2")]}, "quantity", "quantity '2' must be"),
        ({"lines": [LineInput("L1", "TSHIRT", True)]}, "quantity", "quantity True must be"),
        (
            {"lines": [LineInput("L1", "TSHIRT", 1, "abc")]},
            "selling_price",
            "'abc' is not a number",
        ),
        ({"lines": [LineInput("L1", "TSHIRT", 1, "-1")]}, "selling_price", "'-1' is negative"),
        ({"lines": [LineInput("L1", "TSHIRT", 1, "NaN")]}, "selling_price", "is not a number"),
        (
            {"lines": [LineInput("L1", "TSHIRT", 1, Decimal("-0.01"))]},
            "selling_price",
            "is negative",
        ),
        (
            {"lines": [LineInput("L1", "TSHIRT", 1, Decimal("Infinity"))]},
            "selling_price",
            "is not a number",
        ),
        (
            {"lines": [LineInput("L1", "TSHIRT", 1, "1", shipping_charges="x")]},
            "shipping_charges",
            "'x' is not a number",
        ),
    ],
)
def test_bad_input_names_the_order_and_field_and_creates_nothing(world, change, field, words):
    data = {"ship_pincode": "560001", **change}
    if "lines" in data and not data["lines"]:
        bad = spec(world, **{k: v for k, v in data.items() if k != "lines"})
        bad.lines = []
    else:
        bad = spec(world, **data)
    good = spec(world, "FK-0")
    with pytest.raises(ValidationError) as caught:
        orders_create([good, bad])
    errors = caught.value.message_dict
    assert list(errors) == [field]
    assert "Order FK-1" in errors[field][0] and words in errors[field][0]
    assert not Order.objects.exists() and not OrderItem.objects.exists()
    assert stock(world) == (10, 0)


def test_channel_order_id_is_unique_per_channel(world):
    order_create(spec(world, "FK-1"))
    with pytest.raises(ValidationError) as caught:
        order_create(spec(world, "FK-1"))
    assert caught.value.message_dict == {
        "channel_order_id": ["Order FK-1: channel FLIPKART already has this order (FLIPKART-FK-1)"]
    }
    assert Order.objects.count() == 1 and stock(world) == (10, 1)
    # another channel may use the same id
    amazon = ChannelFactory(code="AMAZON", name="Amazon")
    other = order_create(spec(world, "FK-1", channel=amazon))
    assert other.code == "AMAZON-FK-1"


def test_same_order_twice_in_one_batch_is_refused(world):
    with pytest.raises(ValidationError, match="sent twice by channel FLIPKART"):
        orders_create([spec(world, "FK-1"), spec(world, "FK-1")])
    assert not Order.objects.exists()


def test_bulk_create_runs_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    inputs = [spec(world, f"FK-{n}", lines=[LineInput("L1", "TSHIRT", 2)]) for n in range(5)]
    with django_assert_max_num_queries(40):
        orders_create(inputs)
    assert OrderItem.objects.count() == 10
    assert stock(world) == (10, 10)
    many = [spec(world, f"FK-B{n}", lines=[LineInput("L1", "TSHIRT", 2)]) for n in range(50)]
    with django_assert_max_num_queries(40):
        orders_create(many)
    assert OrderItem.objects.filter(status=OrderItemStatus.UNFULFILLABLE).count() == 100


# --- derived status ----------------------------------------------------------------------

C = OrderStatus  # short, for the table below
STATUS_CASES = [
    # current, unit counts, derived
    (C.CREATED, {OrderItemStatus.CREATED: 2}, C.CREATED),
    (C.CREATED, {OrderItemStatus.FULFILLABLE: 1, OrderItemStatus.UNFULFILLABLE: 1}, C.CREATED),
    (C.CREATED, {OrderItemStatus.LOCATION_NOT_SERVICEABLE: 1}, C.CREATED),
    (
        C.CREATED,
        {OrderItemStatus.FULFILLABLE: 1, OrderItemStatus.PICKING_FOR_STAGING: 1},
        C.PROCESSING,
    ),
    (C.CREATED, {OrderItemStatus.PICKING_FOR_INVOICING: 1}, C.PROCESSING),
    (C.CREATED, {OrderItemStatus.MANIFESTED: 1}, C.PROCESSING),
    (C.CREATED, {OrderItemStatus.DISPATCHED: 1, OrderItemStatus.UNFULFILLABLE: 1}, C.PROCESSING),
    (C.CREATED, {OrderItemStatus.DISPATCHED: 2}, C.COMPLETE),
    (C.PROCESSING, {OrderItemStatus.DISPATCHED: 1, OrderItemStatus.MANIFESTED: 1}, C.PROCESSING),
    (C.PROCESSING, {OrderItemStatus.DISPATCHED: 1, OrderItemStatus.DELIVERED: 1}, C.COMPLETE),
    (C.PROCESSING, {OrderItemStatus.FULFILLABLE: 1}, C.PROCESSING),  # never back to CREATED
    (C.PROCESSING, {OrderItemStatus.DISPATCHED: 1, OrderItemStatus.CANCELLED: 2}, C.COMPLETE),
    (C.CREATED, {OrderItemStatus.CANCELLED: 3}, C.CANCELLED),
    (C.PROCESSING, {OrderItemStatus.CANCELLED: 1}, C.CANCELLED),
    (C.CREATED, {OrderItemStatus.CANCELLED: 1, OrderItemStatus.FULFILLABLE: 1}, C.CREATED),
    (C.PENDING_VERIFICATION, {OrderItemStatus.CREATED: 2}, C.PENDING_VERIFICATION),
    (C.PENDING_VERIFICATION, {OrderItemStatus.CANCELLED: 2}, C.CANCELLED),
    (C.COMPLETE, {OrderItemStatus.RESHIPPED: 1}, C.COMPLETE),
    (C.COMPLETE, {OrderItemStatus.REPLACED: 1, OrderItemStatus.DELIVERED: 1}, C.COMPLETE),
    (C.COMPLETE, {OrderItemStatus.CANCELLED: 1}, C.COMPLETE),  # returns do not reopen it
    (C.COMPLETE, {OrderItemStatus.FULFILLABLE: 1}, C.COMPLETE),
    (C.CANCELLED, {OrderItemStatus.CANCELLED: 1}, C.CANCELLED),
    (C.CREATED, {}, C.CREATED),
    (C.CREATED, {OrderItemStatus.CANCELLED: 0, OrderItemStatus.CREATED: 1}, C.CREATED),
]


@pytest.mark.parametrize("current, counts, expected", STATUS_CASES)
def test_determine_order_status(current, counts, expected):
    assert determine_order_status(current, counts) == expected


def test_refresh_moves_orders_through_declared_transitions(world):
    order = order_create(spec(world, lines=[LineInput("L1", "TSHIRT", 2)]))
    OrderItem.objects.filter(order=order).update(status=OrderItemStatus.CANCELLED)
    orders_refresh_status({order.pk: order}, actor=Actor.of("task:sync"), reason="channel")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    row = StateChange.objects.get(order=order, transition="cancel")
    assert (row.from_state, row.to_state, row.actor, row.reason) == (
        "CREATED",
        "CANCELLED",
        "task:sync",
        "channel",
    )


def test_refresh_leaves_unchanged_orders_alone(world, django_assert_num_queries):
    order = order_create(spec(world))
    before = StateChange.objects.count()
    with django_assert_num_queries(1):
        orders_refresh_status({order.pk: order}, actor=Actor.of(None))
    assert StateChange.objects.count() == before


# --- pending verification, hold ----------------------------------------------------------


def test_pending_verification_waits_for_accept(world):
    order = order_create(spec(world, pending_verification=True))
    assert order.status == OrderStatus.PENDING_VERIFICATION
    assert list(order.items.values_list("status", flat=True)) == [OrderItemStatus.CREATED]
    assert stock(world) == (10, 0) and not Shipment.objects.exists()

    order = order_accept(order, actor="sales")
    assert order.status == OrderStatus.CREATED
    assert list(order.items.values_list("status", flat=True)) == [OrderItemStatus.FULFILLABLE]
    assert stock(world) == (10, 1)
    with pytest.raises(IllegalTransition, match="is CREATED: cannot accept"):
        order_accept(order)


def test_held_order_is_not_allocated_until_unheld(world):
    order = order_create(spec(world, on_hold=True))
    assert order.on_hold
    assert list(order.items.values_list("status", flat=True)) == [OrderItemStatus.CREATED]
    assert stock(world) == (10, 0)
    outcome = orders_unhold([order.pk], actor="sales", reason="verified")
    assert outcome.done == [order]
    order.refresh_from_db()
    assert not order.on_hold
    assert list(order.items.values_list("status", flat=True)) == [OrderItemStatus.FULFILLABLE]
    assert stock(world) == (10, 1)
    row = StateChange.objects.get(order=order, transition="unhold")
    assert (row.actor, row.reason, row.from_state, row.to_state) == (
        "sales",
        "verified",
        "CREATED",
        "CREATED",
    )


def test_hold_reports_each_order(world):
    a = order_create(spec(world, "FK-1"))
    b = order_create(spec(world, "FK-2", on_hold=True))
    outcome = orders_hold([a.pk, b.pk], actor="sales")
    assert outcome.done == [a]
    assert outcome.failed == [(b.code, "already on hold")]
    assert set(Order.objects.values_list("on_hold", flat=True)) == {True}


def test_bulk_hold_writes_audit_rows_in_one_statement(world, django_assert_max_num_queries):
    orders = orders_create([spec(world, f"FK-{n}") for n in range(30)], allocate=False)
    with django_assert_max_num_queries(6):
        outcome = orders_hold([o.pk for o in orders], actor="sales", reason="fraud check")
    assert len(outcome.done) == 30
    rows = StateChange.objects.filter(transition="hold", actor="sales", reason="fraud check")
    assert sorted(rows.values_list("order_id", flat=True)) == sorted(o.pk for o in orders)
