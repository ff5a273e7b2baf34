"""Printing many documents at once, in the background: the export job pattern, for PDFs.

A print from the admin (`orders.admin.printing`) of more than `settings.PRINT_INLINE_MAX`
documents would hold a web process for minutes, so it becomes an `ExportJob` of a print kind
(`models.PRINT_KINDS`) and format PDF: `print_job_create` records the selection (the ids, in
`query`) and queues `imports.tasks.run_export`; the worker claims it like any export
(`services.export_job_run`, which hands PDF jobs to `print_job_write`), renders `CHUNK`
documents at a time with `orders.printing` (progress and heartbeat after each chunk, so the
reaper resumes a job whose worker died) and merges the chunks into one PDF in the default
storage. Everything else is the export's: the job page with its progress bar and download
link, retention of the file, and who may see it (`access.DATA_PERMISSIONS`: whoever may print
the kind).

A selection holding something that cannot be printed (`orders.printing.NotPrintable`) fails
the job with the message naming the records; nothing is kept.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from documents.pdf import merge_pdf_files, page_count
from orders import printing
from uniware.core.admin_utils import plural
from uniware.core.db import chunked

from .models import PRINT_KINDS, ExportFormat, ExportJob, ExportKind, JobStatus
from .services import (
    DATABASE_LOST,
    JobLost,
    _beat,
    _enqueue,
    _fail,
    _still_mine,
    can_export,
)

log = logging.getLogger(__name__)

# Documents rendered at once: a chunk's PDF is written to a temporary file before the next
# one starts, so a worker holds one chunk's rendering at a time (100 labels: ~1 s; 100
# invoices: a few seconds; the heartbeat is written after each).
CHUNK = 100
NOUNS = {
    ExportKind.LABELS: "label",
    ExportKind.INVOICES: "invoice",
    ExportKind.CREDIT_NOTES: "credit note",
    ExportKind.PICKLISTS: "picklist",
    ExportKind.MANIFESTS: "handover sheet",
}


@dataclass(frozen=True)
class Selection:
    """What to print: the kind and the ids of its records (shipments for labels, invoices,
    picklists, manifests), in printing order; labels optionally 4-up on A4."""

    kind: str
    ids: tuple[int, ...]
    four_up: bool = False

    def query(self) -> str:
        values = {"ids": ",".join(map(str, self.ids))}
        if self.four_up:
            values["four_up"] = "1"
        return urlencode(values)

    @classmethod
    def of(cls, job: ExportJob) -> Selection:
        values = parse_qs(job.query)
        ids = tuple(int(i) for i in values.get("ids", [""])[0].split(",") if i)
        return cls(job.kind, ids, four_up=values.get("four_up") == ["1"])

    @property
    def noun(self) -> str:
        return NOUNS[self.kind]

    def filename(self) -> str:
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        four_up = "-4up" if self.four_up else ""
        return f"{self.kind.lower().replace('_', '-')}{four_up}-{stamp}.pdf"


def render(selection: Selection, ids: tuple[int, ...] | list[int] | None = None) -> bytes:
    """One PDF of the selection's documents (or of `ids`, a part of them)."""
    ids = list(selection.ids if ids is None else ids)
    if selection.kind == ExportKind.LABELS:
        return printing.labels_pdf(ids, four_up=selection.four_up)
    if selection.kind in (ExportKind.INVOICES, ExportKind.CREDIT_NOTES):
        return printing.invoices_pdf(ids)
    if selection.kind == ExportKind.PICKLISTS:
        return printing.picklists_pdf(ids)
    if selection.kind == ExportKind.MANIFESTS:
        return printing.manifests_pdf(ids)
    raise ValueError(f"{selection.kind} is not a kind of printed document")


def print_job_create(selection: Selection, *, user) -> ExportJob:
    """Queue a background print of the selection; refused (ValidationError) unless the user
    may print it, or (NotPrintable) when something in it cannot be printed."""
    if selection.kind not in PRINT_KINDS or not selection.ids:
        raise ValidationError(f"Nothing to print ({selection.kind})")
    if not can_export(user, selection.kind):
        raise ValidationError(f"You may not print {ExportKind(selection.kind).label.lower()}")
    check(selection)
    with transaction.atomic():
        job = ExportJob.objects.create(
            kind=selection.kind,
            format=ExportFormat.PDF,
            query=selection.query(),
            created_by=user,
            total_rows=len(selection.ids),
        )
        _enqueue("run_export", job)
    return job


def check(selection: Selection) -> None:
    """NotPrintable now, before a job is queued, for what would fail it later: labels of
    shipments without AWB (reads the shipments; renders nothing). Other documents can only
    fail when their records vanished."""
    if selection.kind == ExportKind.LABELS:
        printing.label_docs(selection.ids)


def print_job_write(job: ExportJob) -> ExportJob | None:
    """Render a claimed print job a chunk at a time and store the merged PDF."""
    selection = Selection.of(job)
    try:
        ids = _printing_order(selection)
        with tempfile.TemporaryDirectory(prefix="print-") as folder:
            parts = []
            for number, chunk in enumerate(chunked(ids, CHUNK)):
                part = Path(folder) / f"{number:06d}.pdf"
                part.write_bytes(render(selection, chunk))
                parts.append(part)
                _beat(ExportJob, job, processed_rows=min(len(ids), (number + 1) * CHUNK))
            merged = Path(folder) / "merged.pdf"
            pages = _merge(parts, merged)
            with merged.open("rb") as out:
                job.file.save(selection.filename(), File(out), save=False)
    except JobLost:
        log.warning("print job %s: taken over by another attempt", job.pk)
        return None
    except DATABASE_LOST:
        log.exception("print job %s: database lost; the reaper resumes it", job.pk)
        raise
    except Exception as exc:  # NotPrintable too: its message names the records
        log.warning("print job %s failed", job.pk, exc_info=True)
        _fail(ExportJob, job.pk, exc)
        return ExportJob.objects.get(pk=job.pk)
    if not _still_mine(ExportJob, job):
        return None
    job.processed_rows = job.written_rows = len(ids)
    job.total_rows = max(job.total_rows, len(ids))
    job.status = JobStatus.DONE
    job.finished_at = timezone.now()
    job.message = f"{plural(len(ids), selection.noun)} printed on {plural(pages, 'page')}."
    job.save()
    return job


def _printing_order(selection: Selection) -> list[int]:
    """Labels in pick order (the packer takes them off the printer in that order); the rest
    as selected."""
    if selection.kind != ExportKind.LABELS:
        return list(selection.ids)
    return list(printing.pick_order(selection.ids))


def _merge(parts: list[Path], out: Path) -> int:
    """Concatenate the chunk PDFs from disk into `out`; returns the pages. One chunk is kept
    as it is (a stored invoice's bytes stay the same)."""
    if len(parts) == 1:
        parts[0].replace(out)
        return page_count(out.read_bytes())
    return merge_pdf_files(parts, out)
