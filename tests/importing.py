"""Helpers for the import and export tests: CSV building, jobs run as a worker would."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imports import services, tasks
from imports.models import ImportJob
from imports.resources import ORDER_COLUMNS

ORDER_HEADER = [c.name for c in ORDER_COLUMNS]


def order_row(order_id: str = "FK-1", line: str = "L1", **values) -> dict:
    row = {
        "channel": "FLIPKART",
        "channel_order_id": order_id,
        "order_date": "2024-05-01 10:30",
        "payment_method": "PREPAID",
        "channel_line_id": line,
        "sku": "TSHIRT",
        "quantity": "1",
        "selling_price": "499.00",
        "shipping_charges": "0",
        "customer_name": "Asha Rao",
        "customer_phone": "+91 98450 00000",
        "customer_email": "asha@example.com",
        "address_line1": "12 MG Road",
        "address_line2": "",
        "city": "Bengaluru",
        "state": "Karnataka",
        "pincode": "560001",
        "country": "IN",
        "buyer_gstin": "",
    }
    row.update(values)
    return row


def csv_bytes(rows: list[dict], header: list[str] | None = None, *, encoding="utf-8") -> bytes:
    header = header or ORDER_HEADER
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    return out.getvalue().encode(encoding)


def upload(data: bytes, user, *, kind: str = "ORDERS", name: str = "orders.csv") -> ImportJob:
    """Create the job as the admin does; nothing is read yet."""
    return services.import_job_create(kind=kind, upload=SimpleUploadedFile(name, data), user=user)


def checked(data: bytes, user, **kwargs) -> ImportJob:
    """Upload and check (what the worker does next): the preview."""
    job = upload(data, user, **kwargs)
    return services.import_job_check(job.pk)


def imported(job: ImportJob, user, *, valid_only: bool = False) -> ImportJob:
    services.import_job_confirm(job, valid_only=valid_only, user=user)
    return services.import_job_run(job.pk)


@pytest.fixture
def queued(monkeypatch):
    """Tasks are recorded instead of sent to the broker: [(task name, job id)]."""
    sent: list[tuple[str, int]] = []
    for name in ("check_import", "run_import", "run_export"):
        task = getattr(tasks, name)
        monkeypatch.setattr(task, "delay", lambda pk, _n=name: sent.append((_n, pk)))
    return sent


@pytest.fixture
def media(settings, tmp_path):
    """Uploads, reports and exports go to a temporary MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def report_rows(job: ImportJob) -> list[list[str]]:
    job.refresh_from_db()
    with job.error_report.open("rb") as f:
        text = f.read().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))[1:]
