"""Admin for putaways: the work list of pending putaways per facility and type, with actions
to complete them (choosing shelf and good/bad, unit by unit if needed) or discard them.

Inbound and Returns Managers work here; completing is the only way stock comes back
(`inventory.putaway`). The model and its services are inventory's; the page is here because
it is about the units of orders that cancellations and returns send back: it finds putaways
by order, links the orders and shares the action pages of the returns admin.
"""

from __future__ import annotations

from collections import Counter

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from inventory.models import (
    Facility,
    InventoryType,
    Putaway,
    PutawayItem,
    PutawayStatus,
    PutawayType,
    Shelf,
)
from inventory.putaway import putaways_complete, putaways_discard
from uniware.core.admin_utils import (
    FastChangeListMixin,
    NoDeleteMixin,
    ObjectActionsMixin,
    Table,
    changelist_url,
    form_step,
    link,
    recent_filter,
    report_outcome,
    run_action,
    status_badge,
    work_list_filter,
)

from ..models import Order
from ..selectors import object_history, order_search
from .common import history_table

MAX_UNITS_ON_PAGE = 300  # per-unit choices on the completion page; beyond that, one choice

TYPE_CHOICES = [
    (InventoryType.GOOD_INVENTORY, "Good (sellable)"),
    (InventoryType.BAD_INVENTORY, "Bad (damaged)"),
]


class CompletePutawayForm(forms.Form):
    """One shelf and type for all units, and optionally a shelf and type per unit."""

    inventory_type = forms.ChoiceField(
        label="Inventory type", choices=TYPE_CHOICES, initial=InventoryType.GOOD_INVENTORY
    )
    shelf_code = forms.CharField(
        required=False,
        max_length=40,
        help_text="Empty: each unit goes back to the shelf it was picked from.",
    )

    def __init__(self, *args, items=(), facility_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.items = list(items)
        self.facility_ids = set(facility_ids)
        for item in self.items:
            self.fields[f"type_{item.pk}"] = forms.ChoiceField(
                choices=[("", "as above"), *TYPE_CHOICES], required=False, label=""
            )
            self.fields[f"shelf_{item.pk}"] = forms.CharField(
                required=False,
                max_length=40,
                label="",
                widget=forms.TextInput(attrs={"size": 10, "placeholder": "as above"}),
            )

    def unit_fields(self) -> list[str]:
        return [f"{kind}_{item.pk}" for item in self.items for kind in ("type", "shelf")]

    def _shelf(self, code: str, field: str, facility_id: int | None = None) -> Shelf | None:
        code = (code or "").strip()
        if not code:
            return None
        facilities = {facility_id} if facility_id else self.facility_ids
        shelves = list(Shelf.objects.filter(facility_id__in=facilities, code=code))
        if len(shelves) != 1:
            where = ", ".join(
                sorted(Facility.objects.filter(pk__in=facilities).values_list("code", flat=True))
            )
            if shelves:
                self.add_error(
                    field, f"Shelf {code!r} is in several facilities: complete one at a time."
                )
            else:
                self.add_error(field, f"No shelf {code!r} in {where}.")
            return None
        return shelves[0]

    def clean(self):
        cleaned = super().clean()
        cleaned["shelf"] = self._shelf(cleaned.get("shelf_code"), "shelf_code")
        placements = {}
        for item in self.items:
            shelf = self._shelf(
                cleaned.get(f"shelf_{item.pk}"), f"shelf_{item.pk}", item.putaway.facility_id
            )
            kind = cleaned.get(f"type_{item.pk}") or None
            if shelf or kind:
                placements[item.pk] = (shelf, kind)
        cleaned["placements"] = placements
        return cleaned


class DiscardForm(forms.Form):
    reason = forms.CharField(
        max_length=255,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Why the units will not come back into stock (lost, scrapped ...).",
    )


# The work list: pending putaways unless another status is chosen.
PendingFilter = work_list_filter("status", PutawayStatus.choices, PutawayStatus.CREATED)


@admin.register(Putaway)
class PutawayAdmin(ObjectActionsMixin, FastChangeListMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = [
        "code",
        "facility",
        "putaway_type",
        "status_badge",
        "item_count",
        "source",
        "created_by",
        "created_at",
        "completed_at",
    ]
    list_select_related = ["facility", "created_by", "return_manifest", "reverse_pickup"]
    list_filter = [
        PendingFilter,
        "facility",
        "putaway_type",
        recent_filter("created_at", "created"),
    ]
    sortable_by = ["code", "created_at"]
    search_fields = ["code"]
    search_help_text = "Exact putaway code, or an order code or SKU code of its units."
    change_list_template = "admin/inventory/putaway/change_list.html"
    change_form_template = "admin/uniware/change_form.html"
    fields = [
        ("code", "status_badge"),
        ("facility", "putaway_type", "item_count"),
        ("return_manifest", "reverse_pickup"),
        "discard_reason",
        ("created_by", "created_at", "completed_at"),
    ]
    readonly_fields = [
        "code",
        "status_badge",
        "facility",
        "putaway_type",
        "item_count",
        "return_manifest",
        "reverse_pickup",
        "discard_reason",
        "created_by",
        "created_at",
        "completed_at",
    ]
    actions = ["complete", "discard"]
    object_actions = {"complete": [PutawayStatus.CREATED], "discard": [PutawayStatus.CREATED]}

    def has_add_permission(self, request) -> bool:
        return False  # made by cancellations and returns

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # actions have their own permissions

    def has_complete_permission(self, request) -> bool:
        return request.user.has_perm("inventory.complete_putaway")

    def has_discard_permission(self, request) -> bool:
        return request.user.has_perm("inventory.discard_putaway")

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Putaway):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="from")
    def source(self, obj: Putaway):
        return (
            link(obj.return_manifest or obj.reverse_pickup)
            if (obj.return_manifest_id or obj.reverse_pickup_id)
            else "—"
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if queryset.filter(code=term).exists():
            return queryset.filter(code=term), False
        items = PutawayItem.objects.filter(
            order_item__order__in=Order.objects.filter(order_search(term))
        ).values("putaway_id")
        by_sku = PutawayItem.objects.filter(sku__code=term).values("putaway_id")
        return queryset.filter(pk__in=items) | queryset.filter(pk__in=by_sku), False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**(extra_context or {}), "work_list": pending_work_list()}
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_tables"] = [units_table(obj), history_table(object_history(obj))]
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Complete (choose shelf and good/bad)…", permissions=["complete"])
    def complete(self, request, queryset):
        pending = queryset.filter(status=PutawayStatus.CREATED)
        items = list(
            PutawayItem.objects.filter(putaway__in=pending)
            .select_related("putaway", "order_item__order", "sku", "suggested_shelf")
            .order_by("putaway_id", "pk")[: MAX_UNITS_ON_PAGE + 1]
        )
        per_unit = items if len(items) <= MAX_UNITS_ON_PAGE else []
        facility_ids = set(queryset.values_list("facility_id", flat=True))

        def rows(form):
            return [
                (
                    item.putaway.code,
                    format_html("{} / {}", link(item.order_item.order), item.order_item.code),
                    item.sku.code,
                    item.suggested_shelf.code if item.suggested_shelf_id else "—",
                    form[f"type_{item.pk}"],
                    form[f"shelf_{item.pk}"],
                )
                for item in per_unit
            ]

        form, page = form_step(
            self,
            request,
            queryset,
            CompletePutawayForm,
            action="complete",
            title="Complete putaways",
            intro=(
                "The units go onto the shelves chosen, as good or bad stock; stock is added "
                "once and units waiting for it are allocated."
            ),
            submit="Complete",
            form_kwargs={"items": per_unit, "facility_ids": facility_ids},
            rows=rows,
            row_columns=["Putaway", "Order / unit", "SKU", "Came from", "Type", "Shelf"],
            row_fields=[f"{k}_{i.pk}" for i in per_unit for k in ("type", "shelf")],
        )
        if form is None:
            return page
        ids = list(queryset.values_list("pk", flat=True))
        data = form.cleaned_data
        outcome = run_action(
            request,
            lambda: putaways_complete(
                ids,
                shelf=data["shelf"],
                inventory_type=data["inventory_type"],
                placements=data["placements"],
                actor=request.user,
            ),
            what="Putaway",
        )
        report_outcome(
            request, outcome, done="Completed", failed="Could not complete", noun="putaway"
        )
        return None

    @admin.action(description="Discard (units written off)…", permissions=["discard"])
    def discard(self, request, queryset):
        form, page = form_step(
            self,
            request,
            queryset,
            DiscardForm,
            action="discard",
            title="Discard putaways",
            intro="No stock comes back for their units.",
            submit="Discard",
        )
        if form is None:
            return page
        ids = list(queryset.values_list("pk", flat=True))
        reason = form.cleaned_data["reason"]
        outcome = run_action(
            request, lambda: putaways_discard(ids, reason=reason, actor=request.user)
        )
        report_outcome(
            request, outcome, done="Discarded", failed="Could not discard", noun="putaway"
        )
        return None


