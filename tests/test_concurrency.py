"""Competing operations in parallel threads on PostgreSQL: nothing is allocated, invoiced or
dispatched twice, invoice numbers stay gap-free, and nothing deadlocks.

Each thread has its own database connection (Django's are per thread) and closes it at the
end; a barrier starts them together. The tests commit for real (`transaction=True`), so they
set up the tenant and default sequences the migration made, which the flush between
transactional tests removes.
"""

from __future__ import annotations

import importlib
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.apps import apps
from django.db import connection

from inventory.models import Inventory
from orders.models import (
    Invoice,
    ManifestStatus,
    Order,
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    Picklist,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from orders.services import (
    LineInput,
    OrderInput,
    allocate_units,
    manifest_close,
    order_create,
    orders_create,
    picklist_create,
    picklist_receive,
    shipments_force_dispatch,
    shipments_invoice,
)
from uniware.core.fsm import IllegalTransition
from uniware.core.models import Sequence, StateChange

from .factories import make_world
from .test_fulfilment import to_manifested

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TIMEOUT = 60


@pytest.fixture
def world(transactional_db):
    defaults = importlib.import_module("uniware.core.migrations.0002_defaults")
    defaults.create_defaults(apps, None)
    return make_world(stock=10)


def in_parallel(n: int, work: Callable[[int], object]) -> list[tuple[str, object]]:
    """Run work(0..n-1) in n threads started together; ("ok", result) or ("error", exc)."""
    barrier = threading.Barrier(n)
    results: list[tuple[str, object]] = [("error", "did not finish")] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            results[i] = ("ok", work(i))
        except Exception as exc:  # reported to the test, which decides
            results[i] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hangs: deadlock or lock wait"
    return results


def errors(results) -> list[object]:
    return [r for kind, r in results if kind == "error"]


def stock(world) -> tuple[int, int]:
    row = Inventory.objects.get(pk=world.inventory.pk)
    return row.quantity, row.blocked_quantity


def new_orders(world, n: int, quantity: int = 1, prefix: str = "C") -> list[Order]:
    return orders_create(
        [
            OrderInput(
                channel=world.channel,
                channel_order_id=f"{prefix}-{k}",
                ship_pincode="560001",
                lines=[LineInput("L1", "TSHIRT", quantity, "100")],
            )
            for k in range(n)
        ],
        allocate=False,
    )


def picked_shipments(world, n: int, per_picklist: int = 5) -> list[Shipment]:
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=n)
    orders = new_orders(world, n)
    allocate_units(order_ids=[o.pk for o in orders])
    shipments = list(Shipment.objects.order_by("pk"))
    assert len(shipments) == n
    for start in range(0, n, per_picklist):
        group = shipments[start : start + per_picklist]
        outcome = picklist_create([s.pk for s in group], destination="INVOICING")
        assert outcome.ok
        assert picklist_receive([p.pk for p in outcome.created]).ok
    return shipments


# --- (a) scarce stock --------------------------------------------------------------------


def test_scarce_stock_is_never_allocated_twice(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=5)
    orders = new_orders(world, 12)
    results = in_parallel(12, lambda i: allocate_units(order_ids=[orders[i].pk]))
    assert errors(results) == []
    statuses = Counter(OrderItem.objects.values_list("status", flat=True))
    assert statuses == {OrderItemStatus.FULFILLABLE: 5, OrderItemStatus.UNFULFILLABLE: 7}
    assert stock(world) == (5, 5)
    assert (
        OrderItem.objects.filter(
            status=OrderItemStatus.FULFILLABLE, inventory=world.inventory
        ).count()
        == 5
    )
    assert Shipment.objects.count() == 5


