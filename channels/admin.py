"""Admin for sales channels and their syncs.

- Channels: integration settings (the password is write-only and encrypted at rest: pages say
  only whether one is set, even to view-only users), capability flags (the type's preset on
  creation), sync settings; actions to pull orders or sync statuses now (queued, visible as
  runs) and to re-sync from a chosen date.
- Recurrent task runs: every run of the order pull and status syncs, scheduled or manual, with
  its outcome, counts, progress and message; its page lists what happened per order and the
  errors, and refreshes itself while the run is going.
- Sync errors per order; cursors and leases (read-only).
"""

from __future__ import annotations

import json
from datetime import datetime, time

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from listings.admin_actions import has_push_inventory_permission, push_channel_inventory_now
from orders.models import Order
from uniware.core.admin_utils import (
    FastChangeListMixin,
    ReadOnlyAdminMixin,
    Table,
    changelist_url,
    form_step,
    link,
    plural,
    recent_filter,
    selected_ids,
    status_badge,
    work_list_filter,
)

from . import tasks
from .admin_forms import ChannelForm, DismissForm, ResyncForm
from .models import (
    Channel,
    RunOutcome,
    RunTrigger,
    SyncCursor,
    SyncError,
    SyncErrorState,
    SyncKind,
    SyncLease,
    SyncRun,
)
from .sync import resync_from
from .sync.errors import errors_dismiss
from .sync.runs import new_run, queue_after_commit, refusal, refuse

OUTCOME_COLOUR_STATUS = {  # reuse the status badge colours
    RunOutcome.SUCCESS: "COMPLETE",
    RunOutcome.PARTIAL: "UNFULFILLABLE",
    RunOutcome.FAILED: "UNFULFILLABLE",
    RunOutcome.REFUSED: "CANCELLED",
    RunOutcome.ABANDONED: "CANCELLED",
    RunOutcome.RUNNING: "PROCESSING",
    RunOutcome.QUEUED: "PROCESSING",
}
TASK_OF_KIND = {
    SyncKind.ORDER_PULL: "channels.tasks.pull_orders",
    SyncKind.STATUS: "channels.tasks.sync_status",
    SyncKind.DELIVERY: "channels.tasks.sync_deliveries",
    SyncKind.RETURNS: "channels.tasks.sync_returns",
}


def when(value) -> str:
    return timezone.localtime(value).strftime("%d %b %Y %H:%M:%S") if value else "—"


def outcome_badge(run: SyncRun):
    return status_badge(OUTCOME_COLOUR_STATUS.get(run.outcome, ""), run.get_outcome_display())


def progress_text(run: SyncRun) -> str:
    if not run.progress_total:
        return f"{run.progress_done}" if run.progress_done else "—"
    share = 100 * run.progress_done // run.progress_total
    return f"{run.progress_done}/{run.progress_total} ({share}%)"


def queue_run(run: SyncRun) -> None:
    """Queue the task of a QUEUED run once the transaction commits (the worker must see it)."""
    task = {
        SyncKind.ORDER_PULL: tasks.pull_orders,
        SyncKind.SELECTED: tasks.sync_selected_orders,
        SyncKind.STATUS: tasks.sync_status,
        SyncKind.DELIVERY: tasks.sync_deliveries,
        SyncKind.RETURNS: tasks.sync_returns,
    }[run.kind]
    queue_after_commit(run, task)


