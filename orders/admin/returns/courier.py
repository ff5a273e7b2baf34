"""Courier returns (RTO) in the admin: "expect return", "receive on a return manifest" and
"mark returned" for shipments (`ShipmentReturnsMixin`), "mark returned" for orders
(`mark_orders_returned`), and the return manifests the returns are received on."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.html import format_html

from inventory.models import InventoryType, Putaway, Shelf
from uniware.core.admin_utils import (
    FastChangeListMixin,
    NoDeleteMixin,
    ObjectActionsMixin,
    form_step,
    recent_filter,
    report_outcome,
    run_action,
    selected_ids,
    status_badge,
)

from ... import selectors
from ...models import Order, ReturnManifest, ReturnManifestStatus, Shipment, ShipmentStatus
from ...services import (
    return_manifest_add_shipments,
    return_manifest_close,
    return_manifest_create,
    shipments_expect_return,
    shipments_mark_returned,
    shipments_receive_return,
)
from ..add_form import AddFormMixin
from ..common import history_table, shipments_table
from .common import created_links, created_of, item_traceability
from .tables import putaways_table

MARKABLE_RETURNED = [
    ShipmentStatus.DISPATCHED,
    ShipmentStatus.SHIPPED,
    ShipmentStatus.RETURN_EXPECTED,
]
TYPE_CHOICES = [
    (InventoryType.GOOD_INVENTORY, "Good (sellable)"),
    (InventoryType.BAD_INVENTORY, "Bad (damaged)"),
]

# --- Mark returned (SKU/NONE traceability), from the order or the shipment --------------------


def shelf_in(facility_ids: set[int], code: str, field: str, form: forms.Form) -> Shelf | None:
    """The shelf with this code in one of these facilities, or a form error naming it."""
    code = (code or "").strip()
    if not code:
        return None
    shelves = list(Shelf.objects.filter(facility_id__in=facility_ids, code=code))
    if len(shelves) != 1:
        where = "this facility" if len(facility_ids) == 1 else "the facilities of the selection"
        message = (
            f"No shelf {code!r} in {where}."
            if not shelves
            else f"Shelf {code!r} exists in several facilities: select one facility at a time."
        )
        form.add_error(field, message)
        return None
    return shelves[0]


class MarkReturnedForm(forms.Form):
    inventory_type = forms.ChoiceField(choices=TYPE_CHOICES, initial=InventoryType.GOOD_INVENTORY)
    shelf_code = forms.CharField(
        required=False,
        max_length=40,
        help_text="Empty: each unit goes back to the shelf it was picked from.",
    )

    def __init__(self, *args, facility_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.facility_ids = set(facility_ids)

    def clean(self):
        cleaned = super().clean()
        cleaned["shelf"] = shelf_in(
            self.facility_ids, cleaned.get("shelf_code"), "shelf_code", self
        )
        return cleaned


def _mark_returned(modeladmin, request, queryset, shipments, *, action: str):
    """Ask for the inventory type and shelf, then mark these shipments returned."""
    facility_ids = set(shipments.values_list("facility_id", flat=True))
    form, page = form_step(
        modeladmin,
        request,
        queryset,
        MarkReturnedForm,
        action=action,
        title="Mark returned",
        intro=(
            "The courier brought these shipments back: they become RETURNED, their units go "
            "back into stock at once and their sale invoices are reversed."
        ),
        submit="Mark returned",
        form_kwargs={"facility_ids": facility_ids},
    )
    if form is None:
        return page
    ids = list(shipments.values_list("pk", flat=True))
    data = form.cleaned_data
    outcome = run_action(
        request,
        lambda: shipments_mark_returned(
            ids, actor=request.user, shelf=data["shelf"], inventory_type=data["inventory_type"]
        ),
        what="Mark returned",
    )
    report_outcome(
        request, outcome, done="Marked returned", failed="Could not mark returned", noun="shipment"
    )
    return None


def order_has_markable_returns(order: Order) -> bool:
    """The order page's "Mark returned" button: a dispatched shipment, no ITEM traceability."""
    return not item_traceability() and order.shipments.filter(status__in=MARKABLE_RETURNED).exists()


@admin.action(description="Mark returned (SKU/NONE traceability)…", permissions=["return"])
def mark_orders_returned(modeladmin, request, queryset):
    shipments = Shipment.objects.filter(order__in=queryset, status__in=MARKABLE_RETURNED)
    return _mark_returned(modeladmin, request, queryset, shipments, action="mark_orders_returned")


# --- Shipments ----------------------------------------------------------------------------------


@admin.action(description="Expect return (courier return, RTO)", permissions=["return"])
def expect_return(modeladmin, request, queryset):
    ids = selected_ids(queryset)
    outcome = run_action(
        request,
        lambda: shipments_expect_return(
            ids, actor=request.user, reason="courier return recorded in the admin"
        ),
    )
    report_outcome(
        request, outcome, done="Expecting the return of", failed="Could not", noun="shipment"
    )


@admin.action(description="Receive on a return manifest", permissions=["return"])
def receive_return(modeladmin, request, queryset):
    ids = selected_ids(queryset)
    outcome = run_action(request, lambda: shipments_receive_return(ids, actor=request.user))
    if outcome is not None:
        report_outcome(
            request,
            outcome,
            done="Received",
            failed="Could not receive",
            noun="shipment",
            extra=created_links(outcome.created),
        )


@admin.action(description="Mark returned (SKU/NONE traceability)…", permissions=["return"])
def mark_returned(modeladmin, request, queryset):
    return _mark_returned(modeladmin, request, queryset, queryset, action="mark_returned")


