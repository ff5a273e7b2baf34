from django.apps import AppConfig


class ListingsConfig(AppConfig):
    name = "listings"
    verbose_name = "Channel listings"

    def ready(self) -> None:
        """Add the SKU's listings to the SKU page: inventory (a lower app) cannot name them;
        its `SkuAdmin.inlines` is the documented place for higher apps' sections."""
        from django.contrib import admin

        from inventory.models import Sku

        from .admin import SkuListingsInline

        sku_admin = admin.site._registry.get(Sku)
        if sku_admin is not None and SkuListingsInline not in sku_admin.inlines:
            sku_admin.inlines = [*sku_admin.inlines, SkuListingsInline]
