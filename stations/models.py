"""A scan station's state, kept on the server (one row per user and kind of station).

The page holds nothing: a refresh, a lost connection or another device of the same user
reads the state back from this row. See `stations/__init__.py` for the whole design.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class StationKind(models.TextChoices):
    PACKING = "PACKING", "Packing"
    MANIFEST = "MANIFEST", "Manifest handover"
    PUTAWAY = "PUTAWAY", "Putaway"


class ScanOutcome(models.TextChoices):
    """What the page shows in its `data-outcome` attribute."""

    OK = "ok"
    ERROR = "error"
    DONE = "done"


class Station(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", editable=False
    )
    kind = models.CharField(max_length=10, choices=StationKind.choices, editable=False)
    picklist = models.ForeignKey(
        "orders.Picklist", null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    shipment = models.ForeignKey(
        "orders.Shipment",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="The shipment being packed: at most one packing station holds it.",
    )
    ticked = models.JSONField(
        "units scanned", default=list, editable=False, help_text="Unit ids, in scan order."
    )
    manifest = models.ForeignKey(
        "orders.Manifest", null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    printable = models.ForeignKey(
        "orders.Shipment",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="The last shipment packed here: its invoice and label are offered.",
    )
    handed_over = models.ForeignKey(
        "orders.Manifest",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="The last manifest closed here: its handover sheet is offered.",
    )
    putaway = models.ForeignKey(
        "inventory.Putaway", null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    shelf = models.ForeignKey(
        "inventory.Shelf", null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    inventory_type = models.CharField(max_length=20, default="GOOD_INVENTORY", editable=False)
    placed = models.JSONField(
        "units placed",
        default=list,
        editable=False,
        help_text="[putaway item id, shelf id, inventory type], in scan order.",
    )
    last_code = models.CharField(max_length=200, blank=True, editable=False)
    last_scan_at = models.DateTimeField(null=True, editable=False)
    outcome = models.CharField(
        max_length=5, choices=ScanOutcome.choices, default=ScanOutcome.OK, editable=False
    )
    error = models.CharField("error type", max_length=20, blank=True, editable=False)
    message = models.CharField(max_length=500, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="one_station_per_user_kind"),
            models.UniqueConstraint(
                fields=["shipment"],
                condition=Q(kind="PACKING", shipment__isnull=False),
                name="one_packing_station_per_shipment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} station of {self.user}"
