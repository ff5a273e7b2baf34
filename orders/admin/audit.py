"""The audit trail: every state change of orders, units, shipments, picklists, manifests,
returns and putaways (`uniware.core.models.StateChange`), searched by the code of an order,
shipment, picklist or manifest (`orders.selectors.audit_search`)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType

from uniware.core.admin_utils import (
    FastChangeListMixin,
    ReadOnlyAdminMixin,
    recent_filter,
    status_badge,
)
from uniware.core.models import StateChange

from ..selectors import audit_search


class ObjectTypeFilter(admin.SimpleListFilter):
    """The kinds of objects that have a history (fixed choices, no query over the table)."""

    title = "object type"
    parameter_name = "type"
    models = [
        ("orders", "order"),
        ("orders", "orderitem"),
        ("orders", "shipment"),
        ("orders", "picklist"),
        ("orders", "manifest"),
    ]

    def lookups(self, request, model_admin):
        return [(f"{app}.{name}", name) for app, name in self.models]

    def queryset(self, request, queryset):
        value = self.value()
        if not value or "." not in value:
            return queryset
        app_label, model = value.split(".", 1)
        try:  # cached by ContentType's manager: no join, no extra query
            content_type = ContentType.objects.get_by_natural_key(app_label, model)
        except ContentType.DoesNotExist:
            return queryset.none()
        return queryset.filter(content_type=content_type)


@admin.register(StateChange)
class StateChangeAdmin(FastChangeListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail: who or which task changed what, from which status to which, and why."""

    list_display = ["at", "object_code", "content_type", "transition", "change", "actor", "reason"]
    list_filter = [ObjectTypeFilter, recent_filter("at", "when")]
    list_select_related = ["content_type"]
    search_fields = ["object_code"]
    search_help_text = (
        "Exact code of an order (or its channel order id), shipment, picklist or manifest."
    )
    sortable_by = ["at"]
    raw_id_fields = ["order", "user"]

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(audit_search(search_term)), False

    @admin.display(description="change")
    def change(self, obj: StateChange):
        if obj.from_state == obj.to_state:
            return status_badge(obj.to_state)
        return status_badge(obj.to_state, f"{obj.from_state or '∅'} → {obj.to_state}")
