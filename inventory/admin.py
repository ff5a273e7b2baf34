"""Admin for facilities, shelves, SKUs, stock, shipping providers and serviceability."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from uniware.core.admin_utils import FastChangeListMixin

from .models import Facility, Inventory, Serviceability, Shelf, ShippingProvider, Sku


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
class ShelfAdmin(FastChangeListMixin, admin.ModelAdmin):
    list_display = ["code", "facility"]
    list_filter = ["facility"]
    list_select_related = ["facility"]
    search_fields = ["=code"]


@admin.register(Sku)
class SkuAdmin(FastChangeListMixin, admin.ModelAdmin):
    list_display = ["code", "name", "hsn_code", "mrp", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["=code", "name"]
    search_help_text = "Exact SKU code, or part of the name."


class InventoryForm(forms.ModelForm):
    class Meta:
        model = Inventory
        fields = ["facility", "shelf", "sku", "inventory_type", "quantity"]

    def clean(self):
        cleaned = super().clean()
        quantity = cleaned.get("quantity")
        blocked = self.instance.blocked_quantity if self.instance.pk else 0
        if quantity is not None and quantity < blocked:
            self.add_error(
                "quantity",
                f"Stock of {self.instance.sku} on {self.instance.shelf}: {blocked} units are "
                f"blocked for orders, so the quantity cannot go below {blocked}.",
            )
        return cleaned


@admin.register(Inventory)
class InventoryAdmin(FastChangeListMixin, admin.ModelAdmin):
    """Stock rows. `blocked_quantity` is written only by allocation and dispatch."""

    form = InventoryForm
    list_display = [
        "sku", "facility", "shelf", "inventory_type", "quantity", "blocked_quantity", "available"
    ]
    list_filter = ["facility", "inventory_type"]
    list_select_related = ["sku", "facility", "shelf", "shelf__facility"]
    search_fields = ["=sku__code", "=shelf__code"]
    search_help_text = "Exact SKU code or shelf code."
    readonly_fields = ["blocked_quantity", "available", "updated_at"]
    autocomplete_fields = ["sku", "shelf"]

    @admin.display(description="available")
    def available(self, obj: Inventory) -> int:
        return obj.available


@admin.register(ShippingProvider)
class ShippingProviderAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "is_aggregator", "is_active"]
    list_filter = ["is_active", "is_aggregator"]
    search_fields = ["=code", "name"]


@admin.register(Serviceability)
class ServiceabilityAdmin(FastChangeListMixin, admin.ModelAdmin):
    list_display = ["pincode", "payment_method", "shipping_provider", "priority"]
    list_filter = ["payment_method", "shipping_provider"]
    list_select_related = ["shipping_provider"]
    search_fields = ["=pincode"]
    search_help_text = "Exact pincode."
