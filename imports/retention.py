"""Retention of import and export files: uploads, row-level reports and exports hold
customers' personal data, so they are kept `IMPORTS_RETENTION_DAYS` (default 30) after their
job ended and then deleted by the periodic task `imports.tasks.expire_files`; a discarded
upload goes at once.

Deleting a job's files also empties its preview (it quotes rows of the file) and records
`files_deleted_at`, so the job page says "deleted after N days" instead of a dead link. The
job row itself stays (who imported what, when, the counts): it holds no file content.

When a job "ended": an import at `finished_at` (done, failed, discarded) or, if it was checked
but never confirmed, at `validated_at`: such an upload is discarded by the clean-up (its file
is gone, so it can no longer be confirmed). An export at `finished_at`. Jobs still active
(waiting or running) are left alone whatever their age: a stuck job is for a person to look
at, and its file is needed if it runs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import ACTIVE, ExportJob, ImportJob, JobStatus

log = logging.getLogger(__name__)


def retention_days() -> int:
    return int(settings.IMPORTS_RETENTION_DAYS)


def delete_import_files(job: ImportJob, *, now: datetime | None = None) -> bool:
    """Delete the upload and the report of an import from storage and empty its preview.
    False (and nothing marked) when the storage refused: the next clean-up tries again."""
    now = now or timezone.now()
    try:
        for field in (job.file, job.error_report, job.fix_file):
            if field:
                field.delete(save=False)
    except OSError:
        log.exception("could not delete the files of %s", job)
        return False
    ImportJob.objects.filter(pk=job.pk).update(
        file="", error_report="", fix_file="", preview={}, files_deleted_at=now
    )
    job.file, job.error_report, job.fix_file = "", "", ""
    job.preview, job.files_deleted_at = {}, now
    return True


def delete_export_file(job: ExportJob, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    try:
        if job.file:
            job.file.delete(save=False)
    except OSError:
        log.exception("could not delete the file of %s", job)
        return False
    ExportJob.objects.filter(pk=job.pk).update(file="", files_deleted_at=now)
    job.file, job.files_deleted_at = "", now
    return True


def _expired_imports(cutoff: datetime):
    return (
        ImportJob.objects.filter(files_deleted_at__isnull=True)
        .exclude(status__in=ACTIVE)
        .exclude(file="", error_report="")
        .annotate(ended=Coalesce("finished_at", "validated_at", "created_at"))
        # discarded: at once (normally done at discard; this retries a failed deletion)
        .filter(Q(ended__lt=cutoff) | Q(status=JobStatus.DISCARDED))
        .order_by("pk")
    )


def expire_job_files(*, now: datetime | None = None) -> dict[str, int]:
    """Delete the files of jobs that ended more than IMPORTS_RETENTION_DAYS ago. Returns how
    many imports and exports lost their files. Safe to run twice at once (each job is
    marked once; deleting a missing file is not an error)."""
    now = now or timezone.now()
    days = retention_days()
    cutoff = now - timedelta(days=days)
    imports = exports = 0
    for job in _expired_imports(cutoff).iterator(chunk_size=500):
        if job.status == JobStatus.VALIDATED:
            # Never confirmed: discard it first, unless someone confirms it right now.
            claimed = ImportJob.objects.filter(pk=job.pk, status=JobStatus.VALIDATED).update(
                status=JobStatus.DISCARDED,
                finished_at=now,
                message=f"Discarded: not confirmed within {days} days.",
            )
            if not claimed:
                continue
        imports += delete_import_files(job, now=now)
    old_exports = (
        ExportJob.objects.filter(files_deleted_at__isnull=True, finished_at__lt=cutoff)
        .filter(~Q(file=""))
        .exclude(status__in=ACTIVE)
        .order_by("pk")
    )
    for job in old_exports.iterator(chunk_size=500):
        exports += delete_export_file(job, now=now)
    if imports or exports:
        log.info(
            "retention (%s days): deleted the files of %s imports and %s exports",
            days,
            imports,
            exports,
        )
    return {"imports": imports, "exports": exports}
