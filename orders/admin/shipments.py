"""Admin for shipments (with the bulk actions of the forward flow) and invoices."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from uniware.core.admin_utils import (
    FastChangeListMixin,
    NoDeleteMixin,
    ObjectActionsMixin,
    ReadOnlyAdminMixin,
    SaveChangedFieldsMixin,
    admin_url,
    recent_filter,
    report_outcome,
    run_action,
)
from uniware.core.results import Outcome

from .. import selectors
from ..models import (
    Invoice,
    Manifest,
    OrderItemStatus,
    Picklist,
    PicklistDestination,
    PicklistStatus,
    Shipment,
    ShipmentStatus,
)
from ..models.shipment import FORCE_DISPATCH_SKU_OR_NONE, SHIPMENT_PRE_DISPATCH
from ..services import (
    manifest_remove_shipments,
    picklist_create,
    shipment_split,
    shipments_deliver,
    shipments_force_dispatch,
    shipments_invoice,
    shipments_label_with_channel,
    shipments_manifest,
    shipments_merge,
    shipments_recheck_serviceability,
    shipments_repacked,
    shipments_ship,
)
from .common import invoice_lines_table, shipment_state, shipment_tables
from .printing import InvoicePrintingMixin, ShipmentPrintingMixin
from .returns.common import created_links
from .returns.courier import ShipmentReturnsMixin

# Until the label is printed staff may correct provider and tracking number (third-party
# shipping: the channel's); after that they belong to the label and the manifest.
LABEL_EDITABLE = set(SHIPMENT_PRE_DISPATCH) - {
    ShipmentStatus.READY_TO_SHIP,
    ShipmentStatus.MANIFESTED,
}


class PicklistFilter(admin.SimpleListFilter):
    """The shipments of one picklist (the picklist page links here); the choices offer the
    latest open picklists, any other is reached by its link."""

    title = "picklist"
    parameter_name = "picklist"

    def lookups(self, request, model_admin):
        latest = Picklist.objects.exclude(status=PicklistStatus.CLOSED).order_by("-pk")[:15]
        choices = [(str(p.pk), p.code) for p in latest]
        chosen = self.value()
        if chosen and chosen not in dict(choices) and chosen.isdigit():
            picked = Picklist.objects.filter(pk=chosen).values_list("code", flat=True).first()
            choices.insert(0, (chosen, picked or f"#{chosen}"))
        return choices

    def queryset(self, request, queryset):
        if not (self.value() or "").isdigit():
            return queryset
        return queryset.filter(pk__in=selectors.picklist_shipment_ids([int(self.value())]))


def report_manifested(request, outcome: Outcome | None, shipment_ids: list[int]) -> None:
    """Report "add to manifest" naming every manifest it used, new or existing, with links."""
    if outcome is None:
        return
    created = {m.pk for m in outcome.created}
    used = selectors.manifests_of(shipment_ids) if outcome.done else []
    links = format_html_join(
        ", ",
        '<a href="{}">{}</a>{}',
        ((admin_url(m), m, " (new)" if m.pk in created else "") for m in used),
    )
    extra = format_html("Manifests: {}.", links) if used else ""
    report_outcome(
        request,
        outcome,
        done="Added to a manifest",
        failed="Could not manifest",
        noun="shipment",
        extra=extra,
    )


@admin.register(Shipment)
class ShipmentAdmin(
    ShipmentPrintingMixin,
    ShipmentReturnsMixin,
    ObjectActionsMixin,
    FastChangeListMixin,
    SaveChangedFieldsMixin,
    NoDeleteMixin,
    admin.ModelAdmin,
):
    list_display = [
        "code",
        "order",
        "channel",
        "facility",
        "status_badge",
        "shipping_provider",
        "tracking_number",
        "manifest",
        "created_at",
    ]
    list_select_related = ["order", "order__channel", "facility", "shipping_provider", "manifest"]
    list_filter = [
        "status",
        "facility",
        ("order__channel", admin.RelatedFieldListFilter),
        "shipping_provider",
        PicklistFilter,
        recent_filter("created_at", "created"),
        recent_filter("dispatched_at", "dispatched"),
    ]
    sortable_by = ["code", "status_badge", "created_at"]
    search_fields = ["code"]
    search_help_text = (
        "Exact shipment code, tracking number, order code, channel order id or SKU code, or "
        "a pasted list of codes; or the customer's e-mail, phone, pincode or name."
    )
    change_form_template = "admin/uniware/change_form.html"
    fields = [
        ("code", "status_badge"),
        ("order", "facility"),
        ("shipping_provider", "tracking_number"),
        "channel_booking",
        "courier_status",
        ("manifest", "parent"),
        "repack_reason",
        ("dispatched_at", "delivered_at"),
        ("created_at", "updated_at"),
    ]
    actions = [
        "pick_for_invoicing",
        "pick_for_staging",
        "invoice",
        "generate_label",
        "add_to_manifest",
        "remove_from_manifest",
        "recheck_serviceability",
        "force_dispatch",
        "mark_shipped",
        "mark_delivered",
        "merge",
        "split",
        "confirm_repacked",
    ]
    actions += ShipmentReturnsMixin.return_actions  # expect, receive, mark returned
    actions += ShipmentPrintingMixin.print_actions  # labels, 4-up, invoices

    object_actions = {
        "pick_for_invoicing": [ShipmentStatus.CREATED, ShipmentStatus.PICKED],
        "pick_for_staging": [ShipmentStatus.CREATED],
        "invoice": [ShipmentStatus.PICKED],
        "generate_label": [ShipmentStatus.PACKED],
        "add_to_manifest": [ShipmentStatus.READY_TO_SHIP],
        "remove_from_manifest": [ShipmentStatus.MANIFESTED],
        "recheck_serviceability": [ShipmentStatus.LOCATION_NOT_SERVICEABLE],
        "force_dispatch": FORCE_DISPATCH_SKU_OR_NONE,
        "mark_shipped": [ShipmentStatus.DISPATCHED],
        "mark_delivered": [ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED],
        "split": [ShipmentStatus.CREATED, ShipmentStatus.LOCATION_NOT_SERVICEABLE],
        "confirm_repacked": lambda shipment: bool(shipment.repack_reason),
    }
    object_actions |= ShipmentReturnsMixin.return_buttons  # expect, receive, mark returned

    def has_add_permission(self, request) -> bool:
        return False  # allocation creates shipments

    def get_readonly_fields(self, request, obj=None):
        names = [
            "code",
            "status_badge",
            "order",
            "facility",
            "manifest",
            "parent",
            "repack_reason",
            "channel_booking",
            "dispatched_at",
            "delivered_at",
            "created_at",
            "updated_at",
        ]
        if obj is None or obj.status not in LABEL_EDITABLE:
            names += ["shipping_provider", "tracking_number", "courier_status"]
        return names

    @admin.display(description="booked with the channel")
    def channel_booking(self, obj: Shipment) -> str:
        """The package the channel ships, as it booked it (Amazon Easy Ship), when labelled."""
        label = getattr(obj, "channel_label", None) if obj.pk else None
        if label is None:
            return "—"
        printed = "its label is printed" if label.pdf else "print its label on Seller Central"
        return f"{label.carrier}, AWB {label.tracking_number}, {label.handover}: {printed}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Shipment):
        return shipment_state(obj)  # re-pack, order held or cancelled: seen before refused

    @admin.display(description="channel")
    def channel(self, obj: Shipment):
        return obj.order.channel  # select_related: no query per row

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(selectors.shipment_search(search_term)), False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = shipment_tables(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- Permissions of the actions ---------------------------------------------------------

    def has_pick_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_picklist")

    def has_invoice_permission(self, request) -> bool:
        return request.user.has_perm("orders.invoice_shipment")

    def has_label_permission(self, request) -> bool:
        return request.user.has_perm("orders.label_shipment")

    def has_manifest_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_manifest")

    def has_dispatch_permission(self, request) -> bool:
        return request.user.has_perm("orders.dispatch_shipment")

    def has_deliver_permission(self, request) -> bool:
        return request.user.has_perm("orders.deliver_shipment")

    def has_recheck_permission(self, request) -> bool:
        return request.user.has_perm("orders.change_shipment")

    def has_split_permission(self, request) -> bool:
        return request.user.has_perm("orders.split_shipment")

    # --- Actions ----------------------------------------------------------------------------

    @staticmethod
    def _ids(queryset) -> list[int]:
        return list(queryset.values_list("pk", flat=True))

    def _picklist(self, request, queryset, destination: str) -> None:
        ids = self._ids(queryset)
        outcome = run_action(
            request, lambda: picklist_create(ids, destination=destination, actor=request.user)
        )
        if outcome is not None:
            report_outcome(
                request,
                outcome,
                done=f"Put on a picklist for {destination.lower()}",
                failed="Could not put on a picklist",
                noun="shipment",
                extra=created_links(outcome.created),
            )

    @admin.action(description="Create picklist for invoicing", permissions=["pick"])
    def pick_for_invoicing(self, request, queryset):
        self._picklist(request, queryset, PicklistDestination.INVOICING)

    @admin.action(description="Create picklist for staging", permissions=["pick"])
    def pick_for_staging(self, request, queryset):
        self._picklist(request, queryset, PicklistDestination.STAGING)

    @admin.action(description="Invoice and pack", permissions=["invoice"])
    def invoice(self, request, queryset):
        ids = self._ids(queryset)
        outcome = run_action(request, lambda: shipments_invoice(ids, actor=request.user))
        report_outcome(
            request, outcome, done="Invoiced", failed="Could not invoice", noun="shipment"
        )

    @admin.action(
        description="Confirm re-packed (cancelled units taken out; re-invoices)",
        permissions=["invoice"],
    )
    def confirm_repacked(self, request, queryset):
        ids = self._ids(queryset)
        outcome = run_action(request, lambda: shipments_repacked(ids, actor=request.user))
        report_outcome(
            request,
            outcome,
            done="Re-packed and re-invoiced",
            failed="Could not confirm the re-packing of",
            noun="shipment",
        )

    @admin.action(description="Generate shipping label", permissions=["label"])
    def generate_label(self, request, queryset):
        ids = self._ids(queryset)
        outcome = run_action(request, lambda: shipments_label_with_channel(ids, actor=request.user))
        report_outcome(request, outcome, done="Labelled", failed="Could not label", noun="shipment")

    @admin.action(description="Add to manifest", permissions=["manifest"])
    def add_to_manifest(self, request, queryset):
        ids = self._ids(queryset)
        outcome = run_action(request, lambda: shipments_manifest(ids, actor=request.user))
        report_manifested(request, outcome, ids)

    @admin.action(description="Remove from its open manifest", permissions=["manifest"])
    def remove_from_manifest(self, request, queryset):
        outcome = Outcome()
        by_manifest: dict[int, list[int]] = defaultdict(list)
        for pk, code, manifest_id in queryset.values_list("pk", "code", "manifest_id"):
            if manifest_id is None:
                outcome.fail(code, "it is on no manifest")
            else:
                by_manifest[manifest_id].append(pk)
        for manifest in Manifest.objects.filter(pk__in=list(by_manifest)).order_by("pk"):
            done = run_action(
                request,
                lambda m=manifest: manifest_remove_shipments(
                    m, by_manifest[m.pk], actor=request.user
                ),
                what=f"Manifest {manifest}",
            )
            if done is not None:
                outcome.merge(done)
        report_outcome(
            request,
            outcome,
            done="Removed from their manifest",
            failed="Could not remove",
            noun="shipment",
        )

    @admin.action(
        description="Re-check serviceability (not serviceable shipments)", permissions=["recheck"]
    )
    def recheck_serviceability(self, request, queryset):
        ids = self._ids(queryset)
        outcome = run_action(
            request, lambda: shipments_recheck_serviceability(ids, actor=request.user)
        )
        report_outcome(
            request,
            outcome,
            done="Serviceable again",
            failed="Still not serviceable",
            noun="shipment",
        )

    @admin.action(description="Force dispatch (without a manifest)", permissions=["dispatch"])
    def force_dispatch(self, request, queryset):
        ids = self._ids(queryset)
        outcome = run_action(
            request,
            lambda: shipments_force_dispatch(
                ids, actor=request.user, reason="force dispatched from the admin"
            ),
        )
        report_outcome(
            request, outcome, done="Dispatched", failed="Could not dispatch", noun="shipment"
        )

    @admin.action(description="Mark shipped (in transit)", permissions=["deliver"])
    def mark_shipped(self, request, queryset):
        ids = self._ids(queryset)
        outcome = run_action(request, lambda: shipments_ship(ids, actor=request.user))
        report_outcome(
            request,
            outcome,
            done="Marked shipped",
            failed="Could not mark shipped",
            noun="shipment",
        )

    @admin.action(description="Mark delivered", permissions=["deliver"])
    def mark_delivered(self, request, queryset):
        ids = self._ids(queryset)
        outcome = run_action(request, lambda: shipments_deliver(ids, actor=request.user))
        report_outcome(
            request,
            outcome,
            done="Marked delivered",
            failed="Could not mark delivered",
            noun="shipment",
        )

    @admin.action(description="Merge shipments of one order", permissions=["split"])
    def merge(self, request, queryset):
        shipments = list(queryset.order_by("pk"))
        merged = run_action(
            request,
            lambda: shipments_merge([s.pk for s in shipments], actor=request.user),
            what="Merge",
        )
        if merged is not None:
            messages.success(
                request,
                format_html(
                    'Merged {} into <a href="{}">{}</a>.',
                    ", ".join(s.code for s in shipments),
                    admin_url(merged),
                    merged,
                ),
            )

    @admin.action(description="Split a shipment…", permissions=["split"])
    def split(self, request, queryset):
        """An intermediate page: staff put each unit in a group; each group becomes a
        shipment."""
        shipments = list(queryset.order_by("pk")[:2])
        if len(shipments) != 1:
            messages.error(request, "Select exactly one shipment to split.")
            return None
        shipment = shipments[0]
        units = [
            u for u in selectors.shipment_units(shipment) if u.status != OrderItemStatus.CANCELLED
        ]
        if request.POST.get("confirm_split"):
            groups: dict[int, list[int]] = defaultdict(list)
            for unit in units:
                raw = request.POST.get(f"group_{unit.pk}", "1")
                if not raw.isdigit() or not 1 <= int(raw) <= len(units):
                    messages.error(
                        request,
                        f"Unit {unit.code}: group {raw!r} is not between 1 and {len(units)}.",
                    )
                    return None
                groups[int(raw)].append(unit.pk)
            new = run_action(
                request,
                lambda: shipment_split(
                    shipment, [groups[k] for k in sorted(groups)], actor=request.user
                ),
                what=f"Split {shipment}",
            )
            if new is not None:
                messages.success(
                    request, f"Split {shipment} into {', '.join(s.code for s in new)}."
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Split shipment {shipment}",
            "opts": self.opts,
            "shipment": shipment,
            "units": units,
            "groups": range(1, len(units) + 1),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/orders/shipment/split.html", context)


@admin.register(Invoice)
class InvoiceAdmin(
    InvoicePrintingMixin,
    ObjectActionsMixin,
    FastChangeListMixin,
    ReadOnlyAdminMixin,
    admin.ModelAdmin,
):
    """Invoices are issued by the invoicing service only (gap-free numbers)."""

    actions = InvoicePrintingMixin.print_actions
    change_form_template = "admin/uniware/change_form.html"  # the Print button

    list_display = ["code", "invoice_type", "shipment", "facility", "total_amount", "created_at"]
    list_select_related = ["shipment", "facility"]
    fields = [
        "code",
        "invoice_type",
        "shipment",
        "facility",
        "reverses",
        "created_at",
        "place_of_supply",
        "reverse_charge",
        "taxable_amount",
        "cgst",
        "sgst",
        "igst",
        "cess",
        "total_amount",
        "superseded_at",
    ]
    list_filter = ["invoice_type", "facility", recent_filter("created_at", "issued")]
    sortable_by = ["code", "created_at"]
    search_fields = ["code"]
    search_help_text = "Exact invoice number, shipment code or tracking number."

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = [invoice_lines_table(obj)]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if queryset.filter(code=term).exists():
            return queryset.filter(code=term), False
        shipments = Shipment.objects.filter(selectors.shipment_search(term)).values("pk")
        return queryset.filter(shipment_id__in=shipments), False
