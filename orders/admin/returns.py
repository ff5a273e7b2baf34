"""Admin for cancellations and returns: return manifests, reverse pickups, and the actions the
order, unit and shipment pages get (cancel with a reason, expect / receive / mark returned,
reship, replace, create a reverse pickup).

Actions that need input (a reason, a reship option, a shelf) show an intermediate page
(`templates/admin/uniware/action_form.html`) and call the service when it is confirmed. The
order, unit and shipment admins get these actions through the mixins below, so their own
modules only name them.
"""

from __future__ import annotations

from collections import defaultdict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from inventory.models import InventoryType, Putaway, PutawayItem, Shelf
from uniware.core.admin_utils import (
    FastChangeListMixin,
    NoDeleteMixin,
    ObjectActionsMixin,
    Table,
    admin_url,
    changelist_url,
    link,
    recent_filter,
    report_outcome,
    run_action,
    status_badge,
)
from uniware.core.models import Tenant, Traceability

from .. import selectors
from ..models import (
    Order,
    OrderItem,
    OrderItemStatus,
    OrderStatus,
    ReshipOption,
    ReturnManifest,
    ReturnManifestStatus,
    ReversePickup,
    ReversePickupItem,
    ReversePickupStatus,
    Shipment,
    ShipmentStatus,
)
from ..services import (
    orders_cancel,
    return_manifest_add_shipments,
    return_manifest_close,
    return_manifest_create,
    reverse_pickup_allocate_courier,
    reverse_pickup_create,
    reverse_pickups_cancel,
    reverse_pickups_complete,
    reverse_pickups_mark_not_received,
    shipments_expect_return,
    shipments_mark_returned,
    shipments_receive_return,
    units_cancel,
    units_replace,
    units_reship,
)
from .common import history_table, shipments_table, when

S = OrderItemStatus
SS = ShipmentStatus
RP = ReversePickupStatus
MARKABLE_RETURNED = [SS.DISPATCHED, SS.SHIPPED, SS.RETURN_EXPECTED]
MAX_SELECTED = 5000  # an intermediate page lists every selected id


# --- Forms -----------------------------------------------------------------------------------


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=100,
        help_text="At most 100 characters; recorded on each unit and in its history.",
        widget=forms.TextInput(attrs={"size": 80}),
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=255, widget=forms.TextInput(attrs={"size": 80}))


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=255, required=False, widget=forms.TextInput(attrs={"size": 80})
    )


class ReshipForm(forms.Form):
    option = forms.ChoiceField(
        choices=ReshipOption.choices,
        widget=forms.RadioSelect,
        help_text=(
            "Wait: the reshipment goes out when the return is received. Expect return: it "
            "goes out now and the return goes on. Don't expect return: it goes out now and "
            "the return is closed without goods (the whole package)."
        ),
    )
    reason = forms.CharField(max_length=255, required=False)


TYPE_CHOICES = [
    (InventoryType.GOOD_INVENTORY, "Good (sellable)"),
    (InventoryType.BAD_INVENTORY, "Bad (damaged)"),
]


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


class CourierForm(forms.Form):
    courier_name = forms.CharField(max_length=100, required=False)
    courier_code = forms.CharField(max_length=40, required=False)
    return_awb = forms.CharField(label="Return AWB", max_length=60)

    def clean(self):
        cleaned = super().clean()
        if not (cleaned.get("courier_name") or cleaned.get("courier_code")):
            raise forms.ValidationError("Name the courier (its name or its code).")
        return cleaned


class ScanForm(forms.Form):
    codes = forms.CharField(
        label="Shipment codes or AWBs",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 40}),
        help_text="One per line (or separated by spaces or commas), as scanned.",
    )


# --- The intermediate page -------------------------------------------------------------------


