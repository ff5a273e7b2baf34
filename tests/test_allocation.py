"""Allocation: FULFILLABLE / UNFULFILLABLE / LOCATION_NOT_SERVICEABLE, facility priority,
serviceability, exact blocked stock, shipments per order and facility, re-allocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import Inventory, InventoryType, Serviceability
from inventory.services import stock_add
from orders import tasks
from orders.models import Order, OrderItem, OrderItemStatus, OrderStatus, Shipment, ShipmentStatus
from orders.services import (
    LineInput,
    OrderInput,
    allocate_units,
    orders_create,
    orders_hold,
    reallocate_waiting_units,
)
from uniware.core.models import StateChange

from .factories import FacilityFactory, ProviderFactory, ShelfFactory, SkuFactory


def units(order: Order) -> list[tuple]:
    return list(order.items.order_by("pk").values_list("status", "facility__code", "inventory_id"))


def statuses(order: Order) -> list[str]:
    return list(order.items.order_by("pk").values_list("status", flat=True))


def blocked(row: Inventory) -> tuple[int, int]:
    row.refresh_from_db()
    return row.quantity, row.blocked_quantity


def second_facility(world, *, priority=2, stock=5, code="WH2", provider=True):
    wh = FacilityFactory(code=code, priority=priority)
    shelf = ShelfFactory(facility=wh, code="B1")
    if provider:
        wh.shipping_providers.add(world.provider)
    row = Inventory.objects.create(facility=wh, shelf=shelf, sku=world.sku, quantity=stock)
    return wh, row


# --- the three outcomes ------------------------------------------------------------------


def test_fulfillable_blocks_one_unit_each_and_makes_one_shipment(world):
    order = world.order("FK-1", quantity=3)
    assert units(order) == [(OrderItemStatus.FULFILLABLE, "WH1", world.inventory.pk)] * 3
    assert blocked(world.inventory) == (10, 3)
    [shipment] = Shipment.objects.filter(order=order)
    assert (shipment.status, shipment.facility, shipment.shipping_provider) == (
        ShipmentStatus.CREATED,
        world.facility,
        world.provider,
    )
    assert set(order.items.values_list("shipment", flat=True)) == {shipment.pk}
    assert order.status == OrderStatus.CREATED


def test_no_stock_is_unfulfillable_and_blocks_nothing(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=0)
    order = world.order("FK-1", quantity=2)
    assert units(order) == [(OrderItemStatus.UNFULFILLABLE, None, None)] * 2
    assert blocked(world.inventory) == (0, 0)
    assert not Shipment.objects.exists()
    assert order.status == OrderStatus.CREATED


def test_partial_stock_blocks_exactly_what_there_is(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=2)
    order = world.order("FK-1", quantity=3)
    assert statuses(order) == [
        OrderItemStatus.FULFILLABLE,
        OrderItemStatus.FULFILLABLE,
        OrderItemStatus.UNFULFILLABLE,
    ]
    assert blocked(world.inventory) == (2, 2)
    other = world.order("FK-2")
    assert statuses(other) == [OrderItemStatus.UNFULFILLABLE]
    assert blocked(world.inventory) == (2, 2)


def test_stock_already_blocked_is_not_allocated_again(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=3, blocked_quantity=2)
    order = world.order("FK-1", quantity=2)
    assert statuses(order) == [OrderItemStatus.FULFILLABLE, OrderItemStatus.UNFULFILLABLE]
    assert blocked(world.inventory) == (3, 3)


def test_only_good_inventory_is_allocated(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(
        inventory_type=InventoryType.BAD_INVENTORY
    )
    order = world.order("FK-1")
    assert statuses(order) == [OrderItemStatus.UNFULFILLABLE]
    assert blocked(world.inventory) == (10, 0)


def test_pincode_not_served_is_location_not_serviceable_with_stock_blocked(world):
    order = world.order("FK-1", quantity=2, pincode="110001")
    assert (
        units(order) == [(OrderItemStatus.LOCATION_NOT_SERVICEABLE, "WH1", world.inventory.pk)] * 2
    )
    assert blocked(world.inventory) == (10, 2)
    [shipment] = Shipment.objects.filter(order=order)
    assert (shipment.status, shipment.shipping_provider) == (
        ShipmentStatus.LOCATION_NOT_SERVICEABLE,
        None,
    )


def test_serviceability_depends_on_payment_method(world):
    Serviceability.objects.filter(payment_method="COD").delete()
    prepaid = world.order("FK-1", payment_method="PREPAID")
    cod = world.order("FK-2", payment_method="COD")
    assert statuses(prepaid) == [OrderItemStatus.FULFILLABLE]
    assert statuses(cod) == [OrderItemStatus.LOCATION_NOT_SERVICEABLE]


def test_provider_must_pick_up_from_the_facility(world):
    world.facility.shipping_providers.clear()
    order = world.order("FK-1")
    assert statuses(order) == [OrderItemStatus.LOCATION_NOT_SERVICEABLE]


def test_inactive_provider_does_not_count(world):
    type(world.provider).objects.filter(pk=world.provider.pk).update(is_active=False)
    assert statuses(world.order("FK-1")) == [OrderItemStatus.LOCATION_NOT_SERVICEABLE]


def test_lowest_priority_number_provider_wins(world):
    dtdc = ProviderFactory(code="DTDC", name="DTDC")
    delhivery = ProviderFactory(code="DELHIVERY", name="Delhivery")
    world.facility.shipping_providers.add(dtdc, delhivery)
    Serviceability.objects.filter(shipping_provider=world.provider).update(priority=5)
    Serviceability.objects.create(
        shipping_provider=dtdc, pincode="560001", payment_method="PREPAID", priority=2
    )
    Serviceability.objects.create(
        shipping_provider=delhivery, pincode="560001", payment_method="PREPAID", priority=3
    )
    Serviceability.objects.create(
        shipping_provider=delhivery, pincode="560001", payment_method="COD", priority=1
    )
    prepaid = world.order("FK-1", payment_method="PREPAID")
    cod = world.order("FK-2", payment_method="COD")
    assert Shipment.objects.get(order=prepaid).shipping_provider == dtdc
    assert Shipment.objects.get(order=cod).shipping_provider == delhivery


def test_third_party_shipping_skips_the_serviceability_check(world):
    order = world.order("FK-1", pincode="999999", third_party_shipping=True)
    assert statuses(order) == [OrderItemStatus.FULFILLABLE]
    shipment = Shipment.objects.get(order=order)
    assert (shipment.status, shipment.shipping_provider) == (ShipmentStatus.CREATED, None)
    assert blocked(world.inventory) == (10, 1)


# --- facilities --------------------------------------------------------------------------


def test_facilities_are_tried_in_priority_order(world):
    wh2, row2 = second_facility(world, priority=2, stock=5)
    order = world.order("FK-1", quantity=2)
    assert {u[1] for u in units(order)} == {"WH1"}
    type(wh2).objects.filter(pk=wh2.pk).update(priority=0)
    later = world.order("FK-2", quantity=2)
    assert {u[1] for u in units(later)} == {"WH2"}
    assert blocked(world.inventory) == (10, 2) and blocked(row2) == (5, 2)


def test_first_facility_with_stock_is_used(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=0)
    wh2, row2 = second_facility(world, priority=2, stock=5)
    order = world.order("FK-1")
    assert units(order) == [(OrderItemStatus.FULFILLABLE, "WH2", row2.pk)]
    assert Shipment.objects.get(order=order).facility == wh2


def test_inactive_facility_is_skipped(world):
    type(world.facility).objects.filter(pk=world.facility.pk).update(is_active=False)
    wh2, row2 = second_facility(world, stock=1)
    assert units(world.order("FK-1", quantity=2)) == [
        (OrderItemStatus.FULFILLABLE, "WH2", row2.pk),
        (OrderItemStatus.UNFULFILLABLE, None, None),
    ]
    assert blocked(world.inventory) == (10, 0)


def test_one_shipment_per_order_and_facility_never_mixing_orders(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    wh2, row2 = second_facility(world, stock=5)
    a = world.order("FK-1", quantity=3)
    b = world.order("FK-2", quantity=1)
    ships_a = Shipment.objects.filter(order=a).order_by("facility__priority")
    assert [(s.facility.code, s.items.count()) for s in ships_a] == [("WH1", 1), ("WH2", 2)]
    [ship_b] = Shipment.objects.filter(order=b)
    assert ship_b.facility == wh2 and ship_b.pk not in {s.pk for s in ships_a}
    for shipment in Shipment.objects.all():
        assert set(shipment.items.values_list("order_id", flat=True)) == {shipment.order_id}
        assert set(shipment.items.values_list("facility_id", flat=True)) == {shipment.facility_id}
    assert blocked(world.inventory) == (1, 1) and blocked(row2) == (5, 3)


def test_serviceable_and_not_serviceable_units_get_separate_shipments(world):
    """WH2 has no provider: its units are not serviceable, WH1's are."""
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    wh2, _ = second_facility(world, provider=False)
    order = world.order("FK-1", quantity=2)
    got = sorted(Shipment.objects.filter(order=order).values_list("facility__code", "status"))
    assert got == [
        ("WH1", ShipmentStatus.CREATED),
        ("WH2", ShipmentStatus.LOCATION_NOT_SERVICEABLE),
    ]


