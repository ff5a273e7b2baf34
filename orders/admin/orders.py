"""Admin for orders and their units.

Orders are created through `order_create` (a custom add form) and moved on only by bulk
actions that call services; statuses are never edited by hand. The changelist stays fast on
millions of orders: exact indexed search, fixed filter choices, no COUNT(*) (see
`uniware.core.admin_utils`).

The order page is declared in `OrderAdmin`, whole: its bulk actions (its own, and those
written with their services: cancellation, returns, the channel's status sync), which of
them are buttons on the page and when, the permissions they name, and the sections below
the form, top to bottom. The units list (`OrderItemAdmin`) declares its actions the same way.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from channels.admin_actions import sync_status_from_channel
from channels.admin_tables import order_sync_errors_tables
from inventory.models import Facility
from notifications.admin import order_notifications_tables
from uniware.core.admin_utils import (
    DOMAIN_ERRORS,
    FastChangeListMixin,
    NoDeleteMixin,
    ObjectActionsMixin,
    SaveChangedFieldsMixin,
    Table,
    changelist_url,
    error_text,
    recent_filter,
    report_outcome,
    run_action,
    status_badge,
)
from uniware.core.models import StateChange
from uniware.core.results import Outcome

from .. import selectors
from ..models import Order, OrderItem, OrderStatus, Shipment
from ..services import allocate_units, order_accept, order_create, orders_hold, orders_unhold
from .cancellation import cancel_orders, cancel_units, order_can_be_cancelled
from .common import history_table, invoices_table, shipments_table, units_by_line_table
from .forms import OrderAddForm
from .returns.courier import mark_orders_returned, order_has_markable_returns
from .returns.follow_ups import replace_units, reship_units
from .returns.pickups import (
    create_order_reverse_pickup,
    create_unit_reverse_pickup,
    order_has_returnable_units,
)
from .returns.tables import order_return_tables

OPEN = [OrderStatus.PENDING_VERIFICATION, OrderStatus.CREATED, OrderStatus.PROCESSING]


class OrderFacilityFilter(admin.SimpleListFilter):
    """Orders with a shipment from this facility (choices from the small facility table)."""

    title = "facility"
    parameter_name = "facility"

    def lookups(self, request, model_admin):
        return list(Facility.objects.order_by("priority", "code").values_list("pk", "code"))

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not str(value).isdigit():
            return queryset.none()
        shipments = Shipment.objects.filter(order=OuterRef("pk"), facility_id=int(value))
        return queryset.filter(Exists(shipments))


def _allocation_outcome(before: list[tuple[int, str, str, bool]], result) -> Outcome:
    """Per order: what allocation did, or why it did nothing (the service reports units)."""
    counts: dict[int, Counter] = defaultdict(Counter)
    for kind in ("fulfillable", "not_serviceable", "unfulfillable"):
        for unit in getattr(result, kind):
            counts[unit.order_id][kind] += 1
    untouched = [pk for pk, *_ in before if pk not in counts]
    waiting = selectors.orders_with_waiting_units(untouched) if untouched else set()
    outcome = Outcome()
    for pk, code, status, on_hold in before:
        c = counts.get(pk)
        if c:
            parts = [f"{n} {kind.replace('_', ' ')}" for kind, n in c.items() if n]
            if c["fulfillable"]:
                outcome.done.append(f"{code} ({', '.join(parts)})")
            elif c["not_serviceable"]:
                outcome.fail(
                    code,
                    f"stock blocked but no shipping provider serves its pincode "
                    f"and payment method ({', '.join(parts)})",
                )
            else:
                outcome.fail(code, f"no stock in any facility ({', '.join(parts)})")
        elif on_hold:
            outcome.fail(code, "the order is on hold; unhold it first")
        elif status == OrderStatus.PENDING_VERIFICATION:
            outcome.fail(code, "the order is pending verification; accept it first")
        elif status in (OrderStatus.COMPLETE, OrderStatus.CANCELLED):
            outcome.fail(code, f"the order is {status}: nothing to allocate")
        elif pk in waiting:
            outcome.fail(code, "still no stock in any facility for its waiting units")
        else:
            outcome.fail(code, "no units are waiting for allocation")
    return outcome


# --- The sections of the order page: (order, request) -> its tables ---------------------------


def units_section(order: Order, request: HttpRequest) -> list[Table]:
    return [units_by_line_table(selectors.order_units(order))]


def shipments_section(order: Order, request: HttpRequest) -> list[Table]:
    return [shipments_table(selectors.order_shipments(order))]


def invoices_section(order: Order, request: HttpRequest) -> list[Table]:
    """Every invoice and credit note of the order's shipments; each page prints its PDF."""
    return [invoices_table(selectors.order_invoices(order))]


