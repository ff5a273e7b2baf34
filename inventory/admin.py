"""Admin for facilities, shelves, SKUs, stock, shipping providers and serviceability.

Putaways are administered in `orders.admin.putaways`: their page finds them by order and
links the orders their units belong to, which this app does not import."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from uniware.core.admin_utils import (
    ExactSearchMixin,
    FastChangeListMixin,
    SaveChangedFieldsMixin,
)

from .models import (
    Facility,
    Inventory,
    Serviceability,
    Shelf,
    ShippingProvider,
    Sku,
    StockMovement,
)
from .services import StockAdjustmentRefused, stock_add, stock_adjust


@admin.register(Facility)
class FacilityAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "priority", "pincode", "gstin", "is_active", "providers"]
    list_filter = ["is_active"]
    search_fields = ["=code", "name"]
    filter_horizontal = ["shipping_providers"]
    fieldsets = [
        (None, {"fields": ["code", "name", "priority", "is_active", "shipping_providers"]}),
        (
            "Seller on invoices (CGST Rule 46: invoicing refuses while one is missing)",
            {
                "fields": [
                    "legal_name",
                    "gstin",
                    "address_line1",
                    "address_line2",
                    "city",
                    "pincode",
                    "gst_state",
                    "phone",
                ]
            },
        ),
    ]

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
    """`inlines` is where higher apps add their sections of a SKU's page in their
    AppConfig.ready() (listings: its channel listings), as inventory cannot import them."""

    inlines: list = []
    list_display = ["code", "barcode", "name", "hsn_code", "gst_rate", "mrp", "is_active"]
    list_filter = ["is_active", "gst_rate"]
    search_fields = ["=code", "=barcode", "name"]
    search_help_text = "Exact SKU code or barcode, or part of the name."


class InventoryForm(forms.ModelForm):
    reason = forms.CharField(
        max_length=255,
        required=False,
        help_text="Why the stock changes (a count, damage, an inbound note): kept in the ledger.",
    )

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
            return ["shelf", "sku", "inventory_type", "quantity", "reason"]
        return [
            ("sku", "inventory_type"),
            ("facility", "shelf"),
            ("quantity", "blocked_quantity", "available"),
            "reason",
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
        """New stock goes through `stock_add`, a changed quantity through `stock_adjust`
        (by the difference from the row as it is now, so concurrent allocation or dispatch
        is kept), each with the user and the reason in the ledger. A decrease that the
        blocked units refuse raises `StockAdjustmentRefused`: `changeform_view` rolls the
        whole save back and shows only the error."""
        note = form.cleaned_data.get("reason", "")
        if not change:
            row = stock_add(
                shelf=obj.shelf,
                sku=obj.sku,
                quantity=obj.quantity,
                inventory_type=obj.inventory_type,
                actor=request.user,
                note=note,
            )
            obj.pk, obj.facility_id, obj.quantity = row.pk, row.facility_id, row.quantity
            return
        if form.cleaned_data["quantity"] != form.initial["quantity"]:
            note = note or (
                f"quantity set from {form.initial['quantity']} to "
                f"{form.cleaned_data['quantity']} in the admin"
            )
            delta = form.cleaned_data["quantity"] - form.initial["quantity"]
            obj.quantity = stock_adjust(obj, delta=delta, actor=request.user, note=note).quantity

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except StockAdjustmentRefused as refused:  # the save was rolled back: say only that
            self.message_user(request, " ".join(refused.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(StockMovement)
class StockMovementAdmin(FastChangeListMixin, ExactSearchMixin, admin.ModelAdmin):
    """The stock ledger, read-only: every change of every stock row, who and why."""

    list_display = [
        "at",
        "reason",
        "sku",
        "facility",
        "shelf",
        "inventory_type",
        "quantity_change",
        "blocked_change",
        "order_item",
        "reference",
        "actor",
        "note",
    ]
    list_filter = ["reason", "facility", "inventory_type"]
    list_select_related = ["sku", "facility", "shelf", "order_item"]
    search_fields = ["inventory__sku__code"]
    # through indexed columns only: the ledger grows by a row per unit moved
    exact_search_fields = ["inventory__sku__code", "order_item__order__code"]
    search_help_text = "Exact SKU code, or exact order code (its units' movements)."
    raw_id_fields = ["inventory", "order_item"]

    @admin.display(description="reference")
    def reference(self, obj: StockMovement) -> str:
        return f"{obj.reference_kind} {obj.reference_code}".strip() or "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
