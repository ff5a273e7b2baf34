"""Putaways: stock comes back only when one completes, exactly once, into the shelf and
inventory type chosen; completing re-allocates waiting units; discarding writes units off.
The last tests race real transactions on PostgreSQL."""

from __future__ import annotations

import importlib
import threading

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import Inventory, Putaway, PutawayItem, PutawayStatus
from inventory.putaway import putaways_complete, putaways_discard
from orders import tasks as order_tasks
from orders.models import Order, OrderItemStatus, ShipmentStatus
from orders.services import manifest_close, units_cancel
from uniware.core.models import StateChange

from .factories import FacilityFactory, ShelfFactory, make_world
from .returns_flow import advance, fresh, return_invoice_sequence, shelf, shipment_of, stock

GOOD = ("A1", "TSHIRT", "GOOD_INVENTORY")


@pytest.fixture
def world(world):
    return_invoice_sequence(world)
    return world


def picked_putaway(
    world, quantity: int = 1, coid: str = "FK-1", stage=ShipmentStatus.PICKED
) -> Putaway:
    """A pending putaway of `quantity` units cancelled after picking (or invoicing)."""
    order = world.order(coid, quantity)
    advance(shipment_of(order), stage)
    outcome = units_cancel(list(order.items.values_list("pk", flat=True)), reason="test")
    assert outcome.ok
    return outcome.created[0]


def test_completes_into_the_shelf_each_unit_came_from_by_default(world):
    putaway = picked_putaway(world, 2)
    assert stock() == {GOOD: (8, 0)}
    outcome = putaways_complete([putaway.pk], actor="test")
    assert outcome.ok and outcome.done == [putaway]
    assert stock() == {GOOD: (10, 0)}
    putaway = fresh(putaway)
    assert putaway.status == PutawayStatus.COMPLETE and putaway.completed_at is not None
    items = list(putaway.items.all())
    assert {(i.shelf_id, i.inventory_type, i.inventory_id) for i in items} == {
        (world.shelf.pk, "GOOD_INVENTORY", world.inventory.pk)
    }
    row = StateChange.objects.get(transition="complete", object_code=putaway.code)
    assert (row.from_state, row.to_state, row.actor) == ("CREATED", "COMPLETE", "test")


def test_each_unit_can_go_to_its_own_shelf_and_type(world):
    putaway = picked_putaway(world, 3)
    first, second, third = putaway.items.order_by("pk")
    b1, dmg = shelf(world, "B1"), shelf(world, "DMG")
    outcome = putaways_complete(
        [putaway.pk],
        shelf=b1,
        placements={second.pk: (dmg, "BAD_INVENTORY"), third.pk: (None, "BAD_INVENTORY")},
    )
    assert outcome.ok
    assert stock() == {
        GOOD: (7, 0),
        ("B1", "TSHIRT", "GOOD_INVENTORY"): (1, 0),
        ("B1", "TSHIRT", "BAD_INVENTORY"): (1, 0),
        ("DMG", "TSHIRT", "BAD_INVENTORY"): (1, 0),
    }
    new_row = Inventory.objects.get(shelf=b1, inventory_type="GOOD_INVENTORY")
    assert new_row.facility == world.facility


def test_refusals_change_nothing(world):
    putaway = picked_putaway(world)
    elsewhere = ShelfFactory(facility=FacilityFactory(code="WH2", priority=2), code="X1")
    [(label, why)] = putaways_complete([putaway.pk], shelf=elsewhere).failed
    assert label == putaway.code
    assert why == "unit FLIPKART-FK-1/FK-1-L1-0: shelf WH2/X1 is not in facility WH1"
    with pytest.raises(ValidationError, match="'QC_REJECTED' is not GOOD_INVENTORY or BAD"):
        putaways_complete([putaway.pk], inventory_type="QC_REJECTED")
    PutawayItem.objects.filter(putaway=putaway).update(suggested_shelf=None)
    [(_, why)] = putaways_complete([putaway.pk]).failed
    assert why == "unit FLIPKART-FK-1/FK-1-L1-0 has no shelf it came from in WH1: choose one"
    assert fresh(putaway).status == PutawayStatus.CREATED
    assert stock() == {GOOD: (9, 0)}
    assert putaways_complete([putaway.pk], shelf=world.shelf).ok
    assert stock() == {GOOD: (10, 0)}


def test_one_refused_putaway_does_not_stop_the_others(world):
    good = picked_putaway(world, 1, "FK-1")
    bad = picked_putaway(world, 1, "FK-2")
    PutawayItem.objects.filter(putaway=bad).update(suggested_shelf=None)
    outcome = putaways_complete([good.pk, bad.pk])
    assert outcome.done == [good] and [label for label, _ in outcome.failed] == [bad.code]
    assert stock() == {GOOD: (9, 0)}


