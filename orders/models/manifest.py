from __future__ import annotations

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition


class ManifestStatus(models.TextChoices):
    CREATED = "CREATED", "Open"
    CLOSED = "CLOSED", "Closed"
    DISCARDED = "DISCARDED", "Discarded"


class Manifest(models.Model):
    """Shipments of one channel and one shipping provider handed over together.
    Closing it dispatches them."""

    code = models.CharField(max_length=40, unique=True)
    facility = models.ForeignKey("inventory.Facility", on_delete=models.PROTECT)
    channel = models.ForeignKey("channels.Channel", on_delete=models.PROTECT)
    shipping_provider = models.ForeignKey("inventory.ShippingProvider", on_delete=models.PROTECT)
    status = FSMField(
        max_length=12,
        choices=ManifestStatus.choices,
        default=ManifestStatus.CREATED,
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
        permissions = [("close_manifest", "Can close manifests (dispatches their shipments)")]
        constraints = [
            # Two packers adding to "the manifest of this courier" must meet on one.
            models.UniqueConstraint(
                fields=["facility", "channel", "shipping_provider"],
                condition=models.Q(status="CREATED"),
                name="one_open_manifest_per_route",
            )
        ]

    def __str__(self) -> str:
        return self.code

    @transition(field=status, source=ManifestStatus.CREATED, target=ManifestStatus.CLOSED)
    def close(self) -> None:
        pass

    @transition(field=status, source=ManifestStatus.CREATED, target=ManifestStatus.DISCARDED)
    def discard(self) -> None:
        """Only an empty open manifest (checked by the service)."""