# --- who is allocated, in which order ----------------------------------------------------


def test_held_and_pending_verification_orders_are_not_allocated(world):
    held = world.order("FK-1", on_hold=True)
    pending = world.order("FK-2", pending_verification=True)
    result = allocate_units(order_ids=[held.pk, pending.pk])
    assert result.fulfillable == [] and result.unfulfillable == []
    assert statuses(held) == [OrderItemStatus.CREATED] and statuses(pending) == [
        OrderItemStatus.CREATED
    ]
    assert blocked(world.inventory) == (10, 0)


def test_allocation_twice_changes_nothing(world):
    order = world.order("FK-1", quantity=2)
    before = StateChange.objects.count()
    result = allocate_units(order_ids=[order.pk])
    assert result.fulfillable == [] and result.shipments == []
    assert blocked(world.inventory) == (10, 2)
    assert StateChange.objects.count() == before


def test_priority_then_older_orders_get_scarce_stock_first(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=2)
    now = timezone.now()

    def spec(cid, **kw):
        return OrderInput(
            channel=world.channel,
            channel_order_id=cid,
            ship_pincode="560001",
            lines=[LineInput("L1", "TSHIRT", 1)],
            **kw,
        )

    new, old, urgent = orders_create(
        [
            spec("NEW", order_date=now),
            spec("OLD", order_date=now - timedelta(days=2)),
            spec("URGENT", order_date=now, priority=5),
        ],
        allocate=False,
    )
    allocate_units(order_ids=[new.pk, old.pk, urgent.pk])
    assert statuses(urgent) == [OrderItemStatus.FULFILLABLE]
    assert statuses(old) == [OrderItemStatus.FULFILLABLE]
    assert statuses(new) == [OrderItemStatus.UNFULFILLABLE]


