"""Cancel orders or units from their lists, with a reason: each unit is cancelled as its stage
requires (`orders.services.cancellation`); the message links the putaways made for units
that were picked or invoiced."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from inventory.models import Putaway
from uniware.core.admin_utils import form_step, report_outcome, run_action, selected_ids

from ..models import Order, OrderStatus, Shipment, ShipmentStatus
from ..services import orders_cancel, units_cancel
from .returns.common import created_links, created_of, unit_labels


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=100,
        help_text="At most 100 characters; recorded on each unit and in its history.",
        widget=forms.TextInput(attrs={"size": 80}),
    )


def order_can_be_cancelled(order: Order) -> bool:
    """The order page's "Cancel" button: an open order, or a complete one still on its way."""
    if order.status != OrderStatus.COMPLETE:
        return order.status != OrderStatus.CANCELLED
    in_transit = [ShipmentStatus.DISPATCHED, ShipmentStatus.SHIPPED]
    return Shipment.objects.filter(order=order, status__in=in_transit).exists()


@admin.action(description="Cancel orders…", permissions=["cancel"])
def cancel_orders(modeladmin, request, queryset):
    form, page = form_step(
        modeladmin,
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
    ids = selected_ids(queryset)
    reason = form.cleaned_data["reason"]
    outcome = run_action(
        request, lambda: orders_cancel(ids, reason=reason, actor=request.user), what="Cancel"
    )
    report_outcome(
        request,
        outcome,
        done="Cancelled",
        failed="Could not cancel",
        noun="order",
        extra=created_links(created_of(outcome, Putaway)),
    )
    return None


@admin.action(description="Cancel units…", permissions=["cancel"])
def cancel_units(modeladmin, request, queryset):
    form, page = form_step(
        modeladmin,
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
    ids = selected_ids(queryset)
    reason = form.cleaned_data["reason"]
    outcome = run_action(
        request, lambda: units_cancel(ids, reason=reason, actor=request.user), what="Cancel"
    )
    report_outcome(
        request,
        unit_labels(outcome),
        done="Cancelled",
        failed="Could not cancel",
        noun="unit",
        extra=created_links(created_of(outcome, Putaway)),
    )
    return None
