"""The fast paths of order creation: `build` makes the instances `Model(**kwargs)` would,
`insert_new` writes what `bulk_create` would (COPY on PostgreSQL), `add_per_row` adds each
row's own number, and `read_ahead` hands over every item in order, errors included."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from inventory.models import Inventory
from orders.models import Order, OrderItem, OrderItemStatus
from uniware.core.db import add_per_row, build, insert_new
from uniware.core.readahead import read_ahead

from .factories import SkuFactory


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_build_makes_what_the_constructor_makes(world):
    values = dict(
        code="FLIPKART-OD1",
        channel=world.channel,
        channel_order_id="OD1",
        payment_method="COD",
        ship_pincode="560001",
        order_date=timezone.now(),
        total_amount=Decimal("10.50"),
    )
    built, made = build(Order, **dict(values)), Order(**values)
    assert _fields(built) == _fields(made)
    assert built.channel is world.channel and built._state.adding
    assert build(Order).billing_address is not build(Order).billing_address, "fresh default"
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        build(Order, colour="red")


@pytest.mark.django_db(transaction=True)
def test_insert_new_writes_what_bulk_create_writes(world):
    def order(n: int) -> Order:
        return build(
            Order,
            code=f"FLIPKART-OD{n}",
            channel=world.channel,
            channel_order_id=f"OD{n}",
            payment_method="PREPAID",
            ship_pincode="560001",
            order_date=timezone.now(),
            billing_address={"city": "Pune", "n": n},
            customer_name="Ä'\"\\\t tab",
        )

    fast = [order(n) for n in range(3)]
    slow = [order(n) for n in range(3, 6)]
    insert_new(Order, fast)
    Order.objects.bulk_create(slow)
    assert all(o.pk and not o._state.adding for o in fast)
    assert len({o.pk for o in fast + slow}) == 6
    for a, b in zip(fast, slow, strict=True):
        a_row, b_row = _fields(Order.objects.get(pk=a.pk)), _fields(Order.objects.get(pk=b.pk))
        for name in ("id", "code", "channel_order_id", "billing_address", "order_date"):
            a_row.pop(name), b_row.pop(name)
        for name in ("created_at", "updated_at"):  # set at insert time
            assert a_row.pop(name) and b_row.pop(name)
        assert a_row == b_row
    again = Order.objects.get(pk=fast[2].pk)
    assert again.billing_address == {"city": "Pune", "n": 2}
    assert again.customer_name == "Ä'\"\\\t tab"
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_new(Order, [order(0)])  # the code is taken: Django's error, as bulk_create's


def test_insert_new_gives_units_their_status_and_keys(world):
    order = world.order("FK-FAST")
    units = [
        build(
            OrderItem,
            order=order,
            code=f"X-{n}",
            channel_order_item_id="X",
            sku_id=world.sku.pk,
            status=OrderItemStatus.UNFULFILLABLE,
        )
        for n in range(3)
    ]
    with transaction.atomic():
        insert_new(OrderItem, units)
    stored = OrderItem.objects.filter(pk__in=[u.pk for u in units]).order_by("pk")
    assert [(u.code, u.status, u.order_id) for u in stored] == [
        (f"X-{n}", "UNFULFILLABLE", order.pk) for n in range(3)
    ]
    assert all(u.created_at and u.updated_at for u in stored)


def test_add_per_row_adds_each_rows_own_number(world):
    other = Inventory.objects.create(
        facility=world.facility, shelf=world.shelf, sku=SkuFactory(code="MUG"), quantity=50
    )
    before = dict(Inventory.objects.values_list("pk", "quantity"))
    changed = add_per_row(Inventory, Counter({world.inventory.pk: 3, other.pk: 7}), ["quantity"])
    after = dict(Inventory.objects.values_list("pk", "quantity"))
    assert changed == 2
    assert after[world.inventory.pk] == before[world.inventory.pk] + 3
    assert after[other.pk] == before[other.pk] + 7
    add_per_row(Inventory, {other.pk: 4}, ["blocked_quantity"])
    add_per_row(Inventory, {other.pk: 3}, ["quantity", "blocked_quantity"], sign=-1)
    other.refresh_from_db()
    assert (other.quantity, other.blocked_quantity) == (54, 1)


def test_read_ahead_keeps_order_and_runs_ahead():
    produced = []

    def items():
        for n in range(50):
            produced.append((n, threading.current_thread().name))
            yield n

    got = []
    for n in read_ahead(items(), depth=3):
        if n == 0:
            time.sleep(0.05)  # meanwhile the thread produces the next ones
            assert len(produced) >= 3
        got.append(n)
    assert got == list(range(50))
    assert {name for _, name in produced} == {"read-ahead"}


def test_read_ahead_raises_the_error_where_it_happened():
    def items():
        yield 1
        yield 2
        raise ValueError("row 3 is broken")

    got = []
    with pytest.raises(ValueError, match="row 3 is broken"):
        for n in read_ahead(items()):
            got.append(n)
    assert got == [1, 2]


def test_read_ahead_stops_the_thread_when_the_caller_stops():
    closed = threading.Event()

    def items():
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    for n in read_ahead(items()):
        if n == 5:
            break
    assert closed.is_set(), "the source was closed"
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_insert_new_takes_keys_from_the_sequence_under_concurrency(world):
    """Two connections inserting at once never get the same keys."""
    errors = []
    barrier = threading.Barrier(2)

    def worker(prefix: str) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                insert_new(
                    Order,
                    [
                        build(
                            Order,
                            code=f"{prefix}{n}",
                            channel_id=world.channel.pk,
                            channel_order_id=f"{prefix}{n}",
                            payment_method="COD",
                            ship_pincode="560001",
                            order_date=timezone.now(),
                        )
                        for n in range(500)
                    ],
                )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(p,)) for p in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Order.objects.filter(code__regex=r"^[AB][0-9]+$").count() == 1000