def test_new_orders_are_allocated_as_they_are_created_with_both_steps_audited(world):
    """orders_create writes each unit once, already allocated; the history still shows the
    unit created, then allocated (or refused), by the same actor at the same moment."""
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=2)
    order, waiting, held = orders_create(
        [
            OrderInput(
                channel=world.channel,
                channel_order_id=f"FK-{n}",
                ship_pincode="560001",
                lines=[LineInput("L1", "TSHIRT", quantity, "100")],
                pending_verification=n == 2,
                on_hold=n == 3,
            )
            for n, quantity in ((1, 3), (2, 1), (3, 1))
        ],
        actor="import:test",
    )
    assert statuses(order) == [
        OrderItemStatus.FULFILLABLE,
        OrderItemStatus.FULFILLABLE,
        OrderItemStatus.UNFULFILLABLE,
    ]
    assert statuses(waiting) == [OrderItemStatus.CREATED] and statuses(held) == [
        OrderItemStatus.CREATED
    ]
    assert blocked(world.inventory) == (2, 2)
    [shipment] = Shipment.objects.filter(order=order)
    assert set(order.items.exclude(shipment=None).values_list("shipment", flat=True)) == {
        shipment.pk
    }
    for unit in order.items.all():
        history = list(
            StateChange.objects.filter(object_id=unit.pk, content_type__model="orderitem")
            .order_by("pk")
            .values_list("transition", "from_state", "to_state", "actor")
        )
        assert history == [
            ("create", "", "CREATED", "import:test"),
            (
                "allocate" if unit.status == OrderItemStatus.FULFILLABLE else "mark_unfulfillable",
                "CREATED",
                unit.status,
                "import:test",
            ),
        ]
    assert StateChange.objects.filter(
        object_id=shipment.pk, content_type__model="shipment", transition="create"
    ).exists()
    waiting_unit = StateChange.objects.filter(
        object_id=waiting.items.get().pk, content_type__model="orderitem"
    )
    assert [c.transition for c in waiting_unit] == ["create"]


def test_allocation_audit_rows(world):
    order = world.order("FK-1", quantity=2, pincode="110001")
    rows = StateChange.objects.filter(order=order, transition="mark_not_serviceable")
    assert (
        sorted(rows.values_list("from_state", "to_state"))
        == [("CREATED", "LOCATION_NOT_SERVICEABLE")] * 2
    )


# --- re-allocation -----------------------------------------------------------------------


