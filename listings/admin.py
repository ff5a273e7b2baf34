"""Channel listings in the admin (issue 16): what each channel sells of our SKUs, what it was
last told and why, and the work list of unmapped listings (filter "unmapped": map them one
by one from a listing's page, or in bulk with "Map to SKU…"). The SKU page shows its
listings too (`SkuListingsInline`, added to the SKU admin by `ListingsConfig.ready`)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from inventory.models import Sku
from uniware.core.admin_utils import (
    FastChangeListMixin,
    NoDeleteMixin,
    ReadOnlyAdminMixin,
    form_step,
    link,
    status_badge,
)

from .admin_actions import has_push_inventory_permission, push_inventory_now
from .models import ChannelListing, InventoryFeed, PushStatus
from .quantity import explain
from .selectors import listing_suggestions, waiting_orders_count
from .services import map_listings

PUSH_COLOURS = {
    PushStatus.IN_SYNC: "COMPLETE",
    PushStatus.PENDING: "PROCESSING",
    PushStatus.FAILED: "UNFULFILLABLE",
    PushStatus.NEVER: "CREATED",
    PushStatus.SENT: "PROCESSING",
}


class StateFilter(admin.SimpleListFilter):
    """The work lists: unmapped (their orders wait), failed pushes, out of stock."""

    title = "needs"
    parameter_name = "needs"
    CHOICES = {
        "unmapped": ("Unmapped (orders wait)", {"sku__isnull": True}),
        "failed": ("Push failed", {"push_status": PushStatus.FAILED}),
        "out_of_stock": ("Out of stock (pushed 0)", {"pushed_quantity": 0}),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.CHOICES.items()]

    def queryset(self, request, queryset):
        chosen = self.CHOICES.get(self.value() or "")
        return queryset.filter(**chosen[1]) if chosen else queryset


class MapForm(forms.Form):
    sku_code = forms.CharField(
        label="SKU code", max_length=100, help_text="Our SKU the selected listings sell."
    )

    def clean_sku_code(self):
        code = self.cleaned_data["sku_code"].strip()
        sku = Sku.objects.filter(code=code).first()
        if sku is None:
            raise ValidationError(f"No SKU {code!r}.")
        self.sku = sku
        return code


@admin.action(description="Map to SKU…", permissions=["map"])
def map_to_sku(modeladmin, request, queryset):
    form, page = form_step(
        modeladmin,
        request,
        queryset,
        MapForm,
        action="map_to_sku",
        title="Map listings to a SKU",
        intro="Orders waiting on these listings are then accepted and allocated.",
        submit="Map",
    )
    if form is None:
        return page
    result = map_listings(list(queryset), form.sku, actor=request.user)
    released = f"; released {len(result.released)} order(s)" if result.released else ""
    messages.success(request, f"Mapped {result.listings} listing(s) to {form.sku.code}{released}.")
    for code, why in result.waiting:
        messages.warning(request, f"Order {code} still waits: {why}")
    return None


@admin.register(ChannelListing)
class ChannelListingAdmin(FastChangeListMixin, NoDeleteMixin, admin.ModelAdmin):
    list_display = [
        "channel",
        "product_id",
        "variant_id",
        "seller_sku",
        "sku_shown",
        "pushed_quantity",
        "why",
        "pushed_at",
        "status_shown",
    ]
    list_select_related = ["channel", "sku"]
    list_filter = [StateFilter, "channel", "push_status", "sync_enabled", "auto_mapped"]
    search_fields = ["=product_id", "=variant_id", "=seller_sku", "=sku__code"]
    search_help_text = "Exact product id, variant id, seller SKU or our SKU code."
    actions = [map_to_sku, push_inventory_now]
    fields = [
        ("channel", "product_id", "variant_id"),
        ("seller_sku", "title"),
        ("sku_shown", "auto_mapped", "mapped_by", "mapped_at"),
        "suggestions",
        "waiting",
        ("sync_enabled", "buffer"),
        ("pushed_quantity", "pushed_at", "status_shown"),
        "why",
        ("wanted_quantity", "wanted_at", "wanted_why"),
        "push_answer",
    ]
    editable = {"sync_enabled", "buffer"}
    has_push_inventory_permission = has_push_inventory_permission

    def get_readonly_fields(self, request, obj=None):
        names = [n for row in self.fields for n in (row if isinstance(row, tuple) else (row,))]
        return [n for n in names if n not in self.editable]

    def has_add_permission(self, request) -> bool:
        return False  # listings come from the order pull (and, later, imports)

    def has_map_permission(self, request) -> bool:
        return request.user.has_perm("listings.map_channellisting")

    def save_model(self, request, obj, form, change):
        if change and form.changed_data:  # a new buffer or switch: push it with the next run
            obj.push_status = PushStatus.PENDING
        super().save_model(request, obj, form, change)

    @admin.display(description="SKU", ordering="sku__code")
    def sku_shown(self, obj: ChannelListing):
        return link(obj.sku, obj.sku.code) if obj.sku_id else status_badge("ON_HOLD", "UNMAPPED")

    @admin.display(description="status", ordering="push_status")
    def status_shown(self, obj: ChannelListing):
        badge = status_badge(PUSH_COLOURS[obj.push_status], obj.get_push_status_display())
        if obj.push_status == PushStatus.FAILED and obj.push_answer:
            return format_html("{} {}", badge, obj.push_answer[:120])
        return badge

    @admin.display(description="why")
    def why(self, obj: ChannelListing) -> str:
        return explain(obj.pushed_terms) or "—"

    @admin.display(description="would push now")
    def wanted_why(self, obj: ChannelListing) -> str:
        return explain(obj.wanted_terms) or "—"

    @admin.display(description="suggested SKUs")
    def suggestions(self, obj: ChannelListing):
        if obj.sku_id:
            return "—"
        found = listing_suggestions(obj)
        if not found:
            return "None: use “Map to SKU…” from the list with the SKU code."
        return format_html_join(", ", "<strong>{}</strong> ({})", ((s.code, s.name) for s in found))

    @admin.display(description="orders waiting")
    def waiting(self, obj: ChannelListing):
        count = (
            ChannelListing.objects.filter(pk=obj.pk)
            .annotate(n=waiting_orders_count())
            .values_list("n", flat=True)
            .first()
        )
        if not count:
            return "none"
        return f"{count} order(s) wait in PENDING_VERIFICATION until this listing is mapped"


class SkuListingsInline(admin.TabularInline):
    """On a SKU's page: its listings and what each channel was last told."""

    model = ChannelListing
    fk_name = "sku"
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "channel listings (what each channel was last told)"
    fields = ["channel", "product_id", "variant_id", "sync_enabled", "buffer", "pushed", "why"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="last pushed")
    def pushed(self, obj: ChannelListing) -> str:
        if obj.pushed_quantity is None:
            return obj.get_push_status_display()
        return f"{obj.pushed_quantity} ({obj.get_push_status_display()})"

    @admin.display(description="why")
    def why(self, obj: ChannelListing) -> str:
        return explain(obj.pushed_terms) or "—"


@admin.register(InventoryFeed)
class InventoryFeedAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Inventory sent in feeds a channel processes later (Amazon): which are still awaiting
    the channel's report, and what the reports said. Written by the push only."""

    list_display = ["reference", "channel", "size", "created_at", "state", "outcome"]
    list_select_related = ["channel"]
    list_filter = ["channel", ("closed_at", admin.EmptyFieldListFilter)]
    fields = [
        ("reference", "channel", "run"),
        ("created_at", "computed_at", "closed_at"),
        ("size", "state"),
        "outcome",
    ]
    readonly_fields = [*fields[0], *fields[1], "size", "state", "outcome"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("entries")  # up to 1,000 listings each

    @admin.display(description="state")
    def state(self, obj: InventoryFeed):
        if obj.closed_at is None:
            return status_badge("PROCESSING", "Awaiting the channel's report")
        return status_badge("COMPLETE", "Report read")
