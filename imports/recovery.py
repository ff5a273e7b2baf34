"""Jobs whose worker died: resumed, or after IMPORTS_MAX_ATTEMPTS ended FAILED, visibly.

A worker writes a job's `heartbeat_at` at least every `services.HEARTBEAT_EVERY` seconds while
it checks, imports or exports. `reap_jobs` (task `imports.tasks.reap_jobs`, every minute) finds
the jobs whose heartbeat is older than IMPORTS_STALE_SECONDS and queues their task again (the
task claims the job only while it is still dead, and counts the attempt). Running a job again
is safe: an import skips the orders and stock lines a previous attempt committed (every batch
is one transaction, so there is never half an order), a check writes nothing, an export
writes a new file. A job that has killed its worker `max_attempts()` times is ended FAILED
with a message saying so (it may be the file itself), and can then be discarded.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import ExportJob, ImportJob, JobStatus

log = logging.getLogger(__name__)

STALE_SECONDS = 300  # default of IMPORTS_STALE_SECONDS
MAX_ATTEMPTS = 3  # default of IMPORTS_MAX_ATTEMPTS

# (model, status while a worker has it, task that runs it)
STAGES = [
    (ImportJob, JobStatus.VALIDATING, "check_import"),
    (ImportJob, JobStatus.RUNNING, "run_import"),
    (ExportJob, JobStatus.RUNNING, "run_export"),
]


def stale_before(now: datetime | None = None) -> datetime:
    seconds = int(getattr(settings, "IMPORTS_STALE_SECONDS", STALE_SECONDS))
    return (now or timezone.now()) - timedelta(seconds=seconds)


def max_attempts() -> int:
    return int(getattr(settings, "IMPORTS_MAX_ATTEMPTS", MAX_ATTEMPTS))


def reap_jobs(now: datetime | None = None) -> dict[str, list[int]]:
    """Re-queue (or fail) every job whose worker stopped; returns the ids of each."""
    from . import tasks

    now = now or timezone.now()
    done: dict[str, list[int]] = {"requeued": [], "failed": []}
    for model, running, task in STAGES:
        dead = (
            model.objects.filter(status=running)
            .alias(beat=Coalesce("heartbeat_at", "started_at", "created_at"))
            .filter(beat__lt=stale_before(now))
        )
        for job in dead:
            mine = model.objects.filter(
                pk=job.pk, status=running, attempts=job.attempts, heartbeat_at=job.heartbeat_at
            )
            if job.attempts >= max_attempts():
                if mine.update(status=JobStatus.FAILED, finished_at=now, message=_gave_up(job)):
                    done["failed"].append(job.pk)
                    log.error("%s failed: its worker stopped %d times", job, job.attempts)
                continue
            # The task claims the job itself (services._take: still dead, attempts left), so
            # a second copy of this message, or a lost one re-sent next round, does no harm.
            try:
                getattr(tasks, task).delay(job.pk)
            except Exception:  # broker down: the next round sends it again
                log.warning("could not queue %s for %s", task, job, exc_info=True)
                continue
            done["requeued"].append(job.pk)
            log.warning("%s: its worker stopped; queued again", job)
    return done


def _gave_up(job) -> str:
    what = "importing" if job.status == JobStatus.RUNNING else "checking"
    if isinstance(job, ExportJob):
        what = "writing"
    text = (
        f"Stopped: the worker {what} this file stopped {job.attempts} times without finishing "
        "(killed, out of memory, or the file itself). "
    )
    if isinstance(job, ImportJob) and job.status == JobStatus.RUNNING:
        text += (
            "The batches it finished are imported, whole orders only; the rest is not. "
            "Upload the file again to import the rest (what is there is skipped)."
        )
    return text
