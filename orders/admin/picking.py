"""The picklist's "Receive with items not found…": per line (shelf, SKU, quantity, in walk
order) the quantity not found, a reason, and what becomes of those units; then
`orders.services.picklist_receive_partial`. Same permission as "Receive"."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from uniware.core.admin_utils import form_step, link, plural, run_action

from ..models import PicklistStatus
from ..services import NotFoundThen, picklist_receive_partial
from ..services.picking import MAX_REASON, PartialReceipt, PickLine, choose_not_found
from ..services.picking import picklist_lines as lines_of

THEN_HELP = (
    "Back to allocation: the stock row it was missing from is never taken again for it; it "
    "is allocated now from another shelf or facility that has stock, else it waits. "
    "Unfulfillable: it waits for stock to arrive. Either way the shelf's stock is reduced "
    "by the units not found (a NOT_FOUND row in the stock ledger)."
)


def field_name(line: PickLine) -> str:
    return f"not_found_{line.shelf_id or 0}_{line.sku_id}"


class NotFoundForm(forms.Form):
    """One "not found" quantity per line; each refused one names its line next to it."""

    reason = forms.CharField(
        max_length=MAX_REASON,
        help_text="Recorded on each unit's history, the stock ledger and the picklist.",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    then = forms.ChoiceField(
        label="Units not found",
        choices=[(value, label.capitalize()) for value, label in NotFoundThen.choices],
        initial=NotFoundThen.REALLOCATE,
        widget=forms.RadioSelect,
        help_text=THEN_HELP,
    )

    def __init__(self, *args, lines: list[PickLine], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lines = lines
        for line in lines:
            # no max: a count above the line's comes back with the error naming the line
            self.fields[field_name(line)] = forms.IntegerField(
                label=f"{line}: not found",
                required=False,
                initial=0,
                widget=forms.NumberInput(attrs={"style": "width: 5em", "min": 0}),
            )

    def clean(self):
        cleaned = super().clean()
        counts = {}
        for line in self.lines:
            count = cleaned.get(field_name(line)) or 0
            try:
                choose_not_found([line], {line.key: count})  # the service's own check
            except ValidationError as exc:
                self.add_error(field_name(line), exc)
                continue
            if count:
                counts[line.key] = count
        if not counts and not any(field_name(line) in self.errors for line in self.lines):
            raise ValidationError(
                "Enter the quantity not found on at least one line (or use Receive)."
            )
        cleaned["counts"] = counts
        return cleaned


@admin.action(description="Receive with items not found…", permissions=["receive"])
def receive_partial(modeladmin, request, queryset):
    picklists = list(queryset[:2])
    if len(picklists) != 1 or picklists[0].status != PicklistStatus.CREATED:
        messages.error(
            request,
            "Receive with items not found works on one picklist at a time, not yet received: "
            "select one CREATED picklist.",
        )
        return None
    picklist = picklists[0]
    lines = lines_of(picklist.pk)
    form, page = form_step(
        modeladmin,
        request,
        queryset,
        NotFoundForm,
        action="receive_partial",
        title=f"Receive picklist {picklist} with items not found",
        intro=(
            "Enter, per shelf and SKU, how many units were not found. The units found are "
            "received as usual; a shipment none of whose units was found is cancelled."
        ),
        submit="Receive",
        form_kwargs={"lines": lines},
        rows=lambda form: [
            (line.shelf_code or "—", line.sku_code, line.sku_name, line.quantity, form[name])
            for line in lines
            for name in [field_name(line)]
        ],
        row_columns=["Shelf", "SKU", "Name", "To pick", "Not found"],
        row_fields=[field_name(line) for line in lines],
    )
    if form is None:
        return page
    data = form.cleaned_data
    receipt = run_action(
        request,
        lambda: picklist_receive_partial(
            picklist.pk,
            not_found=data["counts"],
            reason=data["reason"],
            then=data["then"],
            actor=request.user,
        ),
        what=f"Picklist {picklist}",
    )
    if receipt is not None:
        messages.success(request, receipt_text(receipt))
    return None


def _links(objects) -> str:
    return format_html_join(", ", "{}", ((link(obj),) for obj in objects))


def receipt_text(receipt: PartialReceipt) -> str:
    """What happened, in one message: the units not found and where they went."""
    parts = [
        format_html(
            "Received picklist {} with {} not found ({}).",
            link(receipt.picklist),
            plural(len(receipt.not_found), "unit"),
            NotFoundThen(receipt.then).label,
        )
    ]
    if receipt.reallocated:
        shipments = {u.shipment_id: u for u in receipt.reallocated}
        parts.append(
            format_html(
                "Allocated again: {} (in {}).",
                plural(len(receipt.reallocated), "unit"),
                _links(s for s in receipt.new_shipments if s.pk in shipments)
                or plural(len(shipments), "open shipment"),
            )
        )
    if receipt.waiting:
        parts.append(f"Waiting for stock (UNFULFILLABLE): {plural(len(receipt.waiting), 'unit')}.")
    if receipt.emptied:
        parts.append(format_html("Cancelled, nothing in them found: {}.", _links(receipt.emptied)))
    return format_html_join(" ", "{}", ((p,) for p in parts))