def form_step(
    modeladmin,
    request,
    queryset,
    form_class,
    *,
    action: str,
    title: str,
    intro: str = "",
    submit: str = "Confirm",
    form_kwargs: dict | None = None,
    rows=None,
    row_columns=(),
    row_fields=(),
):
    """(valid form, None) once the page was confirmed; else (None, the page to show)."""
    objects = list(queryset[: MAX_SELECTED + 1])
    if len(objects) > MAX_SELECTED:
        messages.error(request, f"Select at most {MAX_SELECTED} at a time.")
        return None, None
    kwargs = form_kwargs or {}
    if request.POST.get("confirm"):
        form = form_class(request.POST, **kwargs)
        if form.is_valid():
            return form, None
    else:
        form = form_class(**kwargs)
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "opts": opts,
        "form": form,
        "objects": objects,
        "shown": objects[:50],
        "more": max(0, len(objects) - 50),
        "rows": rows(form) if callable(rows) else rows,
        "row_columns": row_columns,
        "row_fields": set(row_fields),
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "submit_label": submit,
        "return_to": request.POST.get("_return_to", ""),
        "cancel_url": request.POST.get("_return_to", "") or changelist_url(modeladmin.model),
    }
    return None, TemplateResponse(request, "admin/uniware/action_form.html", context)


def _ids(queryset) -> list[int]:
    return list(queryset.values_list("pk", flat=True))


def _links(objs) -> str:
    if not objs:
        return ""
    return format_html(
        "Created {}.",
        format_html_join(", ", '<a href="{}">{}</a>', ((admin_url(o), o) for o in objs)),
    )


def _unit_labels(outcome):
    """Units are reported as `<order>/<unit>`: unit codes repeat across orders."""
    if outcome is not None:
        codes = dict(
            Order.objects.filter(pk__in={u.order_id for u in outcome.done}).values_list(
                "pk", "code"
            )
        )
        outcome.done = [f"{codes[u.order_id]}/{u.code}" for u in outcome.done]
    return outcome


def item_traceability() -> bool:
    return Tenant.get().traceability == Traceability.ITEM


class ReturnActionsMixin:
    """Adds `return_object_actions` ({action: test(obj)}) to the change-page buttons."""

    return_object_actions: dict = {}

    def object_action_buttons(self, request, obj):
        buttons = super().object_action_buttons(request, obj)
        allowed = self.get_actions(request)
        for name, test in self.return_object_actions.items():
            if name in allowed and test(obj):
                buttons.append({"name": name, "label": allowed[name][2]})
        return buttons


# --- Orders ----------------------------------------------------------------------------------


def _order_can_be_cancelled(order: Order) -> bool:
    if order.status != OrderStatus.COMPLETE:
        return order.status != OrderStatus.CANCELLED
    return Shipment.objects.filter(order=order, status__in=[SS.DISPATCHED, SS.SHIPPED]).exists()


def _order_has_markable_returns(order: Order) -> bool:
    return not item_traceability() and order.shipments.filter(status__in=MARKABLE_RETURNED).exists()


def _order_has_returnable_units(order: Order) -> bool:
    return order.items.filter(
        status__in=[S.DISPATCHED, S.DELIVERED],
        shipment__status__in=[SS.DISPATCHED, SS.SHIPPED, SS.DELIVERED],
    ).exists()


class OrderReturnsMixin(ReturnActionsMixin):
    """Cancel, mark returned and customer-return actions for the order admin."""

    return_actions = ["cancel_orders", "mark_orders_returned", "create_order_reverse_pickup"]
    return_object_actions = {
        "cancel_orders": _order_can_be_cancelled,
        "mark_orders_returned": _order_has_markable_returns,
        "create_order_reverse_pickup": _order_has_returnable_units,
    }

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("orders.cancel_order")

    def has_return_permission(self, request) -> bool:
        return request.user.has_perm("orders.return_shipment")

    def has_reversepickup_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_reversepickup")

    @admin.action(description="Cancel orders…", permissions=["cancel"])
    def cancel_orders(self, request, queryset):
        form, page = form_step(
            self,
            request,
            queryset,
            CancelForm,
            action="cancel_orders",
            title="Cancel orders",
            intro=(
                "Every unit not yet finished is cancelled as its stage requires: blocked "
                "stock is released, picked or invoiced units go on a putaway (invoiced ones "
                "get a sale return invoice), dispatched ones become courier returns."
            ),
            submit="Cancel these orders",
        )
        if form is None:
            return page
        ids = _ids(queryset)
        reason = form.cleaned_data["reason"]
        outcome = run_action(
            request, lambda: orders_cancel(ids, reason=reason, actor=request.user), what="Cancel"
        )
        if outcome is not None:
            report_outcome(
                request,
                outcome,
                done="Cancelled",
                failed="Could not cancel",
                noun="order",
                extra=_links([p for p in outcome.created if isinstance(p, Putaway)]),
            )
        return None

    @admin.action(description="Mark returned (SKU/NONE traceability)…", permissions=["return"])
    def mark_orders_returned(self, request, queryset):
        shipments = Shipment.objects.filter(order__in=queryset, status__in=MARKABLE_RETURNED)
        return _mark_returned(self, request, queryset, shipments, action="mark_orders_returned")

    @admin.action(
        description="Create a reverse pickup (customer return)…", permissions=["reversepickup"]
    )
    def create_order_reverse_pickup(self, request, queryset):
        orders = list(queryset[:2])
        if len(orders) != 1:
            messages.error(
                request, "Select one order: a reverse pickup returns units of one order."
            )
            return None
        units = OrderItem.objects.filter(
            order=orders[0],
            status__in=[S.DISPATCHED, S.DELIVERED],
            shipment__status__in=[SS.DISPATCHED, SS.SHIPPED, SS.DELIVERED],
        )
        return _create_pickup(self, request, queryset, units, action="create_order_reverse_pickup")


