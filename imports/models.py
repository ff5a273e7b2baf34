"""Import and export jobs: an uploaded file (or a requested export), its progress and its
report. Files live in the default storage (MEDIA_ROOT or a shared bucket), so the web process
that received an upload and the Celery worker that reads it need not be the same machine.

Job statuses are bookkeeping, not domain states: the services in `imports.services` move
them with guarded updates (`UPDATE ... WHERE status = <expected>`), so a job confirmed twice,
or redelivered to a second worker, runs once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ImportKind(models.TextChoices):
    ORDERS = "ORDERS", "Orders (one row per order line)"
    INVENTORY = "INVENTORY", "Stock (added to shelves)"
    SERVICEABILITY = "SERVICEABILITY", "Serviceability (replaces every row)"
    LISTINGS = "LISTINGS", "Channel listings (created or updated)"


class ExportKind(models.TextChoices):
    ORDERS = "ORDERS", "Orders (one row per order line)"
    UNITS = "UNITS", "Units (one row per unit)"
    SHIPMENTS = "SHIPMENTS", "Shipments"
    INVENTORY = "INVENTORY", "Stock"
    SERVICEABILITY = "SERVICEABILITY", "Serviceability"
    LISTINGS = "LISTINGS", "Channel listings"
    # Printed documents (format PDF): bulk prints from the admin too big for one request
    # (imports.printing).
    LABELS = "LABELS", "Shipping labels"
    INVOICES = "INVOICES", "Tax invoices"
    CREDIT_NOTES = "CREDIT_NOTES", "Credit notes"
    PICKLISTS = "PICKLISTS", "Picklists"
    MANIFESTS = "MANIFESTS", "Manifest handover sheets"


# The kinds a worker prints (format PDF) rather than exports as a table.
PRINT_KINDS = [
    ExportKind.LABELS,
    ExportKind.INVOICES,
    ExportKind.CREDIT_NOTES,
    ExportKind.PICKLISTS,
    ExportKind.MANIFESTS,
]


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (XLSX)"
    PDF = "pdf", "PDF (printed documents)"


TABLE_FORMATS = [ExportFormat.CSV, ExportFormat.XLSX]


class JobStatus(models.TextChoices):
    PENDING = "PENDING", "Waiting to be checked"
    VALIDATING = "VALIDATING", "Checking the file"
    VALIDATED = "VALIDATED", "Checked: waiting for confirmation"
    QUEUED = "QUEUED", "Waiting for a worker"
    RUNNING = "RUNNING", "Running"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"
    DISCARDED = "DISCARDED", "Discarded"


ACTIVE = [JobStatus.PENDING, JobStatus.VALIDATING, JobStatus.QUEUED, JobStatus.RUNNING]


class ImportJob(models.Model):
    """One uploaded file: checked in the background (the preview), then imported when staff
    confirm, all of it or only the valid records."""

    kind = models.CharField(max_length=20, choices=ImportKind.choices)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.PENDING)
    file = models.FileField(upload_to="imports/uploads/%Y/%m/", max_length=255)
    original_name = models.CharField("file name", max_length=255)
    size = models.PositiveBigIntegerField("size (bytes)", default=0)
    valid_only = models.BooleanField(
        "import only the valid records", default=False, help_text="Chosen at confirmation."
    )

    total_rows = models.PositiveIntegerField("data rows", default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField("errors", default=0)
    new_count = models.PositiveIntegerField("valid and new", default=0)
    invalid_count = models.PositiveIntegerField("invalid records", default=0)
    skipped_count = models.PositiveIntegerField("already there (skipped)", default=0)
    created_count = models.PositiveIntegerField("imported", default=0)
    failed_count = models.PositiveIntegerField("failed at import", default=0)

    error_report = models.FileField(upload_to="imports/reports/%Y/%m/", max_length=255, blank=True)
    fix_file = models.FileField(
        "rows to fix",
        upload_to="imports/reports/%Y/%m/",
        max_length=255,
        blank=True,
        help_text="The rows not imported, as uploaded, with an errors column: fix, upload back.",
    )
    preview = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    files_deleted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the upload, its report and the preview were deleted (retention, or "
        "discarded).",
    )
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Written by the worker while it checks or imports the file; a job whose "
        "heartbeat stops is resumed by the reaper (imports.recovery).",
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Times a worker started checking or importing the file."
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "import"
        indexes = [models.Index(fields=["status", "-id"], name="importjob_status_idx")]
        permissions = [
            ("import_orders", "Can import orders"),
            ("import_inventory", "Can import stock"),
            ("import_serviceability", "Can import serviceability"),
            ("import_listings", "Can import channel listings"),
            # One permission for both kinds of job (see imports.access).
            ("view_all_jobs", "Can see other users' import and export jobs"),
        ]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.get_kind_display().split(' (')[0]}: {self.original_name})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status in (JobStatus.DONE, JobStatus.VALIDATED) else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


class ExportJob(models.Model):
    """An export too big to stream in the request: written by a worker to a file."""

    kind = models.CharField(max_length=20, choices=ExportKind.choices)
    format = models.CharField(max_length=4, choices=ExportFormat.choices, default="csv")
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    query = models.TextField(
        "changelist filters", blank=True, help_text="The changelist query string exported."
    )
    file = models.FileField(upload_to="exports/%Y/%m/", max_length=255, blank=True)
    total_rows = models.PositiveIntegerField("records", default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    written_rows = models.PositiveIntegerField("rows written", default=0)
    message = models.TextField(blank=True)
    files_deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the exported file was deleted (retention)."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Written by the worker while it writes the file."
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Times a worker started writing the file."
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "export"
        permissions = [
            ("export_orders", "Can export orders, units and shipments"),
            ("export_inventory", "Can export stock and serviceability"),
            ("export_listings", "Can export channel listings"),
        ]

    def __str__(self) -> str:
        return f"Export #{self.pk} ({self.get_kind_display().split(' (')[0]}, {self.format})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == JobStatus.DONE else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))
