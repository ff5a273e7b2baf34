"""Sales channels and what the back-office keeps about talking to them.

- `Channel`: a sales channel with its integration (type, base URL, credentials: the password
  is encrypted at rest, `uniware.core.secrets`), what it can do (capability flags) and how it
  is synced (sync settings). The channel types and their presets come from the adapter
  classes (`channels.adapters`): a new type is a new adapter class.
- `SyncRun`: one run of a recurrent task (order pull, status sync) or of a manual sync, with
  its outcome, counts, progress and message (the "recurrent task runs" list).
- `SyncError`: a problem one order hit in a run (conflicting status, missing sequence ...).
- `SyncCursor`: our own "synced up to" per channel and kind (never beat's last-run time).
- `SyncLease`: at most one sync of a kind per channel at a time, across workers and beats.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from uniware.core.secrets import EncryptedTextField


class ChannelType(models.TextChoices):
    """The built-in types (constants for code and tests). The choices a Channel offers come
    from the adapter registry, so they also include types added by new adapter classes."""

    CUSTOM = "CUSTOM", "Custom"
    FLIPKART = "FLIPKART", "Flipkart"
    AMAZON = "AMAZON", "Amazon"
    PAYTM = "PAYTM", "Paytm"
    SNAPDEAL = "SNAPDEAL", "Snapdeal"
    SHOPCLUES = "SHOPCLUES", "Shopclues"
    WOOPLR = "WOOPLR", "Wooplr"
    TATA_CLIQ = "TATA_CLIQ", "Tata Cliq"
    VOONIK = "VOONIK", "Voonik"
    AMAZON_SP = "AMAZON_SP", "Amazon (Selling Partner API)"
    SHOPIFY = "SHOPIFY", "Shopify"


def channel_type_choices() -> list[tuple[str, str]]:
    """One choice per registered adapter class (a callable: no migration per new type)."""
    from .adapters import channel_types

    return channel_types()


DEFAULT_PULL_STATUSES = "CREATED,PENDING_VERIFICATION"


class Channel(models.Model):
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    channel_type = models.CharField(
        max_length=20, choices=channel_type_choices, default=ChannelType.CUSTOM
    )
    is_enabled = models.BooleanField(default=True)

    # --- integration ------------------------------------------------------------------
    base_url = models.URLField(
        "base URL",
        blank=True,
        help_text="Where the channel serves the channel API, e.g. https://api.example.com/uc",
    )
    username = models.CharField(max_length=200, blank=True)
    password = EncryptedTextField(
        blank=True,
        help_text="Encrypted in the database (SECRETS_KEYS); never shown again once saved.",
    )
    refresh_token = EncryptedTextField(
        blank=True,
        help_text="Native APIs that log in with OAuth (Amazon: the seller's Login with Amazon "
        "refresh token). Encrypted like the password; never shown again once saved.",
    )
    api_settings = models.JSONField(
        "API settings",
        default=dict,
        blank=True,
        help_text="What a native adapter needs besides the credentials, e.g. Amazon's "
        'marketplace and seller ids: {"marketplace_id": "A21TJRUUN4KGV", "seller_id": "…"}. '
        "The channel type's help names its keys.",
    )

    # --- capabilities (presets per channel type) ---------------------------------------
    supports_status_sync = models.BooleanField(
        default=True, help_text="The channel answers Get Order Status: statuses are synced."
    )
    status_sync_channel_shipped_only = models.BooleanField(
        "sync only orders the channel ships",
        default=False,
        help_text="Status sync only for orders with third-party shipping (Amazon's rule).",
    )
    provides_shipping = models.BooleanField(
        "channel provides shipping",
        default=False,
        help_text="The channel can supply courier and tracking number for its orders.",
    )
    accepts_status_notifications = models.BooleanField(default=False)
    accepts_cancel = models.BooleanField("accepts cancel pushes", default=False)
    accepts_dispatch = models.BooleanField("accepts dispatch pushes", default=False)
    accepts_inventory = models.BooleanField("accepts inventory pushes", default=True)

    # --- sync settings ----------------------------------------------------------------
    sync_enabled = models.BooleanField(
        default=True, help_text="Off: no order pull and no status sync for this channel."
    )
    pull_window_days = models.PositiveSmallIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Order pull asks for orders of the last N days.",
    )
    pull_statuses = models.CharField(
        max_length=100,
        default=DEFAULT_PULL_STATUSES,
        help_text="Channel order statuses the pull asks for (comma-separated).",
    )
    page_size = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    status_batch_size = models.PositiveSmallIntegerField(
        "status query batch size",
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Order ids per Get Order Status request.",
    )
    return_window_days = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Return sync looks at orders dispatched in the last N days.",
    )
    request_timeout = models.FloatField(
        "request timeout (s)", default=30.0, validators=[MinValueValidator(0.1)]
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Tries per request on 429, 5xx, timeouts and connection errors.",
    )
    retry_base_delay = models.FloatField(
        "retry base delay (s)",
        default=1.0,
        validators=[MinValueValidator(0)],
        help_text="Back-off before retry n is about base × 2^(n-1), with jitter.",
    )

    inventory_facilities = models.ManyToManyField(
        "inventory.Facility",
        blank=True,
        related_name="+",
        help_text="Facilities whose stock this channel may sell; none chosen: every active "
        "facility. The inventory push names the first by priority as facilityCode.",
    )
    inventory_batch_size = models.PositiveSmallIntegerField(
        "inventory push batch size",
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Listings per inventory update request.",
    )
    inventory_zero_at_or_below = models.PositiveSmallIntegerField(
        "push 0 at or below",
        null=True,
        blank=True,
        help_text="Push 0 when a listing's sellable quantity is this or less (empty: off).",
    )

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        permissions = [("sync_channel", "Can run order pull and status sync of channels")]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        from .adapters import STATUS_VALUES, adapter_class

        problems = adapter_class(self.channel_type).settings_problems(self.api_settings or {})
        if problems:
            raise ValidationError({"api_settings": f"Channel {self.code}: {'; '.join(problems)}"})

        bad = [s for s in self.pull_status_list if s not in STATUS_VALUES]
        if bad:
            raise ValidationError(
                {
                    "pull_statuses": f"Channel {self.code}: unknown channel order status "
                    f"{', '.join(bad)} (use {', '.join(STATUS_VALUES)})"
                }
            )

    @property
    def pull_status_list(self) -> list[str]:
        return [s.strip().upper() for s in self.pull_statuses.split(",") if s.strip()]

    def apply_preset(self) -> None:
        """Set the capability flags to the defaults of the channel's type (in memory)."""
        from .adapters import adapter_class

        for name, value in adapter_class(self.channel_type).preset.items():
            setattr(self, name, value)


