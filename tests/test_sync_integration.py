"""End to end: a real Celery worker process (on Redis in CI) runs the channel tasks against the
PostgreSQL test database, talking over loopback HTTP to the channel simulator run by the test.

Covered: the seed 000 scenarios through beat's entry points, go-live gating, Amazon's rule, the
missing INVOICE sequence, faults on the channel (500, 429, timeout, garbage) ending recorded,
retried and finally correct, and two concurrent syncs of one channel ending as one.

These tests need PostgreSQL (the worker must share the database) and a broker both processes
reach; they are skipped locally without them and fail in CI (REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F

from channels import tasks
from channels.models import Channel, RunOutcome, SyncError, SyncKind, SyncRun
from channels.sync import NOT_LIVE, plan_selected
from inventory.models import Inventory
from orders.models import Invoice, Order, OrderItemStatus, ReversePickup, ShipmentStatus
from orders.services import (
    LineInput,
    OrderInput,
    order_create,
    shipments_force_dispatch,
    units_cancel,
)
from uniware.core.models import Sequence, StateChange, Tenant

from .conftest import REQUIRE_SERVICES, _skip_or_fail
from .sync_helpers import advance, channel_order, contract_path, mirror, point_at

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
pytest_plugins = ["tests.sync_fixtures"]

ROOT = Path(__file__).resolve().parent.parent


def _broker_problem() -> str:
    url = settings.CELERY_BROKER_URL
    if REQUIRE_SERVICES and not url.startswith("redis"):
        return "REDIS_URL is not set"
    if url.startswith("redis"):
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except redis.exceptions.RedisError:
            return f"the broker {url} is not reachable"
    return ""


def _purge() -> None:
    """Drop tasks an earlier, interrupted run left in the queues."""
    from uniware.celery import app

    with app.connection_for_write() as conn:
        for queue in ("sync", "default"):
            with contextlib.suppress(Exception):  # a queue never declared yet
                conn.default_channel.queue_purge(queue)


@pytest.fixture
def worker(transactional_db, tmp_path_factory):
    """A worker process (prefork, two children: two tasks at once) for one test. Not shared
    between tests: the database is flushed after each, and a long-lived worker would keep
    cached content type ids that no longer exist."""
    if connection.vendor != "postgresql":
        _skip_or_fail("the worker process needs a shared database: set DATABASE_URL=postgres://...")
    problem = _broker_problem()
    if problem:
        _skip_or_fail(problem)
    _purge()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "uniware",
            "worker",
            "-Q",
            "sync,default",
            "-c",
            "2",
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log_path
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def wait_for(predicate, worker, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker.poll() is not None:
            break
        time.sleep(0.2)
    log = worker.log_path.read_text()[-4000:]
    raise AssertionError(f"timed out waiting (worker exit code {worker.poll()}):\n{log}")


def finished_runs(kind: str, n: int, worker, **filters) -> list[SyncRun]:
    """Wait until `n` runs of `kind` have finished; return them, oldest first."""

    def done():
        runs = list(
            SyncRun.objects.filter(kind=kind, **filters)
            .exclude(outcome__in=[RunOutcome.QUEUED, RunOutcome.RUNNING])
            .order_by("pk")
        )
        return runs if len(runs) >= n else None

    return wait_for(done, worker)


def go_live() -> None:
    tenant = Tenant.get()
    tenant.is_live = True
    tenant.save()


def units(order) -> list[str]:
    return list(order.items.order_by("pk").values_list("status", flat=True))


# --- seed 000 ---------------------------------------------------------------------------------


def test_seed_000_scenarios_through_beats_entry_points(world, sim, worker):
    channel = point_at(world.channel, sim)
    go_live()
    fulfillable = world.order("FK-1", 2)  # CREATED shipment: invoiced, dispatched
    packed = world.order("FK-2", 1)  # further along: dispatched as by force dispatch
    advance(packed.shipments.get(), "PACKED")
    cancelled = world.order("FK-3", 1)  # cancelled on the channel
    conflict = order_create(  # we cancelled one line, the channel says both dispatched
        OrderInput(
            channel=channel,
            channel_order_id="FK-4",
            ship_pincode="560001",
            lines=[LineInput("FK-4-L1", "TSHIRT", 1), LineInput("FK-4-L2", "TSHIRT", 1)],
        )
    )
    cancelled_here = conflict.items.get(channel_order_item_id="FK-4-L1")
    units_cancel([cancelled_here.pk], reason="customer called")
    in_transit = world.order("FK-5", 1)  # delivered on the channel
    shipments_force_dispatch([in_transit.shipments.get().pk])
    returning = world.order("FK-6", 1)  # the customer asks for a return
    shipments_force_dispatch([returning.shipments.get().pk])
    Inventory.objects.filter(pk=world.inventory.pk).update(quantity=F("blocked_quantity"))
    unfulfillable = world.order("FK-7", 2)  # no stock left: a shipment is made at dispatch
    assert units(unfulfillable) == [OrderItemStatus.UNFULFILLABLE] * 2
    before = Inventory.objects.get(pk=world.inventory.pk)
    assert (before.quantity, before.blocked_quantity) == (5, 5)
    for order, status in [
        (fulfillable, "DISPATCHED"),
        (packed, "DISPATCHED"),
        (cancelled, "CANCELLED"),
        (conflict, "DISPATCHED"),
        (in_transit, "DELIVERED"),
        (returning, "RETURN_REQUESTED"),
        (unfulfillable, "DISPATCHED"),
    ]:
        mirror(sim, order, status=status)

    tasks.sync_status.delay()  # what beat sends: one task per channel is queued
    (status_run,) = finished_runs(SyncKind.STATUS, 1, worker)
    tasks.sync_deliveries.delay()
    (delivery_run,) = finished_runs(SyncKind.DELIVERY, 1, worker)
    tasks.sync_returns.delay()
    (returns_run,) = finished_runs(SyncKind.RETURNS, 1, worker)

    assert (status_run.outcome, status_run.channel, status_run.trigger) == (
        RunOutcome.PARTIAL,
        channel,
        "SCHEDULE",
    )
    assert (status_run.seen, status_run.changed, status_run.failed) == (5, 4, 1)
    assert units(fulfillable) == [OrderItemStatus.DISPATCHED] * 2
    assert packed.shipments.get().status == ShipmentStatus.DISPATCHED
    assert Invoice.objects.filter(shipment__order=packed).count() == 1
    assert units(cancelled) == [OrderItemStatus.CANCELLED]
    assert units(conflict) == [OrderItemStatus.CANCELLED, OrderItemStatus.DISPATCHED]
    assert units(unfulfillable) == [OrderItemStatus.DISPATCHED] * 2
    assert unfulfillable.shipments.get().status == ShipmentStatus.DISPATCHED
    error = SyncError.objects.get(run=status_run)
    assert (error.order, error.kind) == (conflict, "CONFLICT")
    # the daily run follows the shipments in transit: one delivered, one asked back; the
    # conflict is still there (and still recorded) until staff settle it
    assert (delivery_run.seen, delivery_run.changed, delivery_run.failed) == (6, 2, 1)
    assert SyncError.objects.get(run=delivery_run).order == conflict
    assert in_transit.shipments.get().status == ShipmentStatus.DELIVERED
    assert ReversePickup.objects.filter(order=returning).count() == 1
    assert (returns_run.seen, returns_run.changed, returns_run.failed) == (6, 0, 1)
    row = Inventory.objects.get(pk=world.inventory.pk)
    # FK-1's two, FK-2's and FK-4's one left the shelf; FK-3's block was released
    assert (row.quantity, row.blocked_quantity) == (1, 0)

    # a manual sync of every order afterwards changes nothing
    changes = StateChange.objects.count()
    (run,) = plan_selected(Order.objects.values_list("pk", flat=True))
    tasks.sync_selected_orders.delay(run_id=run.pk)
    (again,) = finished_runs(SyncKind.SELECTED, 1, worker)
    assert (again.seen, again.changed, StateChange.objects.count()) == (7, 0, changes)


@pytest.mark.dialects()
def test_go_live_gating_and_order_pull_before_go_live(world, sim, worker, dialect):
    channel = point_at(world.channel, sim, dialect=dialect)
    sim.store.put_orders("FLIPKART", [channel_order("OD-1", [("OD-1-1", "TSHIRT", 2)])])

    tasks.sync_status.delay()
    tasks.pull_orders.delay()
    (refused,) = finished_runs(SyncKind.STATUS, 1, worker)
    (pulled,) = finished_runs(SyncKind.ORDER_PULL, 1, worker)

    assert (refused.outcome, refused.message, refused.channel) == (
        RunOutcome.REFUSED,
        NOT_LIVE,
        None,
    )
    assert (pulled.outcome, pulled.changed, pulled.channel) == (RunOutcome.SUCCESS, 1, channel)
    order = Order.objects.get(channel_order_id="OD-1")
    assert units(order) == [OrderItemStatus.FULFILLABLE] * 2


@pytest.mark.dialects("contract", "amazon")  # Amazon's rule: the contract's and Amazon's API
def test_amazon_and_the_missing_invoice_sequence(world, sim, worker, dialect):
    amazon = Channel(code="AMAZON", name="Amazon", channel_type="AMAZON")
    amazon.apply_preset()
    amazon.save()
    point_at(amazon, sim, dialect=dialect)  # the contract's AMAZON, or Amazon's own API
    world.channel = amazon
    go_live()
    seller_ships = world.order("AMZ-1", 1)
    amazon_ships = world.order("AMZ-2", 1, third_party_shipping=True)
    for order in (seller_ships, amazon_ships):
        mirror(sim, order, status="DISPATCHED")
    Sequence.objects.filter(name="INVOICE").delete()

    tasks.sync_status.delay(channel_id=amazon.pk)
    (first,) = finished_runs(SyncKind.STATUS, 1, worker)

    assert (first.outcome, first.seen, first.failed) == (RunOutcome.PARTIAL, 1, 1)
    assert SyncError.objects.get(run=first).message == (
        "Sequence INVOICE is not defined for facility WH1"
    )
    assert units(amazon_ships) == [OrderItemStatus.FULFILLABLE] and not Invoice.objects.exists()

    Sequence.objects.create(name="INVOICE", facility=world.facility, prefix="INV-")
    tasks.sync_status.delay(channel_id=amazon.pk)
    second = finished_runs(SyncKind.STATUS, 2, worker)[-1]
    assert (second.outcome, second.seen, second.changed) == (RunOutcome.SUCCESS, 1, 1)
    assert units(amazon_ships) == [OrderItemStatus.DISPATCHED]
    assert units(seller_ships) == [OrderItemStatus.FULFILLABLE]  # Amazon: only the orders it ships


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.dialects()
def test_faults_are_retried_recorded_and_end_correct(world, sim, worker, dialect):
    channel = point_at(
        world.channel, sim, dialect=dialect, request_timeout=1.0, status_batch_size=2
    )
    go_live()
    orders = [world.order(f"FK-{n}", 1) for n in range(6)]
    for order in orders:
        mirror(sim, order, status="DISPATCHED")
    store = sim.store
    # requests to /orders: 500, 500, 429, too slow (timeout), ok, ok, garbage
    store.add_fault({"kind": "error", "status": 500, "path": "/orders", "count": 2})
    store.add_fault({"kind": "rate_limit", "retryAfter": 1, "path": "/orders", "count": 1})
    store.add_fault({"kind": "slow", "delay": 2.5, "path": "/orders", "after": 3, "count": 1})
    garbage = {"kind": "garbage", "garbage": "text", "path": "/orders", "after": 3, "count": 1}
    store.add_fault(garbage)

    started = time.monotonic()
    tasks.sync_status.delay(channel_id=channel.pk)
    (first,) = finished_runs(SyncKind.STATUS, 1, worker)

    # 500, 500, 429 and the timeout were retried inside the run; the garbage reply failed
    # its two orders, recorded with the reason, and the run says so
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert (first.outcome, first.seen, first.changed, first.failed) == (RunOutcome.PARTIAL, 6, 4, 2)
    assert first.retries == 4
    assert "4 request(s) retried (HTTP 500, HTTP 500, HTTP 429, timeout after 1 s)" in first.message
    errors = list(SyncError.objects.filter(run=first).values_list("kind", "message"))
    assert len(errors) == 2 and {kind for kind, _ in errors} == {"CHANNEL"}
    assert "malformed reply, not JSON: '<html><body>Service busy" in errors[0][1]
    assert "malformed reply, not JSON" in first.message
    assert channel.sync_cursors.get(kind=SyncKind.STATUS).synced_up_to is None  # not advanced

    tasks.sync_status.delay(channel_id=channel.pk)
    second = finished_runs(SyncKind.STATUS, 2, worker)[-1]
    assert (second.outcome, second.seen, second.changed) == (RunOutcome.SUCCESS, 2, 2)
    assert all(units(o) == [OrderItemStatus.DISPATCHED] for o in orders)
    assert Invoice.objects.count() == 6
    statuses = [r["status"] for r in store.requests("FLIPKART") if contract_path(r) == "/orders"]
    assert statuses.count(500) == 2 and statuses.count(429) == 1


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.dialects()
def test_two_concurrent_syncs_of_one_channel_end_as_one(world, sim, worker, dialect):
    channel = point_at(world.channel, sim, dialect=dialect)
    go_live()
    orders = [world.order(f"FK-{n}", 1) for n in range(4)]
    for order in orders:
        mirror(sim, order, status="DISPATCHED")
    # the first run holds its lease while the channel is slow to answer
    sim.store.add_fault({"kind": "slow", "delay": 2.0, "path": "/orders", "count": 1})

    tasks.sync_status.delay()  # a duplicated beat sends the same task twice
    tasks.sync_status.delay()
    runs = finished_runs(SyncKind.STATUS, 2, worker, channel=channel)

    outcomes = sorted(r.outcome for r in runs)
    assert outcomes == [RunOutcome.REFUSED, RunOutcome.SUCCESS], [r.message for r in runs]
    refused = next(r for r in runs if r.outcome == RunOutcome.REFUSED)
    winner = next(r for r in runs if r.outcome == RunOutcome.SUCCESS)
    assert refused.message.startswith(
        "Another “Status sync: dispatched and cancelled” run of channel FLIPKART is running: "
        f"run #{winner.pk}"
    )
    assert winner.changed == 4
    assert Invoice.objects.count() == 4
    dispatches = StateChange.objects.filter(transition="dispatch_from_channel")
    assert dispatches.count() == 4  # each shipment dispatched exactly once


@pytest.mark.dialects()
def test_a_large_admin_selection_runs_on_the_worker_with_progress(world, sim, worker, dialect):
    point_at(world.channel, sim, dialect=dialect)
    go_live()
    orders = [world.order(f"FK-{n}", 1) for n in range(5)]
    for order in orders:
        mirror(sim, order, status="DISPATCHED")
    (run,) = plan_selected([o.pk for o in orders])
    assert (run.outcome, run.progress_total) == (RunOutcome.QUEUED, 5)

    tasks.sync_selected_orders.delay(run_id=run.pk)
    (done,) = finished_runs(SyncKind.SELECTED, 1, worker)

    assert (done.pk, done.outcome, done.progress_done, done.changed) == (
        run.pk,
        RunOutcome.SUCCESS,
        5,
        5,
    )
    assert [line[1] for line in done.report] == ["CHANGED"] * 5
