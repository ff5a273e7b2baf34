"""The outbox: one `Notification` per message owed to a channel, and every attempt to send it.

A notification is written in the transaction that made the change it reports (so a rolled-back
change leaves none and a committed one is never lost), then delivered after commit. Per order,
notifications go out in `id` order: a notification that is not delivered yet holds back the
order's later ones (and only those).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from channels.adapters import CANCEL_PUSH, DISPATCH_PUSH, STATUS_PUSH

from . import payloads


class NotificationKind(models.TextChoices):
    """The pushes of channel-api.md, named as the channel adapter's `push_once` names them."""

    STATUS = STATUS_PUSH, "Status notification"  # POST /order/{id} (channel-api.md §4)
    CANCEL = CANCEL_PUSH, "Cancel push"  # POST /orders/cancel (§5)
    DISPATCH = DISPATCH_PUSH, "Dispatch push"  # POST /orders/dispatch (§6)


class NotificationState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    DELIVERED = "DELIVERED", "Delivered"
    FAILED = "FAILED", "Failed"
    DISCARDED = "DISCARDED", "Discarded"


# States that hold back the order's later notifications.
OPEN_STATES = (NotificationState.PENDING, NotificationState.FAILED)


class SourceKind(models.TextChoices):
    SHIPMENT = "SHIPMENT", "Shipment"
    REVERSE_PICKUP = "REVERSE_PICKUP", "Reverse pickup"
    UNITS = "UNITS", "Units"


class Notification(models.Model):
    """A message owed to the order's channel: what to send (`payload`), where it stands
    (`state`, `next_attempt_at`) and who is sending it now (`claimed_until`, `claim_token`)."""

    channel = models.ForeignKey(
        "channels.Channel", on_delete=models.PROTECT, related_name="notifications"
    )
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="channel_notifications"
    )
    kind = models.CharField(max_length=10, choices=NotificationKind.choices)
    event = models.CharField(
        max_length=32, help_text="The status reported (for pushes: CANCELLED or DISPATCHED)."
    )
    is_reverse = models.BooleanField("reverse", default=False)
    channel_order_id = models.CharField("channel order id", max_length=100)
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source_id = models.BigIntegerField(null=True, blank=True)
    source_code = models.CharField("changed", max_length=255, blank=True)
    payload = models.JSONField(
        null=True,
        blank=True,
        help_text="The request body. Empty until first sent for a reverse pickup's creation "
        "(its units are known only once the pickup is saved).",
    )
    unit_count = models.PositiveIntegerField("units", default=0)
    retry_item_ids = models.JSONField(
        null=True,
        blank=True,
        help_text="After a FAILED or PARTIAL_SUCCESS reply: the orderItemIds still to deliver "
        "(empty: all).",
    )
    state = models.CharField(
        max_length=10, choices=NotificationState.choices, default=NotificationState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    awaits = models.PositiveIntegerField(
        default=0,
        help_text="Attempts that found the channel still processing the push (not failures).",
    )
    channel_ref = models.CharField(
        "channel reference",
        max_length=100,
        blank=True,
        help_text="A push the channel processes later (an Amazon feed): its reference, which "
        "the next attempt asks about instead of sending again.",
    )
    rejections = models.PositiveSmallIntegerField(
        default=0,
        help_text="Attempts the channel refused (4xx, malformed reply, failed items); "
        "bounded, then FAILED.",
    )
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    idempotency_key = models.CharField(max_length=64, unique=True)
    changed_at = models.DateTimeField(help_text="When the change happened (`updated`).")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    discard_reason = models.CharField(max_length=255, blank=True)
    discarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "channel notification"
        indexes = [
            # the order's notifications (order page, holding back later ones)
            models.Index(fields=["order", "id"], name="notif_order_idx"),
            # the sender's claim (pending rows in id order) and the next back-off to end
            models.Index(fields=["id"], condition=Q(state="PENDING"), name="notif_pending_idx"),
            models.Index(
                fields=["next_attempt_at"], condition=Q(state="PENDING"), name="notif_due_idx"
            ),
            # what holds an order back
            models.Index(
                fields=["order", "id"],
                condition=Q(state__in=["PENDING", "FAILED"]),
                name="notif_open_idx",
            ),
            models.Index(fields=["state", "-id"], name="notif_state_idx"),
            models.Index(fields=["channel", "state", "-id"], name="notif_channel_state_idx"),
        ]
        permissions = [
            ("retry_notification", "Can retry channel notifications now"),
            ("discard_notification", "Can discard channel notifications"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.event} ({self.channel_order_id})"


class AttemptOutcome(models.TextChoices):
    SUCCESS = "SUCCESS", "Delivered"
    PARTIAL = "PARTIAL_SUCCESS", "Partly failed (failed items retried)"
    FAILED = "FAILED", "Failed items (retried)"
    TRANSIENT = "TRANSIENT", "Channel unavailable (429, 5xx, timeout, connection)"
    REJECTED = "REJECTED", "Refused (4xx)"
    MALFORMED = "MALFORMED", "Malformed reply"
    AWAITING = "AWAITING", "Taken, awaiting the channel's processing report"


class NotificationAttempt(models.Model):
    """One try at sending a notification: when, what came back, and why it failed."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    units = models.PositiveIntegerField(default=0, help_text="Entries sent.")
    http_status = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    reply = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["notification_id", "number"]
        verbose_name = "notification attempt"
        indexes = [models.Index(fields=["notification", "number"], name="notif_attempt_idx")]

    def __str__(self) -> str:
        return f"#{self.notification_id} attempt {self.number}: {self.outcome}"


def new_notification(
    *,
    channel_id: int,
    order_id: int,
    channel_order_id: str,
    kind: str,
    event: str,
    payload: dict | None,
    unit_count: int,
    changed_at: datetime,
    source_kind: str,
    source_codes: Iterable[str] = (),
    source_id: int | None = None,
    is_reverse: bool = False,
) -> Notification:
    """A PENDING notification (unsaved), due now, with its own idempotency key; the codes of
    what changed joined, cut to the column."""
    codes = list(dict.fromkeys(source_codes))
    code = ", ".join(codes)
    if len(code) > 255:
        code = f"{code[:230]}… ({len(codes)} in all)"
    return Notification(
        channel_id=channel_id,
        order_id=order_id,
        channel_order_id=channel_order_id,
        kind=kind,
        event=event,
        is_reverse=is_reverse,
        payload=payload,
        unit_count=unit_count,
        changed_at=changed_at,
        next_attempt_at=changed_at,
        source_kind=source_kind,
        source_id=source_id,
        source_code=code,
        state=NotificationState.PENDING,
        idempotency_key=uuid.uuid4().hex,
    )


def moment_of(obj: models.Model) -> datetime:
    """When an object changed, as its notification reports it (`updated_at`, else now)."""
    return getattr(obj, "updated_at", None) or timezone.now()


def shipment_status_notification(
    *,
    channel_id: int,
    order_id: int,
    channel_order_id: str,
    status: str,
    entries: list[dict],
    changed_at: datetime,
    source_codes: Iterable[str],
    source_id: int | None = None,
) -> Notification:
    """A forward status notification of an order's units (their `entries`), caused by the
    shipments named in `source_codes`."""
    return new_notification(
        channel_id=channel_id,
        order_id=order_id,
        channel_order_id=channel_order_id,
        kind=NotificationKind.STATUS,
        event=status,
        payload=payloads.status_body(entries),
        unit_count=len(entries),
        changed_at=changed_at,
        source_kind=SourceKind.SHIPMENT,
        source_codes=source_codes,
        source_id=source_id,
    )
