"""A real Celery worker (a separate process, on Redis in CI) runs the re-allocation task that
adding stock queues after commit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from inventory.services import stock_add
from orders.models import OrderItemStatus

ROOT = Path(__file__).resolve().parent.parent


def _broker_reachable() -> bool:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis"):
        return True
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        return False
    return True


@pytest.fixture
def celery_worker_process(transactional_db, require_services, tmp_path):
    if connection.vendor != "postgresql":
        require_services(
            "the worker process needs a shared database: set DATABASE_URL=postgres://..."
        )
    if os.environ.get("REQUIRE_SERVICES") == "1" and not settings.CELERY_BROKER_URL.startswith(
        "redis"
    ):
        pytest.fail("REQUIRE_SERVICES=1 but REDIS_URL is not set")
    if not _broker_reachable():
        require_services(f"the broker {settings.CELERY_BROKER_URL} is not reachable")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "uniware",
            "worker",
            "-Q",
            "default",
            "-c",
            "1",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _wait_for(predicate, timeout: float = 45.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


@pytest.mark.django_db(transaction=True)
def test_stock_arrival_reallocates_through_a_real_worker(celery_worker_process, tmp_path):
    from .factories import make_world

    world = make_world(stock=0)
    order = world.order("FK-WAIT", quantity=2)
    assert set(order.items.values_list("status", flat=True)) == {OrderItemStatus.UNFULFILLABLE}

    stock_add(shelf=world.shelf, sku=world.sku, quantity=2)  # queues the task on commit

    def allocated() -> bool:
        statuses = set(order.items.values_list("status", flat=True))
        return statuses == {OrderItemStatus.FULFILLABLE}

    assert _wait_for(allocated), (tmp_path / "worker.log").read_text()[-3000:]
    world.inventory.refresh_from_db()
    assert (world.inventory.quantity, world.inventory.blocked_quantity) == (2, 2)
    assert order.shipments.count() == 1
