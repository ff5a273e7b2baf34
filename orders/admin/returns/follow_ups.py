"""Reship and replace units from the units list: each makes a new order linked to the
original (a reshipment or a replacement), whose link the success message shows."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from uniware.core.admin_utils import form_step, report_outcome, run_action, selected_ids

from ...models import Order, ReshipOption
from ...services import units_replace, units_reship
from .common import created_links, created_of, unit_labels


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


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=255, required=False, widget=forms.TextInput(attrs={"size": 80})
    )


@admin.action(description="Reship courier-returned units…", permissions=["reship"])
def reship_units(modeladmin, request, queryset):
    form, page = form_step(
        modeladmin,
        request,
        queryset,
        ReshipForm,
        action="reship_units",
        title="Reship units",
        submit="Reship",
    )
    if form is None:
        return page
    ids = selected_ids(queryset)
    data = form.cleaned_data
    outcome = run_action(
        request,
        lambda: units_reship(ids, option=data["option"], reason=data["reason"], actor=request.user),
        what="Reship",
    )
    report_outcome(
        request,
        unit_labels(outcome),
        done="Reshipped (or waiting for their return)",
        failed="Could not reship",
        noun="unit",
        extra=created_links(created_of(outcome, Order)),
    )
    return None


@admin.action(description="Replace units (new order)…", permissions=["replace"])
def replace_units(modeladmin, request, queryset):
    form, page = form_step(
        modeladmin,
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
    ids = selected_ids(queryset)
    reason = form.cleaned_data["reason"]
    outcome = run_action(
        request, lambda: units_replace(ids, reason=reason, actor=request.user), what="Replace"
    )
    report_outcome(
        request,
        unit_labels(outcome),
        done="Replaced",
        failed="Could not replace",
        noun="unit",
        extra=created_links(outcome.created if outcome else []),
    )
    return None
