"""Crashes with a real worker: SIGKILL of the worker's process group at chosen points, its
database connection terminated, the broker stopped; then recovery (a fresh worker, leases and
heartbeats expiring, the reapers) and the invariants: no unit dispatched twice, no order
created twice, every notification accepted by the channel exactly once and in order, an
import complete or visibly FAILED with no half order, every run in a final state, stock
equal to the ledger (no new drift).

Kill points are chosen deterministically: a named pause point in the worker
(`uniware.core.faultpoints`, env UNIWARE_PAUSE_AT) that writes a marker file and sleeps, or a
simulator request held by a `slow` fault that the test sees arrive. PostgreSQL and Redis
(REDIS_URL) are required; the Redis stopped is one this module starts on another port.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections import Counter

import pytest
from django.db import connection

from channels.models import RunOutcome, SyncRun
from channels.sync.runs import reap_runs
from imports.models import ImportJob, JobStatus
from imports.recovery import reap_jobs
from inventory.ledger import stock_drift
from notifications.models import Notification
from orders.models import Order, OrderItem
from uniware.core.models import StateChange

from .importing import csv_bytes, order_row
from .sync_helpers import channel_order, mirror, point_at
from .test_notifications import accepted, connect_channel, make_order, sim_order
from .workers import celery_worker, kill_worker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
pytest_plugins = ["tests.sync_fixtures"]

FAST = {  # what the worker processes use: short leases and heartbeats, so recovery is quick
    "DJANGO_SETTINGS_MODULE": "tests.crash_settings",
    "SYNC_LEASE_SECONDS": "4",
    "SYNC_STALE_SECONDS": "4",
    "IMPORTS_STALE_SECONDS": "3",
    "IMPORTS_MAX_ATTEMPTS": "2",
    "CELERY_TASK_ALWAYS_EAGER": "0",
}


@pytest.fixture
def fast(settings):
    """The same short limits in this process (it runs the reapers, as beat would)."""
    settings.SYNC_LEASE_SECONDS = settings.SYNC_STALE_SECONDS = 4
    settings.IMPORTS_STALE_SECONDS, settings.IMPORTS_MAX_ATTEMPTS = 3, 2
    return settings


@pytest.fixture
def start(transactional_db, require_services, tmp_path, fast):
    """Start a worker on `queues`: `start(queues, pause="point@n")` (a context manager)."""
    _purge()
    marker = tmp_path / "paused"

    def starter(queues: str, pause: str = "", **env):
        extra = {**FAST, **env}
        if pause:
            marker.unlink(missing_ok=True)
            extra |= {"UNIWARE_PAUSE_AT": pause, "UNIWARE_PAUSE_FILE": str(marker)}
        return celery_worker(queues, tmp_path / "worker.log", require_services, env=extra)

    starter.marker = marker
    return starter


def _purge() -> None:
    from uniware.celery import app

    with app.connection_for_write() as conn:
        for queue in ("sync", "imports", "notifications", "default"):
            with contextlib.suppress(Exception):  # a queue never declared yet
                conn.default_channel.queue_purge(queue)


def wait_for(predicate, what: str, worker=None, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    log = worker.log_path.read_text()[-3000:] if worker is not None else ""
    raise AssertionError(f"timed out waiting for {what}\n{log}")


def no_new_drift(before: dict) -> None:
    """Stock equals the ledger: no row drifts more than before the fault (the world's
    opening stock is written without a ledger row)."""
    now = {row.inventory_id: (row.stored, row.ledger) for row in stock_drift()}
    drift = {k: (s[0] - ledger[0], s[1] - ledger[1]) for k, (s, ledger) in now.items()}
    assert drift == before


def drift_now() -> dict:
    return {
        r.inventory_id: (r.stored[0] - r.ledger[0], r.stored[1] - r.ledger[1])
        for r in stock_drift()
    }


def dispatched_twice() -> list[int]:
    per_unit = Counter(
        StateChange.objects.filter(to_state="DISPATCHED")
        .filter(object_id__in=OrderItem.objects.values("pk"))
        .values_list("object_id", flat=True)
    )
    return [pk for pk, n in per_unit.items() if n > 1]


def orders_twice() -> list:
    codes = Counter(Order.objects.values_list("channel_id", "channel_order_id"))
    return [code for code, n in codes.items() if n > 1]


# --- imports ----------------------------------------------------------------------------------


def _import_job(world, rows: int) -> ImportJob:
    from django.core.files.base import ContentFile

    data = csv_bytes([order_row(f"IM-{n}", sku=world.sku.code) for n in range(rows)])
    job = ImportJob(kind="ORDERS", original_name="orders.csv", size=len(data))
    job.file.save("orders.csv", ContentFile(data), save=False)
    job.status, job.new_count, job.total_rows = JobStatus.QUEUED, rows, rows
    job.save()
    return job


def test_an_import_killed_mid_way_is_resumed_by_the_reaper_and_completes(start, world):
    from imports.tasks import run_import

    world.inventory.__class__.objects.filter(pk=world.inventory.pk).update(quantity=6000)
    before = drift_now()
    job = _import_job(world, 5000)
    with start("imports", pause="import_batch@1") as worker:
        run_import.delay(job.pk)
        wait_for(start.marker.exists, "the worker to reach the pause", worker)
        kill_worker(worker)  # after the first batches (>= 2,000 rows) committed
    job.refresh_from_db()
    part = Order.objects.count()
    assert job.status == JobStatus.RUNNING and 0 < part < 5000
    time.sleep(3.5)  # IMPORTS_STALE_SECONDS: the heartbeat stops
    with start("imports") as worker:
        assert reap_jobs()["requeued"] == [job.pk]
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == "DONE", "the import", worker)
    job.refresh_from_db()
    assert (job.attempts, job.created_count, job.skipped_count) == (2, 5000 - part, part)
    assert Order.objects.count() == 5000 and orders_twice() == []
    assert not Order.objects.filter(items__isnull=True).exists()  # no half order
    no_new_drift(before)


def test_an_import_that_kills_every_worker_ends_visibly_failed(start, world):
    from imports.tasks import run_import

    job = _import_job(world, 2500)
    for attempt in (1, 2):
        with start("imports", pause="import_batch@1") as worker:
            if attempt == 1:
                run_import.delay(job.pk)
            else:
                assert reap_jobs()["requeued"] == [job.pk]
            wait_for(start.marker.exists, f"attempt {attempt} to reach the pause", worker)
            kill_worker(worker)
        time.sleep(3.5)
    assert reap_jobs()["failed"] == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "stopped 2 times" in job.message
    assert orders_twice() == []
    assert not Order.objects.filter(items__isnull=True).exists()


def test_an_import_whose_database_connection_is_terminated_resumes(start, world):
    from imports.tasks import run_import

    world.inventory.__class__.objects.filter(pk=world.inventory.pk).update(quantity=6000)
    job = _import_job(world, 5000)
    with start("imports", pause="import_batch@1", UNIWARE_PAUSE_SECONDS="3") as worker:
        run_import.delay(job.pk)
        wait_for(start.marker.exists, "the worker to reach the pause", worker)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0]
        # the worker's next query fails; the job is left RUNNING for the reaper, not FAILED
        wait_for(
            lambda: "database lost" in worker.log_path.read_text(), "the worker to notice", worker
        )
        time.sleep(3.5)
        assert reap_jobs()["requeued"] == [job.pk]
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == "DONE", "the import", worker)
    assert Order.objects.count() == 5000 and orders_twice() == []


# --- channel syncs ----------------------------------------------------------------------------


def _live():
    from uniware.core.models import Tenant

    tenant = Tenant.get()
    tenant.is_live = True
    tenant.save()


def test_a_status_sync_killed_mid_request_is_abandoned_then_the_next_run_finishes(
    start, world, sim
):
    from channels.tasks import sync_status

    channel = point_at(world.channel, sim, request_timeout=30.0)
    _live()
    world.inventory.__class__.objects.filter(pk=world.inventory.pk).update(quantity=50)
    orders = [world.order(f"FK-{n}", 1) for n in range(20)]
    for order in orders:
        mirror(sim, order, status="DISPATCHED")
    before = drift_now()
    sim.store.add_fault({"kind": "slow", "delay": 60, "path": "/orders", "count": 1})
    with start("sync") as worker:
        sync_status.delay(channel_id=channel.pk)
        wait_for(lambda: sim.store.fault_list()[0]["applied"], "the held request", worker)
        kill_worker(worker)
    run = SyncRun.objects.get()
    assert run.outcome == RunOutcome.RUNNING
    time.sleep(4.5)  # SYNC_LEASE_SECONDS
    assert reap_runs() == [run.pk]
    run.refresh_from_db()
    assert run.outcome == RunOutcome.ABANDONED and "lease expired" in run.message
    with start("sync") as worker:
        sync_status.delay(channel_id=channel.pk)
        wait_for(
            lambda: SyncRun.objects.filter(outcome=RunOutcome.SUCCESS).exists(), "a run", worker
        )
    assert set(OrderItem.objects.values_list("status", flat=True)) == {"DISPATCHED"}
    assert dispatched_twice() == []
    assert not SyncRun.objects.filter(outcome__in=["QUEUED", "RUNNING"]).exists()
    no_new_drift(before)


def test_a_manual_sync_killed_mid_request_is_abandoned_for_lack_of_progress(start, world, sim):
    from channels.admin import queue_run
    from channels.sync import plan_selected

    point_at(world.channel, sim, request_timeout=30.0)
    _live()
    order = world.order("FK-1", 1)
    mirror(sim, order, status="DISPATCHED")
    sim.store.add_fault({"kind": "slow", "delay": 60, "path": "/orders", "count": 1})
    with start("sync") as worker:
        (run,) = plan_selected([order.pk])
        queue_run(run)
        wait_for(lambda: sim.store.fault_list()[0]["applied"], "the held request", worker)
        kill_worker(worker)
    run.refresh_from_db()
    assert run.outcome == RunOutcome.RUNNING
    time.sleep(4.5)  # SYNC_STALE_SECONDS without progress
    assert reap_runs() == [run.pk]
    run.refresh_from_db()
    assert run.outcome == RunOutcome.ABANDONED and "no progress" in run.message


def test_an_order_pull_killed_mid_way_creates_no_order_twice(start, world, sim):
    from channels.tasks import pull_orders

    channel = point_at(world.channel, sim, page_size=10, request_timeout=30.0)
    world.inventory.__class__.objects.filter(pk=world.inventory.pk).update(quantity=100)
    sim.store.put_orders(
        "FLIPKART",
        [channel_order(f"PL-{n}", [(f"PL-{n}-1", "TSHIRT", 1)]) for n in range(35)],
    )
    before = drift_now()
    # token, page 1, page 2 answered; page 3 held: the kill lands mid-pull
    sim.store.add_fault({"kind": "slow", "delay": 60, "path": "/orders", "after": 2, "count": 1})
    with start("sync") as worker:
        pull_orders.delay(channel_id=channel.pk)
        wait_for(lambda: sim.store.fault_list()[0]["applied"], "the held page", worker)
        kill_worker(worker)
    assert 0 < Order.objects.count() < 35
    time.sleep(4.5)
    assert len(reap_runs()) == 1
    with start("sync") as worker:
        pull_orders.delay(channel_id=channel.pk)
        wait_for(lambda: Order.objects.count() >= 35, "the rest of the orders", worker)
        wait_for(
            lambda: not SyncRun.objects.filter(outcome__in=["QUEUED", "RUNNING"]).exists(),
            "the run to end",
            worker,
        )
    assert Order.objects.count() == 35 and orders_twice() == []
    assert list(SyncRun.objects.order_by("pk").values_list("outcome", flat=True)) == [
        RunOutcome.ABANDONED,
        RunOutcome.SUCCESS,
    ]
    no_new_drift(before)


# --- notifications ----------------------------------------------------------------------------


def _sweep_until_delivered(worker, timeout: float = 60.0) -> None:
    from notifications.tasks import sweep

    def done():
        sweep.delay()  # what beat does every 30 s
        return set(Notification.objects.values_list("state", flat=True)) == {"DELIVERED"}

    wait_for(done, "every notification delivered", worker, timeout)


def test_delivery_killed_mid_batch_repeats_only_what_it_had_not_recorded(start, world, sim):
    """Killed right after a notification was sent and before it was recorded (the worst
    moment), in the middle of one batch of 120: the results known before were recorded as
    they came, so only the last group (at most RECORD_EVERY plus the requests in flight) goes
    out again, once, with the same Idempotency-Key; the channel accepts each exactly once."""
    from django.db import transaction

    from notifications.conf import conf
    from notifications.recording import RECORD_EVERY

    connect_channel(world.channel, sim, request_timeout=1.0, retry_base_delay=0.05)
    world.inventory.__class__.objects.filter(pk=world.inventory.pk).update(quantity=200)
    coids = [f"NT-{n}" for n in range(120)]
    for coid in coids:
        sim_order(sim, coid)
    with start("notifications", pause="notification_sent@60") as worker:
        with transaction.atomic():  # one commit, one kick: one batch of 120
            for coid in coids:
                make_order(world, coid)
        wait_for(start.marker.exists, "the worker to reach the pause", worker)
        kill_worker(worker)
    recorded = Notification.objects.filter(state="DELIVERED").count()
    assert recorded >= 60 - RECORD_EVERY - conf("SEND_THREADS")  # the old code: 0
    with start("notifications") as worker:
        _sweep_until_delivered(worker)  # after the claim (12 s) expired
    assert accepted(sim) == {(c, f"{c}-L1"): ["CREATED"] for c in coids}
    repeats = sim.store.received("FLIPKART")["duplicates"]
    assert Counter(r["idempotencyKey"] for r in repeats).most_common(1)[0][1] == 1
    print(f"\nkilled mid-delivery: {recorded} of 120 recorded, {len(repeats)} sent again")
    assert 1 <= len(repeats) <= RECORD_EVERY + conf("SEND_THREADS")


# --- the broker stopped ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_redis(tmp_path, require_services):
    """A Redis server of this test on a free port (never the shared one), with its data
    saved on shutdown (a restarted broker keeps its queues, as a production one does)."""
    binary = shutil.which("redis-server")
    if not binary:
        require_services("redis-server is not installed")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    args += ["--save", "60 1", "--appendonly", "no"]

    def up():
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(lambda: _pings(port), "redis-server to start")
        return proc

    server = {"proc": up(), "port": port, "up": up}
    yield server
    server["proc"].terminate()
    server["proc"].wait(timeout=10)


def _pings(port: int) -> bool:
    import redis

    try:
        return redis.Redis(port=port, socket_connect_timeout=0.2).ping()
    except redis.exceptions.RedisError:
        return False


def test_the_broker_stopped_for_a_while_loses_nothing(
    start, world, sim, own_redis, tmp_path, require_services
):
    from celery import Celery

    url = f"redis://127.0.0.1:{own_redis['port']}/0"
    sender = Celery("crash-test", broker=url, set_as_current=False)
    sender.conf.broker_transport_options = {"socket_connect_timeout": 0.5, "max_retries": 0}
    sender.conf.broker_connection_timeout = 0.5
    connect_channel(world.channel, sim, request_timeout=1.0, retry_base_delay=0.05)
    world.inventory.__class__.objects.filter(pk=world.inventory.pk).update(quantity=50)
    coids = [f"RD-{n}" for n in range(10)]
    for coid in coids:
        sim_order(sim, coid)
    with celery_worker(
        "notifications", tmp_path / "w.log", require_services, env=FAST, broker_url=url
    ) as worker:
        wait_for(lambda: "ready" in worker.log_path.read_text(), "the worker", worker)
        own_redis["proc"].terminate()
        own_redis["proc"].wait(timeout=10)
        for coid in coids:
            make_order(world, coid)
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 (kombu's OperationalError)
            sender.send_task("notifications.tasks.sweep", queue="notifications")
        took = time.monotonic() - started
        print(f"\npublish with the broker down gave up after {took:.3f} s")
        time.sleep(3)  # down for a while; the worker keeps trying
        own_redis["proc"] = own_redis["up"]()
        assert worker.poll() is None  # it did not give up

        def delivered():
            sender.send_task("notifications.tasks.sweep", queue="notifications")
            return set(Notification.objects.values_list("state", flat=True)) == {"DELIVERED"}

        wait_for(delivered, "delivery after the broker came back", worker, timeout=60)
    assert accepted(sim) == {(c, f"{c}-L1"): ["CREATED"] for c in coids}
    assert sim.store.received("FLIPKART")["duplicates"] == []
