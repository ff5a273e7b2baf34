"""Facilities, shelves, SKUs, stock, shipping providers and serviceability."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q


class PaymentMethod(models.TextChoices):
    COD = "COD", "Cash on delivery"
    PREPAID = "PREPAID", "Prepaid"


class InventoryType(models.TextChoices):
    GOOD_INVENTORY = "GOOD_INVENTORY", "Good"
    BAD_INVENTORY = "BAD_INVENTORY", "Bad"
    QC_REJECTED = "QC_REJECTED", "QC rejected"
    VIRTUAL_INVENTORY = "VIRTUAL_INVENTORY", "Virtual"


class ShippingProvider(models.Model):
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    is_aggregator = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Facility(models.Model):
    """A warehouse. Allocation tries facilities by `priority` (lowest first)."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(default=1)
    pincode = models.CharField(max_length=10, blank=True)
    is_active = models.BooleanField(default=True)
    shipping_providers = models.ManyToManyField(
        ShippingProvider,
        blank=True,
        related_name="facilities",
        help_text="Providers that pick up from this facility.",
    )

    class Meta:
        ordering = ["priority", "code"]
        verbose_name_plural = "facilities"

    def __str__(self) -> str:
        return self.code


class Shelf(models.Model):
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="shelves")
    code = models.CharField(max_length=40)

    class Meta:
        ordering = ["facility__code", "code"]
        verbose_name_plural = "shelves"
        constraints = [
            models.UniqueConstraint(fields=["facility", "code"], name="uniq_shelf_per_facility")
        ]

    def __str__(self) -> str:
        return f"{self.facility.code}/{self.code}" if self.facility_id else self.code


class Sku(models.Model):
    code = models.CharField("SKU code", max_length=100, unique=True)
    name = models.CharField(max_length=200)
    hsn_code = models.CharField("HSN code", max_length=20, blank=True)
    mrp = models.DecimalField("MRP", max_digits=12, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = "SKU"

    def __str__(self) -> str:
        return self.code


class Inventory(models.Model):
    """Stock of one SKU on one shelf, of one inventory type.

    `blocked_quantity` counts units allocated to orders and not yet dispatched; the database
    refuses any write that would make stock negative or block more than there is.
    """

    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="inventory")
    shelf = models.ForeignKey(Shelf, on_delete=models.PROTECT, related_name="inventory")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="inventory")
    inventory_type = models.CharField(
        max_length=20, choices=InventoryType.choices, default=InventoryType.GOOD_INVENTORY
    )
    quantity = models.PositiveIntegerField(default=0)
    blocked_quantity = models.PositiveIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "inventory"
        ordering = ["facility__code", "shelf__code", "sku__code"]
        constraints = [
            models.UniqueConstraint(
                fields=["shelf", "sku", "inventory_type"], name="uniq_inventory_row"
            ),
            models.CheckConstraint(
                condition=Q(blocked_quantity__lte=F("quantity")), name="blocked_within_stock"
            ),
        ]
        indexes = [models.Index(fields=["sku", "facility", "inventory_type"])]

    def __str__(self) -> str:
        return f"{self.sku_id and self.sku.code} @ {self.shelf} ({self.inventory_type})"

    @property
    def available(self) -> int:
        return self.quantity - self.blocked_quantity

    def clean(self) -> None:
        if self.shelf_id and self.facility_id and self.shelf.facility_id != self.facility_id:
            raise ValidationError(
                {"shelf": f"Shelf {self.shelf} is not in facility {self.facility}"}
            )


class Serviceability(models.Model):
    """A provider delivers to `pincode` for `payment_method`; the lowest priority wins."""

    shipping_provider = models.ForeignKey(
        ShippingProvider, on_delete=models.CASCADE, related_name="serviceability"
    )
    pincode = models.CharField(max_length=10)
    payment_method = models.CharField(max_length=10, choices=PaymentMethod.choices)
    priority = models.PositiveSmallIntegerField(default=1)

    class Meta:
        verbose_name = "serviceability row"
        verbose_name_plural = "serviceability"
        ordering = ["pincode", "payment_method", "priority"]
        constraints = [
            models.UniqueConstraint(
                fields=["shipping_provider", "pincode", "payment_method"],
                name="uniq_serviceability_row",
            )
        ]
        indexes = [models.Index(fields=["pincode", "payment_method", "priority"])]

    def __str__(self) -> str:
        provider = self.shipping_provider.code if self.shipping_provider_id else "?"
        return f"{provider} {self.pincode} {self.payment_method} #{self.priority}"
