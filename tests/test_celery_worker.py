"""A real Celery worker (a separate process, on Redis in CI) runs the re-allocation task that
adding stock queues after commit."""

from __future__ import annotations

import time

import pytest

from inventory.services import stock_add
from orders.models import OrderItemStatus

from .workers import celery_worker


@pytest.fixture
def celery_worker_process(transactional_db, require_services, tmp_path):
    with celery_worker("default", tmp_path / "worker.log", require_services) as proc:
        yield proc


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