class SyncKind(models.TextChoices):
    ORDER_PULL = "ORDER_PULL", "Order pull"
    STATUS = "STATUS", "Status sync: dispatched and cancelled"
    DELIVERY = "DELIVERY", "Status sync: delivered and returned"
    RETURNS = "RETURNS", "Return sync"
    SELECTED = "SELECTED", "Status sync of selected orders"
    INVENTORY = "INVENTORY", "Inventory push"


STATUS_SYNC_KINDS = (SyncKind.STATUS, SyncKind.DELIVERY, SyncKind.RETURNS, SyncKind.SELECTED)
# Kinds that run on a schedule and so keep a cursor and take a lease.
SCHEDULED_KINDS = (SyncKind.ORDER_PULL, SyncKind.STATUS, SyncKind.DELIVERY, SyncKind.RETURNS)


class RunOutcome(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    SUCCESS = "SUCCESS", "Success"
    PARTIAL = "PARTIAL", "Partly failed"
    FAILED = "FAILED", "Failed"
    REFUSED = "REFUSED", "Refused"
    ABANDONED = "ABANDONED", "Abandoned"


class RunTrigger(models.TextChoices):
    SCHEDULE = "SCHEDULE", "Scheduled"
    MANUAL = "MANUAL", "Manual"


class SyncRun(models.Model):
    """One run of a recurrent task or a manual sync, for one channel (or, for a refusal that
    concerns every channel, none)."""

    task = models.CharField(max_length=100, help_text="The Celery task or the admin action.")
    kind = models.CharField(max_length=12, choices=SyncKind.choices)
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_runs"
    )
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(
        max_length=10, choices=RunOutcome.choices, default=RunOutcome.QUEUED, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    window_from = models.DateTimeField(null=True, blank=True)
    window_to = models.DateTimeField(null=True, blank=True)
    seen = models.PositiveIntegerField("orders seen", default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last progress written; a run without a lease that stops progressing is "
        "ended by the reaper (channels.sync.runs.reap_runs).",
    )
    retries = models.PositiveIntegerField(
        default=0, help_text="Requests to the channel that were retried (429, 5xx, timeouts)."
    )
    message = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="What the run was asked to do.")
    report = models.JSONField(
        default=list,
        blank=True,
        help_text="Per order: [code, outcome, what changed or why not] (changed and failed "
        "orders; every order for manual runs).",
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = "recurrent task run"
        indexes = [models.Index(fields=["channel", "kind", "-id"], name="syncrun_channel_kind_idx")]

    def __str__(self) -> str:
        where = f" {self.channel.code}" if self.channel_id else ""
        return f"#{self.pk} {self.get_kind_display()}{where}"

    @property
    def is_finished(self) -> bool:
        return self.outcome not in (RunOutcome.QUEUED, RunOutcome.RUNNING)


class SyncErrorKind(models.TextChoices):
    CONFLICT = "CONFLICT", "Conflicting status"
    SEQUENCE = "SEQUENCE", "Missing sequence"
    REFUSED = "REFUSED", "Refused by the back-office"
    CHANNEL = "CHANNEL", "Channel request failed"
    MALFORMED = "MALFORMED", "Malformed channel data"
    MISMATCH = "MISMATCH", "Order differs from the channel's"
    ERROR = "ERROR", "Unexpected error"


class SyncErrorState(models.TextChoices):
    OPEN = "OPEN", "Open"
    RESOLVED = "RESOLVED", "Resolved (a later sync succeeded)"
    DISMISSED = "DISMISSED", "Dismissed"


class SyncError(models.Model):
    """A problem one order (or one channel order we could not create) hit in a run.

    OPEN until a later sync of the same order succeeds (RESOLVED, by `Tally.add`) or staff
    dismiss it with a reason (DISMISSED, `channels.sync.errors.errors_dismiss`): the list
    shows open ones by default, so it is a to-do list, not a log."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="errors")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    channel_order_id = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=SyncErrorKind.choices)
    message = models.TextField()
    data = models.JSONField(
        "channel data",
        default=dict,
        blank=True,
        help_text="The channel's order as it was received, when we could not create it: "
        "nothing the channel sent is lost.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(
        max_length=10, choices=SyncErrorState.choices, default=SyncErrorState.OPEN
    )
    resolution = models.CharField(
        max_length=255, blank=True, help_text="Which run resolved it, or why it was dismissed."
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = "sync error"
        indexes = [
            models.Index(fields=["order", "-id"], name="syncerror_order_idx"),
            models.Index(fields=["channel", "-id"], name="syncerror_channel_idx"),
            models.Index(
                fields=["channel", "channel_order_id"],
                name="syncerror_open_idx",
                condition=models.Q(state="OPEN"),
            ),
        ]
        permissions = [("dismiss_syncerror", "Can dismiss sync errors with a reason")]

    def __str__(self) -> str:
        return f"{self.channel_order_id or '—'}: {self.message[:80]}"


class SyncCursor(models.Model):
    """How far a kind of sync of a channel got: `synced_up_to` is the end of the last window
    fully synced; `resync_from` (set by staff) widens the next run back to that date."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="sync_cursors")
    kind = models.CharField(max_length=12, choices=SyncKind.choices)
    synced_up_to = models.DateTimeField(null=True, blank=True)
    resync_from = models.DateTimeField(
        null=True, blank=True, help_text="The next run also covers orders from this date."
    )
    resume = models.JSONField(
        default=dict,
        blank=True,
        help_text="Where a native API's listing stopped part way goes on (its paging token).",
    )
    last_run = models.ForeignKey(
        SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel__code", "kind"]
        verbose_name = "sync cursor"
        constraints = [models.UniqueConstraint(fields=["channel", "kind"], name="uniq_sync_cursor")]

    def __str__(self) -> str:
        return f"{self.channel_id and self.channel.code} {self.kind}"


class SyncLease(models.Model):
    """Who may run a kind of sync of a channel now. Taken with one conditional UPDATE (free or
    expired), renewed while the run progresses, released at its end; a crashed worker's
    lease expires by itself."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="sync_leases")
    kind = models.CharField(max_length=12, choices=SyncKind.choices)
    holder = models.CharField(max_length=64, blank=True, help_text="The run holding it.")
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["channel__code", "kind"]
        verbose_name = "sync lease"
        constraints = [models.UniqueConstraint(fields=["channel", "kind"], name="uniq_sync_lease")]

    def __str__(self) -> str:
        return f"{self.channel_id and self.channel.code} {self.kind}: {self.holder or 'free'}"