def test_concurrent_order_creation_with_allocation(world):
    """Orders arriving at once (e.g. two sync workers) compete for 10 units, 3 each."""
    results = in_parallel(
        6,
        lambda i: order_create(
            OrderInput(
                channel=world.channel,
                channel_order_id=f"P-{i}",
                ship_pincode="560001",
                lines=[LineInput("L1", "TSHIRT", 3)],
            )
        ),
    )
    assert errors(results) == []
    assert Counter(OrderItem.objects.values_list("status", flat=True)) == {
        OrderItemStatus.FULFILLABLE: 10,
        OrderItemStatus.UNFULFILLABLE: 8,
    }
    assert stock(world) == (10, 10)
    codes = list(Shipment.objects.values_list("code", flat=True))
    assert len(codes) == len(set(codes)), "shipment numbers are unique"


# --- (b) the same order twice ------------------------------------------------------------


def test_same_order_allocated_by_two_threads_is_allocated_once(world):
    [order] = new_orders(world, 1, quantity=3)
    results = in_parallel(2, lambda i: allocate_units(order_ids=[order.pk]))
    assert errors(results) == []
    assert sorted(len(r.fulfillable) for _, r in results) == [0, 3]
    assert list(order.items.values_list("status", flat=True)) == [OrderItemStatus.FULFILLABLE] * 3
    assert stock(world) == (10, 3)
    assert Shipment.objects.filter(order=order).count() == 1
    assert StateChange.objects.filter(order=order, transition="allocate").count() == 3


# --- (c) invoice numbers -----------------------------------------------------------------


def test_concurrent_invoicing_gives_gap_free_unique_numbers(world):
    shipments = picked_shipments(world, 30)
    ids = [s.pk for s in shipments]
    # five threads over overlapping slices: every shipment is asked for at least twice
    slices = [ids[(k * 6) % 30 :][:12] + ids[: max(0, (k * 6) + 12 - 30)] for k in range(5)]
    assert set().union(*map(set, slices)) == set(ids)
    results = in_parallel(5, lambda i: shipments_invoice(slices[i], actor=f"packer{i}"))
    assert errors(results) == []
    done = [s.pk for _, outcome in results for s in outcome.done]
    assert sorted(done) == sorted(ids), "each shipment invoiced by exactly one thread"
    for _, outcome in results:
        assert all("is PACKED: cannot pack" in why for _, why in outcome.failed)
    codes = sorted(Invoice.objects.values_list("code", flat=True))
    assert codes == [f"INV-WH1-{n:06d}" for n in range(1, 31)]
    assert Counter(Invoice.objects.values_list("shipment_id", flat=True)) == Counter(ids)
    assert Sequence.objects.get(name="INVOICE").next_value == 31
    assert set(Shipment.objects.values_list("status", flat=True)) == {ShipmentStatus.PACKED}
    assert set(Picklist.objects.values_list("status", flat=True)) == {PicklistStatus.CLOSED}


# --- (d) manifest close ------------------------------------------------------------------


def test_manifest_closed_by_two_threads_dispatches_once(world):
    orders = [world.order(f"M-{k}", quantity=2) for k in range(3)]
    shipments = [Shipment.objects.get(order=o) for o in orders]
    manifest = to_manifested(world, shipments)
    assert stock(world) == (10, 6)
    results = in_parallel(2, lambda i: manifest_close(manifest, actor=f"lead{i}"))
    ok = [r for kind, r in results if kind == "ok"]
    failed = errors(results)
    assert len(ok) == 1 and len(ok[0].done) == 3
    assert len(failed) == 1 and isinstance(failed[0], IllegalTransition)
    assert f"Manifest {manifest.code} is CLOSED: cannot close" in str(failed[0])
    assert stock(world) == (4, 0), "stock consumed once"
    assert set(Shipment.objects.values_list("status", flat=True)) == {ShipmentStatus.DISPATCHED}
    assert StateChange.objects.filter(transition="dispatch").count() == 3 + 6
    assert type(manifest).objects.get(pk=manifest.pk).status == ManifestStatus.CLOSED
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.COMPLETE}


# --- (e) force dispatch ------------------------------------------------------------------


