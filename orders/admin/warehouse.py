"""Admin for picklists and manifests: created, received, closed and discarded by services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import IntegrityError

from uniware.core.admin_utils import (
    DOMAIN_ERRORS,
    FastChangeListMixin,
    NoDeleteMixin,
    ObjectActionsMixin,
    SaveChangedFieldsMixin,
    error_text,
    plural,
    recent_filter,
    report_outcome,
    run_action,
    status_badge,
)
from uniware.core.models import SequenceName
from uniware.core.results import Outcome
from uniware.core.services import SequenceNotDefined, sequence_ensure_defined

from .. import selectors
from ..models import Manifest, ManifestStatus, Picklist, PicklistStatus
from ..services import (
    manifest_close,
    manifest_create,
    manifest_discard,
    picklist_receive,
    shipments_invoice,
    shipments_label_with_channel,
    shipments_manifest,
)
from .add_form import AddFormMixin
from .common import manifest_tables, picklist_tables
from .picking import receive_partial
from .printing import ManifestPrintingMixin, PicklistPrintingMixin
from .shipments import report_manifested


@admin.register(Picklist)
class PicklistAdmin(
    PicklistPrintingMixin, ObjectActionsMixin, FastChangeListMixin, NoDeleteMixin, admin.ModelAdmin
):
    """Picklists are made from the shipments list ("Create picklist ...")."""

    list_display = ["code", "facility", "destination", "status_badge", "created_by", "created_at"]
    list_select_related = ["facility", "created_by"]
    list_filter = ["status", "destination", "facility", recent_filter("created_at", "created")]
    sortable_by = ["code", "created_at"]
    search_fields = ["code"]
    search_help_text = "Exact picklist code, or a shipment code, tracking number or order code."
    change_form_template = "admin/uniware/change_form.html"
    fields = [("code", "status_badge"), ("facility", "destination"), ("created_by", "created_at")]
    readonly_fields = [
        "code",
        "status_badge",
        "facility",
        "destination",
        "created_by",
        "created_at",
    ]
    actions = [
        "receive",
        receive_partial,
        "invoice_all",
        "label_all",
        "manifest_all",
        *PicklistPrintingMixin.print_actions,
    ]
    object_actions = {
        "receive": [PicklistStatus.CREATED],
        "receive_partial": [PicklistStatus.CREATED],
        "invoice_all": [PicklistStatus.RECEIVED],
        "label_all": [PicklistStatus.RECEIVED, PicklistStatus.CLOSED],
        "manifest_all": [PicklistStatus.RECEIVED, PicklistStatus.CLOSED],
    }

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # nothing to edit by hand; actions have their own permissions

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Picklist):
        return status_badge(obj.status)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(selectors.picklist_search(search_term)), False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = picklist_tables(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_receive_permission(self, request) -> bool:
        return request.user.has_perm("orders.receive_picklist")

    def has_invoice_permission(self, request) -> bool:
        return request.user.has_perm("orders.invoice_shipment")

    def has_label_permission(self, request) -> bool:
        return request.user.has_perm("orders.label_shipment")

    def has_manifest_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_manifest")

    # --- the picklist's shipments in one go (issue 15: work from the document that drives it)

    @admin.action(description="Invoice and pack all its shipments", permissions=["invoice"])
    def invoice_all(self, request, queryset):
        ids = selectors.picklist_shipment_ids(list(queryset.values_list("pk", flat=True)))
        outcome = run_action(request, lambda: shipments_invoice(ids, actor=request.user))
        report_outcome(
            request, outcome, done="Invoiced", failed="Could not invoice", noun="shipment"
        )

    @admin.action(description="Label all its shipments", permissions=["label"])
    def label_all(self, request, queryset):
        ids = selectors.picklist_shipment_ids(list(queryset.values_list("pk", flat=True)))
        outcome = run_action(request, lambda: shipments_label_with_channel(ids, actor=request.user))
        report_outcome(request, outcome, done="Labelled", failed="Could not label", noun="shipment")

    @admin.action(description="Add all its shipments to manifests", permissions=["manifest"])
    def manifest_all(self, request, queryset):
        ids = selectors.picklist_shipment_ids(list(queryset.values_list("pk", flat=True)))
        outcome = run_action(request, lambda: shipments_manifest(ids, actor=request.user))
        report_manifested(request, outcome, ids)

    @admin.action(description="Receive (picked units arrived)", permissions=["receive"])
    def receive(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        outcome = run_action(request, lambda: picklist_receive(ids, actor=request.user))
        report_outcome(
            request, outcome, done="Received", failed="Could not receive", noun="picklist"
        )


class ManifestAddForm(forms.ModelForm):
    class Meta:
        model = Manifest
        fields = ["facility", "channel", "shipping_provider", "comments"]

    def clean(self):
        cleaned = super().clean()
        facility = cleaned.get("facility")
        if facility is not None:
            try:
                sequence_ensure_defined(SequenceName.MANIFEST, facility=facility)
            except SequenceNotDefined as exc:
                raise forms.ValidationError(str(exc)) from exc
        return cleaned


@admin.register(Manifest)
class ManifestAdmin(
    AddFormMixin,
    ManifestPrintingMixin,
    ObjectActionsMixin,
    FastChangeListMixin,
    SaveChangedFieldsMixin,
    NoDeleteMixin,
    admin.ModelAdmin,
):
    list_display = [
        "code",
        "facility",
        "channel",
        "shipping_provider",
        "status_badge",
        "created_by",
        "created_at",
        "closed_at",
    ]
    list_select_related = ["facility", "channel", "shipping_provider", "created_by"]
    list_filter = [
        "status",
        "facility",
        "channel",
        "shipping_provider",
        recent_filter("created_at", "created"),
    ]
    sortable_by = ["code", "created_at", "closed_at"]
    search_fields = ["code"]
    search_help_text = "Exact manifest code, or a shipment code, tracking number or order code."
    change_form_template = "admin/uniware/change_form.html"
    actions = ["close", "discard", *ManifestPrintingMixin.print_actions]
    object_actions = {"close": [ManifestStatus.CREATED], "discard": [ManifestStatus.CREATED]}

    add_form = ManifestAddForm
    change_fields = [
        ("code", "status_badge"),
        ("facility", "channel", "shipping_provider"),
        "comments",
        ("created_by", "created_at", "closed_at"),
    ]
    change_editable = ("comments",)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Manifest):
        return status_badge(obj.status)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(selectors.manifest_search(search_term)), False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = manifest_tables(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created = manifest_create(
            facility=obj.facility,
            channel=obj.channel,
            shipping_provider=obj.shipping_provider,
            comments=obj.comments,
            actor=request.user,
        )
        self.adopt(obj, created)
        return None

    def has_close_permission(self, request) -> bool:
        return request.user.has_perm("orders.close_manifest")

    def has_discard_permission(self, request) -> bool:
        return request.user.has_perm("orders.change_manifest")

    @admin.action(description="Close (dispatch its shipments)", permissions=["close"])
    def close(self, request, queryset):
        outcome = Outcome()
        for manifest in queryset.order_by("pk"):
            try:
                done = manifest_close(manifest, actor=request.user)
            except (*DOMAIN_ERRORS, ValueError, IntegrityError) as exc:
                outcome.fail(manifest, error_text(exc))
            else:
                outcome.done.append(f"{manifest} ({plural(len(done.done), 'shipment')} dispatched)")
                outcome.failed += done.failed
        report_outcome(request, outcome, done="Closed", failed="Could not close", noun="manifest")

    @admin.action(description="Discard (empty open manifests only)", permissions=["discard"])
    def discard(self, request, queryset):
        outcome = Outcome()
        for manifest in queryset.order_by("pk"):
            try:
                outcome.done.append(manifest_discard(manifest, actor=request.user))
            except (*DOMAIN_ERRORS, ValueError, IntegrityError) as exc:
                outcome.fail(manifest, error_text(exc))
        report_outcome(
            request, outcome, done="Discarded", failed="Could not discard", noun="manifest"
        )
