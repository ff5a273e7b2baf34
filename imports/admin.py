"""Admin pages for imports and exports.

Why not django-import-export's ImportMixin for these: its import runs in the web request
(twice: dry run, then confirm), holds the whole file in memory as a tablib Dataset, and offers
no "import only the valid rows". A 100,000-line file needs a background job with a progress
bar, so imports are `ImportJob`s: upload (returns at once) -> background check -> preview page
with every error (row, column, value) -> confirm (everything, or only the valid records) ->
background import with progress -> result with a downloadable row-level report.

Exports start from buttons on the changelists of orders, units, shipments, stock and
serviceability (templates `admin/<app>/<model>/change_list.html` of this app add them, so the
ModelAdmins themselves are untouched). They export exactly what the changelist shows (its
filters and search): a small result streams back at once; a large one becomes an `ExportJob`
written by a worker, with a progress bar and a download link.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from uniware.core.admin_utils import status_badge

from . import services
from .access import may_see_job, visible_jobs
from .exporters import EXPORTS, changelist_queryset, rows_of
from .models import (
    PRINT_KINDS,
    TABLE_FORMATS,
    ExportFormat,
    ExportJob,
    ExportKind,
    ImportJob,
    ImportKind,
    JobStatus,
)
from .resources import COLUMNS
from .retention import retention_days
from .uploads import upload_view
from .writers import csv_chunks, xlsx_write

# Exports of at most this many records stream back in the request; bigger ones run in the
# background. Class attribute so tests (and deployments) can change it.
SYNC_EXPORT_MAX = 5000

STATUS_COLOURS = {
    JobStatus.DONE: "COMPLETE",
    JobStatus.FAILED: "UNFULFILLABLE",
    JobStatus.DISCARDED: "CANCELLED",
    JobStatus.VALIDATED: "PENDING_VERIFICATION",
}


def job_badge(job) -> str:
    return status_badge(STATUS_COLOURS.get(job.status, "PROCESSING"), job.get_status_display())


def job_progress(job) -> dict:
    """What the progress bar shows (also the JSON the job page polls)."""
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "active": job.is_active,
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "percent": job.percent,
        **{
            name: getattr(job, name)
            for name in (
                "error_count",
                "new_count",
                "invalid_count",
                "skipped_count",
                "created_count",
                "failed_count",
                "written_rows",
            )
            if hasattr(job, name)
        },
        "message": job.message,
    }


def _any_import_permission(user) -> bool:
    return any(services.can_import(user, kind) for kind in ImportKind.values)


def _any_export_permission(user) -> bool:
    return any(services.can_export(user, kind) for kind in ExportKind.values)


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label="What to import")
    file = forms.FileField(
        label="File",
        help_text="CSV (UTF-8 or Excel's CSV, comma, semicolon or tab separated) or XLSX "
        "(first sheet). The first row names the columns.",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [
            (kind, label) for kind, label in ImportKind.choices if services.can_import(user, kind)
        ]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "kind",
        "status_badge",
        "progress",
        "new_count",
        "error_count",
        "skipped_count",
        "created_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]
    show_full_result_count = False
    add_form_template = "admin/imports/importjob/upload.html"
    change_form_template = "admin/imports/importjob/job.html"

    # --- Permissions: the import permission of a kind; the job pages are read-only --------

    def has_module_permission(self, request) -> bool:
        return _any_import_permission(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        """The pages: an import permission or view_importjob; a job: also `may_see_job`."""
        allowed = _any_import_permission(request.user) or super().has_view_permission(request)
        return allowed and (obj is None or may_see_job(request.user, obj))

    def get_queryset(self, request):
        return visible_jobs(super().get_queryset(request), request.user)

    def has_add_permission(self, request) -> bool:
        return _any_import_permission(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ImportJob):
        return job_badge(obj)

    @admin.display(description="progress")
    def progress(self, obj: ImportJob) -> str:
        if obj.total_rows:
            return f"{obj.processed_rows:,} / {obj.total_rows:,} rows"
        return f"{obj.processed_rows:,} rows" if obj.processed_rows else "—"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "template/<str:kind>/",
                view(self.template_view),
                name="imports_importjob_template",
            ),
            path(
                "<int:job_id>/progress/",
                view(self.progress_view),
                name="imports_importjob_progress",
            ),
            path(
                "<int:job_id>/confirm/", view(self.confirm_view), name="imports_importjob_confirm"
            ),
            path(
                "<int:job_id>/discard/", view(self.discard_view), name="imports_importjob_discard"
            ),
            path("<int:job_id>/report/", view(self.report_view), name="imports_importjob_report"),
            # before the admin's own add/: the upload view changes the upload handlers
            path("add/", view(upload_view(self)), name="imports_importjob_add"),
            *super().get_urls(),
        ]

    def _job(self, request, job_id: int) -> ImportJob:
        """The job, if the user may see it; a job they may not see is a 404, like a missing
        one (ids are not probed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=job_id)

    # --- Upload ---------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None, upload_error: str = ""):
        """The upload form (reached through `uploads.upload_view`, which enforces the size
        limit while the body streams; `upload_error` is its refusal)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"kind": request.POST.get("kind") or request.GET.get("kind", ImportKind.ORDERS)}
        if upload_error:
            form = UploadForm(user=request.user, initial=initial)
            form.cleaned_data = {}  # an unbound form, shown again with the refusal
            form.add_error("file", upload_error)
        else:
            form = UploadForm(
                request.POST or None, request.FILES or None, user=request.user, initial=initial
            )
        if request.method == "POST" and not upload_error and form.is_valid():
            try:
                job = services.import_job_create(
                    kind=form.cleaned_data["kind"],
                    upload=form.cleaned_data["file"],
                    user=request.user,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(
                    request,
                    f"{job} uploaded. It is being checked; nothing is imported until you confirm.",
                )
                return HttpResponseRedirect(
                    reverse("admin:imports_importjob_change", args=[job.pk])
                )
        kinds = [
            {
                "kind": kind,
                "label": label,
                "columns": COLUMNS[kind],
                "template_url": reverse("admin:imports_importjob_template", args=[kind]),
            }
            for kind, label in form.fields["kind"].choices
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Import a file",
            "opts": self.opts,
            "form": form,
            "kinds": kinds,
            "max_mb": settings.IMPORTS_MAX_UPLOAD_MB,
            "has_view_permission": self.has_view_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.add_form_template, context)

    def template_view(self, request, kind: str):
        """A CSV with the header and one example row, to fill in."""
        if kind not in ImportKind.values:
            raise Http404
        if not services.can_import(request.user, kind):
            raise PermissionDenied
        columns = COLUMNS[kind]
        body = b"".join(
            csv_chunks([c.name for c in columns], [[c.example for c in columns]], bom=True)
        )
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{kind.lower()}-template.csv"'
        return response

    # --- The job page (preview, confirm, progress, result) --------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._job(request, int(object_id) if str(object_id).isdigit() else 0)
        may_run = services.can_import(request.user, job.kind)
        noun = {"ORDERS": "orders", "INVENTORY": "stock rows", "SERVICEABILITY": "rows"}[job.kind]
        context = {
            **self.admin_site.each_context(request),
            "title": str(job),
            "opts": self.opts,
            "job": job,
            "badge": job_badge(job),
            "noun": noun,
            "preview": job.preview or {},
            "may_run": may_run and job.status == JobStatus.VALIDATED,
            "may_discard": may_run
            and job.status in (JobStatus.PENDING, JobStatus.VALIDATED, JobStatus.FAILED),
            "progress_url": reverse("admin:imports_importjob_progress", args=[job.pk]),
            "report_url": reverse("admin:imports_importjob_report", args=[job.pk])
            if job.error_report
            else "",
            "fix_url": reverse("admin:imports_importjob_report", args=[job.pk]) + "?rows=1"
            if job.fix_file
            else "",
            "retention_days": retention_days(),
            "has_view_permission": True,
            "replaces": job.kind == ImportKind.SERVICEABILITY,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.change_form_template, context)

    def progress_view(self, request, job_id: int):
        return JsonResponse(job_progress(self._job(request, job_id)))

    @staticmethod
    def _back(job: ImportJob) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:imports_importjob_change", args=[job.pk]))

    def confirm_view(self, request, job_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = self._runnable_job(request, job_id)
        valid_only = request.POST.get("valid_only") == "1"
        try:
            services.import_job_confirm(job, valid_only=valid_only, user=request.user)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            what = "the valid records" if valid_only else "the file"
            messages.success(request, f"Importing {what} in the background.")
        return self._back(job)

    def discard_view(self, request, job_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = self._runnable_job(request, job_id)
        try:
            services.import_job_discard(job, user=request.user)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            messages.success(request, f"{job} discarded; nothing was imported.")
        return self._back(job)

    def _runnable_job(self, request, job_id: int) -> ImportJob:
        """A job the user may see and, to confirm or discard it, import (of its kind)."""
        job = self._job(request, job_id)
        if not services.can_import(request.user, job.kind):
            raise PermissionDenied
        return job

    def report_view(self, request, job_id: int):
        """The row-level report; with `?rows=1` the rows to fix (the same permission)."""
        job = self._job(request, job_id)
        stored = job.fix_file if request.GET.get("rows") else job.error_report
        if not stored:
            raise Http404
        return FileResponse(
            stored.open("rb"),
            as_attachment=True,
            filename=stored.name.rsplit("/", 1)[-1],
            content_type="text/csv; charset=utf-8",
        )


# --- Export ---------------------------------------------------------------------------------


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "kind",
        "format",
        "status_badge",
        "progress",
        "written_rows",
        "created_by",
        "created_at",
    ]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]
    show_full_result_count = False
    change_form_template = "admin/imports/exportjob/job.html"
    sync_export_max = SYNC_EXPORT_MAX

    def has_module_permission(self, request) -> bool:
        return _any_export_permission(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        """The pages: an export (or print) permission or view_exportjob; a job: also
        `may_see_job`, and staff who only print see only print jobs."""
        allowed = _any_export_permission(request.user) or super().has_view_permission(request)
        if obj is None or not allowed:
            return allowed
        seen = obj.kind in PRINT_KINDS or self._sees_exports(request)
        return seen and may_see_job(request.user, obj)

    def _sees_exports(self, request) -> bool:
        """Exports are for whoever may export or see export jobs; staff who reach these pages
        by printing only (Pick and Pack, Returns) see their print jobs only."""
        user = request.user
        exporter = any(services.can_export(user, kind) for kind in EXPORTS)
        return exporter or super().has_view_permission(request)

    def get_queryset(self, request):
        jobs = visible_jobs(super().get_queryset(request), request.user)
        return jobs if self._sees_exports(request) else jobs.filter(kind__in=PRINT_KINDS)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ExportJob):
        return job_badge(obj)

    @admin.display(description="progress")
    def progress(self, obj: ExportJob) -> str:
        return f"{obj.processed_rows:,} / {obj.total_rows:,}" if obj.total_rows else "—"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "start/<str:kind>/<str:fmt>/",
                view(self.start_view),
                name="imports_exportjob_start",
            ),
            path(
                "<int:job_id>/progress/",
                view(self.progress_view),
                name="imports_exportjob_progress",
            ),
            path(
                "<int:job_id>/download/",
                view(self.download_view),
                name="imports_exportjob_download",
            ),
            *super().get_urls(),
        ]

    def _job(self, request, job_id: int) -> ExportJob:
        """As ImportJobAdmin._job: 404 for a job the user may not see."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=job_id)

    def start_view(self, request, kind: str, fmt: str):
        """Export what the changelist shows: the query string carries its filters."""
        kind, fmt = kind.upper(), fmt.lower()
        if kind not in EXPORTS or fmt not in TABLE_FORMATS:  # PDFs: printed by imports.printing
            raise Http404
        spec = EXPORTS[kind]
        model_admin = self.admin_site._registry.get(spec.model)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if (
            not services.can_export(request.user, kind)
            or model_admin is None
            or not model_admin.has_view_permission(request)
        ):
            raise PermissionDenied
        query = request.GET.urlencode()
        changelist = reverse(
            f"admin:{spec.model._meta.app_label}_{spec.model._meta.model_name}_changelist"
        )
        try:
            queryset = changelist_queryset(spec.model, request.user, query)
        except IncorrectLookupParameters:
            messages.error(request, "These filters cannot be exported; reset them and try again.")
            return HttpResponseRedirect(changelist)
        total = queryset.order_by()[: self.sync_export_max + 1].count()
        if total > self.sync_export_max:
            exact = queryset.order_by().count()
            try:
                job = services.export_job_create(
                    kind=kind, fmt=fmt, query=query, user=request.user, total=exact
                )
            except ValidationError as exc:
                messages.error(request, "; ".join(exc.messages))
                return HttpResponseRedirect(f"{changelist}?{query}")
            messages.success(
                request,
                f"{exact:,} {spec.noun}s are being exported in the background; the file "
                "will be ready to download here.",
            )
            return HttpResponseRedirect(reverse("admin:imports_exportjob_change", args=[job.pk]))
        header, rows, _ = rows_of(spec, queryset)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        filename = f"{kind.lower()}-{stamp}.{fmt}"
        if fmt == ExportFormat.CSV:
            response = StreamingHttpResponse(
                csv_chunks(header, rows), content_type="text/csv; charset=utf-8"
            )
        else:
            import io

            buffer = io.BytesIO()
            xlsx_write(buffer, header, rows, title=kind.lower())
            response = HttpResponse(
                buffer.getvalue(),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._job(request, int(object_id) if str(object_id).isdigit() else 0)
        context = {
            **self.admin_site.each_context(request),
            "title": str(job),
            "opts": self.opts,
            "job": job,
            "badge": job_badge(job),
            "progress_url": reverse("admin:imports_exportjob_progress", args=[job.pk]),
            "download_url": reverse("admin:imports_exportjob_download", args=[job.pk])
            if job.file
            else "",
            "retention_days": retention_days(),
            "has_view_permission": True,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.change_form_template, context)

    def progress_view(self, request, job_id: int):
        return JsonResponse(job_progress(self._job(request, job_id)))

    def download_view(self, request, job_id: int):
        job = self._job(request, job_id)
        if not job.file:
            raise Http404
        content_type = {
            ExportFormat.CSV: "text/csv; charset=utf-8",
            ExportFormat.PDF: "application/pdf",  # shown by the browser, to print
        }.get(job.format, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        return FileResponse(
            job.file.open("rb"),
            as_attachment=job.format != ExportFormat.PDF,
            filename=job.file.name.rsplit("/", 1)[-1],
            content_type=content_type,
        )