def pending_work_list() -> Table:
    """Pending putaways per facility and type, each count linking to its filtered list."""
    counts = Counter(
        Putaway.objects.filter(status=PutawayStatus.CREATED)
        .values_list("facility__code", "facility_id", "putaway_type")
        .order_by()
    )
    units = Counter()
    for code, facility_id, kind, n in (
        Putaway.objects.filter(status=PutawayStatus.CREATED)
        .values_list("facility__code", "facility_id", "putaway_type", "item_count")
        .order_by()
    ):
        units[(code, facility_id, kind)] += n
    table = Table(
        "Pending putaways",
        ["Facility", "Type", "Putaways", "Units"],
        empty="Nothing to put away.",
    )
    for (code, facility_id, kind), n in sorted(counts.items()):
        url = changelist_url(Putaway, facility__id__exact=facility_id, putaway_type__exact=kind)
        table.add(
            code,
            PutawayType(kind).label,
            format_html('<a href="{}">{}</a>', url, n),
            units[(code, facility_id, kind)],
        )
    return table


def units_table(putaway: Putaway) -> Table:
    table = Table(
        "Units",
        ["Unit", "Order", "SKU", "Came from", "Put on", "Inventory type"],
        empty="No units.",
    )
    items = PutawayItem.objects.filter(putaway=putaway).select_related(
        "order_item__order", "sku", "suggested_shelf", "shelf"
    )
    for item in items.order_by("pk"):
        table.add(
            item.order_item.code,
            link(item.order_item.order),
            item.sku.code,
            item.suggested_shelf.code if item.suggested_shelf_id else "—",
            item.shelf.code if item.shelf_id else "—",
            item.get_inventory_type_display() if item.inventory_type else "—",
        )
    return table
