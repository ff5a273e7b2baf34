from __future__ import annotations

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition


class PicklistStatus(models.TextChoices):
    CREATED = "CREATED"
    RECEIVED = "RECEIVED"
    CLOSED = "CLOSED"


class PicklistDestination(models.TextChoices):
    STAGING = "STAGING", "Staging"
    INVOICING = "INVOICING", "Invoicing"


class Picklist(models.Model):
    """Units to pick from the shelves of one facility, across orders and channels."""

    code = models.CharField(max_length=40, unique=True)
    facility = models.ForeignKey("inventory.Facility", on_delete=models.PROTECT)
    destination = models.CharField(max_length=10, choices=PicklistDestination.choices)
    status = FSMField(
        max_length=12,
        choices=PicklistStatus.choices,
        default=PicklistStatus.CREATED,
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("receive_picklist", "Can receive picklists")]

    def __str__(self) -> str:
        return self.code

    @transition(field=status, source=PicklistStatus.CREATED, target=PicklistStatus.RECEIVED)
    def receive(self) -> None:
        """The picked units arrived at the staging or invoicing station."""

    @transition(
        field=status,
        source=[PicklistStatus.CREATED, PicklistStatus.RECEIVED],
        target=PicklistStatus.CLOSED,
    )
    def close(self) -> None:
        """All its shipments are invoiced (or moved on / cancelled)."""


class PicklistItem(models.Model):
    picklist = models.ForeignKey(Picklist, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey(
        "orders.OrderItem", on_delete=models.CASCADE, related_name="picklist_items"
    )
    shipment = models.ForeignKey("orders.Shipment", on_delete=models.CASCADE, related_name="+")
    sku = models.ForeignKey("inventory.Sku", on_delete=models.PROTECT)
    shelf = models.ForeignKey("inventory.Shelf", null=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["shelf__code", "sku__code"]
        constraints = [
            models.UniqueConstraint(fields=["picklist", "order_item"], name="uniq_picklist_unit")
        ]

    def __str__(self) -> str:
        return f"{self.picklist_id}:{self.order_item_id}"