def test_reallocate_waiting_units_after_stock_arrives(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    order = world.order("FK-1", quantity=3)
    [shipment] = Shipment.objects.filter(order=order)
    assert statuses(order) == [
        OrderItemStatus.FULFILLABLE,
        OrderItemStatus.UNFULFILLABLE,
        OrderItemStatus.UNFULFILLABLE,
    ]
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=2)
    result = reallocate_waiting_units(sku_ids=[world.sku.pk])
    assert len(result.fulfillable) == 1
    assert statuses(order) == [
        OrderItemStatus.FULFILLABLE,
        OrderItemStatus.FULFILLABLE,
        OrderItemStatus.UNFULFILLABLE,
    ]
    assert blocked(world.inventory) == (2, 2)
    assert set(order.items.exclude(shipment=None).values_list("shipment", flat=True)) == {
        shipment.pk
    }, "the open shipment of the order takes the new unit"
    row = StateChange.objects.get(order=order, transition="allocate", from_state="UNFULFILLABLE")
    assert row.actor == "task:reallocate"


def test_reallocate_only_touches_the_given_skus(world):
    mug = SkuFactory(code="MUG")
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=0)
    a = world.order("FK-1")
    b = world.order("FK-2", sku="MUG")
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=5)
    Inventory.objects.create(facility=world.facility, shelf=world.shelf, sku=mug, quantity=5)
    reallocate_waiting_units(sku_ids=[mug.pk])
    assert statuses(a) == [OrderItemStatus.UNFULFILLABLE] and statuses(b) == [
        OrderItemStatus.FULFILLABLE
    ]


def test_stock_add_reallocates_waiting_units_after_commit(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(
        tasks.reallocate_unfulfillable, "delay", lambda **kw: tasks.reallocate_unfulfillable(**kw)
    )
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=0)
    order = world.order("FK-1", quantity=2)
    assert statuses(order) == [OrderItemStatus.UNFULFILLABLE] * 2
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        row = stock_add(shelf=world.shelf, sku=world.sku, quantity=1)
    assert len(callbacks) == 1
    assert row.pk == world.inventory.pk
    assert statuses(order) == [OrderItemStatus.FULFILLABLE, OrderItemStatus.UNFULFILLABLE]
    assert blocked(world.inventory) == (1, 1)
    row = StateChange.objects.get(order=order, transition="allocate")
    assert row.actor == "task:reallocate_unfulfillable"


def test_stock_add_refuses_non_positive_quantity(world):
    with pytest.raises(ValueError, match="SKU TSHIRT must be positive, not 0"):
        stock_add(shelf=world.shelf, sku=world.sku, quantity=0)
    assert blocked(world.inventory) == (10, 0)


def test_over_blocking_is_refused_by_the_database(world):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Inventory.objects.filter(pk=world.inventory.pk).update(blocked_quantity=11)
    assert blocked(world.inventory) == (10, 0)


def test_allocation_queries_do_not_grow_with_the_batch(world):
    """Set-based: 10x the orders costs only a few more statements (write batches), not one
    query per order or unit."""
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1000)

    def allocate(prefix: str, n: int) -> int:
        inputs = [
            OrderInput(
                channel=world.channel,
                channel_order_id=f"{prefix}-{k}",
                ship_pincode="560001",
                lines=[LineInput("L1", "TSHIRT", 2)],
            )
            for k in range(n)
        ]
        orders = orders_create(inputs, allocate=False)
        with CaptureQueriesContext(connection) as queries:
            result = allocate_units(order_ids=[o.pk for o in orders])
        assert len(result.fulfillable) == 2 * n and len(result.shipments) == n
        return len(queries)

    small, large = allocate("S", 20), allocate("L", 200)
    assert large <= small + 10, (small, large)
    assert blocked(world.inventory) == (1000, 440)
    assert (
        OrderItem.objects.filter(status=OrderItemStatus.FULFILLABLE, shipment__isnull=False).count()
        == 440
    )


def test_reallocation_does_not_let_orders_without_stock_hold_back_newer_ones(world, monkeypatch):
    """The periodic re-allocation used to take the N oldest waiting orders whatever their
    SKU: orders that could never be filled kept newer orders with stock waiting."""
    from orders.services import allocation

    monkeypatch.setattr(allocation, "REALLOCATE_BATCH", 2)
    SkuFactory(code="GONE")
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=0)
    for n in range(4):
        world.order(f"OLD-{n}", 1, sku="GONE")
    newer = [world.order(f"NEW-{n}", 1) for n in range(3)]
    held = world.order("HELD", 1)
    orders_hold([held.pk])
    assert set(OrderItem.objects.values_list("status", flat=True)) == {
        OrderItemStatus.UNFULFILLABLE
    }
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=3)

    result = allocation.reallocate_waiting_units()

    assert len(result.fulfillable) == 3  # in batches of at most 2 orders
    for order in newer:
        assert order.items.get().status == OrderItemStatus.FULFILLABLE
    assert held.items.get().status == OrderItemStatus.UNFULFILLABLE
    assert set(OrderItem.objects.filter(sku__code="GONE").values_list("status", flat=True)) == {
        OrderItemStatus.UNFULFILLABLE
    }
