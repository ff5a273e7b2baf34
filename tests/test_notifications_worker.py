"""Status notifications end to end: the outbox on PostgreSQL, a real Celery worker (two
prefork processes, queue "notifications") on Redis, the channel simulator over HTTP.

These need PostgreSQL and a reachable Redis (REDIS_URL): skipped otherwise locally, failing
under REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from channels.adapters import forget_adapters
from notifications.models import Notification
from notifications.tasks import sweep
from orders.services import picklist_create
from simulator import SimulatorServer

from .conftest import _skip_or_fail
from .test_notifications import (
    JOURNEY,
    accepted,
    advance,
    connect_channel,
    journey,
    make_order,
    notifications,
    sim_order,
)

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _broker_reachable() -> bool:
    import redis

    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        return False
    return True


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def notify_worker(django_db_setup, tmp_path_factory):
    """`celery worker -Q notifications -c 2` (prefork) on the test database, for the module."""
    if connection.vendor != "postgresql":
        _skip_or_fail("the worker needs a shared database: set DATABASE_URL=postgres://...")
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        _skip_or_fail("these tests need Redis as the broker: set REDIS_URL=redis://...")
    if not _broker_reachable():
        _skip_or_fail(f"the broker {settings.CELERY_BROKER_URL} is not reachable")
    log_path = tmp_path_factory.mktemp("notify-worker") / "worker.log"
    log = log_path.open("w")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "uniware",
            "worker",
            "-Q",
            "notifications",
            "-c",
            "2",
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
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


@pytest.fixture
def sim():
    with SimulatorServer(port=0) as server:
        server.store.add_channel("FLIPKART", "user", "pass")
        yield server
    forget_adapters()


@pytest.fixture
def world():
    from uniware.core.models import Sequence

    from .factories import make_world

    world = make_world(stock=100)
    Sequence.objects.create(name="RETURN_INVOICE", facility=world.facility, prefix="CN-WH1-")
    return world


def wait_for(predicate, worker, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    log = worker.log_path.read_text()[-4000:]
    states = list(Notification.objects.values_list("pk", "event", "state", "attempts"))
    pytest.fail(f"timed out waiting for {what}; notifications {states}\nworker log:\n{log}")


def all_delivered() -> bool:
    states = set(Notification.objects.values_list("state", flat=True))
    return states == {"DELIVERED"}


def test_a_forward_journey_goes_out_through_the_worker_in_order(notify_worker, sim, world):
    connect_channel(world.channel, sim, accepts_dispatch=True, retry_base_delay=0.05)
    sim_order(sim, "FK-1", [("L1", 2), ("L2", 1)])
    order = make_order(world, "FK-1", [("L1", 2), ("L2", 1)])  # commits: the worker is kicked
    wait_for(all_delivered, notify_worker, what="CREATED")
    advance(order.shipments.get(), "DELIVERED")

    wait_for(
        lambda: all_delivered() and len(notifications()) == len(JOURNEY) + 1,
        notify_worker,
        what="the journey",
    )
    assert accepted(sim) == {("FK-1", "FK-1-L1"): journey(2), ("FK-1", "FK-1-L2"): journey(1)}
    received = sim.store.received("FLIPKART")
    assert received["duplicates"] == [] and len(received["dispatches"]) == 1
    assert {n.attempts for n in notifications()} == {1}
    keys = [r["headers"]["Idempotency-Key"] for r in received["notifications"]]
    assert keys == [n.idempotency_key for n in notifications(kind="STATUS")]


def test_faults_and_partial_failures_end_with_each_status_delivered_once_in_order(
    notify_worker, sim, world
):
    connect_channel(world.channel, sim, retry_base_delay=0.05)
    lines = [("L1", 2), ("L2", 1)]
    coids = [f"FK-{n}" for n in range(1, 7)]
    for coid in coids:
        sim_order(sim, coid, lines)
    for rule in (
        # transient: 5xx, rate limits, dropped connections, replies lost after the channel
        # took the notification (FK-5, FK-6 only: a lost PARTIAL_SUCCESS reply cannot be
        # told from a lost SUCCESS, so those orders get no item failures)
        {"kind": "error", "status": 503, "probability": 0.2, "seed": 11, "path": "/order/FK-[1-4]"},
        {"kind": "rate_limit", "retryAfter": 0, "probability": 0.1, "seed": 12},
        {"kind": "disconnect", "probability": 0.1, "seed": 13, "path": "/order/*"},
        {"kind": "error", "status": 500, "apply": "after", "probability": 0.3, "seed": 14,
         "path": "/order/FK-[56]"},
        # refusals, retried a bounded number of times: item failures and garbage replies
        {"kind": "fail_items", "probability": 0.1, "seed": 15, "path": "/order/FK-[1-4]",
         "itemIds": ["FK-1-L1", "FK-2-L2", "FK-3-L1", "FK-4-L1"]},
        {"kind": "garbage", "garbage": "truncated", "probability": 0.03, "seed": 16,
         "path": "/order/FK-[1-4]"},
    ):  # fmt: skip
        sim.store.add_fault(rule)

    orders = [make_order(world, coid, lines) for coid in coids]
    advance([o.shipments.get() for o in orders], "DELIVERED")

    wait_for(
        lambda: all_delivered() and len(notifications()) == len(JOURNEY) * len(coids),
        notify_worker,
        timeout=120,
        what="every notification delivered",
    )
    expected = {}
    for coid in coids:
        expected[(coid, f"{coid}-L1")] = journey(2)
        expected[(coid, f"{coid}-L2")] = journey(1)
    assert accepted(sim) == expected
    faults = {f["kind"]: f["applied"] for f in sim.store.fault_list()}
    assert all(faults.values()), faults  # every kind of fault did happen
    attempts = sum(n.attempts for n in notifications())
    assert attempts > len(notifications())  # retries happened, and each one is on record
    assert attempts == sum(n.attempt_log.count() for n in notifications())
    assert sim.store.received("FLIPKART")["duplicates"]  # lost replies, dropped by key


def test_a_rolled_back_transaction_sends_nothing(notify_worker, sim, world):
    connect_channel(world.channel, sim, retry_base_delay=0.05)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    wait_for(all_delivered, notify_worker, what="CREATED")
    shipment = order.shipments.get()

    with pytest.raises(RuntimeError), transaction.atomic():
        picklist_create([shipment.pk], destination="INVOICING", actor="test")
        assert len(notifications()) == 2
        raise RuntimeError("rolled back")
    time.sleep(2)  # the worker had time to send anything it was told about
    assert len(notifications()) == 1
    assert accepted(sim) == {("FK-1", "FK-1-L1"): ["CREATED"]}

    picklist_create([shipment.pk], destination="INVOICING", actor="test")  # committed
    wait_for(lambda: all_delivered() and len(notifications()) == 2, notify_worker, what="PICKING")
    assert accepted(sim) == {("FK-1", "FK-1-L1"): ["CREATED", "PICKING"]}


BROKER_DOWN_SCRIPT = """
import django
django.setup()
from orders.services import picklist_create
assert picklist_create([{shipment}], destination="INVOICING", actor="broker-down").ok
print("changed")
"""


def test_a_change_made_while_the_broker_is_down_goes_out_when_it_is_back(notify_worker, sim, world):
    connect_channel(world.channel, sim, retry_base_delay=0.05)
    sim_order(sim, "FK-1")
    order = make_order(world, "FK-1")
    wait_for(all_delivered, notify_worker, what="CREATED")
    shipment = order.shipments.get()

    # another process makes the change while its broker is unreachable (a closed port)
    result = subprocess.run(
        [sys.executable, "-c", BROKER_DOWN_SCRIPT.format(shipment=shipment.pk)],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "uniware.settings",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "changed" in result.stdout, result.stderr[-3000:]
    assert "could not queue notification delivery" in result.stderr  # logged, not raised
    created, picking = notifications()
    time.sleep(2)
    assert Notification.objects.get(pk=picking.pk).state == "PENDING"  # committed, not sent
    assert accepted(sim) == {("FK-1", "FK-1-L1"): ["CREATED"]}

    sweep.delay()  # the periodic sweeper, through the broker that is up
    wait_for(all_delivered, notify_worker, what="the sweeper")
    assert accepted(sim) == {("FK-1", "FK-1-L1"): ["CREATED", "PICKING"]}
