"""Celery tasks (queue "imports", see CELERY_TASK_ROUTES): thin wrappers around services."""

from celery import shared_task

from . import services


@shared_task(name="imports.tasks.check_import")
def check_import(job_id: int) -> str:
    """Read an uploaded file and record its preview and row-level report (writes nothing)."""
    job = services.import_job_check(job_id)
    return job.status if job else "not claimed"


@shared_task(name="imports.tasks.run_import")
def run_import(job_id: int) -> str:
    """Import the valid records of a confirmed job, a batch at a time, with progress."""
    job = services.import_job_run(job_id)
    return job.status if job else "not claimed"


@shared_task(name="imports.tasks.run_export")
def run_export(job_id: int) -> str:
    """Stream a large export to a file in the shared storage."""
    job = services.export_job_run(job_id)
    return job.status if job else "not claimed"


@shared_task(name="imports.tasks.expire_files")
def expire_files() -> str:
    """Delete uploads, reports and exports of jobs that ended more than
    IMPORTS_RETENTION_DAYS ago (periodic: uniware.core.schedule)."""
    from .retention import expire_job_files

    done = expire_job_files()
    return f"deleted the files of {done['imports']} imports and {done['exports']} exports"


@shared_task(name="imports.tasks.reap_jobs")
def reap_jobs() -> dict:
    """Resume (or, after IMPORTS_MAX_ATTEMPTS, fail) the jobs whose worker died (every
    minute: uniware.core.schedule)."""
    from .recovery import reap_jobs as reap

    return reap()