# --- Channels ---------------------------------------------------------------------------------


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = [
        "code",
        "name",
        "channel_type",
        "is_enabled",
        "sync_enabled",
        "supports_status_sync",
        "status_sync_channel_shipped_only",
        "base_url",
    ]
    list_filter = ["channel_type", "is_enabled", "sync_enabled"]
    search_fields = ["=code", "name"]
    change_form_template = "admin/uniware/change_form.html"
    actions = ["pull_now", "sync_status_now", "sync_deliveries_now", "sync_returns_now", "resync"]
    actions += [push_channel_inventory_now]  # listings.push_channellisting
    has_push_inventory_permission = has_push_inventory_permission
    capability_fields = [
        "supports_status_sync",
        "status_sync_channel_shipped_only",
        "provides_shipping",
        "accepts_status_notifications",
        "accepts_cancel",
        "accepts_dispatch",
        "accepts_inventory",
    ]

    readonly_fields = ["password_status", "refresh_token_status"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["code", "name", "channel_type", "is_enabled"]}),
            ("Integration", {"fields": self.integration_fields(request, obj)}),
        ]
        if obj is not None:
            fieldsets.append(("Capabilities", {"fields": self.capability_fields}))
        fieldsets.append(
            (
                "Sync settings",
                {
                    "fields": [
                        "sync_enabled",
                        ("pull_window_days", "pull_statuses"),
                        ("page_size", "status_batch_size"),
                        "return_window_days",
                        ("request_timeout", "max_attempts", "retry_base_delay"),
                    ]
                },
            )
        )
        if obj is None:
            fieldsets[0][1]["description"] = (
                "The capabilities start as the channel type's preset; change them once saved."
            )
        return fieldsets

    def integration_fields(self, request, obj) -> list[str]:
        """The password is write-only: a new channel gets the input; a saved one shows only
        whether one is set, plus the input and "remove" to those who may change it. A
        view-only user (whose page renders every field's value) never gets the field."""
        if obj is None:
            return ["base_url", "username", "password", "refresh_token", "api_settings"]
        shown = ["base_url", "username", "password_status", "refresh_token_status"]
        if not self.has_change_permission(request, obj):
            return [*shown, "api_settings"]
        secrets = ["password", "clear_password", "refresh_token", "clear_refresh_token"]
        return [*shown, *secrets, "api_settings"]

    @admin.display(description="saved password")
    def password_status(self, obj: Channel) -> str:
        return "set" if obj.password else "not set"

    @admin.display(description="saved refresh token")
    def refresh_token_status(self, obj: Channel) -> str:
        return "set" if obj.refresh_token else "not set"

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.apply_preset()
        super().save_model(request, obj, form, change)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = channel_tables(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- actions ---------------------------------------------------------------------------

    def has_sync_permission(self, request) -> bool:
        return request.user.has_perm("channels.sync_channel")

    def _queue(self, request, queryset, kind: str) -> None:
        queued, refused = [], []
        for channel in queryset.order_by("code"):
            run = new_run(
                kind, channel, task=TASK_OF_KIND[kind], trigger=RunTrigger.MANUAL, user=request.user
            )
            why = refusal(kind, channel)
            if why:
                refuse(run, why)
                refused.append(f"{channel.code}: {why}")
                continue
            queue_run(run)
            queued.append(run)
        if queued:
            messages.success(
                request,
                format_html(
                    "{} queued for {}: follow it in <a href='{}'>recurrent task runs</a>.",
                    SyncKind(kind).label,
                    ", ".join(r.channel.code for r in queued),
                    changelist_url(SyncRun),
                ),
            )
        for line in refused:
            messages.error(request, f"{SyncKind(kind).label} refused for {line}")

    @admin.action(description="Pull orders now", permissions=["sync"])
    def pull_now(self, request, queryset):
        self._queue(request, queryset, SyncKind.ORDER_PULL)

    @admin.action(description="Sync dispatched/cancelled status now", permissions=["sync"])
    def sync_status_now(self, request, queryset):
        self._queue(request, queryset, SyncKind.STATUS)

    @admin.action(description="Sync delivered/returned status now", permissions=["sync"])
    def sync_deliveries_now(self, request, queryset):
        self._queue(request, queryset, SyncKind.DELIVERY)

    @admin.action(description="Sync returns now", permissions=["sync"])
    def sync_returns_now(self, request, queryset):
        self._queue(request, queryset, SyncKind.RETURNS)

    @admin.action(description="Re-sync from a chosen date…", permissions=["sync"])
    def resync(self, request, queryset):
        channels = list(queryset.order_by("code"))
        form = ResyncForm(request.POST if request.POST.get("confirm_resync") else None)
        if form.is_bound and form.is_valid():
            kind, since = form.cleaned_data["kind"], form.cleaned_data["since"]
            moment = timezone.make_aware(datetime.combine(since, time.min))
            for channel in channels:
                resync_from(channel, kind, moment)
            messages.success(
                request,
                f"The next “{SyncKind(kind).label}” run of {', '.join(map(str, channels))} "
                f"covers orders from {since:%d %b %Y}.",
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Re-sync from a chosen date",
            "opts": self.opts,
            "form": form,
            "channels": channels,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/channels/channel/resync.html", context)


def channel_tables(channel: Channel) -> list[Table]:
    cursors = Table(
        "Sync cursors",
        ["Sync", "Synced up to", "Re-sync from", "Last run"],
        empty="No sync has run yet.",
    )
    for cursor in channel.sync_cursors.select_related("last_run").order_by("kind"):
        cursors.add(
            cursor.get_kind_display(),
            when(cursor.synced_up_to),
            when(cursor.resync_from),
            link(cursor.last_run) if cursor.last_run_id else "—",
        )
    leases = Table("Leases held", ["Sync", "Run", "Until"], empty="No sync is running.")
    now = timezone.now()
    for lease in channel.sync_leases.exclude(holder="").order_by("kind"):
        expired = " (expired)" if lease.expires_at and lease.expires_at < now else ""
        leases.add(lease.get_kind_display(), f"#{lease.holder}", when(lease.expires_at) + expired)
    runs = Table(
        "Latest runs",
        ["Run", "Outcome", "Started", "Seen", "Changed", "Failed", "Message"],
        empty="No runs yet.",
    )
    for run in channel.sync_runs.order_by("-id")[:10]:
        runs.add(
            link(run),
            outcome_badge(run),
            when(run.started_at),
            run.seen,
            run.changed,
            run.failed,
            run.message.splitlines()[0] if run.message else "",
        )
    every = changelist_url(SyncRun, channel__id__exact=channel.pk)
    runs.note = format_html('<a href="{}">All runs of {}</a>', every, channel)
    return [cursors, leases, runs]


# --- Runs --------------------------------------------------------------------------------------


@admin.register(SyncRun)
class SyncRunAdmin(FastChangeListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The recurrent task runs: what ran when, for which channel, how it ended and why."""

    list_display = [
        "id",
        "what",
        "channel",
        "trigger",
        "started_at",
        "finished_at",
        "outcome_badge",
        "seen",
        "changed",
        "unchanged",
        "failed",
        "progress",
        "short_message",
    ]
    list_display_links = ["id", "what"]
    list_select_related = ["channel"]
    list_filter = ["outcome", "kind", "channel", "trigger", recent_filter("created_at", "created")]
    sortable_by = ["id", "started_at"]
    change_form_template = "admin/channels/syncrun/change_form.html"
    fields = [
        ("task", "kind"),
        ("channel", "trigger", "requested_by"),
        ("outcome_badge", "progress"),
        ("created_at", "started_at", "finished_at"),
        ("window_from", "window_to"),
        ("seen", "changed", "unchanged", "failed", "retries"),
        "message",
    ]
    readonly_fields = [
        "task",
        "kind",
        "channel",
        "trigger",
        "requested_by",
        "outcome_badge",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "window_from",
        "window_to",
        "seen",
        "changed",
        "unchanged",
        "failed",
        "retries",
        "message",
    ]

    @admin.display(description="task", ordering="kind")
    def what(self, run: SyncRun) -> str:
        """The task in words ("Order pull"); its Celery name is on the run's page."""
        return run.get_kind_display()

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, run: SyncRun):
        return outcome_badge(run)

    @admin.display(description="progress")
    def progress(self, run: SyncRun) -> str:
        return progress_text(run)

    @admin.display(description="message")
    def short_message(self, run: SyncRun) -> str:
        first = run.message.splitlines()[0] if run.message else ""
        return first if len(first) <= 120 else first[:117] + "..."

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = run_tables(obj)
            context["run_in_progress"] = not obj.is_finished
        return super().render_change_form(request, context, add, change, form_url, obj)


def run_tables(run: SyncRun) -> list[Table]:
    report = Table(
        "Orders", ["Order", "Result", "What changed, or why not"], empty="No order reported."
    )
    codes = [line[0] for line in run.report[:500]]
    orders = {o.code: o for o in Order.objects.filter(code__in=codes).only("pk", "code")}
    for code, outcome, detail in run.report[:500]:
        report.add(link(orders.get(code), code) if code in orders else code, outcome, detail)
    if len(run.report) > 500:
        report.note = f"Showing 500 of {len(run.report)} orders."
    errors = Table("Sync errors", ["Order", "Kind", "Message"], empty="No errors.")
    for error in run.errors.select_related("order").order_by("pk")[:500]:
        errors.add(
            link(error.order) if error.order_id else error.channel_order_id or "—",
            error.get_kind_display(),
            error.message,
        )
    return [report, errors]


class NotCreatedFilter(admin.SimpleListFilter):
    """Channel orders we could not create (refused, unknown SKU, malformed): staff see them
    with the channel's data, to fix the cause or key the order in."""

    title = "order"
    parameter_name = "not_created"

    def lookups(self, request, model_admin):
        return [("1", "Not created (channel orders refused)")]

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset.filter(order__isnull=True).exclude(channel_order_id="")
        return queryset


# Open errors unless another state is chosen: the list is a to-do list.
SyncErrorStateFilter = work_list_filter(
    "state", SyncErrorState.choices, SyncErrorState.OPEN, title="state"
)


@admin.action(description="Dismiss with a reason…", permissions=["dismiss"])
def dismiss_errors(modeladmin, request, queryset):
    form, page = form_step(
        modeladmin,
        request,
        queryset,
        DismissForm,
        action="dismiss_errors",
        title="Dismiss sync errors",
        intro="Dismissed errors leave the open list; the reason stays on each of them.",
        submit="Dismiss these errors",
    )
    if form is None:
        return page
    ids = selected_ids(queryset)
    count = errors_dismiss(ids, reason=form.cleaned_data["reason"], user=request.user)
    skipped = len(ids) - count
    note = f" ({skipped} were not open and kept their state)" if skipped else ""
    modeladmin.message_user(request, f"Dismissed {plural(count, 'sync error')}{note}.")
    return None


@admin.register(SyncError)
class SyncErrorAdmin(FastChangeListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "channel",
        "order_link",
        "channel_order_id",
        "kind",
        "message",
        "state_shown",
        "run_link",
    ]
    actions = [dismiss_errors]
    list_filter = [
        SyncErrorStateFilter,
        "kind",
        NotCreatedFilter,
        "channel",
        recent_filter("created_at", "created"),
    ]
    list_select_related = ["channel", "order", "run"]
    readonly_fields = ["channel_data"]
    search_fields = ["channel_order_id"]
    search_help_text = "Exact order code or channel order id."
    sortable_by = ["created_at"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(order__code=term) | Q(channel_order_id=term)), False

    def has_dismiss_permission(self, request) -> bool:
        return request.user.has_perm("channels.dismiss_syncerror")

    @admin.display(description="state")
    def state_shown(self, error: SyncError):
        if error.state == SyncErrorState.OPEN:
            return "open"
        return f"{error.get_state_display()}: {error.resolution}"

    @admin.display(description="order")
    def order_link(self, error: SyncError):
        return link(error.order) if error.order_id else "—"

    @admin.display(description="run")
    def run_link(self, error: SyncError):
        return link(error.run, f"#{error.run_id}")

    @admin.display(description="channel data (as received)")
    def channel_data(self, error: SyncError):
        if not error.data:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(error.data, indent=2, ensure_ascii=False))


@admin.register(SyncCursor)
class SyncCursorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Our own "synced up to" per channel and kind; move it back with the channels' action
    "Re-sync from a chosen date"."""

    list_display = ["channel", "kind", "synced_up_to", "resync_from", "last_run", "updated_at"]
    list_filter = ["channel", "kind"]
    list_select_related = ["channel", "last_run"]


@admin.register(SyncLease)
class SyncLeaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["channel", "kind", "holder", "acquired_at", "expires_at"]
    list_filter = ["channel", "kind"]
    list_select_related = ["channel"]