def _mark_returned(modeladmin, request, queryset, shipments, *, action: str):
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


def _create_pickup(modeladmin, request, queryset, units, *, action: str):
    form, page = form_step(
        modeladmin,
        request,
        queryset,
        ReasonForm,
        action=action,
        title="Create a reverse pickup",
        intro="A customer return: the courier collects the units and brings them back.",
        submit="Create the reverse pickup",
    )
    if form is None:
        return page
    ids = list(units.values_list("pk", flat=True))
    pickup = run_action(
        request,
        lambda: reverse_pickup_create(ids, reason=form.cleaned_data["reason"], actor=request.user),
        what="Reverse pickup",
    )
    if pickup is not None:
        messages.success(
            request,
            format_html(
                'Created reverse pickup <a href="{}">{}</a> for {} units.',
                admin_url(pickup),
                pickup,
                len(ids),
            ),
        )
    return None


# --- Units -----------------------------------------------------------------------------------


class UnitReturnsMixin:
    """Cancel, reship, replace and customer-return actions for the units list."""

    actions = ["cancel_units", "reship_units", "replace_units", "create_unit_reverse_pickup"]

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("orders.cancel_order")

    def has_reship_permission(self, request) -> bool:
        return request.user.has_perm("orders.reship_orderitem")

    def has_replace_permission(self, request) -> bool:
        return request.user.has_perm("orders.replace_orderitem")

    def has_reversepickup_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_reversepickup")

    @admin.action(description="Cancel units…", permissions=["cancel"])
    def cancel_units(self, request, queryset):
        form, page = form_step(
            self,
            request,
            queryset,
            CancelForm,
            action="cancel_units",
            title="Cancel units",
            intro="Each unit is cancelled as its stage requires.",
            submit="Cancel these units",
        )
        if form is None:
            return page
        ids = _ids(queryset)
        reason = form.cleaned_data["reason"]
        outcome = run_action(
            request, lambda: units_cancel(ids, reason=reason, actor=request.user), what="Cancel"
        )
        report_outcome(
            request,
            _unit_labels(outcome),
            done="Cancelled",
            failed="Could not cancel",
            noun="unit",
            extra=_links(
                [p for p in (outcome.created if outcome else []) if isinstance(p, Putaway)]
            ),
        )
        return None

    @admin.action(description="Reship courier-returned units…", permissions=["reship"])
    def reship_units(self, request, queryset):
        form, page = form_step(
            self,
            request,
            queryset,
            ReshipForm,
            action="reship_units",
            title="Reship units",
            submit="Reship",
        )
        if form is None:
            return page
        ids = _ids(queryset)
        data = form.cleaned_data
        outcome = run_action(
            request,
            lambda: units_reship(
                ids, option=data["option"], reason=data["reason"], actor=request.user
            ),
            what="Reship",
        )
        report_outcome(
            request,
            _unit_labels(outcome),
            done="Reshipped (or waiting for their return)",
            failed="Could not reship",
            noun="unit",
            extra=_links([o for o in (outcome.created if outcome else []) if isinstance(o, Order)]),
        )
        return None

    @admin.action(description="Replace units (new order)…", permissions=["replace"])
    def replace_units(self, request, queryset):
        form, page = form_step(
            self,
            request,
            queryset,
            OptionalReasonForm,
            action="replace_units",
            title="Replace units",
            intro="The units become REPLACED and a replacement order is created for them.",
            submit="Create the replacement order",
        )
        if form is None:
            return page
        ids = _ids(queryset)
        reason = form.cleaned_data["reason"]
        outcome = run_action(
            request, lambda: units_replace(ids, reason=reason, actor=request.user), what="Replace"
        )
        report_outcome(
            request,
            _unit_labels(outcome),
            done="Replaced",
            failed="Could not replace",
            noun="unit",
            extra=_links(outcome.created if outcome else []),
        )
        return None

    @admin.action(
        description="Create a reverse pickup (customer return)…", permissions=["reversepickup"]
    )
    def create_unit_reverse_pickup(self, request, queryset):
        return _create_pickup(
            self, request, queryset, queryset, action="create_unit_reverse_pickup"
        )


