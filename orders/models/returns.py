"""Returns: return manifests (courier returns, RTO) and reverse pickups (customer returns, CIR).

Stock never comes back here: a closed return manifest or a completed reverse pickup makes a
putaway (`inventory.models.Putaway`), and only completing that putaway adds stock.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition


class ReturnManifestStatus(models.TextChoices):
    CREATED = "CREATED", "Open"
    CLOSED = "CLOSED", "Closed"


class ReturnManifest(models.Model):
    """Courier-returned shipments received together at one facility.

    Adding a RETURN_EXPECTED shipment receives it (RETURN_ACKNOWLEDGED); closing the manifest
    issues the sale return invoices and one `PUTAWAY_COURIER_RETURNED_ITEMS` putaway for all
    its units. Codes come from the MANIFEST sequence, prefixed with `R`."""

    code = models.CharField(max_length=40, unique=True)
    facility = models.ForeignKey("inventory.Facility", on_delete=models.PROTECT)
    shipping_provider = models.ForeignKey(
        "inventory.ShippingProvider",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="The courier that brought the shipments back (optional).",
    )
    status = FSMField(
        max_length=12,
        choices=ReturnManifestStatus.choices,
        default=ReturnManifestStatus.CREATED,
        editable=False,
    )
    comments = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "return manifest"
        permissions = [("close_returnmanifest", "Can close return manifests (makes putaways)")]

    def __str__(self) -> str:
        return self.code

    @transition(
        field=status, source=ReturnManifestStatus.CREATED, target=ReturnManifestStatus.CLOSED
    )
    def close(self) -> None:
        """Receiving is done: its units go to a putaway."""


class ReturnManifestItem(models.Model):
    """A shipment received on a return manifest (a shipment is received once)."""

    return_manifest = models.ForeignKey(
        ReturnManifest, on_delete=models.CASCADE, related_name="items"
    )
    shipment = models.OneToOneField(
        "orders.Shipment", on_delete=models.PROTECT, related_name="return_manifest_item"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.return_manifest_id}:{self.shipment_id}"


class ReversePickupStatus(models.TextChoices):
    CREATED = "CREATED"
    COURIER_ALLOCATED = "COURIER_ALLOCATED"
    COMPLETE = "COMPLETE"
    NOT_RECEIVED = "NOT_RECEIVED"
    CANCELLED = "CANCELLED"


# A unit on a pickup in one of these statuses is being (or has been) returned by the customer.
REVERSE_PICKUP_OPEN = [
    ReversePickupStatus.CREATED,
    ReversePickupStatus.COURIER_ALLOCATED,
    ReversePickupStatus.COMPLETE,
]


class ReversePickup(models.Model):
    """A customer return (CIR) of dispatched or delivered units of one order, back to the
    facility that shipped them. Completing it makes a `PUTAWAY_REVERSE_PICKUP_ITEM` putaway and
    a sale return invoice; it can be cancelled only as a whole."""

    code = models.CharField(max_length=40, unique=True)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="reverse_pickups"
    )
    facility = models.ForeignKey(
        "inventory.Facility", on_delete=models.PROTECT, help_text="The return facility."
    )
    status = FSMField(
        max_length=20,
        choices=ReversePickupStatus.choices,
        default=ReversePickupStatus.CREATED,
        editable=False,
    )
    reason = models.CharField(max_length=255)
    courier_name = models.CharField("reverse pickup courier name", max_length=100, blank=True)
    courier_code = models.CharField("reverse pickup courier code", max_length=40, blank=True)
    return_awb = models.CharField("return AWB", max_length=60, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "reverse pickup"
        indexes = [models.Index(fields=["status", "facility"], name="rpickup_status_fac_idx")]
        permissions = [
            ("complete_reversepickup", "Can complete or mark reverse pickups not received"),
            ("cancel_reversepickup", "Can cancel reverse pickups"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def audit_order_id(self) -> int:
        return self.order_id

    @transition(
        field=status,
        source=ReversePickupStatus.CREATED,
        target=ReversePickupStatus.COURIER_ALLOCATED,
    )
    def allocate_courier(self) -> None:
        """Courier name, code and return AWB are recorded."""

    @transition(
        field=status,
        source=ReversePickupStatus.COURIER_ALLOCATED,
        target=ReversePickupStatus.COMPLETE,
    )
    def complete(self) -> None:
        """Received back at the return facility: a putaway and a sale return invoice follow."""

    @transition(
        field=status,
        source=ReversePickupStatus.COURIER_ALLOCATED,
        target=ReversePickupStatus.NOT_RECEIVED,
    )
    def mark_not_received(self) -> None:
        """The courier did not bring the units back; a new pickup may be created."""

    @transition(
        field=status,
        source=[ReversePickupStatus.CREATED, ReversePickupStatus.COURIER_ALLOCATED],
        target=ReversePickupStatus.CANCELLED,
    )
    def cancel(self) -> None:
        """Only the whole pickup can be cancelled."""


class ReversePickupItem(models.Model):
    reverse_pickup = models.ForeignKey(
        ReversePickup, on_delete=models.CASCADE, related_name="items"
    )
    order_item = models.ForeignKey(
        "orders.OrderItem", on_delete=models.PROTECT, related_name="reverse_pickup_items"
    )

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["reverse_pickup", "order_item"], name="uniq_reverse_pickup_unit"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reverse_pickup_id}:{self.order_item_id}"
