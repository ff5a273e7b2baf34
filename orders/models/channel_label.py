"""The label a channel gave a package it ships (Amazon Easy Ship): printed instead of ours."""

from __future__ import annotations

from django.db import models


class ChannelLabel(models.Model):
    """A shipment booked with the channel that ships its order: the carrier, tracking number
    and handover the channel gave, and its label (PDF), which `orders.printing` prints in
    place of ours. Written by `orders.services.channel_labels`."""

    shipment = models.OneToOneField(
        "orders.Shipment", on_delete=models.CASCADE, related_name="channel_label"
    )
    carrier = models.CharField(max_length=100)
    tracking_number = models.CharField(max_length=60)
    handover = models.CharField(
        max_length=200, blank=True, help_text="When and how the carrier collects it."
    )
    pdf = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "channel label"

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"