def history_section(order: Order, request: HttpRequest) -> list[Table]:
    more = changelist_url(StateChange, order__id__exact=order.pk)
    return [history_table(selectors.order_history(order), more_url=more)]


@admin.register(Order)
class OrderAdmin(
    ObjectActionsMixin,
    FastChangeListMixin,
    SaveChangedFieldsMixin,
    NoDeleteMixin,
    admin.ModelAdmin,
):
    list_display = [
        "code",
        "channel",
        "order_date",
        "dispatch_by",
        "status_badge",
        "customer_name",
        "ship_city",
        "ship_pincode",
        "item_count",
        "total_amount",
        "payment_method",
    ]
    list_select_related = ["channel"]
    list_filter = [
        "status",
        "channel",
        OrderFacilityFilter,
        "payment_method",
        "on_hold",
        recent_filter("order_date", "order date"),
    ]
    sortable_by = ["code", "order_date", "status_badge"]
    search_fields = ["code"]  # the box only; get_search_results does exact, indexed lookups
    search_help_text = (
        "Order code, channel order id, SKU code, AWB or invoice number (exact); or the "
        "customer's e-mail, phone, pincode or name (any part of it)."
    )
    change_form_template = "admin/uniware/change_form.html"
    add_form_template = "admin/orders/order/add_form.html"
    # The bulk actions, in the order of the action bar.
    actions = [
        "allocate",
        "hold",
        "unhold",
        "accept",
        sync_status_from_channel,  # channels.admin_actions
        cancel_orders,  # orders.admin.cancellation
        mark_orders_returned,  # orders.admin.returns.courier
        create_order_reverse_pickup,  # orders.admin.returns.pickups
    ]
    # Those that are buttons on the order page: the statuses or test that show each.
    object_actions = {
        "accept": [OrderStatus.PENDING_VERIFICATION],
        "allocate": lambda o: not o.on_hold and o.status in OPEN[1:],
        "hold": lambda o: not o.on_hold and o.status in OPEN,
        "unhold": lambda o: o.on_hold,
        "cancel_orders": order_can_be_cancelled,
        "mark_orders_returned": order_has_markable_returns,
        "create_order_reverse_pickup": order_has_returnable_units,
    }
    # The tables below the form, top to bottom (a section without rows may show none).
    sections = [
        units_section,
        shipments_section,
        invoices_section,
        order_return_tables,  # returns, units on putaways, follow-up orders
        order_notifications_tables,  # what its channel was told
        order_sync_errors_tables,  # what syncing it with its channel met
        history_section,
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("code", "status_badge"),
                    ("channel", "channel_order_id"),
                    ("order_date", "payment_method"),
                    ("item_count", "total_amount", "currency"),
                    "amounts",
                    ("on_hold", "third_party_shipping", "priority"),
                    "verification_reason",
                ]
            },
        ),
        (
            "Customer and shipping address",
            {
                "fields": [
                    "customer_name",
                    "customer_email",
                    "customer_phone",
                    "ship_address_line1",
                    "ship_address_line2",
                    ("ship_city", "ship_state"),
                    ("ship_pincode", "ship_country"),
                ]
            },
        ),
    ]
    # What staff may correct by hand; everything else is set by services.
    editable_fields = {
        "priority",
        "customer_name",
        "customer_email",
        "customer_phone",
        "ship_address_line1",
        "ship_address_line2",
        "ship_city",
        "ship_state",
    }

    def get_readonly_fields(self, request, obj=None):
        names = [n for row in self.fieldsets for n in _flatten(row[1]["fields"])]
        return [n for n in names if n not in self.editable_fields]

    @admin.display(description="amounts")
    def amounts(self, obj: Order) -> str:
        """The total as ordered and what is left of it after cancellations."""
        left = selectors.order_open_amount(obj)
        if left == obj.total_amount:
            return f"{obj.total_amount} {obj.currency}, nothing cancelled"
        return f"{obj.total_amount} {obj.currency} ordered, {left} after cancellations"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Order):
        if obj.on_hold:  # one column for both keeps the list readable at laptop widths
            return format_html("{} {}", status_badge(obj.status), status_badge("ON_HOLD"))
        return status_badge(obj.status)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(selectors.order_search(search_term)), False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = [
                table for section in self.sections for table in section(obj, request)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- Adding: through the service ----------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OrderAddForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                order = order_create(
                    form.to_input(), actor=request.user, allocate=form.cleaned_data["allocate"]
                )
            except ValidationError as exc:
                form.add_service_error(exc)
            except IntegrityError:
                form.add_error(
                    "channel_order_id",
                    "An order with this channel order id was created at the same time; "
                    "nothing was saved.",
                )
            else:
                self.log_addition(request, order, [{"added": {}}])
                messages.success(
                    request,
                    f"Order {order.code} created with {order.item_count} units; it is "
                    f"{order.status}.",
                )
                return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))
        fieldsets = [(title, [form[name] for name in names]) for title, names in form.fieldsets]
        context = {
            **self.admin_site.each_context(request),
            "title": "Add order",
            "opts": self.opts,
            "form": form,
            "form_fieldsets": fieldsets,
            "has_view_permission": self.has_view_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.add_form_template, context)

    # --- Actions: the permissions they name, then this module's own ----------------------

    def has_allocate_permission(self, request) -> bool:
        return request.user.has_perm("orders.allocate_order")

    def has_sync_permission(self, request) -> bool:
        return request.user.has_perm("orders.sync_order")

    def has_hold_permission(self, request) -> bool:
        return request.user.has_perm("orders.hold_order")

    def has_accept_permission(self, request) -> bool:
        return request.user.has_perm("orders.accept_order")

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("orders.cancel_order")

    def has_return_permission(self, request) -> bool:
        return request.user.has_perm("orders.return_shipment")

    def has_reversepickup_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_reversepickup")

    @admin.action(description="Allocate stock to the selected orders", permissions=["allocate"])
    def allocate(self, request, queryset):
        before = list(queryset.order_by("pk").values_list("pk", "code", "status", "on_hold"))
        result = run_action(
            request,
            lambda: allocate_units(order_ids=[row[0] for row in before], actor=request.user),
            what="Allocation",
        )
        if result is not None:
            report_outcome(
                request,
                _allocation_outcome(before, result),
                done="Allocated",
                failed="Could not allocate",
                noun="order",
            )

    @admin.action(description="Put the selected orders on hold", permissions=["hold"])
    def hold(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        outcome = run_action(
            request, lambda: orders_hold(ids, actor=request.user, reason="held from the admin")
        )
        report_outcome(request, outcome, done="Put on hold", failed="Could not hold", noun="order")

    @admin.action(description="Release the selected orders from hold", permissions=["hold"])
    def unhold(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        outcome = run_action(request, lambda: orders_unhold(ids, actor=request.user))
        report_outcome(request, outcome, done="Released", failed="Could not release", noun="order")

    @admin.action(
        description="Accept the selected orders (pending verification)", permissions=["accept"]
    )
    def accept(self, request, queryset):
        outcome = Outcome()
        for order in queryset.order_by("pk"):
            try:
                outcome.done.append(order_accept(order, actor=request.user))
            except (*DOMAIN_ERRORS, ValueError, IntegrityError) as exc:
                outcome.fail(order, error_text(exc))
        report_outcome(
            request,
            outcome,
            done="Accepted (and allocated)",
            failed="Could not accept",
            noun="order",
        )


def _flatten(fields):
    for item in fields:
        if isinstance(item, list | tuple):
            yield from item
        else:
            yield item


@admin.register(OrderItem)
class OrderItemAdmin(FastChangeListMixin, admin.ModelAdmin):
    """Units, for finding them across orders (unfulfillable, not serviceable ...). Units are
    created with their order and changed only by services: this page is read-only but for
    its bulk actions."""

    actions = [
        cancel_units,  # orders.admin.cancellation
        reship_units,  # orders.admin.returns.follow_ups
        replace_units,  # orders.admin.returns.follow_ups
        create_unit_reverse_pickup,  # orders.admin.returns.pickups
    ]

    list_display = [
        "code",
        "order",
        "channel_order_item_id",
        "sku",
        "status_badge",
        "facility",
        "shipment",
        "selling_price",
    ]
    list_select_related = ["order", "sku", "facility", "shipment"]
    list_filter = [
        "status",
        ("order__channel", admin.RelatedFieldListFilter),
        "facility",
        recent_filter("created_at", "created"),
    ]
    sortable_by = ["code"]
    search_fields = ["code"]
    search_help_text = "Exact SKU code, order code, channel order id or tracking number."
    readonly_fields = [
        "order",
        "code",
        "channel_order_item_id",
        "sku",
        "title",
        "status_badge",
        "facility",
        "inventory",
        "shipment",
        "selling_price",
        "shipping_charges",
        "channel_product_id",
        "variant_id",
        "cancellation_reason",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: OrderItem):
        return status_badge(obj.status)

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("orders.cancel_order")

    def has_reship_permission(self, request) -> bool:
        return request.user.has_perm("orders.reship_orderitem")

    def has_replace_permission(self, request) -> bool:
        return request.user.has_perm("orders.replace_orderitem")

    def has_reversepickup_permission(self, request) -> bool:
        return request.user.has_perm("orders.add_reversepickup")

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(selectors.unit_search(search_term)), False
