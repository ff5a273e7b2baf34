"""Channel listings: a channel's product (product id + variant id) mapped to our SKU, and what
the inventory push last told the channel about it (issue 16).

A listing is the unit of two jobs. The order pull maps each channel line through it
(`listings.services.map_lines`): a line whose listing is unmapped holds its order in
PENDING_VERIFICATION until staff map it. The inventory push (`listings.push`) computes each
listing's sellable quantity with `listings.quantity.listing_quantity`, keeps the terms of the
sum (`wanted_*`), sends it when it differs from what the channel last accepted
(`pushed_*`), and records the channel's answer.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


def listing_label(product_id: str, variant_id: str) -> str:
    """How staff and reasons name a listing: "P-881/V-881-M", or "P-881" without variant."""
    return f"{product_id}/{variant_id}" if variant_id else product_id


class PushStatus(models.TextChoices):
    NEVER = "NEVER", "Never pushed"
    PENDING = "PENDING", "Pending"
    IN_SYNC = "IN_SYNC", "In sync"
    FAILED = "FAILED", "Failed"
    SENT = "SENT", "Sent, awaiting the channel's report"


class ChannelListing(models.Model):
    channel = models.ForeignKey("channels.Channel", on_delete=models.PROTECT, related_name="+")
    product_id = models.CharField("product id", max_length=100)
    variant_id = models.CharField("variant id", max_length=100, blank=True)
    seller_sku = models.CharField(
        "seller SKU", max_length=100, blank=True, help_text="The SKU text the channel sends."
    )
    title = models.CharField(max_length=255, blank=True)
    sku = models.ForeignKey(
        "inventory.Sku",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="listings",
        verbose_name="SKU",
        help_text="Our SKU; empty: unmapped (its orders wait in PENDING_VERIFICATION).",
    )
    auto_mapped = models.BooleanField(
        default=False,
        editable=False,
        help_text="Mapped by the order pull because the seller SKU is exactly our SKU code.",
    )
    mapped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="+",
    )
    mapped_at = models.DateTimeField(null=True, blank=True, editable=False)
    sync_enabled = models.BooleanField(
        "inventory sync", default=True, help_text="Push this listing's quantity to the channel."
    )
    buffer = models.PositiveIntegerField(
        default=0, help_text="Units held back from this channel (pushed = sellable − buffer)."
    )

    # What the push would send now, and why (written when a stock movement touches the SKU).
    wanted_quantity = models.IntegerField(null=True, blank=True, editable=False)
    wanted_terms = models.JSONField(default=dict, blank=True, editable=False)
    wanted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What the channel last accepted, and why.
    pushed_quantity = models.IntegerField(null=True, blank=True, editable=False)
    pushed_terms = models.JSONField(default=dict, blank=True, editable=False)
    pushed_at = models.DateTimeField(null=True, blank=True, editable=False)
    push_status = models.CharField(
        max_length=10, choices=PushStatus.choices, default=PushStatus.NEVER, editable=False
    )
    push_answer = models.TextField(
        blank=True, editable=False, help_text="The channel's answer to the last push."
    )
    push_attempts = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Failed pushes in a row (reset on success)."
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel_id", "product_id", "variant_id"]
        verbose_name = "channel listing"
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "product_id", "variant_id"], name="uniq_channel_listing"
            ),
            models.CheckConstraint(
                condition=Q(auto_mapped=False) | Q(sku__isnull=False),
                name="listing_auto_mapped_has_sku",
            ),
            models.CheckConstraint(
                condition=Q(pushed_quantity__isnull=True) | Q(pushed_quantity__gte=0),
                name="listing_pushed_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["sku", "channel"], name="listing_sku_channel_idx"),
            models.Index(
                fields=["channel", "push_status"],
                name="listing_unsynced_idx",
                condition=~Q(push_status="IN_SYNC"),
            ),
        ]
        permissions = [
            ("map_channellisting", "Can map channel listings to SKUs"),
            ("push_channellisting", "Can push inventory to channels"),
        ]

    def __str__(self) -> str:
        variant = f"/{self.variant_id}" if self.variant_id else ""
        return f"{self.product_id}{variant} on {self.channel_id}"

    @property
    def label(self) -> str:
        """How staff and reasons name a listing: "P-881/V-881-M"."""
        return listing_label(self.product_id, self.variant_id)


class InventoryLane(models.TextChoices):
    CHANGED = "CHANGED", "Changed listings (every 10 minutes)"
    ZERO = "ZERO", "Out of stock fast path (every 2 minutes)"


class InventoryCursor(models.Model):
    """How far a channel's push lane has read the change logs, by row id: the stock ledger
    (`inventory.StockMovement`) and the audit trail (`uniware.core.StateChange`, for units
    created, cancelled or mapped without a stock movement). See `listings.changes`."""

    channel = models.ForeignKey("channels.Channel", on_delete=models.CASCADE, related_name="+")
    lane = models.CharField(max_length=10, choices=InventoryLane.choices)
    movement_id = models.BigIntegerField(default=0)
    change_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "lane"], name="uniq_inventory_cursor")
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.lane}: {self.movement_id}/{self.change_id}"


class InventoryFeed(models.Model):
    """Listings sent in one request that the channel processes later (Amazon's
    JSON_LISTINGS_FEED): what was sent, so that the channel's processing report, read by a
    later push run (`listings.feeds.collect_reports`), is recorded as an answer sent now
    would be. While a feed is open its listings are not sent again (their order is kept)."""

    channel = models.ForeignKey("channels.Channel", on_delete=models.CASCADE, related_name="+")
    reference = models.CharField(max_length=100, help_text="The channel's feed id.")
    run = models.ForeignKey(
        "channels.SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    computed_at = models.DateTimeField(help_text="When the quantities sent were computed.")
    # [[listing id, quantity, terms], ...] in the order sent (the report names message numbers)
    entries = models.JSONField(default=list)
    size = models.PositiveIntegerField("listings", default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "inventory feed"
        indexes = [
            models.Index(
                fields=["channel", "id"],
                name="inventory_feed_open_idx",
                condition=Q(closed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} feed {self.reference}"