# --- Shipments -------------------------------------------------------------------------------


class ShipmentReturnsMixin(ReturnActionsMixin):
    """Courier-return actions for the shipment admin."""

    return_actions = ["expect_return", "receive_return", "mark_returned"]
    return_object_actions = {
        "expect_return": lambda s: s.status in (SS.DISPATCHED, SS.SHIPPED),
        "receive_return": lambda s: s.status == SS.RETURN_EXPECTED,
        "mark_returned": lambda s: s.status in MARKABLE_RETURNED and not item_traceability(),
    }

    def has_return_permission(self, request) -> bool:
        return request.user.has_perm("orders.return_shipment")

    @admin.action(description="Expect return (courier return, RTO)", permissions=["return"])
    def expect_return(self, request, queryset):
        ids = _ids(queryset)
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
    def receive_return(self, request, queryset):
        ids = _ids(queryset)
        outcome = run_action(request, lambda: shipments_receive_return(ids, actor=request.user))
        if outcome is not None:
            report_outcome(
                request,
                outcome,
                done="Received",
                failed="Could not receive",
                noun="shipment",
                extra=_links(outcome.created),
            )

    @admin.action(description="Mark returned (SKU/NONE traceability)…", permissions=["return"])
    def mark_returned(self, request, queryset):
        return _mark_returned(self, request, queryset, queryset, action="mark_returned")


# --- Return manifests ------------------------------------------------------------------------


class ReturnManifestAddForm(forms.ModelForm):
    class Meta:
        model = ReturnManifest
        fields = ["facility", "shipping_provider", "comments"]


@admin.register(ReturnManifest)
class ReturnManifestAdmin(ObjectActionsMixin, FastChangeListMixin, NoDeleteMixin, admin.ModelAdmin):
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

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ReturnManifestAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["facility", "shipping_provider", "comments"]
        return [
            ("code", "status_badge"),
            ("facility", "shipping_provider"),
            "comments",
            ("created_by", "created_at", "closed_at"),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "code",
            "status_badge",
            "facility",
            "shipping_provider",
            "comments",
            "created_by",
            "created_at",
            "closed_at",
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
        obj.pk, obj.code, obj.status = created.pk, created.code, created.status
        obj.created_at, obj.created_by = created.created_at, created.created_by

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
                        _links([p for p in outcome.created if isinstance(p, Putaway)]),
                    ),
                )


# --- Reverse pickups -------------------------------------------------------------------------


