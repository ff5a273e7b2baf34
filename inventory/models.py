"""Facilities, shelves, SKUs, stock, shipping providers, serviceability and putaways."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django_fsm import FSMField, transition

from gst.gstin import gstin_problem, gstin_state
from gst.states import STATE_CHOICES
from gst.tax import GST_RATES


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
    """A warehouse. Allocation tries facilities by `priority` (lowest first).

    The seller's legal particulars (legal name, address, GST state, GSTIN) are printed on every
    invoice issued from here (CGST Rule 46); invoicing refuses while one is missing."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(default=1)
    pincode = models.CharField(max_length=10, blank=True)
    is_active = models.BooleanField(default=True)
    legal_name = models.CharField(
        max_length=200, blank=True, help_text="The seller's registered name, as on the GSTIN."
    )
    gstin = models.CharField("GSTIN", max_length=15, blank=True)
    address_line1 = models.CharField("address line 1", max_length=255, blank=True)
    address_line2 = models.CharField("address line 2", max_length=255, blank=True)
    city = models.CharField(max_length=100, blank=True)
    gst_state = models.CharField(
        "state",
        max_length=2,
        blank=True,
        choices=STATE_CHOICES,
        help_text="With its GST state code: invoices to another state carry IGST.",
    )
    phone = models.CharField(max_length=20, blank=True)
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

    def clean(self) -> None:
        errors = {}
        if self.gstin:
            self.gstin = self.gstin.strip().upper()
            problem = gstin_problem(self.gstin)
            if problem:
                errors["gstin"] = f"GSTIN {self.gstin}: {problem}"
            elif self.gst_state and gstin_state(self.gstin) != self.gst_state:
                errors["gstin"] = (
                    f"GSTIN {self.gstin} is registered in state {gstin_state(self.gstin)}, "
                    f"not in the facility's state {self.gst_state}"
                )
        if errors:
            raise ValidationError(errors)


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
    # NULL when unset (not ""), so the unique index allows any number of SKUs without one.
    barcode = models.CharField(
        "barcode (EAN/UPC)",
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        help_text="What the scan stations read off the product; its SKU code is read too.",
    )
    name = models.CharField(max_length=200)
    hsn_code = models.CharField("HSN code", max_length=20, blank=True)
    gst_rate = models.DecimalField(
        "GST rate (%)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        choices=[(rate.quantize(Decimal("0.01")), f"{rate:f} %") for rate in GST_RATES],
        help_text="Empty until set: invoicing refuses a SKU without its rate (0 % is a rate).",
    )
    cess_rate = models.DecimalField(
        "cess rate (%)", max_digits=5, decimal_places=2, default=0, help_text="Ad valorem."
    )
    mrp = models.DecimalField("MRP", max_digits=12, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = "SKU"
        constraints = [
            models.CheckConstraint(
                condition=Q(gst_rate__isnull=True) | Q(gst_rate__in=GST_RATES),
                name="sku_gst_rate_legal",
            ),
            models.CheckConstraint(
                condition=Q(cess_rate__gte=0) & Q(cess_rate__lt=100), name="sku_cess_rate_range"
            ),
        ]

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


class PutawayType(models.TextChoices):
    """Why units come back to the shelves (uniware-research §7.1)."""

    PUTAWAY_PICKLIST_ITEM = "PUTAWAY_PICKLIST_ITEM", "Picklist putback (cancelled before invoicing)"
    PUTAWAY_CANCELLED_ITEM = "PUTAWAY_CANCELLED_ITEM", "Cancelled after invoicing"
    PUTAWAY_COURIER_RETURNED_ITEMS = "PUTAWAY_COURIER_RETURNED_ITEMS", "Courier returned (RTO)"
    PUTAWAY_RECEIVED_RETURNS = "PUTAWAY_RECEIVED_RETURNS", "Received returns (marked returned)"
    PUTAWAY_REVERSE_PICKUP_ITEM = "PUTAWAY_REVERSE_PICKUP_ITEM", "Reverse pickup (customer return)"


class PutawayStatus(models.TextChoices):
    CREATED = "CREATED", "Pending"
    COMPLETE = "COMPLETE", "Complete"
    DISCARDED = "DISCARDED", "Discarded"


# A putaway puts units back as sellable or as damaged stock (uniware-research §7.3).
PUTAWAY_INVENTORY_TYPES = [InventoryType.GOOD_INVENTORY, InventoryType.BAD_INVENTORY]


class Putaway(models.Model):
    """Units on their way back to the shelves of one facility (`inventory.putaway`).

    Its units are counted in no `Inventory` row while it is pending: a cancelled picked or
    invoiced unit left its shelf row at cancel time, a returned unit left at dispatch.
    Completing it adds each unit, exactly once, to the shelf and inventory type chosen;
    discarding it writes the units off (the reason is kept)."""

    code = models.CharField(max_length=40, unique=True)
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="putaways")
    putaway_type = models.CharField("type", max_length=32, choices=PutawayType.choices)
    status = FSMField(
        max_length=12,
        choices=PutawayStatus.choices,
        default=PutawayStatus.CREATED,
        editable=False,
    )
    item_count = models.PositiveIntegerField("units", default=0, editable=False)
    return_manifest = models.ForeignKey(
        "orders.ReturnManifest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        editable=False,
        related_name="putaways",
    )
    reverse_pickup = models.ForeignKey(
        "orders.ReversePickup",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        editable=False,
        related_name="putaways",
    )
    discard_reason = models.CharField(max_length=255, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "facility", "putaway_type"], name="putaway_work_idx")
        ]
        permissions = [
            ("complete_putaway", "Can complete putaways (stock comes back)"),
            ("discard_putaway", "Can discard putaways (units written off)"),
        ]

    def __str__(self) -> str:
        return self.code

    @transition(field=status, source=PutawayStatus.CREATED, target=PutawayStatus.COMPLETE)
    def complete(self) -> None:
        """Its units are on the chosen shelves: stock is added."""

    @transition(field=status, source=PutawayStatus.CREATED, target=PutawayStatus.DISCARDED)
    def discard(self) -> None:
        """Its units are written off; no stock comes back."""


