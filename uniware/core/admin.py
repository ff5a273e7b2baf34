"""Admin for the tenant (a singleton), numbering sequences and the audit of administration.
The audit trail of state changes (`StateChange`) is administered by the app whose objects it
records and searches by their codes: `orders.admin.audit`."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .admin_utils import (
    FastChangeListMixin,
    ReadOnlyAdminMixin,
    SaveChangedFieldsMixin,
    recent_filter,
)
from .models import AdminAuditEvent, Sequence, Tenant

admin.site.site_header = "Uniware back-office"
admin.site.site_title = "Uniware"
admin.site.index_title = "Warehouse dashboard"


class TenantForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        choices=[(z, z) for z in sorted(zoneinfo.available_timezones())],
        help_text="Dates on documents and reports use this zone.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "is_live", "traceability", "time_zone"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """One row (pk=1): the list goes straight to it; it cannot be added twice or deleted."""

    form = TenantForm
    list_display = ["name", "is_live", "traceability", "time_zone", "updated_at"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        tenant = Tenant.get()
        return HttpResponseRedirect(reverse("admin:core_tenant_change", args=[tenant.pk]))


@admin.register(Sequence)
class SequenceAdmin(SaveChangedFieldsMixin, admin.ModelAdmin):
    """The next number is set when the sequence is added; afterwards only services move it
    (under a row lock), so an edited prefix never puts back a number already used."""

    list_display = ["name", "facility", "prefix", "next_number", "padding", "restarts_yearly"]
    list_filter = ["name", "facility"]
    list_select_related = ["facility"]
    search_fields = ["=name", "=prefix"]
    fields = ["name", "facility", "prefix", "next_value", "padding", "restarts_yearly"]

    def get_readonly_fields(self, request, obj=None):
        return ["next_value"] if obj is not None else []

    @admin.display(description="next number")
    def next_number(self, obj: Sequence) -> str:
        return obj.format(obj.next_value)


def describe_changes(changes: dict) -> list[tuple[str, str]]:
    """(field, what happened) lines of an audit event's changes, for people."""
    lines = []
    for name, value in (changes or {}).items():
        if isinstance(value, list) and len(value) == 2:
            text = f"{value[0]!s} → {value[1]!s}"
        elif isinstance(value, dict):
            text = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in value.items())
        else:
            text = str(value)
        lines.append((name, text))
    return lines


@admin.register(AdminAuditEvent)
class AdminAuditEventAdmin(FastChangeListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who changed roles, users, channel credentials and settings, when, and what (never a
    secret). Append-only: nobody adds, edits or deletes events here; seeing them takes
    `core.view_adminauditevent`."""

    list_display = ["at", "actor", "action", "object_type", "object_repr", "summary"]
    list_filter = ["object_type", "action", recent_filter("at", "when")]
    search_fields = ["object_repr", "actor"]
    search_help_text = "Object (user name, group, channel code ...) or who acted."
    sortable_by = ["at"]
    fields = [
        ("at", "actor", "actor_user"),
        ("object_type", "object_id", "object_repr"),
        "action",
        "changes_table",
    ]
    readonly_fields = [
        "at",
        "actor",
        "actor_user",
        "object_type",
        "object_id",
        "object_repr",
        "action",
        "changes_table",
    ]

    @admin.display(description="what changed")
    def summary(self, event: AdminAuditEvent) -> str:
        text = ", ".join(f"{name}: {what}" for name, what in describe_changes(event.changes))
        return text if len(text) <= 160 else text[:157] + "..."

    @admin.display(description="changes")
    def changes_table(self, event: AdminAuditEvent):
        rows = describe_changes(event.changes)
        if not rows:
            return "—"
        body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        return format_html("<table>{}</table>", body)