def test_discard_writes_units_off_with_a_reason(world):
    putaway = picked_putaway(world, 2, stage=ShipmentStatus.PACKED)
    with pytest.raises(ValidationError, match="Say why"):
        putaways_discard([putaway.pk], reason=" ")
    assert putaways_discard([putaway.pk], reason="water damage", actor="test").ok
    assert (fresh(putaway).status, fresh(putaway).discard_reason) == ("DISCARDED", "water damage")
    assert stock() == {GOOD: (8, 0)}
    [(_, why)] = putaways_complete([putaway.pk]).failed
    assert "is DISCARDED: cannot complete" in why
    [(_, why)] = putaways_discard([putaway.pk], reason="again").failed
    assert "is DISCARDED: cannot discard" in why


def test_completing_reallocates_units_waiting_for_the_sku(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    """The waiting units are re-allocated by a worker after the commit, not in the request
    (here the task runs in place of the worker)."""
    sent = []

    def run_now(**kwargs):
        sent.append(kwargs)
        order_tasks.reallocate_unfulfillable(**kwargs)

    monkeypatch.setattr(order_tasks.reallocate_unfulfillable, "delay", run_now)
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    putaway = picked_putaway(world, 1, "FK-1")
    waiting = world.order("FK-2", 1)
    assert waiting.items.get().status == OrderItemStatus.UNFULFILLABLE
    assert stock() == {}  # the only unit is in a tote: nothing to allocate
    with django_capture_on_commit_callbacks(execute=True):
        assert putaways_complete([putaway.pk]).ok
    assert sent == [{"sku_ids": [world.sku.pk]}]
    assert waiting.items.get().status == OrderItemStatus.FULFILLABLE
    assert stock() == {GOOD: (1, 1)}


def test_bad_stock_does_not_reallocate(world, django_capture_on_commit_callbacks):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=1)
    putaway = picked_putaway(world, 1, "FK-1")
    waiting = world.order("FK-2", 1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert putaways_complete([putaway.pk], inventory_type="BAD_INVENTORY").ok
    assert callbacks == []
    assert waiting.items.get().status == OrderItemStatus.UNFULFILLABLE
    assert stock() == {("A1", "TSHIRT", "BAD_INVENTORY"): (1, 0)}


def test_completion_queries_do_not_grow_with_units(world):
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=100)

    def complete(n: int, coid: str) -> int:
        putaway = picked_putaway(world, n, coid)
        with CaptureQueriesContext(connection) as queries:
            assert putaways_complete([putaway.pk], shelf=shelf(world, f"B-{coid}")).ok
        return len(queries)

    assert complete(2, "FK-1") == complete(20, "FK-2")


# --- Races on PostgreSQL -------------------------------------------------------------------


@pytest.fixture
def pg_world(transactional_db):
    defaults = importlib.import_module("uniware.core.migrations.0002_defaults")
    defaults.create_defaults(apps, None)
    world = make_world(stock=10)
    return_invoice_sequence(world)
    return world


def in_parallel(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "deadlock or lock wait"
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_completing_one_putaway_in_parallel_adds_stock_once(pg_world):
    putaway = picked_putaway(pg_world, 3)
    assert stock() == {GOOD: (7, 0)}
    results = in_parallel(4, lambda i: putaways_complete([putaway.pk], actor=f"t{i}"))
    done = [r for r in results if not isinstance(r, Exception) and r.done]
    assert len(done) == 1, results
    assert stock() == {GOOD: (10, 0)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancelling_the_same_units_in_parallel_puts_them_away_once(pg_world):
    order = pg_world.order("FK-1", 3)
    advance(shipment_of(order), ShipmentStatus.PACKED)
    ids = list(order.items.values_list("pk", flat=True))
    results = in_parallel(3, lambda i: units_cancel(ids, reason=f"r{i}"))
    assert sum(len(r.done) for r in results) == 3, results
    assert Putaway.objects.count() == 1 and PutawayItem.objects.count() == 3
    assert stock() == {GOOD: (7, 0)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancel_racing_manifest_close_counts_each_unit_once(pg_world):
    orders = [pg_world.order(f"FK-{k}", 1) for k in range(4)]
    advance([shipment_of(o) for o in orders], ShipmentStatus.MANIFESTED)
    manifest = fresh(shipment_of(orders[0])).manifest
    ids = [o.items.get().pk for o in orders]

    def work(i: int):
        return manifest_close(manifest) if i == 0 else units_cancel(ids[i - 1 :], reason="x")

    in_parallel(3, work)
    dispatched = sum(1 for o in orders if o.items.get().status == OrderItemStatus.DISPATCHED)
    cancelled = sum(1 for o in orders if o.items.get().status == OrderItemStatus.CANCELLED)
    assert dispatched + cancelled == 4
    assert PutawayItem.objects.count() == cancelled
    # dispatched units left at dispatch, cancelled ones at cancel (they wait on the putaway)
    assert stock() == {GOOD: (6, 0)}
    assert all(fresh(o).status in ("COMPLETE", "CANCELLED") for o in Order.objects.all())
