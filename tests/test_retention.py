# ruff: noqa: F811  (pytest fixtures imported from tests.importing are parameters)
"""Retention of import and export files (imports.retention): old files deleted, recent kept,
a discarded upload at once, and the job page after expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from imports import services, tasks
from imports.models import ExportJob, ImportJob, JobStatus
from uniware.core.schedule import PERIODIC_TASKS

from .factories import UserFactory
from .importing import checked, csv_bytes, media, order_row  # noqa: F401

pytestmark = pytest.mark.usefixtures("media")


@pytest.fixture
def lead(db):
    return UserFactory(username="lead", roles=["Warehouse Manager"])


def finished(job, days: int):
    type(job).objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=days))
    job.refresh_from_db()
    return job


def imported_job(lead, days: int, order_id: str) -> ImportJob:
    """A checked file, imported: the job as the worker leaves it (upload, report, preview)."""
    job = checked(csv_bytes([order_row(order_id)]), lead)
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, created_count=1)
    return finished(job, days)


def export(lead, days: int) -> ExportJob:
    job = ExportJob(kind="ORDERS", status=JobStatus.DONE, created_by=lead)
    job.file.save("orders.csv", ContentFile(b"customer_name\nAsha Rao\n"), save=False)
    job.save()
    return finished(job, days)


def stored(field) -> bool:
    return bool(field) and field.storage.exists(field.name)


def test_files_of_jobs_older_than_the_retention_are_deleted_recent_ones_kept(world, lead):
    world.inventory.quantity = 10
    old, recent = imported_job(lead, 31, "FK-1"), imported_job(lead, 29, "FK-2")
    old_export, recent_export = export(lead, 31), export(lead, 29)
    old_files = [old.file.name, old.error_report.name, old_export.file.name]
    assert all(old.file.storage.exists(name) for name in old_files)

    assert tasks.expire_files() == "deleted the files of 1 imports and 1 exports"

    assert not any(old.file.storage.exists(name) for name in old_files)
    old.refresh_from_db(), old_export.refresh_from_db()
    assert not old.file and not old.error_report and old.preview == {}
    assert old.files_deleted_at and old_export.files_deleted_at and not old_export.file
    assert old.status == JobStatus.DONE and old.created_count == 1  # the record stays
    recent.refresh_from_db(), recent_export.refresh_from_db()
    assert stored(recent.file) and stored(recent.error_report) and stored(recent_export.file)
    assert recent.files_deleted_at is None and recent.preview
    assert tasks.expire_files() == "deleted the files of 0 imports and 0 exports"


def test_the_retention_period_is_a_setting(world, lead, settings):
    settings.IMPORTS_RETENTION_DAYS = 7
    job = export(lead, 8)
    tasks.expire_files()
    job.refresh_from_db()
    assert job.files_deleted_at and not job.file


def test_a_checked_file_never_confirmed_is_discarded_with_its_files(world, lead):
    job = checked(csv_bytes([order_row()]), lead)
    ImportJob.objects.filter(pk=job.pk).update(validated_at=timezone.now() - timedelta(days=31))
    running = checked(csv_bytes([order_row("FK-2")]), lead)
    ImportJob.objects.filter(pk=running.pk).update(
        status=JobStatus.RUNNING, created_at=timezone.now() - timedelta(days=90)
    )
    tasks.expire_files()
    job.refresh_from_db(), running.refresh_from_db()
    assert job.status == JobStatus.DISCARDED and not job.file and not job.error_report
    assert job.message == "Discarded: not confirmed within 30 days."
    assert running.status == JobStatus.RUNNING and stored(running.file)  # active: left alone


def test_a_discarded_upload_loses_its_file_report_and_preview_at_once(world, lead):
    job = checked(csv_bytes([order_row(sku="NOPE")]), lead)
    names = [job.file.name, job.error_report.name]
    assert job.preview["errors"]
    job = services.import_job_discard(job, user=lead)
    assert not any(job.file.storage.exists(name) for name in names)
    job.refresh_from_db()
    assert not job.file and not job.error_report and job.preview == {}
    assert job.files_deleted_at is not None


def test_the_job_pages_after_expiry_say_the_files_were_deleted(world, client, lead):
    world.inventory.quantity = 10
    job, exported = imported_job(lead, 31, "FK-1"), export(lead, 31)
    tasks.expire_files()
    client.force_login(lead)
    page = client.get(reverse("admin:imports_importjob_change", args=[job.pk])).content.decode()
    assert "The uploaded file, its report and the preview were deleted after 30 days" in page
    assert "Download the row-level report" not in page
    assert client.get(reverse("admin:imports_importjob_report", args=[job.pk])).status_code == 404
    page = client.get(reverse("admin:imports_exportjob_change", args=[exported.pk])).content
    assert b"File deleted after 30 days" in page and b">Download<" not in page
    download = reverse("admin:imports_exportjob_download", args=[exported.pk])
    assert client.get(download).status_code == 404

    discarded = services.import_job_discard(
        checked(csv_bytes([order_row("FK-9")]), lead), user=lead
    )
    page = client.get(reverse("admin:imports_importjob_change", args=[discarded.pk])).content
    assert b"were deleted when the import was discarded" in page


def test_the_clean_up_runs_hourly_on_the_imports_queue():
    assert PERIODIC_TASKS["Delete old import and export files"] == (
        "imports.tasks.expire_files",
        3600,
        "imports",
    )
