"""Customer returns (CIR) in the admin: "create a reverse pickup" for an order
(`create_order_reverse_pickup`) or units (`create_unit_reverse_pickup`), and the reverse
pickups: allocate a courier, complete, mark not received, cancel."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from inventory.models import Putaway
from uniware.core.admin_utils import (
    FastChangeListMixin,
    NoDeleteMixin,
    ObjectActionsMixin,
    Table,
    admin_url,
    form_step,
    link,
    recent_filter,
    report_outcome,
    run_action,
    selected_ids,
    status_badge,
)

from ... import selectors
from ...models import (
    Order,
    OrderItem,
    OrderItemStatus,
    ReversePickup,
    ReversePickupItem,
    ReversePickupStatus,
)
from ...services import (
    reverse_pickup_allocate_courier,
    reverse_pickup_create,
    reverse_pickups_cancel,
    reverse_pickups_complete,
    reverse_pickups_mark_not_received,
)
from ...services.returns.common import CUSTOMER_RETURNABLE_SHIPMENTS
from ..common import history_table
from .common import created_links, created_of
from .tables import putaways_table

# The units of an order that its "Create a reverse pickup" action puts on the pickup (and
# whose presence shows that button).
RETURNABLE = {
    "status__in": [OrderItemStatus.DISPATCHED, OrderItemStatus.DELIVERED],
    "shipment__status__in": CUSTOMER_RETURNABLE_SHIPMENTS,
}


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=255, widget=forms.TextInput(attrs={"size": 80}))


class CourierForm(forms.Form):
    courier_name = forms.CharField(max_length=100, required=False)
    courier_code = forms.CharField(max_length=40, required=False)
    return_awb = forms.CharField(label="Return AWB", max_length=60)

    def clean(self):
        cleaned = super().clean()
        if not (cleaned.get("courier_name") or cleaned.get("courier_code")):
            raise forms.ValidationError("Name the courier (its name or its code).")
        return cleaned


# --- Creating one, from the order or the units --------------------------------------------------


def _create_pickup(modeladmin, request, queryset, units, *, action: str):
    """Ask for the reason, then put these units on a new reverse pickup."""
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


def order_has_returnable_units(order: Order) -> bool:
    """The order page's "Create a reverse pickup" button: a dispatched or delivered unit."""
    return order.items.filter(**RETURNABLE).exists()


@admin.action(
    description="Create a reverse pickup (customer return)…", permissions=["reversepickup"]
)
def create_order_reverse_pickup(modeladmin, request, queryset):
    orders = list(queryset[:2])
    if len(orders) != 1:
        messages.error(request, "Select one order: a reverse pickup returns units of one order.")
        return None
    units = OrderItem.objects.filter(order=orders[0], **RETURNABLE)
    return _create_pickup(
        modeladmin, request, queryset, units, action="create_order_reverse_pickup"
    )


@admin.action(
    description="Create a reverse pickup (customer return)…", permissions=["reversepickup"]
)
def create_unit_reverse_pickup(modeladmin, request, queryset):
    return _create_pickup(
        modeladmin, request, queryset, queryset, action="create_unit_reverse_pickup"
    )


# --- Reverse pickups ----------------------------------------------------------------------------


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
        "allocate_courier": [ReversePickupStatus.CREATED],
        "complete": [ReversePickupStatus.COURIER_ALLOCATED],
        "mark_not_received": [ReversePickupStatus.COURIER_ALLOCATED],
        "cancel": [ReversePickupStatus.CREATED, ReversePickupStatus.COURIER_ALLOCATED],
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
            context["related_tables"] = [
                _units_table(obj),
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
        ids = selected_ids(queryset)
        outcome = run_action(request, lambda: reverse_pickups_complete(ids, actor=request.user))
        if outcome is not None:
            report_outcome(
                request,
                outcome,
                done="Completed",
                failed="Could not complete",
                noun="reverse pickup",
                extra=created_links(created_of(outcome, Putaway)),
            )

    @admin.action(description="Mark not received", permissions=["complete"])
    def mark_not_received(self, request, queryset):
        ids = selected_ids(queryset)
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
        ids = selected_ids(queryset)
        reason = form.cleaned_data["reason"]
        outcome = run_action(
            request, lambda: reverse_pickups_cancel(ids, reason=reason, actor=request.user)
        )
        report_outcome(
            request, outcome, done="Cancelled", failed="Could not cancel", noun="reverse pickup"
        )
        return None


def _units_table(pickup: ReversePickup) -> Table:
    table = Table("Units", ["Unit", "SKU", "Status", "Shipment", "Order"])
    items = ReversePickupItem.objects.filter(reverse_pickup=pickup).select_related(
        "order_item__sku", "order_item__shipment", "order_item__order"
    )
    for item in items:
        unit = item.order_item
        table.add(
            unit.code,
            unit.sku.code,
            status_badge(unit.status),
            link(unit.shipment),
            link(unit.order),
        )
    return table