class PutawayItem(models.Model):
    """One unit of a putaway. A unit is on at most one putaway, ever (a database constraint),
    so it cannot come back into stock twice."""

    putaway = models.ForeignKey(Putaway, on_delete=models.CASCADE, related_name="items")
    order_item = models.OneToOneField(
        "orders.OrderItem", on_delete=models.PROTECT, related_name="putaway_item"
    )
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT)
    suggested_shelf = models.ForeignKey(
        Shelf,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The shelf the unit was picked from, when it is in this facility.",
    )
    shelf = models.ForeignKey(
        Shelf, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    inventory_type = models.CharField(max_length=20, choices=InventoryType.choices, blank=True)
    inventory = models.ForeignKey(
        Inventory,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The stock row the unit went into.",
    )

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.putaway_id}:{self.order_item_id}"


class StockReason(models.TextChoices):
    """Why a stock row moved: one value per path that writes `Inventory`."""

    OPENING = "OPENING", "Opening balance (stock that existed before the ledger)"
    ALLOCATE = "ALLOCATE", "Allocated to a unit (blocked)"
    RELEASE = "RELEASE", "Block released (unit cancelled before picking)"
    DISPATCH = "DISPATCH", "Dispatched by manifest close"
    FORCE_DISPATCH = "FORCE_DISPATCH", "Force dispatched"
    CHANNEL_DISPATCH = "CHANNEL_DISPATCH", "Dispatched by the channel"
    CANCEL_PICKED = "CANCEL_PICKED", "Cancelled after picking or invoicing (left its row)"
    PUTAWAY = "PUTAWAY", "Putaway completed"
    STOCK_ADD = "STOCK_ADD", "Stock added (inbound)"
    IMPORT = "IMPORT", "Stock import"
    ADJUSTMENT = "ADJUSTMENT", "Adjusted by staff"
    NOT_FOUND = "NOT_FOUND", "Not found on its shelf at picking (written off)"


class StockMovement(models.Model):
    """One change of one stock row: the stock ledger (`inventory.ledger`).

    Append-only, written in the same transaction as the change by the stock functions
    themselves (`inventory.services`, `inventory.putaway.stock_put`), so the sum of a row's
    changes is its quantity and blocked quantity (`manage.py check_stock`). Unit-driven
    movements write one row per unit (`order_item`); others one row per stock row, with the
    putaway, manifest or import job as `reference_*`. Written by the hundred thousand by
    imports, so like `StateChange` its references carry no database constraints."""

    inventory = models.ForeignKey(
        Inventory, on_delete=models.DO_NOTHING, db_constraint=False, related_name="movements"
    )
    facility = models.ForeignKey(
        Facility, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    shelf = models.ForeignKey(
        Shelf, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    sku = models.ForeignKey(
        Sku, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    inventory_type = models.CharField(max_length=20, choices=InventoryType.choices)
    quantity_change = models.IntegerField(default=0)
    blocked_change = models.IntegerField(default=0)
    reason = models.CharField(max_length=20, choices=StockReason.choices)
    order_item = models.ForeignKey(
        "orders.OrderItem",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name="unit",
    )
    reference_kind = models.CharField(
        max_length=40, blank=True, help_text="The model of the document: putaway, manifest ..."
    )
    reference_id = models.BigIntegerField(null=True, blank=True)
    reference_code = models.CharField(max_length=100, blank=True)
    note = models.CharField(max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,  # the actor label keeps the name
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    actor = models.CharField(
        max_length=100, help_text="The user's name, or the task or process that acted."
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)  # append-only: nobody adds, changes or deletes rows
        verbose_name = "stock movement"
        indexes = [models.Index(fields=["order_item"], name="stockmove_unit_idx")]

    def __str__(self) -> str:
        change = f"{self.quantity_change:+d}/{self.blocked_change:+d}"
        return f"{self.reason} {change} on stock row {self.inventory_id}"