class ShipmentReturnsMixin:
    """The courier-return actions of the shipment admin, which lists `return_actions` in its
    `actions` and `return_buttons` in its `object_actions`."""

    return_actions = [expect_return, receive_return, mark_returned]
    return_buttons = {
        "expect_return": [ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED],
        "receive_return": [ShipmentStatus.RETURN_EXPECTED],
        "mark_returned": lambda s: s.status in MARKABLE_RETURNED and not item_traceability(),
    }

    def has_return_permission(self, request) -> bool:
        return request.user.has_perm("orders.return_shipment")


# --- Return manifests ---------------------------------------------------------------------------


class ReturnManifestAddForm(forms.ModelForm):
    class Meta:
        model = ReturnManifest
        fields = ["facility", "shipping_provider", "comments"]


class ScanForm(forms.Form):
    codes = forms.CharField(
        label="Shipment codes or AWBs",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 40}),
        help_text="One per line (or separated by spaces or commas), as scanned.",
    )


@admin.register(ReturnManifest)
class ReturnManifestAdmin(
    AddFormMixin, ObjectActionsMixin, FastChangeListMixin, NoDeleteMixin, admin.ModelAdmin
):
    """Courier returns received at a facility. Staff scan shipment codes or AWBs into an open
    manifest ("Receive shipments…"); closing it makes the putaway."""

    list_display = [
        "code",
        "facility",
        "shipping_provider",
        "status_badge",
        "shipment_count",
        "created_by",
        "created_at",
        "closed_at",
    ]
    list_select_related = ["facility", "shipping_provider", "created_by"]
    list_filter = ["status", "facility", recent_filter("created_at", "created")]
    sortable_by = ["code", "created_at"]
    search_fields = ["code"]
    search_help_text = "Exact return manifest code, or a shipment code or AWB on it."
    change_form_template = "admin/uniware/change_form.html"
    actions = ["receive_shipments", "close"]
    object_actions = {
        "receive_shipments": [ReturnManifestStatus.CREATED],
        "close": [ReturnManifestStatus.CREATED],
    }

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(shipment_total=Count("items"))

    @admin.display(description="shipments")
    def shipment_count(self, obj) -> int:
        return obj.shipment_total

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    add_form = ReturnManifestAddForm
    change_fields = [
        ("code", "status_badge"),
        ("facility", "shipping_provider"),
        "comments",
        ("created_by", "created_at", "closed_at"),
    ]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # actions have their own permissions

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if queryset.filter(code=term).exists():
            return queryset.filter(code=term), False
        shipments = Shipment.objects.filter(selectors.shipment_search(term)).values("pk")
        return queryset.filter(items__shipment_id__in=shipments), False

    def save_model(self, request, obj, form, change):
        created = return_manifest_create(
            facility=obj.facility,
            shipping_provider=obj.shipping_provider,
            comments=obj.comments,
            actor=request.user,
        )
        self.adopt(obj, created)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            shipments = (
                Shipment.objects.filter(return_manifest_item__return_manifest=obj)
                .select_related("order")
                .annotate(unit_count=Count("items"))
                .order_by("pk")
            )
            context["related_tables"] = [
                shipments_table(shipments, show_order=True),
                putaways_table(Putaway.objects.filter(return_manifest=obj)),
                history_table(selectors.object_history(obj)),
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_receive_permission(self, request) -> bool:
        return request.user.has_perm("orders.return_shipment")

    def has_close_permission(self, request) -> bool:
        return request.user.has_perm("orders.close_returnmanifest")

    @admin.action(description="Receive shipments (scan codes or AWBs)…", permissions=["receive"])
    def receive_shipments(self, request, queryset):
        manifests = list(queryset[:2])
        if len(manifests) != 1:
            messages.error(request, "Select one return manifest to receive shipments on.")
            return None
        manifest = manifests[0]
        form, page = form_step(
            self,
            request,
            queryset,
            ScanForm,
            action="receive_shipments",
            title=f"Receive shipments on {manifest}",
            intro="Courier-returned shipments (RETURN_EXPECTED) of this facility.",
            submit="Receive",
        )
        if form is None:
            return page
        codes = [c for c in form.cleaned_data["codes"].replace(",", " ").split() if c]
        found = {}
        for pk, code, awb in Shipment.objects.filter(
            Q(code__in=codes) | Q(tracking_number__in=codes)
        ).values_list("pk", "code", "tracking_number"):
            found[code] = found[awb] = pk
        outcome = run_action(
            request,
            lambda: return_manifest_add_shipments(
                manifest, sorted({found[c] for c in codes if c in found}), actor=request.user
            ),
            what=f"Return manifest {manifest}",
        )
        if outcome is not None:
            for code in codes:
                if code not in found:
                    outcome.fail(code, "no shipment has this code or AWB")
            report_outcome(
                request, outcome, done="Received", failed="Could not receive", noun="shipment"
            )
        return None

    @admin.action(description="Close (makes the putaway)", permissions=["close"])
    def close(self, request, queryset):
        for manifest in queryset.order_by("pk"):
            outcome = run_action(
                request,
                lambda m=manifest: return_manifest_close(m, actor=request.user),
                what=f"Return manifest {manifest}",
            )
            if outcome is not None:
                messages.success(
                    request,
                    format_html(
                        "Closed {} ({} shipments). {}",
                        manifest,
                        len(outcome.done),
                        created_links(created_of(outcome, Putaway)),
                    ),
                )