@admin.register(ReversePickup)
class ReversePickupAdmin(ObjectActionsMixin, FastChangeListMixin, NoDeleteMixin, admin.ModelAdmin):
    """Customer returns (CIR), created from the order or units pages."""

    list_display = [
        "code",
        "order",
        "facility",
        "status_badge",
        "courier_name",
        "return_awb",
        "reason",
        "created_at",
    ]
    list_select_related = ["order", "facility"]
    list_filter = ["status", "facility", recent_filter("created_at", "created")]
    sortable_by = ["code", "created_at"]
    search_fields = ["code"]
    search_help_text = "Exact pickup code, return AWB, or an order code."
    change_form_template = "admin/uniware/change_form.html"
    fields = [
        ("code", "status_badge"),
        ("order", "facility"),
        "reason",
        ("courier_name", "courier_code", "return_awb"),
        ("created_by", "created_at", "closed_at"),
    ]
    readonly_fields = [
        "code",
        "status_badge",
        "order",
        "facility",
        "reason",
        "courier_name",
        "courier_code",
        "return_awb",
        "created_by",
        "created_at",
        "closed_at",
    ]
    actions = ["allocate_courier", "complete", "mark_not_received", "cancel"]
    object_actions = {
        "allocate_courier": [RP.CREATED],
        "complete": [RP.COURIER_ALLOCATED],
        "mark_not_received": [RP.COURIER_ALLOCATED],
        "cancel": [RP.CREATED, RP.COURIER_ALLOCATED],
    }

    def has_add_permission(self, request) -> bool:
        return False  # made from the order or unit pages, for the units chosen

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return status_badge(obj.status)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        direct = queryset.filter(code=term) | queryset.filter(return_awb=term)
        if direct.exists():
            return direct, False
        return queryset.filter(order__in=Order.objects.filter(selectors.order_search(term))), False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            units = Table("Units", ["Unit", "SKU", "Status", "Shipment", "Order"])
            items = ReversePickupItem.objects.filter(reverse_pickup=obj).select_related(
                "order_item__sku", "order_item__shipment", "order_item__order"
            )
            for item in items:
                unit = item.order_item
                units.add(
                    unit.code,
                    unit.sku.code,
                    status_badge(unit.status),
                    link(unit.shipment),
                    link(unit.order),
                )
            context["related_tables"] = [
                units,
                putaways_table(Putaway.objects.filter(reverse_pickup=obj)),
                history_table(selectors.object_history(obj)),
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_complete_permission(self, request) -> bool:
        return request.user.has_perm("orders.complete_reversepickup")

    def has_courier_permission(self, request) -> bool:
        return request.user.has_perm("orders.change_reversepickup")

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("orders.cancel_reversepickup")

    @admin.action(description="Allocate courier…", permissions=["courier"])
    def allocate_courier(self, request, queryset):
        pickups = list(queryset[:2])
        if len(pickups) != 1:
            messages.error(request, "Select one reverse pickup: each has its own return AWB.")
            return None
        form, page = form_step(
            self,
            request,
            queryset,
            CourierForm,
            action="allocate_courier",
            title=f"Allocate a courier to {pickups[0]}",
            submit="Allocate",
        )
        if form is None:
            return page
        data = form.cleaned_data
        pickup = run_action(
            request,
            lambda: reverse_pickup_allocate_courier(
                pickups[0],
                courier_name=data["courier_name"],
                courier_code=data["courier_code"],
                return_awb=data["return_awb"],
                actor=request.user,
            ),
            what=f"Reverse pickup {pickups[0]}",
        )
        if pickup is not None:
            messages.success(request, f"Courier allocated to {pickup}: AWB {pickup.return_awb}.")
        return None

    @admin.action(
        description="Complete (received back: makes the putaway)", permissions=["complete"]
    )
    def complete(self, request, queryset):
        ids = _ids(queryset)
        outcome = run_action(request, lambda: reverse_pickups_complete(ids, actor=request.user))
        if outcome is not None:
            report_outcome(
                request,
                outcome,
                done="Completed",
                failed="Could not complete",
                noun="reverse pickup",
                extra=_links([p for p in outcome.created if isinstance(p, Putaway)]),
            )

    @admin.action(description="Mark not received", permissions=["complete"])
    def mark_not_received(self, request, queryset):
        ids = _ids(queryset)
        outcome = run_action(
            request,
            lambda: reverse_pickups_mark_not_received(
                ids, actor=request.user, reason="marked in the admin"
            ),
        )
        report_outcome(
            request,
            outcome,
            done="Marked not received",
            failed="Could not mark",
            noun="reverse pickup",
        )

    @admin.action(description="Cancel (whole pickups)…", permissions=["cancel"])
    def cancel(self, request, queryset):
        form, page = form_step(
            self,
            request,
            queryset,
            ReasonForm,
            action="cancel",
            title="Cancel reverse pickups",
            submit="Cancel these pickups",
        )
        if form is None:
            return page
        ids = _ids(queryset)
        reason = form.cleaned_data["reason"]
        outcome = run_action(
            request, lambda: reverse_pickups_cancel(ids, reason=reason, actor=request.user)
        )
        report_outcome(
            request, outcome, done="Cancelled", failed="Could not cancel", noun="reverse pickup"
        )
        return None


# --- Tables on the order page ----------------------------------------------------------------


def putaways_table(putaways) -> Table:
    table = Table(
        "Putaways",
        ["Putaway", "Type", "Status", "Facility", "Units", "Created", "Done"],
        empty="No putaways.",
    )
    for p in putaways.select_related("facility").order_by("pk"):
        table.add(
            link(p),
            p.get_putaway_type_display(),
            status_badge(p.status, p.get_status_display()),
            p.facility.code,
            p.item_count,
            when(p.created_at),
            when(p.completed_at),
        )
    return table


def order_return_tables(order: Order) -> list[Table]:
    """Returns, putaways and follow-up orders of an order, the tables that have rows (a
    fixed number of queries)."""
    returns = Table(
        "Returns",
        ["Return", "Kind", "Status", "Units", "Courier / AWB", "Putaway"],
        empty="No returns.",
    )
    courier = (
        Shipment.objects.filter(
            order=order,
            status__in=[SS.RETURN_EXPECTED, SS.RETURN_ACKNOWLEDGED, SS.RETURNED],
        )
        .select_related("return_manifest_item__return_manifest")
        .annotate(unit_count=Count("items"))
        .order_by("pk")
    )
    item_rows = PutawayItem.objects.filter(order_item__order=order).select_related(
        "putaway", "order_item", "shelf"
    )
    putaway_of_unit = {i.order_item_id: i for i in item_rows}
    putaway_of_shipment = {i.order_item.shipment_id: i.putaway for i in item_rows}
    for s in courier:
        manifest = getattr(getattr(s, "return_manifest_item", None), "return_manifest", None)
        returns.add(
            format_html(
                "{} {}", link(s), format_html("(on {})", link(manifest)) if manifest else ""
            ),
            "Courier return (RTO)",
            status_badge(s.status),
            s.unit_count,
            s.tracking_number or "—",
            link(putaway_of_shipment.get(s.pk)),
        )
    pickups = ReversePickup.objects.filter(order=order).annotate(n=Count("items")).order_by("pk")
    members: dict[int, list[int]] = defaultdict(list)
    for pickup_id, unit_id in ReversePickupItem.objects.filter(
        reverse_pickup__order=order
    ).values_list("reverse_pickup_id", "order_item_id"):
        members[pickup_id].append(unit_id)
    for p in pickups:
        putaway = next(
            (putaway_of_unit[u].putaway for u in members[p.pk] if u in putaway_of_unit), None
        )
        returns.add(
            link(p),
            "Customer return (reverse pickup)",
            status_badge(p.status),
            p.n,
            f"{p.courier_name or p.courier_code} {p.return_awb}".strip() or "—",
            link(putaway),
        )

    putaway_units = Table(
        "Units on putaways",
        ["Unit", "Putaway", "Type", "Status", "Shelf", "Inventory type"],
        empty="No unit of this order is on a putaway.",
    )
    for item in sorted(item_rows, key=lambda i: i.pk):
        putaway_units.add(
            item.order_item.code,
            link(item.putaway),
            item.putaway.get_putaway_type_display(),
            status_badge(item.putaway.status, item.putaway.get_status_display()),
            item.shelf.code if item.shelf_id else "—",
            item.inventory_type or "—",
        )

    follow = Table("Reshipment and replacement orders", ["Order", "Kind", "Status"], empty="")
    related = Order.objects.filter(source_order=order).order_by("pk")
    for o in related:
        follow.add(link(o), o.get_kind_display(), status_badge(o.status))
    if order.source_order_id:
        follow.note = format_html(
            "This {} follows up order {}.",
            order.get_kind_display().lower(),
            link(Order.objects.get(pk=order.source_order_id)),
        )
    # Shown only when there is something to show: most orders are never returned.
    return [t for t in (returns, putaway_units, follow) if t.rows or t.note]


__all__ = [
    "OrderReturnsMixin",
    "ReturnManifestAdmin",
    "ReversePickupAdmin",
    "ShipmentReturnsMixin",
    "UnitReturnsMixin",
    "order_return_tables",
    "putaways_table",
]
