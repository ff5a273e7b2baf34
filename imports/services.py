"""Import and export jobs: what the admin and the Celery tasks (`imports.tasks`) call.

Import: `import_job_create` stores the upload in the default storage and queues the check;
`import_job_check` (task) reads the whole file without writing anything and records the
preview (counts, the first errors, a sample) and the row-level report; `import_job_confirm`
queues the import (of everything, only when the file has no errors, or of the valid records
only, when staff choose so); `import_job_run` (task) imports a batch at a time, updating the
progress counts after each batch. Orders go through `orders.services.orders_create` (with
allocation); stock and serviceability through the set-based writes of `imports.bulk`.

Export: `export_job_create` queues a background export of a changelist; `export_job_run`
(task) streams the rows into a file in the default storage.

Crashes: a job's worker writes `heartbeat_at` as it goes (`_Progress`); a job whose
heartbeat stopped is claimed again, by the reaper (`imports.recovery`) or by Celery's own
redelivery of the message, and runs again from the start of its file (the import skips what a
previous attempt committed: each batch is one transaction). A worker that finds its job taken
over stops at its next heartbeat (`JobLost`).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from uniware.core.actors import Actor
from uniware.core.faultpoints import pause_point

from .access import may_view_data
from .exporters import export_rows
from .fix_file import fix_file_bytes
from .importers import IMPORTERS
from .importers.reporter import Reporter
from .models import ExportFormat, ExportJob, ExportKind, ImportJob, ImportKind, JobStatus
from .recovery import max_attempts, stale_before
from .retention import delete_import_files
from .writers import write_export

log = logging.getLogger(__name__)

IMPORT_PERMISSIONS = {
    ImportKind.ORDERS: "imports.import_orders",
    ImportKind.INVENTORY: "imports.import_inventory",
    ImportKind.SERVICEABILITY: "imports.import_serviceability",
    ImportKind.LISTINGS: "imports.import_listings",
}
EXPORT_PERMISSIONS = {
    ExportKind.ORDERS: "imports.export_orders",
    ExportKind.UNITS: "imports.export_orders",
    ExportKind.SHIPMENTS: "imports.export_orders",
    ExportKind.INVENTORY: "imports.export_inventory",
    ExportKind.SERVICEABILITY: "imports.export_inventory",
    ExportKind.LISTINGS: "imports.export_listings",
    # printed documents: the rest of what printing needs is in access.DATA_PERMISSIONS
    ExportKind.LABELS: "orders.label_shipment",
    ExportKind.INVOICES: "orders.invoice_shipment",
    ExportKind.CREDIT_NOTES: "orders.view_invoice",
    ExportKind.PICKLISTS: "orders.view_picklist",
    ExportKind.MANIFESTS: "orders.view_manifest",
}
PROGRESS_EVERY_ROWS = 2000
HEARTBEAT_EVERY = 10.0  # seconds: the job row is written at least this often while it runs
# The database went away under the worker: the job is left to be resumed, not failed.
DATABASE_LOST = (OperationalError, InterfaceError)


def can_import(user, kind: str) -> bool:
    """The import permission of the kind, and the permission to view what it imports (the
    preview and report show the file's records)."""
    return bool(
        user
        and user.is_active
        and user.has_perm(IMPORT_PERMISSIONS[kind])
        and may_view_data(user, kind)
    )


def can_export(user, kind: str) -> bool:
    """The export permission of the kind, and the permission to view what it exports."""
    return bool(
        user
        and user.is_active
        and user.has_perm(EXPORT_PERMISSIONS[kind])
        and may_view_data(user, kind)
    )


def _enqueue(task_name: str, job: ImportJob | ExportJob) -> None:
    """Queue the job's task once the job row is committed (a worker must find it)."""
    model, pk = type(job), job.pk

    def send() -> None:
        from . import tasks

        try:
            getattr(tasks, task_name).delay(pk)
        except Exception as exc:  # broker down: say so on the job instead of a 500
            log.exception("could not queue %s for job %s", task_name, pk)
            model.objects.filter(pk=pk, status__in=[JobStatus.PENDING, JobStatus.QUEUED]).update(
                status=JobStatus.FAILED,
                message=f"The task queue could not be reached ({exc}); try again later.",
                finished_at=timezone.now(),
            )

    transaction.on_commit(send)


def _claim(model, pk: int, sources: list[str], target: str, **values: Any) -> bool:
    """Move a job from one of `sources` to `target`; False when someone else moved it."""
    return bool(model.objects.filter(pk=pk, status__in=sources).update(status=target, **values))


class JobLost(Exception):
    """Another attempt took the job over (this worker's heartbeat had stopped): stop."""


def _take(model, pk: int, waiting: str, running: str, **values: Any):
    """Claim a job for a worker: one waiting, or one `running` whose worker died (heartbeat
    older than IMPORTS_STALE_SECONDS). Counts the attempt; returns the job, or None when it
    is not this worker's to run (another copy of the message got it, or it ended)."""
    now = timezone.now()
    dead = Q(status=running, attempts__lt=max_attempts(), beat__lt=stale_before(now))
    taken = (
        model.objects.filter(pk=pk)
        .alias(beat=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(Q(status=waiting) | dead)
        .update(status=running, heartbeat_at=now, attempts=F("attempts") + 1, **values)
    )
    return model.objects.select_related("created_by").get(pk=pk) if taken else None


def _still_mine(model, job) -> bool:
    try:
        _beat(model, job)
    except JobLost:
        log.warning("%s: taken over by another attempt before it ended", job)
        return False
    return True


def _beat(model, job, **values: Any) -> None:
    """Write the heartbeat (and progress); JobLost when another attempt has the job."""
    mine = model.objects.filter(pk=job.pk, status=job.status, attempts=job.attempts)
    if not mine.update(heartbeat_at=timezone.now(), **values):
        raise JobLost(f"{job} was taken over by another attempt")


class _Ending:
    """How a job's work ended when it did not finish (see `_stops`)."""

    def __init__(self) -> None:
        self.stopped = False
        self.job: ImportJob | ExportJob | None = None  # what the task returns then


@contextmanager
def _stops(model: type[ImportJob] | type[ExportJob], job_id: int, what: str):
    """Ends a job's work that raised. Taken over by another attempt: stopped, nothing to
    return. The database went away: raised, for the reaper to resume the job. Any other
    error: the job fails with it (`_fail`), and is returned. The exception is swallowed in
    the first and last cases: the caller checks `stopped`."""
    ending = _Ending()
    try:
        yield ending
    except JobLost:
        log.warning("%s: taken over by another attempt", what)
        ending.stopped = True
    except DATABASE_LOST:
        log.exception("%s: database lost; the reaper resumes it", what)
        raise
    except Exception as exc:
        log.exception("%s failed", what)
        _fail(model, job_id, exc)
        ending.stopped, ending.job = True, model.objects.get(pk=job_id)


# --- Import ---------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    base = os.path.basename(name or "upload")
    stem, ext = os.path.splitext(base)
    stem = re.sub(r"[^\w.-]+", "_", stem)[:80] or "upload"
    ext = re.sub(r"[^\w.]+", "", ext)[:10]
    return stem + ext


def import_job_create(*, kind: str, upload: UploadedFile, user) -> ImportJob:
    """Store the upload where every web and worker process can read it, and queue the check.
    Returns at once: nothing is read here."""
    if kind not in ImportKind.values:
        raise ValidationError({"kind": f"Unknown kind of import {kind!r}"})
    if not can_import(user, kind):
        raise ValidationError({"kind": f"You may not import {ImportKind(kind).label.lower()}"})
    limit = settings.IMPORTS_MAX_UPLOAD_MB * 1024 * 1024
    if upload.size > limit:
        raise ValidationError(
            {
                "file": f"The file is {upload.size / 1024 / 1024:.1f} MB; at most "
                f"{settings.IMPORTS_MAX_UPLOAD_MB} MB can be imported at once. Split it."
            }
        )
    if upload.size == 0:
        raise ValidationError({"file": "The file is empty."})
    with transaction.atomic():
        job = ImportJob(
            kind=kind,
            original_name=(upload.name or "upload")[:255],
            size=upload.size,
            created_by=user,
        )
        job.file.save(_safe_name(upload.name), upload, save=False)
        job.save()
        _enqueue("check_import", job)
    return job


def _actor(job: ImportJob | ExportJob) -> Actor:
    user = job.created_by
    who = user.get_username() if user is not None else "system"
    return Actor(user=user, label=f"{who} (import #{job.pk})"[:100])


class _Progress:
    """Writes the heartbeat and the progress to the job row now and then: every
    PROGRESS_EVERY_ROWS rows or HEARTBEAT_EVERY seconds. `counts` gives the other values to
    write with `processed_rows`; `fault_point` names the crash tests' pause before a write."""

    def __init__(
        self,
        model: type[ImportJob] | type[ExportJob],
        job: ImportJob | ExportJob,
        counts: Callable[[], dict[str, int]] = dict,
        *,
        fault_point: str = "",
    ) -> None:
        self.model, self.job, self.counts, self.fault_point = model, job, counts, fault_point
        self.last = 0
        self.rows = 0
        self.written = time.monotonic()

    def __call__(self, rows: int, *, force: bool = False) -> None:
        self.rows = rows
        slow = time.monotonic() - self.written >= HEARTBEAT_EVERY
        if not force and not slow and rows - self.last < PROGRESS_EVERY_ROWS:
            return
        self.last, self.written = rows, time.monotonic()
        if self.fault_point:
            pause_point(self.fault_point)
        _beat(self.model, self.job, processed_rows=rows, **self.counts())


@contextmanager
def _cyclic_gc_paused():
    """No cyclic garbage collection during a pass over a file. A pass keeps batches of
    thousands of objects alive (records, orders, units: no reference cycles among them), and
    the collector would scan them, with every other object of the process, again and again:
    a tenth of an import's time (bench/bench_import.py). Reference counting frees them as
    usual; the collector runs again when the pass ends (peak memory did not change)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _pass(job: ImportJob, *, write: bool, what: str) -> tuple[Reporter | None, _Ending]:
    """Read the job's file once: check every record, and (write=True) import the valid ones.
    Problems go to the row-level report, stored with the job. The report, or how the pass
    ended when it did not finish (`_stops`; also when the job was taken over meanwhile)."""
    with _report_file() as report_file:
        with _stops(ImportJob, job.pk, what) as end, _cyclic_gc_paused():
            report = _read(job, report_file, write=write)
        if end.stopped:
            return None, end
        _store_report(job, report_file, "import" if write else "check")
        _store_fix_file(job, report)
    end.stopped = not _still_mine(ImportJob, job)
    return report, end


def _read(job: ImportJob, report_file, *, write: bool) -> Reporter:
    importer = IMPORTERS[job.kind]()
    report = Reporter(report_file)
    table, batches = importer.batches(
        lambda: job.file.storage.open(job.file.name, "rb"), job.file.name
    )
    for error in table.header.errors:
        report.error(error)
    report.ignored = [c for c in table.header.ignored if c.strip()]

    def counts() -> dict[str, int]:
        return {
            "created_count": report.created_count,
            "skipped_count": report.skipped_count,
            "failed_count": report.failed_count,
        }

    progress = _Progress(ImportJob, job, counts, fault_point="import_batch")
    try:
        if write:
            importer.run(batches, actor=_actor(job), report=report, progress=progress, job=job)
        else:
            for batch in batches:
                for record in batch.records:
                    report.classify(record)
                progress(batch.rows_done)
            progress(progress.rows, force=True)
    finally:
        batches.close()  # also when the pass stops early: the file and the reading thread
    report.rows = progress.rows
    return report


def _report_file():
    return tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="")


def _store_report(job: ImportJob, report_file, suffix: str) -> None:
    """Keep the row-level report next to the upload (UTF-8 with a BOM, for Excel)."""
    report_file.seek(0)
    data = ("\ufeff" + report_file.read()).encode("utf-8")
    if job.error_report:
        job.error_report.delete(save=False)
    stem = os.path.splitext(_safe_name(job.original_name))[0]
    job.error_report.save(f"{stem}-{suffix}-report.csv", ContentFile(data), save=False)


def _store_fix_file(job: ImportJob, report: Reporter) -> None:
    """Keep the rows to fix next to the report (`imports.fix_file`), or none."""
    if job.fix_file:
        job.fix_file.delete(save=False)
    data = fix_file_bytes(
        IMPORTERS[job.kind](),
        lambda: job.file.storage.open(job.file.name, "rb"),
        job.file.name,
        report.bad_rows,
    )
    if data is not None:
        stem = os.path.splitext(_safe_name(job.original_name))[0]
        job.fix_file.save(f"{stem}-rows-to-fix.csv", ContentFile(data), save=False)


def import_job_check(job_id: int) -> ImportJob | None:
    """The preview: read the whole file, write nothing but the job and its report."""
    job = _take(ImportJob, job_id, JobStatus.PENDING, JobStatus.VALIDATING)
    if job is None:
        return None
    report, end = _pass(job, write=False, what=f"checking import {job_id}")
    if end.stopped:
        return end.job
    job.total_rows = report.rows
    job.processed_rows = report.rows
    job.error_count = report.error_count
    job.invalid_count = report.invalid_count
    job.new_count = report.new_count
    job.skipped_count = report.skipped_count
    job.preview = {
        "errors": report.errors,
        "new": report.new_sample,
        "skipped": report.skipped_sample,
        "ignored_columns": report.ignored,
    }
    job.status = JobStatus.VALIDATED
    job.validated_at = timezone.now()
    job.save()
    return job


def import_job_confirm(job: ImportJob, *, valid_only: bool, user) -> ImportJob:
    """Queue the import. A file with errors imports nothing unless `valid_only`."""
    if not can_import(user, job.kind):
        raise ValidationError("You may not run this import.")
    if job.status != JobStatus.VALIDATED:
        raise ValidationError(f"{job} is {job.get_status_display().lower()}: it cannot start.")
    if job.error_count and not valid_only:
        raise ValidationError(
            f"{job}: the file has {job.error_count} errors. Fix them and upload it again, or "
            "choose to import only the valid records."
        )
    if not job.new_count:
        raise ValidationError(f"{job}: there is nothing new to import.")
    with transaction.atomic():
        if not _claim(
            ImportJob,
            job.pk,
            [JobStatus.VALIDATED],
            JobStatus.QUEUED,
            valid_only=valid_only,
            attempts=0,
        ):
            raise ValidationError(f"{job} was started or discarded meanwhile.")
        _enqueue("run_import", job)
    job.refresh_from_db()
    return job


def import_job_discard(job: ImportJob, *, user) -> ImportJob:
    if not can_import(user, job.kind):
        raise ValidationError("You may not discard this import.")
    if not _claim(
        ImportJob,
        job.pk,
        [JobStatus.PENDING, JobStatus.VALIDATED, JobStatus.FAILED],
        JobStatus.DISCARDED,
        finished_at=timezone.now(),
    ):
        raise ValidationError(f"{job} is running or finished: it cannot be discarded.")
    job.refresh_from_db()
    delete_import_files(job)  # personal data: the upload and its report go at once
    return job


def import_job_run(job_id: int) -> ImportJob | None:
    """Import the valid records of a confirmed job, a batch at a time (each batch its own
    transaction; a crash leaves whole batches, and running it again skips them)."""
    job = _take(
        ImportJob,
        job_id,
        JobStatus.QUEUED,
        JobStatus.RUNNING,
        started_at=timezone.now(),
        processed_rows=0,
    )
    if job is None:
        return None
    report, end = _pass(job, write=True, what=f"import {job_id}")
    if end.stopped:
        return end.job
    job.processed_rows = max(report.rows, job.total_rows)
    job.error_count = report.error_count
    job.invalid_count = report.invalid_count
    job.created_count = report.created_count
    job.skipped_count = report.skipped_count
    job.failed_count = report.failed_count
    job.message = " ".join(
        part
        for part in [
            f"Imported {report.created_count:,}, skipped {report.skipped_count:,} already "
            f"there, {report.invalid_count + report.failed_count:,} not imported.",
            report.message,
        ]
        if part
    )
    job.status = JobStatus.DONE
    job.finished_at = timezone.now()
    job.save()
    return job


def _fail(model, job_id: int, exc: BaseException) -> None:
    text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    model.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED,
        message=f"Stopped by an error: {text}"[:2000],
        finished_at=timezone.now(),
    )


# --- Export ---------------------------------------------------------------------------------


def export_job_create(*, kind: str, fmt: str, query: str, user, total: int) -> ExportJob:
    if kind not in ExportKind.values or fmt not in ExportFormat.values:
        raise ValidationError(f"Unknown export {kind!r} / {fmt!r}")
    if not can_export(user, kind):
        raise ValidationError(f"You may not export {ExportKind(kind).label.lower()}")
    with transaction.atomic():
        job = ExportJob.objects.create(
            kind=kind, format=fmt, query=query, created_by=user, total_rows=total
        )
        _enqueue("run_export", job)
    return job


def export_job_run(job_id: int) -> ExportJob | None:
    """Write the export to a file in the default storage, a chunk of records at a time."""
    job = _take(ExportJob, job_id, JobStatus.QUEUED, JobStatus.RUNNING, started_at=timezone.now())
    if job is None:
        return None
    if job.format == ExportFormat.PDF:  # printed documents, a chunk at a time
        from .printing import print_job_write

        return print_job_write(job)
    progress = _Progress(ExportJob, job)
    with _stops(ExportJob, job_id, f"export {job_id}") as end:
        header, rows, counter = export_rows(job.kind, job.created_by, job.query, progress=progress)
        with tempfile.NamedTemporaryFile(suffix=f".{job.format}") as tmp:
            written = write_export(tmp, job.format, header, rows, title=job.kind.lower())
            tmp.flush()
            tmp.seek(0)
            stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
            job.file.save(f"{job.kind.lower()}-{stamp}.{job.format}", File(tmp), save=False)
    if end.stopped:
        return end.job
    if not _still_mine(ExportJob, job):
        return None
    job.written_rows = written
    job.processed_rows = counter[0]
    job.total_rows = max(job.total_rows, counter[0])
    job.status = JobStatus.DONE
    job.finished_at = timezone.now()
    job.message = f"{written:,} rows written."
    job.save()
    return job