def test_force_dispatch_by_two_threads_dispatches_once(world):
    order = world.order("F-1", quantity=2)
    shipment = Shipment.objects.get(order=order)
    results = in_parallel(2, lambda i: shipments_force_dispatch([shipment.pk], actor=f"lead{i}"))
    assert errors(results) == []
    outcomes = [r for _, r in results]
    assert sorted(len(o.done) for o in outcomes) == [0, 1]
    [refused] = [o for o in outcomes if not o.done]
    assert "is DISPATCHED: cannot force dispatch" in refused.failed[0][1]
    assert stock(world) == (8, 0)
    assert Invoice.objects.filter(shipment=shipment).count() == 1
    assert Sequence.objects.get(name="INVOICE").next_value == 2
    assert StateChange.objects.filter(transition="force_dispatch").count() == 1


# --- mixed: dispatch and allocation on the same stock row --------------------------------


def test_allocation_while_a_manifest_closes_on_the_same_stock(world):
    shipped = [world.order(f"D-{k}", quantity=2) for k in range(2)]
    manifest = to_manifested(world, [Shipment.objects.get(order=o) for o in shipped])
    waiting = new_orders(world, 8, prefix="W")
    assert stock(world) == (10, 4)

    def work(i: int):
        if i == 0:
            return manifest_close(manifest)
        return allocate_units(order_ids=[o.pk for o in waiting[(i - 1) * 2 : i * 2]])

    results = in_parallel(5, work)
    assert errors(results) == []
    # 4 units left the shelf; 6 available for the 8 waiting units
    assert stock(world) == (6, 6)
    assert Counter(
        OrderItem.objects.filter(order__in=waiting).values_list("status", flat=True)
    ) == {OrderItemStatus.FULFILLABLE: 6, OrderItemStatus.UNFULFILLABLE: 2}


def test_force_dispatch_while_allocating_on_the_same_stock(world):
    """Force dispatch (stock rows, then the INVOICE sequence) and allocation (stock rows, then
    the SHIPMENT sequence) on one stock row: no deadlock, exact figures."""
    dispatching = [Shipment.objects.get(order=world.order(f"D-{k}")) for k in range(4)]
    waiting = new_orders(world, 8, prefix="W")
    assert stock(world) == (10, 4)

    def work(i: int):
        if i < 2:
            return shipments_force_dispatch([s.pk for s in dispatching[i * 2 : i * 2 + 2]])
        return allocate_units(order_ids=[o.pk for o in waiting[(i - 2) * 4 : (i - 1) * 4]])

    results = in_parallel(4, work)
    assert errors(results) == []
    assert stock(world) == (6, 6)
    assert Counter(
        OrderItem.objects.filter(order__in=waiting).values_list("status", flat=True)
    ) == {OrderItemStatus.FULFILLABLE: 6, OrderItemStatus.UNFULFILLABLE: 2}
    assert sorted(Invoice.objects.values_list("code", flat=True)) == [
        f"INV-WH1-{n:06d}" for n in range(1, 5)
    ]


# --- one open manifest per route ---------------------------------------------------------


def test_two_packers_adding_to_the_couriers_manifest_meet_on_one(world):
    """Both find no open manifest and open one: the constraint lets one win, the other adds
    to it. No second manifest, no empty one, every shipment on the winner."""
    from orders.models import Manifest
    from orders.services import shipments_generate_label, shipments_manifest

    shipments = picked_shipments(world, 6, per_picklist=6)
    assert shipments_invoice([s.pk for s in shipments]).ok
    assert shipments_generate_label([s.pk for s in shipments]).ok
    halves = [[s.pk for s in shipments[:3]], [s.pk for s in shipments[3:]]]
    results = in_parallel(2, lambda i: shipments_manifest(halves[i], actor="test"))
    assert errors(results) == []
    assert all(outcome.ok for _, outcome in results)
    manifests = list(Manifest.objects.all())
    assert len(manifests) == 1
    assert Shipment.objects.filter(manifest=manifests[0]).count() == 6
    assert sum(len(outcome.created) for _, outcome in results) == 1
