"""Admin for facilities, shelves, SKUs, stock, shipping providers and serviceability."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.utils import timezone

from uniware.core.admin_utils import (
    ExactSearchMixin,
    FastChangeListMixin,
    SaveChangedFieldsMixin,
)

from .models import Facility, Inventory, Serviceability, Shelf, ShippingProvider, Sku
from .services import stock_add


@admin.register(Facility)
class FacilityAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "priority", "pincode", "is_active", "providers"]
    list_filter = ["is_active"]
    search_fields = ["=code", "name"]
    filter_horizontal = ["shipping_providers"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("shipping_providers")

    @admin.display(description="shipping providers")
    def providers(self, obj: Facility) -> str:
        # Prefetched: one query for the whole page.
        return ", ".join(p.code for p in obj.shipping_providers.all()) or "—"


@admin.register(Shelf)
class ShelfAdmin(FastChangeListMixin, SaveChangedFieldsMixin, admin.ModelAdmin):
    list_display = ["code", "facility"]
    list_filter = ["facility"]
    list_select_related = ["facility"]
    search_fields = ["=code"]


@admin.register(Sku)
class SkuAdmin(FastChangeListMixin, SaveChangedFieldsMixin, admin.ModelAdmin):
    list_display = ["code", "name", "hsn_code", "mrp", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["=code", "name"]
    search_help_text = "Exact SKU code, or part of the name."


class InventoryForm(forms.ModelForm):
    class Meta:
        model = Inventory
        fields = ["shelf", "sku", "inventory_type", "quantity"]

    def clean(self):
        cleaned = super().clean()
        quantity = cleaned.get("quantity")
        if quantity is None:
            return cleaned
        if not self.instance.pk:
            if quantity < 1:
                self.add_error("quantity", "Add at least one unit.")
            return cleaned
        blocked = (
            Inventory.objects.filter(pk=self.instance.pk)
            .values_list("blocked_quantity", flat=True)
            .first()
        ) or 0
        if quantity < blocked:
            self.add_error(
                "quantity",
                f"Stock of {self.instance.sku} on {self.instance.shelf}: {blocked} units are "
                f"blocked for orders, so the quantity cannot go below {blocked}.",
            )
        return cleaned


@admin.register(Inventory)
class InventoryAdmin(FastChangeListMixin, ExactSearchMixin, admin.ModelAdmin):
    """Stock rows. `blocked_quantity` is written only by allocation and dispatch; quantities
    change by the difference staff entered, so concurrent allocation or dispatch is kept."""

    form = InventoryForm
    list_display = [
        "sku",
        "facility",
        "shelf",
        "inventory_type",
        "quantity",
        "blocked_quantity",
        "available",
    ]
    list_filter = ["facility", "inventory_type"]
    list_select_related = ["sku", "facility", "shelf", "shelf__facility"]
    search_fields = ["sku__code"]
    exact_search_fields = ["sku__code", "shelf__code"]
    search_help_text = "Exact SKU code or shelf code."
    autocomplete_fields = ["sku", "shelf"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["shelf", "sku", "inventory_type", "quantity"]
        return [
            ("sku", "inventory_type"),
            ("facility", "shelf"),
            ("quantity", "blocked_quantity", "available"),
            "updated_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "sku",
            "inventory_type",
            "facility",
            "shelf",
            "blocked_quantity",
            "available",
            "updated_at",
        ]

    @admin.display(description="available")
    def available(self, obj: Inventory) -> int:
        return obj.available

    def save_model(self, request, obj, form, change):
        """New stock and increases go through `stock_add` (which re-allocates waiting units);
        a decrease is one guarded UPDATE that never goes below the blocked units."""
        if not change:
            row = stock_add(
                shelf=obj.shelf,
                sku=obj.sku,
                quantity=obj.quantity,
                inventory_type=obj.inventory_type,
                actor=request.user,
            )
            obj.pk, obj.facility_id, obj.quantity = row.pk, row.facility_id, row.quantity
            return
        delta = form.cleaned_data["quantity"] - form.initial["quantity"]
        if delta > 0:
            stock_add(
                shelf=obj.shelf,
                sku=obj.sku,
                quantity=delta,
                inventory_type=obj.inventory_type,
                actor=request.user,
            )
        elif delta < 0:
            updated = Inventory.objects.filter(
                pk=obj.pk, quantity__gte=F("blocked_quantity") - delta
            ).update(quantity=F("quantity") + delta, updated_at=timezone.now())
            if not updated:
                messages.error(
                    request,
                    f"Stock of {obj.sku} on {obj.shelf} was not reduced: units were blocked "
                    "for orders meanwhile. Reload and try again.",
                )


@admin.register(ShippingProvider)
class ShippingProviderAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "is_aggregator", "is_active"]
    list_filter = ["is_active", "is_aggregator"]
    search_fields = ["=code", "name"]


@admin.register(Serviceability)
class ServiceabilityAdmin(FastChangeListMixin, ExactSearchMixin, admin.ModelAdmin):
    list_display = ["pincode", "payment_method", "shipping_provider", "priority"]
    list_filter = ["payment_method", "shipping_provider"]
    list_select_related = ["shipping_provider"]
    search_fields = ["pincode"]
    exact_search_fields = ["pincode"]
    search_help_text = "Exact pincode."


from . import admin_putaway  # noqa: E402,F401  (registers the putaway admin)
