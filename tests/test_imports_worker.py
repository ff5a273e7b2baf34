"""The background path with a real Celery worker (queue "imports", a separate process, on
PostgreSQL): the upload request returns at once, the worker checks the file, staff confirm,
the worker imports it and the progress is visible from the job page while it runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.urls import reverse

from imports.models import ImportJob
from orders.models import Order

from .factories import UserFactory
from .importing import csv_bytes, order_row
from .workers import celery_worker


@pytest.fixture
def imports_worker(transactional_db, require_services, tmp_path):
    with celery_worker("imports", tmp_path / "worker.log", require_services) as proc:
        yield proc


def _poll(client, job: ImportJob, until: set[str], seen: list, timeout: float = 120.0) -> dict:
    url = reverse("admin:imports_importjob_progress", args=[job.pk])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = client.get(url).json()
        seen.append((progress["status"], progress["processed_rows"], progress["total_rows"]))
        if progress["status"] in until:
            return progress
        time.sleep(0.1)
    raise AssertionError(f"job {job.pk} still {seen[-1]} after {timeout}s")


@pytest.mark.django_db(transaction=True)
def test_a_file_is_checked_and_imported_by_a_real_worker(imports_worker, client, tmp_path):
    from .factories import make_world

    world = make_world(stock=5000)
    user = UserFactory(username="sales", roles=["Sales Manager"])
    client.force_login(user)
    rows = [order_row(f"FK-{n}", sku=world.sku.code) for n in range(5000)]
    data = csv_bytes(rows)

    started = time.monotonic()
    response = client.post(
        reverse("admin:imports_importjob_add"),
        {"kind": "ORDERS", "file": _named(data, tmp_path)},
    )
    took = time.monotonic() - started
    assert response.status_code == 302
    job = ImportJob.objects.get()
    seen: list = []
    try:
        checked = _poll(client, job, {"VALIDATED", "FAILED"}, seen)
        assert checked["status"] == "VALIDATED", checked
        assert (checked["new_count"], checked["error_count"]) == (5000, 0)

        confirm = client.post(reverse("admin:imports_importjob_confirm", args=[job.pk]))
        assert confirm.status_code == 302
        done = _poll(client, job, {"DONE", "FAILED"}, seen)
    except AssertionError:
        raise AssertionError((tmp_path / "worker.log").read_text()[-3000:]) from None
    assert done["status"] == "DONE" and done["created_count"] == 5000, done
    assert Order.objects.count() == 5000
    # the upload request only stored the file; the progress moved while the worker ran
    assert took < 5
    assert any(s == "RUNNING" and 0 < n < total for s, n, total in seen), seen
    job.refresh_from_db()
    job.file.delete(save=False)
    job.error_report.delete(save=False)


def _named(data: bytes, tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_bytes(data)
    return path.open("rb")
